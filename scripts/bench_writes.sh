#!/usr/bin/env bash
# Writes, side by side: the release service's `POST /api/v1/risks` (32 concurrent clients,
# wrk) against pgbench running the equivalent SQL per transaction on a second database with
# the same schema: the risk row and its audit event (whose insert trigger queues it for
# sealing, as the service's does), with the same sizes of text. Interleaved rounds (A, B,
# A, B, ...). pgbench's database has no service, so its events are never sealed: the
# reference does not pay for sealing, the service does.
#
# Prints req/s (tps), p99, app CPU and PostgreSQL CPU per write for each round, the medians
# and the ratio, then how long the service's events waited to be sealed (the delay sealing
# adds to the change feed and to webhooks).
#
#   scripts/bench_writes.sh [rounds] [seconds per run] [clients]
#
# Needs: wrk, pgbench, jq, curl, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
ROUNDS=${1:-3}
DURATION=${2:-10}
CLIENTS=${3:-32}
PORT=18183

cargo build --release --locked --quiet --bin trialops
trap bench_cleanup EXIT
bench_db SERVICE_URL "trialops_bench_writes_$$"
REFERENCE_DB="trialops_bench_pgbench_$$"
bench_db REFERENCE_URL "$REFERENCE_DB"
DATABASE_URL="$REFERENCE_URL" ./target/release/trialops migrate >/dev/null 2>&1
bench_serve "$PORT" "$SERVICE_URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=100000000
SERVICE_PID=$BENCH_LAST_PID
TOKEN=$(bench_token "$PORT")
BASE="http://127.0.0.1:$PORT"
STUDY=$(bench_study "$PORT" "$TOKEN" BENCH-W)
BODY=$(bench_risk_body "$STUDY")

# The reference's study, and the audit event's payload as the service writes it.
psql -q -h 127.0.0.1 -U postgres "$REFERENCE_DB" -c \
    "INSERT INTO studies (id, protocol_number, title, phase, status, currency, target_enrollment)
     VALUES ('$STUDY', 'BENCH-W', 'Bench', 'phase3', 'planning', 'EUR', 100)"
SAMPLE=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" "$BASE/api/v1/risks")
# pgbench reads ":name" as a variable: every colon gets a space after it (still JSON, and
# the same size within a few bytes).
DATA=$(echo "$SAMPLE" | jq -c . | sed "s/'/''/g; s/:/: /g")
CHANGES=$(echo "$SAMPLE" | jq -c 'del(.id, .created_at, .updated_at, .version) | with_entries(.value = {old: null, new: .value})' | sed "s/'/''/g; s/:/: /g")

WORK=$(mktemp -d)
bench_post_lua "$BODY" "$TOKEN" >"$WORK/post.lua"
cat >"$WORK/insert.sql" <<EOF
BEGIN;
INSERT INTO risks (id, study_id, title, category, likelihood, impact, detectability, status)
VALUES (gen_random_uuid(), '$STUDY', 'Central lab turnaround exceeds 72 h', 'vendor', 2, 2, 2, 'open');
INSERT INTO audit_events (actor, actor_name, role, action, entity_type, entity_id, study_id,
                          entity_version, changes, data, reason, request_id)
VALUES ('00000000-0000-0000-0000-000000000000', 'bench', 'admin', 'create', 'risk',
        gen_random_uuid(), '$STUDY', 1, '$CHANGES', '$DATA', NULL, gen_random_uuid()::text);
END;
EOF

row() { printf '%-10s %10s %9s %10s %10s %8s\n' "$@"; }

run_service() {
    local pg_pids app0 pg0 app1 pg1 out
    pg_pids=$(bench_pg_pids)
    app0=$(bench_ticks "$SERVICE_PID")
    # shellcheck disable=SC2086
    pg0=$(bench_ticks $pg_pids)
    out="$WORK/wrk.txt"
    wrk -t2 -c"$CLIENTS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$BASE/api/v1/risks" >"$out"
    app1=$(bench_ticks "$SERVICE_PID")
    # shellcheck disable=SC2086
    pg1=$(bench_ticks $pg_pids)
    read -r rps p99 n bad <<<"$(bench_wrk_summary "$out")"
    row trialops "$rps" "$p99" "$(bench_cpu_us $((app1 - app0)) "$n")" "$(bench_cpu_us $((pg1 - pg0)) "$n")" "$bad"
}

run_pgbench() {
    local pg_pids pg0 pg1 out tps p99 n
    pg_pids=$(bench_pg_pids)
    # shellcheck disable=SC2086
    pg0=$(bench_ticks $pg_pids)
    rm -f "$WORK"/pgbench_log*
    out="$WORK/pgbench.txt"
    (cd "$WORK" && pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$CLIENTS" -j 2 \
        -T "$DURATION" -f insert.sql --log --log-prefix=pgbench_log "$REFERENCE_DB" >"$out" 2>&1)
    # shellcheck disable=SC2086
    pg1=$(bench_ticks $pg_pids)
    tps=$(awk '/^tps/ { print $3; exit }' "$out")
    n=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' "$out")
    # Per-transaction log: the third column is the latency in microseconds.
    p99=$(cat "$WORK"/pgbench_log* | awk '{ print $3 }' | sort -n |
        awk '{ a[NR] = $1 } END { printf "%.2f", a[int(NR * 0.99)] / 1000 }')
    row pgbench "$tps" "$p99" - "$(bench_cpu_us $((pg1 - pg0)) "$n")" 0
}

# Warm up both; not counted.
wrk -t2 -c"$CLIENTS" -d3s -s "$WORK/post.lua" "$BASE/api/v1/risks" >/dev/null
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$CLIENTS" -j 2 -T 3 -f "$WORK/insert.sql" "$REFERENCE_DB" >/dev/null 2>&1

echo "# $(date -u +%FT%TZ) $(nproc) cores, $ROUNDS rounds x ${DURATION}s, $CLIENTS clients"
row target req/s p99_ms app_us/req pg_us/req non2xx
RESULTS="$WORK/results"
for _ in $(seq 1 "$ROUNDS"); do
    run_service | tee -a "$RESULTS"
    run_pgbench | tee -a "$RESULTS"
done

median_of() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$RESULTS" | bench_median; }
echo
row median req/s p99_ms app_us/req pg_us/req ""
row trialops "$(median_of trialops 2)" "$(median_of trialops 3)" "$(median_of trialops 4)" "$(median_of trialops 5)" ""
row pgbench "$(median_of pgbench 2)" "$(median_of pgbench 3)" - "$(median_of pgbench 5)" ""
awk -v a="$(median_of trialops 2)" -v b="$(median_of pgbench 2)" \
    'BEGIN { printf "ratio (trialops req/s / pgbench tps): %.2fx\n", a / b }'

# How long events waited between their transaction's start and their seal: an upper bound
# of the delay sealing adds (it includes the rest of the writing transaction).
sleep 1
echo
psql -q -h 127.0.0.1 -U postgres -d "trialops_bench_writes_$$" -At -F ' ' -c "
    SELECT 'sealing delay ms: events', count(*),
           'p50', round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.sealed_at - e.occurred_at))::numeric, 1),
           'p99', round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.sealed_at - e.occurred_at))::numeric, 1),
           'max', round(1000 * max(extract(epoch FROM s.sealed_at - e.occurred_at))::numeric, 1),
           'unsealed', (SELECT count(*) FROM audit_unsealed)
    FROM audit_seals s JOIN audit_events e ON e.id = s.event_id WHERE e.entity_type = 'risk'"
rm -rf "$WORK"
