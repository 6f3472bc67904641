//! The audit trail: every write records who did what, to which record, with which old and
//! new values, why, and under which request, in the same transaction as the write itself.
//!
//! Callers pass the record before and after the change as they serialise it to clients;
//! the field-by-field difference is computed here, once, for every resource.
//!
//! An event gets its feed position and chain hash afterwards, when it is sealed
//! (`sealer`, `db::seals`): writers never wait for one another here.

pub mod sealer;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::db::Conn;
use crate::db::schema::audit_events;
use crate::domain::enums::{AuditAction, EntityType, Role};
use crate::domain::ids::{SiteId, StudyId, VendorId};
use crate::error::ApiError;

/// Bookkeeping fields that change with every write and say nothing about it.
const NOT_AUDITED: &[&str] = &["id", "created_at", "updated_at", "version"];

/// Who is writing, and why: attached to every audit event of one request.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The API client id, or `cli` for the command line.
    pub actor: String,
    pub actor_name: String,
    pub role: Role,
    /// `X-Change-Reason`, if given.
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

impl WriteContext {
    /// The command line acts as an administrator, named after the OS user who ran it.
    pub fn command_line(reason: &str) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            actor: "cli".into(),
            actor_name: format!("trialops CLI ({user})"),
            role: Role::Admin,
            reason: Some(reason.into()),
            request_id: None,
        }
    }
}

/// The record a change was made to. `entity_id` names a record of any kind: a bare UUID.
pub struct Subject {
    pub entity_type: EntityType,
    pub entity_id: Uuid,
    pub study_id: Option<StudyId>,
    /// The record's version after the change.
    pub version: Option<i32>,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
struct NewAuditEvent<'a> {
    actor: &'a str,
    actor_name: &'a str,
    role: String,
    action: String,
    entity_type: String,
    entity_id: Uuid,
    study_id: Option<StudyId>,
    entity_version: Option<i32>,
    changes: Value,
    data: Option<Value>,
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
    site_id: Option<SiteId>,
    vendor_id: Option<VendorId>,
}

/// `{"field": {"old": .., "new": ..}}` for every field whose value differs.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Map<String, Value> {
    let empty = Map::new();
    let old = before.and_then(Value::as_object).unwrap_or(&empty);
    let new = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut changes = Map::new();
    for key in old.keys().chain(new.keys()) {
        if NOT_AUDITED.contains(&key.as_str()) || changes.contains_key(key) {
            continue;
        }
        let (o, n) = (
            old.get(key).unwrap_or(&Value::Null),
            new.get(key).unwrap_or(&Value::Null),
        );
        if o != n {
            changes.insert(key.clone(), json!({"old": o, "new": n}));
        }
    }
    changes
}

/// The site and vendor a change concerns, for the change feed's site- and vendor-scoped
/// readers: a site or vendor record is its own; any other record names them in its
/// `site_id` and `vendor_id` fields (after the change, or before it for a delete).
fn scope_keys(subject: &Subject, record: Option<&Value>) -> (Option<SiteId>, Option<VendorId>) {
    let named = |field: &str| {
        record
            .and_then(|r| r.get(field))
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<Uuid>().ok())
    };
    let site_id = match subject.entity_type {
        EntityType::Site => Some(subject.entity_id),
        _ => named("site_id"),
    };
    let vendor_id = match subject.entity_type {
        EntityType::Vendor => Some(subject.entity_id),
        _ => named("vendor_id"),
    };
    let (site_id, vendor_id) = (site_id.map(SiteId::from), vendor_id.map(VendorId::from));
    (site_id, vendor_id)
}

fn to_json<T: Serialize>(record: Option<&T>) -> Result<Option<Value>, ApiError> {
    record.map(serde_json::to_value).transpose().map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("serialising an audited record"))
    })
}

/// Writes one audit event. Call it on the connection of the write's transaction.
///
/// `after` is the record as clients see it after the change; it is kept as the event's
/// `data` (the change feed's payload) except for deletes, whose feed item carries none.
pub async fn record<T: Serialize>(
    conn: &mut Conn,
    ctx: &WriteContext,
    action: AuditAction,
    subject: Subject,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<(), ApiError> {
    let before = to_json(before)?;
    let after = to_json(after)?;
    let changes = diff(before.as_ref(), after.as_ref());
    let (site_id, vendor_id) = scope_keys(&subject, after.as_ref().or(before.as_ref()));
    let data = if action == AuditAction::Delete {
        None
    } else {
        after
    };
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            actor: &ctx.actor,
            actor_name: &ctx.actor_name,
            role: ctx.role.to_string(),
            action: action.to_string(),
            entity_type: subject.entity_type.to_string(),
            entity_id: subject.entity_id,
            study_id: subject.study_id,
            entity_version: subject.version,
            changes: Value::Object(changes),
            data,
            reason: ctx.reason.as_deref(),
            request_id: ctx.request_id.as_deref(),
            site_id,
            vendor_id,
        })
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See `db::cacheable`: the audit insert is prepared once per connection.
    #[test]
    fn the_audit_insert_is_a_cacheable_statement() {
        let event = NewAuditEvent {
            actor: "a",
            actor_name: "a",
            role: "admin".into(),
            action: "create".into(),
            entity_type: "risk".into(),
            entity_id: uuid::Uuid::nil(),
            study_id: None,
            entity_version: None,
            changes: json!({}),
            data: None,
            reason: None,
            request_id: None,
            site_id: None,
            vendor_id: None,
        };
        crate::db::cacheable::assert_cacheable(
            diesel::insert_into(audit_events::table).values(event),
            "the audit event",
        );
    }

    #[test]
    fn diff_lists_changed_fields_only() {
        let before = json!({"id": 1, "version": 1, "title": "A", "phase": "phase1", "note": null});
        let after = json!({"id": 1, "version": 2, "title": "B", "phase": "phase1", "note": "x"});
        let changes = diff(Some(&before), Some(&after));
        assert_eq!(
            Value::Object(changes),
            json!({"title": {"old": "A", "new": "B"}, "note": {"old": null, "new": "x"}})
        );
    }

    #[test]
    fn create_lists_every_set_field_from_null() {
        let after = json!({"id": 1, "title": "A", "note": null});
        assert_eq!(
            Value::Object(diff(None, Some(&after))),
            json!({"title": {"old": null, "new": "A"}})
        );
    }
}
