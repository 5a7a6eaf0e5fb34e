# Sourced by the shell tests of the `jobq` command (cli_test.sh, ops_test.sh):
#
#   . lib.sh JOBQ BACKEND PREFIX
#
# sets JOBQ (absolute), BACKEND, MULT, tmp (removed at exit with bg_pids killed), URL and
# JOBQ_URL for the backend (exits 77 when Redis is not available), Q (a queue name unique to
# the run), and the helpers below.
JOBQ=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BACKEND=$2
MULT=${JOBQ_TEST_TIMEOUT_MULTIPLIER:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobq-$3.XXXXXX")
bg_pids=()
cleanup() {
	for p in "${bg_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

case "$BACKEND" in
memory) URL="mem://" ;;
lmdb) URL="lmdb:$tmp/store" ;;
redis)
	sock=${JOBQ_TEST_REDIS_SOCKET:-}
	if [ -z "$sock" ] || [ ! -S "$sock" ]; then
		echo "SKIP: no redis socket (JOBQ_TEST_REDIS_SOCKET='$sock')"
		exit 77
	fi
	URL="redis+unix://$sock"
	;;
*)
	echo "unknown backend $BACKEND" >&2
	exit 2
	;;
esac
export JOBQ_URL=$URL
Q="$3-$BACKEND-$$"

# --- helpers --------------------------------------------------------------------------------
checks=0
failures=0
name=""
out=""
err=""
rc=0

pass() { checks=$((checks + 1)); }
fail() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "FAIL [$name] $*"
	echo "    stdout: $(printf '%s' "$out" | head -c 600)"
	echo "    stderr: $(printf '%s' "$err" | head -c 600)"
}

# run [--in STDIN] ARGS... : runs jobq ARGS with a time limit; sets out, err, rc.
run() {
	local input=""
	if [ "${1:-}" = "--in" ]; then
		input=$2
		shift 2
	fi
	name="jobq $*"
	printf '%s' "$input" | timeout $((60 * MULT)) "$JOBQ" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# expect RC: exit code, and on failure exactly one line on stderr naming the program.
expect() {
	if [ "$rc" != "$1" ]; then
		fail "exit code $rc, expected $1"
		return 1
	fi
	if [ "$1" != 0 ]; then
		local lines
		lines=$(printf '%s\n' "$err" | grep -c .)
		if [ "$lines" != 1 ] || [[ "$err" != jobq* && "$err" != '{"error":'* ]]; then
			fail "expected one line on stderr starting with 'jobq' (or a JSON error), got $lines lines"
			return 1
		fi
	fi
	pass
}
# expect_work RC: the exit code of `jobq work`, whose stderr has a log line per job and
# event and ends with one summary line.
expect_work() {
	if [ "$rc" != "$1" ]; then
		fail "exit code $rc, expected $1"
		return 1
	fi
	if [[ "$(printf '%s\n' "$err" | tail -n 1)" != "jobq work: "* ]]; then
		fail "stderr does not end with a 'jobq work:' line"
		return 1
	fi
	pass
}
out_is() { if [ "$out" = "$1" ]; then pass; else fail "stdout is not '$1'"; fi; }
out_has() { if [[ "$out" == *"$1"* ]]; then pass; else fail "stdout lacks '$1'"; fi; }
out_lacks() { if [[ "$out" != *"$1"* ]]; then pass; else fail "stdout has '$1'"; fi; }
err_has() { if [[ "$err" == *"$1"* ]]; then pass; else fail "stderr lacks '$1'"; fi; }
err_lacks() { if [[ "$err" != *"$1"* ]]; then pass; else fail "stderr has '$1'"; fi; }
err_empty() { if [ -z "$err" ]; then pass; else fail "stderr is not empty"; fi; }
# json_ok: stdout is exactly one line of valid JSON (checked with jq when installed).
json_ok() {
	local lines
	lines=$(printf '%s\n' "$out" | grep -c .)
	if [ "$lines" != 1 ]; then
		fail "expected one JSON line, got $lines"
		return
	fi
	if command -v jq >/dev/null 2>&1 && ! printf '%s' "$out" | jq -e . >/dev/null 2>&1; then
		fail "stdout is not valid JSON"
		return
	fi
	pass
}
# has_keys KEY...: the JSON on stdout has each "KEY":
has_keys() {
	for k in "$@"; do
		if [[ "$out" != *"\"$k\":"* ]]; then
			fail "JSON lacks key '$k'"
			return
		fi
	done
	pass
}
# until_true SECONDS CMD...
. "$(dirname "${BASH_SOURCE[0]}")/../support/until.sh"
state_is() { # QUEUE ID STATE
	"$JOBQ" get "$1" "$2" --json 2>/dev/null | grep -q "\"state\":\"$3\""
}

