//! What every resource's handlers take, and the bodies they share. A handler keeps its own
//! doc comment, route and `#[utoipa::path]`, takes one of the extractors below (the caller,
//! the state and the request parts a kind of request needs, extracted in the order of
//! their checks), and passes what is its own (a rule of its resource, how a patch is
//! merged, its list query) as an argument; the order of the checks is written here once:
//!
//! - read: the row within the caller's reach, in one statement outside any transaction
//!   (404 outside it, so existence does not leak);
//! - update and delete: one read of the row, locked inside the write's transaction, and one
//!   check of it (`write::Guard`): 404 outside the caller's reach, then the role's 403 and
//!   the handler's own refusal, then `If-Match` (412), then the change itself (422, 409);
//! - list: one page (or a CSV export) of the rows the caller reaches, by the resource's
//!   query and filter.

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::export::{self, Format};
use crate::api::extract::{ChangeReason, ListParams};
use crate::api::respond::{self, Versioned};
use crate::app::AppState;
use crate::auth::Caller;
use crate::db::write::{self, Guard, Readable, Record};
use crate::db::{self, Conn};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::EntityType;
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::{Operation, RowKeys, RowScope};
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, ApiResult};

/// The extractors below compose the extractors of their parts `P` (a tuple) as actix
/// composes a handler's arguments, polled in order: `Caller` first, so a missing or invalid
/// token is a 401 before the path, headers or body are judged, and every other refusal is
/// the one the part's own extractor gives. `assemble` makes the bundle of the parts.
fn composed<P, S>(
    req: &HttpRequest,
    payload: &mut Payload,
    assemble: impl FnOnce(P) -> Result<S, ApiError> + 'static,
) -> LocalBoxFuture<'static, Result<S, actix_web::Error>>
where
    P: FromRequest + 'static,
    P::Future: 'static,
{
    let parts = P::from_request(req, payload);
    Box::pin(async move { Ok(assemble(parts.await.map_err(Into::into)?)?) })
}

/// A read of one record: who asks, and the record's id from the path.
pub struct RecordRead<I> {
    pub caller: Caller,
    pub state: web::Data<AppState>,
    pub id: I,
}

impl<I: DeserializeOwned + 'static> FromRequest for RecordRead<I> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        composed(req, payload, |(caller, state, id): (_, _, web::Path<I>)| {
            let id = id.into_inner();
            Ok(RecordRead { caller, state, id })
        })
    }
}

/// A change of one record (`PATCH`, `DELETE`, a `PUT` of a weekly report): who makes it,
/// the record's id from the path, the version it expects (`If-Match`) and why
/// (`X-Change-Reason`).
pub struct RecordChange<I> {
    pub caller: Caller,
    pub state: web::Data<AppState>,
    pub id: I,
    pub if_match: IfMatch,
    pub reason: ChangeReason,
}

impl<I: DeserializeOwned + 'static> FromRequest for RecordChange<I> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        composed(
            req,
            payload,
            |(caller, state, id, if_match, reason): (_, _, web::Path<I>, _, _)| {
                let id = id.into_inner();
                Ok(RecordChange {
                    caller,
                    state,
                    id,
                    if_match,
                    reason,
                })
            },
        )
    }
}

/// A `POST` that writes new records (a create, a batch): who writes them, and why.
pub struct NewRecords {
    pub caller: Caller,
    pub state: web::Data<AppState>,
    pub reason: ChangeReason,
}

impl FromRequest for NewRecords {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        composed(req, payload, |(caller, state, reason)| {
            Ok(NewRecords {
                caller,
                state,
                reason,
            })
        })
    }
}

/// A list request: who asks, the answer's format (JSON or CSV), the page asked for (a bad
/// `limit`, `cursor` or `updated_since` is a 400 once the parts are read) and the
/// resource's filter `F`.
pub struct Listing<F> {
    pub caller: Caller,
    pub state: web::Data<AppState>,
    pub format: Format,
    /// The `limit` the client sent (for CSV, the most rows of the whole export).
    pub limit: Option<i64>,
    pub page: PageRequest,
    pub filter: F,
}

impl<F: DeserializeOwned + 'static> FromRequest for Listing<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = |(caller, state, format, params, filter): (
            _,
            _,
            _,
            web::Query<ListParams>,
            web::Query<F>,
        )| {
            Ok(Listing {
                caller,
                state,
                format,
                limit: params.limit,
                page: params.page()?,
                filter: filter.into_inner(),
            })
        };
        composed(req, payload, parts)
    }
}

