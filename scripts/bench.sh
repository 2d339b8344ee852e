#!/usr/bin/env bash
# The outside-the-process benchmark (issue 18): the machine's ceilings, Callsign's token and MFA endpoints (release
# build, SQLite and, when CALLSIGN_TEST_POSTGRES_URL is set, PostgreSQL) and npm `oidc-provider` as the reference,
# all in one run, interleaved in rounds, load from `wrk` (a separate process), then one table of medians and ratios.
# Prints figures and asserts none. See docs/BENCHMARKS.md ("Outside the process: scripts/bench.sh").
#
# Options (environment): BENCH_SECS (seconds per measurement, default 10), BENCH_ROUNDS (default 3, at most 5:
# the 10 messages per user per hour are shared out between the rounds), BENCH_QUICK=1 (1 round of 3 s), BENCH_SCALE (database sizes for the scale figures, e.g. "10000 100000 1000000": SQLite
# only, filled by bench/scale.py after the rounds),
# BENCH_USERS (prepared users per database, default 2000, 1000 with BENCH_QUICK), CALLSIGN_TEST_POSTGRES_URL (a
# fresh database is created next to the one it names and dropped at the end), CARGO_TARGET_DIR (where the release
# build goes). Needs: cargo, python3, node + npm (Node 20 or later), openssl, curl; wrk (installed with apt-get
# when missing and root); psql and pgbench for PostgreSQL.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
SECS="${BENCH_SECS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
USERS="${BENCH_USERS:-2000}"
if [ "${BENCH_QUICK:-}" = "1" ]; then
  SECS=3
  ROUNDS=1
  USERS="${BENCH_USERS:-1000}"
fi
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 5 ]; then
  echo "bench: BENCH_ROUNDS must be 1 to 5 (each user may get 10 messages an hour, shared out between rounds)" >&2
  exit 2
fi
# Each round: one verification per user, and this many challenges per user (10 messages an hour in all).
PER_USER=$(((10 - ROUNDS) / ROUNDS))
THREADS=2
pg_admin="${CALLSIGN_TEST_POSTGRES_URL:-}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
log() { printf '%s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "bench: installing wrk (apt-get)"
    apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
  else
    echo "bench: wrk is missing (Debian: apt-get install wrk)" >&2
    exit 1
  fi
fi
for tool in python3 node npm openssl curl cargo; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
if [ -n "$pg_admin" ]; then
  for tool in psql pgbench; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (needed with CALLSIGN_TEST_POSTGRES_URL)" >&2; exit 1; }
  done
fi

# --- everything started is stopped -----------------------------------------------------------------------------------
work="$(mktemp -d)"
pids=()
pg_db="cs_bench_$$"
created_db=""
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$created_db" ]; then
    psql "$pg_admin" -qAtXc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL WHAT
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $2 did not answer $1 within 60 s" >&2
  exit 1
}
rss() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; } # PID VmRSS|VmHWM -> kB

say "build: cargo build --release --bin callsign"
(cd "$root" && cargo build --release --bin callsign)
bin="${CARGO_TARGET_DIR:-$root/target}/release/callsign"

say "oidc-provider from npm"
mkdir -p "$work/node"
(cd "$work/node" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error 'oidc-provider@9' >/dev/null)
cp "$here/bench/oidc-provider.mjs" "$work/node/"
oidc_version="$(cd "$work/node" && node -p 'require("oidc-provider/package.json").version')"
oidc_port="$(free_port)"
(cd "$work/node" && exec node oidc-provider.mjs "$oidc_port") >"$work/oidc.log" 2>&1 &
pids+=("$!")
oidc_pid="$!"
printf '%s\n' "grant_type=client_credentials&client_id=bench&client_secret=bench-secret-bench-secret-bench-secret&scope=read%3Athings" >"$work/oidc.cc"

# --- Callsign servers --------------------------------------------------------------------------------------------------
stores=(sqlite)
declare -A base pid_of db_of
start_callsign() { # STORE DATABASE_URL
  local store=$1 port
  port="$(free_port)"
  mkdir -p "$work/$store"
  CALLSIGN_LISTEN="127.0.0.1:$port" CALLSIGN_DATA_DIR="$work/$store" CALLSIGN_DATABASE_URL="$2" \
    CALLSIGN_DEV_PROVIDER_CAP=100000000 CALLSIGN_LOG_LEVEL=warn "$bin" serve </dev/null >"$work/$store.log" 2>&1 &
  pids+=("$!")
  pid_of[$store]="$!"
  base[$store]="http://127.0.0.1:$port"
}
start_callsign sqlite "sqlite://$work/sqlite/callsign.db"
db_of[sqlite]="sqlite:$work/sqlite/callsign.db"
if [ -n "$pg_admin" ]; then
  psql "$pg_admin" -qAtXc "CREATE DATABASE $pg_db" >/dev/null
  created_db=1
  pg_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_admin" "$pg_db")"
  stores+=(postgres)
  start_callsign postgres "$pg_url"
  db_of[postgres]="$pg_url"
  psql "$pg_url" -qAtXc "CREATE TABLE bench_commit (id bigserial PRIMARY KEY, v int NOT NULL)" >/dev/null
  printf 'INSERT INTO bench_commit (v) VALUES (1);\n' >"$work/pgbench.sql"
