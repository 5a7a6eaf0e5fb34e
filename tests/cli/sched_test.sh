#!/usr/bin/env bash
# The job scheduler verbs of the `jobq` command (schedule, schedulers, unschedule), driven as
# a subprocess:
#
#   sched_test.sh JOBQ memory|lmdb|redis
#
# every backend: usage errors and bad input (exit 2, one line naming what is wrong). lmdb,
# redis: the same refused as an update of an existing scheduler changes nothing; a
# scheduler every 200 ms run by `jobq work` for several iterations with one pending at a time,
# a cron scheduler with a zone and a limit, the listing (text and --json), an update, removal.
# Exits 0 when every check passed, 1 otherwise, 77 when the backend is not available.
set -u

JOBQ=${1:?usage: sched_test.sh JOBQ memory|lmdb|redis}
BACKEND=${2:?usage: sched_test.sh JOBQ memory|lmdb|redis}

. "$(dirname "$0")/lib.sh" "$JOBQ" "$BACKEND" sched

# --- every backend: usage errors and bad input ---------------------------------------------
run schedule "$Q" s
expect 2
err_has "one of --every MS and --cron PATTERN"
run schedule "$Q" s --every 100 --cron '* * * * *'
expect 2
err_has "--every and --cron together"
run schedule "$Q" s --every 100 --limit 0
expect 2
err_has "--limit"
run schedule "$Q" s --every 100 --start yesterday
expect 2
err_has "--start"
run schedule "$Q" s --every 100 tick '{nope'
expect 2
err_has "invalid JSON"
run schedule "$Q"
expect 2
err_has "missing scheduler ID"
run unschedule "$Q"
expect 2

# --- bad input the library refuses (every backend): the field, the zone, the dates -------------
bad_input() { # the refusals, for scheduler id $1
	local field
	while IFS='|' read -r pattern field; do
		run schedule "$Q" "$1" --cron "$pattern"
		expect 2
		err_has "$field field"
	done <<-'EOF'
		60 * * * *|minute
		* 24 * * *|hour
		* * 32 * *|day of month
		* * * 13 *|month
		* * * * 8|day of week
		60 * * * * *|second
	EOF
	run schedule "$Q" "$1" --cron '* * * * *' --tz Nowhere/Atlantis
	expect 2
	err_has "Nowhere/Atlantis"
	run schedule "$Q" "$1" --every 100 --start 2030-01-02T00:00Z --end 2030-01-01T00:00Z
	expect 2
	err_has "the end date is not after the start date"
	run schedule "$Q" "$1" --every 100 --end 2001-01-01T00:00Z
	expect 2
	err_has "the end date is already past"
	run schedule "$Q" "$1" --every 100 --limit 0
	expect 2
	err_has "--limit"
	run schedule "$Q" "$1" --every 100 --cron '* * * * *'
	expect 2
	err_has "--every and --cron together"
	run schedule "$Q" "$1" --every 100 --tz Europe/Paris
	expect 2
	err_has "time zone needs a pattern"
}
bad_input s
run schedule "$Q" 'a:b' --every 100
expect 2
err_has "':'"

if [ "$BACKEND" = memory ]; then
	# a memory store lives as long as one command: nothing more to see from outside
	echo "sched.$BACKEND: $checks checks, $failures failures"
	[ "$failures" = 0 ]
	exit
fi

# nothing was created
run schedulers "$Q" --json
expect 0
out_is "[]"

# --- every 200 ms, run by jobq work -----------------------------------------------------------
run schedule "$Q" tick --every 200 beat '{"n":1}' --attempts 2
expect 0
first=$out
if [[ "$first" == repeat:tick:* ]]; then pass; else fail "iteration id '$first'"; fi
run get "$Q" "$first" --json
expect 0
out_has '"name":"beat"'
out_has '"data":{"n":1}'
run schedulers "$Q"
expect 0
out_has "tick	beat	every 200ms"
run work "$Q" --max-jobs 4 -- cat
expect_work 0
run schedulers "$Q" --json
expect 0
json_ok
has_keys key name next iterationCount every offset template
out_has '"iterationCount":5'
out_has '"template":{"data":{"n":1},"opts":{"attempts":2}}'
pending() { # the scheduler's pending iterations (waiting or delayed)
	{ "$JOBQ" list "$Q" waiting; "$JOBQ" list "$Q" delayed; } 2>/dev/null | grep -c "repeat:tick:"
}
n=$(pending)
if [ "$n" = 1 ]; then pass; else fail "$n pending iterations, expected 1"; fi
run counts "$Q" --json
out_has '"completed":4'

# --- an update replaces the pending iteration; removal ----------------------------------------
run schedule "$Q" tick --every 200 beat2
expect 0
n=$(pending)
if [ "$n" = 1 ]; then pass; else fail "$n pending iterations after the update, expected 1"; fi
run get "$Q" "$out" --json
out_has '"name":"beat2"'
run schedulers "$Q" --json
out_has '"iterationCount":5'
# a refused update of it changes nothing: the same listing, the same pending iteration
before=$out
before_pending=$({ "$JOBQ" list "$Q" waiting; "$JOBQ" list "$Q" delayed; } 2>/dev/null)
bad_input tick
run schedulers "$Q" --json
out_is "$before"
after_pending=$({ "$JOBQ" list "$Q" waiting; "$JOBQ" list "$Q" delayed; } 2>/dev/null)
if [ "$after_pending" = "$before_pending" ]; then pass; else fail "pending jobs changed by refused updates"; fi

# --- a cron pattern in a zone, with a limit -----------------------------------------------------
run schedule "$Q" nightly --cron '0 30 2 * * *' --tz Europe/Paris --limit 3 --json
expect 0
json_ok
has_keys scheduler iteration next
run schedulers "$Q"
out_has "nightly	nightly	cron '0 30 2 * * *' Europe/Paris"
out_has "1/3"
run schedulers "$Q" --json
out_has '"pattern":"0 30 2 * * *"'
out_has '"tz":"Europe/Paris"'
out_has '"limit":3'

run unschedule "$Q" nightly
expect 0
run unschedule "$Q" nightly
expect 4
run unschedule "$Q" tick
expect 0
run schedulers "$Q" --json
out_is "[]"

echo "sched.$BACKEND: $checks checks, $failures failures"
[ "$failures" = 0 ]
