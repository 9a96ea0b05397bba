#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from the service's own
# /openapi.json (examples, boundary values, random data; not the stateful
# phase: its inferred links put integers into headers and crash its own client)
# with a fixed seed and a bounded number of examples, and checks that no
# response is a 5xx and every response matches the description (status,
# content type, headers, body schema). The service must still be healthy after.
#
# Usage: scripts/api_fuzz.sh DATABASE_URL   (other settings from the environment,
# e.g. REDIS_URL). Needs target/debug/chat-room (cargo build -p chat-api) and
# schemathesis (pip install schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."

database_url=$1
seed=${FUZZ_SEED:-42}
examples=${FUZZ_MAX_EXAMPLES:-20}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)

# Limits off: the fuzzer sends hundreds of requests a second from one address.
DATABASE_URL="$database_url" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn \
  RATE_LIMIT_MESSAGES_PER_SECOND=0 RATE_LIMIT_HTTP_PER_SECOND=0 RATE_LIMIT_WS_CONNECTS_PER_SECOND=0 \
  target/debug/chat-room >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

for _ in $(seq 60); do
  if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 0.5
done

status=0
st run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --seed "$seed" --max-examples "$examples" --workers 1 --no-color || status=$?

if ! curl -fs "http://127.0.0.1:$port/health" >/dev/null; then
  echo "the service is not healthy after fuzzing" >&2
  cat "$log" >&2
  exit 1
fi
if grep -q "panicked" "$log"; then
  echo "the service panicked while fuzzed:" >&2
  grep -A5 "panicked" "$log" >&2
  exit 1
fi
exit "$status"
