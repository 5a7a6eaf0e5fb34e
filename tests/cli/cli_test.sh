#!/usr/bin/env bash
# Drives the real `jobq` binary as a subprocess: every verb, every exit code, bad input.
#
#   cli_test.sh JOBQ memory|lmdb|redis
#
# memory: usage errors, help, store errors, bench and demo (a mem:// store lives only as long
# as one process, so verbs that need state across commands run on lmdb and redis).
# lmdb:   every verb on a fresh LMDB directory.
# redis:  every verb on the server at $JOBQ_TEST_REDIS_SOCKET (unique queue names per run).
# Exits 0 when every check passed, 1 otherwise, 77 when the backend is not available.
set -u

JOBQ=${1:?usage: cli_test.sh JOBQ memory|lmdb|redis}
BACKEND=${2:?usage: cli_test.sh JOBQ memory|lmdb|redis}

. "$(dirname "$0")/lib.sh" "$JOBQ" "$BACKEND" cli

# --- for every backend: help, usage errors, store errors ------------------------------------
run --help
expect 0
out_has "Verbs:"
out_has "Exit status"
run --version
expect 0
out_has "jobq "
for v in add get wait counts list pause resume drain obliterate clean retry promote remove \
	work events bench demo; do
	run "$v" --help
	expect 0
	out_has "Usage: jobq"
	out_has "Examples:"
	run help "$v"
	expect 0
	out_has "Usage: jobq"
done

run
expect 2
err_has "missing VERB"
run frobnicate
expect 2
err_has "unknown verb 'frobnicate'"
run --frob counts q
expect 2
err_has "unknown option '--frob'"
run counts q --frob
expect 2
err_has "unknown option '--frob'"
run -u
expect 2
err_has "needs a value"
run add
expect 2
err_has "missing QUEUE"
run add q
expect 2
err_has "missing job NAME"
run add q n '{"a":'
expect 2
err_has "invalid JSON data"
run --in 'not json' add q n -
expect 2
err_has "invalid JSON data"
run add q n '{}' extra
expect 2
err_has "unexpected argument 'extra'"
run add q n --priority abc
expect 2
err_has "invalid value 'abc' for --priority"
run add q n --priority 9999999
expect 2
err_has "--priority"
run add q n --attempts 0
expect 2
err_has "--attempts"
run add q n --delay -5
expect 2
err_has "invalid value '-5' for --delay"
run add q n --backoff quadratic:5
expect 2
err_has "expected fixed:MS, exponential:MS or linear:MS"
run add q n --lifo=3
expect 2
err_has "takes no value"
run add q n --remove-on-complete=x
expect 2
err_has "--remove-on-complete"
run add q n --delay
expect 2
err_has "needs a value"
run get q
expect 2
err_has "missing job ID"
run wait q
expect 2
run wait q 1 --timeout soon
expect 2
run counts
expect 2
run list q
expect 2
err_has "missing STATE"
run list q sleeping
expect 2
err_has "invalid STATE 'sleeping'"
run list q waiting --limit -1
expect 2
run clean q completed
expect 2
err_has "--grace"
run clean q completed --grace x
expect 2
run retry q
expect 2
err_has "--all-failed"
run retry q 1 --all-failed
expect 2
run promote q
expect 2
err_has "--all-delayed"
run remove q
expect 2
run pause
expect 2
run work q
expect 2
err_has "missing the command"
run work q -- /nonexistent/cmd
expect 2
err_has "not found"
run work q --concurrency 0 -- true
expect 2
err_has "--concurrency"
run work q --max-jobs x -- true
expect 2
run work q --timeout 0 -- true
expect 2
run events q --count 0
expect 2
run bench --jobs 0
expect 2
err_has "--jobs"
run bench --size x
expect 2
run demo --jobs -1
expect 2

