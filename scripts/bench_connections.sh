#!/usr/bin/env bash
# Memory per open connection: the release service's authenticated `GET /api/v1/studies/{id}`
# loaded by wrk with 32 connections, then with 8,000 (every one with a request in flight),
# and the same two runs against the bare stack beneath it (`examples/bench_reference.rs`:
# actix-web + diesel-async + deadpool, one handler, no middleware) on the same database.
# For each run: req/s, p99, socket errors, and the peak RSS of the process during that run
# (VmHWM, reset before the run through /proc/PID/clear_refs), with the Anonymous memory
# of /proc/PID/smaps_rollup at the end of the run.
#
#   scripts/bench_connections.sh [seconds per run] [connections]
#
# The service holds at most TRIALOPS_MAX_CONNECTIONS (1,024 by default); the rest wait in the
# kernel's accept queue, which must hold them: net.core.somaxconn at least the connections
# minus the bound (the script says so and stops otherwise; the kernel's default is 4,096).
#
# SKIP_BUILD=1 reuses ./target/release. Extra service settings come from the environment
# (e.g. TRIALOPS_WORKERS, TRIALOPS_DB_POOL_SIZE, MALLOC_ARENA_MAX). Needs: wrk, jq, curl,
# psql. Timing and memory are never asserted in a test; results go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
DURATION=${1:-20}
MANY=${2:-8000}
SERVICE_PORT=18191
REFERENCE_PORT=18192

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --quiet --bin trialops --example bench_reference
fi
SOMAXCONN=$(cat /proc/sys/net/core/somaxconn)
if [ "$SOMAXCONN" -lt $((MANY - ${TRIALOPS_MAX_CONNECTIONS:-1024})) ]; then
    echo "net.core.somaxconn is $SOMAXCONN: too small for $MANY connections waiting beyond the" \
        "bound (run: sysctl -w net.core.somaxconn=16384)" >&2
    exit 1
fi
trap bench_cleanup EXIT
# Enough descriptors for the connections on each side (wrk and the server).
ulimit -n "$(ulimit -Hn)"
bench_db URL "trialops_bench_connections_$$"
bench_serve "$SERVICE_PORT" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=0
SERVICE_PID=$BENCH_LAST_PID
TOKEN=$(bench_token "$SERVICE_PORT")
STUDY=$(bench_study "$SERVICE_PORT" "$TOKEN" BENCH-1)
./target/release/examples/bench_reference "127.0.0.1:$REFERENCE_PORT" "$URL" &
REFERENCE_PID=$!
BENCH_PIDS+=("$REFERENCE_PID")
bench_wait_ready "http://127.0.0.1:$REFERENCE_PORT/studies/$STUDY"

kib() { awk -v k="$2" '$1 == k ":" { print $2 }' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

run() { # run NAME PID CONNECTIONS URL [wrk args...]
    local name=$1 pid=$2 connections=$3 url=$4
    shift 4
    local out
    out=$(mktemp)
    echo 5 >"/proc/$pid/clear_refs" # VmHWM := VmRSS
    wrk -t2 -c"$connections" -d"${DURATION}s" --timeout 10s --latency "$@" "$url" >"$out"
    local hwm anon rps p99 n bad errors
    hwm=$(kib "/proc/$pid/status" VmHWM)
    anon=$(kib "/proc/$pid/smaps_rollup" Anonymous)
    read -r rps p99 n bad <<<"$(bench_wrk_summary "$out")"
    errors=$(awk '/Socket errors/ { sub(/^ *Socket errors: /, ""); gsub(/ /, ""); print }' "$out")
    rm -f "$out"
    printf '%-10s %6s %10s %9s %9s %12s %9s\n' "$name" "$connections" "$rps" "$p99" "$(mib "$hwm")" \
        "$(mib "$anon")" "${errors:-none}/${bad}"
}

SERVICE_URL="http://127.0.0.1:$SERVICE_PORT/api/v1/studies/$STUDY"
REFERENCE_URL="http://127.0.0.1:$REFERENCE_PORT/studies/$STUDY"
# Warm both up (pools filled, caches hot); not counted.
wrk -t2 -c32 -d3s -H "Authorization: Bearer $TOKEN" "$SERVICE_URL" >/dev/null
wrk -t2 -c32 -d3s "$REFERENCE_URL" >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores, ${DURATION}s per run, wrk -t2," \
    "TRIALOPS_MAX_CONNECTIONS=${TRIALOPS_MAX_CONNECTIONS:-1024}, somaxconn $SOMAXCONN"
echo "# idle RSS: trialops $(mib "$(kib "/proc/$SERVICE_PID/status" VmRSS)") MiB," \
    "reference $(mib "$(kib "/proc/$REFERENCE_PID/status" VmRSS)") MiB"
printf '%-10s %6s %10s %9s %9s %12s %9s\n' target conns req/s p99_ms peak_MiB anon_end_MiB errors/non2xx
run trialops "$SERVICE_PID" 32 "$SERVICE_URL" -H "Authorization: Bearer $TOKEN"
run reference "$REFERENCE_PID" 32 "$REFERENCE_URL"
run trialops "$SERVICE_PID" "$MANY" "$SERVICE_URL" -H "Authorization: Bearer $TOKEN"
run reference "$REFERENCE_PID" "$MANY" "$REFERENCE_URL"
