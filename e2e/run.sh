#!/usr/bin/env bash
# Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium, never a downloaded browser) against a real
# Callsign on a free port with a throwaway SQLite database. Screenshots, axe reports, failure traces and the server
# log are kept in e2e/artifacts/. Extra arguments go to `playwright test` (e.g. a spec file or `-g name`).
# Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), node + npm, python3, curl; Chromium (installed with apt-get
# when missing and running as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
chromium="${CALLSIGN_E2E_CHROMIUM:-/usr/bin/chromium}"
artifacts="$here/artifacts"
work="$(mktemp -d)"
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  [ -f "$work/server.log" ] && cp "$work/server.log" "$artifacts/server.log"
  if [ "$rc" -ne 0 ] && [ -f "$work/server.log" ]; then echo "== server log (last 200 lines)"; tail -200 "$work/server.log"; fi
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
    echo "no $chromium: install Debian's chromium (apt-get install chromium) or set CALLSIGN_E2E_CHROMIUM"; exit 1
  fi
fi
"$chromium" --version 2>/dev/null  # (its launcher script complains on stderr about two /dev/shm mounts)

echo "== npm ci"
(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)

rm -rf "$artifacts"; mkdir -p "$artifacts"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
NO_COLOR=1 CALLSIGN_PUBLIC_URL="$base/" CALLSIGN_PROVIDERS__MITTO__BASE_URL="http://127.0.0.1:9" "$bin" --database-url "sqlite://$work/callsign.db" --data-dir "$work/data" \
  --listen "127.0.0.1:$port" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do curl -sf "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null && [ -f "$work/data/bootstrap-credentials.json" ] || { echo "Callsign did not become ready on $base"; exit 1; }

export CALLSIGN_E2E_BASE_URL="$base" CALLSIGN_E2E_BOOTSTRAP="$work/data/bootstrap-credentials.json"
export CALLSIGN_E2E_CHROMIUM="$chromium" CALLSIGN_E2E_ARTIFACTS="$artifacts"
echo "== Playwright against $base"
(cd "$here" && ./node_modules/.bin/playwright test "$@")
echo "artifacts: $artifacts"
