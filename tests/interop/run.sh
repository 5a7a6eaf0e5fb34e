#!/bin/sh
# Runs the BullMQ interop checks: sh run.sh <jobq_interop binary>
# Needs node, `npm ci` done in this directory, and JOBQ_TEST_REDIS_SOCKET (the ctest fixture).
# Exits 77 (skipped) when one of them is missing.
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "node not found: skipped" >&2; exit 77; }
[ -d "$here/node_modules/bullmq" ] || { echo "run 'npm ci' in $here first: skipped" >&2; exit 77; }
[ -n "${JOBQ_TEST_REDIS_SOCKET:-}" ] || { echo "JOBQ_TEST_REDIS_SOCKET not set: skipped" >&2; exit 77; }
exec node "$here/interop.js" "$1" "$JOBQ_TEST_REDIS_SOCKET"
