#!/usr/bin/env bash
# Throughput and latency of an authenticated primary-key read (GET /api/v1/studies/{id}),
# the request every sync client makes most. Runs the release binary against a scratch
# database on the local PostgreSQL and loads it with wrk from the same machine.
#
#   scripts/bench_read.sh [seconds] [connections]
#
# Needs: wrk (apt-get install wrk), jq, curl. Results go to stdout; copy them into
# docs/benchmarks.md with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-15}
CONNECTIONS=${2:-32}
PORT=18181
DB="trialops_bench_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export TRIALOPS_BIND="127.0.0.1:$PORT"
export RUST_LOG=warn
# High enough never to refuse, so the counting (one upsert per request) is still measured.
export TRIALOPS_RATE_LIMIT_PER_MINUTE=${TRIALOPS_RATE_LIMIT_PER_MINUTE:-100000000}

cargo build --release --locked --quiet
./target/release/trialops serve > /tmp/trialops_bench_admin.json 2>/tmp/trialops_bench.log &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

CLIENT_ID=$(jq -r .client_id /tmp/trialops_bench_admin.json)
SECRET=$(jq -r .client_secret /tmp/trialops_bench_admin.json)
TOKEN=$(curl -sf -u "$CLIENT_ID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/oauth/token" | jq -r .access_token)
STUDY=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"protocol_number":"BENCH-1","title":"Bench","phase":"phase3","currency":"EUR","target_enrollment":100}' \
    "http://127.0.0.1:$PORT/api/v1/studies" | jq -r .id)

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${SECONDS_TO_RUN}s, ${CONNECTIONS} connections, wrk 2 threads"
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_TO_RUN}s" --latency -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/studies/$STUDY"