# Bad URLs: malformed is a usage error; unreachable or unusable stores exit 3.
run -u bogus://x counts q
expect 2
err_has "bogus://x"
JOBQ_URL=bogus://x run counts q
expect 2
JOBQ_URL=bogus://x run -u "$URL" counts "$Q"
expect 4 # the URL given wins; the queue does not exist yet
err_has "no queue '$Q'"
run -u redis+unix:///nonexistent/jobq-test.sock counts q
expect 3
run -u redis://127.0.0.1:1 add q n '{}'
expect 3
run -u lmdb:/proc/jobq-cannot-create counts q
expect 3

# A job that does not exist (on every backend, memory included).
run get "$Q" 424242
expect 4
err_has "424242"
run get "$Q" 424242 --json
expect 4
run remove "$Q" 424242
expect 4
run wait "$Q" 424242 --timeout 100
expect 4

# Passwords in store URLs are never printed, however the URL is wrong.
run -u 'redis://:hunter2@127.0.0.1:1' counts q
expect 3
err_has "redis://:***@127.0.0.1:1"
err_lacks hunter2
run -u 'redis://alice:hunter2@127.0.0.1:1/?bogus=1' counts q
expect 2
err_has "alice:***@"
err_has "unknown query key 'bogus'"
err_lacks hunter2
long_prefix=$(printf 'p%.0s' $(seq 1 700))
run -u "redis://:hunter2@127.0.0.1:1/?prefix=$long_prefix&bogus=1" counts q
expect 2
err_has "$long_prefix&bogus=1: unknown query key 'bogus'"
err_lacks hunter2
run -u 'redis+unix:///nonexistent/jobq-test.sock?password=hunter2' counts q
expect 3
err_has "password=***"
err_lacks hunter2
run -u 'redis://:hunter2@127.0.0.1:1' demo --jobs 1
err_lacks hunter2
out_lacks hunter2

# Ids that name the queue's own storage keys are not found, and change nothing (a paused
# queue stays paused).
if [ "$BACKEND" != memory ]; then
	run pause "$Q"
	expect 0
	for rid in meta wait id events paused 1:lock de:x; do
		run remove "$Q" "$rid"
		expect 4
		err_has "no job '$rid'"
		run get "$Q" "$rid"
		expect 4
		run add "$Q" n '{}' --id "$rid"
		expect 2
	done
	run counts "$Q" --json
	expect 0
	out_has '"isPaused":true'
	run resume "$Q"
	expect 0
fi

# --- bench and demo: on memory, and (smaller) on the persistent backends --------------------
if [ "$BACKEND" = memory ]; then
	bench_jobs=2000
	demo_jobs=5000
else
	bench_jobs=200
	demo_jobs=500
fi
run bench --jobs $bench_jobs --samples 20 --json
expect 0
json_ok
has_keys backend jobs concurrency size add_per_s process_per_s pickup_p50_us pickup_p99_us
out_has "\"jobs\":$bench_jobs"
run bench --jobs $bench_jobs --samples 20 --concurrency 2 --size 10
expect 0
out_has "pickup"
out_has "process"
err_empty
run demo --jobs $demo_jobs
expect 0
out_has "completed $demo_jobs, failed 0"
out_has "retries"
err_empty
run demo --jobs $demo_jobs --json
expect 0
json_ok
out_has "\"completed\":$demo_jobs"
has_keys retries jobs_per_s counts

if [ "$BACKEND" = memory ]; then
	run add "$Q" n '{"a":1}'
	expect 0
	out_is 1
	run add "$Q" n '{"a":1}' --json
	expect 0
	json_ok
	has_keys id outcome
	# each command has a memory store of its own: the queue does not exist there
	run counts "$Q" --json
	expect 4
	err_has '"code":4'
	run events "$Q"
	expect 0
	run check
	expect 3
	err_has "no integrity check"
	echo "cli.$BACKEND: $checks checks, $failures failures"
	[ "$failures" = 0 ]
	exit
fi

# --- every verb on a persistent store -------------------------------------------------------
# add / get
run add "$Q" greet '{"who":"ann"}' --attempts 3 --backoff exponential:10
expect 0
id1=$out
[ -n "$id1" ] && pass || fail "no id printed"
run get "$Q" "$id1" --json
expect 0
json_ok
has_keys id name state data opts progress returnvalue failedReason stacktrace attemptsMade \
	attemptsStarted stalledCounter timestamp processedOn finishedOn delay priority
