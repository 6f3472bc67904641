//! The change feed: the audit trail read as "what changed, in which order", for partner
//! systems that keep their own copy.
//!
//! Every write appends its audit event in the write's transaction; the event's feed
//! position (`seq`) is assigned when it is sealed, by sealing transactions that follow one
//! another (`migrations/20261201000002_audit_sealing`): a reader that sees position N sees
//! every position before it. So "positions after `after`" never skips an event that
//! commits later: it is sealed later, at a larger position. The feed serves sealed events
//! only; [`page`] seals what is committed first. `docs/sync.md` explains the design and
//! what it costs.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::schema::{audit_chain, audit_events, audit_seals};
use crate::domain::enums::AuditAction;
use crate::domain::ids::{SiteId, StudyId, VendorId};

/// Which changes a reader may see, entity type by entity type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedScope {
    /// Entity types whose every change is visible.
    pub all: Vec<String>,
    /// Entity types visible for rows of these studies.
    pub by_study: Vec<String>,
    pub study_ids: Vec<StudyId>,
    /// Entity types visible for rows of these sites (a site: itself).
    pub by_site: Vec<String>,
    pub site_ids: Vec<SiteId>,
    /// Entity types visible for rows naming this vendor (a vendor: itself).
    pub by_vendor: Vec<String>,
    pub vendor_id: Option<VendorId>,
    /// Studies visible by id (the `study` type, for readers whose study reach is derived
    /// from their sites or their vendor).
    pub studies_by_id: Vec<StudyId>,
}

/// One item of the feed: a change to one record, with the record as it is after it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "seq": 1042, "entity_type": "risk", "entity_id": "0193f0e6-4444-7aaa-8bbb-123456789abc",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "action": "update", "version": 4,
    "occurred_at": "2026-11-25T09:30:00.123456Z",
    "data": {"id": "0193f0e6-4444-7aaa-8bbb-123456789abc", "title": "Central lab turnaround", "status": "escalated", "version": 4}
}))]
pub struct ChangeItem {
    /// The change's position in the feed: gap-free and in commit order (the audit event's
    /// `seq`; positions the caller may not see are skipped).
    pub seq: i64,
    /// `study`, `site`, `vendor`, `milestone`, `budget_line`, `expense`, `risk`,
    /// `deviation`, `enrollment_report` or `client`.
    pub entity_type: String,
    pub entity_id: Uuid,
    pub study_id: Option<StudyId>,
    /// `create`, `update` or `delete`. Named transitions of the audit trail (`escalate`,
    /// `revoke`) are updates here.
    pub action: String,
    /// The record's version after the change: each (entity, version) appears once.
    pub version: Option<i32>,
    pub occurred_at: DateTime<Utc>,
    /// The record after the change, as `GET` answers it; null for a delete.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct ChangeRow {
    #[diesel(select_expression = audit_seals::seq)]
    seq: i64,
    entity_type: String,
    entity_id: Uuid,
    study_id: Option<StudyId>,
    action: String,
    entity_version: Option<i32>,
    occurred_at: DateTime<Utc>,
    data: Option<Value>,
}

impl From<ChangeRow> for ChangeItem {
    fn from(row: ChangeRow) -> Self {
        let action = match row.action.parse() {
            Ok(AuditAction::Create) => AuditAction::Create,
            Ok(AuditAction::Delete) => AuditAction::Delete,
            _ => AuditAction::Update,
        };
        ChangeItem {
            seq: row.seq,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            study_id: row.study_id,
            action: action.to_string(),
            version: row.entity_version,
            occurred_at: row.occurred_at,
            data: row.data,
        }
    }
}

/// A page of the feed, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChangePage {
    pub data: Vec<ChangeItem>,
    /// Pass as `after` to get the next changes. It moves past changes the caller may not
    /// see, and equals `after` when nothing new is committed yet.
    pub next_after: i64,
}

/// Sealed events: a seal joined to its event.
type Sealed = diesel::helper_types::InnerJoinQuerySource<audit_seals::table, audit_events::table>;
type Condition = Box<dyn BoxableExpression<Sealed, Pg, SqlType = Bool>>;

/// The trail's last `seq` (0 before the first event): the feed's current end.
pub async fn head(conn: &mut Conn) -> QueryResult<i64> {
    Ok(audit_chain::table
        .select(audit_chain::last_seq)
        .first(conn)
        .await
        .optional()?
        .unwrap_or(0))
}

/// The SQL condition for "the caller may see this event", on the seal's copies of the
/// event's keys (indexed there). Nullable keys are compared with
/// `assume_not_null`: a NULL key makes the comparison NULL, which a WHERE treats as false.
fn visible(scope: &FeedScope) -> Condition {
    let all: Condition = Box::new(audit_seals::entity_type.eq_any(scope.all.clone()));
    let by_study = Box::new(
        audit_seals::study_id
            .assume_not_null()
            .eq_any(scope.study_ids.clone()),
    );
    let by_site = Box::new(
        audit_seals::site_id
            .assume_not_null()
            .eq_any(scope.site_ids.clone()),
    );
    let mut condition = or_granted(all, &scope.by_study, by_study);
    condition = or_granted(condition, &scope.by_site, by_site);
    if let Some(vendor_id) = scope.vendor_id {
        let by_vendor = Box::new(audit_seals::vendor_id.assume_not_null().eq(vendor_id));
        condition = or_granted(condition, &scope.by_vendor, by_vendor);
    }
    if !scope.studies_by_id.is_empty() {
        condition = Box::new(
            condition.or(audit_seals::entity_type
                .eq("study")
                .and(audit_seals::entity_id.eq_any(scope.studies_by_id.clone()))),
        );
    }
    condition
}

/// `condition`, or an event of one of `types` whose key matches (nothing more when no type
/// is granted by that key).
fn or_granted(condition: Condition, types: &[String], key_matches: Condition) -> Condition {
    if types.is_empty() {
        return condition;
    }
    Box::new(
        condition.or(audit_seals::entity_type
            .eq_any(types.to_vec())
            .and(key_matches)),
    )
}

/// Up to `limit` changes after `after` that `scope` lets the caller see, oldest first, in
/// a read-only REPEATABLE READ transaction of its own (see [`read_page`]), after sealing
/// every event committed before the call: a client sees its own writes in the feed as soon
/// as they are answered.
pub async fn page(
    conn: &mut Conn,
    scope: &FeedScope,
    after: i64,
    limit: i64,
) -> QueryResult<ChangePage> {
    crate::db::seals::seal_committed(conn).await?;
    let scope = scope.clone();
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async move |conn| read_page(conn, &scope, after, limit).await)
        .await
}

/// [`page`] on a connection already in a REPEATABLE READ transaction.
///
/// The page and the trail's head are read in that one snapshot, so when the page is not
/// full `next_after` can move to the head: every event up to it was visible and considered.
pub async fn read_page(
    conn: &mut Conn,
    scope: &FeedScope,
    after: i64,
    limit: i64,
) -> QueryResult<ChangePage> {
    let rows: Vec<ChangeRow> = audit_seals::table
        .inner_join(audit_events::table)
        .filter(audit_seals::seq.gt(after))
        .filter(visible(scope))
        .order(audit_seals::seq.asc())
        .limit(limit)
        .select(ChangeRow::as_select())
        .load(conn)
        .await?;
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
    let last = rows.last().map(|last| last.seq);
    let next_after = match last {
        Some(last) if full => last,
        _ => head(conn).await?.max(after).max(last.unwrap_or(after)),
    };
    Ok(ChangePage {
        data: rows.into_iter().map(ChangeItem::from).collect(),
        next_after,
    })
}
