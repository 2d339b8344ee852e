#!/usr/bin/env bash
# @auth0/nextjs-auth0 (v4), unmodified from the registry, in a minimal Next.js App Router app, against a real Callsign
# over HTTPS with a test certificate. Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), node + npm, python3,
# openssl, and port 443 on a loopback address that a hostname other than `localhost` resolves to.
#
# Why: the SDK builds `https://<AUTH0_DOMAIN>/` (no port) and checks the issuer against it, and it refuses `localhost`,
# `*.localhost`, `*.local` and IP addresses as AUTH0_DOMAIN (DomainValidationError) unless `allowInsecureRequests` is
# passed to the constructor, which is not what an application does. So Callsign runs at `https://<host>/` on port 443,
# with <host> the machine's own name when /etc/hosts maps it to 127.x (NEXTJS_TEST_HOST overrides). Without such a
# name or without port 443 it prints SKIPPED and exits 0 (1 when CI=true).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"

skip() {
  echo "nextjs-auth0: SKIPPED ($1)"
  if [ "${CI:-}" = true ]; then exit 1; fi
  exit 0
}
# The machine's name when it resolves to a loopback address; else, as root, a test name added to /etc/hosts.
loopback() { case "$(getent ahostsv4 "$1" 2>/dev/null | awk 'NR==1 {print $1}' || true)" in 127.*) return 0 ;; esac; return 1; }
host="${NEXTJS_TEST_HOST:-$(hostname)}"
if [ -z "${NEXTJS_TEST_HOST:-}" ] && ! loopback "$host" && [ "$(id -u)" -eq 0 ]; then
  host=login.callsign.test
  loopback "$host" || echo "127.0.0.1 $host" >> /etc/hosts
fi
case "$host" in localhost|localhost.*|*.localhost|*.local) skip "hostname '$host' is one the SDK refuses; set NEXTJS_TEST_HOST" ;; esac
ip="$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR==1 {print $1}' || true)"
case "$ip" in 127.*) ;; *) skip "'$host' does not resolve to a loopback address (got '${ip:-nothing}'); set NEXTJS_TEST_HOST" ;; esac
why="$(python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind((sys.argv[1], 443))
except OSError as e:
    print(f"cannot bind {sys.argv[1]}:443: {e.strerror}")
finally:
    s.close()
' "$ip")"
[ -z "$why" ] || skip "$why"

work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"; }
trap cleanup EXIT

# `next build` + `next start` (the default), or NEXTJS_MODE=dev for `next dev` (no build; slower, see the report).
export NEXT_TELEMETRY_DISABLED=1 NEXTJS_MODE="${NEXTJS_MODE:-start}"
echo "== @auth0/nextjs-auth0: npm install$([ "$NEXTJS_MODE" = dev ] || echo ', next build')"
(cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || exit 1
if [ "$NEXTJS_MODE" != dev ]; then
  (cd "$here" && node node_modules/next/dist/bin/next build >"$work/build.log" 2>&1) || { cat "$work/build.log"; exit 1; }
fi

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
CALLSIGN_TLS__CERT_FILE="$work/cert.pem" CALLSIGN_TLS__KEY_FILE="$work/key.pem" CALLSIGN_PUBLIC_URL="https://$host/" \
  "$bin" --database-url "sqlite://$work/callsign.db" --data-dir "$work/data" --listen "$ip:443" serve \
  2>"$work/server.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf --cacert "$work/cert.pem" "https://$host/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
if ! curl -sf --cacert "$work/cert.pem" "https://$host/readyz" >/dev/null; then
  grep -qi 'address already in use' "$work/server.log" && skip "$ip:443 was taken while building"
  cat "$work/server.log"; exit 1
fi

echo "== @auth0/nextjs-auth0 against https://$host/ (next $NEXTJS_MODE)"
export CALLSIGN_TEST_DOMAIN="$host" CALLSIGN_TEST_BOOTSTRAP="$work/data/bootstrap-credentials.json"
out="$work/test.out"
if (cd "$here" && NODE_EXTRA_CA_CERTS="$work/cert.pem" node --test --test-reporter=spec nextjs.test.mjs) >"$out" 2>&1; then rc=0; else rc=$?; fi
cat "$out"
passed="$(sed -n 's/^ℹ pass //p' "$out")"; failed="$(sed -n 's/^ℹ fail //p' "$out")"
echo "nextjs-auth0: ${passed:-0} passed, ${failed:-?} failed"
[ "$rc" = 0 ] || { tail -50 "$work/server.log"; exit 1; }
