//! `/api/v1/sites`: the hospitals and clinics that enroll participants.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::batch::{self, BatchAnswer, BatchRequest};
use crate::api::extract::{Batch, Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::sites::SiteFields;
use crate::db::sites::{Site, SiteFilter};
use crate::db::write::Upsert;
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::SiteId;
use crate::error::{ApiResult, Problem};

/// List sites
///
/// The sites the caller may read (a `cro`: those of its studies; a `site` client: its own),
/// in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_sites",
    tag = "sites",
    params(ListParams, SiteFilter),
    responses((status = 200, description = "A page of sites", body = Page<Site>)),
)]
#[get("/sites")]
pub async fn list(listing: Listing<SiteFilter>) -> ApiResult<HttpResponse> {
    resource::list(listing, EntityType::Site, db::sites::list).await
}

/// Create a site
///
/// `admin`, `sponsor`, and `cro` within its studies (a study outside the caller's scope
/// answers 404). `site_number` is unique among the live sites of the study (409).
#[utoipa::path(
    operation_id = "create_site",
    tag = "sites",
    request_body = SiteFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Site)),
)]
#[post("/sites")]
pub async fn create(new: NewRecords, body: Body<SiteFields>) -> ApiResult<HttpResponse> {
    let references = Some(Site::keys_of(&body.0));
    resource::create::<Site>(new, "/api/v1/sites", references, body.0).await
}

/// Read a site
#[utoipa::path(
    operation_id = "read_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    responses((status = 200, description = "The site; `ETag` is its version", body = Site)),
)]
#[get("/sites/{id}")]
pub async fn read(read: RecordRead<SiteId>) -> ApiResult<HttpResponse> {
    resource::read::<Site>(read).await
}

/// Update a site
///
/// JSON Merge Patch (RFC 7396). `study_id` cannot change (422). Send `If-Match` with the
/// `ETag` you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    request_body(content = SiteFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated site", body = Site)),
)]
#[patch("/sites/{id}")]
pub async fn update(change: RecordChange<SiteId>, patch: MergePatch) -> ApiResult<HttpResponse> {
    resource::update::<Site>(change, Ok(()), resource::merged(&patch.0)).await
}

/// Delete a site
///
/// A soft delete: the site leaves lists and reads but stays in the database and the audit
/// trail.
#[utoipa::path(
    operation_id = "delete_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/sites/{id}")]
pub async fn delete(change: RecordChange<SiteId>) -> ApiResult<HttpResponse> {
    resource::delete::<Site>(change).await
}

/// Create or update sites in one batch
///
/// Up to 1,000 items keyed by `external_id`, written in one transaction: all or nothing. An
/// item whose `external_id` names no live site creates one (as `POST`); one that names a
/// live site replaces its writable fields (as a `PUT` would: a field left out takes its
/// default, `null` or `planned`). An item that would change nothing is `unchanged`: no new
/// version, no audit event, no feed entry. Each item is validated and checked like a single
/// write: a bad item makes the whole batch a 422 naming it (`items[3].country`) and nothing
/// is written. `X-Change-Reason` is kept with every item's audit event.
///
/// A site stays in its study (`study_id` of an update: 422) and `site_number` is unique in
/// its study (409 naming the item).
///
/// `admin`, `sponsor`, and `cro` within its studies; a study that does not exist or is
/// outside the caller's scope is a 422 on the item's `study_id`, and a live site with the
/// item's `external_id` that the caller cannot see is a 409 (as for a `POST`).
#[utoipa::path(
    operation_id = "batch_upsert_sites",
    tag = "sites",
    request_body(content = BatchRequest<SiteFields>, example = json!({"items": [
        {"external_id": "CTMS-SITE-0001", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "site_number": "DE-001", "name": "Charité Pneumology", "country": "DE", "status": "activated",
         "irb_approved_on": "2026-02-10", "activated_on": "2026-03-02", "target_enrollment": 40},
        {"external_id": "CTMS-SITE-0002", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "site_number": "FR-001", "name": "Hôpital Cochin", "country": "FR", "status": "selected"}
    ]})),
    responses(
        (status = 200, description = "Each item's id and result, in request order", body = BatchAnswer),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/sites/batch")]
pub async fn batch_upsert(new: NewRecords, body: Batch<SiteFields>) -> ApiResult<HttpResponse> {
    batch::upsert::<Site>(new, false, body.0, &batch::no_field_limits).await
}
