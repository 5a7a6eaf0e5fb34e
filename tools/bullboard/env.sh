# Sourced by the Bull Board checks (screenshot.sh, schedulers.sh): skips (77; 1 in CI, CI set)
# without node, redis-server, chromium or this folder's node_modules (installed here in CI),
# starts a private redis-server on a unix socket in a temporary directory and stops it on exit.
# Sets: here (this folder), tmp, sock, JOBQ_URL, CHROMIUM; spid (a server to kill on exit).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
missing() {
	echo "SKIP: $*" >&2
	[ -n "${CI:-}" ] && exit 1
	exit 77
}
command -v node >/dev/null || missing "node not found"
command -v redis-server >/dev/null || missing "redis-server not found"
export CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || missing "chromium not found (apt-get install chromium)"
if [ ! -d "$here/node_modules/@bull-board" ] && [ -n "${CI:-}" ]; then
	# (npm ci refuses the lock when the registry lacks msgpackr-extract's optional prebuilds
	# for other platforms; npm install then installs the same versions)
	(cd "$here" && export PUPPETEER_SKIP_DOWNLOAD=1 &&
		{ npm ci --no-audit --no-fund --loglevel=error ||
			npm install --no-audit --no-fund --loglevel=error; }) >&2
fi
[ -d "$here/node_modules/@bull-board" ] || missing "run 'PUPPETEER_SKIP_DOWNLOAD=1 npm ci' in $here"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobq-bullboard.XXXXXX")
spid=""
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	sh "$here/../../tests/support/redis.sh" stop "$tmp/redis" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
sh "$here/../../tests/support/redis.sh" start "$tmp/redis" >&2 || exit 1
sock="$tmp/redis/redis.sock"
export JOBQ_URL="redis+unix://$sock"