out_has "\"id\":\"$id1\""
out_has "\"name\":\"greet\""
out_has "\"state\":\"waiting\""
out_has "\"data\":{\"who\":\"ann\"}"
out_has "\"attempts\":3"
out_has "\"type\":\"exponential\""
out_has "\"attemptsMade\":0"
run get "$Q" "$id1"
expect 0
out_has "state:"
out_has "waiting"
# linear backoff (jobq's own type; BullMQ's opts name it as a custom strategy)
run add "$Q" lin '{}' --attempts 3 --backoff linear:25
expect 0
idl=$out
run get "$Q" "$idl" --json
expect 0
out_has "\"backoff\":{\"type\":\"linear\",\"delay\":25}"
run remove "$Q" "$idl"
expect 0
# what Node accepts, the command accepts as the C API does: \u0000, nesting past 2,048
# levels, three-part custom ids; refusals say why
run add "$Q" nul '{"s":"a\u0000b"}'
expect 0
idn=$out
run get "$Q" "$idn" --json
expect 0
out_has '"s":"a\u0000b"'
run remove "$Q" "$idn"
expect 0
deep_open=$(printf '%3000s' '' | tr ' ' '[')
deep_close=$(printf '%3000s' '' | tr ' ' ']')
run add "$Q" deep "${deep_open}1${deep_close}"
expect 0
run remove "$Q" "$out"
expect 0
run add "$Q" three '{}' --id a:b:c
expect 0
[ "$out" = "a:b:c" ] && pass || fail "three-part id printed as '$out'"
run remove "$Q" a:b:c
expect 0
run add "$Q" two '{}' --id a:b
expect 2
err_has "three-part form"

run --in '[1,2,3]' add "$Q" fromstdin -
expect 0
id2=$out
run get "$Q" "$id2" --json
out_has "\"data\":[1,2,3]"

run add "$Q" custom '"text"' --id my-job-1 --json
expect 0
json_ok
out_has "\"id\":\"my-job-1\""
out_has "\"outcome\":\"created\""
run add "$Q" custom '{}' --id my-job-1
expect 0
out_is my-job-1
err_has "already exists"

run add "$Q" later '{}' --delay 600000
expect 0
idd=$out
run get "$Q" "$idd" --json
out_has "\"state\":\"delayed\""
run add "$Q" urgent '{}' --priority 5
expect 0
idp=$out
run get "$Q" "$idp" --json
out_has "\"state\":\"prioritized\""
out_has "\"priority\":5"
run add "$Q" last '{}' --lifo --remove-on-complete=10 --remove-on-fail
expect 0
run get "$Q" "$out" --json
out_has "\"lifo\":true"
out_has "\"removeOnComplete\":10"
out_has "\"removeOnFail\":true"

# counts / list
run counts "$Q" --json
expect 0
json_ok
has_keys waiting active delayed prioritized completed failed paused
out_has "\"waiting\":4"
out_has "\"delayed\":1"
out_has "\"prioritized\":1"
run counts "$Q"
expect 0
out_has "waiting"
run list "$Q" waiting --json
expect 0
json_ok
out_has "\"id\":\"$id1\""
run list "$Q" waiting --limit 1 --json
expect 0
if [ "$(printf '%s' "$out" | grep -o '"attemptsStarted"' | wc -l)" = 1 ]; then pass; else
	fail "--limit 1 listed more than one job"; fi
run list "$Q" delayed
expect 0
out_has "$idd"

# promote
run promote "$Q" "$idd"
expect 0
run get "$Q" "$idd" --json
out_lacks "\"state\":\"delayed\""
run promote "$Q" "$idd"
expect 1
run promote "$Q" 424242
expect 4
run add "$Q" later '{}' --delay 600000
run promote "$Q" --all-delayed
expect 0
out_is 1

# pause / resume
run pause "$Q"
expect 0
run counts "$Q" --json
out_has "\"isPaused\":true"
run resume "$Q"
expect 0
run counts "$Q" --json
out_has "\"isPaused\":false"

