//! Token signing keys kept in the database, so every instance signs and verifies alike.
//!
//! A key's life: published (inserted: every instance learns of it and verifies with it),
//! signing from `signing_from`, superseded by a rotation (it verifies tokens until
//! `tokens_until`), retired (its private half erased). A key that signed an audit
//! checkpoint stays published forever. Each step is an audit event of entity type
//! `signing_key`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{self, Subject, WriteContext};
use crate::db::Conn;
use crate::db::schema::signing_keys;
use crate::domain::enums::{AuditAction, EntityType};
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    /// The PKCS#8 key in plain form (only without an encryption key).
    pub private_der: Option<Vec<u8>>,
    /// The PKCS#8 key sealed under the encryption key, bound to the kid.
    pub private_enc: Option<Vec<u8>>,
    pub public_raw: Vec<u8>,
    pub signing_from: Option<DateTime<Utc>>,
    pub tokens_until: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub signed_checkpoint: bool,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = signing_keys, treat_none_as_default_value = false)]
pub struct NewSigningKey {
    pub kid: String,
    pub algorithm: String,
    pub private_der: Option<Vec<u8>>,
    pub private_enc: Option<Vec<u8>>,
    pub public_raw: Vec<u8>,
    pub signing_from: Option<DateTime<Utc>>,
}

/// A key as its audit events show it (never its private half).
#[derive(Debug, Clone, Serialize)]
struct AuditedKey {
    kid: String,
    algorithm: String,
    /// `encrypted`, `plain`, or `none` (the environment's key, or a retired one).
    private_key: &'static str,
    signing_from: Option<DateTime<Utc>>,
    tokens_until: Option<DateTime<Utc>>,
    retired_at: Option<DateTime<Utc>>,
}

fn private_form(der: &Option<Vec<u8>>, enc: &Option<Vec<u8>>) -> &'static str {
    match (der, enc) {
        (_, Some(_)) => "encrypted",
        (Some(_), None) => "plain",
        (None, None) => "none",
    }
}

impl From<&SigningKeyRow> for AuditedKey {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.kid.clone(),
            algorithm: row.algorithm.clone(),
            private_key: private_form(&row.private_der, &row.private_enc),
            signing_from: row.signing_from,
            tokens_until: row.tokens_until,
            retired_at: row.retired_at,
        }
    }
}

impl From<&NewSigningKey> for AuditedKey {
    fn from(row: &NewSigningKey) -> Self {
        Self {
            kid: row.kid.clone(),
            algorithm: row.algorithm.clone(),
            private_key: private_form(&row.private_der, &row.private_enc),
            signing_from: row.signing_from,
            tokens_until: None,
            retired_at: None,
        }
    }
}

/// The audit trail's id for a key: the first 16 bytes of the SHA-256 of its public key
/// (the `kid` is the first 12, so the id's hex starts with the kid).
pub fn entity_id(public_raw: &[u8]) -> Uuid {
    let digest = Sha256::digest(public_raw);
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

async fn record(
    conn: &mut Conn,
    ctx: &WriteContext,
    action: AuditAction,
    public_raw: &[u8],
    before: Option<AuditedKey>,
    after: Option<AuditedKey>,
) -> Result<(), ApiError> {
    let subject = Subject {
        entity_type: EntityType::SigningKey,
        entity_id: entity_id(public_raw),
        study_id: None,
        version: None,
    };
    audit::record(conn, ctx, action, subject, before.as_ref(), after.as_ref()).await
}

/// Advisory lock key serialising changes to the key set ("is there a key yet?", rotation).
const KEY_LOCK: i64 = 0x6b65_7973; // "keys"

async fn lock(conn: &mut Conn) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_LOCK})"))
        .execute(conn)
        .await
        .map(drop)
}

/// Keys that can sign: not retired, with a private half, and a time they sign from.
fn signers() -> signing_keys::BoxedQuery<'static, diesel::pg::Pg> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .filter(signing_keys::signing_from.is_not_null())
        .filter(
            signing_keys::private_der
                .is_not_null()
                .or(signing_keys::private_enc.is_not_null()),
        )
        .into_boxed()
}

/// Creates a key with `make_key` if none can sign. Two instances starting together take
/// the same advisory lock, so only one creates a key and both use it. The first start's
/// key is not an audit event (it is part of setting up, like the migrations); every key a
/// rotation creates is.
pub async fn ensure_signer(
    conn: &mut Conn,
    make_key: impl FnOnce() -> anyhow::Result<NewSigningKey> + Send + 'static,
) -> anyhow::Result<()> {
    conn.transaction::<_, anyhow::Error, _>(async move |conn| {
        lock(conn).await?;
        let existing: i64 = signers().count().get_result(conn).await?;
        if existing > 0 {
            return Ok(());
        }
        let row = make_key()?;
        diesel::insert_into(signing_keys::table)
            .values(&row)
            .execute(conn)
            .await?;
        tracing::info!(kid = %row.kid, "created a new token signing key");
        Ok(())
    })
    .await
}

/// Publishes the public half of a key whose private half lives elsewhere (the
/// environment's), so that what it signs stays verifiable by every instance.
pub async fn publish_public(conn: &mut Conn, row: &NewSigningKey) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .on_conflict(signing_keys::kid)
        .do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Every published key: not retired, or a checkpoint signer.
