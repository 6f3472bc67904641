//! Batch upsert (`POST /api/v1/{sites,milestones,risks,deviations}/batch`): the shapes of
//! the request and the answer, and the one handler body the four resources share. The
//! writing itself is `db::write::upsert_batch`, the steps of single writes item by item.

use std::collections::HashMap;

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::resource::NewRecords;
use crate::db::write::{self, Access, FieldLimits, Upsert, Upserted};
use crate::domain::policy::Operation;
use crate::error::{ApiError, ApiResult, FieldError};

/// A batch: 1 to 1,000 items, each a complete create body with its `external_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest<T> {
    /// 1 to 1,000 items with distinct `external_id`s (the document's schema is refined by
    /// `api::refine_batch_schemas`).
    pub items: Vec<T>,
}

/// The outcome of a batch, one entry per item, in request order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [
    {"index": 0, "external_id": "CTMS-0001", "id": "0193f0e7-2a3b-7c4d-8e5f-6a7b8c9d0e1f", "result": "created"},
    {"index": 1, "external_id": "CTMS-0002", "id": "0193f0e7-2a3b-7c4d-8e5f-6a7b8c9d0e20", "result": "updated"},
    {"index": 2, "external_id": "CTMS-0003", "id": "0193f0e7-2a3b-7c4d-8e5f-6a7b8c9d0e21", "result": "unchanged"}
]}))]
pub struct BatchAnswer {
    pub items: Vec<BatchItemResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemResult {
    /// The item's position in the request, from 0.
    pub index: usize,
    pub external_id: String,
    /// The id of the record the item created or matched.
    pub id: Uuid,
    pub result: Upserted,
}

/// Field limits beyond the role for updates through a batch; most resources have none.
pub fn no_field_limits<R: Upsert>(_: &R, _: &R::Fields) -> Result<(), ApiError> {
    Ok(())
}

/// The body of every batch handler: the role check (403 if the role may neither create nor
/// update records of `R`), the change reason where PATCH requires one, every item's
/// `external_id` (required, distinct), then all items in one transaction.
pub async fn upsert<R: Upsert>(
    new: NewRecords,
    reason_required: bool,
    items: Vec<R::Fields>,
    may_change: &FieldLimits<'_, R>,
) -> ApiResult<HttpResponse> {
    let (caller, resource) = (&new.caller, R::ENTITY);
    if caller.require(resource, Operation::Update).is_err() {
        caller.require(resource, Operation::Create)?;
    }
    // Any item may update a record, and an update of a risk or deviation must say why:
    // asked of the whole batch, so whether a batch needs it never depends on the data.
    let reason = if reason_required {
        Some(new.reason.required()?)
    } else {
        new.reason.0
    };
    let external_ids = external_ids::<R>(&items)?;
    let mut conn = new.state.db.get().await?;
    let create_scope = caller.create_scope(&mut conn, resource).await?;
    let row_scope = caller.row_scope(resource);
    let permitted = |operation| caller.require(resource, operation);
    let access = Access {
        permitted: &permitted,
        create_scope: &create_scope,
        row_scope: &row_scope,
        may_change,
    };
    let ctx = caller.write_context(reason);
    let outcomes = write::upsert_batch::<R>(&mut conn, &ctx, items, &access).await?;
    let items = outcomes
        .into_iter()
        .zip(external_ids)
        .enumerate()
        .map(|(index, ((id, result), external_id))| BatchItemResult {
            index,
            external_id,
            id,
            result,
        })
        .collect();
    Ok(HttpResponse::Ok().json(BatchAnswer { items }))
}

/// Every item's `external_id`: required, and distinct within the batch (a repeat is named
/// at its later index).
fn external_ids<R: Upsert>(items: &[R::Fields]) -> Result<Vec<String>, ApiError> {
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    let mut errors = Vec::new();
    let mut ids = Vec::with_capacity(items.len());
    for (index, fields) in items.iter().enumerate() {
        let field = format!("items[{index}].external_id");
        match R::external_id(fields) {
            None => errors.push(FieldError::new(
                field,
                "required",
                "is required in a batch item",
            )),
            Some(id) => {
                if let Some(first) = first_at.get(id) {
                    errors.push(FieldError::new(
                        field,
                        "duplicate",
                        format!("repeats the external_id of items[{first}]"),
                    ));
                } else {
                    first_at.insert(id, index);
                }
                ids.push(id.to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(ApiError::Validation(errors))
    }
}
