#!/usr/bin/env bash
# Crash durability: for SQLite and PostgreSQL, stream MFA challenges at a real Callsign, SIGKILL it mid-stream,
# restart it on the same database, and check that every challenge answered 200 was delivered (crash.py does one
# backend and prints its figures, duplicates included). Delivery is at-least-once: a message whose send finished
# just before the kill, before its outcome was recorded, is sent again after the lease (3 s here). A log stream to a
# local sink runs through it all: every event of the log must reach the sink (duplicates counted and printed).
# Needs: a built `callsign` binary (CALLSIGN_TEST_BIN), python3, psql; CALLSIGN_TEST_POSTGRES_URL for PostgreSQL
# (a fresh database is created next to the one it names, and dropped afterwards).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CALLSIGN_TEST_BIN="${CALLSIGN_TEST_BIN:?set CALLSIGN_TEST_BIN to the callsign binary}"
work="$(mktemp -d)"
pg_db="cs_crash_$$"
pg_admin="${CALLSIGN_TEST_POSTGRES_URL:-}"
driver=""
cleanup() {
  # Only what this script started: the driver, then every server pid it recorded.
  [ -n "$driver" ] && kill -TERM "$driver" 2>/dev/null && wait "$driver" 2>/dev/null || true
  for f in "$work"/*/pids; do
    [ -f "$f" ] || continue
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$f"
  done
  if [ -n "$pg_admin" ]; then
    psql "$pg_admin" -qAtc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0; failed=0
run() { # NAME DATABASE_URL
  mkdir -p "$work/$1"
  python3 "$here/crash.py" "$1" "$2" "$work/$1" &
  driver=$!
  if wait "$driver"; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "[$1] server logs:"; tail -n 30 "$work/$1"/server-*.log 2>/dev/null || true
  fi
  driver=""
}

run sqlite "sqlite://$work/sqlite/callsign.db"

if [ -n "$pg_admin" ]; then
  psql "$pg_admin" -qAtc "CREATE DATABASE $pg_db" >/dev/null
  # The same server and credentials, another database.
  pg_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_admin" "$pg_db")"
  run postgres "$pg_url"
elif [ "${CI:-}" = "true" ]; then
  echo "CALLSIGN_TEST_POSTGRES_URL must be set in CI"; failed=$((failed + 1))
else
  echo "[postgres] skipped: CALLSIGN_TEST_POSTGRES_URL is not set"
fi

echo "crash: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
