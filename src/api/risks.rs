//! `/api/v1/risks`: the study's risk register (risk-based quality management).

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::batch::{self, BatchAnswer, BatchRequest};
use crate::api::extract::{Batch, Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::risks::RiskFields;
use crate::db::risks::{Risk, RiskFilter};
use crate::db::write::Upsert;
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::RiskId;
use crate::error::{ApiResult, Problem};

/// List risks
///
/// The risks the caller may read (a `cro`: those of its studies; a `vendor` client: those
/// naming its vendor), in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_risks",
    tag = "risks",
    params(ListParams, RiskFilter),
    responses((status = 200, description = "A page of risks", body = Page<Risk>)),
)]
#[get("/risks")]
pub async fn list(listing: Listing<RiskFilter>) -> ApiResult<HttpResponse> {
    resource::list(listing, EntityType::Risk, db::risks::list).await
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
pub async fn create(new: NewRecords, body: Body<RiskFields>) -> ApiResult<HttpResponse> {
    let references = Some(Risk::keys_of(&body.0));
    resource::create::<Risk>(new, "/api/v1/risks", references, body.0).await
}

/// Read a risk
#[utoipa::path(
    operation_id = "read_risk",
    tag = "risks",
    params(("id" = Uuid, Path, description = "Risk id")),
    responses((status = 200, description = "The risk; `ETag` is its version", body = Risk)),
)]
#[get("/risks/{id}")]
pub async fn read(read: RecordRead<RiskId>) -> ApiResult<HttpResponse> {
    resource::read::<Risk>(read).await
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
pub async fn update(change: RecordChange<RiskId>, patch: MergePatch) -> ApiResult<HttpResponse> {
    // Every change of a risk must say why (422 without a reason).
    let refusal = change.reason.require();
    resource::update::<Risk>(change, refusal, resource::merged(&patch.0)).await
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
pub async fn delete(change: RecordChange<RiskId>) -> ApiResult<HttpResponse> {
    resource::delete::<Risk>(change).await
}

/// Create or update risks in one batch
///
/// Up to 1,000 items keyed by `external_id`, written in one transaction: all or nothing. An
/// item whose `external_id` names no live risk creates one (as `POST`); one that names a
/// live risk replaces its writable fields (as a `PUT` would: a field left out takes its
/// default, `null` or `open`). An item that would change nothing is `unchanged`: no new
/// version, no audit event, no feed entry. Each item is validated and checked like a single
/// write: a bad item makes the whole batch a 422 naming it (`items[3].likelihood`) and nothing
/// is written. `X-Change-Reason` is kept with every item's audit event.
///
/// `X-Change-Reason` is required (422 without it), since any item may update a risk. `score`
/// cannot be sent. Escalation works as for single writes: a new risk at or above the
/// study's threshold, or an update that raises the score to it, becomes `escalated` as its
/// own audit event. As the item is the whole risk, send `status` if it may have been
/// escalated here: an item without it sets `open`.
///
/// `admin`, `sponsor`, and `cro` within its studies; a study that does not exist or is
/// outside the caller's scope is a 422 on the item's `study_id`.
#[utoipa::path(
    operation_id = "batch_upsert_risks",
    tag = "risks",
    params(("X-Change-Reason" = String, Header, description = "Why the risks change (required, up to 500 characters)")),
    request_body(content = BatchRequest<RiskFields>, example = json!({"items": [
        {"external_id": "RBQM-R-0012", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "title": "Central lab turnaround exceeds 72 h", "category": "vendor",
         "likelihood": 3, "impact": 4, "detectability": 2, "status": "mitigating",
         "owner": "Clinical operations lead"},
        {"external_id": "RBQM-R-0013", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "title": "Slow recruitment in Germany", "category": "recruitment",
         "likelihood": 4, "impact": 4, "detectability": 3}
    ]})),
    responses(
        (status = 200, description = "Each item's id and result, in request order", body = BatchAnswer),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/risks/batch")]
pub async fn batch_upsert(new: NewRecords, body: Batch<RiskFields>) -> ApiResult<HttpResponse> {
    batch::upsert::<Risk>(new, true, body.0, &batch::no_field_limits).await
}
