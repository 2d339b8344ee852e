#!/usr/bin/env bash
# Three Callsign nodes on one PostgreSQL database and one Redis, as a load-balanced deployment runs them: the same
# public_url (issuer), the same encryption keys, the limits in one Redis under a prefix of this run's own, each node
# its own port and data_dir. cluster.py then sends every request to a chosen node and checks what must hold across
# nodes: the MFA flow and a Universal Login walk with every step on another node, global send and IP limits, Guardian
# configuration and signing-key rotation seen by the other nodes within a second, delivery across a SIGKILL of one
# node, and throughput for 1, 2 and 3 nodes (with PostgreSQL commits and Redis commands per challenge). The nodes run
# with docs/deploy/callsign.toml (this run's addresses put in); then docs/deploy/callsign.service must pass
# `systemd-analyze verify`, and docs/deploy/nginx.conf `nginx -t` and carry requests to all three nodes without
# believing a client's own X-Forwarded-For (through_proxy.py).
# Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), python3, psql, curl; CALLSIGN_TEST_POSTGRES_URL (a fresh
# database is created next to the one it names, and dropped afterwards) and CALLSIGN_TEST_REDIS_URL (keys under a
# unique prefix, deleted afterwards). Without them the run is skipped (an error under CI=true).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
pg_admin="${CALLSIGN_TEST_POSTGRES_URL:-}"
redis_url="${CALLSIGN_TEST_REDIS_URL:-}"
if [ -z "$pg_admin" ] || [ -z "$redis_url" ]; then
  if [ "${CI:-}" = "true" ]; then echo "cluster: CALLSIGN_TEST_POSTGRES_URL and CALLSIGN_TEST_REDIS_URL must be set in CI"; exit 1; fi
  echo "cluster: skipped (set CALLSIGN_TEST_POSTGRES_URL and CALLSIGN_TEST_REDIS_URL)"; exit 0
fi

