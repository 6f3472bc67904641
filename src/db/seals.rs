//! Sealing the audit trail: giving committed audit events their feed position and chain
//! hash (`audit_seal` in `migrations/20261201000002_audit_sealing`).

use diesel::sql_types::{Bool, Integer};
use diesel_async::RunQueryDsl;

use crate::db::Conn;

/// How many events one sealing transaction takes at most.
pub const BATCH: i32 = 5_000;

diesel::define_sql_function! {
    /// `audit_seal(batch, wait)`: seals up to `batch` queued events and answers how many.
    fn audit_seal(batch: Integer, wait: Bool) -> Integer;
}

/// Seals up to `BATCH` queued events in one transaction and answers how many. Unless
/// `wait`, gives up at once (answering 0) when another sealer is at work.
pub async fn seal_batch(conn: &mut Conn, wait: bool) -> diesel::QueryResult<i32> {
    // A typed call rather than `sql_query`: diesel caches its prepared statement (it
    // never caches a `sql_query`), so a tick is one round trip, not a Parse, an Execute and
    // a Close.
    diesel::select(audit_seal(BATCH, wait))
        .get_result(conn)
        .await
}

/// Seals every event committed before this call, waiting for a sealer at work elsewhere:
/// what a reader of the feed or the trail calls first, so that it sees its own writes
/// and everything else committed before it asked.
pub async fn seal_committed(conn: &mut Conn) -> diesel::QueryResult<()> {
    while seal_batch(conn, true).await? == BATCH {}
    Ok(())
}
