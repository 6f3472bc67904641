//! The bodies of read, update and delete that every resource's handlers share. A handler
//! keeps its own doc comment, route and `#[utoipa::path]`, and passes what is its own (a
//! rule of its resource, how a patch is merged) as an argument; the order of the checks is
//! written here once:
//!
//! - read: the row within the caller's reach, in one statement outside any transaction
//!   (404 outside it, so existence does not leak);
//! - update and delete: one read of the row, locked inside the write's transaction, and one
//!   check of it (`write::Guard`): 404 outside the caller's reach, then the role's 403 and
//!   the handler's own refusal, then `If-Match` (412), then the change itself (422, 409).

use actix_web::HttpResponse;
use serde_json::Value;

use crate::api::extract::ChangeReason;
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db::write::{self, Guard, Readable, Record};
use crate::db::{self, Conn};
use crate::domain::enums::EntityType;
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::{Operation, RowKeys, RowScope};
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, ApiResult};

/// The rows of `kind` the caller reaches. Studies take a query for `site` and `vendor`
/// callers (the studies of their sites, or naming their vendor).
pub async fn reach(caller: &Caller, conn: &mut Conn, kind: EntityType) -> ApiResult<RowScope> {
    if kind == EntityType::Study {
        return Ok(db::studies::row_scope(&caller.study_scope(conn).await?));
    }
    Ok(caller.row_scope(kind))
}

/// The body of every `POST` that creates one row: the role's check (403); for a resource
/// created under something the caller must reach, that it reaches what the new row names
/// (`references`, the keys the row will have: a study outside the caller's scope, or a
/// site outside a `site` client's, is as absent as one that does not exist, 404); then the
/// write. 201 with `Location` under `collection` and the row's version as `ETag`.
pub async fn create<R: Readable>(
    caller: &Caller,
    state: &AppState,
    collection: &str,
    reason: ChangeReason,
    references: Option<RowKeys>,
    fields: R::Fields,
) -> ApiResult<HttpResponse> {
    caller.require(R::ENTITY, Operation::Create)?;
    let mut conn = state.db.get().await?;
    if let Some(keys) = references {
        let scope = caller.create_scope(&mut conn, R::ENTITY).await?;
        if scope.refused_reference(keys).is_some() {
            return Err(ApiError::NotFound);
        }
    }
    let row: R = write::create(&mut conn, &caller.write_context(reason.0), fields).await?;
    let (id, version) = (row.id(), row.version());
    let answer = R::answer(&mut conn, row).await?;
    Ok(respond::created(
        format!("{collection}/{id}"),
        &answer,
        version,
    ))
}

/// The body of every read by id.
pub async fn read<R: Readable>(
    caller: &Caller,
    state: &AppState,
    id: R::Id,
) -> ApiResult<R::Answer> {
    let mut conn = state.db.get().await?;
    let scope = reach(caller, &mut conn, R::ENTITY).await?;
    R::find(&mut conn, id, &scope).await
}

/// The body of every `PATCH`: `refusal` is the handler's own rule, answered after the role
/// check (`Ok(())` when it has none); `change` makes the new fields of the current row
/// (`merged` for a plain JSON Merge Patch).
pub async fn update<R: Readable>(
    caller: &Caller,
    state: &AppState,
    id: R::Id,
    if_match: &IfMatch,
    reason: ChangeReason,
    refusal: Result<(), ApiError>,
    change: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> ApiResult<R::Answer> {
    let mut conn = state.db.get().await?;
    let scope = reach(caller, &mut conn, R::ENTITY).await?;
    let guard = Guard {
        scope: &scope,
        permitted: caller.require(R::ENTITY, Operation::Update).and(refusal),
    };
    let ctx = caller.write_context(reason.0);
    let row = write::guarded_update(&mut conn, &ctx, id, guard, if_match, change).await?;
    R::answer(&mut conn, row).await
}

/// The body of every `DELETE` (a soft delete): 204.
pub async fn delete<R: Record>(
    caller: &Caller,
    state: &AppState,
    id: R::Id,
    if_match: &IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let scope = reach(caller, &mut conn, R::ENTITY).await?;
    let guard = Guard {
        scope: &scope,
        permitted: caller.require(R::ENTITY, Operation::Delete),
    };
    let ctx = caller.write_context(reason.0);
    write::soft_delete::<R>(&mut conn, &ctx, id, guard, if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The `change` of a plain JSON Merge Patch (RFC 7396): the patch merged into the row's
/// writable fields, re-validated as a create.
pub fn merged<R: Record>(patch: &Value) -> impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send
where
    R::Fields:
        serde::Serialize + serde::de::DeserializeOwned + validator::Validate + utoipa::ToSchema,
{
    move |row: &R| apply_merge_patch(&row.fields(), patch)
}
