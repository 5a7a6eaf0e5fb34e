#!/usr/bin/env bash
# The benchmark driver of issue 6: every workload, one run, one machine, one private
# redis-server (unix socket, no persistence; started here, stopped at exit).
#
#   tools/bench/run.sh [--quick] [--only SECTIONS] [--build DIR] [--out DIR] [options]
#
# Sections (default: all, in this order; --only takes a comma-separated list):
#   redis        `jobq bench` and bullmq_bench.js (Node BullMQ, tests/interop's pinned
#                package) on the same redis-server, for each C in CONCURRENCIES; one table
#                jobq / BullMQ / ratio (jobq/BullMQ) of:
#                  add one at a time    each add awaited
#                  add, K in flight     K = max(C, 10). Node: K add() calls pending (ioredis
#                                       pipelines them). jobq: `jobq bench --inflight K`
#                                       (add_inflight_per_s, one thread keeping K adds in
#                                       flight) when the binary has it, else K threads each
#                                       calling jobq_queue_add (redis_add_threads.c); the
#                                       row says which
#                  add bulk             batches of 1000
#                  process              2*JOBS waiting jobs, empty handler, concurrency C
#                  pickup p50 / p99     idle worker: wait 2 ms, then time from just before
#                                       the add to the handler's entry; SAMPLES samples
#   script-cost  redis_script_cost.c: Redis server CPU per job of jobq's add and
#                complete-and-fetch scripts against a minimal script for the same step
#   memory       jobq_bench (bench_memory.c) on mem://: add, bulk, e2e, e2e1, best/median
#                of REPEAT; HUGEPAGES=1 also with glibc malloc on huge pages
#   lmdb         the same on LMDB with durability=group and durability=periodic
#   plot         end to end (process phase) against PLOT_CONCURRENCIES for memory, LMDB
#                periodic, Redis and BullMQ: OUT/concurrency.dat and OUT/concurrency.png
#                (gnuplot)
#
# Sizes (environment or flags; flags win; --quick lowers the defaults only):
#   JOBS / --jobs N                   redis, script-cost and plot  (10000; quick 500)
#   MEM_JOBS / --mem-jobs N           memory                       (1000000; quick 20000)
#   LMDB_JOBS / --lmdb-jobs N         lmdb                         (20000; quick 1000)
#   CONCURRENCIES / --concurrencies   redis                        ("1 10 100")
#   PLOT_CONCURRENCIES / --plot-concurrencies   plot               ("1 2 4 10 32 100")
#   SAMPLES / --samples N             pickup latency samples       (200; quick 20)
#   REPEAT / --repeat N               repeats: redis (jobq and BullMQ alternate, medians
#                                     compared), memory and lmdb   (3; quick 1)
#   SIZE / --size BYTES               payload size                 (100)
#   JOBQ_BUILD / --build DIR          a Release build tree (build/release) with tools/jobq,
#                                     tools/jobq_bench, libjobq.a, generated/jobq_lua.c
#   OUT / --out DIR                   results (build/bench-<UTC time>): results.txt (all
#                                     that is printed, with the machine), raw.jsonl (every
#                                     JSON line measured), concurrency.dat/.png
#   JOBQ_BULLMQ_MODULES               node_modules holding bullmq (tests/interop's)
#   STEP_TIMEOUT                      seconds any one measurement may take (1800)
#   COLD=1                            no warm-up of the server's memory after each FLUSHALL
#                                     (see flush below)
#   TRANSPORT=unix|tcp|tls            how jobq reaches the server in the redis section
#                                     (unix: default; tcp: 127.0.0.1; tls: rediss:// with a
#                                     CA and certificate made here by openssl); BullMQ stays
#                                     on the unix socket
#
# Exit status: 0 when every measurement ran, 1 when one failed (the others still run and the
# failure is printed), 2 on bad usage or a missing tool (named with what to install).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
all_sections="redis,script-cost,memory,lmdb,plot"

usage() {
	sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}
die() {
	echo "run.sh: $*" >&2
	exit 2
}

