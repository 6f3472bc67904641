#!/usr/bin/env bash
# What sealing costs PostgreSQL per event: the release service with its sealer off
# (TRIALOPS_SEAL_INTERVAL_MS=0) takes risk creates for a few seconds, so the events queue
# unsealed; then psql times `audit_seal` on batches of 1,000, 100 and 5,000, and
# `EXPLAIN ANALYZE` times the event hash alone on 1,000 events.
#
#   scripts/bench_seal_cost.sh [seconds of writes]
#
# SKIP_BUILD=1 reuses ./target/release. Needs wrk, jq, curl, psql. Results go to
# docs/benchmarks.md; nothing here is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
SECONDS_OF_WRITES=${1:-6}
PORT=18197

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --quiet --bin trialops
fi
trap bench_cleanup EXIT
bench_db URL "trialops_bench_seal_cost_$$"
bench_serve "$PORT" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=0 TRIALOPS_SEAL_INTERVAL_MS=0
TOKEN=$(bench_token "$PORT")
STUDY=$(bench_study "$PORT" "$TOKEN" SEAL-1)
LUA=$(mktemp --suffix .lua)
bench_post_lua "$(bench_risk_body "$STUDY")" "$TOKEN" >"$LUA"
echo "# $(date -u +%FT%TZ) $(nproc) cores"
wrk -t2 -c16 -d"${SECONDS_OF_WRITES}s" -s "$LUA" "http://127.0.0.1:$PORT/api/v1/risks" |
    grep Requests/sec
rm -f "$LUA"
psql -q -h 127.0.0.1 -U postgres -d "trialops_bench_seal_cost_$$" <<'SQL'
SELECT count(*) AS queued FROM audit_unsealed;
\timing on
SELECT audit_seal(1000, true) AS sealed;
SELECT audit_seal(1000, true) AS sealed;
SELECT audit_seal(100, true) AS sealed;
SELECT audit_seal(100, true) AS sealed;
SELECT audit_seal(5000, true) AS sealed;
\timing off
EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON)
    SELECT audit_event_hash(e, 1, repeat('0', 64)) FROM audit_events e LIMIT 1000;
SQL
