//! `/api/v1/vendors`: CROs, labs and other suppliers, shared by every study.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::vendors::{Vendor, VendorFilter};
use crate::db::write;
use crate::domain::cursor::Page;
use crate::domain::enums::{VendorKind, VendorStatus};
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::{Operation, Resource};
use crate::domain::vendors::VendorFields;
use crate::domain::versioning::IfMatch;
use crate::error::ApiResult;

/// Filters of the vendor list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VendorListFilter {
    pub kind: Option<VendorKind>,
    pub status: Option<VendorStatus>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

impl From<VendorListFilter> for VendorFilter {
    fn from(f: VendorListFilter) -> Self {
        Self {
            kind: f.kind,
            status: f.status,
            country: f.country,
            external_id: f.external_id,
        }
    }
}

/// List vendors
///
/// Every vendor for `admin`, `sponsor`, `cro`, `auditor` and `analyst`; a `vendor` client
/// sees its own record only, a `site` client none. In creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_vendors",
    tag = "vendors",
    params(ListParams, VendorListFilter),
    responses((status = 200, description = "A page of vendors", body = Page<Vendor>)),
)]
#[get("/vendors")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<VendorListFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.row_scope(Resource::Vendor);
    let filter: VendorFilter = filter.into_inner().into();
    export::list(
        format,
        &state.db,
        params.limit,
        page,
        async move |conn, page| Ok(db::vendors::list(conn, &scope, &filter, page).await?),
    )
    .await
}

/// Create a vendor
///
/// `admin` and `sponsor` only: vendors are reference data shared by every study.
#[utoipa::path(
    operation_id = "create_vendor",
    tag = "vendors",
    request_body = VendorFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Vendor)),
)]
#[post("/vendors")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<VendorFields>,
) -> ApiResult<HttpResponse> {
    caller.require(Resource::Vendor, Operation::Create)?;
    let mut conn = state.db.get().await?;
    let vendor: Vendor = write::create(&mut conn, &caller.write_context(reason.0), body.0).await?;
    Ok(respond::created(
        format!("/api/v1/vendors/{}", vendor.id),
        &vendor,
        vendor.version,
    ))
}

/// Read a vendor
#[utoipa::path(
    operation_id = "read_vendor",
    tag = "vendors",
    params(("id" = Uuid, Path, description = "Vendor id")),
    responses((status = 200, description = "The vendor; `ETag` is its version", body = Vendor)),
)]
#[get("/vendors/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let vendor = db::vendors::find(
        &mut conn,
        id.into_inner(),
        &caller.row_scope(Resource::Vendor),
    )
    .await?;
    Ok(respond::tagged(&vendor, vendor.version))
}

/// Update a vendor
///
/// JSON Merge Patch (RFC 7396); `admin` and `sponsor` only. Send `If-Match` with the
/// `ETag` you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_vendor",
    tag = "vendors",
    params(("id" = Uuid, Path, description = "Vendor id")),
    request_body(content = VendorFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated vendor", body = Vendor)),
)]
#[patch("/vendors/{id}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Vendor);
    let mut conn = state.db.get().await?;
    db::vendors::find(&mut conn, id, &scope).await?;
    caller.require(Resource::Vendor, Operation::Update)?;
    let ctx = caller.write_context(reason.0);
    let in_scope = |vendor: &Vendor| scope.allows(vendor.keys());
    let vendor = write::update(
        &mut conn,
        &ctx,
        id,
        in_scope,
        &if_match,
        |current: &Vendor| apply_merge_patch(&current.fields(), &patch.0),
    )
    .await?;
    Ok(respond::tagged(&vendor, vendor.version))
}

/// Delete a vendor
///
/// A soft delete: the vendor leaves lists and reads but stays in the database and the
/// audit trail. A vendor still named by a live milestone, budget line or risk, or by a
/// live site as its CRO, cannot be deleted (409); consider `status: offboarded` instead.
#[utoipa::path(
    operation_id = "delete_vendor",
    tag = "vendors",
    params(("id" = Uuid, Path, description = "Vendor id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/vendors/{id}")]
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Vendor);
    let mut conn = state.db.get().await?;
    let permitted = caller.require(Resource::Vendor, Operation::Delete);
    let in_scope = |vendor: &Vendor| scope.allows(vendor.keys());
    write::soft_delete(
        &mut conn,
        &caller.write_context(reason.0),
        id,
        in_scope,
        permitted,
        &if_match,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
