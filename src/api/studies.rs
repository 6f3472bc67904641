//! `/api/v1/studies`: the trials themselves.

use actix_web::{HttpResponse, delete, get, patch, post, web};

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::resource;
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::studies::StudyFields;
use crate::db::studies::{Study, StudyFilter};
use crate::domain::cursor::Page;
use crate::domain::ids::StudyId;
use crate::domain::versioning::IfMatch;
use crate::error::ApiResult;

/// List studies
///
/// The studies the caller may read, in creation order, one page at a time (keyset
/// pagination: follow `next_cursor` until it is null).
#[utoipa::path(
    operation_id = "list_studies",
    tag = "studies",
    params(ListParams, StudyFilter),
    responses((status = 200, description = "A page of studies", body = Page<Study>)),
)]
#[get("/studies")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<StudyFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.study_scope(&mut *state.db.get().await?).await?;
    let filter = filter.into_inner();
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
    resource::create::<Study>(&caller, &state, "/api/v1/studies", reason, None, body.0).await
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
    id: web::Path<StudyId>,
) -> ApiResult<HttpResponse> {
    let study: Study = resource::read::<Study>(&caller, &state, id.into_inner()).await?;
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
    id: web::Path<StudyId>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let study = resource::update::<Study>(
        &caller,
        &state,
        id.into_inner(),
        &if_match,
        reason,
        Ok(()),
        resource::merged(&patch.0),
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
    id: web::Path<StudyId>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    resource::delete::<Study>(&caller, &state, id.into_inner(), &if_match, reason).await
}
