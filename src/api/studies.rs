//! `/api/v1/studies`: the trials themselves.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::studies::{Study, StudyFilter};
use crate::db::write;
use crate::domain::cursor::Page;
use crate::domain::enums::{StudyPhase, StudyStatus};
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::{Operation, Resource};
use crate::domain::studies::StudyFields;
use crate::domain::versioning::IfMatch;
use crate::error::ApiResult;

/// Filters of the study list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StudyListFilter {
    pub status: Option<StudyStatus>,
    pub phase: Option<StudyPhase>,
    /// Exact protocol number.
    pub protocol_number: Option<String>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

impl From<StudyListFilter> for StudyFilter {
    fn from(f: StudyListFilter) -> Self {
        Self {
            status: f.status,
            phase: f.phase,
            protocol_number: f.protocol_number,
            external_id: f.external_id,
        }
    }
}

/// List studies
///
/// The studies the caller may read, in creation order, one page at a time (keyset
/// pagination: follow `next_cursor` until it is null).
#[utoipa::path(
    operation_id = "list_studies",
    tag = "studies",
    params(ListParams, StudyListFilter),
    responses((status = 200, description = "A page of studies", body = Page<Study>)),
)]
#[get("/studies")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<StudyListFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.study_scope(&mut *state.db.get().await?).await?;
    let filter: StudyFilter = filter.into_inner().into();
    export::list(
        format,
        &state.db,
        params.limit,
        page,
        async move |conn, page| Ok(db::studies::list(conn, &scope, &filter, page).await?),
    )
    .await
}

/// Create a study
///
/// `admin` and `sponsor` only. `X-Change-Reason` is kept with the audit event.
#[utoipa::path(
    operation_id = "create_study",
    tag = "studies",
    request_body = StudyFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Study)),
)]
#[post("/studies")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<StudyFields>,
) -> ApiResult<HttpResponse> {
    caller.require(Resource::Study, Operation::Create)?;
    let mut conn = state.db.get().await?;
    let study: Study = write::create(&mut conn, &caller.write_context(reason.0), body.0).await?;
    Ok(respond::created(
        format!("/api/v1/studies/{}", study.id),
        &study,
        study.version,
    ))
}

/// Read a study
#[utoipa::path(
    operation_id = "read_study",
    tag = "studies",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "The study; `ETag` is its version", body = Study)),
)]
#[get("/studies/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let study = db::studies::find(&mut conn, id.into_inner(), &scope).await?;
    Ok(respond::tagged(&study, study.version))
}

/// Update a study
///
/// JSON Merge Patch (RFC 7396): absent fields stay, `null` clears a nullable field. Send
/// `If-Match` with the `ETag` you read to avoid overwriting someone else's change (412).
/// A patch that changes nothing answers the study unchanged (same version).
#[utoipa::path(
    operation_id = "update_study",
    tag = "studies",
    params(("id" = Uuid, Path, description = "Study id")),
    request_body(content = StudyFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated study", body = Study)),
)]
#[patch("/studies/{id}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    db::studies::find(&mut conn, id, &scope).await?;
    caller.require(Resource::Study, Operation::Update)?;
    let ctx = caller.write_context(reason.0);
    let in_scope = |study: &Study| scope.contains(study.id);
    let study = write::update(
        &mut conn,
        &ctx,
        id,
        in_scope,
        &if_match,
        |current: &Study| apply_merge_patch(&current.fields(), &patch.0),
    )
    .await?;
    Ok(respond::tagged(&study, study.version))
}

/// Delete a study
///
/// A soft delete: the study leaves lists and reads but stays in the database and the audit
/// trail. A study with live sites cannot be deleted (409).
#[utoipa::path(
    operation_id = "delete_study",
    tag = "studies",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/studies/{id}")]
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let permitted = caller.require(Resource::Study, Operation::Delete);
    let in_scope = |study: &Study| scope.contains(study.id);
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