# drain
run drain "$Q"
expect 0
run counts "$Q" --json
out_has "\"waiting\":0"
out_has "\"prioritized\":0"

# work: result from stdout (JSON kept), data on stdin
run add "$Q" double '{"x":21}'
idw=$out
run work "$Q" --max-jobs 1 -- sh -c 'read -r d; echo "{\"in\":$d,\"out\":42}"'
expect 0
run get "$Q" "$idw" --json
out_has "\"state\":\"completed\""
out_has "\"returnvalue\":{\"in\":{\"x\":21},\"out\":42}"
out_has "\"attemptsMade\":1"

# work: plain text output becomes a JSON string; the environment carries the job
run add "$Q" env-check '{}'
ide=$out
run work "$Q" --max-jobs 1 -- sh -c 'echo "$JOBQ_QUEUE|$JOBQ_JOB_ID|$JOBQ_JOB_NAME|$JOBQ_ATTEMPT"'
expect 0
run get "$Q" "$ide" --json
out_has "\"returnvalue\":\"$Q|$ide|env-check|1\""

# work: a failing command fails the attempt with the last line of stderr
run add "$Q" breaks '{}'
idf=$out
run work "$Q" --max-jobs 1 -- sh -c 'echo first >&2; echo "disk on fire" >&2; exit 3'
expect_work 1
run get "$Q" "$idf" --json
out_has "\"state\":\"failed\""
out_has "\"failedReason\":\"disk on fire\""
run list "$Q" failed
expect 0
out_has "disk on fire"

# retry: the failed job runs again and succeeds
run retry "$Q" "$idf"
expect 0
run get "$Q" "$idf" --json
out_has "\"state\":\"waiting\""
run retry "$Q" "$idf"
expect 1
run retry "$Q" 424242
expect 4
run work "$Q" --max-jobs 1 -- echo fixed
expect 0
run get "$Q" "$idf" --json
out_has "\"returnvalue\":\"fixed\""

# attempts: the second attempt succeeds (JOBQ_ATTEMPT counts attempts)
run add "$Q" flaky '{}' --attempts 3
idr=$out
run work "$Q" --max-jobs 2 -- sh -c '[ "$JOBQ_ATTEMPT" = 2 ] && echo ok || { echo "attempt $JOBQ_ATTEMPT" >&2; exit 1; }'
expect_work 1
run get "$Q" "$idr" --json
out_has "\"state\":\"completed\""
out_has "\"attemptsMade\":2"
out_has "\"returnvalue\":\"ok\""

# exit 64 fails the job for good, skipping the remaining attempts
run add "$Q" fatal '{}' --attempts 5
idu=$out
run work "$Q" --max-jobs 1 -- sh -c 'echo "bad input" >&2; exit 64'
expect_work 1
run get "$Q" "$idu" --json
out_has "\"state\":\"failed\""
out_has "\"attemptsMade\":1"
out_has "\"failedReason\":\"bad input\""

# --timeout kills the command and fails the attempt
run add "$Q" slow '{}'
idt=$out
run work "$Q" --max-jobs 1 --timeout 200 -- sleep 30
expect_work 1
run get "$Q" "$idt" --json
out_has "\"state\":\"failed\""
out_has "timed out"

# retry --all-failed
run retry "$Q" --all-failed
expect 0
out_is 2
run counts "$Q" --json
out_has "\"failed\":0"

# --idle-exit stops a worker without jobs; other worker options are accepted
run drain "$Q"
run work "$Q" --idle-exit 200 --concurrency 3 --lock-ms 5000 --stalled-interval 1000 \
	--max-stalled 2 -- true
expect 0

# --concurrency: four jobs that each wait for all four to have started
barrier="$tmp/barrier"
mkdir -p "$barrier"
for i in 1 2 3 4; do run add "$Q" par "{\"i\":$i}"; done
# shellcheck disable=SC2016
run work "$Q" --concurrency 4 --max-jobs 4 --timeout $((20000 * MULT)) -- sh -c \
	'touch "$0/$JOBQ_JOB_ID"; while [ "$(ls "$0" | wc -l)" -lt 4 ]; do sleep 0.01; done; echo together' "$barrier"