# --- options --------------------------------------------------------------------------------
jobs=${JOBS:-} mem_jobs=${MEM_JOBS:-} lmdb_jobs=${LMDB_JOBS:-} samples=${SAMPLES:-}
repeat=${REPEAT:-} size=${SIZE:-100} concs=${CONCURRENCIES:-1 10 100}
plot_concs=${PLOT_CONCURRENCIES:-1 2 4 10 32 100}
build=${JOBQ_BUILD:-$root/build/release} out=${OUT:-} only=$all_sections quick=0
while [ $# -gt 0 ]; do
	opt=$1
	case $opt in
	-h | --help) usage 0 ;;
	--quick) quick=1; shift; continue ;;
	esac
	[ $# -ge 2 ] || die "$opt needs a value (see --help)"
	case $opt in
	--only) only=$2 ;;
	--build) build=$2 ;;
	--out) out=$2 ;;
	--jobs) jobs=$2 ;;
	--mem-jobs) mem_jobs=$2 ;;
	--lmdb-jobs) lmdb_jobs=$2 ;;
	--concurrencies) concs=$2 ;;
	--plot-concurrencies) plot_concs=$2 ;;
	--samples) samples=$2 ;;
	--repeat) repeat=$2 ;;
	--size) size=$2 ;;
	*) die "unknown option $opt (see --help)" ;;
	esac
	shift 2
done
if [ "$quick" = 1 ]; then
	: "${jobs:=500}" "${mem_jobs:=20000}" "${lmdb_jobs:=1000}" "${samples:=20}" "${repeat:=1}"
else
	: "${jobs:=10000}" "${mem_jobs:=1000000}" "${lmdb_jobs:=20000}" "${samples:=200}" "${repeat:=3}"
fi
for v in "$jobs" "$mem_jobs" "$lmdb_jobs" "$samples" "$repeat" "$size" $concs $plot_concs; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "sizes and concurrencies are positive integers, not '$v'"
done
want() { [[ ",$only," == *",$1,"* ]]; }
IFS=, read -ra picked <<<"$only"
for s in "${picked[@]}"; do
	[[ ",$all_sections," == *",$s,"* ]] || die "unknown section '$s' (sections: $all_sections)"
done

# --- what each section needs -----------------------------------------------------------------
[ -d "$build" ] || die "no build tree at $build; build one:
  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2"
build=$(cd "$build" && pwd)
jobq=$build/tools/jobq
jobq_bench=$build/tools/jobq_bench
mods=${JOBQ_BULLMQ_MODULES:-$root/tests/interop/node_modules}
missing=()
need_tool() { command -v "$1" >/dev/null || missing+=("$1 (Debian package $2)"); }
if want redis || want script-cost || want plot; then
	need_tool redis-server redis-server
	need_tool redis-cli redis-tools
fi
if want redis || want plot; then
	need_tool node nodejs
	[ -f "$mods/bullmq/package.json" ] ||
		missing+=("bullmq in $mods (run \`npm ci\` in $root/tests/interop)")
	[ -x "$jobq" ] || missing+=("$jobq (cmake --build $build -j2 --target jobq)")
fi
if want redis || want script-cost; then
	need_tool "${CC:-cc}" build-essential
	[ -f /usr/include/hiredis/hiredis.h ] || missing+=("hiredis headers (Debian package libhiredis-dev)")
fi
if want memory || want lmdb; then
	[ -x "$jobq_bench" ] || missing+=("$jobq_bench (cmake --build $build -j2 --target jobq_bench)")
fi
want plot && need_tool gnuplot gnuplot-nox
want redis && { [ -f "$build/libjobq.a" ] || missing+=("$build/libjobq.a (cmake --build $build -j2)"); }
want script-cost && { [ -f "$build/generated/jobq_lua.c" ] ||
	missing+=("$build/generated/jobq_lua.c (cmake --build $build -j2)"); }
