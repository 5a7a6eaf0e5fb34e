#!/usr/bin/env bash
# jobq versus Node BullMQ on one private redis-server (unix socket, no persistence), same
# workloads, same run:
#   tools/bench/compare-redis.sh [JOBQ_BINARY]
#   env: JOBS (default 10000), CONCURRENCIES (default "1 10 100"), SIZE (payload bytes, 100),
#        JOBQ_BULLMQ_MODULES (node_modules holding bullmq; default tests/interop's, 6.7.0)
# Needs redis-server, node and `npm ci` (or npm install) done in tests/interop. Use a Release
# build of the jobq binary (default build/release/tools/jobq). For each concurrency it runs
# `jobq bench` then bullmq_bench.js and prints both figures and the ratio jobq/BullMQ.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jobq=${1:-$root/build/release/tools/jobq}
jobs=${JOBS:-10000}
size=${SIZE:-100}
concs=${CONCURRENCIES:-1 10 100}
[ -x "$jobq" ] || { echo "no jobq binary at $jobq (build a Release first)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not found" >&2; exit 2; }
command -v node >/dev/null || { echo "node not found" >&2; exit 2; }

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

field() { node -e 'const o=JSON.parse(process.argv[1]);console.log(o[process.argv[2]]??"-")' "$1" "$2"; }
ratio() { node -e 'const [a,b]=process.argv.slice(1).map(Number);console.log(b>0&&a>0?(a/b).toFixed(2):"-")' "$1" "$2"; }

echo "redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), unix socket, no persistence;" \
	"$jobs jobs per phase, $size-byte payload; $(nproc) cores"
echo "commands: $jobq -u redis+unix://$sock bench --jobs $jobs --concurrency C --size $size --json"
echo "          node $here/bullmq_bench.js --socket $sock --jobs $jobs --concurrency C --size $size"
printf '%-34s %12s %12s %8s\n' "workload" "jobq/s" "bullmq/s" "ratio"
for c in $concs; do
	redis-cli -s "$sock" flushall >/dev/null
	j=$("$jobq" -u "redis+unix://$sock" bench --jobs "$jobs" --concurrency "$c" --size "$size" --json 2>/dev/null)
	redis-cli -s "$sock" flushall >/dev/null
	n=$(node "$here/bullmq_bench.js" --socket "$sock" --jobs "$jobs" --concurrency "$c" --size "$size")
	[ "$c" = "$(echo "$concs" | awk '{print $1}')" ] && echo "# bullmq $(field "$n" bullmq)"
	for pair in "add one at a time (awaited):add_per_s:add_per_s" \
		"add 100 in flight (Node only):-:add_concurrent_per_s" \
		"add bulk (batches of 1000):add_bulk_per_s:add_bulk_per_s" \
		"process, concurrency $c:process_per_s:process_per_s"; do
		IFS=: read -r label jk nk <<<"$pair"
		jv=-
		[ "$jk" != "-" ] && jv=$(field "$j" "$jk")
		nv=$(field "$n" "$nk")
		printf '%-34s %12s %12s %8s\n' "$label" "$jv" "$nv" "$(ratio "$jv" "$nv")"
	done
	echo "  jobq pickup latency of an idle worker: p50 $(field "$j" pickup_p50_us) us, p99 $(field "$j" pickup_p99_us) us"
done
