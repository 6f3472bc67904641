//! `/api/v1/budget-lines`: what a study plans to spend, line by line, and what it has
//! spent against each line so far.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::extract::{Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::budget_lines::BudgetLineFields;
use crate::db::budget_lines::{BudgetLine, BudgetLineFilter};
use crate::db::write::Record;
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::BudgetLineId;
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::RowKeys;
use crate::error::ApiResult;

/// The merged patch, with `currency: null` read as "the study's", which the line already
/// has: such a patch changes nothing.
fn patched(current: &BudgetLine, patch: &serde_json::Value) -> ApiResult<BudgetLineFields> {
    let mut fields = apply_merge_patch(&current.fields(), patch)?;
    fields
        .currency
        .get_or_insert_with(|| current.currency.clone());
    Ok(fields)
}

/// List budget lines
///
/// The budget lines the caller may read (a `cro`: those of its studies), in creation
/// order, one page at a time. Each carries `actual_amount` (the sum of its live expenses)
/// and `remaining_amount` (`planned_amount - actual_amount`, negative when overspent).
#[utoipa::path(
    operation_id = "list_budget_lines",
    tag = "budget-lines",
    params(ListParams, BudgetLineFilter),
    responses((status = 200, description = "A page of budget lines", body = Page<BudgetLine>)),
)]
#[get("/budget-lines")]
pub async fn list(listing: Listing<BudgetLineFilter>) -> ApiResult<HttpResponse> {
    resource::list(listing, EntityType::BudgetLine, db::budget_lines::list).await
}

/// Create a budget line
///
/// `admin`, `sponsor`, and `cro` within its studies (a study outside the caller's scope
/// answers 404). Amounts are decimal strings with at most two places (`"250000.00"`); a
/// JSON number is refused (422). `currency` may be left out: a line is always in its
/// study's currency, and another one is refused (422). `vendor_id`, if set, must name a
/// vendor (422).
#[utoipa::path(
    operation_id = "create_budget_line",
    tag = "budget-lines",
    request_body = BudgetLineFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = BudgetLine)),
)]
#[post("/budget-lines")]
pub async fn create(new: NewRecords, body: Body<BudgetLineFields>) -> ApiResult<HttpResponse> {
    // A line is created under a study, which the caller must reach.
    let study = RowKeys {
        study_id: Some(body.0.study_id),
        ..RowKeys::default()
    };
    resource::create::<BudgetLine>(new, "/api/v1/budget-lines", Some(study), body.0).await
}

/// Read a budget line
///
/// With `actual_amount` and `remaining_amount` as of now.
#[utoipa::path(
    operation_id = "read_budget_line",
    tag = "budget-lines",
    params(("id" = Uuid, Path, description = "Budget line id")),
    responses((status = 200, description = "The budget line; `ETag` is its version", body = BudgetLine)),
)]
#[get("/budget-lines/{id}")]
pub async fn read(read: RecordRead<BudgetLineId>) -> ApiResult<HttpResponse> {
    resource::read::<BudgetLine>(read).await
}

/// Update a budget line
///
/// JSON Merge Patch (RFC 7396). `study_id` cannot change (422) and `currency` stays the
/// study's (422 for another). Send `If-Match` with the `ETag` you read (412 on mismatch).
/// The version counts changes to the line itself: expenses booked against it change
/// `actual_amount` but not the version.
#[utoipa::path(
    operation_id = "update_budget_line",
    tag = "budget-lines",
    params(("id" = Uuid, Path, description = "Budget line id")),
    request_body(content = BudgetLineFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated budget line", body = BudgetLine)),
)]
#[patch("/budget-lines/{id}")]
pub async fn update(
    change: RecordChange<BudgetLineId>,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    resource::update::<BudgetLine>(change, Ok(()), |current| patched(current, &patch.0)).await
}

/// Delete a budget line
///
/// A soft delete: the line leaves lists and reads but stays in the database and the audit
/// trail. A line with live expenses cannot be deleted (409): delete or move them first.
#[utoipa::path(
    operation_id = "delete_budget_line",
    tag = "budget-lines",
    params(("id" = Uuid, Path, description = "Budget line id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/budget-lines/{id}")]
pub async fn delete(change: RecordChange<BudgetLineId>) -> ApiResult<HttpResponse> {
    resource::delete::<BudgetLine>(change).await
}
