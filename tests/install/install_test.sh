#!/usr/bin/env bash
# install.package: installs the build into a temporary prefix, moves the prefix elsewhere (the
# installed files must be relocatable), then builds and runs the README's C example and a C++
# consumer against the moved copy with pkg-config and with find_package(jobq CONFIG), each
# linked shared and static, and compiles every installed header alone in C and C++.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR CC CXX [FLAGS...]
set -euo pipefail
build=$1 src=$2 work=$3 cc=$4 cxx=$5
shift 5
case $cxx in *NOTFOUND) cxx="" ;; esac
flags=("$@") # sanitizer flags of the build, for compiling and linking the consumers

fail() { echo "install.package: $*" >&2; exit 1; }
step() { echo "--- $*"; }

rm -rf "$work"
mkdir -p "$work"
stage=$work/stage moved=$work/moved
step "cmake --install $build --prefix $stage"
cmake --install "$build" --prefix "$stage" >"$work/install.log" || {
	cat "$work/install.log" >&2
	fail "cmake --install failed"
}
mv "$stage" "$moved" # nothing may point back into the prefix it was installed to

pc=$(find "$moved" -name jobq.pc | head -n 1)
[ -n "$pc" ] || fail "no jobq.pc under $moved"
config=$(find "$moved" -name jobqConfig.cmake | head -n 1)
[ -n "$config" ] || fail "no jobqConfig.cmake under $moved"
[ -f "$(dirname "$config")/jobqConfigVersion.cmake" ] || fail "no jobqConfigVersion.cmake"
libdir=$(dirname "$(dirname "$pc")")
if [ -x "$moved/bin/jobq" ]; then # the command comes with its man page
	[ -n "$(find "$moved" -path '*/man1/jobq.1')" ] || fail "jobq is installed without jobq.1"
fi
grep -rl "$stage" "$moved" >/dev/null 2>&1 && fail "installed files name the staging prefix: $(grep -rl "$stage" "$moved")"

export PKG_CONFIG_PATH=$(dirname "$pc")
version=$(pkg-config --modversion jobq)
cflags=$(pkg-config --cflags jobq)
step "pkg-config: version $version, cflags '$cflags'"
case "$cflags" in
*hiredis* | *-D*) fail "--cflags carries flags the public headers do not need: $cflags" ;;
esac
[ -f "$(echo "$cflags" | sed 's/^-I//; s/ *$//')/jobq.h" ] || fail "--cflags does not name the installed include directory: $cflags"

# The consumers: the README's first C block, and a C++ file using every options macro.
awk '/^```c[ \t]*$/ { on = 1; next } on && /^```/ { exit } on { print }' "$src/README.md" >"$work/readme.c"
[ -s "$work/readme.c" ] || fail "README.md has no \`\`\`c block"
cat >"$work/consumer.cpp" <<'CPP'
#include <jobq.h>
#include <cstdio>
#include <cstring>

int main() {
	jobq_job_options job = JOBQ_JOB_OPTIONS_INIT;
	jobq_worker_options worker = JOBQ_WORKER_OPTIONS_INIT;
	jobq_store_options store = JOBQ_STORE_OPTIONS_INIT;
	jobq_lmdb_options lmdb = JOBQ_LMDB_OPTIONS_INIT;
	jobq_redis_options redis = JOBQ_REDIS_OPTIONS_INIT;
	if (job.version != JOBQ_JOB_OPTIONS_VERSION || worker.concurrency != 1 ||
	    store.clock != NULL || lmdb.sync_ms != 100 || redis.port != 0)
		return 1;
	if (std::strcmp(jobq_version(), JOBQ_VERSION_STRING) != 0)
		return 2;
	std::printf("jobq %s (headers %d.%d.%d)\n", jobq_version(), JOBQ_VERSION_MAJOR,
	            JOBQ_VERSION_MINOR, JOBQ_VERSION_PATCH);
	return 0;
}
CPP

run() { # NAME EXE: runs a consumer in its own directory
	mkdir -p "$work/run-$1"
	(cd "$work/run-$1" && LD_LIBRARY_PATH=$libdir "$2") >"$work/run-$1.log" 2>&1 || {
		cat "$work/run-$1.log" >&2
		fail "$1 exited non-zero"
	}
	echo "$1: $(tail -n 1 "$work/run-$1.log")"
}
not_shared() { # EXE: a static consumer must not load libjobq.so
	if ldd "$1" | grep -q 'libjobq\.so'; then fail "$1 is linked to libjobq.so"; fi
}

