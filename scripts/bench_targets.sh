#!/usr/bin/env bash
# The performance targets of docs/BENCHMARKS.md, three runs each, against the
# release build: `scripts/bench_targets.sh [OUT_DIR] [SCENARIO...]`.
# Needs Postgres and Redis on localhost (as in .ci/run) and nothing else busy on
# the machine. Each run writes OUT_DIR/<scenario>-<n>.json; summarise them with
# `python3 scripts/bench_summary.py OUT_DIR`. BENCH_BIN=DIR measures the
# chat-room (and chat-bench) in DIR instead of building this checkout.
# Not in the default list: `inbox` and `inbox-rooms` (the inbox socket, and the
# same load over room sockets), e.g. `scripts/bench_targets.sh OUT inbox inbox-rooms`.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-bench-results}
shift || true
SCENARIOS=${*:-"pg-throughput sqlite-throughput pg-latency pg-fanout pg-legacy pg-connections pg-history pg-redis-outage"}
RUNS=${RUNS:-3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PG_URL=postgres://postgres@127.0.0.1:5432/chat_bench

# BIN, B (chat-bench) and the settings of the measured instances.
source scripts/bench_env.sh

SERVICE_PID=""
stop_service() {
  if [ -n "$SERVICE_PID" ]; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
  fi
}
trap stop_service EXIT

port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "something already listens on :$1; stop it first" >&2
    return 1
  fi
}

wait_healthy() {
  for _ in $(seq 100); do
    kill -0 "$SERVICE_PID" 2>/dev/null || { echo "the service exited (see $OUT)" >&2; return 1; }
    curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "the service on :$1 did not come up" >&2
  return 1
}

# A fresh database and Redis prefix each time, so every scenario starts alike.
start_pg() {
  stop_service
  port_free 8102
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS chat_bench WITH (FORCE)" -c "CREATE DATABASE chat_bench"
  PORT=8102 DATABASE_URL=$PG_URL REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379} \
    REDIS_KEY_PREFIX="chatbench-$RANDOM:" "$BIN/chat-room" >"$OUT/service-pg.log" 2>&1 &
  SERVICE_PID=$!
  wait_healthy 8102
  T=http://127.0.0.1:8102
}

start_sqlite() {
  stop_service
  port_free 8101
  local dir
  dir=$(mktemp -d)
  (cd "$dir" && PORT=8101 "$BIN/chat-room" >"$OUT/service-sqlite.log" 2>&1) &
  SERVICE_PID=$!
  wait_healthy 8101
  T=http://127.0.0.1:8101
}

# run NAME ARGS...: RUNS runs of one chat-bench scenario, the load before each noted.
run() {
  local name=$1 n
  shift
  for n in $(seq "$RUNS"); do
    echo "== $name run $n, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$B" "$@" --quiet --json "$OUT/$name-$n.json" | tail -n +2
  done
}

for scenario in $SCENARIOS; do
  case $scenario in
    pg-throughput) start_pg; run "$scenario" throughput --target "$T" --baseline --duration 10 ;;
    sqlite-throughput) start_sqlite; run "$scenario" throughput --target "$T" --baseline --duration 10 ;;
    pg-latency) start_pg; run "$scenario" throughput --target "$T" --baseline --rate 1000 --duration 10 ;;
    pg-fanout) start_pg; run "$scenario" fanout --target "$T" --baseline --sockets 2000 --rate 50 --duration 10 ;;
    pg-legacy) start_pg; run "$scenario" legacy --target "$T" --baseline --pairs 100 --duration 10 ;;
    pg-connections)
      "$B" baseline --port 9101 >"$OUT/baseline.log" 2>&1 &
      baseline=$!
      for n in $(seq "$RUNS"); do
        # A fresh service each time: RSS per socket is measured from its start.
        start_pg
        RUNS=1 run "$scenario-$n" connections --target "$T" --baseline-url http://127.0.0.1:9101 \
          --sockets 18000 --source-ips 8 --hold 10
        mv "$OUT/$scenario-$n-1.json" "$OUT/$scenario-$n.json"
      done
      kill "$baseline" 2>/dev/null || true  # it may have gone with its last client
      ;;
    inbox | inbox-rooms)
      # Issue: 1,000 users × 20 of 1,000 rooms over one inbox socket (/ws) per
      # user, and the same load over room sockets (20,000 of them) for the
      # ratio; a fresh service and baseline each run, so RSS per subscription
      # counts from their start. bench_summary.py prints inbox ÷ inbox-rooms.
      # inbox-rooms holds 20,000 client sockets (and the service as many):
      # more than a 20,000 open-file limit, so it is raised where allowed. The
      # baseline is a process of its own (as for pg-connections): its RSS is read too.
      over=inbox
      [ "$scenario" = inbox-rooms ] && over=room-sockets
      ulimit -n 65536 2>/dev/null || echo "cannot raise the open-file limit to 65536 ($(ulimit -n)): $scenario may fail" >&2
      for n in $(seq "$RUNS"); do
        start_pg
        port_free 9101
        "$B" baseline --port 9101 >"$OUT/baseline-$scenario-$n.log" 2>&1 &
        baseline=$!
        RUNS=1 run "$scenario-$n" inbox --target "$T" --baseline-url http://127.0.0.1:9101 --over "$over" \
          --users 1000 --rooms-per-user 20 --rooms 1000 --senders 100 --duration 10 --source-ips 8
        mv "$OUT/$scenario-$n-1.json" "$OUT/$scenario-$n.json"
        kill "$baseline" 2>/dev/null || true
        wait "$baseline" 2>/dev/null || true
      done
      ;;
    pg-history)
      # Filled by the tool as fast as it can, on a fresh database; no ANALYZE by hand.
      start_pg
      room=$(curl -sf -X POST "$T/rooms" -H 'content-type: application/json' -d '{"name":"history 1M"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
      echo "== filling room $room with 1,000,000 messages, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
      start=$(date +%s)
      "$B" history --target "$T" --room "$room" --seed 1000000 --duration 1 --quiet --json "$OUT/$scenario-fill.json" | tail -n +2
      echo "filled in $(($(date +%s) - start)) s"
      run "$scenario-16" history --target "$T" --baseline --room "$room" --concurrency 16 --duration 5
      run "$scenario-1" history --target "$T" --baseline --room "$room" --concurrency 1 --duration 5
      ;;
    pg-redis-outage)
      # Issue 17: the same flat-out run with Redis up, cut and stalled, Redis
      # reached through scripts/fault_proxy.py (in every row, so the proxy's own
      # cost is in all of them); a fresh service per round.
      port_free 6380
      python3 scripts/fault_proxy.py 6380 127.0.0.1:6379 &
      proxy=$!
      for n in $(seq "$RUNS"); do
        BENCH_REDIS_URL=redis://127.0.0.1:6380 start_pg
        for stage in up cut stalled; do
          case $stage in
            cut) kill -USR1 "$proxy" ;;
            stalled) kill -HUP "$proxy"; sleep 3; kill -USR2 "$proxy" ;;
          esac
          RUNS=1 run "pg-redis-$stage-$n" throughput --target "$T" --duration 10
          mv "$OUT/pg-redis-$stage-$n-1.json" "$OUT/pg-redis-$stage-$n.json"
        done
        kill -HUP "$proxy"
      done
      kill "$proxy"
      ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
echo "results in $OUT"