pub async fn published(conn: &mut Conn) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::signed_checkpoint),
        )
        .order(signing_keys::created_at.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rotation {
    /// The new key, published now.
    pub kid: String,
    /// When the new key starts signing (every instance knows it by then).
    pub signing_from: DateTime<Utc>,
    /// The keys it supersedes: each verifies tokens until its `tokens_until`, then retires.
    pub superseded: Vec<Superseded>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Superseded {
    pub kid: String,
    pub tokens_until: DateTime<Utc>,
}

/// Gives every database signer other than `kid` its last day: once the key comes from
/// the environment, earlier database keys verify their outstanding tokens, then retire
/// (their private halves erased). Answers the kids superseded.
pub async fn supersede_all_but(
    conn: &mut Conn,
    kid: &str,
    tokens_until: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let kid = kid.to_string();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        lock(conn).await?;
        let current: Vec<SigningKeyRow> = signers()
            .filter(signing_keys::tokens_until.is_null())
            .filter(signing_keys::kid.ne(&kid))
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await?;
        let ctx =
            WriteContext::command_line("the signing key now comes from TRIALOPS_SIGNING_KEY_PEM");
        supersede(conn, &ctx, &current, tokens_until).await?;
        Ok(current.into_iter().map(|row| row.kid).collect())
    })
    .await
}

async fn supersede(
    conn: &mut Conn,
    ctx: &WriteContext,
    rows: &[SigningKeyRow],
    tokens_until: DateTime<Utc>,
) -> Result<Vec<Superseded>, ApiError> {
    let mut superseded = Vec::new();
    for row in rows {
        diesel::update(signing_keys::table.find(&row.kid))
            .set(signing_keys::tokens_until.eq(tokens_until))
            .execute(conn)
            .await?;
        let mut after = row.clone();
        after.tokens_until = Some(tokens_until);
        record(
            conn,
            ctx,
            AuditAction::Supersede,
            &row.public_raw,
            Some(row.into()),
            Some((&after).into()),
        )
        .await?;
        superseded.push(Superseded {
            kid: row.kid.clone(),
            tokens_until,
        });
    }
    Ok(superseded)
}

/// Publishes `new` as the key that signs from `signing_from`, and gives every current
/// signer its last day: `tokens_until`, after the last token it can still sign expires.
pub async fn rotate(
    conn: &mut Conn,
    ctx: &WriteContext,
    new: NewSigningKey,
    tokens_until: DateTime<Utc>,
) -> Result<Rotation, ApiError> {
    let ctx = ctx.clone();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        lock(conn).await?;
        let current: Vec<SigningKeyRow> = signers()
            .filter(signing_keys::tokens_until.is_null())
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await?;
        diesel::insert_into(signing_keys::table)
            .values(&new)
            .execute(conn)
            .await?;
        record(
            conn,
            &ctx,
            AuditAction::Create,
            &new.public_raw,
            None,
            Some((&new).into()),
        )
        .await?;
        let superseded = supersede(conn, &ctx, &current, tokens_until).await?;
        Ok(Rotation {
            kid: new.kid.clone(),
            signing_from: new.signing_from.unwrap_or_else(Utc::now),
            superseded,
        })
    })
    .await
}

/// Retires every key whose last token has expired: it stops verifying tokens and its
/// private half is erased (it never signs again). Answers the kids retired.
pub async fn retire_due(conn: &mut Conn) -> Result<Vec<String>, ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        lock(conn).await?;
        let due: Vec<SigningKeyRow> = signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .filter(signing_keys::tokens_until.le(Utc::now()))
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await?;
        let ctx = WriteContext {
            actor: "trialops".into(),
            actor_name: "TrialOps key rotation".into(),
            role: crate::domain::enums::Role::Admin,
            reason: Some("the last token the key signed has expired".into()),
            request_id: None,
        };
        let now = Utc::now();
        for row in &due {
            diesel::update(signing_keys::table.find(&row.kid))
                .set((
                    signing_keys::retired_at.eq(now),
                    signing_keys::private_der.eq(None::<Vec<u8>>),
                    signing_keys::private_enc.eq(None::<Vec<u8>>),
                ))
                .execute(conn)
                .await?;
            let mut after = row.clone();
            after.retired_at = Some(now);
            after.private_der = None;
            after.private_enc = None;
            record(
                conn,
                &ctx,
                AuditAction::Retire,
                &row.public_raw,
                Some(row.into()),
                Some((&after).into()),
            )
            .await?;
            tracing::info!(kid = %row.kid, "retired a token signing key");
        }
        Ok(due.into_iter().map(|row| row.kid).collect())
    })
    .await
}

/// Records that `kid` signed an audit checkpoint: it stays published forever.
pub async fn mark_checkpoint_signer(conn: &mut Conn, kid: &str) -> QueryResult<()> {
    diesel::update(
        signing_keys::table
            .find(kid)
            .filter(signing_keys::signed_checkpoint.eq(false)),
    )
    .set(signing_keys::signed_checkpoint.eq(true))
    .execute(conn)
    .await
    .map(drop)
}

/// Every key with a private half (`trialops keys encrypt|rewrap`).
pub async fn with_private(conn: &mut Conn) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::private_der
                .is_not_null()
                .or(signing_keys::private_enc.is_not_null()),
        )
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await
}

/// Stores a key's private half sealed (and no plain copy).
pub async fn set_sealed(conn: &mut Conn, kid: &str, sealed: Vec<u8>) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(kid))
        .set((
            signing_keys::private_der.eq(None::<Vec<u8>>),
            signing_keys::private_enc.eq(Some(sealed)),
        ))
        .execute(conn)
        .await
        .map(drop)
}