fi
results="$work/results"
: >"$results"
for s in "${stores[@]}"; do
  wait_http "${base[$s]}/readyz" "callsign ($s)"
  echo "rss_idle_$s 0 $(rss "${pid_of[$s]}" VmRSS)" >>"$results"
done
wait_http "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" "oidc-provider"
echo "rss_idle_oidc 0 $(rss "$oidc_pid" VmRSS)" >>"$results"

for s in "${stores[@]}"; do
  say "prepare ($s): $USERS users with a confirmed phone and an mfa_token (argon2 twice each: not timed)"
  python3 "$here/bench/prep.py" setup "$work/$s.state" "${base[$s]}" "$work/$s" "${db_of[$s]}" "$USERS"
  echo "rss_setup_$s 0 $(rss "${pid_of[$s]}" VmRSS)" >>"$results"
  # The peak RSS from here on is the rounds' (writing 5 to clear_refs resets VmHWM).
  echo 5 >"/proc/${pid_of[$s]}/clear_refs" 2>/dev/null || true
done
echo 5 >"/proc/$oidc_pid/clear_refs" 2>/dev/null || true

# --- measurements ------------------------------------------------------------------------------------------------------
# wrk_run NAME ROUND URL CONCURRENCY PATH BODIES CTYPE ONCE: one wrk run; appends "NAME ROUND req/s p50 p99 ok bad"
# (and logs the statuses of the answers that were not 2xx).
wrk_run() {
  local out line
  out="$(BENCH_PATH="$5" BENCH_BODIES="$6" BENCH_CTYPE="$7" BENCH_ONCE="$8" BENCH_THREADS="$THREADS" \
    wrk -t"$THREADS" -c"$4" -d"${SECS}s" --timeout 10s -s "$here/bench/bodies.lua" "$3")"
  line="$(printf '%s\n' "$out" | awk '$1 == "RESULT"')"
  [ -n "$line" ] || { printf '%s\n' "$out" >&2; echo "bench: wrk gave no RESULT for $1" >&2; exit 1; }
  # shellcheck disable=SC2086
  set -- "$1" "$2" $line
  local ok=$4
  python3 -c 'import sys; n, r, ok, bad, secs, p50, p99 = sys.argv[1:]; print(n, r, f"{int(ok) / float(secs):.1f}", p50, p99, ok, bad)' \
    "$1" "$2" "$ok" "$5" "$6" "$7" "$8" >>"$results"
  local other=""
  [ "${9:-"-"}" = "-" ] || other=" not 2xx: $9"
  log "  $(tail -1 "$results" | awk '{ printf "%-24s %10s req/s  p50 %8s ms  p99 %8s ms  (%s ok, %s not)", $1, $3, $4, $5, $6, $7 }')$other"
}
form="application/x-www-form-urlencoded"

# The delivery queue (jobs pending or running) of one server, and a wait until every server's is empty, so that no
# measurement shares the machine with another's deliveries (at most 300 s).
queue_len() { # STORE
  if [ "$1" = sqlite ]; then
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM delivery_jobs WHERE status IN (?, ?)", ("pending", "running")).fetchone()[0])' \
      "${db_of[sqlite]#sqlite:}"
  else
    psql "${db_of[postgres]}" -qAtXc "SELECT COUNT(*) FROM delivery_jobs WHERE status IN ('pending', 'running')"
  fi
}
drain() {
  local s
  for s in "${stores[@]}"; do
    for _ in $(seq 1 3000); do
      [ "$(queue_len "$s")" = 0 ] && break
      sleep 0.1
    done
  done
}
now() { python3 -c 'import time; print(time.monotonic())'; }

for r in $(seq 1 "$ROUNDS"); do
  say "round $r of $ROUNDS ($SECS s per measurement)"
  drain
  # Ceilings.
  signs="$(openssl speed -seconds 3 -multi 2 rsa2048 2>/dev/null | awk '$1 == "rsa" && $2 == "2048" { print $(NF-1) }' | tail -1)"
  echo "openssl_sign $r $signs" >>"$results"
  log "  openssl speed -multi 2 rsa2048: $signs signs/s"
  wrk_run healthz "$r" "${base[sqlite]}" 16 /healthz "" "" 0
  commits="$(python3 - "$work/commit-$r.db" "$SECS" <<'EOF'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode = WAL")
