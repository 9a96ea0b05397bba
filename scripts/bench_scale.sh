#!/usr/bin/env bash
# The scale-out measurements of docs/SCALING.md (issue 20): several instances of
# the release build on one Postgres database and one Redis, behind the project's
# own nginx (scripts/nginx_local.sh). `scripts/bench_scale.sh [OUT_DIR] [STEP...]`,
# steps:
#   input    rooms whose sockets all sit on one instance: 1, 2 and 4 instances
#            under the same total load (100 rooms × 10 sockets, 1,000 msgs/s), one
#            chat-bench per instance at 1/N of it; then the same load through
#            nginx (rooms spread over all 4). Reads each instance's Redis input
#            (chat_bus_received_total) before and after: OUT_DIR/input.tsv.
#   spread   1 and 4 instances behind nginx, rooms spread over all of them:
#            1,000 msgs/s (send → delivery latency) and flat out (throughput).
#   cost     one instance at 5,000 msgs/s: the CPU seconds of the service,
#            Postgres, Redis and the rest per message and per delivery
#            (scripts/cpu_sample.py), the basis of the sizing on paper.
#   own-flat flat out with each instance its own rooms (room affinity), 1 vs 4.
#   rolling  4 instances behind nginx under load (scripts/rolling_check.py); each
#            is stopped (SIGTERM) and started again, one at a time; the client
#            checks that every acknowledged message reached every socket once, in order.
# Needs Postgres and Redis on localhost, nginx (nginx-light) and Python's
# websockets, and nothing else busy on the machine. BENCH_BIN=DIR as in
# scripts/bench_targets.sh. RUNS (default 3) runs of each.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-scale-results}
shift || true
STEPS=${*:-"input spread rolling cost"}
RUNS=${RUNS:-3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PG_URL=postgres://postgres@127.0.0.1:5432/chat_scale
LB=8300
LB_URL=http://127.0.0.1:$LB

# BIN, B (chat-bench) and the settings of the measured instances.
source scripts/bench_env.sh

declare -A PIDS=()
NGINX_PID=""
PREFIX=""

stop_all() {
  for i in "${!PIDS[@]}"; do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
    unset "PIDS[$i]"
  done
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  fi
}
trap stop_all EXIT

port_of() { echo $((LB + $1)); }

wait_healthy() {
  local i=$1
  for _ in $(seq 200); do
    kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "instance $i exited (see $OUT/instance-$i.log)" >&2; return 1; }
    curl -sf "http://127.0.0.1:$(port_of "$i")/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "instance $i did not come up" >&2
  return 1
}

# start_instance I: instance I on port LB+I, on the shared database and prefix.
start_instance() {
  local i=$1
  PORT=$(port_of "$i") DATABASE_URL=$PG_URL REDIS_URL=redis://127.0.0.1:6379 \
    REDIS_KEY_PREFIX=$PREFIX "$BIN/chat-room" >>"$OUT/instance-$i.log" 2>&1 &
  PIDS[$i]=$!
  wait_healthy "$i"
}

# start N [nginx]: a fresh database and Redis prefix, N instances (the first
# alone, so that one of them runs the migrations), and nginx in front if asked.
start() {
  local n=$1 i upstreams=()
  stop_all
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS chat_scale WITH (FORCE)" -c "CREATE DATABASE chat_scale"
  PREFIX="chatscale-$RANDOM:"
  for i in $(seq "$n"); do
    start_instance "$i"
    upstreams+=("127.0.0.1:$(port_of "$i")")
  done
  if [ "${2:-}" = nginx ]; then
    mkdir -p "$OUT/nginx"
    scripts/nginx_local.sh "$OUT/nginx" "$LB" "${upstreams[@]}" >"$OUT/nginx/access.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 100); do
      curl -sf "$LB_URL/health" >/dev/null && return 0
      sleep 0.1
    done
    echo "nginx did not come up (see $OUT/nginx/error.log)" >&2
    return 1
  fi
}

