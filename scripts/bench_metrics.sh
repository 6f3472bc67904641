#!/usr/bin/env bash
# Latency of the dashboard endpoints on a large study and on one ten times smaller.
#
# Runs the release binary against a scratch database on the local PostgreSQL, creates two
# studies through the API, fills them with generate_series straight in the database
# (big: 500 sites x 52 weeks of enrollment, 10,000 deviations, 2,000 risks, 5,000 expenses,
# 200 milestones; small: a tenth of each), then times sequential requests with curl
# (one request at a time, so the numbers are the latency of one dashboard read, not
# throughput).
#
#   scripts/bench_metrics.sh [requests per endpoint]
#
# Needs: jq, curl, psql. Results go to stdout; copy them into docs/benchmarks.md with the
# machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200}
PORT=18182
DB="trialops_bench_metrics_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export TRIALOPS_BIND="127.0.0.1:$PORT"
export RUST_LOG=warn
export TRIALOPS_RATE_LIMIT_PER_MINUTE=0
BASE="http://127.0.0.1:$PORT"
PSQL=(psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d "$DB")

cargo build --release --locked --quiet
./target/release/trialops serve > /tmp/trialops_bench_metrics_admin.json 2>/tmp/trialops_bench_metrics.log &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done

CLIENT_ID=$(jq -r .client_id /tmp/trialops_bench_metrics_admin.json)
SECRET=$(jq -r .client_secret /tmp/trialops_bench_metrics_admin.json)
TOKEN=$(curl -sf -u "$CLIENT_ID:$SECRET" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)

study() {
    curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"protocol_number\":\"$1\",\"title\":\"Bench\",\"phase\":\"phase3\",\"currency\":\"EUR\",
             \"target_enrollment\":$2,\"enrollment_buffer_pct\":10,
             \"planned_start_date\":\"$(date -u -d '-1 year' +%F)\",\"planned_end_date\":\"$(date -u -d '+1 year' +%F)\"}" \
        "$BASE/api/v1/studies" | jq -r .id
}

# populate STUDY SITES DEVIATIONS RISKS EXPENSES MILESTONES
populate() {
    "${PSQL[@]}" <<SQL
\set study '$1'
INSERT INTO sites (id, study_id, site_number, name, country, status, irb_approved_on, activated_on, target_enrollment)
SELECT gen_random_uuid(), :'study', 'S' || g, 'Site ' || g, 'DE',
       (ARRAY['planned','selected','activated','enrolling','closed_to_enrollment'])[1 + g % 5],
       current_date - 400 + g % 30, current_date - 390 + g % 30 + g % 20, 20
FROM generate_series(1, $2) g;

INSERT INTO enrollment_reports (id, study_id, site_id, week_start, screened, screen_failed, enrolled, discontinued, completed)
SELECT gen_random_uuid(), :'study', s.id, date_trunc('week', current_date)::date - 7 * w,
       3 + (w + s.n) % 3, (w + s.n) % 2, 1 + (w * s.n) % 2, 0, 0
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM sites WHERE study_id = :'study') s,
     generate_series(1, 52) w;

INSERT INTO deviations (id, study_id, site_id, category, description, importance, occurred_on, detected_on, reported_on, status)
SELECT gen_random_uuid(), :'study', s.id,
       (ARRAY['informed_consent','eligibility','study_procedure','investigational_product','safety_reporting',
              'visit_schedule','data_management','privacy','other'])[1 + g % 9],
       'Bench deviation', CASE WHEN g % 3 = 0 THEN 'important' ELSE 'not_important' END,
       current_date - 300 + g % 290, current_date - 295 + g % 290,
       CASE WHEN g % 4 = 0 THEN NULL ELSE current_date - 290 + g % 290 END,
       (ARRAY['open','under_review','capa_in_progress','closed','invalidated'])[1 + g % 5]
FROM generate_series(1, $3) g
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM sites WHERE study_id = :'study') s ON s.n = 1 + g % $2;

INSERT INTO risks (id, study_id, title, category, likelihood, impact, detectability, status, review_due_on)
SELECT gen_random_uuid(), :'study', 'Bench risk ' || g, 'operational', 1 + g % 5, 1 + (g / 5) % 5, 1 + (g / 25) % 5,
       (ARRAY['open','mitigating','escalated','accepted','closed'])[1 + g % 5], current_date - 100 + g % 200
FROM generate_series(1, $4) g;

INSERT INTO budget_lines (id, study_id, category, description, planned_amount, committed_amount, currency)
SELECT gen_random_uuid(), :'study', 'cro_services', 'Bench line ' || g, 100000.00, 50000.00, 'EUR'
FROM generate_series(1, GREATEST($5 / 100, 1)) g;

INSERT INTO expenses (id, study_id, budget_line_id, amount, currency, incurred_on)
SELECT gen_random_uuid(), :'study', l.id, 10.00 + g % 1000, 'EUR', current_date - g % 365
FROM generate_series(1, $5) g
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM budget_lines WHERE study_id = :'study') l
  ON l.n = 1 + g % GREATEST($5 / 100, 1);

INSERT INTO milestones (id, study_id, name, kind, baseline_date, forecast_date, actual_date, status)
SELECT gen_random_uuid(), :'study', 'Bench milestone ' || g, 'other', current_date - 200 + g,
       current_date - 190 + g, CASE WHEN g % 2 = 0 THEN current_date - 195 + g END,
       CASE WHEN g % 2 = 0 THEN 'completed' ELSE 'in_progress' END
FROM generate_series(1, $6) g;
SQL
}

BIG=$(study BENCH-BIG 10000)
SMALL=$(study BENCH-SMALL 1000)
populate "$BIG" 500 10000 2000 5000 200
populate "$SMALL" 50 1000 200 500 20
"${PSQL[@]}" -c "ANALYZE"
"${PSQL[@]}" -c "SELECT (SELECT count(*) FROM sites) AS sites, (SELECT count(*) FROM enrollment_reports) AS weeks,
    (SELECT count(*) FROM deviations) AS deviations, (SELECT count(*) FROM risks) AS risks,
    (SELECT count(*) FROM expenses) AS expenses, (SELECT count(*) FROM milestones) AS milestones"

# time_endpoint LABEL PATH: REQUESTS sequential requests after 10 warm-up ones.
time_endpoint() {
    local label=$1 url="$BASE$2" times
    for _ in $(seq 1 10); do curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$url"; done
    times=$(for _ in $(seq 1 "$REQUESTS"); do
        curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$url"
    done | sort -n)
    echo "$times" | awk -v label="$label" -v n="$REQUESTS" '
        { t[NR] = $1 * 1000; sum += t[NR] }
        END {
            printf "| %s | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms |\n", label, n,
                t[int(n * 0.50 + 0.5)], t[int(n * 0.90 + 0.5)], t[int(n * 0.99 + 0.5)], t[n], sum / n
        }'
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $REQUESTS sequential requests per row (curl)"
echo "| endpoint | requests | p50 | p90 | p99 | max | mean |"
echo "|---|---|---|---|---|---|---|"
time_endpoint "metrics, big study" "/api/v1/studies/$BIG/metrics"
time_endpoint "metrics, small study" "/api/v1/studies/$SMALL/metrics"
time_endpoint "enrollment-curve, big study" "/api/v1/studies/$BIG/enrollment-curve"
time_endpoint "enrollment-curve, small study" "/api/v1/studies/$SMALL/enrollment-curve"
time_endpoint "portfolio (both studies)" "/api/v1/metrics/portfolio"
time_endpoint "study read (baseline)" "/api/v1/studies/$BIG"
