# Shared by the side-by-side benchmarks (`bench_reads.sh`, `bench_writes.sh`,
# `bench_flood.sh`): a scratch database, the release service, tokens, CPU accounting and wrk
# output parsing. Source it; it defines functions and sets nothing else up by itself.
#
# CPU per request is read from /proc: the user+system ticks a process (the service, the
# reference, or every PostgreSQL process together) spent during a run, divided by the
# requests that run answered. The machine is shared and noisy, so every figure is compared
# with a reference measured in the same script, in interleaved rounds (A, B, A, B, ...).

BENCH_PG="postgres://postgres@127.0.0.1:5432"
CLK_TCK=$(getconf CLK_TCK)

# bench_db VAR NAME: a fresh database (dropped by bench_cleanup); its URL goes into the
# variable VAR. Not `URL=$(bench_db ...)`: a command substitution runs in a subshell, so the
# name would never reach BENCH_DATABASES and the database would outlive the run.
bench_db() {
    BENCH_DATABASES+=("$2")
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null
    printf -v "$1" '%s' "$BENCH_PG/$2"
}

BENCH_PIDS=()
BENCH_DATABASES=()
bench_cleanup() {
    for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${BENCH_DATABASES[@]}"; do
        psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    done
}

# bench_wait_ready URL: polls until the URL answers 2xx (30 s at most).
bench_wait_ready() {
    for _ in $(seq 1 150); do
        curl -sf "$1" >/dev/null && return 0
        sleep 0.2
    done
    echo "not ready: $1" >&2
    return 1
}

# bench_serve PORT DATABASE_URL [VAR=value ...]: starts the release service (or the binary
# in $BENCH_BINARY) in the background; its first admin client's JSON goes to
# /tmp/trialops_bench_admin_PORT.json.
bench_serve() {
    local port=$1 url=$2
    shift 2
    env DATABASE_URL="$url" TRIALOPS_BIND="127.0.0.1:$port" RUST_LOG=warn "$@" \
        "${BENCH_BINARY:-./target/release/trialops}" serve >"/tmp/trialops_bench_admin_$port.json" \
        2>"/tmp/trialops_bench_$port.log" &
    BENCH_PIDS+=($!)
    BENCH_LAST_PID=$!
    bench_wait_ready "http://127.0.0.1:$port/readyz"
}

# bench_token PORT: an admin access token from the client `bench_serve` printed.
bench_token() {
    local port=$1 file="/tmp/trialops_bench_admin_$1.json"
    curl -sf -u "$(jq -r .client_id "$file"):$(jq -r .client_secret "$file")" \
        -d grant_type=client_credentials "http://127.0.0.1:$port/oauth/token" | jq -r .access_token
}

# bench_study PORT TOKEN PROTOCOL_NUMBER: creates the study the benchmarks read and write
# under, through the API; prints its id.
bench_study() {
    curl -sf -H "Authorization: Bearer $2" -H 'content-type: application/json' \
        -d "{\"protocol_number\":\"$3\",\"title\":\"Bench\",\"phase\":\"phase3\",\"currency\":\"EUR\",\"target_enrollment\":100}" \
        "http://127.0.0.1:$1/api/v1/studies" | jq -r .id
}

# bench_risk_body STUDY: the risk every write benchmark creates (a score below the study's
# escalation threshold, so one audit event per write).
bench_risk_body() {
    echo "{\"study_id\":\"$1\",\"title\":\"Central lab turnaround exceeds 72 h\",\"category\":\"vendor\",\"likelihood\":2,\"impact\":2,\"detectability\":2}"
}

# bench_post_lua BODY TOKEN: a wrk script that POSTs BODY as JSON with the token.
bench_post_lua() {
    cat <<LUA
wrk.method = "POST"
wrk.body = '$1'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"
LUA
}

# bench_ticks PID...: user+system CPU ticks of these processes, summed.
bench_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        if [ -r "/proc/$pid/stat" ]; then
            # Fields 14 to 17 (utime, stime, and cutime, cstime: the time of exited children
            # the process waited for, so the postmaster accounts for backends that came and
            # went during a run), counted after the command name's ')'.
            fields=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13 + $14 + $15}')
            total=$((total + fields))
        fi
    done
    echo "$total"
}

# bench_pg_pids: every PostgreSQL server process (postmaster, backends, WAL writer, ...).
bench_pg_pids() {
    pgrep -u postgres -f 'postgres' | tr '\n' ' '
}

# bench_wrk_summary FILE: "req/s p99_ms requests non2xx" from a `wrk --latency` output.
bench_wrk_summary() {
    awk '
        /Requests\/sec:/ { rps = $2 }
        /^ +99%/ { p = $2; unit = p; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", p);
                   ms = (unit == "us") ? p / 1000 : (unit == "s") ? p * 1000 : p }
        /requests in/ { n = $1 }
        /Non-2xx or 3xx responses:/ { bad = $5 }
        END { printf "%s %.2f %s %s\n", rps, ms, n, (bad == "" ? 0 : bad) }' "$1"
}

# bench_cpu_us TICKS REQUESTS: microseconds of CPU per request.
bench_cpu_us() {
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (n > 0) ? t / hz * 1e6 / n : 0 }'
}

# bench_median: the median of the numbers on stdin.
bench_median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
