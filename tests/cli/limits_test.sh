#!/usr/bin/env bash
# The queue-limit verbs of the `jobq` command, driven as a subprocess:
#
#   limits_test.sh JOBQ memory|lmdb|redis
#
# Every backend: usage errors (zero, negative or missing values, unknown options, --max
# without --duration) exit 2 with one line naming what was wrong, and change nothing.
# lmdb, redis (a store that outlives the process): limit and concurrency set, read (text and
# --json), replaced and removed; `work --limit-max/--limit-duration` starts at most N jobs in a
# window; `limit --for`.
# Exits 0 when every check passed, 1 otherwise, 77 when the backend is not available.
set -u

JOBQ=${1:?usage: limits_test.sh JOBQ memory|lmdb|redis}
BACKEND=${2:?usage: limits_test.sh JOBQ memory|lmdb|redis}

. "$(dirname "$0")/lib.sh" "$JOBQ" "$BACKEND" limits

# --- usage errors ---------------------------------------------------------------------------
run limit "$Q" --max 0 --duration 1000
expect 2
err_has "--max"
run limit "$Q" --max 5 --duration -3
expect 2
err_has "--duration"
run limit "$Q" --max 5
expect 2
err_has "--max and --duration go together"
run limit "$Q" --max 5 --duration 10 --remove
expect 2
run limit "$Q" --for 0
expect 2
err_has "--for"
run limit "$Q" --burst 3
expect 2
err_has "unknown option '--burst'"
run limit
expect 2
err_has "missing QUEUE"
run concurrency "$Q" 0
expect 2
err_has "invalid N '0'"
run concurrency "$Q" 2147483648
expect 2
err_has "invalid N"
run concurrency "$Q" 3 --remove
expect 2
run concurrency "$Q" x y
expect 2
run limit --help
expect 0
out_has "--max N --duration MS"
run work "$Q" --limit-max 2 -- true
expect 2
err_has "--limit-max and --limit-duration go together"
run work "$Q" --limit-max 0 --limit-duration 100 -- true
expect 2
err_has "--limit-max"

if [ "$BACKEND" = memory ]; then
	# completion (tools/completion/, read from --help): the verbs and their options
	name="bash completion of limit and concurrency"
	# shellcheck disable=SC1091
	got=$(PATH="$(dirname "$JOBQ"):$PATH" bash -c '
		. "$1"
		COMP_WORDS=(jobq conc); COMP_CWORD=1; _jobq; echo "${COMPREPLY[*]}"
		COMP_WORDS=(jobq lim); COMP_CWORD=1; _jobq; echo "${COMPREPLY[*]}"
		COMP_WORDS=(jobq limit q --d); COMP_CWORD=3; _jobq; echo "${COMPREPLY[*]}"
		COMP_WORDS=(jobq concurrency q --r); COMP_CWORD=3; _jobq; echo "${COMPREPLY[*]}"' _ \
		"$(dirname "$0")/../../tools/completion/jobq.bash" 2>&1)
	if [[ "$got" == *concurrency* && "$got" == *limit* && "$got" == *--duration* &&
		"$got" == *--remove* ]]; then pass; else out=$got fail "completion offered: $got"; fi
	run limit "$Q"
	expect 0
	out_is "none"
	echo "limits.$BACKEND: $checks checks, $failures failures"
	[ "$failures" = 0 ]
	exit
fi

# --- nothing changed by the refused calls ---------------------------------------------------
run limit "$Q"
expect 0
out_is "none"
run concurrency "$Q"
expect 0
out_is "none"

# --- set, read, replace, remove -------------------------------------------------------------
run limit "$Q" --max 5 --duration 1000
expect 0
out_is "5 jobs per 1000 ms"
run limit "$Q" --json
expect 0
json_ok
out_has '"max":5'
out_has '"duration":1000'
has_keys queue windowUsed windowLeftMs
run limit "$Q" --max 0 --duration 1000
expect 2
run limit "$Q" --json
out_has '"max":5'
run limit "$Q" --max 7 --duration 250
expect 0
out_is "7 jobs per 250 ms"
run concurrency "$Q" 3
expect 0
out_is "3"
run concurrency "$Q" -2
expect 2
run concurrency "$Q" --json
expect 0
json_ok
out_is '{"queue":"'"$Q"'","concurrency":3}'
run limit "$Q" --remove
expect 0
out_is "none"
run concurrency "$Q" --remove
expect 0
out_is "none"
run concurrency "$Q" --json
out_is '{"queue":"'"$Q"'","concurrency":null}'

# --- a worker with a limiter: at most N jobs per window (a window longer than the run) ------
for i in 1 2 3; do
	run add "$Q" n '{}'
	expect 0
done
run work "$Q" --limit-max 2 --limit-duration 600000 --idle-exit 300 -- cat
expect_work 0
run counts "$Q" --json
out_has '"completed":2'
out_has '"waiting":1'
run limit "$Q" --json
out_has '"windowUsed":2'

# --- rate-limit the queue now ---------------------------------------------------------------
run limit "$Q" --for 600000
expect 0
out_has "rate-limited for"
run limit "$Q" --json
out_has '"windowUsed":9007199254740991'

echo "limits.$BACKEND: $checks checks, $failures failures"
[ "$failures" = 0 ]
