#!/usr/bin/env bash
# A store that cannot take a job's result: `jobq work` keeps the result, says so, and records
# it once the store takes writes again; the command runs once and the job ends completed.
#
#   store_full.sh JOBQ redis|lmdb
#
# redis: a private redis-server (maxmemory with noeviction), filled until writes are refused
#        and held over its limit; then the limit is lifted with CONFIG SET.
# lmdb:  the store on a small tmpfs mounted here (needs root), filled with a file until
#        commits fail; then the file is removed.
# While the store is full the job's command has finished; the store stays full for more than
# two lock periods (redis), so a worker that did not keep the lock would lose the job to the
# stalled check (max-stalled 0: failed for stalling at once).
# A second job checks the other end: when the store stays full past --shutdown-timeout, the
# worker gives the result up, says so, and exits 3.
# Exits 0 when every check passed, 1 otherwise, 77 (skipped) when the backend is unavailable.
set -u

JOBQ=${1:?usage: store_full.sh JOBQ redis|lmdb}
BACKEND=${2:?usage: store_full.sh JOBQ redis|lmdb}
MULT=${JOBQ_TEST_TIMEOUT_MULTIPLIER:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobq-full.XXXXXX")
work_pid=""
redis_pid=""
mnt=""
cleanup() {
	[ -n "$work_pid" ] && kill "$work_pid" 2>/dev/null
	if [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; then
		until_true 10 sh -c "! kill -0 $redis_pid 2>/dev/null"
	fi
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

skip() {
	echo "SKIPPED: $*" >&2
	echo "SKIPPED: $*"
	exit 77
}

failures=0
check() { # DESCRIPTION CMD...
	local what=$1
	shift
	if "$@"; then
		echo "ok: $what"
	else
		echo "FAIL: $what"
		failures=$((failures + 1))
	fi
}

# until_true SECONDS CMD...
. "$(dirname "$0")/../support/until.sh"

rcli() { redis-cli -s "$tmp/redis.sock" "$@"; }

case "$BACKEND" in
redis)
	command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed"
	redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 --save '' \
		--appendonly no --daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" \
		--logfile "$tmp/redis.log" --maxmemory-policy noeviction || exit 1
	until_true 10 test -s "$tmp/redis.pid" || exit 1
	redis_pid=$(cat "$tmp/redis.pid")
	until_true 10 sh -c "redis-cli -s '$tmp/redis.sock' ping 2>/dev/null | grep -q PONG" ||
		exit 1
	URL="redis+unix://$tmp/redis.sock"
	;;
lmdb)
	if [ "$(id -u)" != 0 ]; then
		skip "store_full.sh lmdb mounts a tmpfs and needs root; NOT TESTED: LMDB disk full"
	fi
	mnt="$tmp/mnt"
	mkdir -p "$mnt"
	mount -t tmpfs -o size=8m tmpfs "$mnt" || skip "cannot mount a tmpfs here; NOT TESTED"
	URL="lmdb:$mnt/store"
	;;
*)
	echo "unknown backend $BACKEND" >&2
	exit 2
	;;
esac
export JOBQ_URL=$URL

# fill: makes the store refuse writes. unfill: lets it take them again.
fill() {
	if [ "$BACKEND" = redis ]; then
		local i
		[ -f "$tmp/mb" ] || head -c 1048576 /dev/zero | tr '\0' x >"$tmp/mb"
		rcli config set maxmemory 4mb >/dev/null
		for i in $(seq 20); do
			case "$(rcli -x set "fill$i" <"$tmp/mb" 2>&1)" in
			*OOM*) break ;;
			esac
		done
		# keep it over the limit (a refused write frees what it took)
		rcli config set maxmemory 1mb >/dev/null
		case "$(rcli set probe x 2>&1)" in
		*OOM*) return 0 ;;
		*) return 1 ;;
		esac
	else
		dd if=/dev/zero of="$mnt/fill" bs=64k >/dev/null 2>&1
		[ "$(df --output=avail -k "$mnt" | tail -1 | tr -d ' ')" -lt 64 ]
	fi
}
unfill() {
	if [ "$BACKEND" = redis ]; then
		rcli config set maxmemory 0 >/dev/null
	else
		rm -f "$mnt/fill"
	fi
}

