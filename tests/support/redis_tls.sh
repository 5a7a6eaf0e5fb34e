#!/bin/sh
# Private TLS redis-server for the tests, with certificates made here by `openssl`.
#   redis_tls.sh start DIR   makes DIR/{ca,wrongca,server,client}.{crt,key} and DIR/capath,
#                            starts redis-server with a TLS port (DIR/tls.port), a plain port
#                            (DIR/plain.port) and a unix socket (DIR/redis.sock), and waits
#   redis_tls.sh stop DIR    stops it
#   redis_tls.sh certs DIR   only makes the certificates (tests/support/redis_cluster.sh tls)
# The server's certificate is valid for localhost and 127.0.0.1. Client certificates are
# optional (tls-auth-clients optional); a test may require them with CONFIG SET.
# Exits 77 (ctest: skipped) when redis-server or openssl is missing, 1 in CI (CI set).
set -eu
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start|stop DIR" >&2
	exit 2
fi
sock="$dir/redis.sock"
pidfile="$dir/redis.pid"

# cert NAME CN EXT: a key and a certificate signed by ca (EXT: x509 extensions)
cert() {
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2" 2>/dev/null
	printf '%s\n' "$3" >"$dir/$1.ext"
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -out "$dir/$1.crt" -days 2 -extfile "$dir/$1.ext" 2>/dev/null
}

ca() {
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$dir/$1.key" -out "$dir/$1.crt" -days 2 -subj "/CN=$2" 2>/dev/null
}

# a port number in 20000..59999
random_port() {
	echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
}

certs() {
	ca ca "jobq test CA"
	ca wrongca "another CA"
	cert server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
	cert client "jobq test client" "extendedKeyUsage=clientAuth"
	mkdir -p "$dir/capath"
	cp "$dir/ca.crt" "$dir/capath/"
	openssl rehash "$dir/capath"
}

case "$cmd" in
certs)
	mkdir -p "$dir"
	certs
	;;
start)
	for tool in redis-server redis-cli openssl; do
		if ! command -v $tool >/dev/null 2>&1; then
			echo "$tool not found: the TLS tests cannot run" >&2
			[ -n "${CI:-}" ] && exit 1 # in CI no Redis test may be skipped
			exit 77
		fi
	done
	mkdir -p "$dir"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$sock"
	certs
	# ports are random: a taken one makes the server exit, and the next pair is tried
	tries=0
	while [ $tries -lt 20 ]; do
		tries=$((tries + 1))
		tls=$(random_port)
		plain=$(random_port)
		[ "$tls" = "$plain" ] && continue
		rm -f "$sock" "$pidfile"
		redis-server --port "$plain" --bind 127.0.0.1 --tls-port "$tls" \
			--tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
			--tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients optional \
			--unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no \
			--daemonize yes --pidfile "$pidfile" --dir "$dir" --logfile "$dir/redis.log" \
			--maxmemory-policy noeviction
		i=0
		while [ $i -lt 100 ]; do
			if redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG; then
				echo "$tls" >"$dir/tls.port"
				echo "$plain" >"$dir/plain.port"
				exit 0
			fi
			[ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null && break
			grep -q 'Could not create server TCP\|Failed listening' "$dir/redis.log" 2>/dev/null &&
				break
			i=$((i + 1))
			sleep 0.05
		done
		[ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
		: >"$dir/redis.log"
	done
	echo "TLS redis-server did not start (see $dir/redis.log)" >&2
	exit 1
	;;
stop)
	exec sh "$(dirname "$0")/redis.sh" stop "$dir"
	;;
*)
	echo "usage: $0 start|stop|certs DIR" >&2
	exit 2
	;;
esac
