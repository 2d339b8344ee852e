#!/usr/bin/env bash
# @auth0/auth0-spa-js, unmodified from the registry, in Debian's Chromium (Playwright) against a real Callsign over
# HTTPS with a throwaway test certificate and the phone factor on. A tiny static app (server.mjs, app/) is served over
# HTTPS with the same certificate on two more ports of localhost: the app's origin (listed in web_origins, the same
# site as Callsign, so the SSO cookie reaches the silent-authentication iframe) and a second origin listed nowhere.
# Extra arguments go to `playwright test`. Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), node + npm, python3,
# openssl, curl; Chromium (installed with apt-get when missing and running as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
chromium="${CALLSIGN_SPA_CHROMIUM:-/usr/bin/chromium}"
artifacts="$here/artifacts"
work="$(mktemp -d)"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ -f "$work/server.log" ]; then echo "== server log (last 100 lines)"; tail -100 "$work/server.log"; fi
  [ -f "$work/server.log" ] && mkdir -p "$artifacts" && cp "$work/server.log" "$artifacts/server.log"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "no $chromium: install Debian's chromium (apt-get install chromium) or set CALLSIGN_SPA_CHROMIUM"; exit 1
  fi
fi

echo "== npm ci"
(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)

rm -rf "$artifacts"; mkdir -p "$artifacts"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"; app_port="$(free_port)"; other_port="$(free_port)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

NO_COLOR=1 CALLSIGN_TLS__CERT_FILE="$work/cert.pem" CALLSIGN_TLS__KEY_FILE="$work/key.pem" CALLSIGN_PUBLIC_URL="https://localhost:$port/" \
  "$bin" --database-url "sqlite://$work/callsign.db" --data-dir "$work/data" --listen "127.0.0.1:$port" serve \
  >"$work/server.log" 2>&1 &
pids+=($!)
node "$here/server.mjs" "$work/cert.pem" "$work/key.pem" "$app_port" "$other_port" >"$work/app.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -sf --cacert "$work/cert.pem" "https://localhost:$port/readyz" >/dev/null 2>&1 \
    && curl -sf --cacert "$work/cert.pem" "https://localhost:$app_port/" >/dev/null 2>&1 \
    && curl -sf --cacert "$work/cert.pem" "https://localhost:$other_port/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --cacert "$work/cert.pem" "https://localhost:$port/readyz" >/dev/null && [ -f "$work/data/bootstrap-credentials.json" ] \
  || { echo "Callsign did not become ready on https://localhost:$port/"; exit 1; }
curl -sf --cacert "$work/cert.pem" "https://localhost:$other_port/" >/dev/null || { echo "the app's server did not start"; cat "$work/app.log"; exit 1; }

export CALLSIGN_SPA_DOMAIN="localhost:$port" CALLSIGN_SPA_BOOTSTRAP="$work/data/bootstrap-credentials.json"
export CALLSIGN_SPA_APP="https://localhost:$app_port" CALLSIGN_SPA_OTHER_APP="https://localhost:$other_port"
export CALLSIGN_SPA_CHROMIUM="$chromium" CALLSIGN_SPA_ARTIFACTS="$artifacts/test-results"
echo "== @auth0/auth0-spa-js $(node -p 'require("'"$here"'/node_modules/@auth0/auth0-spa-js/package.json").version') in $("$chromium" --version 2>/dev/null) against https://localhost:$port/"
(cd "$here" && NODE_EXTRA_CA_CERTS="$work/cert.pem" ./node_modules/.bin/playwright test "$@")
