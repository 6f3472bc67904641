#!/usr/bin/env bash
# Costs that must stay flat at scale, on the dataset of scripts/seed_scale.sql (200 studies,
# 19,910 sites, ~1M weekly enrollment rows, ~100k deviations, ~1M audit events):
#   - sealing the ~1M queued audit events when the service starts (events/s);
#   - a list page at the end of the ~1M-row walk against the first page (median of 20 each);
#   - the change feed caught up from 0 to ~1M events (events/s, the service's RSS);
#   - the metrics of a study ten times larger than another (median of 20 each);
#   - the service's RSS under the read load of bench_reads.sh, and with 8,000 open
#     connections (wrk -c8000).
#
#   scripts/bench_scale.sh
#
# Needs: wrk, jq, curl, psql. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
PORT=18188
DB="trialops_bench_scale_$$"

cargo build --release --locked --quiet --bin trialops
trap bench_cleanup EXIT
bench_db URL "$DB"
DATABASE_URL="$URL" ./target/release/trialops migrate >/dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(nproc) cores"
started=$(date +%s.%N)
psql -q -h 127.0.0.1 -U postgres "$DB" -f scripts/seed_scale.sql
awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "seed: %.1f s\n", b - a }'

# Enough descriptors for 8,000 connections on each side (wrk and the service).
ulimit -n "$(ulimit -Hn)"
started=$(date +%s.%N)
bench_serve "$PORT" "$URL" TRIALOPS_RATE_LIMIT_PER_MINUTE=0
PID=$BENCH_LAST_PID
BASE="http://127.0.0.1:$PORT"
TOKEN=$(bench_token "$PORT")
until [ "$(psql -h 127.0.0.1 -U postgres "$DB" -Atc 'SELECT count(*) FROM audit_unsealed')" = 0 ]; do
    sleep 0.5
done
awk -v a="$started" -v b="$(date +%s.%N)" \
    'BEGIN { printf "sealing 995,500 queued events at start: %.1f s (%.0f events/s)\n", b - a, 995500 / (b - a) }'

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
# sample_rss SECONDS: the highest RSS (KiB) seen over that many seconds, sampled twice a second.
sample_rss() {
    local peak=0 now
    for _ in $(seq 1 $(($1 * 2))); do
        now=$(rss_kib)
        [ "$now" -gt "$peak" ] && peak=$now
        sleep 0.5
    done
    echo "$peak"
}
get_time() { curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$1"; }
median_time() { # median_time URL: of 20 requests, in ms
    for _ in $(seq 1 20); do get_time "$1"; done | bench_median | awk '{ printf "%.1f", $1 * 1000 }'
}

# 1. The walk: every enrollment report, 1,000 a page, to the end.
cursor=""
pages=0
last_cursor=""
while :; do
    page=$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/enrollment?limit=1000${cursor:+&cursor=$cursor}")
    pages=$((pages + 1))
    next=$(echo "$page" | jq -r '.next_cursor // empty')
    [ -z "$next" ] && break
    last_cursor=$next
    cursor=$next
done
first=$(median_time "$BASE/api/v1/enrollment?limit=1000")
last=$(median_time "$BASE/api/v1/enrollment?limit=1000&cursor=$last_cursor")
awk -v f="$first" -v l="$last" -v p="$pages" \
    'BEGIN { printf "list walk: %d pages; first page %.1f ms, last page %.1f ms: %.2fx\n", p, f, l, l / f }'

# 2. The feed from the start.
rss_before=$(rss_kib)
started=$(date +%s.%N)
after=0
peak=$rss_before
while :; do
    page=$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/changes?after=$after&limit=1000")
    next=$(echo "$page" | jq -r .next_after)
    [ "$next" = "$after" ] && break
    after=$next
    now=$(rss_kib)
    [ "$now" -gt "$peak" ] && peak=$now
done
awk -v a="$started" -v b="$(date +%s.%N)" -v n="$after" -v r0="$rss_before" -v r1="$peak" \
    'BEGIN { printf "feed catch-up: %d events in %.1f s (%.0f events/s); RSS %.1f MiB before, %.1f MiB at most during\n", n, b - a, n / (b - a), r0 / 1024, r1 / 1024 }'

# 3. Metrics of study 1 (1,000 sites) and study 2 (100 sites).
big=$(psql -h 127.0.0.1 -U postgres "$DB" -Atc "SELECT md5('study 1')::uuid")
small=$(psql -h 127.0.0.1 -U postgres "$DB" -Atc "SELECT md5('study 2')::uuid")
get_time "$BASE/api/v1/studies/$big/metrics" >/dev/null
t_big=$(median_time "$BASE/api/v1/studies/$big/metrics")
t_small=$(median_time "$BASE/api/v1/studies/$small/metrics")
awk -v b="$t_big" -v s="$t_small" \
    'BEGIN { printf "metrics: study of 1,000 sites %.1f ms, of 100 sites %.1f ms: %.2fx for 10x the data\n", b, s, b / s }'

# 4. RSS under the read load, then with 8,000 open connections.
study=$big
wrk -t2 -c32 -d15s --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/studies/$study" >/tmp/scale_wrk32.txt &
WRK=$!
sleep 2
peak=$(sample_rss 12)
wait "$WRK"
read -r rps p99 _ bad <<<"$(bench_wrk_summary /tmp/scale_wrk32.txt)"
awk -v p="$peak" -v r="$rps" -v q="$p99" \
    'BEGIN { printf "read load (wrk -c32): %s req/s, p99 %s ms; RSS at most %.1f MiB\n", r, q, p / 1024 }'
wrk -t2 -c8000 -d20s --timeout 10s --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/studies/$study" >/tmp/scale_wrk8000.txt &
WRK=$!
sleep 3
peak=$(sample_rss 15)
wait "$WRK"
read -r rps p99 _ bad <<<"$(bench_wrk_summary /tmp/scale_wrk8000.txt)"
errors=$(awk '/Socket errors/ { print }' /tmp/scale_wrk8000.txt)
awk -v p="$peak" -v r="$rps" -v q="$p99" -v e="${errors:-Socket errors: none}" \
    'BEGIN { printf "8,000 connections (wrk -c8000): %s req/s, p99 %s ms, %s; RSS at most %.1f MiB\n", r, q, e, p / 1024 }'
