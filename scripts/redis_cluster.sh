#!/usr/bin/env bash
# A 3-master Redis Cluster on this machine, for the tests and for trying the
# service on a cluster: `scripts/redis_cluster.sh start [DIR] [FIRST_PORT]` starts
# redis-server --cluster-enabled yes on FIRST_PORT (default 7001) and the next two
# ports, joins them with `redis-cli --cluster create … --cluster-yes` and waits for
# the cluster to be ok; it prints the REDIS_URL that names it. It does nothing but
# print the URL when the cluster is already up. `scripts/redis_cluster.sh stop
# [DIR] [FIRST_PORT]` shuts the three down and removes their state. Nothing is
# kept on disk beyond DIR (default /tmp/chat-redis-cluster).
set -euo pipefail

action=${1:-start}
dir=${2:-/tmp/chat-redis-cluster}
first=${3:-7001}
ports=("$first" $((first + 1)) $((first + 2)))
url="redis-cluster://127.0.0.1:${ports[0]}?node=127.0.0.1:${ports[1]}&node=127.0.0.1:${ports[2]}"

cluster_ok() {
  redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

case $action in
  start)
    if cluster_ok; then
      echo "$url"
      exit 0
    fi
    mkdir -p "$dir"
    for port in "${ports[@]}"; do
      if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
        rm -f "$dir/nodes-$port.conf"
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
          --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 5000 \
          --save "" --appendonly no --dir "$dir" --daemonize yes \
          --logfile "$dir/redis-$port.log" --pidfile "$dir/redis-$port.pid" >/dev/null
      fi
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    # Nodes that already know each other (a cluster that lost quorum) are reset first.
    for port in "${ports[@]}"; do
      redis-cli -p "$port" flushall >/dev/null 2>&1 || true
      redis-cli -p "$port" cluster reset hard >/dev/null
    done
    redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
      --cluster-yes >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 1; }
    for _ in $(seq 100); do
      if cluster_ok; then
        echo "$url"
        exit 0
      fi
      sleep 0.1
    done
    echo "the cluster did not become ok (see $dir)" >&2
    exit 1
    ;;
  stop)
    for port in "${ports[@]}"; do
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop [DIR] [FIRST_PORT]" >&2
    exit 2
    ;;
esac
