#!/usr/bin/env bash
# The test command (README, "Run the tests"): every test of the workspace with cargo-nextest. The tests that need a
# service run only when its variable names one; otherwise they are left out of the run and reported as skipped
# (by name count, after nextest's summary, which does not count a test binary left out whole), never as passed:
#   CALLSIGN_TEST_POSTGRES_URL  the PostgreSQL conformance suite and every `…_on_postgres` test
#   CALLSIGN_TEST_REDIS_URL     the Redis limiter's conformance suite and `tests/redis_limiter.rs`
# Under CI=true a missing variable is an error. Extra arguments go to `cargo nextest run` (e.g. `--locked`, a filter).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-nextest >/dev/null || { echo "cargo-nextest is missing: cargo install --locked cargo-nextest"; exit 1; }

postgres='binary_id(callsign-store-postgres::conformance) | test(/_on_postgres(ql)?$/)'
redis='binary_id(callsign-limiter-redis::conformance) | binary_id(callsign-server::redis_limiter)'
filter='all()'
skipped=()
for pair in "CALLSIGN_TEST_POSTGRES_URL:PostgreSQL:$postgres" "CALLSIGN_TEST_REDIS_URL:Redis:$redis"; do
  var="${pair%%:*}"; rest="${pair#*:}"; name="${rest%%:*}"; set_="${rest#*:}"
  if [ -z "${!var:-}" ]; then
    if [ "${CI:-}" = "true" ]; then echo "$var must be set in CI"; exit 1; fi
    n="$(cargo nextest list --workspace -E "$set_" -T oneline 2>/dev/null | grep -c . || true)"
    skipped+=("$n $name tests SKIPPED (not run): set $var to run them")
    filter="$filter - ($set_)"
  fi
done
for line in "${skipped[@]}"; do echo "== $line"; done
rc=0
cargo nextest run --workspace -E "$filter" "$@" || rc=$?
for line in "${skipped[@]}"; do echo "== $line"; done
exit "$rc"
