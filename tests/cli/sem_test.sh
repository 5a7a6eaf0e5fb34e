#!/usr/bin/env bash
# BullMQ job semantics through the `jobq` command (issue 16), driven as a subprocess:
#
#   sem_test.sh JOBQ memory|lmdb|redis
#
# memory (each command has a store of its own): refusals of the new options. lmdb, redis:
# `jobq work --name` written on the jobs it runs (processedBy), `jobq work --remove-on-complete`
# / `--remove-on-fail` (the worker's keep policies; a job's own wins).
# Exits 0 when every check passed, 1 otherwise, 77 when the backend is not available.
set -u

JOBQ=${1:?usage: sem_test.sh JOBQ memory|lmdb|redis}
BACKEND=${2:?usage: sem_test.sh JOBQ memory|lmdb|redis}

. "$(dirname "$0")/lib.sh" "$JOBQ" "$BACKEND" sem

# --- refusals (any backend) -------------------------------------------------------------------
run work q --name 'a b' -- true
expect 2
err_has "worker name"
run work q --name '' -- true
expect 2
err_has "worker name"

run add q n '{}' --dedup-ttl 100
expect 2
err_has "need --dedup"
run add q n '{}' --dedup-keep-last
expect 2

if [ "$BACKEND" = memory ]; then
	echo "cli.sem.$BACKEND: $checks checks, $failures failures"
	[ "$failures" = 0 ]
	exit
fi

# --- worker name (processedBy) -----------------------------------------------------------------
run add "$Q" named '{}'
idn=$out
run work "$Q" --name sem-w1 --max-jobs 1 -- echo done
expect 0
run get "$Q" "$idn" --json
out_has "\"processedBy\":\"sem-w1\""
run get "$Q" "$idn"
out_has "worker:       sem-w1"
run add "$Q" unnamed '{}'
idu=$out
run work "$Q" --max-jobs 1 -- echo done
expect 0
run get "$Q" "$idu" --json
out_has "\"processedBy\":\"$(hostname):"

# --- worker keep policies: for jobs without their own; a job's own wins -------------------------
run add "$Q" plain '{}'
idp=$out
run add "$Q" own '{}' --remove-on-complete=5
ido=$out
run work "$Q" --remove-on-complete --max-jobs 2 -- echo done
expect 0
run get "$Q" "$idp"
expect 4
run get "$Q" "$ido" --json
out_has "\"state\":\"completed\""
run add "$Q" bad1 '{}'
run add "$Q" bad2 '{}'
idb2=$out
run work "$Q" --remove-on-fail=1 --max-jobs 2 -- sh -c 'exit 64'
expect_work 1
run list "$Q" failed --json
out_has "\"id\":\"$idb2\""
run counts "$Q" --json
out_has "\"failed\":1"
run work q --remove-on-fail=x -- true
expect 2

# --- deduplication from the command (BullMQ's deduplication, keepLastIfActive) -------------------
run add "$Q" d1 '{"v":1}' --dedup k1
idd=$out
run add "$Q" d2 '{"v":2}' --dedup k1 --json
expect 0
out_has "\"id\":\"$idd\""
out_has "\"outcome\":\"deduplicated\""
run add "$Q" d3 '{}' --dedup k1
err_has "holds dedup id 'k1'"
run add "$Q" d4 '{}' --dedup k2 --dedup-keep-last
expect 0

echo "cli.sem.$BACKEND: $checks checks, $failures failures"
[ "$failures" = 0 ]