if [ ${#missing[@]} -gt 0 ]; then
	echo "run.sh: missing, for sections $only:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 2
fi

# --- output, scratch directory, redis-server ----------------------------------------------------
out=${out:-$root/build/bench-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)
: >"$out/raw.jsonl"
tmp=$(mktemp -d /tmp/jobq-bench.XXXXXX)
sock=$tmp/redis.sock
tee_pid=
cleanup() {
	if [ -f "$tmp/redis.pid" ]; then
		kill "$(cat "$tmp/redis.pid")" 2>/dev/null
		for _ in $(seq 50); do [ -f "$tmp/redis.pid" ] || break; sleep 0.1; done
	fi
	rm -rf "$tmp"
	if [ -n "$tee_pid" ]; then
		exec >&- 2>&-
		wait "$tee_pid" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec > >(tee "$out/results.txt") 2>&1
tee_pid=$!

# fail MESSAGE...: prints a failure (to stderr, which results.txt holds too); the run goes
# on and exits 1 at the end. A file marks it, as measurements run in $(...) subshells.
fail() {
	echo "FAILED: $*" >&2
	touch "$tmp/failed"
}
# run NAME CMD...: runs one measurement; its stdout is the result. On failure (or timeout)
# prints what failed with the end of its stderr, prints '{}' and marks the run failed.
run() {
	local name=$1 rc
	shift
	if timeout "${STEP_TIMEOUT:-1800}" "$@" 2>"$tmp/err" >"$tmp/res"; then
		tail -n 1 "$tmp/res"
		printf '{"step":"%s",%s\n' "$name" "$(tail -n 1 "$tmp/res" | sed 's/^{//')" >>"$out/raw.jsonl"
	else
		rc=$?
		fail "$name, exit $rc$([ $rc = 124 ] && echo ", timed out"): $*"
		tail -n 5 "$tmp/err" | sed 's/^/  | /' >&2
		echo '{}'
	fi
}
# field JSON KEY: the value of KEY in a flat one-line JSON object, or "-"
field() {
	local v
	v=$(sed -n 's/.*"'"$2"'":\("[^"]*"\|[^,}]*\).*/\1/p' <<<"$1")
	v=${v#\"}
	v=${v%\"}
	echo "${v:--}"
}
# ratio A B: A/B with two decimals, or "-"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f\n", a / b; else print "-" }'; }
# thousands N: 1234567 -> 1,234,567 (not numbers as they are)
thousands() { sed ':a; s/\b\([0-9]\+\)\([0-9]\{3\}\)\b/\1,\2/; ta' <<<"$1"; }
# flush: an empty server with warm memory. FLUSHALL also hands the server's free memory back
# to the kernel (jemalloc purge), so a server that then grows touches fresh pages, and on this
# VM a first touch costs the server dearly: the 100-in-flight add phase ran 98-110k adds/s on
# such memory against 122-143k on reused memory. A server in service reuses the memory its
# jobs freed; so after FLUSHALL the server creates and deletes 3 * JOBS jobs' worth of hashes,
# events and list entries (the most either tool's run holds at once), in one script, which
# leaves that memory with the allocator. The same for jobq and BullMQ; COLD=1 skips it.
warm_lua='local n, d = tonumber(ARGV[1]), ARGV[2]
for i = 1, n do
  redis.call("HSET", "warm:" .. i, "name", "bench", "data", d, "opts", "{\"attempts\":1}",
    "timestamp", "1700000000000", "delay", "0", "priority", "0")
  redis.call("XADD", "warm:events", "*", "event", "added", "jobId", i, "name", "bench")
  redis.call("XADD", "warm:events", "*", "event", "waiting", "jobId", i)
  redis.call("LPUSH", "warm:wait", i)
end
for i = 1, n do
  redis.call("DEL", "warm:" .. i)
end
redis.call("DEL", "warm:events", "warm:wait")'
flush() {
	redis-cli -s "$sock" flushall >/dev/null
	[ "${COLD:-0}" = 1 ] && return
	redis-cli -s "$sock" eval "$warm_lua" 0 $((3 * jobs)) "\"$(printf "%$((size > 2 ? size - 2 : 0))s" | tr ' ' x)\"" >/dev/null
}
heading() { printf '\n## %s\n' "$*"; }

if want redis || want script-cost || want plot; then
	transport_args=()
	case "${TRANSPORT:-unix}" in
	unix) ;;
	tcp) bench_port=$((20000 + RANDOM % 40000)); transport_args=(--port "$bench_port" --bind 127.0.0.1) ;;
	tls)
		bench_port=$((20000 + RANDOM % 40000))
		openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-keyout "$tmp/ca.key" -out "$tmp/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null &&
			openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
				-keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=localhost" 2>/dev/null &&
			echo "subjectAltName=IP:127.0.0.1" >"$tmp/server.ext" &&
			openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
				-CAcreateserial -out "$tmp/server.crt" -days 2 -extfile "$tmp/server.ext" 2>/dev/null ||
			die "openssl could not make the certificates (TRANSPORT=tls)"
		transport_args=(--port 0 --tls-port "$bench_port" --tls-cert-file "$tmp/server.crt"
			--tls-key-file "$tmp/server.key" --tls-ca-cert-file "$tmp/ca.crt" --tls-auth-clients no)
		;;
	*) die "TRANSPORT=${TRANSPORT}: expected unix, tcp or tls" ;;
	esac
	[ ${#transport_args[@]} -gt 0 ] || transport_args=(--port 0)
	redis-server "${transport_args[@]}" --unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no \
		--daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" --logfile "$tmp/redis.log" \
		--maxmemory-policy noeviction || die "redis-server did not start"
	for _ in $(seq 100); do
		redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && break
		sleep 0.05
	done
	redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG ||
		die "redis-server does not answer on $sock: $(tail -n 3 "$tmp/redis.log")"
fi

# --- the machine ---------------------------------------------------------------------------
started=$(date +%s)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit (+ uncommitted changes)"
bullmq_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$mods/bullmq/package.json" 2>/dev/null | head -n 1)
echo "# jobq benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "sections      $only$([ "$quick" = 1 ] && echo " (--quick)")"
echo "commit        $commit"
echo "build         $build ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true))"
echo "machine       $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "load average  $(cut -d' ' -f1-3 /proc/loadavg) (start)"
if want redis || want script-cost || want plot; then
	echo "redis-server  $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), no persistence; jobq over ${TRANSPORT:-unix}, BullMQ over the unix socket"
fi
if want redis || want plot; then
	echo "node          $(node --version), bullmq ${bullmq_version:-?} ($mods)"
fi
echo "sizes         JOBS=$jobs MEM_JOBS=$mem_jobs LMDB_JOBS=$lmdb_jobs SAMPLES=$samples REPEAT=$repeat SIZE=$size"
echo "              CONCURRENCIES=\"$concs\" PLOT_CONCURRENCIES=\"$plot_concs\""
echo "output        $out"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ "$build_type" = Release ] ||
	echo "note: $build is not a Release build (${build_type:-unknown}): figures not comparable"
awk '$1 >= 1.5 { exit 1 }' /proc/loadavg ||
	echo "note: load average $(cut -d' ' -f1 /proc/loadavg) at start: other work shares the CPUs, figures are noisy"

# --- redis: jobq against Node BullMQ ---------------------------------------------------------------
if want redis; then
	heading "Redis: jobq vs Node BullMQ $bullmq_version (jobs/s unless us; ratio = jobq/BullMQ)"
	case "${TRANSPORT:-unix}" in
	tcp) url="redis://127.0.0.1:$bench_port" ;;
	tls) url="rediss://127.0.0.1:$bench_port?cacert=$tmp/ca.crt" ;;
	*) url="redis+unix://$sock" ;;
	esac
	inflight_flag=0
	"$jobq" bench --help 2>&1 | grep -q -- '--inflight' && inflight_flag=1
	# the fallback of a jobq without asynchronous adds, built when first needed
	add_threads='' add_threads_tried=0
	build_add_threads() {
		[ "$add_threads_tried" = 1 ] && return
		add_threads_tried=1
		if "${CC:-cc}" -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/include" -I"$build/include" \
			"$here/redis_add_threads.c" "$build/libjobq.a" -lhiredis -lssl -lcrypto -llmdb -ljansson \
			-lmsgpackc -lpthread -lm -o "$tmp/add_threads" 2>"$tmp/cc.log"; then
			add_threads=$tmp/add_threads
		else
			fail "cannot build redis_add_threads.c against $build; no jobq in-flight add row:"
			sed 's/^/  | /' "$tmp/cc.log" >&2
		fi
	}
	echo "jobq:   $jobq -q -u $url bench --jobs $jobs --concurrency C --size $size --samples $samples$([ "$inflight_flag" = 1 ] && echo " --inflight K") --json"
	[ "$inflight_flag" = 1 ] || echo "        (no --inflight in this jobq) redis_add_threads $url K $jobs $size"
	echo "BullMQ: node $here/bullmq_bench.js --socket $sock --jobs $jobs --concurrency C --size $size --inflight K --samples $samples"
	echo "        K = max(C, 10); process runs 2*$jobs jobs; pickup over $samples samples"
	row() { printf '%-42s %12s %12s %8s\n' "$1" "$(thousands "$2")" "$(thousands "$3")" "$(ratio "$2" "$3")"; }
	printf '%-42s %12s %12s %8s\n' "workload" "jobq" "BullMQ" "ratio"
	# median FILE KEY: the median of KEY over the JSON lines of FILE, or "-"
	median() {
		local vals
		vals=$(while read -r l; do field "$l" "$2"; done <"$1" | grep -v '^-$' | sort -n)
		[ -n "$vals" ] || { echo -; return; }
		sed -n "$(( ($(wc -l <<<"$vals") + 1) / 2 ))p" <<<"$vals"
	}
	for c in $concs; do
		k=$((c > 10 ? c : 10))
		echo "concurrency $c (median of $repeat, jobq and BullMQ taking turns):"
		: >"$tmp/jobq.jsonl"
		: >"$tmp/bullmq.jsonl"
		how="async add"
		for ((r = 1; r <= repeat; r++)); do
			flush
			if [ "$inflight_flag" = 1 ]; then
				j=$(run "redis-jobq-c$c" "$jobq" -q -u "$url" bench --jobs "$jobs" --concurrency "$c" \
					--size "$size" --samples "$samples" --inflight "$k" --json)
			else
				j=$(run "redis-jobq-c$c" "$jobq" -q -u "$url" bench --jobs "$jobs" --concurrency "$c" \
					--size "$size" --samples "$samples" --json)
			fi
			if [ "$(field "$j" add_inflight_per_s)" = - ]; then
				build_add_threads
				if [ -n "$add_threads" ]; then
					flush
					t=$(run "redis-jobq-threads-k$k" "$add_threads" "$url" "$k" "$jobs" "$size")
					j="${j%\}},\"add_inflight_per_s\":$(field "$t" add_threads_per_s)}"
					how="$k threads"
				fi
			fi
			echo "$j" >>"$tmp/jobq.jsonl"
			flush
			n=$(run "redis-bullmq-c$c" node "$here/bullmq_bench.js" --socket "$sock" --jobs "$jobs" \
				--concurrency "$c" --size "$size" --inflight "$k" --samples "$samples")
			echo "$n" >>"$tmp/bullmq.jsonl"
		done
		both() { row "$1" "$(median "$tmp/jobq.jsonl" "$2")" "$(median "$tmp/bullmq.jsonl" "$3")"; }
		both "  add one at a time (awaited)" add_per_s add_per_s
		both "  add, $k in flight (jobq: $how)" add_inflight_per_s add_concurrent_per_s
		both "  add bulk (batches of 1000)" add_bulk_per_s add_bulk_per_s
		both "  process, concurrency $c" process_per_s process_per_s
		both "  pickup latency p50 (us)" pickup_p50_us pickup_p50_us
		both "  pickup latency p99 (us)" pickup_p99_us pickup_p99_us
	done
