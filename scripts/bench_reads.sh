#!/usr/bin/env bash
# Reads, side by side: the release service's authenticated `GET /api/v1/studies/{id}`
# against the bare stack beneath it (`examples/bench_reference.rs`: actix-web + diesel-async +
# deadpool, no auth, the same `studies` row by primary key, answered as JSON), both on the
# same database, loaded by wrk with the same settings in interleaved rounds (A, B, A, B, ...)
# so both see the same machine. Prints req/s, p99, app CPU and PostgreSQL CPU per request
# for each round, the medians and the ratios.
#
#   scripts/bench_reads.sh [rounds] [seconds per run] [connections]
#
# Needs: wrk, jq, curl, psql. Timing is never asserted in a test; results go to
# docs/benchmarks.md with the machine and date.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
ROUNDS=${1:-3}
DURATION=${2:-10}
CONNECTIONS=${3:-32}
SERVICE_PORT=18181
REFERENCE_PORT=18182

cargo build --release --locked --quiet --bin trialops --example bench_reference
trap bench_cleanup EXIT
bench_db URL "trialops_bench_reads_$$"
# A limit this high never refuses, so the counting is still measured.
bench_serve "$SERVICE_PORT" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=100000000
SERVICE_PID=$BENCH_LAST_PID
./target/release/examples/bench_reference "127.0.0.1:$REFERENCE_PORT" "$URL" &
REFERENCE_PID=$!
BENCH_PIDS+=("$REFERENCE_PID")

TOKEN=$(bench_token "$SERVICE_PORT")
STUDY=$(bench_study "$SERVICE_PORT" "$TOKEN" BENCH-1)
bench_wait_ready "http://127.0.0.1:$REFERENCE_PORT/studies/$STUDY"

run() { # run NAME PID URL [wrk args...]
    local name=$1 pid=$2 url=$3
    shift 3
    local pg_pids app0 pg0 out summary
    pg_pids=$(bench_pg_pids)
    app0=$(bench_ticks "$pid")
    # shellcheck disable=SC2086
    pg0=$(bench_ticks $pg_pids)
    out=$(mktemp)
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" >"$out"
    local app1 pg1
    app1=$(bench_ticks "$pid")
    # shellcheck disable=SC2086
    pg1=$(bench_ticks $pg_pids)
    read -r rps p99 n bad <<<"$(bench_wrk_summary "$out")"
    rm -f "$out"
    printf '%-10s %10s %9s %10s %10s %8s\n' "$name" "$rps" "$p99" \
        "$(bench_cpu_us $((app1 - app0)) "$n")" "$(bench_cpu_us $((pg1 - pg0)) "$n")" "$bad"
}

SERVICE_URL="http://127.0.0.1:$SERVICE_PORT/api/v1/studies/$STUDY"
REFERENCE_URL="http://127.0.0.1:$REFERENCE_PORT/studies/$STUDY"
# Warm both up (pools filled, caches hot); not counted.
wrk -t2 -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $TOKEN" "$SERVICE_URL" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d3s "$REFERENCE_URL" >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores, $ROUNDS rounds x ${DURATION}s, wrk -t2 -c$CONNECTIONS"
printf '%-10s %10s %9s %10s %10s %8s\n' target req/s p99_ms app_us/req pg_us/req non2xx
RESULTS=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    run trialops "$SERVICE_PID" "$SERVICE_URL" -H "Authorization: Bearer $TOKEN" | tee -a "$RESULTS"
    run reference "$REFERENCE_PID" "$REFERENCE_URL" | tee -a "$RESULTS"
done

median_of() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$RESULTS" | bench_median; }
echo
printf '%-10s %10s %9s %10s %10s\n' median req/s p99_ms app_us/req pg_us/req
for target in trialops reference; do
    printf '%-10s %10s %9s %10s %10s\n' "$target" "$(median_of $target 2)" "$(median_of $target 3)" \
        "$(median_of $target 4)" "$(median_of $target 5)"
done
awk -v a="$(median_of trialops 2)" -v b="$(median_of reference 2)" \
    'BEGIN { printf "ratio (trialops / reference req/s): %.2fx\n", a / b }'
rm -f "$RESULTS"