# The job's command: counts its runs, waits for the test's "go", prints a result big
# enough (256 KB) that storing it needs fresh space.
cat >"$tmp/cmd.sh" <<EOF
#!/bin/sh
echo run >>"$tmp/runs.\$JOBQ_JOB_ID"
touch "$tmp/started.\$JOBQ_JOB_ID"
i=0
while [ ! -f "$tmp/go.\$JOBQ_JOB_ID" ] && [ \$i -lt $((1500 * MULT)) ]; do
	sleep 0.02
	i=\$((i + 1))
done
printf '"'
head -c 262144 /dev/zero | tr '\0' r
printf '"'
EOF
chmod +x "$tmp/cmd.sh"

state_is() { "$JOBQ" get q "$1" --json 2>/dev/null | grep -q "\"state\":\"$2\""; }
runs_of() { if [ -f "$tmp/runs.$1" ]; then wc -l <"$tmp/runs.$1" | tr -d ' '; else echo 0; fi; }
err_has() { grep -q -- "$1" "$tmp/work.err"; }
since_ms_at_least() { [ $((($(date +%s%N) - $1) / 1000000)) -ge "$2" ]; }

LOCK_MS=1000
# --- 1. the store refuses the result, then takes it --------------------------------------
id=$("$JOBQ" add q n '{"a":1}') || exit 1
"$JOBQ" work q --max-jobs 1 --lock-ms $LOCK_MS --stalled-interval 200 --max-stalled 0 \
	--shutdown-timeout $((60000 * MULT)) -- "$tmp/cmd.sh" >"$tmp/work.out" 2>"$tmp/work.err" &
work_pid=$!
check "the command started" until_true 20 test -f "$tmp/started.$id"
check "the store is full" fill
touch "$tmp/go.$id"
check "work says the store refused the result" until_true 20 err_has "result refused: job $id"
if [ "$BACKEND" = redis ]; then
	# Full for more than two lock periods: the heartbeat must keep the lock meanwhile.
	start=$(date +%s%N)
	check "two lock periods passed" until_true 20 since_ms_at_least "$start" $((2 * LOCK_MS + 500))
fi
check "the job is still active while the store is full" state_is "$id" active
unfill
wait "$work_pid"
rc=$?
work_pid=""
check "work exits 0 (rc $rc)" test "$rc" = 0
check "work says the store recovered" err_has "store recovered"
check "work says the result was recorded" err_has "result recorded: job $id"
check "the job is completed" state_is "$id" completed
check "the command ran once (ran $(runs_of "$id") times)" test "$(runs_of "$id")" = 1

# --- 2. the store stays full past the shutdown timeout: the result is given up ------------
id=$("$JOBQ" add q n '{"a":2}') || exit 1
"$JOBQ" work q --max-jobs 1 --lock-ms $((30000 * MULT)) --shutdown-timeout 500 \
	-- "$tmp/cmd.sh" >"$tmp/work.out" 2>"$tmp/work.err" &
work_pid=$!
check "the second command started" until_true 20 test -f "$tmp/started.$id"
check "the store is full again" fill
touch "$tmp/go.$id"
wait "$work_pid"
rc=$?
work_pid=""
check "work exits 3 when it gave a result up (rc $rc)" test "$rc" = 3
check "work says the result was refused" err_has "result refused: job $id"
check "work says it gave the result up" err_has "result given up: job $id"
unfill
check "the job is left active, not failed" state_is "$id" active

if [ $failures -gt 0 ]; then
	echo "--- work's stderr:"
	cat "$tmp/work.err"
	exit 1
fi
exit 0
