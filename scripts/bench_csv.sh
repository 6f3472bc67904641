#!/usr/bin/env bash
# Memory and time of a CSV export (Accept: text/csv) of 100,000 rows: the export must
# stream, so the server's resident memory may not grow with the number of rows.
#
# Runs the release binary against a scratch database on the local PostgreSQL, writes
# 10,000 risks into study A and 90,000 into study B with generate_series, then exports
# study A (10,000 rows) and everything (100,000 rows) with curl, sampling the server's
# VmRSS from /proc every 10 ms while each export runs.
#
#   scripts/bench_csv.sh
#
# Needs: jq, curl, psql. Results go to stdout; copy them into docs/benchmarks.md with the
# machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=18182
DB="trialops_bench_csv_$$"
BASE="http://127.0.0.1:$PORT"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export TRIALOPS_BIND="127.0.0.1:$PORT"
export RUST_LOG=warn
export TRIALOPS_RATE_LIMIT_PER_MINUTE=0

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
./target/release/trialops serve > /tmp/trialops_bench_csv_admin.json 2>/tmp/trialops_bench_csv.log &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$BASE/readyz" >/dev/null || { echo "the server did not start:" >&2; cat /tmp/trialops_bench_csv.log >&2; exit 1; }

CLIENT_ID=$(jq -r .client_id /tmp/trialops_bench_csv_admin.json)
SECRET=$(jq -r .client_secret /tmp/trialops_bench_csv_admin.json)
TOKEN=$(curl -sf -u "$CLIENT_ID:$SECRET" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)
study() {
    curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"protocol_number\":\"BENCH-CSV-$1\",\"title\":\"Bench $1\",\"phase\":\"phase3\",\"currency\":\"EUR\",\"target_enrollment\":100}" \
        "$BASE/api/v1/studies" | jq -r .id
}
STUDY_A=$(study A)
STUDY_B=$(study B)

# Realistic text: commas and quotes to be quoted, a line break, non-ASCII, ~200 bytes of
# prose per row.
psql -q -h 127.0.0.1 -U postgres -d "$DB" <<SQL
INSERT INTO risks (id, study_id, title, description, category, likelihood, impact,
                   detectability, status, owner, mitigation_plan, review_due_on)
SELECT md5('risk ' || g)::uuid,
       CASE WHEN g <= 10000 THEN '$STUDY_A'::uuid ELSE '$STUDY_B'::uuid END,
       'Risk ' || g || ': central lab turnaround, "72 h" exceeded',
       E'Sample results arrive late at site Zürich-Süd,\ndelaying eligibility decisions; '
           || repeat('more detail ', 10),
       (ARRAY['patient_safety','data_integrity','recruitment','vendor','supply'])[1 + g % 5],
       1 + g % 5, 1 + (g / 5) % 5, 1 + (g / 25) % 5,
       'open', 'Clinical operations lead', 'Weekly turnaround report; escalation call.',
       DATE '2026-01-01' + (g % 365)
FROM generate_series(1, 100000) AS g;
ANALYZE risks;
SQL

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER/status"; }

# Warm up (connections, caches), then the idle figure.
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/risks?limit=1000" >/dev/null
curl -sf -H "Authorization: Bearer $TOKEN" -H 'Accept: text/csv' "$BASE/api/v1/risks?limit=1000" >/dev/null
sleep 1
IDLE=$(rss_kb)

export_csv() {
    local label=$1 query=$2 encoding=${3:-identity} out=/tmp/trialops_bench_csv_$$.csv
    local peak
    peak=$(rss_kb)
    curl -sf -o "$out" -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
        -H "Authorization: Bearer $TOKEN" -H 'Accept: text/csv' -H "Accept-Encoding: $encoding" \
        "$BASE/api/v1/risks$query" > /tmp/trialops_bench_csv_curl.txt &
    local curl_pid=$!
    while kill -0 "$curl_pid" 2>/dev/null; do
        local now
        now=$(rss_kb)
        (( now > peak )) && peak=$now
        sleep 0.01
    done
    wait "$curl_pid"
    read -r first total bytes < /tmp/trialops_bench_csv_curl.txt
    local rows
    # Records, not lines: each description holds one line break inside its quotes.
    # Bytes are as they crossed the wire; gzip is decoded to count the rows (Python has no
    # brotli or zstd in its standard library).
    case $encoding in
        identity) rows=$(python3 -c "import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline='', encoding='utf-8'))) - 1)" "$out") ;;
        gzip) rows=$(python3 -c "import csv,gzip,sys; print(sum(1 for _ in csv.reader(gzip.open(sys.argv[1], 'rt', newline='', encoding='utf-8'))) - 1)" "$out") ;;
        *) rows="(${encoding})" ;;
    esac
    printf '| %s | %s | %s | %s s | %s s | %s MiB | %s MiB | %+d KiB |\n' \
        "$label" "$rows" "$bytes" "$first" "$total" \
        "$(awk "BEGIN {printf \"%.1f\", $IDLE / 1024}")" \
        "$(awk "BEGIN {printf \"%.1f\", $peak / 1024}")" "$((peak - IDLE))"
    rm -f "$out"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r), release build"
echo "| export | rows | bytes | first byte | total | idle RSS | peak RSS | growth |"
echo "|---|---|---|---|---|---|---|---|"
export_csv "study A" "?study_id=$STUDY_A"
export_csv "everything" ""
export_csv "everything, again" ""
export_csv "everything, gzip" "" gzip
export_csv "everything, br" "" br
export_csv "everything, zstd" "" zstd
echo
echo "VmHWM (peak RSS over the process's life): $(awk "BEGIN {printf \"%.1f\", $(hwm_kb) / 1024}") MiB"
