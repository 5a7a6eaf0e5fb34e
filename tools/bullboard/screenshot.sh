#!/usr/bin/env bash
# Bull Board shows what a command run by `jobq work` reported: its progress and log lines
# (sent on JOBQ_REPORT_FD) and its stderr kept as log lines (--stderr-log). On a private
# redis-server: adds a job with `jobq add`, works it with `jobq work`, serves Bull Board over
# the queue (server.js, Express), checks the job through Bull Board's API and its page in
# headless Chromium (shot.js, puppeteer-core), and saves a screenshot of the job's Logs tab.
#
#   tools/bullboard/screenshot.sh JOBQ [OUT.png]     (default OUT: ./bullboard-job.png)
#
# Needs node, chromium (Debian package) and this folder's node_modules (`npm ci` here, with
# PUPPETEER_SKIP_DOWNLOAD=1: the system Chromium is used). Exits 0 when Bull Board showed
# everything, 1 when not, 77 when something it needs is missing (1 in CI, CI set).
set -u
JOBQ=$(cd "$(dirname "${1:?usage: screenshot.sh JOBQ [OUT.png]}")" && pwd)/$(basename "$1")
out=${2:-$PWD/bullboard-job.png}
. "$(dirname "$0")/env.sh"

id=$("$JOBQ" add render page '{"url":"/docs/index.html"}') || exit 1
# shellcheck disable=SC2016 # the command's own shell expands these
"$JOBQ" work render --max-jobs 1 --stderr-log=5 -- sh -c '
	echo "log fetched $(cat | head -c 100)" >&"$JOBQ_REPORT_FD"
	echo "progress 30" >&"$JOBQ_REPORT_FD"
	echo "log rendered 3 of 5 pages" >&"$JOBQ_REPORT_FD"
	echo "progress 60" >&"$JOBQ_REPORT_FD"
	echo "warning: font Inter missing, using DejaVu Sans" >&2
	echo "{\"pages\":5}"' >&2 || exit 1

node "$here/server.js" "$sock" 0 render >"$tmp/server.out" 2>"$tmp/server.err" &
spid=$!
for _ in $(seq 1 500); do
	grep -q '^listening' "$tmp/server.out" && break
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.02
done
port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$tmp/server.out")
[ -n "$port" ] || { cat "$tmp/server.err" >&2; echo "FAIL Bull Board did not start" >&2; exit 1; }

node "$here/shot.js" "http://127.0.0.1:$port" render "$id" "$out" 60 \
	'fetched {"url":"/docs/index.html"}' "rendered 3 of 5 pages" \
	"warning: font Inter missing, using DejaVu Sans"
