#!/usr/bin/env bash
# Bull Board and Node's getJobSchedulers() show the job schedulers made by `jobq schedule` as
# Node's own (schedulers.js says what is compared). On a private redis-server:
#
#   tools/bullboard/schedulers.sh JOBQ [OUT.png]     (OUT: a screenshot of the delayed page)
#
# Needs what screenshot.sh needs (env.sh). Exits 0 when every check held, 1 when not, 77 when
# something it needs is missing (1 in CI, CI set).
set -u
JOBQ=$(cd "$(dirname "${1:?usage: schedulers.sh JOBQ [OUT.png]}")" && pwd)/$(basename "$1")
. "$(dirname "$0")/env.sh"
node "$here/schedulers.js" "$JOBQ" "$sock" ${2:+"$2"}
