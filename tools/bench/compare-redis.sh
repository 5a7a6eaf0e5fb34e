#!/usr/bin/env bash
# jobq versus Node BullMQ on one private redis-server (unix socket, no persistence), same
# workloads, same run:
#   tools/bench/compare-redis.sh [JOBQ_BINARY]
#   env: JOBS (default 10000), CONCURRENCIES (default "1 10 100"), SIZE (payload bytes, 100),
#        JOBQ_BULLMQ_MODULES (node_modules holding bullmq; default tests/interop's, 6.7.0),
#        SCRIPT_COST (1: also measure the scripts alone, see below; default 1)
# Needs redis-server, node, cc and `npm ci` (or npm install) done in tests/interop. Use a
# Release build of the jobq binary (default build/release/tools/jobq); the helpers below are
# built against that binary's build tree (libjobq.a, generated/jobq_lua.c).
#
# For each concurrency C it runs `jobq bench` then bullmq_bench.js and prints both figures
# and the ratio jobq/BullMQ:
#   add one at a time     one add awaited after the other
#   add, C in flight      Node: C add() calls in flight (ioredis pipelines them); jobq: its
#                         add is synchronous, so C threads each calling jobq_queue_add
#                         (tools/bench/redis_add_threads.c); not run for C = 1
#   add bulk              batches of 1000
#   process               2*JOBS waiting jobs, empty handler, C concurrent handlers
# and jobq's pickup latency of an idle worker (add to handler start).
# Then (SCRIPT_COST=1) tools/bench/redis_script_cost.c: the Redis server's CPU time per job of
# jobq's add and complete-and-fetch scripts against the minimal script doing the same
# atomic step, in a pipelined loop without jobq's client.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jobq=${1:-$root/build/release/tools/jobq}
jobs=${JOBS:-10000}
size=${SIZE:-100}
concs=${CONCURRENCIES:-1 10 100}
script_cost=${SCRIPT_COST:-1}
[ -x "$jobq" ] || { echo "no jobq binary at $jobq (build a Release first)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not found" >&2; exit 2; }
command -v node >/dev/null || { echo "node not found" >&2; exit 2; }
build=$(cd "$(dirname "$jobq")/.." && pwd)

dir=$(mktemp -d /tmp/jobq-bench-redis.XXXXXX)
sock=$dir/redis.sock
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no \
	--daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" \
	--maxmemory-policy noeviction
cleanup() {
	[ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do
	redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && break
	sleep 0.05
done

# helpers, built against the jobq build tree of the binary
cc=${CC:-cc}
add_threads=
if [ -f "$build/libjobq.a" ] &&
	"$cc" -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/include" \
		"$here/redis_add_threads.c" "$build/libjobq.a" \
		-lhiredis -llmdb -ljansson -lmsgpackc -lpthread -lm -o "$dir/add_threads" 2>"$dir/cc.log"; then
	add_threads=$dir/add_threads
else
	echo "note: cannot build redis_add_threads against $build (see below); no in-flight add row" >&2
	cat "$dir/cc.log" >&2 2>/dev/null || true
fi

field() { node -e 'const o=JSON.parse(process.argv[1]);console.log(o[process.argv[2]]??"-")' "$1" "$2"; }
ratio() { node -e 'const [a,b]=process.argv.slice(1).map(Number);console.log(b>0&&a>0?(a/b).toFixed(2):"-")' "$1" "$2"; }

echo "redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), unix socket, no persistence;" \
	"$jobs jobs per phase, $size-byte payload; $(nproc) cores"
echo "commands: $jobq -u redis+unix://$sock bench --jobs $jobs --concurrency C --size $size --json"
echo "          $here/redis_add_threads.c: add_threads redis+unix://$sock C $jobs $size"
echo "          node $here/bullmq_bench.js --socket $sock --jobs $jobs --concurrency C --size $size --inflight C"
printf '%-34s %12s %12s %8s\n' "workload" "jobq/s" "bullmq/s" "ratio"
for c in $concs; do
	redis-cli -s "$sock" flushall >/dev/null
	j=$("$jobq" -u "redis+unix://$sock" bench --jobs "$jobs" --concurrency "$c" --size "$size" --json 2>/dev/null)
	t='{}'
	if [ -n "$add_threads" ] && [ "$c" -gt 1 ]; then
		redis-cli -s "$sock" flushall >/dev/null
		t=$("$add_threads" "redis+unix://$sock" "$c" "$jobs" "$size")
	fi
	redis-cli -s "$sock" flushall >/dev/null
	n=$(node "$here/bullmq_bench.js" --socket "$sock" --jobs "$jobs" --concurrency "$c" --size "$size" --inflight "$c")
	[ "$c" = "$(echo "$concs" | awk '{print $1}')" ] && echo "# bullmq $(field "$n" bullmq)"
	rows=("add one at a time (awaited):j:add_per_s:add_per_s")
	[ "$c" -gt 1 ] && rows+=("add, $c in flight (jobq $c threads):t:add_threads_per_s:add_concurrent_per_s")
	rows+=("add bulk (batches of 1000):j:add_bulk_per_s:add_bulk_per_s"
		"process, concurrency $c:j:process_per_s:process_per_s")
	for row in "${rows[@]}"; do
		IFS=: read -r label src jk nk <<<"$row"
		if [ "$src" = t ]; then jv=$(field "$t" "$jk"); else jv=$(field "$j" "$jk"); fi
		nv=$(field "$n" "$nk")
		printf '%-34s %12s %12s %8s\n' "$label" "$jv" "$nv" "$(ratio "$jv" "$nv")"
	done
	echo "  jobq pickup latency of an idle worker: p50 $(field "$j" pickup_p50_us) us, p99 $(field "$j" pickup_p99_us) us"
done

if [ "$script_cost" = 1 ]; then
	if "$cc" -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$build/generated" \
		"$here/redis_script_cost.c" "$build/generated/jobq_lua.c" -lhiredis \
		-o "$dir/script_cost" 2>"$dir/cc.log"; then
		redis-cli -s "$sock" flushall >/dev/null
		echo "# the scripts alone (tools/bench/redis_script_cost.c; jobq script vs minimal script)"
		"$dir/script_cost" "$sock" "$jobs"
	else
		echo "note: cannot build redis_script_cost against $build" >&2
		cat "$dir/cc.log" >&2
	fi
fi
