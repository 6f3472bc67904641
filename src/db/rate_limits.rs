//! The per-client rate limit's shared budget: each instance leases shares of a client's
//! requests for the current one-minute window from PostgreSQL, so that all instances
//! together never answer more than the limit (`auth::rate_limit`).

use diesel::prelude::*;
use diesel::sql_types::{Integer, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::domain::ids::ClientId;

/// What a lease request got.
#[derive(Debug, QueryableByName)]
pub struct Leased {
    /// The budget leased out in this window to every instance, this request included
    /// (it may pass the limit: the grant is what is left of the limit, see `granted`).
    #[diesel(sql_type = Integer)]
    pub leased: i32,
    /// Seconds until the window ends (by the database's clock, which every instance shares).
    #[diesel(sql_type = Integer)]
    pub reset_seconds: i32,
}

impl Leased {
    /// How much of a request for `asked` was granted under `limit`: the increment is
    /// atomic, so `leased - asked` is exactly what was leased before this request.
    pub fn granted(&self, asked: u32, limit: u32) -> u32 {
        let before = i64::from(self.leased) - i64::from(asked);
        (i64::from(limit) - before).clamp(0, i64::from(asked)) as u32
    }
}

/// Asks for `asked` more requests of `client_id`'s current window, in one round trip that
/// also drops the client's finished windows.
pub async fn lease(conn: &mut Conn, client_id: ClientId, asked: u32) -> QueryResult<Leased> {
    diesel::sql_query(
        "WITH purge AS (
             DELETE FROM rate_limit_windows
             WHERE client_id = $1 AND window_start < date_trunc('minute', now())
         )
         INSERT INTO rate_limit_windows AS w (client_id, window_start, leased)
         VALUES ($1, date_trunc('minute', now()), $2)
         ON CONFLICT (client_id, window_start) DO UPDATE SET leased = w.leased + $2
         RETURNING leased,
             ceil(extract(epoch FROM w.window_start + interval '1 minute' - now()))::int
                 AS reset_seconds",
    )
    .bind::<SqlUuid, _>(client_id)
    .bind::<Integer, _>(i32::try_from(asked).unwrap_or(i32::MAX))
    .get_result(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_what_is_left_of_the_limit() {
        let after = |leased| Leased {
            leased,
            reset_seconds: 30,
        };
        assert_eq!(after(15).granted(15, 300), 15, "first lease");
        assert_eq!(after(300).granted(15, 300), 15, "the last full share");
        assert_eq!(after(305).granted(15, 300), 10, "what was left");
        assert_eq!(after(330).granted(15, 300), 0, "nothing left");
    }
}
