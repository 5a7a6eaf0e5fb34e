#!/usr/bin/env bash
# Kill cycles on one LMDB store with the real `jobq` command (issue 12, finding 1):
#
#   kill_cycle.sh JOBQ CYCLES
#
# Two `jobq work q -- true` workers and three loops of `jobq add q n '{}'` share one lmdb:
# store; every 0.3-0.9 s both workers get SIGKILL and are started again. After each cycle no
# add may have been running longer than the lock timeout (LOCK_TIMEOUT_S, default 10 s; an
# add takes milliseconds), and a `jobq counts q` must finish within it too. A stuck process is
# named with the syscall it sleeps in, and the test fails. At the end the store must hold
# exactly the jobs whose adds printed an id (every state counted), each id once.
set -u
jobq=$1
cycles=$2
limit_us=$((${LOCK_TIMEOUT_S:-10} * 1000000))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobq-killcycle-XXXXXX")
url="lmdb:$tmp/store"
pids=()

cleanup() {
	touch "$tmp/stop"
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for f in "$tmp"/cur.*; do
		[ -e "$f" ] && read -r p _ <"$f" && kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now_us() { echo "${EPOCHREALTIME/./}"; }

# Why a process is stuck: its state, the syscall it sleeps in and where.
describe() {
	local p=$1
	echo "  state: $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)," \
		"syscall: $(cut -d' ' -f1-2 "/proc/$p/syscall" 2>/dev/null)," \
		"wchan: $(cat "/proc/$p/wchan" 2>/dev/null)"
}

fail() {
	echo "FAIL: $*"
	echo "0 passed, 1 failed"
	exit 1
}

add_loop() {
	local i=$1
	while [ ! -e "$tmp/stop" ]; do
		"$jobq" -q -u "$url" add q n '{}' >"$tmp/out.$i" 2>"$tmp/err.$i" &
		local p=$!
		echo "$p $(now_us)" >"$tmp/cur.$i"
		wait "$p"
		local rc=$?
		rm -f "$tmp/cur.$i"
		if [ "$rc" -ne 0 ]; then
			echo "add loop $i: exit $rc: $(cat "$tmp/err.$i")" >>"$tmp/failures"
			return
		fi
		cat "$tmp/out.$i" >>"$tmp/ids.$i"
	done
}

# Fails if an add has been running longer than the lock timeout.
check_adds() {
	local t
	t=$(now_us)
	for i in 1 2 3; do
		local p start
		if [ -e "$tmp/cur.$i" ] && read -r p start <"$tmp/cur.$i" 2>/dev/null &&
			[ -n "$start" ] && [ $((t - start)) -gt "$limit_us" ]; then
			echo "add loop $i: jobq add (pid $p) blocked for $(((t - start) / 1000)) ms"
			describe "$p"
			fail "a writer is stuck ($1)"
		fi
	done
	[ -s "$tmp/failures" ] && fail "$(cat "$tmp/failures")"
	return 0
}

# Runs a command with a bounded wait; fails naming it if it outlives the lock timeout.
bounded() {
	local what=$1
	shift
	"$@" >"$tmp/bounded.out" 2>&1 &
	local p=$! start
	start=$(now_us)
	while kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; do
		if [ $(($(now_us) - start)) -gt "$limit_us" ]; then
			echo "$what (pid $p) blocked for more than $((limit_us / 1000)) ms"
			describe "$p"
			kill -9 "$p"
			fail "$what is stuck"
		fi
		sleep 0.01
	done
	wait "$p" || fail "$what: exit $?: $(cat "$tmp/bounded.out")"
}

mkdir "$tmp/store"
bounded "the first add" "$jobq" -q -u "$url" add q n '{}'
cat "$tmp/bounded.out" >"$tmp/ids.0"
for i in 1 2 3; do
	add_loop "$i" &
	pids+=("$!")
done

start=$(now_us)
for ((c = 1; c <= cycles; c++)); do
	"$jobq" -q -u "$url" work q -- true >/dev/null 2>&1 &
	w1=$!
	"$jobq" -q -u "$url" work q -- true >/dev/null 2>&1 &
	w2=$!
	sleep "0.$((300 + RANDOM % 601))"
	kill -9 "$w1" "$w2" 2>/dev/null
	wait "$w1" "$w2" 2>/dev/null
	check_adds "cycle $c"
	bounded "jobq counts (cycle $c)" "$jobq" -q -u "$url" counts q
	# The store's tables agree with each other after every round of kills.
	bounded "jobq check (cycle $c)" "$jobq" -q -u "$url" check
done

touch "$tmp/stop"
end=$(($(now_us) + limit_us))
while [ -n "$(ls "$tmp"/cur.* 2>/dev/null)" ] && [ "$(now_us)" -lt "$end" ]; do
	check_adds "at the end"
	sleep 0.01
done
check_adds "at the end"
wait "${pids[@]}"
pids=()

bounded "jobq check at the end" "$jobq" -q -u "$url" check
bounded "jobq counts --json" "$jobq" -q -u "$url" counts q --json
counts=$(cat "$tmp/bounded.out")
total=0
for k in waiting active delayed prioritized completed failed paused waiting-children; do
	v=$(sed -n "s/.*\"$k\":\([0-9]*\).*/\1/p" <<<"$counts")
	total=$((total + ${v:-0}))
done
acked=$(cat "$tmp"/ids.* | wc -l)
unique=$(cat "$tmp"/ids.* | sort -u | wc -l)
secs=$((($(now_us) - start) / 1000000))
echo "$cycles cycles in ${secs} s: $acked adds acknowledged, $total jobs in the store ($counts)"
[ "$unique" -eq "$acked" ] || fail "$((acked - unique)) ids acknowledged twice"
[ "$total" -eq "$acked" ] || fail "$acked adds acknowledged but $total jobs in the store"
echo "1 passed, 0 failed"