fi

# --- script-cost: jobq's scripts against the minimal script ------------------------------------------
if want script-cost; then
	heading "The scripts alone (redis_script_cost.c: jobq script vs minimal script, server CPU)"
	if "${CC:-cc}" -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$build/generated" \
		"$here/redis_script_cost.c" "$build/generated/jobq_lua.c" -lhiredis \
		-o "$tmp/script_cost" 2>"$tmp/cc.log"; then
		echo "command: redis_script_cost $sock $jobs"
		flush
		if ! timeout "${STEP_TIMEOUT:-1800}" "$tmp/script_cost" "$sock" "$jobs" 2>"$tmp/err"; then
			fail "script-cost:"
			tail -n 5 "$tmp/err" | sed 's/^/  | /' >&2
		fi
	else
		fail "cannot build redis_script_cost.c against $build:"
		sed 's/^/  | /' "$tmp/cc.log" >&2
	fi
fi

# --- memory and lmdb: jobq_bench -----------------------------------------------------------------
# store_table NAME|JSON...: the workloads of jobq_bench as rows, one column per store
store_table() {
	local w col
	printf '%-6s' "jobs/s"
	for col in "$@"; do printf ' %34s' "${col%%|*} best (median)"; done
	echo
	for w in add bulk e2e e2e1; do
		printf '%-6s' "$w"
		for col in "$@"; do
			printf ' %34s' "$(thousands "$(field "${col#*|}" "${w}_per_s")") ($(thousands "$(field "${col#*|}" "${w}_median_per_s")"))"
		done
		echo
	done
}
if want memory; then
	heading "Memory backend (jobq_bench, $mem_jobs jobs, best of $repeat)"
	echo "memory: $jobq_bench -u mem:// --jobs $mem_jobs --repeat $repeat --size $size --json"
	m=$(run memory "$jobq_bench" -u mem:// --jobs "$mem_jobs" --repeat "$repeat" --size "$size" --json)
	cols=("memory|$m")
	if [ "${HUGEPAGES:-0}" = 1 ]; then
		h=$(GLIBC_TUNABLES=glibc.malloc.hugetlb=1 run memory-hugetlb "$jobq_bench" -u mem:// \
			--jobs "$mem_jobs" --repeat "$repeat" --size "$size" --json)
		cols+=("memory, hugetlb malloc|$h")
	fi
	store_table "${cols[@]}"
fi
if want lmdb; then
	heading "LMDB backend (jobq_bench, $lmdb_jobs jobs, best of $repeat)"
	cols=()
	for mode in group periodic; do
		echo "lmdb $mode: $jobq_bench -u 'lmdb:DIR?durability=$mode' --jobs $lmdb_jobs --repeat $repeat --size $size --json"
		l=$(run "lmdb-$mode" "$jobq_bench" -u "lmdb:$tmp/lmdb-$mode?durability=$mode" \
			--jobs "$lmdb_jobs" --repeat "$repeat" --size "$size" --json)
		cols+=("LMDB $mode|$l")
		rm -rf "${tmp:?}/lmdb-$mode"
	done
	store_table "${cols[@]}"
fi

# --- plot: end to end against concurrency ---------------------------------------------------------
if want plot; then
	heading "End to end against concurrency (process phase, 2*$jobs jobs, empty handler, jobs/s)"
	echo "jobq:   $jobq -q -u URL bench --jobs $jobs --concurrency C --size $size --samples 1 --json"
	echo "        URL = mem://, lmdb:DIR?durability=periodic, redis+unix://$sock"
	echo "BullMQ: node $here/bullmq_bench.js --socket $sock --jobs $jobs --concurrency C --size $size --adds 0 --samples 0"
	data=$out/concurrency.dat
	echo "# concurrency memory lmdb-periodic redis bullmq-$bullmq_version (jobs/s, end to end; $jobs jobs, $commit)" >"$data"
	printf '%-11s %12s %14s %12s %12s %14s\n' concurrency memory lmdb-periodic redis bullmq redis/bullmq
	for c in $plot_concs; do
		pj() { run "plot-$1-c$c" "$jobq" -q -u "$2" bench --jobs "$jobs" --concurrency "$c" --size "$size" --samples 1 --json; }
		m=$(field "$(pj memory mem://)" process_per_s)
		l=$(field "$(pj lmdb "lmdb:$tmp/plot-lmdb-$c?durability=periodic")" process_per_s)
		rm -rf "${tmp:?}/plot-lmdb-$c"
		flush
		r=$(field "$(pj redis "redis+unix://$sock")" process_per_s)
		flush
		n=$(field "$(run "plot-bullmq-c$c" node "$here/bullmq_bench.js" --socket "$sock" --jobs "$jobs" \
			--concurrency "$c" --size "$size" --adds 0 --samples 0)" process_per_s)
		echo "$c $m $l $r $n" >>"$data"
		printf '%-11s %12s %14s %12s %12s %14s\n' "$c" "$(thousands "$m")" "$(thousands "$l")" \
			"$(thousands "$r")" "$(thousands "$n")" "$(ratio "$r" "$n")"
	done
	# gnuplot reads "-" as missing data
	if gnuplot 2>"$tmp/gnuplot.log" <<GP; then
set terminal pngcairo size 1000,560 noenhanced
set output "$out/concurrency.png"
set datafile missing "-"
set title "End to end, empty handler: 2x$jobs jobs, $(nproc) cores, ${commit%% *}"
set xlabel "worker concurrency"
set ylabel "jobs/s"
set logscale xy
set key outside right
set grid
plot "$data" using 1:2 with linespoints title "jobq memory", \
     "$data" using 1:3 with linespoints title "jobq LMDB (periodic sync)", \
     "$data" using 1:4 with linespoints title "jobq Redis", \
     "$data" using 1:5 with linespoints title "Node BullMQ $bullmq_version (Redis)"
GP
		echo "wrote $data and $out/concurrency.png"
	else
		fail "gnuplot:"
		tail -n 5 "$tmp/gnuplot.log" | sed 's/^/  | /' >&2
	fi
fi

echo
echo "load average  $(cut -d' ' -f1-3 /proc/loadavg) (end); $(($(date +%s) - started)) s"
echo "results in    $out/results.txt (raw JSON: $out/raw.jsonl)"
if [ -e "$tmp/failed" ]; then
	echo "some measurements FAILED (see above)"
	exit 1
fi
