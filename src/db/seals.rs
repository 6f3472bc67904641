//! Sealing the audit trail: giving committed audit events their feed position and chain
//! hash (`audit_seal` in `migrations/20261201000002_audit_sealing`).

use diesel::sql_types::{Bool, Integer};
use diesel_async::RunQueryDsl;

use crate::db::Conn;

/// How many events one sealing transaction takes at most.
pub const BATCH: i32 = 5_000;

#[derive(diesel::QueryableByName)]
struct Sealed {
    #[diesel(sql_type = Integer)]
    sealed: i32,
}

/// Seals up to `BATCH` queued events in one transaction and answers how many. Unless
/// `wait`, gives up at once (answering 0) when another sealer is at work.
pub async fn seal_batch(conn: &mut Conn, wait: bool) -> diesel::QueryResult<i32> {
    let sealed: Sealed = diesel::sql_query("SELECT audit_seal($1, $2) AS sealed")
        .bind::<Integer, _>(BATCH)
        .bind::<Bool, _>(wait)
        .get_result(conn)
        .await?;
    Ok(sealed.sealed)
}

/// Seals every event committed before this call, waiting for a sealer at work elsewhere:
/// what a reader of the feed or the trail calls first, so that it sees its own writes
/// and everything else committed before it asked.
pub async fn seal_committed(conn: &mut Conn) -> diesel::QueryResult<()> {
    while seal_batch(conn, true).await? == BATCH {}
    Ok(())
}
