#!/usr/bin/env bash
# Contract test: Callsign's Amazon SNS provider (the real SigV4 signer, crate aws-sigv4) against moto's SNS
# (PyPI `moto[server]`) with signature verification on. moto serves the first INITIAL_NO_AUTH_ACTION_COUNT
# requests unauthenticated: setup_iam.py spends them creating an IAM user allowed sns:Publish and its access key;
# from then on moto checks every signature. The `moto_*` tests in crates/callsign-messaging/tests/providers/sns.rs
# publish an SMS, find it in moto's `GET /moto-api/data.json` (`sns.SMS[]`), and check that a wrong secret is
# refused for good (403 SignatureDoesNotMatch).
# Needs: python3 (with venv), curl, cargo. moto is installed into ~/.cache/callsign-moto-venv when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${CALLSIGN_MOTO_VENV:-$HOME/.cache/callsign-moto-venv}"
log="$(mktemp)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT

if ! "$venv/bin/python" -c 'import moto, boto3' 2>/dev/null || [ ! -x "$venv/bin/moto_server" ]; then
  echo "Installing moto[server] into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
fi

port="${CALLSIGN_MOTO_PORT:-5055}"
url="http://127.0.0.1:$port"
if curl -s -o /dev/null "$url/moto-api/data.json"; then
  echo "something already listens on 127.0.0.1:$port; set CALLSIGN_MOTO_PORT"; exit 1
fi
INITIAL_NO_AUTH_ACTION_COUNT=4 "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!

ready=""
for _ in $(seq 1 100); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "$url/moto-api/data.json" || true)"
  if [ "$code" = "200" ]; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$ready" ] || { echo "moto did not start:"; cat "$log"; exit 1; }
echo "moto is serving SNS on $url (signatures verified after the IAM setup)"

keys="$("$venv/bin/python" "$here/setup_iam.py" "$url")" || { echo "--- moto log"; tail -50 "$log"; exit 1; }
export CALLSIGN_TEST_MOTO_URL="$url"
export CALLSIGN_TEST_MOTO_ACCESS_KEY_ID="$(sed -n 's/^CALLSIGN_TEST_MOTO_ACCESS_KEY_ID=//p' <<<"$keys")"
export CALLSIGN_TEST_MOTO_SECRET_ACCESS_KEY="$(sed -n 's/^CALLSIGN_TEST_MOTO_SECRET_ACCESS_KEY=//p' <<<"$keys")"
[ -n "$CALLSIGN_TEST_MOTO_ACCESS_KEY_ID" ] && [ -n "$CALLSIGN_TEST_MOTO_SECRET_ACCESS_KEY" ] ||
  { echo "setup_iam.py printed no access key"; exit 1; }

# Signature verification must really be on: an unsigned-looking request with a made-up key is refused.
probe="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/" \
  -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'Authorization: AWS4-HMAC-SHA256 Credential=AKIAPROBE/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=00' \
  --data 'Action=Publish&Version=2010-03-31&PhoneNumber=%2B14155552671&Message=probe' || true)"
[ "$probe" = "403" ] || { echo "moto accepted a forged request (HTTP $probe): signature checks are off"; exit 1; }

cd "$root"
if ! cargo test --locked -p callsign-messaging --test providers -- --ignored moto; then
  echo "--- moto log"; tail -50 "$log"; exit 1
fi
