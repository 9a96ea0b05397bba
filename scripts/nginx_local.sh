#!/usr/bin/env bash
# Debian's nginx with the project's deploy/nginx.conf on this machine, in front of
# instances given as host:port instead of compose's service names, listening on
# 127.0.0.1:PORT: `scripts/nginx_local.sh DIR PORT UPSTREAM...`. Writes
# DIR/nginx.conf (only the listen address, the upstream servers and the paths
# nginx writes to differ from deploy/nginx.conf) and runs nginx in the foreground;
# stop it with SIGTERM (or SIGQUIT to let requests finish). The balancer tests and
# the scale-out measurements (docs/SCALING.md) use it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -lt 3 ]; then
  echo "usage: $0 DIR PORT UPSTREAM..." >&2
  exit 2
fi
dir=$(mkdir -p "$1" && cd "$1" && pwd)
port=$2
shift 2
servers=""
for upstream in "$@"; do
  servers+="        server $upstream max_fails=0;\n"
done

awk -v port="$port" -v servers="$servers" -v dir="$dir" '
  /^worker_processes/ { print "worker_processes 1;"; print "pid " dir "/nginx.pid;"; next }
  /^http \{/ {
    print
    split("client_body proxy fastcgi uwsgi scgi", kinds, " ")
    for (i in kinds) print "    " kinds[i] "_temp_path " dir "/" kinds[i] ";"
    next
  }
  /server chat-room-[0-9]+:8001/ { if (!written) { printf "%s", servers; written = 1 } next }
  /listen 8001;/ { sub(/listen 8001;/, "listen 127.0.0.1:" port ";") }
  { print }
' deploy/nginx.conf > "$dir/nginx.conf"

grep -q "listen 127.0.0.1:$port;" "$dir/nginx.conf" || { echo "listen line not found" >&2; exit 1; }
grep -q "server $1 " "$dir/nginx.conf" || { echo "upstream block not found" >&2; exit 1; }
exec nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
