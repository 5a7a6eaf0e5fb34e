#!/bin/sh
# Fuzzes each libFuzzer target of tests/fuzz for SECONDS, starting from its corpus in the
# repository (plus what earlier runs found in the work directory) with its dictionary.
#
#   tests/fuzz/run.sh SECONDS [target...]      (targets: store_url job_options lmdb_record
#                                               redis_reply cron_pattern; default all that are built)
#
# Builds the fuzz preset first (clang; JOBQ_FUZZ_NO_BUILD=1 skips it). New inputs, crash files
# and the log of each target go to $JOBQ_FUZZ_WORK/<target>/ (default build/fuzz/fuzz-work),
# never into the repository. Prints a line per target (executions, coverage, result) and
# "N passed, M failed"; exits 1 if any target crashed, leaked or hit undefined behaviour.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${JOBQ_FUZZ_BUILD:-$root/build/fuzz}
work=${JOBQ_FUZZ_WORK:-$build/fuzz-work}

if [ $# -lt 1 ] || ! [ "$1" -gt 0 ] 2>/dev/null; then
	echo "usage: $0 SECONDS [target...]" >&2
	exit 2
fi
seconds=$1
shift

if [ "${JOBQ_FUZZ_NO_BUILD:-0}" != 1 ]; then
	(cd "$root" && cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j2 >/dev/null) || {
		echo "run.sh: building the fuzz preset failed (clang and libclang-rt-14-dev installed?)" >&2
		exit 1
	}
fi

targets=$*
if [ -z "$targets" ]; then
	for t in store_url job_options lmdb_record redis_reply cron_pattern; do
		[ -x "$build/tests/fuzz/fuzz_$t" ] && targets="$targets $t"
	done
fi

# UBSan findings stop the run with a stack; libFuzzer's ASan catches leaks at exit.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
passed=0
failed=0
for t in $targets; do
	bin=$build/tests/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "$t: no binary $bin: FAILED"
		failed=$((failed + 1))
		continue
	fi
	dir=$work/$t
	mkdir -p "$dir/corpus"
	log=$dir/fuzz.log
	dict=
	[ -f "$here/$t.dict" ] && dict=-dict=$here/$t.dict
	start=$(date +%s)
	# shellcheck disable=SC2086  # $dict is one word or none
	"$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 $dict \
		-artifact_prefix="$dir/" "$dir/corpus" "$here/corpus/$t" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		result=passed
		passed=$((passed + 1))
	else
		result="FAILED (exit $rc; see $log and $dir/crash-*|leak-*|oom-*|timeout-*)"
		failed=$((failed + 1))
		grep -E '^(SUMMARY|==[0-9]+==ERROR)|check failed|runtime error' "$log" | head -n 5
	fi
	echo "$t: ${execs:-0} executions in ${took} s, ${cov:-no coverage line}: $result"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