# metric I NAME: instance I's value of a counter (0 when absent).
metric() {
  curl -sf "http://127.0.0.1:$(port_of "$1")/metrics" |
    awk -v name="$2" '$1 == name { value = $2 } END { print value + 0 }'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

# acked_and_delivered FILE: "messages deliveries" of a chat-bench JSON result.
acked_and_delivered() {
  python3 -c '
import json, sys
figures = {f["name"]: f["value"] for f in json.load(open(sys.argv[1]))["service"]["figures"]}
print(figures["messages acked"], figures["deliveries"])' "$1"
}

# input_round N RUN MODE: the same total load on N instances; MODE "own" gives
# each instance its own rooms (one chat-bench per instance), "spread" sends it
# all through nginx. Appends one line per instance to input.tsv.
input_round() {
  local n=$1 run=$2 mode=$3 i before=() published=() pids=()
  for i in $(seq "$n"); do
    before[$i]=$(metric "$i" chat_bus_received_total)
    published[$i]=$(metric "$i" chat_bus_published_total)
  done
  local started_load
  started_load=$(load)
  if [ "$mode" = own ]; then
    for i in $(seq "$n"); do
      "$B" throughput --target "http://127.0.0.1:$(port_of "$i")" --rooms $((100 / n)) --sockets 10 \
        --rate $((1000 / n)) --duration 10 --quiet --json "$OUT/input-$n-$mode-$run-$i.json" >/dev/null &
      pids+=($!)
    done
    wait "${pids[@]}"
  else
    "$B" throughput --target "$LB_URL" --rooms 100 --sockets 10 --rate 1000 --duration 10 \
      --quiet --json "$OUT/input-$n-$mode-$run-1.json" >/dev/null
  fi
  for i in $(seq "$n"); do
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$mode" "$run" "$i" \
      $(($(metric "$i" chat_bus_received_total) - before[i])) \
      $(($(metric "$i" chat_bus_published_total) - published[i])) "$started_load" >>"$OUT/input.tsv"
  done
}

for step in $STEPS; do
  case $step in
    input)
      printf 'instances\tmode\trun\tinstance\treceived\tpublished\tload before\n' >"$OUT/input.tsv"
      for n in 1 2 4; do
        for run in $(seq "$RUNS"); do
          echo "== input: $n instance(s), own rooms, run $run, load before: $(load)"
          start "$n"
          input_round "$n" "$run" own
        done
      done
      for run in $(seq "$RUNS"); do
        echo "== input: 4 instances, rooms spread through nginx, run $run, load before: $(load)"
        start 4 nginx
        input_round 4 "$run" spread
      done
      ;;
    spread)
      redis_pid=$(pgrep -f 'redis-server 127.0.0.1:6379' | head -1)
      for n in 1 4; do
        for run in $(seq "$RUNS"); do
          start "$n" nginx
          echo "== spread: $n instance(s) behind nginx, 1,000 msgs/s, run $run, load before: $(load)"
          # CPU and waiting for a core per part (scripts/cpu_sample.py): what limits it.
          python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/spread-$n-latency-$run.before"
          "$B" throughput --target "$LB_URL" --rate 1000 --duration 10 --quiet \
            --json "$OUT/spread-$n-latency-$run.json" | tail -n +2
          python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/spread-$n-latency-$run.after"
          python3 scripts/cpu_sample.py --diff "$OUT/spread-$n-latency-$run.before" \
            "$OUT/spread-$n-latency-$run.after" 10000 100000 >"$OUT/spread-$n-latency-$run.cpu"
          start "$n" nginx
          echo "== spread: $n instance(s) behind nginx, flat out, run $run, load before: $(load)"
          python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/spread-$n-flat-$run.before"
          "$B" throughput --target "$LB_URL" --duration 10 --quiet \
            --json "$OUT/spread-$n-flat-$run.json" | tail -n +2
          python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/spread-$n-flat-$run.after"
          read -r messages deliveries < <(acked_and_delivered "$OUT/spread-$n-flat-$run.json")
          python3 scripts/cpu_sample.py --diff "$OUT/spread-$n-flat-$run.before" \
            "$OUT/spread-$n-flat-$run.after" "$messages" "$deliveries" >"$OUT/spread-$n-flat-$run.cpu"
        done
      done
      ;;
    own-flat)
      # The same flat-out load with each room's sockets on one instance (one
      # chat-bench per instance, 100/N rooms each), as a balancer with room
      # affinity would place them: total messages acked/s over all instances.
      for n in 1 4; do
        for run in $(seq "$RUNS"); do
          start "$n"
          echo "== own-flat: $n instance(s), each its own rooms, flat out, run $run, load before: $(load)"
          pids=()
          for i in $(seq "$n"); do
            "$B" throughput --target "http://127.0.0.1:$(port_of "$i")" --rooms $((100 / n)) \
              --duration 10 --quiet --json "$OUT/own-flat-$n-$run-$i.json" >/dev/null &
            pids+=($!)
          done
          wait "${pids[@]}"
        done
      done
      ;;
    rolling)
      for run in $(seq "$RUNS"); do
        start 4 nginx
        echo "== rolling restart of 4 instances under load, run $run, load before: $(load)"
        python3 scripts/rolling_check.py "$LB_URL" "$OUT/rolling-$run.json" &
        client=$!
        # The client says when its sockets are up and the load runs.
        while [ ! -e "$OUT/rolling-$run.json.ready" ]; do
          kill -0 "$client" 2>/dev/null || { echo "the rolling-restart client exited early" >&2; exit 1; }
          sleep 0.2
        done
        for i in 1 2 3 4; do
          sleep 3
          echo "   stopping instance $i"
          kill -TERM "${PIDS[$i]}"
          wait "${PIDS[$i]}" || true
          start_instance "$i"
          echo "   instance $i is back"
        done
        sleep 3
        touch "$OUT/rolling-$run.json.stop"
        wait "$client"
        rm -f "$OUT/rolling-$run.json.ready" "$OUT/rolling-$run.json.stop"
      done
      ;;
    cost)
      # What each part of the system spends per message, for the sizing on
      # paper: one instance, 100 rooms × 10 sockets at 5,000 msgs/s (a fixed
      # rate, so every run does the same work), CPU seconds of each process
      # group between the end of the warm-up and the end of the run.
      redis_pid=$(pgrep -f 'redis-server 127.0.0.1:6379' | head -1)
      for run in $(seq "$RUNS"); do
        start 1
        echo "== cost: 1 instance, 5,000 msgs/s, run $run, load before: $(load)"
        python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/cost-$run.before"
        wal_before=$(psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT pg_current_wal_lsn()")
        "$B" throughput --target "http://127.0.0.1:$(port_of 1)" --rate 5000 --duration 10 --quiet \
          --json "$OUT/cost-$run.json" | tail -n +2
        python3 scripts/cpu_sample.py "$redis_pid" >"$OUT/cost-$run.after"
        # WAL written meanwhile (the whole server: nothing else writes during a run).
        psql -h 127.0.0.1 -U postgres -d test -Atc \
          "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')" >"$OUT/cost-$run.wal"
        read -r messages deliveries < <(acked_and_delivered "$OUT/cost-$run.json")
        python3 scripts/cpu_sample.py --diff "$OUT/cost-$run.before" "$OUT/cost-$run.after" \
          "$messages" "$deliveries" >"$OUT/cost-$run.cpu.json"
      done
      ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
stop_all
echo "results in $OUT"
