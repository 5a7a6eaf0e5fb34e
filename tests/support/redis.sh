#!/bin/sh
# Private redis-server for the tests, on a unix socket (no port clashes).
#   redis.sh start DIR [SERVER]   starts it (socket DIR/redis.sock, pid DIR/redis.pid) and waits
#                                 for PING; SERVER: the server program (default
#                                 $JOBQ_TEST_REDIS_SERVER, else redis-server; e.g. a valkey-server)
#   redis.sh stop DIR             stops it
# Exits 77 (ctest: skipped) when the server is not installed, 1 in CI (CI set).
set -eu
cmd=${1:-}
dir=${2:-}
server=${3:-${JOBQ_TEST_REDIS_SERVER:-redis-server}}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start|stop DIR" >&2
	exit 2
fi
sock="$dir/redis.sock"
pidfile="$dir/redis.pid"
case "$cmd" in
start)
	if ! command -v "$server" >/dev/null 2>&1; then
		echo "SKIPPED: $server not found: the tests on it did NOT run" >&2
		[ -n "${CI:-}" ] && exit 1 # in CI no Redis test may be skipped
		exit 77
	fi
	mkdir -p "$dir"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$sock"
	"$server" --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
		--appendonly no --daemonize yes --pidfile "$pidfile" --dir "$dir" \
		--logfile "$dir/redis.log" --maxmemory-policy noeviction
	i=0
	while [ $i -lt 100 ]; do
		if redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG; then
			exit 0
		fi
		i=$((i + 1))
		sleep 0.05
	done
	echo "redis-server did not answer on $sock" >&2
	exit 1
	;;
stop)
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			i=$((i + 1))
			sleep 0.05
		done
		rm -f "$pidfile"
	fi
	rm -f "$sock"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
