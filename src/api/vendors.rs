//! `/api/v1/vendors`: CROs, labs and other suppliers, shared by every study.

use actix_web::{HttpResponse, delete, get, patch, post};

use crate::api::extract::{Body, ListParams, MergePatch};
use crate::api::resource::{self, Listing, NewRecords, RecordChange, RecordRead};
use crate::db;
use crate::db::vendors::VendorFields;
use crate::db::vendors::{Vendor, VendorFilter};
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::VendorId;
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
pub async fn list(listing: Listing<VendorFilter>) -> ApiResult<HttpResponse> {
    resource::list(listing, EntityType::Vendor, db::vendors::list).await
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
pub async fn create(new: NewRecords, body: Body<VendorFields>) -> ApiResult<HttpResponse> {
    resource::create::<Vendor>(new, "/api/v1/vendors", None, body.0).await
}

/// Read a vendor
#[utoipa::path(
    operation_id = "read_vendor",
    tag = "vendors",
    params(("id" = Uuid, Path, description = "Vendor id")),
    responses((status = 200, description = "The vendor; `ETag` is its version", body = Vendor)),
)]
#[get("/vendors/{id}")]
pub async fn read(read: RecordRead<VendorId>) -> ApiResult<HttpResponse> {
    resource::read::<Vendor>(read).await
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
pub async fn update(change: RecordChange<VendorId>, patch: MergePatch) -> ApiResult<HttpResponse> {
    resource::update::<Vendor>(change, Ok(()), resource::merged(&patch.0)).await
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
pub async fn delete(change: RecordChange<VendorId>) -> ApiResult<HttpResponse> {
    resource::delete::<Vendor>(change).await
}
