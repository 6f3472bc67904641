#!/usr/bin/env bash
# Hostile load: an authenticated client's reads (`GET /api/v1/studies/{id}`, wrk -c32)
# alone, and during a flood of wrong client secrets (16 connections POSTing
# `/oauth/token` for the same client id with a wrong secret, as fast as answers come),
# in interleaved rounds. Prints the reads' req/s and p99 in each case, the ratio, and what
# the flood got (answers per second; how many wrong secrets reached Argon2).
#
#   scripts/bench_flood.sh [rounds] [seconds per run]
#
# Needs: wrk, jq, curl, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
ROUNDS=${1:-3}
DURATION=${2:-10}
PORT=18184

cargo build --release --locked --quiet --bin trialops
trap bench_cleanup EXIT
bench_db URL "trialops_bench_flood_$$"
bench_serve "$PORT" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=100000000
BASE="http://127.0.0.1:$PORT"
TOKEN=$(bench_token "$PORT")
CLIENT_ID=$(jq -r .client_id "/tmp/trialops_bench_admin_$PORT.json")
STUDY=$(bench_study "$PORT" "$TOKEN" BENCH-F)

WORK=$(mktemp -d)
cat >"$WORK/flood.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=not-the-secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF

reads() {
    wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/studies/$STUDY" >"$WORK/reads.txt"
    read -r rps p99 _ _ <<<"$(bench_wrk_summary "$WORK/reads.txt")"
    printf '%-14s %10s %9s\n' "$1" "$rps" "$p99"
}

wrk -t2 -c32 -d3s -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/studies/$STUDY" >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores, $ROUNDS rounds x ${DURATION}s; reads wrk -t2 -c32, flood wrk -t1 -c16"
printf '%-14s %10s %9s\n' case req/s p99_ms
RESULTS="$WORK/results"
for _ in $(seq 1 "$ROUNDS"); do
    reads alone | tee -a "$RESULTS"
    # Two seconds of head start, so the reads below run entirely inside the flood.
    wrk -t1 -c16 -d"$((DURATION + 3))s" -s "$WORK/flood.lua" "$BASE/oauth/token" >"$WORK/flood.txt" &
    FLOOD=$!
    sleep 2
    reads during_flood | tee -a "$RESULTS"
    wait "$FLOOD"
    awk '/Requests\/sec:/ { printf "  (the flood got %s answers/s, all 401 or 429)\n", $2 }' "$WORK/flood.txt"
done
median_of() { awk -v t="$1" '$1 == t { print $2 }' "$RESULTS" | bench_median; }
echo
awk -v a="$(median_of during_flood)" -v b="$(median_of alone)" \
    'BEGIN { printf "median reads: alone %s, during the flood %s: ratio %.2fx\n", b, a, a / b }'
# Each wrong secret that reached Argon2 is logged once; so is each address blocked.
echo "Argon2 checks of wrong secrets: $(grep -c 'wrong client secret' "/tmp/trialops_bench_$PORT.log" || true)," \
    "addresses blocked: $(grep -c 'blocking an address' "/tmp/trialops_bench_$PORT.log" || true)"
rm -rf "$WORK"
