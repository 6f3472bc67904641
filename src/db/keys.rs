//! Token signing keys kept in the database, so every instance signs and verifies alike.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::Conn;
use crate::db::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_der: Vec<u8>,
    pub public_raw: Vec<u8>,
}

/// Advisory lock key serialising "is there a key yet? if not, make one".
const KEY_CREATION_LOCK: i64 = 0x6b65_7973; // "keys"

/// The active key, created by `make_key` if there is none. Two instances starting together
/// take the same advisory lock, so only one creates a key and both use it.
pub async fn active_or_create(
    conn: &mut Conn,
    make_key: impl FnOnce() -> anyhow::Result<SigningKeyRow> + Send + 'static,
) -> anyhow::Result<SigningKeyRow> {
    conn.transaction::<_, anyhow::Error, _>(async move |conn| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_CREATION_LOCK})"))
            .execute(conn)
            .await?;
        let existing = signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .order(signing_keys::created_at.desc())
            .select(SigningKeyRow::as_select())
            .first(conn)
            .await
            .optional()?;
        if let Some(row) = existing {
            return Ok(row);
        }
        let row = make_key()?;
        diesel::insert_into(signing_keys::table)
            .values(&row)
            .execute(conn)
            .await?;
        tracing::info!(kid = %row.kid, "created a new token signing key");
        Ok(row)
    })
    .await
}

/// Every key not retired: tokens signed by any of them verify.
pub async fn verification_keys(conn: &mut Conn) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await
}
