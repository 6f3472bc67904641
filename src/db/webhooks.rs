//! Webhook subscriptions, their deliveries and the attempts to send them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Interval, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::changes::ChangeItem;
use crate::db::schema::{webhook_attempts, webhook_deliveries, webhooks};
use crate::domain::ids::{ClientId, DeliveryId, WebhookId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub owner_id: ClientId,
    pub url: String,
    pub entity_types: Vec<String>,
    pub feed_position: i64,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A subscription as answered (without its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0e6-5555-7aaa-8bbb-123456789abc", "url": "https://cro.example.com/trialops/hooks",
    "entity_types": ["risk", "deviation"], "owner": "0193f0e6-1111-7aaa-8bbb-123456789abc",
    "created_at": "2026-11-25T09:00:00Z"
}))]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    pub entity_types: Vec<String>,
    /// The API client that registered it; deliveries carry what that client may read.
    pub owner: ClientId,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.id,
            url: row.url,
            entity_types: row.entity_types,
            owner: row.owner_id,
            created_at: row.created_at,
        }
    }
}

/// Registers a subscription that starts at the feed's current head: it receives the
/// changes committed after it (earlier ones are in the pull feed). Everything committed
/// before is sealed first, so that no earlier change gets a position after the start.
/// Not to be called inside a transaction (sealing commits on its own).
pub async fn create(
    conn: &mut Conn,
    id: WebhookId,
    owner_id: ClientId,
    url: &str,
    entity_types: &[String],
    secret: StoredSecret,
) -> QueryResult<WebhookRow> {
    let (plain, sealed) = match secret {
        StoredSecret::Plain(secret) => (Some(secret), None),
        StoredSecret::Sealed(sealed) => (None, Some(sealed)),
    };
    crate::db::seals::seal_committed(conn).await?;
    let head = crate::db::changes::head(conn).await?;
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::id.eq(id),
            webhooks::owner_id.eq(owner_id),
            webhooks::url.eq(url),
            webhooks::entity_types.eq(entity_types),
            webhooks::secret.eq(plain),
            webhooks::secret_enc.eq(sealed),
            webhooks::feed_position.eq(head),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

/// A webhook's signing secret as stored: plain only without an encryption key.
pub enum StoredSecret {
    Plain(String),
    /// Sealed under `TRIALOPS_KEY_ENCRYPTION_KEY`, bound to the webhook's id.
    Sealed(Vec<u8>),
}

/// Every subscription's id and stored secret (plain, sealed), for `trialops keys
/// encrypt|rewrap`.
pub async fn stored_secrets(
    conn: &mut Conn,
) -> QueryResult<Vec<(WebhookId, Option<String>, Option<Vec<u8>>)>> {
    webhooks::table
        .select((webhooks::id, webhooks::secret, webhooks::secret_enc))
        .load(conn)
        .await
}

/// Stores a subscription's secret sealed (and no plain copy).
pub async fn set_sealed_secret(conn: &mut Conn, id: WebhookId, sealed: Vec<u8>) -> QueryResult<()> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::secret.eq(None::<String>),
            webhooks::secret_enc.eq(Some(sealed)),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Live subscriptions, oldest first: those of `owner`, or every one.
pub async fn list(conn: &mut Conn, owner: Option<ClientId>) -> QueryResult<Vec<WebhookRow>> {
    let mut query = webhooks::table
        .filter(webhooks::deleted_at.is_null())
        .select(WebhookRow::as_select())
        .order(webhooks::id.asc())
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(webhooks::owner_id.eq(owner));
    }
    query.load(conn).await
}

pub async fn find(conn: &mut Conn, id: WebhookId) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .find(id)
        .filter(webhooks::deleted_at.is_null())
        .select(WebhookRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Ends a subscription: nothing more is queued or sent for it; its deliveries stay.
pub async fn delete(conn: &mut Conn, id: WebhookId) -> QueryResult<usize> {
    diesel::update(
        webhooks::table
            .find(id)
            .filter(webhooks::deleted_at.is_null()),
    )
    .set(webhooks::deleted_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub response_status: Option<i32>,
    /// Why the attempt failed, if it did (connection refused, timeout, non-2xx status).
    pub error: Option<String>,
}

/// A change queued for a subscription, and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0e6-6666-7aaa-8bbb-123456789abc", "seq": 1042, "entity_type": "risk",
    "entity_id": "0193f0e6-4444-7aaa-8bbb-123456789abc", "state": "delivered",
    "attempts": [
        {"at": "2026-11-25T09:30:01Z", "response_status": 503, "error": "receiver answered 503"},
        {"at": "2026-11-25T09:30:11Z", "response_status": 200, "error": null}
    ]
}))]
pub struct Delivery {
    pub id: DeliveryId,
    /// The change's position in the feed.
    pub seq: i64,
    pub entity_type: String,
    pub entity_id: Uuid,
    /// `pending` (queued or waiting for a retry), `delivered`, or `failed` (every attempt
    /// failed).
    pub state: String,
    pub attempts: Vec<Attempt>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
struct DeliveryRow {
    id: DeliveryId,
    seq: i64,
    entity_type: String,
    entity_id: Uuid,
    state: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
struct AttemptRow {
    delivery_id: DeliveryId,
    at: DateTime<Utc>,
    response_status: Option<i32>,
    error: Option<String>,
}

/// Deliveries of a subscription after feed position `after`, oldest first, each with its
/// attempts; one more than `limit` is fetched to tell whether another page exists.
pub async fn deliveries(
    conn: &mut Conn,
    webhook_id: WebhookId,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::seq.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(webhook_deliveries::seq.gt(after));
    }
    let rows: Vec<DeliveryRow> = query.load(conn).await?;
    let ids: Vec<DeliveryId> = rows.iter().map(|r| r.id).collect();
    let mut attempts: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
    for row in webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(ids))
        .order((webhook_attempts::delivery_id, webhook_attempts::attempt))
        .select(AttemptRow::as_select())
        .load::<AttemptRow>(conn)
        .await?
    {
        attempts.entry(row.delivery_id).or_default().push(Attempt {
            at: row.at,
            response_status: row.response_status,
            error: row.error,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| Delivery {
            attempts: attempts.remove(&row.id).unwrap_or_default(),
            id: row.id,
            seq: row.seq,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            state: row.state,
        })
        .collect())
}

// The dispatcher's queries.

/// Live subscriptions to look at for new changes.
pub async fn live_ids(conn: &mut Conn) -> QueryResult<Vec<WebhookId>> {
    webhooks::table
        .filter(webhooks::deleted_at.is_null())
        .select(webhooks::id)
        .order(webhooks::id.asc())
        .load(conn)
        .await
}

/// Locks a live subscription for queueing its new changes, unless another instance is
/// doing so right now (then `None`: that instance does it).
pub async fn lock_for_queueing(conn: &mut Conn, id: WebhookId) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .find(id)
        .filter(webhooks::deleted_at.is_null())
        .select(WebhookRow::as_select())
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()
}

