# Sourced by scripts/bench_targets.sh and scripts/bench_scale.sh: the binaries to
# measure and the settings every measured instance runs with.
# BENCH_BIN: a directory holding another chat-room (and chat-bench) to measure,
# e.g. an older commit's release build for a before/after table; else this
# checkout's release build, built now.
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$(cd "$BENCH_BIN" && pwd)
else
  BIN=$PWD/target/release
  cargo build --release --locked -p chat-api -p chat-bench
fi
B=$BIN/chat-bench

# Load generators on one address: the (shared) rate limits would throttle them.
export RATE_LIMIT_MESSAGES_PER_SECOND=0 RATE_LIMIT_HTTP_PER_SECOND=0 \
  RATE_LIMIT_WS_CONNECTS_PER_SECOND=0 WS_MAX_SOCKETS_PER_USER=0 LOG_LEVEL=warn
