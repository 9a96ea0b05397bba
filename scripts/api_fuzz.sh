#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from the service's own
# /openapi.json — examples, boundary values, random data and the stateful
# phase — with a fixed seed and a bounded number of examples, and runs every
# check (`--checks all`: no 5xx, every response as described, schema-valid
# requests accepted and invalid ones refused, authentication enforced where the
# description declares it, ...). The service must still be healthy after.
#
# Usage: scripts/api_fuzz.sh DATABASE_URL [development|required]
#   development (default): authentication disabled, as the description served
#     in that mode says (no security; the optional X-User-Id header).
#   required: AUTH_MODE=required with a fresh secret; a token minted by
#     `chat-room token` is sent as `Authorization: Bearer`, and every operation
#     that needs one must refuse a request without it.
# Other settings come from the environment (e.g. REDIS_URL). Needs
# target/debug/chat-room (cargo build -p chat-api) and schemathesis
# (pip install schemathesis==4.32.5). Prints `api fuzzing (MODE): N failures, M errors`.
set -euo pipefail
cd "$(dirname "$0")/.."

database_url=$1
mode=${2:-development}
seed=${FUZZ_SEED:-42}
examples=${FUZZ_MAX_EXAMPLES:-20}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
report=$(mktemp -d)

auth_env=(AUTH_MODE=disabled)
auth_header=()
case "$mode" in
  development) ;;
  required)
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    auth_env=(AUTH_MODE=required "JWT_SECRET=$secret")
    token=$(env "${auth_env[@]}" target/debug/chat-room token --sub fuzzer --ttl 2h)
    auth_header=(-H "Authorization: Bearer $token")
    ;;
  *) echo "mode must be development or required, not $mode" >&2; exit 2 ;;
esac

# Limits off: the fuzzer sends hundreds of requests a second from one address.
env "${auth_env[@]}" DATABASE_URL="$database_url" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn \
  RATE_LIMIT_MESSAGES_PER_SECOND=0 RATE_LIMIT_HTTP_PER_SECOND=0 RATE_LIMIT_WS_CONNECTS_PER_SECOND=0 \
  target/debug/chat-room >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$report"' EXIT

for _ in $(seq 60); do
  if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 0.5
done

status=0
out="$report/st.log"
set +o pipefail
PYTHONPATH="scripts/schemathesis${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=chat_hooks \
  st --config-file scripts/schemathesis/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  "${auth_header[@]}" \
  --seed "$seed" --max-examples "$examples" --workers 1 --no-color 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -o pipefail
# schemathesis's closing line, e.g. `== 2 failures, 1 error in 83.20s ==`.
summary=$(grep -E '^=+ .* in [0-9.]+s =+$' "$out" | tail -1)
failures=$(grep -oE '[0-9]+ failures?' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
errors=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
echo "api fuzzing ($mode): $failures failures, $errors errors (exit $status)"

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
