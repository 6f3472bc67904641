//! `/api/v1/expenses`: money spent, each booked against a budget line.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::extract::{Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::api::respond;
use crate::auth::Caller;
use crate::db;
use crate::db::Conn;
use crate::db::expenses::ExpenseFields;
use crate::db::expenses::{Expense, ExpenseFilter};
use crate::db::write::{self, Record};
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::{BudgetLineId, ExpenseId};
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::Operation;
use crate::domain::validation;
use crate::error::ApiResult;

/// 404 unless the budget line is live and the caller may see expenses of its study: a line
/// outside the caller's scope is as absent as one that does not exist.
async fn require_visible_line(
    conn: &mut Conn,
    caller: &Caller,
    line: BudgetLineId,
) -> ApiResult<()> {
    db::budget_lines::find_row(conn, line, &caller.row_scope(EntityType::Expense)).await?;
    Ok(())
}

/// The merged patch, with `currency: null` read as "the line's", which the expense already
/// has: such a patch changes nothing.
fn patched(current: &Expense, patch: &serde_json::Value) -> ApiResult<ExpenseFields> {
    let mut fields = apply_merge_patch(&current.fields(), patch)?;
    fields
        .currency
        .get_or_insert_with(|| current.currency.clone());
    Ok(fields)
}

/// List expenses
///
/// The expenses the caller may read (a `cro`: those of its studies), in creation order, one
/// page at a time. Each carries the `study_id` and `currency` of its budget line.
#[utoipa::path(
    operation_id = "list_expenses",
    tag = "expenses",
    params(ListParams, ExpenseFilter),
    responses((status = 200, description = "A page of expenses", body = Page<Expense>)),
)]
#[get("/expenses")]
pub async fn list(listing: Listing<ExpenseFilter>) -> ApiResult<HttpResponse> {
    validation::date_param("incurred_from", listing.filter.incurred_from)?;
    validation::date_param("incurred_to", listing.filter.incurred_to)?;
    resource::list(listing, EntityType::Expense, db::expenses::list).await
}

/// Create an expense
///
/// `admin`, `sponsor`, and `cro` within its studies. The budget line must exist and be
/// visible to the caller (404 otherwise); the expense takes the line's `study_id` and
/// `currency` (send no `study_id`; `currency` may be left out, and another than the line's
/// is refused, 422). `amount` is a decimal string above zero with at most two places
/// (`"12500.00"`); a JSON number is refused (422).
#[utoipa::path(
    operation_id = "create_expense",
    tag = "expenses",
    request_body = ExpenseFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Expense)),
)]
#[post("/expenses")]
pub async fn create(new: NewRecords, body: Body<ExpenseFields>) -> ApiResult<HttpResponse> {
    new.caller.require(EntityType::Expense, Operation::Create)?;
    let mut conn = new.state.db.get().await?;
    require_visible_line(&mut conn, &new.caller, body.0.budget_line_id).await?;
    let ctx = new.caller.write_context(new.reason.0);
    let expense: Expense = write::create(&mut conn, &ctx, body.0).await?;
    Ok(respond::created(
        format!("/api/v1/expenses/{}", expense.id),
        &expense,
        expense.version,
    ))
}

/// Read an expense
#[utoipa::path(
    operation_id = "read_expense",
    tag = "expenses",
    params(("id" = Uuid, Path, description = "Expense id")),
    responses((status = 200, description = "The expense; `ETag` is its version", body = Expense)),
)]
#[get("/expenses/{id}")]
pub async fn read(read: RecordRead<ExpenseId>) -> ApiResult<HttpResponse> {
    resource::read::<Expense>(read).await
}

/// Update an expense
///
/// JSON Merge Patch (RFC 7396). An expense may move to another budget line of the same
/// study only (422 for a line of another study; 404 for a line the caller cannot see).
/// Send `If-Match` with the `ETag` you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_expense",
    tag = "expenses",
    params(("id" = Uuid, Path, description = "Expense id")),
    request_body(content = ExpenseFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated expense", body = Expense)),
)]
#[patch("/expenses/{id}")]
pub async fn update(change: RecordChange<ExpenseId>, patch: MergePatch) -> ApiResult<HttpResponse> {
    // A line named in the patch is an object the caller touches: outside its scope, 404.
    // (A value that is not a UUID is left to the merge, which refuses it with a 422.) The
    // expense's own line is in the caller's scope whenever the expense is.
    let named_line = patch
        .0
        .get("budget_line_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|line| line.parse::<BudgetLineId>().ok());
    if let Some(line) = named_line {
        require_visible_line(&mut *change.state.db.get().await?, &change.caller, line).await?;
    }
    resource::update::<Expense>(change, Ok(()), |current| patched(current, &patch.0)).await
}

/// Delete an expense
///
/// A soft delete: the expense leaves lists, reads and its line's `actual_amount`, but stays
/// in the database and the audit trail.
#[utoipa::path(
    operation_id = "delete_expense",
    tag = "expenses",
    params(("id" = Uuid, Path, description = "Expense id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/expenses/{id}")]
pub async fn delete(change: RecordChange<ExpenseId>) -> ApiResult<HttpResponse> {
    resource::delete::<Expense>(change).await
}