step "pkg-config consumers (shared and static)"
cflags_c=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror)
cflags_cxx=(-std=c++11 -pedantic -Wall -Wextra -Werror)
# shellcheck disable=SC2046 # pkg-config output is meant to be split
"$cc" "${cflags_c[@]}" "${flags[@]}" $(pkg-config --cflags jobq) "$work/readme.c" \
	$(pkg-config --libs jobq) -o "$work/pc_shared" || fail "pkg-config shared build failed"
static_libs=$(pkg-config --static --libs jobq | sed 's/-ljobq\b/-l:libjobq.a/')
"$cc" "${cflags_c[@]}" "${flags[@]}" $(pkg-config --cflags jobq) "$work/readme.c" \
	$static_libs -o "$work/pc_static" || fail "pkg-config static build failed"
if [ -n "$cxx" ]; then
	"$cxx" "${cflags_cxx[@]}" "${flags[@]}" $(pkg-config --cflags jobq) "$work/consumer.cpp" \
		$(pkg-config --libs jobq) -o "$work/pc_cxx" || fail "pkg-config C++ build failed"
fi
not_shared "$work/pc_static"
run pc_shared "$work/pc_shared"
run pc_static "$work/pc_static"
[ -z "$cxx" ] || run pc_cxx "$work/pc_cxx"

step "find_package(jobq CONFIG) consumers (jobq::jobq and jobq::jobq_static)"
mkdir -p "$work/cmake-src"
cp "$work/readme.c" "$work/consumer.cpp" "$work/cmake-src/"
langs="C"
[ -z "$cxx" ] || langs="C CXX"
cat >"$work/cmake-src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(consumer LANGUAGES $langs)
find_package(jobq $version CONFIG REQUIRED)
add_executable(cm_shared readme.c)
target_link_libraries(cm_shared PRIVATE jobq::jobq)
add_executable(cm_static readme.c)
target_link_libraries(cm_static PRIVATE jobq::jobq_static)
foreach(t cm_shared cm_static)
  set_target_properties(\${t} PROPERTIES C_STANDARD 11)
  target_compile_definitions(\${t} PRIVATE _POSIX_C_SOURCE=200809L)
  target_compile_options(\${t} PRIVATE -Wall -Wextra -Werror)
endforeach()
if(CMAKE_CXX_COMPILER)
  add_executable(cm_cxx consumer.cpp)
  target_link_libraries(cm_cxx PRIVATE jobq::jobq)
  set_target_properties(cm_cxx PROPERTIES CXX_STANDARD 11 CXX_EXTENSIONS OFF)
  target_compile_options(cm_cxx PRIVATE -pedantic -Wall -Wextra -Werror)
endif()
CMAKE
flagstr="${flags[*]:-}"
cmake -S "$work/cmake-src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$moved" \
	-DCMAKE_C_COMPILER="$cc" ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} \
	-DCMAKE_C_FLAGS="$flagstr" -DCMAKE_CXX_FLAGS="$flagstr" \
	-DCMAKE_EXE_LINKER_FLAGS="$flagstr" >"$work/cmake.log" 2>&1 || {
	cat "$work/cmake.log" >&2
	fail "configuring the CMake consumer failed"
}
cmake --build "$work/cmake-build" >"$work/cmake-build.log" 2>&1 || {
	cat "$work/cmake-build.log" >&2
	fail "building the CMake consumer failed"
}
not_shared "$work/cmake-build/cm_static"
run cm_shared "$work/cmake-build/cm_shared"
run cm_static "$work/cmake-build/cm_static"
[ -z "$cxx" ] || run cm_cxx "$work/cmake-build/cm_cxx"

step "installed headers, each alone, C99 and C++"
cmake -DCC="$cc" -DCXX="$cxx" -DINCLUDE_DIR="$(echo "$cflags" | sed 's/^-I//; s/ *$//')" \
	-DWORK_DIR="$work/headers" -P "$src/tests/headers/headertest.cmake" || fail "installed headers"
echo "install.package: jobq $version installs, relocates, and builds with pkg-config and CMake"
