#!/usr/bin/env bash
# A real PostgreSQL streaming replica of the local server, and TrialOps reading its
# lag-tolerant figures from it (TRIALOPS_READ_DATABASE_URL). Shows the routing and the
# lag the answers report, then tears everything down again (replica, its data directory,
# the pg_hba line, the scratch database).
#
#   scripts/replica_demo.sh
#
# Runs as root on a Debian machine whose PostgreSQL runs as `postgres` on 127.0.0.1:5432
# (wal_level replica, the default). The replica listens on 127.0.0.1:5433.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
BIN=/usr/lib/postgresql/$VERSION/bin
HBA=/etc/postgresql/$VERSION/main/pg_hba.conf
REPLICA_DIR=/tmp/trialops_replica_$$
REPLICA_PORT=5433
PORT=18189
DB="trialops_replica_demo_$$"
SLOT="trialops_replica_demo_$$"
HBA_LINE="host replication postgres 127.0.0.1/32 trust # trialops replica_demo $$"

teardown() {
    bench_cleanup
    if [ -f "$REPLICA_DIR/postmaster.pid" ]; then
        su postgres -c "$BIN/pg_ctl -D $REPLICA_DIR -m fast stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$REPLICA_DIR"
    psql -q -h 127.0.0.1 -U postgres -c \
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null || true
    if grep -q "trialops replica_demo $$" "$HBA"; then
        sed -i "/trialops replica_demo $$/d" "$HBA"
        psql -q -h 127.0.0.1 -U postgres -c 'SELECT pg_reload_conf()' >/dev/null
    fi
    echo "torn down: replica stopped, $REPLICA_DIR and the replication slot removed, pg_hba line removed"
}
trap teardown EXIT

cargo build --release --locked --quiet --bin trialops
bench_db PRIMARY_URL "$DB"
DATABASE_URL="$PRIMARY_URL" ./target/release/trialops migrate >/dev/null 2>&1

echo "== a streaming replica of the local server"
echo "$HBA_LINE" >>"$HBA"
psql -q -h 127.0.0.1 -U postgres -c 'SELECT pg_reload_conf()' >/dev/null
# A replication slot keeps the primary from recycling WAL the replica has not received.
su postgres -c "$BIN/pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D $REPLICA_DIR -R -X stream -c fast -C -S $SLOT"
# Debian keeps the server's configuration in /etc, so the copy needs its own.
cat >"$REPLICA_DIR/postgresql.conf" <<EOF
port = $REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
hot_standby = on
hba_file = '$HBA'
ident_file = '/etc/postgresql/$VERSION/main/pg_ident.conf'
EOF
chown postgres:postgres "$REPLICA_DIR/postgresql.conf"
su postgres -c "$BIN/pg_ctl -D $REPLICA_DIR -l $REPLICA_DIR/replica.log -w start" >/dev/null || {
    cat "$REPLICA_DIR/replica.log" >&2
    exit 1
}
REPLICA_URL="postgres://postgres@127.0.0.1:$REPLICA_PORT/$DB"
psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -Atc \
    "SELECT 'replica in recovery: ' || pg_is_in_recovery()"

echo "== TrialOps with TRIALOPS_READ_DATABASE_URL pointing at it"
bench_serve "$PORT" "$PRIMARY_URL" TRIALOPS_READ_DATABASE_URL="$REPLICA_URL"
BASE="http://127.0.0.1:$PORT"
TOKEN=$(bench_token "$PORT")
auth=(-H "Authorization: Bearer $TOKEN")
STUDY=$(curl -sf "${auth[@]}" -H 'content-type: application/json' \
    -d '{"protocol_number":"REPLICA-1","title":"Replica demo","phase":"phase3","currency":"EUR","target_enrollment":100,"planned_start_date":"2026-01-05","planned_end_date":"2027-12-31"}' \
    "$BASE/api/v1/studies" | jq -r .id)
sleep 1
replayed() { psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -Atc "SELECT pg_last_xact_replay_timestamp()"; }
echo "metrics as_of:           $(curl -s "${auth[@]}" "$BASE/api/v1/studies/$STUDY/metrics" | jq -r '.as_of // .')"
echo "replica last replayed:   $(replayed)"

echo "== replay paused on the replica; a write on the primary"
psql -q -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -c 'SELECT pg_wal_replay_pause()' >/dev/null
sleep 1
curl -sf "${auth[@]}" -X PATCH -H 'content-type: application/merge-patch+json' \
    -d '{"target_enrollment": 250}' "$BASE/api/v1/studies/$STUDY" >/dev/null
echo "record (primary):        target $(curl -sf "${auth[@]}" "$BASE/api/v1/studies/$STUDY" | jq .target_enrollment)"
metrics=$(curl -sf "${auth[@]}" "$BASE/api/v1/studies/$STUDY/metrics")
echo "metrics (replica):       target $(echo "$metrics" | jq .enrollment.target), as_of $(echo "$metrics" | jq -r .as_of) (the data's time, not the clock: $(date -u +%FT%TZ))"

echo "== replay resumed"
psql -q -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -c 'SELECT pg_wal_replay_resume()' >/dev/null
sleep 1
metrics=$(curl -sf "${auth[@]}" "$BASE/api/v1/studies/$STUDY/metrics")
echo "metrics (replica):       target $(echo "$metrics" | jq .enrollment.target), as_of $(echo "$metrics" | jq -r .as_of)"
