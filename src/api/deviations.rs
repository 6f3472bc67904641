//! `/api/v1/deviations`: protocol deviations, regulated records that are never deleted.

use actix_web::{HttpResponse, get, patch, post};

use crate::api::batch::{self, BatchAnswer, BatchRequest};
use crate::api::extract::{Batch, Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::deviations::DeviationFields;
use crate::db::deviations::{Deviation, DeviationFilter, DeviationRecord};
use crate::db::write::Upsert;
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::DeviationId;
use crate::error::{ApiResult, Problem};

/// List protocol deviations
///
/// The deviations the caller may read (a `cro`: those of its studies; a `site` client:
/// those of its sites), in creation order, one page at a time, each with
/// `reporting_overdue` as of today (UTC). `include_deleted` has no effect: deviations are
/// never deleted.
#[utoipa::path(
    operation_id = "list_deviations",
    tag = "deviations",
    params(ListParams, DeviationFilter),
    responses((status = 200, description = "A page of deviations", body = Page<Deviation>)),
)]
#[get("/deviations")]
pub async fn list(listing: Listing<DeviationFilter>) -> ApiResult<HttpResponse> {
    resource::list(listing, EntityType::Deviation, db::deviations::list).await
}

/// Report a protocol deviation
///
/// `admin`, `sponsor`, `cro` within its studies, and a `site` client for its own sites (a
/// study or site outside the caller's scope answers 404, and nothing is written). The site
/// must be a live site of the study (422 on `site_id`); dates must run
/// `occurred_on` <= `detected_on` <= `reported_on`, and `irb_reported_on` not before
/// `detected_on` (422 naming the later field).
#[utoipa::path(
    operation_id = "create_deviation",
    tag = "deviations",
    request_body = DeviationFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Deviation)),
)]
#[post("/deviations")]
pub async fn create(new: NewRecords, body: Body<DeviationFields>) -> ApiResult<HttpResponse> {
    // The caller must be able to read what it reports: a study, or for a `site` client a
    // site, outside its scope is as absent as one that does not exist.
    let references = Some(DeviationRecord::keys_of(&body.0));
    resource::create::<DeviationRecord>(new, "/api/v1/deviations", references, body.0).await
}

/// Read a protocol deviation
#[utoipa::path(
    operation_id = "read_deviation",
    tag = "deviations",
    params(("id" = Uuid, Path, description = "Deviation id")),
    responses((status = 200, description = "The deviation; `ETag` is its version", body = Deviation)),
)]
#[get("/deviations/{id}")]
pub async fn read(read: RecordRead<DeviationId>) -> ApiResult<HttpResponse> {
    resource::read::<DeviationRecord>(read).await
}

/// Update a protocol deviation
///
/// JSON Merge Patch (RFC 7396). `X-Change-Reason` is required (422 without it).
/// `study_id` and `site_id` cannot change (422). A deviation is withdrawn by setting
/// `status` to `invalidated`; it is never deleted (`DELETE` answers 405). Send `If-Match`
/// with the `ETag` you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_deviation",
    tag = "deviations",
    params(
        ("id" = Uuid, Path, description = "Deviation id"),
        ("X-Change-Reason" = String, Header, description = "Why the deviation changes (required, up to 500 characters)"),
    ),
    request_body(content = DeviationFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated deviation", body = Deviation)),
)]
#[patch("/deviations/{id}")]
pub async fn update(
    change: RecordChange<DeviationId>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    // Every change of a deviation must say why (422 without a reason).
    let refusal = change.reason.require();
    resource::update::<DeviationRecord>(change, refusal, resource::merged(&patch.0)).await
}

/// Create or update deviations in one batch
///
/// Up to 1,000 items keyed by `external_id`, written in one transaction: all or nothing. An
/// item whose `external_id` names no live deviation creates one (as `POST`); one that names a
/// live deviation replaces its writable fields (as a `PUT` would: a field left out takes its
/// default, `null` or `open`). An item that would change nothing is `unchanged`: no new
/// version, no audit event, no feed entry. Each item is validated and checked like a single
/// write: a bad item makes the whole batch a 422 naming it (`items[3].importance`) and nothing
/// is written. `X-Change-Reason` is kept with every item's audit event.
///
/// `X-Change-Reason` is required (422 without it), since any item may update a deviation.
/// A deviation stays at its study and site (422); nothing is ever deleted.
///
/// `admin`, `sponsor`, `cro` within its studies, and a `site` client for its own sites; a
/// study or site that does not exist or is outside the caller's scope is a 422 on the
/// item's `study_id` or `site_id`.
#[utoipa::path(
    operation_id = "batch_upsert_deviations",
    tag = "deviations",
    params(("X-Change-Reason" = String, Header, description = "Why the deviations change (required, up to 500 characters)")),
    request_body(content = BatchRequest<DeviationFields>, example = json!({"items": [
        {"external_id": "EDC-PD-0193", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f", "participant_ref": "DE-001-0042",
         "category": "informed_consent", "importance": "important",
         "description": "Visit 3 procedures done before the amended consent form was signed.",
         "occurred_on": "2026-03-02", "detected_on": "2026-03-04", "reported_on": "2026-03-06"}
    ]})),
    responses(
        (status = 200, description = "Each item's id and result, in request order", body = BatchAnswer),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/deviations/batch")]
pub async fn batch_upsert(
    new: NewRecords,
    body: Batch<DeviationFields>,
) -> ApiResult<HttpResponse> {
    batch::upsert::<DeviationRecord>(new, true, body.0, &batch::no_field_limits).await
}
