#!/usr/bin/env bash
# Schema fuzzing: Schemathesis generates requests from docs/openapi.json (valid and invalid ones) and sends them to
# a real Callsign; every answer must be documented by its operation (status code, content type, body schema) and
# none may be a 5xx. Any finding fails the run; so does a panic or an ERROR line in the server log.
# Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), python3 (with venv), curl; unshare and ip (util-linux,
# iproute2) to cut the server off the network (without them the run says so and goes on with the guards below).
# Knobs: CALLSIGN_TEST_FUZZ_EXAMPLES (cases per operation and phase, default 100), CALLSIGN_TEST_FUZZ_SEED (default
# 20260101), CALLSIGN_TEST_FUZZ_PHASES (default examples,coverage,fuzzing,stateful), CALLSIGN_TEST_FUZZ_VENV
# (default $HOME/.cache/callsign-schemathesis-venv), CALLSIGN_TEST_FUZZ_ARTIFACTS (a folder to keep the JSON report,
# the server log and the generated configuration in), CALLSIGN_TEST_FUZZ_ARGS (more `schemathesis run` options,
# e.g. `--include-path-regex /users` while debugging).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
venv="${CALLSIGN_TEST_FUZZ_VENV:-$HOME/.cache/callsign-schemathesis-venv}"

if [ -z "${CALLSIGN_TEST_FUZZ_INNER:-}" ]; then
  export CALLSIGN_TEST_FUZZ_STARTED="$SECONDS"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  # The fuzzer may point the phone provider anywhere (a Twilio account, a webhook URL) and then send a message.
  # Run the server and the fuzzer in a network namespace of their own, with only a loopback interface, so that no
  # request ever leaves this machine.
  if command -v unshare >/dev/null && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
    exec unshare -n env CALLSIGN_TEST_FUZZ_INNER=netns bash -c 'ip link set lo up && exec bash "$0"' "$0"
  fi
  echo "note: no network namespace (unshare -n failed); relying on the local Twilio URL and the pinned hook URL"
  export CALLSIGN_TEST_FUZZ_INNER=shared
fi

examples="${CALLSIGN_TEST_FUZZ_EXAMPLES:-100}"
seed="${CALLSIGN_TEST_FUZZ_SEED:-20260101}"
phases="${CALLSIGN_TEST_FUZZ_PHASES:-examples,coverage,fuzzing,stateful}"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "${CALLSIGN_TEST_FUZZ_ARTIFACTS:-}" ]; then
    mkdir -p "$CALLSIGN_TEST_FUZZ_ARTIFACTS"
    cp -f "$work"/*.json "$work"/*.log "$work"/*.toml "$CALLSIGN_TEST_FUZZ_ARTIFACTS/" 2>/dev/null || true
  fi
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
# Twilio's API is aimed at the discard port of the loopback: a send through it fails at once, and locally.
CALLSIGN_PUBLIC_URL="$base/" CALLSIGN_LOG_LEVEL=warn CALLSIGN_PROVIDERS__TWILIO__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__CLICKSEND__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__ESENDEX__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__INFOBIP__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__MITTO__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__SNS__BASE_URL="http://127.0.0.1:9" CALLSIGN_PROVIDERS__TELESIGN__BASE_URL="http://127.0.0.1:9" \
  "$bin" --database-url "sqlite://$work/callsign.db" --data-dir "$work/data" --listen "127.0.0.1:$port" serve \
  2>"$work/server.log" &
pid=$!
for _ in $(seq 1 150); do curl -sf "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null || { echo "callsign did not start:"; cat "$work/server.log"; exit 1; }

"$venv/bin/python" "$here/fixtures.py" "$root/docs/openapi.json" "$base" "$work/data/bootstrap-credentials.json" "$work/schemathesis.toml" \
  || { echo "--- server log"; tail -50 "$work/server.log"; exit 1; }

# Deterministic: one worker (a fixed operation order), a fixed seed, no example database (it would replay earlier
# runs' failures and make one run depend on the last) and, in the generated configuration, no response pool.
# The too_slow health check measures generation time, which depends on the machine's load: off.
echo "schemathesis: $examples examples per operation and phase, phases $phases, seed $seed, network $CALLSIGN_TEST_FUZZ_INNER"
status=0
# shellcheck disable=SC2086 # CALLSIGN_TEST_FUZZ_ARGS is a list of options
(cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$root/docs/openapi.json" \
  --url "$base" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --phases "$phases" --max-examples "$examples" --seed "$seed" --workers 1 --generation-database none \
  --suppress-health-check too_slow --request-timeout 30 --no-color --output-truncate true \
  --report json --report-json-path "$work/report.json" ${CALLSIGN_TEST_FUZZ_ARGS:-}) || status=$?

if grep -qE 'panicked|ERROR' "$work/server.log"; then
  echo "--- server log (errors)"; grep -E -A5 'panicked|ERROR' "$work/server.log" | head -80
  [ "$status" -ne 0 ] || status=1
fi
"$venv/bin/python" "$here/summary.py" "$work/report.json" "$status" "$((SECONDS - ${CALLSIGN_TEST_FUZZ_STARTED:-0}))"
exit "$status"