work="$(mktemp -d)"
pg_db="cs_cluster_$$"
prefix="callsign-cluster-$$-$(date +%s):"
driver=""
created_db=""
cleanup() {
  # Only what this script started: the driver, then every server pid recorded (cluster.py appends the restarts).
  [ -n "$driver" ] && kill -TERM "$driver" 2>/dev/null && wait "$driver" 2>/dev/null || true
  # nginx (its master stops its workers on QUIT).
  [ -s "$work/nginx/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  if [ -f "$work/pids" ]; then
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$work/pids"
  fi
  if [ -n "$created_db" ]; then
    psql "$pg_admin" -qAtc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  python3 "$here/cluster.py" --delete-redis-keys "$redis_url" "$prefix" >/dev/null 2>&1 || true
  if [ -n "${CALLSIGN_TEST_CLUSTER_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$pg_admin" -qAtc "CREATE DATABASE $pg_db" >/dev/null
created_db=1
# The same server and credentials, another database.
pg_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_admin" "$pg_db")"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=("$(free_port)" "$(free_port)" "$(free_port)")

# One encryption key for every node (a shared keys file, as a deployment would mount one secret).
python3 -c 'import base64, os; print("cluster-1:" + base64.b64encode(os.urandom(32)).decode())' >"$work/keys"
chmod 600 "$work/keys"

# Each node's settings file is docs/deploy/callsign.toml (the deployment example) with this run's addresses, files
# and prefix put in: the same public_url (issuer), database, Redis and prefix, keys and trusted proxies on every node;
# its own listen, metrics_addr and data_dir. cluster.py passes the same file to restart node 2 and to run
# `callsign admin rotate-signing-key` with node 1's settings. Secrets in files, as the example has them.
printf '%s\n' "$pg_url" >"$work/database-url"
printf '%s\n' "$redis_url" >"$work/redis-url"
chmod 600 "$work/database-url" "$work/redis-url"
metrics=("$(free_port)" "$(free_port)" "$(free_port)")
for i in 1 2 3; do
  python3 - "$here/../../docs/deploy/callsign.toml" "$work/node$i.toml" <<EOF
import re, sys
text = open(sys.argv[1]).read()
values = {
    "listen": '"127.0.0.1:${ports[$((i - 1))]}"',
    "public_url": '"http://127.0.0.1:${ports[0]}/"',
    "database_url_file": '"$work/database-url"',
    "redis_url_file": '"$work/redis-url"',
    "redis_key_prefix": '"$prefix"',
    "encryption_keys_file": '"$work/keys"',
    "data_dir": '"$work/node$i"',
    "trusted_proxies": '["127.0.0.1"]',
    "metrics_addr": '"127.0.0.1:${metrics[$((i - 1))]}"',
}
for key, value in values.items():
    text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
    if n != 1:
        sys.exit(f"docs/deploy/callsign.toml has no single '{key} = ' line to adapt")
open(sys.argv[2], "w").write(text)
EOF
done
# Test-only settings on top (the environment wins over the file): a short lease so a killed node's messages are
# taken over quickly, a development provider that does not stop, quieter logs.
export CALLSIGN_DELIVERY_LEASE_SECS=3
export CALLSIGN_DEV_PROVIDER_CAP=1000000
export CALLSIGN_LOG_LEVEL=warn

start_node() { # N (1-based)
  local i=$1
  mkdir -p "$work/node$i"
  "$bin" --config "$work/node$i.toml" serve </dev/null >>"$work/node$i.log" 2>&1 &
  echo $! >>"$work/pids"
  disown $!  # cluster.py SIGKILLs node 2: no "Killed" job report from this shell
}
wait_ready() { # N
  local i=$1 port=${ports[$(($1 - 1))]}
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $i was not ready in 60 s:"; tail -30 "$work/node$i.log"; exit 1
}

t0=$(date +%s.%N)
# Node 1 first: it migrates the database and writes the bootstrap credentials into its data_dir.
start_node 1
wait_ready 1
start_node 2
start_node 3
wait_ready 2
wait_ready 3
echo "cluster: 3 nodes ready on ports ${ports[*]} in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)") s (database $pg_db, redis prefix $prefix)"

python3 - "$work/nodes.json" "$bin" "$pg_url" "$work" "$redis_url" "$prefix" "${ports[@]}" <<'EOF'
import json, sys
out, bin_, db, work, redis, prefix, *ports = sys.argv[1:]
nodes = [{"port": int(p), "data_dir": f"{work}/node{i}", "log": f"{work}/node{i}.log", "config": f"{work}/node{i}.toml"}
         for i, p in enumerate(ports, 1)]
pids = [int(x) for x in open(f"{work}/pids").read().split()]
for n, p in zip(nodes, pids):
    n["pid"] = p
json.dump({"bin": bin_, "database_url": db, "public_url": f"http://127.0.0.1:{ports[0]}/", "work": work, "redis_url": redis, "redis_prefix": prefix,
           "pidfile": f"{work}/pids", "nodes": nodes}, open(out, "w"), indent=1)
EOF

python3 "$here/cluster.py" "$work/nodes.json" &
driver=$!
rc=0
wait "$driver" || rc=$?
driver=""
if [ "$rc" -ne 0 ]; then
  for i in 1 2 3; do echo "--- node $i log (last 20 lines)"; tail -n 20 "$work/node$i.log" 2>/dev/null || true; done
  exit "$rc"
fi

# --- the deployment example's systemd unit and load balancer (docs/deploy/) ------------------------------------------
deploy="$here/../../docs/deploy"
dpassed=0
echo "== docs/deploy/callsign.service: systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/callsign|$bin|g; s|/etc/callsign/callsign.toml|$work/node1.toml|g" "$deploy/callsign.service" \
    >"$work/callsign.service"
  # It warns about bad values without failing: any output is a failure.
  out="$(systemd-analyze verify "$work/callsign.service" 2>&1)" || { echo "$out"; exit 1; }
  [ -z "$out" ] || { echo "$out"; echo "FAIL systemd-analyze complained"; exit 1; }
  echo "PASS the unit verifies"; dpassed=$((dpassed + 1))
else
  echo "SKIPPED (no systemd-analyze)"; [ "${CI:-}" = true ] && exit 1
fi

echo "== docs/deploy/nginx.conf in front of the three nodes"
nginx_bin="$(command -v nginx || true)"
if [ -z "$nginx_bin" ]; then
  # Debian's nginx unpacked, not installed: no service started, nothing written outside the cache.
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/callsign-nginx"
  if [ ! -x "$cache/root/usr/sbin/nginx" ]; then
    mkdir -p "$cache" && (cd "$cache" && apt-get download nginx >/dev/null 2>&1 && dpkg -x nginx_*.deb root) \
      || { echo "SKIPPED (nginx not available: apt-get download nginx failed)"; [ "${CI:-}" = true ] && exit 1; exit 0; }
  fi
  nginx_bin="$cache/root/usr/sbin/nginx"
fi
ngx="$work/nginx"; mkdir -p "$ngx/logs" "$ngx/tmp"; chmod 777 "$ngx/tmp"
ngx_port="$(free_port)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=login.example.com -keyout "$ngx/key.pem" \
  -out "$ngx/cert.pem" 2>/dev/null
python3 - "$deploy/nginx.conf" "$ngx/nginx.conf" "$ngx" "$ngx_port" "${ports[@]}" <<'EOF'
import re, sys
src, out, ngx, port, *ports = sys.argv[1:]
text = open(src).read()
servers = re.findall(r"^\s*server 10\.0\.1\.1\d:8080 .*$", text, flags=re.M)
assert len(servers) == 3, "docs/deploy/nginx.conf names three nodes"
for line, p in zip(servers, ports):
    text = text.replace(line, re.sub(r"10\.0\.1\.1\d:8080", f"127.0.0.1:{p}", line), 1)
def sub(pattern, repl):
    global text
    text, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == 1, pattern
sub(r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
sub(r"ssl_certificate\s+/etc/ssl/login\.example\.com\.crt;", f"ssl_certificate {ngx}/cert.pem;")
sub(r"ssl_certificate_key\s+/etc/ssl/login\.example\.com\.key;", f"ssl_certificate_key {ngx}/key.pem;")
# Where this run's nginx keeps its files (the example leaves them at the distribution's defaults).
temp = "".join(f"    {d}_temp_path {ngx}/tmp/{d};\n" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
sub(r"^http \{$", "http {\n" + temp + f"    access_log {ngx}/logs/access.log;")
open(out, "w").write(text)
EOF
ngx_global="pid $ngx/nginx.pid; error_log $ngx/logs/error.log;"
[ "$(id -u)" -eq 0 ] && ngx_global="$ngx_global user root;"
"$nginx_bin" -t -q -p "$ngx" -c "$ngx/nginx.conf" -g "$ngx_global" -e "$ngx/logs/error.log" \
  || { cat "$ngx/logs/error.log"; echo "FAIL nginx -t"; exit 1; }
echo "PASS nginx -t"; dpassed=$((dpassed + 1))
"$nginx_bin" -p "$ngx" -c "$ngx/nginx.conf" -g "$ngx_global" -e "$ngx/logs/error.log"
for _ in $(seq 1 50); do [ -s "$ngx/nginx.pid" ] && break; sleep 0.1; done
python3 "$here/through_proxy.py" "https://127.0.0.1:$ngx_port" "$ngx/cert.pem" "$work/node1/bootstrap-credentials.json" \
  "${metrics[@]}" || { tail -20 "$ngx/logs/error.log"; exit 1; }
dpassed=$((dpassed + 1))
echo "deployment files: $dpassed passed, 0 failed"
