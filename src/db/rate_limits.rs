//! Request counting for the per-client rate limit, in PostgreSQL so that every instance
//! counts against the same limit.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::Conn;

/// A live client's request, counted in the current one-minute window.
#[derive(Debug, QueryableByName)]
pub struct Admission {
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Requests in this window, this one included.
    #[diesel(sql_type = Integer)]
    pub hits: i32,
    /// Seconds until the window ends.
    #[diesel(sql_type = Integer)]
    pub reset_seconds: i32,
}

/// Counts a request of `client_id` if the client exists and is not revoked (`None`
/// otherwise), in one round trip: the revocation check every request makes anyway, the
/// count, and the removal of this client's finished windows.
pub async fn admit(conn: &mut Conn, client_id: Uuid) -> QueryResult<Option<Admission>> {
    diesel::sql_query(
        "WITH client AS (
             SELECT name FROM api_clients WHERE id = $1 AND revoked_at IS NULL
         ), purge AS (
             DELETE FROM rate_limit_windows
             WHERE client_id = $1 AND window_start < date_trunc('minute', now())
         ), hit AS (
             INSERT INTO rate_limit_windows AS w (client_id, window_start, hits)
             SELECT $1, date_trunc('minute', now()), 1 FROM client
             ON CONFLICT (client_id, window_start) DO UPDATE SET hits = w.hits + 1
             RETURNING hits
         )
         SELECT client.name, hit.hits,
                ceil(extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now()))::int
                    AS reset_seconds
         FROM client CROSS JOIN hit",
    )
    .bind::<SqlUuid, _>(client_id)
    .get_result(conn)
    .await
    .optional()
}
