#!/bin/sh
# Private Redis Cluster for the tests: three masters on loopback (random ports; each also on
# a unix socket DIR/nodeN/redis.sock for the tests' own use), made with redis-cli --cluster
# create; with REPLICAS 1, three masters and three replicas (six nodes); with `tls` after
# REPLICAS, TLS only: the nodes listen on TLS ports alone (tls-cluster: the bus and the ports
# CLUSTER SLOTS gives are TLS too), with certificates made by tests/support/redis_tls.sh certs
# (DIR/ca.crt, DIR/client.{crt,key}; the server's is valid for 127.0.0.1).
#   redis_cluster.sh start DIR [REPLICAS [tls]]  starts them; DIR/ports holds their ports in node
#                                          order; waits until every node says cluster_state:ok
#                                          and every replica's link to its master is up
#   redis_cluster.sh stop DIR              stops them (a node a test killed is skipped)
# Exits 77 (ctest: skipped) when redis-server is missing, 1 in CI (CI set).
set -eu
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start DIR [REPLICAS] | stop DIR" >&2
	exit 2
fi

# a port in 20000..54999 (its cluster bus port, +10000, stays below 65536)
random_port() {
	echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 35000))
}

replicas=${3:-0}
nodes=$((3 * (1 + replicas)))
tls=${4:-}

# all at once: a cluster node can take a while to exit
stop_all() {
	for d in "$dir"/node*; do
		[ -d "$d" ] || continue
		sh "$(dirname "$0")/redis.sh" stop "$d" >/dev/null 2>&1 &
	done
	wait
}

case "$cmd" in
start)
	for tool in redis-server redis-cli ${tls:+openssl}; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "SKIPPED: $tool not found: the cluster tests did NOT run" >&2
			[ -n "${CI:-}" ] && exit 1
			exit 77
		fi
	done
	stop_all
	rm -rf "$dir"
	mkdir -p "$dir"
	# listen: the node's port options; cli: redis-cli's for the TLS ports
	cli=""
	if [ -n "$tls" ]; then
		sh "$(dirname "$0")/redis_tls.sh" certs "$dir"
		cli="--tls --cacert $dir/ca.crt --cert $dir/client.crt --key $dir/client.key"
	fi
	ports=""
	for n in $(seq 1 $nodes); do
		d="$dir/node$n"
		mkdir -p "$d"
		tries=0
		while :; do
			tries=$((tries + 1))
			[ $tries -le 20 ] || { echo "cluster node $n did not start" >&2; stop_all; exit 1; }
			port=$(random_port)
			rm -f "$d/redis.pid" "$d/redis.sock" "$d/nodes.conf"
			if [ -n "$tls" ]; then
				set -- --port 0 --tls-port "$port" --tls-cluster yes --tls-replication yes \
					--tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
					--tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients optional
			else
				set -- --port "$port"
			fi
			redis-server "$@" --bind 127.0.0.1 --cluster-enabled yes \
				--cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
				--unixsocket "$d/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
				--daemonize yes --pidfile "$d/redis.pid" --dir "$d" --logfile "$d/redis.log" \
				--maxmemory-policy noeviction || continue
			i=0
			up=0
			while [ $i -lt 60 ]; do
				if redis-cli -s "$d/redis.sock" ping 2>/dev/null | grep -q PONG; then
					up=1
					break
				fi
				i=$((i + 1))
				sleep 0.05
			done
			[ $up = 1 ] && break
			sh "$(dirname "$0")/redis.sh" stop "$d" >/dev/null 2>&1 || true
		done
		ports="$ports $port"
	done
	addrs=""
	for p in $ports; do
		addrs="$addrs 127.0.0.1:$p"
	done
	# shellcheck disable=SC2086
	if ! redis-cli $cli --cluster create $addrs --cluster-replicas "$replicas" \
		--cluster-yes >"$dir/create.log" 2>&1; then
		cat "$dir/create.log" >&2
		stop_all
		exit 1
	fi
	i=0
	while [ $i -lt 400 ]; do
		ok=0
		for n in $(seq 1 $nodes); do
			s="$dir/node$n/redis.sock"
			redis-cli -s "$s" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || continue
			# a replica counts once its link to its master is up
			if redis-cli -s "$s" info replication 2>/dev/null | grep -q 'role:slave'; then
				redis-cli -s "$s" info replication 2>/dev/null |
					grep -q 'master_link_status:up' || continue
			fi
			ok=$((ok + 1))
		done
		if [ $ok = $nodes ]; then
			echo $ports >"$dir/ports"
			exit 0
		fi
		i=$((i + 1))
		sleep 0.05
	done
	echo "the cluster did not reach cluster_state:ok" >&2
	stop_all
	exit 1
	;;
stop)
	stop_all
	;;
*)
	echo "usage: $0 start DIR [REPLICAS] | stop DIR" >&2
	exit 2
	;;
esac
