//! `/api/v1/vendors`: CROs, labs and other suppliers, shared by every study.

use actix_web::{HttpResponse, delete, get, patch, post, web};

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::resource;
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::vendors::VendorFields;
use crate::db::vendors::{Vendor, VendorFilter};
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::VendorId;
use crate::domain::versioning::IfMatch;
use crate::error::ApiResult;

/// List vendors
///
/// Every vendor for `admin`, `sponsor`, `cro`, `auditor` and `analyst`; a `vendor` client
/// sees its own record only, a `site` client none. In creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_vendors",
    tag = "vendors",
    params(ListParams, VendorFilter),
    responses((status = 200, description = "A page of vendors", body = Page<Vendor>)),
)]
#[get("/vendors")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<VendorFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.row_scope(EntityType::Vendor);
    let filter = filter.into_inner();
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
    resource::create::<Vendor>(&caller, &state, "/api/v1/vendors", reason, None, body.0).await
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
    id: web::Path<VendorId>,
) -> ApiResult<HttpResponse> {
    let vendor: Vendor = resource::read::<Vendor>(&caller, &state, id.into_inner()).await?;
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
    id: web::Path<VendorId>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let vendor = resource::update::<Vendor>(
        &caller,
        &state,
        id.into_inner(),
        &if_match,
        reason,
        Ok(()),
        resource::merged(&patch.0),
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
    id: web::Path<VendorId>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    resource::delete::<Vendor>(&caller, &state, id.into_inner(), &if_match, reason).await
}
