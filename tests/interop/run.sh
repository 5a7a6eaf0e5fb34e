#!/bin/sh
# Runs the BullMQ interop checks: sh run.sh <binary> [package dir] [script]
# The binary is jobq_interop for interop.js (the default script) and limits.js (the rate-limit
# checks), the `jobq` command for semantics.js. The package dir (default, or empty: this
# directory, bullmq 6.7.0; v5/: the last 5.x) holds a package-lock.json; its node_modules
# come from `npm ci` there. Needs node and JOBQ_TEST_REDIS_SOCKET (the ctest fixture), or JOBQ_TEST_REDIS_CLUSTER_DIR (the cluster
# fixture: cluster.js instead of interop.js). When something is missing: skipped (77) on a
# developer's machine; in CI (CI set) the lock file is installed, and anything still missing
# fails. `npm ci` refuses these locks when the registry does not serve msgpackr-extract's
# optional prebuilds for other platforms (as here); `npm install` then installs the same
# locked versions.
here=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "${2:-$here}" && pwd)
script=${3:-interop.js}
missing() {
	if [ -n "${CI:-}" ]; then
		echo "interop: $1 (CI: failing, not skipping)" >&2
		exit 1
	fi
	echo "interop: $1: skipped" >&2
	exit 77
}
command -v node >/dev/null 2>&1 || missing "node not found"
# on the cluster fixture (JOBQ_TEST_REDIS_CLUSTER_DIR): the cluster checks (cluster.js)
target=${JOBQ_TEST_REDIS_SOCKET:-}
if [ -n "${JOBQ_TEST_REDIS_CLUSTER_DIR:-}" ]; then
	script=cluster.js
	target=$JOBQ_TEST_REDIS_CLUSTER_DIR
fi
[ -n "$target" ] || missing "JOBQ_TEST_REDIS_SOCKET not set"
if [ ! -d "$pkg/node_modules/bullmq" ] && [ -n "${CI:-}" ]; then
	(cd "$pkg" && { npm ci --no-audit --no-fund --loglevel=error ||
		npm install --no-audit --no-fund --loglevel=error; }) >&2
fi
[ -d "$pkg/node_modules/bullmq" ] || missing "run 'npm ci' in $pkg first"
JOBQ_INTEROP_MODULES="$pkg/node_modules" exec node "$here/$script" "$1" "$target"
