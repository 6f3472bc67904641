//! `/api/v1/studies`: the trials themselves.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::extract::{Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::studies::StudyFields;
use crate::db::studies::{Study, StudyFilter};
use crate::domain::cursor::Page;
use crate::domain::ids::StudyId;
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
pub async fn list(listing: Listing<StudyFilter>) -> ApiResult<HttpResponse> {
    // A study's reach is a query of its own (the studies of a `site` client's sites, or
    // naming a `vendor` client's vendor).
    let scope = listing
        .caller
        .study_scope(&mut *listing.state.db.get().await?)
        .await?;
    listing.answer(scope, db::studies::list).await
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
pub async fn create(new: NewRecords, body: Body<StudyFields>) -> ApiResult<HttpResponse> {
    resource::create::<Study>(new, "/api/v1/studies", None, body.0).await
}

/// Read a study
#[utoipa::path(
    operation_id = "read_study",
    tag = "studies",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "The study; `ETag` is its version", body = Study)),
)]
#[get("/studies/{id}")]
pub async fn read(read: RecordRead<StudyId>) -> ApiResult<HttpResponse> {
    resource::read::<Study>(read).await
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
pub async fn update(change: RecordChange<StudyId>, patch: MergePatch) -> ApiResult<HttpResponse> {
    resource::update::<Study>(change, Ok(()), resource::merged(&patch.0)).await
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
pub async fn delete(change: RecordChange<StudyId>) -> ApiResult<HttpResponse> {
    resource::delete::<Study>(change).await
}
