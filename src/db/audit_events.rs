//! Reading the audit trail, and checking its hash chain.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::{audit_events, audit_seals};
use crate::db::{Conn, filter_eq};
use crate::domain::ids::StudyId;

/// One audit event: who did what to which record, when, why, with which old and new values.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_events)]
#[schema(example = json!({
    "seq": 42, "occurred_at": "2026-11-25T09:30:00.123456Z",
    "actor": "0193f0e6-1111-7aaa-8bbb-123456789abc", "actor_name": "Acme CRO sync", "role": "cro",
    "action": "update", "entity_type": "study", "entity_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "entity_version": 3,
    "changes": {"status": {"old": "not_yet_recruiting", "new": "recruiting"}},
    "reason": "First site activated", "request_id": "0193f0e7-2222-7ccc-8ddd-abcdefabcdef",
    "prev_hash": "36ecb6e5d1f0c9a8b7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180",
    "hash": "7a39e5250f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4"
}))]
pub struct AuditEvent {
    /// Position in the trail: gap-free, in the order events were sealed (committed events
    /// are sealed within milliseconds; a read of the trail seals first).
    #[diesel(select_expression = audit_seals::seq)]
    pub seq: i64,
    /// When the change was made (UTC, the writing transaction's start).
    pub occurred_at: DateTime<Utc>,
    /// The API client id of the writer, or `cli` for the command line.
    pub actor: String,
    pub actor_name: String,
    pub role: String,
    /// `create`, `update`, `delete`, or a named transition (`escalate`, `revoke`).
    pub action: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub study_id: Option<StudyId>,
    /// The record's version after the change.
    #[serde(skip)]
    pub entity_version: Option<i32>,
    /// Each changed field with its old and new value.
    #[schema(value_type = Object)]
    pub changes: Value,
    #[serde(skip)]
    pub data: Option<Value>,
    /// `X-Change-Reason`, or the reason of an automatic transition.
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// The hash of the event before this one (64 zeros for the first).
    #[diesel(select_expression = audit_seals::prev_hash)]
    pub prev_hash: String,
    /// SHA-256 over this event's position, fields and `prev_hash`.
    #[diesel(select_expression = audit_seals::hash)]
    pub hash: String,
}

/// Filters of `GET /audit-events`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<Uuid>,
    pub study_id: Option<StudyId>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// A page of sealed events after `after` (a `seq`), oldest first; one more than `limit` is
/// fetched to tell whether another page exists. Call [`crate::db::seals::seal_committed`]
/// first to include every event committed so far.
pub async fn list(
    conn: &mut Conn,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut query = audit_seals::table
        .inner_join(audit_events::table)
        .select(AuditEvent::as_select())
        .into_boxed();
    // The seals' copies of the keys are indexed with the position.
    query = filter_eq!(query, filter, audit_seals::{entity_type, entity_id, study_id});
    query = filter_eq!(query, filter, audit_events::{actor});
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(after) = after {
        query = query.filter(audit_seals::seq.gt(after));
    }
    query
        .order(audit_seals::seq.asc())
        .limit(limit + 1)
        .load(conn)
        .await
}

#[derive(QueryableByName)]
struct Link {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    prev_hash: String,
    #[diesel(sql_type = Text)]
    hash: String,
    #[diesel(sql_type = Bool)]
    hash_matches: bool,
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = Nullable<BigInt>)]
    last_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    last_hash: Option<String>,
}

/// The outcome of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"valid": false, "events_checked": 1200, "first_broken_seq": 731}))]
pub struct ChainCheck {
    pub valid: bool,
    pub events_checked: i64,
    /// The first event whose hash, or link to its predecessor, does not hold.
    pub first_broken_seq: Option<i64>,
}

/// How many events one verification query reads: the chain is checked in pages, never
/// loaded whole.
const VERIFY_BATCH: i64 = 5_000;

/// Recomputes every sealed event's hash with the database's own function and checks each
/// link to its predecessor, oldest first; stops at the first break. Each event's recomputed
/// hash covers its stored fields and its position, so an event edited behind the service's
/// back is named here, and so is a seal whose copies of the event's keys were edited (they
/// decide who sees the change in the feed). Seal first to cover every committed event.
pub async fn verify(conn: &mut Conn) -> QueryResult<ChainCheck> {
    let mut expected_prev = "0".repeat(64);
    let mut last_hash = expected_prev.clone();
    let mut after = 0_i64;
    let mut checked = 0_i64;
    loop {
        let links: Vec<Link> = diesel::sql_query(
            "SELECT s.seq, s.prev_hash, s.hash,
                    s.hash = audit_event_hash(e, s.seq, s.prev_hash)
                    AND s.entity_type = e.entity_type AND s.entity_id = e.entity_id
                    AND s.study_id IS NOT DISTINCT FROM e.study_id
                    AND s.site_id IS NOT DISTINCT FROM e.site_id
                    AND s.vendor_id IS NOT DISTINCT FROM e.vendor_id AS hash_matches
             FROM audit_seals s JOIN audit_events e ON e.id = s.event_id
             WHERE s.seq > $1 ORDER BY s.seq LIMIT $2",
        )
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(VERIFY_BATCH)
        .load(conn)
        .await?;
        let Some(last) = links.last() else { break };
        after = last.seq;
        for link in &links {
            checked += 1;
            if link.prev_hash != expected_prev || !link.hash_matches {
                return Ok(ChainCheck {
                    valid: false,
                    events_checked: checked,
                    first_broken_seq: Some(link.seq),
                });
            }
            expected_prev.clone_from(&link.hash);
            last_hash.clone_from(&link.hash);
        }
    }
    // The head must point at the last event: removing events from the end shows here.
    let head: Head = diesel::sql_query("SELECT last_seq, last_hash FROM audit_chain")
        .get_result(conn)
        .await?;
    let head_holds = head.last_seq.unwrap_or(0) == after
        && head.last_hash.as_deref() == Some(last_hash.as_str());
    Ok(ChainCheck {
        valid: head_holds,
        events_checked: checked,
        first_broken_seq: if head_holds { None } else { Some(after + 1) },
    })
}

/// The chain's head: the last sealed event's position and hash (`0` and 64 zeros for an
/// empty trail). Seal first to include every committed event.
pub async fn head(conn: &mut Conn) -> QueryResult<(i64, String)> {
    let head: Head = diesel::sql_query("SELECT last_seq, last_hash FROM audit_chain")
        .get_result(conn)
        .await
        .optional()?
        .unwrap_or(Head {
            last_seq: None,
            last_hash: None,
        });
    Ok((
        head.last_seq.unwrap_or(0),
        head.last_hash.unwrap_or_else(|| "0".repeat(64)),
    ))
}

/// The chain hash the trail holds now at position `seq` (64 zeros at 0: the start).
pub async fn hash_at(conn: &mut Conn, seq: i64) -> QueryResult<Option<String>> {
    if seq == 0 {
        return Ok(Some("0".repeat(64)));
    }
    audit_seals::table
        .find(seq)
        .select(audit_seals::hash)
        .first(conn)
        .await
        .optional()
}
