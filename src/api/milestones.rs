//! `/api/v1/milestones`: the trial's plan (protocol final to clinical study report) and
//! vendor deliverables, with their slippage and overdue state.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::batch::{self, BatchAnswer, BatchRequest};
use crate::api::extract::{Batch, Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::milestones::MilestoneFields;
use crate::db::milestones::{Milestone, MilestoneFilter, MilestoneView, today};
use crate::db::write::{Record, Upsert};
use crate::domain::cursor::Page;
use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::MilestoneId;
use crate::domain::milestones::{VENDOR_WRITABLE, refused_for_vendor};
use crate::error::{ApiError, ApiResult, Problem};

/// List milestones
///
/// The milestones the caller may read (a `cro`: those of its studies; a `vendor` client:
/// those naming its vendor; a `site` client: none), in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_milestones",
    tag = "milestones",
    params(ListParams, MilestoneFilter),
    responses((status = 200, description = "A page of milestones", body = Page<MilestoneView>)),
)]
#[get("/milestones")]
pub async fn list(listing: Listing<MilestoneFilter>) -> ApiResult<HttpResponse> {
    // One "today" for the whole answer, however many pages a CSV export reads.
    let today = today();
    resource::list(
        listing,
        EntityType::Milestone,
        async move |conn, scope, filter, page| {
            let milestones = db::milestones::list(conn, scope, filter, today, page).await?;
            Ok::<_, ApiError>(milestones.map(|m| MilestoneView::new(m, today)))
        },
    )
    .await
}

/// Create a milestone
///
/// `admin`, `sponsor`, and `cro` within its studies (a study outside the caller's scope
/// answers 404). `site_id` must name a live site of the same study and `vendor_id` a live
/// vendor (422 otherwise).
#[utoipa::path(
    operation_id = "create_milestone",
    tag = "milestones",
    request_body = MilestoneFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = MilestoneView)),
)]
#[post("/milestones")]
pub async fn create(new: NewRecords, body: Body<MilestoneFields>) -> ApiResult<HttpResponse> {
    let references = Some(Milestone::keys_of(&body.0));
    resource::create::<Milestone>(new, "/api/v1/milestones", references, body.0).await
}

/// Read a milestone
#[utoipa::path(
    operation_id = "read_milestone",
    tag = "milestones",
    params(("id" = Uuid, Path, description = "Milestone id")),
    responses((status = 200, description = "The milestone; `ETag` is its version", body = MilestoneView)),
)]
#[get("/milestones/{id}")]
pub async fn read(read: RecordRead<MilestoneId>) -> ApiResult<HttpResponse> {
    resource::read::<Milestone>(read).await
}

/// Update a milestone
///
/// JSON Merge Patch (RFC 7396). `study_id` cannot change (422). Send `If-Match` with the
/// `ETag` you read (412 on mismatch). A `vendor` client may change only `forecast_date`,
/// `actual_date`, `status` and `notes` of the milestones naming its vendor: a patch that
/// names any other field, even with its current value, is refused as a whole (403, the
/// refused fields listed in `detail`).
#[utoipa::path(
    operation_id = "update_milestone",
    tag = "milestones",
    params(("id" = Uuid, Path, description = "Milestone id")),
    request_body(content = MilestoneFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated milestone", body = MilestoneView)),
)]
#[patch("/milestones/{id}")]
pub async fn update(
    change: RecordChange<MilestoneId>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let refusal = if change.caller.role == Role::Vendor {
        refuse_fields_outside_a_vendors_reach(&patch.0)
    } else {
        Ok(())
    };
    resource::update::<Milestone>(change, refusal, resource::merged(&patch.0)).await
}

/// 403 naming the fields of `patch` a `vendor` client may not change.
fn refuse_fields_outside_a_vendors_reach(patch: &serde_json::Value) -> Result<(), ApiError> {
    let Some(members) = patch.as_object() else {
        return Ok(());
    };
    let refused = refused_for_vendor(members.keys());
    if refused.is_empty() {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "a vendor client may change only {} of a milestone; refused: {}",
        VENDOR_WRITABLE.join(", "),
        refused.join(", ")
    )))
}

/// Delete a milestone
///
/// A soft delete: the milestone leaves lists and reads but stays in the database and the
/// audit trail.
#[utoipa::path(
    operation_id = "delete_milestone",
    tag = "milestones",
    params(("id" = Uuid, Path, description = "Milestone id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/milestones/{id}")]
pub async fn delete(change: RecordChange<MilestoneId>) -> ApiResult<HttpResponse> {
    resource::delete::<Milestone>(change).await
}

/// Create or update milestones in one batch
///
/// Up to 1,000 items keyed by `external_id`, written in one transaction: all or nothing. An
/// item whose `external_id` names no live milestone creates one (as `POST`); one that names a
/// live milestone replaces its writable fields (as a `PUT` would: a field left out takes its
/// default, `null` or `planned`). An item that would change nothing is `unchanged`: no new
/// version, no audit event, no feed entry. Each item is validated and checked like a single
/// write: a bad item makes the whole batch a 422 naming it (`items[3].kind`) and nothing
/// is written. `X-Change-Reason` is kept with every item's audit event.
///
/// A milestone stays in its study; `site_id` must name a live site of the study and
/// `vendor_id` a live vendor (422 naming the item).
///
/// `admin`, `sponsor`, and `cro` within its studies. A `vendor` client may only update the
/// milestones naming its vendor, and only their `forecast_date`, `actual_date`, `status` and
/// `notes`: an item that would create a milestone, or change any other field, is a 403
/// naming the item. A study that does not exist or is outside the caller's scope is a 422 on
/// the item's `study_id`.
#[utoipa::path(
    operation_id = "batch_upsert_milestones",
    tag = "milestones",
    request_body(content = BatchRequest<MilestoneFields>, example = json!({"items": [
        {"external_id": "CTMS-MS-0107", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "name": "First patient in", "kind": "first_patient_in", "baseline_date": "2026-04-01",
         "forecast_date": "2026-04-10", "status": "in_progress"},
        {"external_id": "CTMS-MS-0108", "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
         "name": "Database lock", "kind": "database_lock", "baseline_date": "2027-10-01"}
    ]})),
    responses(
        (status = 200, description = "Each item's id and result, in request order", body = BatchAnswer),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/milestones/batch")]
pub async fn batch_upsert(
    new: NewRecords,
    body: Batch<MilestoneFields>,
) -> ApiResult<HttpResponse> {
    let limits = vendor_field_limits(new.caller.role);
    batch::upsert::<Milestone>(new, false, body.0, &limits).await
}

/// A `vendor` client's limits on milestone updates through a batch: the fields an item
/// changes must be among the four it may patch (`refuse_fields_outside_a_vendors_reach`, the
/// PATCH rule, applied to the fields that differ).
fn vendor_field_limits(
    role: Role,
) -> impl Fn(&Milestone, &MilestoneFields) -> Result<(), ApiError> + Sync {
    move |current, item| {
        if role != Role::Vendor {
            return Ok(());
        }
        let before = serde_json::to_value(current.fields()).unwrap_or_default();
        let after = serde_json::to_value(item).unwrap_or_default();
        let changed: serde_json::Map<String, serde_json::Value> = after
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, value)| before.get(name.as_str()) != Some(*value))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        refuse_fields_outside_a_vendors_reach(&serde_json::Value::Object(changed))
    }
}
