#!/usr/bin/env bash
# Installs what jobq needs to build and test, if it is missing (Debian/Ubuntu, apt-get).
# Usage: scripts/deps.sh [--with-node]   (as root, or with sudo available)
set -euo pipefail

packages=(build-essential cmake pkg-config libhiredis-dev liblmdb-dev libmsgpack-dev doxygen
          libjansson-dev uthash-dev libbsd-dev libcmocka-dev redis-server lmdb-utils
          libssl-dev openssl  # TLS to Redis (rediss://); tests make certificates
          libmicrohttpd-dev   # jobq serve-metrics
          tmux jq curl)       # tests/cli/ops_test.sh: jobq top under tmux, metrics scraped
packages+=(tzdata) # the time zones of cron schedules (src/core/tzfile.c)
if [ "${1:-}" = "--with-node" ]; then
	command -v node >/dev/null 2>&1 || packages+=(nodejs)
	command -v npm >/dev/null 2>&1 || packages+=(npm)
	packages+=(clang-format valgrind gnuplot-nox) # gnuplot: tools/bench/run.sh draws its plot
	packages+=(clang libclang-rt-14-dev)          # libFuzzer for tests/fuzz
	packages+=(groff-base)                        # tests/docs/man_check.sh renders jobq.1
	packages+=(chromium)                          # tools/bullboard: Bull Board screenshot
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "jobq: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
