#!/usr/bin/env bash
# The operator's side of the `jobq` command, driven as a subprocess:
#
#   ops_test.sh JOBQ memory|lmdb|redis
#
# memory: usage errors and exit codes of the operator verbs, --json errors, completion.
# lmdb, redis: work's log lines (text, JSON, -q), a command reporting progress and log lines
# on JOBQ_REPORT_FD, --stderr-log, progress/log/logs, queues, stats, metrics --prometheus
# (checked line by line), serve-metrics scraped with curl, health, top under tmux, list's
# header and totals, obliterate --force, wait's timeout. Redis also: workers counted, and
# work exiting 3 when its private server goes away.
# Exits 0 when every check passed, 1 otherwise, 77 when the backend is not available.
set -u

JOBQ=${1:?usage: ops_test.sh JOBQ memory|lmdb|redis}
BACKEND=${2:?usage: ops_test.sh JOBQ memory|lmdb|redis}

. "$(dirname "$0")/lib.sh" "$JOBQ" "$BACKEND" ops
here=$(cd "$(dirname "$0")" && pwd)

# prom_ok TEXT: every line of TEXT is a HELP or TYPE comment or a sample of a family whose
# TYPE came before, with a numeric value; prints the first bad line.
prom_ok() {
	printf '%s\n' "$1" | awk '
		/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
		/^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (gauge|counter|summary|histogram|untyped)$/ {
			typed[$3] = 1; next }
		/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+$/ {
			name = $0; sub(/[{ ].*/, "", name); base = name
			sub(/_(sum|count)$/, "", base)
			if (!(name in typed) && !(base in typed)) { print "untyped: " $0; bad = 1; exit 1 }
			n++; next }
		{ print "bad line: " $0; bad = 1; exit 1 }
		END { if (!bad && n == 0) { print "no samples"; exit 1 } }'
}

# --- every backend: usage errors and exit codes ---------------------------------------------
run progress q 1 'not json'
expect 2
err_has "not JSON"
run progress q 1
expect 2
err_has "missing the progress"
run log q
expect 2
err_has "missing ID"
run metrics
expect 2
err_has "--prometheus"
run serve-metrics
expect 2
err_has "--listen"
run serve-metrics --listen nowhere:port
expect 2
err_has "invalid --listen"
run top --interval 5
expect 2
run work q --log xml -- true
expect 2
err_has "invalid --log 'xml'"
run --json list q sleeping
expect 2
json_ok_err() {
	if command -v jq >/dev/null 2>&1 && ! printf '%s' "$err" | jq -e '.error.code == '"$1"' and (.error.message | length > 0)' >/dev/null; then
		fail "stderr is not a JSON error with code $1"
	else
		pass
	fi
}
json_ok_err 2
err_has '"kind":"usage"'
run -u redis+unix:///nonexistent/jobq-ops.sock --json counts q
expect 3
json_ok_err 3
run stats "no-such-queue-$$"
expect 4
err_has "no queue"
run health
expect 0
out_has "store answers"
run --help
for v in queues stats metrics serve-metrics health top progress log logs; do
	out_has "  $v "
done

# bash completion: verbs, a verb's options, states
if command -v bash >/dev/null; then
	name="bash completion"
	# shellcheck disable=SC1091
	got=$(PATH="$(dirname "$JOBQ"):$PATH" bash -c '
		. "$1"
		COMP_WORDS=(jobq que); COMP_CWORD=1; _jobq; echo "${COMPREPLY[*]}"
		COMP_WORDS=(jobq work q --stderr); COMP_CWORD=3; _jobq; echo "${COMPREPLY[*]}"
		COMP_WORDS=(jobq list q fa); COMP_CWORD=3; _jobq; echo "${COMPREPLY[*]}"' _ \
		"$here/../../tools/completion/jobq.bash" 2>&1)
	if [[ "$got" == *queues* && "$got" == *--stderr-log* && "$got" == *failed* ]]; then pass; else
		out=$got fail "completion offered: $got"; fi
fi
if command -v zsh >/dev/null; then
	name="zsh completion parses"
	if zsh -n "$here/../../tools/completion/_jobq"; then pass; else fail "zsh -n"; fi
fi

if [ "$BACKEND" = memory ]; then
	run queues
	expect 0
	out_is "$(printf 'QUEUE\tWAITING\tACTIVE\tDELAYED\tPRIORITIZED\tCOMPLETED\tFAILED\tPAUSED')"
	run logs q 1
	expect 4
	echo "ops.$BACKEND: $checks checks, $failures failures"
	[ "$failures" = 0 ]
	exit
fi

# --- a command that reports -----------------------------------------------------------------
run add "$Q" report '{"n":1}'
id1=$out
# shellcheck disable=SC2016
run work "$Q" --max-jobs 1 --stderr-log=2 -- sh -c '
	echo "progress 40" >&"$JOBQ_REPORT_FD"
	echo "log first line" >&"$JOBQ_REPORT_FD"
	echo "progress {\"done\":2}" >&"$JOBQ_REPORT_FD"
	printf "log no newline" >&"$JOBQ_REPORT_FD"
	echo e1 >&2; echo e2 >&2; echo e3 >&2
	echo ok'
expect 0
err_has "job $id1 (report) completed in"
run get "$Q" "$id1" --json
out_has '"progress":{"done":2}'
run logs "$Q" "$id1"
expect 0
out_is "$(printf 'first line\nno newline\ne2\ne3')"
run logs "$Q" "$id1" --json
json_ok
out_has '"count":4'
run get "$Q" "$id1" --json
out_has '"logs":["first line","no newline","e2","e3"]'
run get "$Q" "$id1"
out_has "logs:         4 lines, the last: e3"

# progress, log, logs verbs
run progress "$Q" "$id1" '{"step":9}'
expect 0
run get "$Q" "$id1" --json
out_has '"progress":{"step":9}'
run log "$Q" "$id1" 'by hand'
expect 0
run --in $'piped 1\npiped 2\n' log "$Q" "$id1" -
expect 0
run logs "$Q" "$id1"
out_has "by hand"
out_has "piped 2"
run logs "$Q" 424242
expect 4
run progress "$Q" 424242 1
expect 4
run log "$Q" 424242 x
expect 4

# log lines: JSON, one object each; a job that fails for good is a warning; -q keeps it
run add "$Q" doomed '{}'
idf=$out
run work "$Q" --max-jobs 1 --log json -- sh -c 'echo "it broke" >&2; exit 2'
expect_work 1
name="work --log json"
lines=$(printf '%s\n' "$err" | grep '^{')
if [ -n "$lines" ] && { ! command -v jq >/dev/null || printf '%s\n' "$lines" | jq -e 'has("time") and has("level") and has("message")' >/dev/null; }; then
	pass
else fail "no JSON log lines"; fi
err_has "\"level\":\"warn\""
err_has "job $idf failed for good after 1 attempt: it broke"
err_has "\"job\":\"$idf\""
run add "$Q" quiet '{}'
run -q work "$Q" --max-jobs 1 -- true
expect 0
err_lacks "completed in"

# --- overview -------------------------------------------------------------------------------
run add "$Q" waits '{}' --priority 3
run add "$Q" later '{}' --delay 600000
idd=$out
run queues
expect 0
out_has "$(printf '%s\t' "$Q")"
run queues --json
json_ok
out_has "{\"name\":\"$Q\",\"counts\":{"
run counts "no-such-queue-$$"
expect 4
run stats "$Q" --json
expect 0
json_ok
has_keys completedPerMinute failedPerMinute workers oldestWaitingMs processingMs p50
out_has '"completedPerMinute":2'
out_has '"failedPerMinute":1'
run stats "$Q"
expect 0
out_has "completed/min 2"

run metrics --prometheus
expect 0
name="metrics --prometheus format"
bad=$(prom_ok "$out")
if [ -z "$bad" ]; then pass; else fail "$bad"; fi
out_has "jobq_jobs{queue=\"$Q\",state=\"completed\"} 2"
out_has "jobq_jobs{queue=\"$Q\",state=\"failed\"} 1"
out_has "jobq_jobs{queue=\"$Q\",state=\"delayed\"} 1"
out_has "jobq_processing_seconds_count{queue=\"$Q\"} 2"
out_has "jobq_up 1"
run metrics --prometheus "no-such-queue-$$"
expect 4

# BullMQ's metrics kept by `work --metrics`, read by `metrics QUEUE`, stats and Prometheus
QM="$Q-metrics"
for n in 1 2 3; do run add "$QM" ok "{\"n\":$n}"; done
run add "$QM" bad '{}'
run work "$QM" --max-jobs 4 --metrics 5 -- sh -c 'cat >/dev/null; [ "$JOBQ_JOB_NAME" = ok ]'
expect_work 1
run metrics "$QM" --json
expect 0
json_ok
out_has '"completed":{"meta":{"count":3,'
out_has '"failed":{"meta":{"count":1,'
run metrics "$QM"
expect 0
out_has "completed: 3 in all"
run stats "$QM" --json
expect 0
out_has '"completedPerMinute":3'
out_has '"completedTotal":3'
out_has '"failedTotal":1'
run stats "$Q" --json
out_has '"completedTotal":null'
run metrics --prometheus "$QM"
expect 0
out_has "jobq_completed_total{queue=\"$QM\"} 3"
out_has "jobq_failed_total{queue=\"$QM\"} 1"
run metrics "no-such-queue-$$"
expect 4
run metrics "$QM" "$Q"
expect 2
run work "$QM" --metrics 0 -- true
expect 2

# serve-metrics on a free port, scraped with curl
if command -v curl >/dev/null; then
	"$JOBQ" serve-metrics --listen 127.0.0.1:0 "$Q" >"$tmp/serve.out" 2>"$tmp/serve.err" &
	spid=$!
	bg_pids+=($spid)
	name="serve-metrics listens"
	if until_true 10 grep -q "^listening on http://127.0.0.1:[0-9]*/metrics" "$tmp/serve.out"; then
		pass
		base=$(sed -n 's|^listening on \(http://127.0.0.1:[0-9]*\)/metrics|\1|p' "$tmp/serve.out")
		name="GET /metrics"
		out=$(curl -sS -i "$base/metrics" 2>&1)
		out_has "200 OK"
		out_has "text/plain; version=0.0.4"
		out=$(curl -sS "$base/metrics" 2>&1)
		bad=$(prom_ok "$out")
		if [ -z "$bad" ]; then pass; else fail "$bad"; fi
		out_has "jobq_jobs{queue=\"$Q\",state=\"completed\"} 2"
		name="GET /healthz"
		out=$(curl -sS -w ' %{http_code}' "$base/healthz" 2>&1)
		out_is "ok
 200"
		name="GET /nope"
		out=$(curl -sS -o /dev/null -w '%{http_code}' "$base/nope" 2>&1)
		out_is 404
	else
		fail "no 'listening on' line: $(cat "$tmp/serve.out" "$tmp/serve.err")"
	fi
	kill -TERM $spid
	wait $spid
	rc=$?
	name="serve-metrics stops on SIGTERM"
	if [ "$rc" = 0 ]; then pass; else fail "exit $rc"; fi
fi

# list: header, columns per state, the total and the next offset
run list "$Q" delayed
expect 0
out_has "$(printf 'ID\tNAME\tRUN-AT\tATTEMPTS')"
out_has "$(printf '%s\tlater\t' "$idd")"
for i in 1 2 3; do run add "$Q" many '{}'; done
run list "$Q" waiting --limit 2
expect 0
err_has "2 of 3 waiting jobs shown"
err_has "--offset 2"
run list "$Q" waiting --limit 2 --offset 2 --json
json_ok
out_has '"total":3'
out_has '"more":false'

# wait: its own exit code for a timeout
run wait "$Q" "$idd" --timeout 50
expect 5
err_has "did not finish within 50 ms"

# health
run health "$Q"
expect 0
run health "no-such-queue-$$"
expect 4
run --json health
json_ok
out_has '"ok":true'

# --- top under tmux -------------------------------------------------------------------------
if command -v tmux >/dev/null; then
	tsock="jobq-ops-$$"
	tmx() { tmux -L "$tsock" "$@"; }
	pane() { tmx capture-pane -p -t top 2>/dev/null; }
	pane_has() { pane | grep -qF -- "$1"; }
	top_gone() { ! tmx has-session -t top 2>/dev/null; }
	tmx -f /dev/null new-session -d -s top -x 160 -y 30 \
		"JOBQ_URL='$URL' '$JOBQ' top '$Q' --interval 200; echo exited \$? > '$tmp/top.rc'; sleep 30"
	name="top draws the store"
	if until_true 10 pane_has "jobq top"; then pass; else fail "no header: $(pane)"; fi
	if until_true 10 pane_has "$Q"; then pass; else fail "no row for $Q: $(pane)"; fi
	pane_has "WAITING" && pass || fail "no column header"
	row=$(pane | grep -F -- "$Q" | head -1)
	if [[ "$row" =~ ^$Q\ +3\ +0\ +1\ +1\ +2\ +1\  ]]; then pass; else fail "row: $row"; fi
	name="top refreshes in place"
	run add "$Q" more '{}'
	if until_true 10 sh -c "tmux -L '$tsock' capture-pane -p -t top | grep -F -- '$Q' | grep -qE '^$Q +4 '"; then
		pass
	else fail "the count did not change: $(pane)"; fi
	if [ "$(pane | grep -c 'jobq top')" = 1 ]; then pass; else fail "frames not redrawn in place"; fi
	name="top quits on q"
	tmx send-keys -t top q
	if until_true 10 test -s "$tmp/top.rc"; then pass; else fail "still running: $(pane)"; fi
	if grep -q "exited 0" "$tmp/top.rc" 2>/dev/null; then pass; else fail "$(cat "$tmp/top.rc")"; fi
	tmx kill-server 2>/dev/null
fi

# --- Redis: workers counted; work gives up on a server that went away ------------------------
if [ "$BACKEND" = redis ]; then
	run health "$Q" --min-workers 1
	expect 1
	err_has "fewer than 1"
	"$JOBQ" work "$Q" -- true >/dev/null 2>&1 &
	wpid=$!
	bg_pids+=($wpid)
	name="a worker is counted"
	workers_one() { "$JOBQ" stats "$Q" --json 2>/dev/null | grep -q '"workers":1'; }
	if until_true 20 workers_one; then pass; else fail "stats never saw the worker"; fi
	run health "$Q" --min-workers 1
	expect 0
	run metrics --prometheus "$Q"
	out_has "jobq_workers{queue=\"$Q\"} 1"
	kill -TERM $wpid
	wait $wpid

	rdir="$tmp/redis"
	if sh "$here/../support/redis.sh" start "$rdir" >/dev/null 2>&1; then
		rurl="redis+unix://$rdir/redis.sock"
		"$JOBQ" -u "$rurl" add gone n '{}' >/dev/null
		"$JOBQ" -u "$rurl" work gone --idle-exit $((1500 * MULT)) -- true \
			>"$tmp/gone.out" 2>"$tmp/gone.err" &
		gpid=$!
		bg_pids+=($gpid)
		name="work before the outage"
		if until_true 20 grep -q "completed in" "$tmp/gone.err"; then pass; else
			fail "$(cat "$tmp/gone.err")"; fi
		sh "$here/../support/redis.sh" stop "$rdir"
		wait $gpid
		rc=$?
		out=$(cat "$tmp/gone.out")
		err=$(cat "$tmp/gone.err")
		name="work exits 3 when the store went away"
		if [ "$rc" = 3 ]; then pass; else fail "exit $rc"; fi
		err_has "store outage"
		err_has "lost"
		err_has "stopped while the store is unreachable"
	else
		name="private redis"
		fail "cannot start a private redis-server"
	fi
fi

if [ "$BACKEND" = lmdb ]; then
	run health "$Q" --min-workers 1
	expect 2
	err_has "cannot count workers"
fi

# --- obliterate -----------------------------------------------------------------------------
run obliterate "$Q"
expect 1
err_has "use --force"
run counts "$Q" --json
out_has '"delayed":1'
run obliterate "$Q" --force
expect 0

echo "ops.$BACKEND: $checks checks, $failures failures"
[ "$failures" = 0 ]
