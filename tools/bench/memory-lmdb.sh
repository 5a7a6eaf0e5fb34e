#!/usr/bin/env bash
# Runs the issue-6 throughput workloads (tools/bench/bench_memory.c) on the memory backend and
# on LMDB with group commit and with periodic sync, and prints one JSON line per store.
#
#   tools/bench/memory-lmdb.sh [BUILD_DIR] [-- extra jobq_bench flags]
#
# BUILD_DIR defaults to build/perf (configure it with -DCMAKE_BUILD_TYPE=Release). Sizes:
# JOBS (memory, default 1000000), LMDB_JOBS (default 20000; group commit syncs every add of a lone producer), REPEAT (default 3).
# HUGEPAGES=1 also runs the memory workloads with glibc's malloc on transparent huge pages
# (GLIBC_TUNABLES=glibc.malloc.hugetlb=1), which removes most page faults of a growing heap.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/perf}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bench=$build/tools/jobq_bench
if [ ! -x "$bench" ]; then
	echo "memory-lmdb.sh: $bench not found; build it first:" >&2
	echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2 --target jobq_bench" >&2
	exit 2
fi
jobs=${JOBS:-1000000}
lmdb_jobs=${LMDB_JOBS:-20000}
repeat=${REPEAT:-3}

echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$bench" -u mem:// --jobs "$jobs" --repeat "$repeat" --json "$@"
if [ "${HUGEPAGES:-0}" = 1 ]; then
	GLIBC_TUNABLES=glibc.malloc.hugetlb=1 "$bench" -u mem:// --jobs "$jobs" --repeat "$repeat" --json "$@" |
		sed 's/^{/{"malloc":"hugetlb=1",/'
fi

dir=$(mktemp -d /tmp/jobq-bench-lmdb.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for mode in group periodic; do
	rm -rf "${dir:?}/$mode"
	"$bench" -u "lmdb:$dir/$mode?durability=$mode" --jobs "$lmdb_jobs" --repeat "$repeat" --json "$@"
done
