#!/usr/bin/env bash
# End-to-end throughput (empty handler) against worker concurrency for each jobq backend and
# for Node BullMQ on the same redis-server, in one run; writes a table and a PNG (gnuplot):
#   tools/bench/plot-concurrency.sh [JOBQ_BINARY] [OUT_DIR]
#   env: JOBS (default 10000), CONCURRENCIES (default "1 2 4 10 32 100")
# Needs a Release jobq (default build/release/tools/jobq), redis-server, node with
# tests/interop's node_modules (bullmq 6.7.0), and gnuplot (Debian: gnuplot-nox).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jobq=${1:-$root/build/release/tools/jobq}
out=${2:-$root/docs}
jobs=${JOBS:-10000}
concs=${CONCURRENCIES:-1 2 4 10 32 100}
for tool in redis-server node gnuplot; do
	command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }
done
[ -x "$jobq" ] || { echo "no jobq binary at $jobq (build a Release first)" >&2; exit 2; }

dir=$(mktemp -d /tmp/jobq-plot.XXXXXX)
trap 'kill "$(cat "$dir/redis.pid" 2>/dev/null)" 2>/dev/null; sleep 0.2; rm -rf "$dir" 2>/dev/null || true' EXIT
redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' \
	--appendonly no --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" \
	--logfile "$dir/redis.log" >/dev/null
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done

field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"; }
mkdir -p "$out"
data=$out/concurrency.dat
echo "# concurrency memory lmdb-periodic redis bullmq-6.7.0 (jobs/s, end to end)" >"$data"
for c in $concs; do
	m=$("$jobq" -u mem:// bench --jobs "$jobs" --concurrency "$c" --json)
	l=$("$jobq" -u "lmdb:$dir/lmdb-$c?durability=periodic" bench --jobs "$jobs" \
		--concurrency "$c" --json)
	r=$("$jobq" -u "redis+unix://$dir/redis.sock" bench --jobs "$jobs" --concurrency "$c" --json)
	n=$(node "$here/bullmq_bench.js" --socket "$dir/redis.sock" --jobs "$jobs" --concurrency "$c")
	row="$c $(field "$m" process_per_s) $(field "$l" process_per_s) $(field "$r" process_per_s)"
	row="$row $(field "$n" process_per_s)"
	echo "$row" | tee -a "$data"
done

gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output "$out/concurrency.png"
set title "End-to-end throughput, empty handler ($jobs jobs, $(nproc) cores)"
set xlabel "worker concurrency"
set ylabel "jobs/s"
set logscale xy
set key outside right
set grid
plot "$data" using 1:2 with linespoints title "jobq memory", \
     "$data" using 1:3 with linespoints title "jobq LMDB (periodic sync)", \
     "$data" using 1:4 with linespoints title "jobq Redis", \
     "$data" using 1:5 with linespoints title "Node BullMQ 6.7.0 (Redis)"
GP
echo "wrote $data and $out/concurrency.png"
