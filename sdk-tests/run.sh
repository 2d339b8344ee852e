#!/usr/bin/env bash
# Runs the official Auth0 SDKs (Node `auth0`, Python `auth0-python`) against a real Callsign over HTTPS.
# Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), node + npm, python3 + pip, openssl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"; short_port="$(free_port)"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

common=(--database-url "sqlite://$work/callsign.db" --data-dir "$work/data")
tls_env=(CALLSIGN_TLS__CERT_FILE="$work/cert.pem" CALLSIGN_TLS__KEY_FILE="$work/key.pem")
env "${tls_env[@]}" CALLSIGN_PUBLIC_URL="https://localhost:$port/" \
  "$bin" "${common[@]}" --listen "127.0.0.1:$port" serve 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -f "$work/data/bootstrap-credentials.json" ] && break; sleep 0.1; done
# A second node on the same database whose access tokens live 2 seconds (for the expiry test). Same issuer and
# audience as the first, as a load-balanced deployment would have.
env "${tls_env[@]}" CALLSIGN_PUBLIC_URL="https://localhost:$port/" CALLSIGN_ACCESS_TOKEN_LIFETIME_SECS=2 \
  "$bin" "${common[@]}" --listen "127.0.0.1:$short_port" serve 2>"$work/server2.log" &
pids+=($!)
for p in "$port" "$short_port"; do
  for _ in $(seq 1 100); do curl -sfk "https://localhost:$p/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf --cacert "$work/cert.pem" "https://localhost:$p/readyz" >/dev/null || { cat "$work"/server*.log; exit 1; }
done

export CALLSIGN_TEST_DOMAIN="localhost:$port" CALLSIGN_TEST_SHORT_LIVED_DOMAIN="localhost:$short_port"
export CALLSIGN_TEST_BOOTSTRAP="$work/data/bootstrap-credentials.json"

echo "== auth0 (npm) SDK"
(cd "$here/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null && NODE_EXTRA_CA_CERTS="$work/cert.pem" node --test)

echo "== auth0-python SDK"
venv="${CALLSIGN_TEST_SDK_VENV:-$HOME/.cache/callsign-sdk-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/python/requirements.txt"
(cd "$here/python" && REQUESTS_CA_BUNDLE="$work/cert.pem" "$venv/bin/python" -m pytest -q -p no:cacheprovider)

echo "== the README's tour script"
BASE="https://localhost:$port" DATA="$work/data" CURL_EXTRA="--cacert $work/cert.pem" PHONE="+14155550199" \
  bash "$here/../scripts/tour.sh" > "$work/tour.log" 2>&1 || { cat "$work/tour.log"; exit 1; }
grep -q 'gd_enrollment_complete' "$work/tour.log" || { cat "$work/tour.log"; echo "tour did not complete an enrollment"; exit 1; }
grep -Eq 'recovery code \(shown once\): [A-Z0-9]{24}$' "$work/tour.log" || { cat "$work/tour.log"; echo "tour did not print the recovery code"; exit 1; }
# A failing step fails the tour: against a server that is not there it must exit non-zero.
if BASE="https://localhost:9" DATA="$work/data" CURL_EXTRA="--cacert $work/cert.pem" bash "$here/../scripts/tour.sh" >/dev/null 2>&1; then
  echo "tour.sh exited 0 against a server that is not there"; exit 1
fi
tail -3 "$work/tour.log"
echo "tour: 2 passed, 0 failed"

echo "== Auth0 web middlewares (express-openid-connect, passport-auth0)"
bash "$here/web/run.sh"

echo "== auth0-deploy-cli (a0deploy): export, import, a modified import read back"
bash "$here/a0deploy/run.sh"

echo "== @auth0/auth0-spa-js in Chromium: redirect login, silent authentication (iframe and refresh tokens), logout"
bash "$here/spa/run.sh"

echo "== @auth0/nextjs-auth0: login, session, access token and refresh, logout revoking the refresh token"
bash "$here/nextjs/run.sh"
