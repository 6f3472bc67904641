//! `/api/v1/audit-events`: the audit trail, and the check of its hash chain.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::api::extract;
use crate::auth::{Caller, Resource};
use crate::db;
use crate::db::audit_events::{AuditEvent, AuditFilter, ChainCheck};
use crate::domain::cursor::Page;
use crate::domain::enums::{EntityType, Role};
use crate::domain::validation;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// Query of the audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events per page, 1..=1000 (default 50). For CSV (`Accept: text/csv`): the most
    /// events the export sends; without it, every matching event.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<Uuid>,
    pub study_id: Option<Uuid>,
    /// The writer's client id (or `cli`).
    pub actor: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
}

/// List audit events
///
/// The append-only audit trail, oldest first: who (client id, name, role), when, what
/// (action, entity, each changed field's old and new value), why (`X-Change-Reason`), the
/// request id, and the hash chain (`prev_hash`, `hash`). `admin`, `sponsor` and `auditor`.
///
/// An event gets its `seq` and hash when it is sealed, within milliseconds of its commit;
/// this read seals every committed event first, so it lists them all.
#[utoipa::path(
    operation_id = "list_audit_events",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of events", body = Page<AuditEvent>)),
)]
#[get("/audit-events")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    caller.require_read(Resource::AuditEvent)?;
    let query = query.into_inner();
    let page = extract::seq_page(query.limit, query.cursor.as_deref())?;
    if let Some(since) = query.since {
        validation::date_param("since", Some(since.date_naive()))?;
    }
    let filter = AuditFilter {
        entity_type: query.entity_type.map(|t| t.to_string()),
        entity_id: query.entity_id,
        study_id: query.study_id,
        actor: query.actor,
        since: query.since,
    };
    // The trail lists sealed events; seal what is committed so the answer includes it.
    db::seals::seal_committed(&mut *state.db.get().await?).await?;
    export::list(
        format,
        &state.db,
        query.limit,
        page,
        async move |conn, page| {
            let events = db::audit_events::list(conn, &filter, page.after, page.limit).await?;
            Ok(Page::from_seq_overfetch(events, page.limit, |event| {
                event.seq
            }))
        },
    )
    .await
}

/// Verify the audit trail
///
/// Seals every event committed so far, then recomputes the hash of every event and checks
/// each link to its predecessor, oldest first, and that the chain's head is the last
/// event. An event edited or removed behind the service's back breaks the chain:
/// `first_broken_seq` names where. `admin` and `auditor`.
#[utoipa::path(
    operation_id = "verify_audit_events",
    tag = "audit",
    responses((status = 200, description = "The result of the check", body = ChainCheck)),
)]
#[get("/audit-events/verify")]
pub async fn verify(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    if !matches!(caller.role, Role::Admin | Role::Auditor) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not verify the audit trail",
            caller.role
        )));
    }
    let mut conn = state.db.get().await?;
    db::seals::seal_committed(&mut conn).await?;
    Ok(HttpResponse::Ok().json(db::audit_events::verify(&mut conn).await?))
}