expect 0
run list "$Q" completed --limit 0 --json
if [ "$(printf '%s' "$out" | grep -o '"returnvalue":"together"' | wc -l)" = 4 ]; then pass; else
	fail "four jobs did not run at the same time"; fi

# wait: for a job processed by a worker in the background
run add "$Q" waited '{"n":7}'
idx=$out
"$JOBQ" work "$Q" --max-jobs 1 -- sh -c 'cat' >/dev/null 2>&1 &
bg_pids+=($!)
run wait "$Q" "$idx" --timeout $((20000 * MULT))
expect 0
out_is '{"n":7}'
run wait "$Q" "$idx" --json
expect 0
json_ok
out_has "\"state\":\"completed\""
run add "$Q" refused '{}' --attempts 3
idv=$out
run work "$Q" --max-jobs 1 -- sh -c 'echo "bad input" >&2; exit 64'
run wait "$Q" "$idv"
expect 1
err_has "bad input"
run add "$Q" nobody '{}'
idn=$out
run wait "$Q" "$idn" --timeout 100
expect 5
err_has "did not finish"

# SIGTERM and SIGINT: the running command finishes, the worker exits 0, the job completes
graceful() {
	local sig=$1 gq="$Q-$1" gate="$tmp/gate-$1" wpid idg
	run add "$gq" graceful '{}'
	idg=$out
	"$JOBQ" work "$gq" --shutdown-timeout $((20000 * MULT)) -- sh -c \
		'touch "$0.started"; while [ ! -e "$0" ]; do sleep 0.01; done; echo finished' "$gate" \
		>"$tmp/w.out" 2>"$tmp/w.err" &
	wpid=$!
	bg_pids+=($wpid)
	name="work $sig"
	if until_true 20 test -e "$gate.started"; then pass; else fail "the command did not start"; fi
	if [ "$sig" = TERM ]; then # an active, locked job is not removed
		run remove "$gq" "$idg"
		expect 1
		err_has "active"
		run obliterate "$gq"
		expect 1
		err_has "active"
		run counts "$gq" --json
		out_has "\"active\":1"
	fi
	kill -"$sig" $wpid
	touch "$gate"
	wait $wpid
	rc=$?
	out=$(cat "$tmp/w.out")
	err=$(cat "$tmp/w.err")
	if [ "$rc" = 0 ]; then pass; else fail "work exited $rc after $sig"; fi
	run get "$gq" "$idg" --json
	out_has "\"state\":\"completed\""
	out_has "\"returnvalue\":\"finished\""
	run obliterate "$gq"
}
graceful TERM
graceful INT

# events
run events "$Q"
expect 0
out_has "added"
out_has "completed"
run events "$Q" --json --count 3
expect 0
if [ "$(printf '%s\n' "$out" | grep -c '"event":')" = 3 ]; then pass; else
	fail "expected three JSON events"; fi
"$JOBQ" events "$Q" --follow --json --count 1 >"$tmp/ev.out" 2>"$tmp/ev.err" &
epid=$!
bg_pids+=($epid)
# Keep adding until the follower (which starts at "now") has seen an event.
name="events --follow"
add_one() {
	"$JOBQ" add "$Q" followed '{}' >/dev/null 2>&1
	! kill -0 $epid 2>/dev/null
}
if until_true 20 add_one; then pass; else fail "events --follow saw nothing"; fi
wait $epid
rc=$?
out=$(cat "$tmp/ev.out")
err=$(cat "$tmp/ev.err")
expect 0
json_ok
has_keys id event

# clean and remove
run clean "$Q" completed --grace 0 --limit 2
expect 0
out_is 2
run clean "$Q" completed --grace 0 --json
expect 0
json_ok
has_keys removed ids
run counts "$Q" --json
out_has "\"completed\":0"
run add "$Q" doomed '{}'
idz=$out
run remove "$Q" "$idz"
expect 0
run get "$Q" "$idz"
expect 4
run remove "$Q" "$idz"
expect 4