/// Queues feed items for a subscription and moves its position to `position`.
pub async fn queue(
    conn: &mut Conn,
    webhook_id: WebhookId,
    items: &[ChangeItem],
    position: i64,
) -> QueryResult<()> {
    let rows = items
        .iter()
        .map(|item| {
            Ok((
                webhook_deliveries::id.eq(DeliveryId::new_v7()),
                webhook_deliveries::webhook_id.eq(webhook_id),
                webhook_deliveries::seq.eq(item.seq),
                webhook_deliveries::entity_type.eq(item.entity_type.clone()),
                webhook_deliveries::entity_id.eq(item.entity_id),
                webhook_deliveries::payload.eq(serde_json::to_value(item)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?),
            ))
        })
        .collect::<QueryResult<Vec<_>>>()?;
    if !rows.is_empty() {
        diesel::insert_into(webhook_deliveries::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    diesel::update(webhooks::table.find(webhook_id))
        .set(webhooks::feed_position.eq(position))
        .execute(conn)
        .await?;
    Ok(())
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: DeliveryId,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub payload: Value,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub url: String,
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: WebhookId,
    /// The signing secret, plain (without an encryption key) ...
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub secret: Option<String>,
    /// ... or sealed under it, bound to `webhook_id`.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    pub secret_enc: Option<Vec<u8>>,
}

/// Claims up to `limit` due deliveries for one attempt each: counts the attempt and moves
/// `next_attempt_at` past `lease`, so no other instance takes them while this one sends
/// (and, should this one die mid-send, another retries once the lease lapses). A delivery
/// waits while an earlier one of the same record to the same subscription is pending:
/// each subscriber gets a record's changes in feed order.
pub async fn claim_due(conn: &mut Conn, limit: i64, lease: Duration) -> QueryResult<Vec<Claimed>> {
    let lease = diesel::data_types::PgInterval::from_microseconds(
        i64::try_from(lease.as_micros()).unwrap_or(i64::MAX),
    );
    diesel::sql_query(
        "WITH due AS (
            SELECT d.id FROM webhook_deliveries d
            JOIN webhooks w ON w.id = d.webhook_id AND w.deleted_at IS NULL
            WHERE d.state = 'pending' AND d.next_attempt_at <= now()
              AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries e
                WHERE e.webhook_id = d.webhook_id AND e.entity_id = d.entity_id
                  AND e.state = 'pending' AND e.seq < d.seq)
            ORDER BY d.seq
            LIMIT $1
            FOR UPDATE OF d SKIP LOCKED)
         UPDATE webhook_deliveries d
            SET attempt_count = d.attempt_count + 1, next_attempt_at = now() + $2
           FROM due, webhooks w
          WHERE d.id = due.id AND w.id = d.webhook_id
         RETURNING d.id, d.attempt_count AS attempt, d.payload, w.url, w.id AS webhook_id,
                   w.secret, w.secret_enc",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Interval, _>(lease)
    .load(conn)
    .await
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub response_status: Option<i32>,
    pub error: Option<String>,
    /// When a failed attempt is tried again (ignored once delivered or failed for good).
    pub retry_after: Option<Duration>,
    /// No attempt is left: the delivery is `failed`.
    pub failed: bool,
}

/// Records an attempt and the delivery's new state, in one transaction.
pub async fn record_attempt(
    conn: &mut Conn,
    claimed: &Claimed,
    outcome: &Outcome,
) -> QueryResult<()> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::delivery_id.eq(claimed.id),
                webhook_attempts::attempt.eq(claimed.attempt),
                webhook_attempts::response_status.eq(outcome.response_status),
                webhook_attempts::error.eq(outcome.error.as_deref()),
            ))
            .execute(conn)
            .await?;
        let state = match (outcome.error.is_none(), outcome.failed) {
            (true, _) => "delivered",
            (false, true) => "failed",
            (false, false) => "pending",
        };
        let wait = outcome.retry_after.unwrap_or_default();
        diesel::sql_query(
            "UPDATE webhook_deliveries SET state = $1, next_attempt_at = now() + $2 WHERE id = $3",
        )
        .bind::<diesel::sql_types::Text, _>(state)
        .bind::<Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            i64::try_from(wait.as_micros()).unwrap_or(i64::MAX),
        ))
        .bind::<SqlUuid, _>(claimed.id)
        .execute(conn)
        .await?;
        Ok(())
    })
    .await
}
