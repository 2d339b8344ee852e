#!/usr/bin/env bash
# Contract test: Callsign's Twilio client against Prism mocking Twilio's own OpenAPI description
# (twilio_api_v2010.json as shipped in npm @twilio/cli-core). Prism checks each request against the spec
# (path and AccountSid pattern, Basic auth, form content type, required fields) and answers 201 with the spec's
# example; anything else (401/415/422) fails the test `prism_contract` in crates/callsign-server/tests/twilio.rs.
# Needs: node + npm, curl, python3, cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
log="$(mktemp)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT

(cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
spec="$here/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json"
[ -f "$spec" ] || { echo "Twilio's OpenAPI description is missing: $spec"; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$here/node_modules/.bin/prism" mock -h 127.0.0.1 -p "$port" "$spec" >"$log" 2>&1 &
pid=$!

# The spec is large: Prism takes ~20 s to be ready. Any HTTP answer means it is listening.
ready=""
for _ in $(seq 1 240); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/2010-04-01/Accounts.json" || true)"
  if [ "$code" != "000" ]; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
[ -n "$ready" ] || { echo "Prism did not start:"; cat "$log"; exit 1; }
echo "Prism is mocking Twilio's API on 127.0.0.1:$port"

cd "$root"
# The provider client by itself (callsign-messaging), then through the server (delivery jobs, the MFA API).
if ! { CALLSIGN_TEST_PRISM_URL="http://127.0.0.1:$port" \
  cargo test --locked -p callsign-messaging --test providers -- --ignored prism &&
  CALLSIGN_TEST_PRISM_URL="http://127.0.0.1:$port" \
  cargo test --locked -p callsign-server --test twilio -- --ignored prism; }; then
  echo "--- Prism log"; tail -50 "$log"; exit 1
fi
