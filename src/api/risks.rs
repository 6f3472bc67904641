//! `/api/v1/risks`: the study's risk register (risk-based quality management).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::respond;
use crate::auth::{Caller, Operation, Resource};
use crate::db;
use crate::db::risks::{Risk, RiskFilter};
use crate::db::write;
use crate::domain::cursor::Page;
use crate::domain::enums::{RiskCategory, RiskStatus};
use crate::domain::patch::apply_merge_patch;
use crate::domain::risks::RiskFields;
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// Filters of the risk list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiskListFilter {
    pub study_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
    pub category: Option<RiskCategory>,
    pub status: Option<RiskStatus>,
    /// Only risks whose score is at least this (1..=125).
    pub min_score: Option<i32>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

impl From<RiskListFilter> for RiskFilter {
    fn from(f: RiskListFilter) -> Self {
        Self {
            study_id: f.study_id,
            site_id: f.site_id,
            vendor_id: f.vendor_id,
            category: f.category,
            status: f.status,
            min_score: f.min_score,
            external_id: f.external_id,
        }
    }
}

/// List risks
///
/// The risks the caller may read (a `cro`: those of its studies; a `vendor` client: those
/// naming its vendor), in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_risks",
    tag = "risks",
    params(ListParams, RiskListFilter),
    responses((status = 200, description = "A page of risks", body = Page<Risk>)),
)]
#[get("/risks")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<RiskListFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.row_scope(Resource::Risk);
    let filter: RiskFilter = filter.into_inner().into();
    export::list(
        format,
        &state.db,
        params.limit,
        page,
        async move |conn, page| Ok(db::risks::list(conn, &scope, &filter, page).await?),
    )
    .await
}

/// Create a risk
///
/// `admin`, `sponsor`, and `cro` within its studies (a study outside the caller's scope
/// answers 404). `score` is computed from likelihood, impact and detectability and cannot
/// be sent. A risk whose score is at or above the study's `risk_escalation_threshold` is
/// created `escalated` (version 2): the create and the escalation are two audit events,
/// the second with the reason `score N reached threshold T`.
#[utoipa::path(
    operation_id = "create_risk",
    tag = "risks",
    request_body = RiskFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Risk)),
)]
#[post("/risks")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<RiskFields>,
) -> ApiResult<HttpResponse> {
    caller.require(Resource::Risk, Operation::Create)?;
    let mut conn = state.db.get().await?;
    // A study outside the caller's scope is as absent as one that does not exist.
    if !caller
        .study_scope(&mut conn)
        .await?
        .contains(body.0.study_id)
    {
        return Err(ApiError::NotFound);
    }
    let risk = db::risks::create(&mut conn, &caller.write_context(reason.0), body.0).await?;
    Ok(respond::created(
        format!("/api/v1/risks/{}", risk.id),
        &risk,
        risk.version,
    ))
}

/// Read a risk
#[utoipa::path(
    operation_id = "read_risk",
    tag = "risks",
    params(("id" = Uuid, Path, description = "Risk id")),
    responses((status = 200, description = "The risk; `ETag` is its version", body = Risk)),
)]
#[get("/risks/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let risk = db::risks::find(
        &mut conn,
        id.into_inner(),
        &caller.row_scope(Resource::Risk),
    )
    .await?;
    Ok(respond::tagged(&risk, risk.version))
}

/// Update a risk
///
/// JSON Merge Patch (RFC 7396). `X-Change-Reason` is required (422 without it).
/// `study_id` cannot change and `score` cannot be written (422). An update that raises the
/// score from below the study's threshold to at or above it escalates the risk (unless it
/// is `escalated` or `closed` already), as a second audit event; a risk that stays at or
/// above the threshold keeps the status people gave it. Send `If-Match` with the `ETag`
/// you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_risk",
    tag = "risks",
    params(
        ("id" = Uuid, Path, description = "Risk id"),
        ("X-Change-Reason" = String, Header, description = "Why the risk changes (required, up to 500 characters)"),
    ),
    request_body(content = RiskFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated risk", body = Risk)),
)]
#[patch("/risks/{id}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Risk);
    let mut conn = state.db.get().await?;
    db::risks::find(&mut conn, id, &scope).await?;
    caller.require(Resource::Risk, Operation::Update)?;
    let ctx = caller.write_context(Some(reason.required()?));
    let risk = db::risks::update(&mut conn, &ctx, id, &scope, &if_match, |current: &Risk| {
        apply_merge_patch(&current.fields(), &patch.0)
    })
    .await?;
    Ok(respond::tagged(&risk, risk.version))
}

/// Delete a risk
///
/// A soft delete: the risk leaves lists and reads but stays in the database and the audit
/// trail.
#[utoipa::path(
    operation_id = "delete_risk",
    tag = "risks",
    params(("id" = Uuid, Path, description = "Risk id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/risks/{id}")]
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Risk);
    let mut conn = state.db.get().await?;
    let permitted = caller.require(Resource::Risk, Operation::Delete);
    let in_scope = |risk: &Risk| scope.allows(risk.keys());
    write::soft_delete(
        &mut conn,
        &caller.write_context(reason.0),
        id,
        in_scope,
        permitted,
        &if_match,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