c.execute("PRAGMA synchronous = NORMAL")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
n, t0 = 0, time.monotonic()
end = t0 + float(sys.argv[2])
while time.monotonic() < end:
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO t (v) VALUES ('x')")
    c.execute("COMMIT")
    n += 1
print(f"{n / (time.monotonic() - t0):.1f}")
EOF
)"
  echo "sqlite_commit $r $commits" >>"$results"
  log "  SQLite single-row commits (WAL, synchronous=NORMAL, one writer): $commits/s"
  if [ -n "$pg_admin" ]; then
    tps="$(pgbench -n -c 16 -j 2 -T "$SECS" -f "$work/pgbench.sql" "$pg_url" 2>/dev/null | awk '/^tps =/ { print $3 }' | head -1)"
    echo "pg_commit $r $tps" >>"$results"
    log "  pgbench single-row inserts c=16: $tps/s"
  fi
  # Callsign, each database.
  for s in "${stores[@]}"; do
    log "  ($s: this round's pools, not timed)"
    python3 "$here/bench/prep.py" pools "$work/$s.state" "$r" "$PER_USER"
    wrk_run "cc16_$s" "$r" "${base[$s]}" 16 /oauth/token "$work/$s.state.cc" "$form" 0
    wrk_run "cc64_$s" "$r" "${base[$s]}" 64 /oauth/token "$work/$s.state.cc" "$form" 0
    drain
    wrk_run "challenge_$s" "$r" "${base[$s]}" 16 /mfa/challenge "$work/$s.state.chal.$r" application/json 1
    # Whether delivery kept up: the jobs still queued when the last challenge was answered, and how long the
    # queue then took to empty.
    left="$(queue_len "$s")"
    t0="$(now)"
    drain
    echo "backlog_$s $r $left $(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$t0" "$(now)")" >>"$results"
    log "  delivery after the challenges: $left jobs queued at the end, queue empty $(tail -1 "$results" | awk '{print $4}') s later"
    wrk_run "verify_$s" "$r" "${base[$s]}" 16 /oauth/token "$work/$s.state.verify.$r" "$form" 1
    drain
  done
  # The reference.
  wrk_run cc16_oidc "$r" "http://127.0.0.1:$oidc_port" 16 /token "$work/oidc.cc" "$form" 0
  wrk_run cc64_oidc "$r" "http://127.0.0.1:$oidc_port" 64 /token "$work/oidc.cc" "$form" 0
done

for s in "${stores[@]}"; do
  echo "rss_max_$s 0 $(rss "${pid_of[$s]}" VmHWM)" >>"$results"
  echo "rss_end_$s 0 $(rss "${pid_of[$s]}" VmRSS)" >>"$results"
done
echo "rss_max_oidc 0 $(rss "$oidc_pid" VmHWM)" >>"$results"

# A flood of password logins (argon2id each, bounded by password_hash_concurrency): rate and peak memory.
say "password-login flood (c=64, $SECS s; every answer is 403 mfa_required or 503 while the hash slots are busy)"
python3 - "$work/sqlite.state" >"$work/pw" <<'EOF2'
import json, sys, urllib.parse
s = json.load(open(sys.argv[1]))
for u in s["users"]:
    print(urllib.parse.urlencode({"grant_type": "password", "client_id": s["app"]["client_id"],
                                  "client_secret": s["app"]["client_secret"], "username": u["email"],
                                  "password": "Bench-Passw0rd-1", "scope": "openid"}))
EOF2
echo 5 >"/proc/${pid_of[sqlite]}/clear_refs" 2>/dev/null || true
wrk_run pwflood_sqlite 0 "${base[sqlite]}" 64 /oauth/token "$work/pw" "$form" 0
echo "rss_pwflood_sqlite 0 $(rss "${pid_of[sqlite]}" VmHWM)" >>"$results"

# Scale: the challenge on SQLite with the database grown to each size in BENCH_SCALE (users, each with a
# confirmed phone; as many log events), filled straight into the tables by scale.py. Buckets are cleared before
# each step so that the prepared users may be sent to again.
if [ -n "${BENCH_SCALE:-}" ]; then
  step=100
  for n in $BENCH_SCALE; do
    say "scale: $n users and enrollments, $n log events (SQLite)"
    python3 "$here/bench/scale.py" "${db_of[sqlite]}" "$n" "$n"
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM buckets"); c.commit()' \
      "${db_of[sqlite]#sqlite:}"
    python3 "$here/bench/prep.py" pools "$work/sqlite.state" "$step" "$PER_USER"
    drain
    wrk_run "scale_challenge_$n" 0 "${base[sqlite]}" 16 /mfa/challenge "$work/sqlite.state.chal.$step" application/json 1
    step=$((step + 1))
  done
fi

say "results"
python3 "$here/bench/table.py" "$results" "$ROUNDS" "$SECS" "$USERS" "$PER_USER" "$oidc_version" "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