impl<F: 'static> Listing<F> {
    /// The answer of a list: `query` reads one page of the rows within `scope` that pass
    /// the filter (once for JSON, page by page for CSV).
    pub async fn answer<S, T, E>(
        self,
        scope: S,
        query: impl AsyncFn(&mut Conn, &S, &F, &PageRequest) -> Result<Page<T>, E> + 'static,
    ) -> ApiResult<HttpResponse>
    where
        S: 'static,
        T: Serialize + ToSchema + 'static,
        ApiError: From<E>,
    {
        let Listing {
            state,
            format,
            limit,
            page,
            filter,
            ..
        } = self;
        export::list(format, &state.db, limit, page, async move |conn, page| {
            Ok(query(conn, &scope, &filter, page).await?)
        })
        .await
    }
}

/// The rows of `kind` the caller reaches. Studies take a query for `site` and `vendor`
/// callers (the studies of their sites, or naming their vendor).
pub async fn reach(caller: &Caller, conn: &mut Conn, kind: EntityType) -> ApiResult<RowScope> {
    if kind == EntityType::Study {
        return Ok(db::studies::row_scope(&caller.study_scope(conn).await?));
    }
    Ok(caller.row_scope(kind))
}

/// The body of every list of a resource whose rows the caller reaches by `row_scope`:
/// the page `query` reads of the rows of `kind` the caller reaches.
pub async fn list<F: 'static, T, E>(
    listing: Listing<F>,
    kind: EntityType,
    query: impl AsyncFn(&mut Conn, &RowScope, &F, &PageRequest) -> Result<Page<T>, E> + 'static,
) -> ApiResult<HttpResponse>
where
    T: Serialize + ToSchema + 'static,
    ApiError: From<E>,
{
    let scope = listing.caller.row_scope(kind);
    listing.answer(scope, query).await
}

/// The body of every `POST` that creates one row: the role's check (403); for a resource
/// created under something the caller must reach, that it reaches what the new row names
/// (`references`, the keys the row will have: a study outside the caller's scope, or a
/// site outside a `site` client's, is as absent as one that does not exist, 404); then the
/// write. 201 with `Location` under `collection` and the row's version as `ETag`.
pub async fn create<R: Readable>(
    new: NewRecords,
    collection: &str,
    references: Option<RowKeys>,
    fields: R::Fields,
) -> ApiResult<HttpResponse> {
    new.caller.require(R::ENTITY, Operation::Create)?;
    let mut conn = new.state.db.get().await?;
    if let Some(keys) = references {
        let scope = new.caller.create_scope(&mut conn, R::ENTITY).await?;
        if scope.refused_reference(keys).is_some() {
            return Err(ApiError::NotFound);
        }
    }
    let ctx = new.caller.write_context(new.reason.0);
    let row: R = write::create(&mut conn, &ctx, fields).await?;
    let (id, version) = (row.id(), row.version());
    let answer = R::answer(&mut conn, row).await?;
    Ok(respond::created(
        format!("{collection}/{id}"),
        &answer,
        version,
    ))
}

/// The body of every read by id: 200 with the record and its version as `ETag`.
pub async fn read<R: Readable>(read: RecordRead<R::Id>) -> ApiResult<HttpResponse>
where
    R::Answer: Versioned,
{
    let mut conn = read.state.db.get().await?;
    let scope = reach(&read.caller, &mut conn, R::ENTITY).await?;
    let answer = R::find(&mut conn, read.id, &scope).await?;
    Ok(respond::tagged(&answer, answer.version()))
}

/// The body of every `PATCH`: `refusal` is the handler's own rule, answered after the role
/// check (`Ok(())` when it has none); `fields` makes the new fields of the current row
/// (`merged` for a plain JSON Merge Patch). 200 with the record and its new version as
/// `ETag`.
pub async fn update<R: Readable>(
    change: RecordChange<R::Id>,
    refusal: Result<(), ApiError>,
    fields: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> ApiResult<HttpResponse> {
    let (caller, id, if_match) = (&change.caller, change.id, &change.if_match);
    let mut conn = change.state.db.get().await?;
    let scope = reach(caller, &mut conn, R::ENTITY).await?;
    let guard = Guard {
        scope: &scope,
        permitted: caller.require(R::ENTITY, Operation::Update).and(refusal),
    };
    let ctx = caller.write_context(change.reason.0);
    let row = write::guarded_update(&mut conn, &ctx, id, guard, if_match, fields).await?;
    let version = row.version();
    let answer = R::answer(&mut conn, row).await?;
    Ok(respond::tagged(&answer, version))
}

/// The body of every `DELETE` (a soft delete): 204.
pub async fn delete<R: Record>(change: RecordChange<R::Id>) -> ApiResult<HttpResponse> {
    let (caller, id, if_match) = (&change.caller, change.id, &change.if_match);
    let mut conn = change.state.db.get().await?;
    let scope = reach(caller, &mut conn, R::ENTITY).await?;
    let guard = Guard {
        scope: &scope,
        permitted: caller.require(R::ENTITY, Operation::Delete),
    };
    let ctx = caller.write_context(change.reason.0);
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