# obliterate
run obliterate "$Q" --force
expect 0
run counts "$Q" --json
if [ "$BACKEND" = redis ]; then # every key is gone: the queue is no more
	expect 4
else # LMDB keeps the queue's event sequence, so the queue stays, empty
	out_has "\"waiting\":0"
	out_has "\"completed\":0"
	out_has "\"failed\":0"
fi

# The default store is lmdb:jobq-data in the current directory.
if [ "$BACKEND" = lmdb ]; then
	mkdir -p "$tmp/cwd"
	name="default store"
	(cd "$tmp/cwd" && env -u JOBQ_URL "$JOBQ" add dq n '{}' >/dev/null 2>&1)
	if [ -d "$tmp/cwd/jobq-data" ]; then pass; else fail "no ./jobq-data created"; fi
	out=$(cd "$tmp/cwd" && env -u JOBQ_URL "$JOBQ" counts dq --json 2>&1)
	out_has "\"waiting\":1"
fi

# check: clean (0), damaged (1), unusable (3).
if [ "$BACKEND" = lmdb ]; then
	run check
	expect 0
	out_has ": 0 problems"
	run check --json
	expect 0
	json_ok
	has_keys queues jobs entries problems messages
	cs="lmdb:$tmp/check-store"
	run -u "$cs" add cq n '{}'
	expect 0
	name="mdb_load a dangling waiting entry"
	if command -v mdb_load >/dev/null; then
		# the waiting index of queue "cq" gets an entry naming job 999999, which does not exist
		printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6371007fffffffffffff00\n 393939393939\nDATA=END\n' |
			mdb_load -s wait "$tmp/check-store"
		run -u "$cs" check
		expect 1
		out_has "names job 999999, which does not exist"
		out_has "its counter says 1 waiting, the index holds 2"
		run -u "$cs" check --json
		expect 1
		out_has "\"problems\":2"
	elif [ -n "${CI:-}" ]; then
		fail "mdb_load (lmdb-utils) is not installed"
	else
		echo "note: mdb_load (lmdb-utils) not installed, damaged-store check skipped"
	fi
	: >"$tmp/check-store/data.mdb"
	run -u "$cs" check
	expect 3
	err_has "truncated"
fi

# --- flow: a parent and its children from JSON; get shows its dependencies --------------------
F="$Q-flow"
flow_json="{\"name\":\"p\",\"queueName\":\"$F\",\"data\":{\"p\":1},\"children\":[{\"name\":\"c\",\"queueName\":\"$F-c\"},{\"name\":\"d\",\"opts\":{\"ignoreDependencyOnFailure\":true}}]}"
run --in "{\"name\":\"p\",\"queueName\":\"$F\",\"opts\":{\"bogus\":1}}" flow
expect 2
err_has "unknown option opts.bogus"
run --in '{"name":' flow
expect 2
if [ "$BACKEND" = redis ]; then
	run --in "$flow_json" flow --json
	expect 0
	json_ok
	has_keys job children id queueName
	pid=$(printf '%s' "$out" | sed 's/^{"job":{"id":"\([^"]*\)".*/\1/')
	run get "$F" "$pid"
	expect 0
	out_has "waiting-children"
	out_has "2 pending, 0 processed"
	out_has "bull:$F-c:"
	run get "$F" "$pid" --json
	expect 0
	json_ok
	has_keys dependencies unprocessed processed ignored failed childrenValues
	run list "$F" waiting-children
	expect 0
	out_has "$pid"
	run counts "$F"
	expect 0
	out_has "waiting-children 1"
	printf '%s' "$flow_json" >"$tmp/flow.json"
	run flow "$tmp/flow.json"
	expect 0
	out_has "$F-c"
	run --in "{\"name\":\"c\",\"queueName\":\"$F\",\"opts\":{\"parent\":{\"id\":\"nope\",\"queue\":\"bull:$F\"}}}" flow
	expect 4
	err_has "does not exist"
else
	run --in "$flow_json" flow
	expect 3
	err_has "no flows yet"
fi

echo "cli.$BACKEND: $checks checks, $failures failures"
[ "$failures" = 0 ]
