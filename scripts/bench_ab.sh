#!/usr/bin/env bash
# Two release binaries of the service side by side, interleaved (A, B, A, B, ...): what a
# change did, on the same machine at the same time. Each run gets a fresh database and one
# study, a 3 s warm-up, then wrk for the given seconds; it prints req/s, app and PostgreSQL
# CPU per request, and for writes the sealing delay of that run's events (an event's
# transaction start to its seal).
#
#   scripts/bench_ab.sh A_BINARY B_BINARY [writes|reads] [rounds] [seconds]
#
# writes: POST /api/v1/risks (as bench_writes.sh); reads: GET /api/v1/studies/{id}.
# Build the "before" binary from a worktree of the older commit. Needs wrk, jq, curl, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
A=$1
B=$2
MODE=${3:-writes}
ROUNDS=${4:-3}
SECS=${5:-10}
WORK=$(mktemp -d)
trap 'bench_cleanup; rm -rf "$WORK"' EXIT

run() { # binary port label
    local bin=$1 port=$2 label=$3 db="trialops_bench_ab_${2}_$$"
    bench_db URL "$db"
    BENCH_BINARY="$bin" bench_serve "$port" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=100000000
    local pid=$BENCH_LAST_PID token base study target
    token=$(bench_token "$port")
    base="http://127.0.0.1:$port"
    study=$(bench_study "$port" "$token" BENCH-AB)
    if [ "$MODE" = writes ]; then
        target="$base/api/v1/risks"
        bench_post_lua "$(bench_risk_body "$study")" "$token" >"$WORK/$port.lua"
    else
        target="$base/api/v1/studies/$study"
        echo "wrk.headers[\"Authorization\"] = \"Bearer $token\"" >"$WORK/$port.lua"
    fi
    wrk -t2 -c32 -d3s -s "$WORK/$port.lua" "$target" >/dev/null
    local pg0 app0 out pg1 app1 rps n seal=""
    pg0=$(bench_ticks $(bench_pg_pids)); app0=$(bench_ticks "$pid")
    out=$(wrk -t2 -c32 -d"${SECS}s" -s "$WORK/$port.lua" "$target")
    pg1=$(bench_ticks $(bench_pg_pids)); app1=$(bench_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    if [ "$MODE" = writes ]; then
        sleep 1
        seal=$(psql -q -h 127.0.0.1 -U postgres -d "$db" -At -F ' ' -c "
            SELECT 'seal_p50_ms', round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.sealed_at - e.occurred_at))::numeric, 1),
                   'seal_p99_ms', round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.sealed_at - e.occurred_at))::numeric, 1)
            FROM audit_seals s JOIN audit_events e ON e.id = s.event_id WHERE e.entity_type = 'risk'")
    fi
    echo "$label req/s $rps app_us $(((app1 - app0) * 1000000 / CLK_TCK / n)) pg_us $(((pg1 - pg0) * 1000000 / CLK_TCK / n)) $seal"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $MODE, $ROUNDS rounds x ${SECS}s, wrk -t2 -c32"
for round in $(seq 1 "$ROUNDS"); do
    run "$A" 18301 "A$round"
    run "$B" 18302 "B$round"
done
