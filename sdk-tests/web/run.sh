#!/usr/bin/env bash
# Auth0's web middlewares (express-openid-connect, passport-auth0), unmodified from the registry, against a real
# Callsign over HTTPS with a test certificate. Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), node + npm,
# python3, openssl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
CALLSIGN_TLS__CERT_FILE="$work/cert.pem" CALLSIGN_TLS__KEY_FILE="$work/key.pem" CALLSIGN_PUBLIC_URL="https://localhost:$port/" \
  "$bin" --database-url "sqlite://$work/callsign.db" --data-dir "$work/data" --listen "127.0.0.1:$port" serve \
  2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf --cacert "$work/cert.pem" "https://localhost:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf --cacert "$work/cert.pem" "https://localhost:$port/readyz" >/dev/null || { cat "$work/server.log"; exit 1; }

export CALLSIGN_TEST_DOMAIN="localhost:$port" CALLSIGN_TEST_BOOTSTRAP="$work/data/bootstrap-credentials.json"
echo "== express-openid-connect, passport-auth0"
(cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null && NODE_EXTRA_CA_CERTS="$work/cert.pem" node --test) \
  || { tail -50 "$work/server.log"; exit 1; }
