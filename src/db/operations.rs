//! What an operator scrapes besides request figures: the change feed's head, how long
//! committed events have waited to be sealed, and the webhook backlog. One query, run only
//! when `/metrics` is scraped.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double};
use diesel_async::RunQueryDsl;

use crate::db::Conn;

#[derive(Debug, QueryableByName)]
pub struct Backlog {
    /// The last sealed change-feed position.
    #[diesel(sql_type = BigInt)]
    pub feed_head: i64,
    /// Committed audit events not sealed yet.
    #[diesel(sql_type = BigInt)]
    pub unsealed: i64,
    /// Age of the oldest unsealed event, in seconds (0 when all are sealed).
    #[diesel(sql_type = Double)]
    pub sealing_delay_seconds: f64,
    #[diesel(sql_type = BigInt)]
    pub webhook_pending: i64,
    #[diesel(sql_type = BigInt)]
    pub webhook_failed: i64,
}

pub async fn backlog(conn: &mut Conn) -> diesel::QueryResult<Backlog> {
    diesel::sql_query(
        "SELECT
            coalesce((SELECT last_seq FROM audit_chain LIMIT 1), 0)::int8 AS feed_head,
            (SELECT count(*) FROM audit_unsealed) AS unsealed,
            coalesce((SELECT extract(epoch FROM now() - min(e.occurred_at))::float8
                        FROM audit_unsealed u JOIN audit_events e ON e.id = u.event_id),
                     0)::float8 AS sealing_delay_seconds,
            (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') AS webhook_pending,
            (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed') AS webhook_failed",
    )
    .get_result(conn)
    .await
}
