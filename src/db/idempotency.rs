//! Idempotency keys: claimed before a POST runs, completed with its answer.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::db::schema::idempotency_keys;
use crate::domain::ids::ClientId;

/// How long a key is kept (the contract's minimum).
pub const RETENTION_HOURS: i64 = 24;
/// A claim older than this whose request never finished (the process died mid-request) no
/// longer blocks the key.
pub const ABANDONED_AFTER_MINUTES: i64 = 5;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct StoredKey {
    pub request_hash: String,
    pub state: String,
    pub response_status: Option<i32>,
    pub response_type: Option<String>,
    pub response_body: Option<Vec<u8>>,
    /// The answer sealed under `TRIALOPS_KEY_ENCRYPTION_KEY` (it may carry a new client's
    /// secret), bound to the client and key; `response_body` is then NULL.
    pub response_body_enc: Option<Vec<u8>>,
    pub response_location: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A kept answer's body as stored.
pub enum StoredBody<'a> {
    Plain(&'a [u8]),
    Sealed(Vec<u8>),
}

/// Claims `key` for this client: `None` if the claim is ours (run the request), or the row
/// that holds it (replay it, or refuse). Expired and abandoned rows are cleared first.
pub async fn claim(
    conn: &mut Conn,
    client: ClientId,
    key: &str,
    request_hash: &str,
) -> QueryResult<Option<StoredKey>> {
    let expired = Utc::now() - chrono::Duration::hours(RETENTION_HOURS);
    let abandoned = Utc::now() - chrono::Duration::minutes(ABANDONED_AFTER_MINUTES);
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::client_id.eq(client))
            .filter(
                idempotency_keys::created_at
                    .lt(expired)
                    .or(idempotency_keys::state
                        .eq("in_progress")
                        .and(idempotency_keys::created_at.lt(abandoned))),
            ),
    )
    .execute(conn)
    .await?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::client_id.eq(client),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::state.eq("in_progress"),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    idempotency_keys::table
        .find((client, key))
        .select(StoredKey::as_select())
        .first(conn)
        .await
        .optional()
}

/// Keeps the answer of a finished request for replay.
pub async fn complete(
    conn: &mut Conn,
    client: ClientId,
    key: &str,
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: StoredBody<'_>,
) -> QueryResult<usize> {
    let (plain, sealed) = match body {
        StoredBody::Plain(body) => (Some(body), None),
        StoredBody::Sealed(sealed) => (None, Some(sealed)),
    };
    diesel::update(idempotency_keys::table.find((client, key)))
        .set((
            idempotency_keys::state.eq("completed"),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_type.eq(content_type),
            idempotency_keys::response_location.eq(location),
            idempotency_keys::response_body.eq(plain),
            idempotency_keys::response_body_enc.eq(sealed),
        ))
        .execute(conn)
        .await
}

/// Frees a key whose request failed on our side (5xx), so the client's retry runs again.
pub async fn release(conn: &mut Conn, client: ClientId, key: &str) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.find((client, key)))
        .execute(conn)
        .await
}

/// Every kept answer's keys and stored body (plain, sealed), for `trialops keys
/// encrypt|rewrap`.
pub async fn stored_bodies(
    conn: &mut Conn,
) -> QueryResult<Vec<(ClientId, String, Option<Vec<u8>>, Option<Vec<u8>>)>> {
    idempotency_keys::table
        .filter(idempotency_keys::state.eq("completed"))
        .select((
            idempotency_keys::client_id,
            idempotency_keys::key,
            idempotency_keys::response_body,
            idempotency_keys::response_body_enc,
        ))
        .load(conn)
        .await
}

/// Stores a kept answer sealed (and no plain copy).
pub async fn set_sealed_body(
    conn: &mut Conn,
    client: ClientId,
    key: &str,
    sealed: Vec<u8>,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((client, key)))
        .set((
            idempotency_keys::response_body.eq(None::<Vec<u8>>),
            idempotency_keys::response_body_enc.eq(Some(sealed)),
        ))
        .execute(conn)
        .await
        .map(drop)
}
