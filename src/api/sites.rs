//! `/api/v1/sites`: the hospitals and clinics that enroll participants.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams, MergePatch};
use crate::api::respond;
use crate::auth::{Caller, Operation, Resource};
use crate::db;
use crate::db::sites::{Site, SiteFilter};
use crate::db::write;
use crate::domain::cursor::Page;
use crate::domain::enums::SiteStatus;
use crate::domain::patch::apply_merge_patch;
use crate::domain::sites::SiteFields;
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// Filters of the site list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiteListFilter {
    pub study_id: Option<Uuid>,
    pub status: Option<SiteStatus>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    pub cro_vendor_id: Option<Uuid>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

impl From<SiteListFilter> for SiteFilter {
    fn from(f: SiteListFilter) -> Self {
        Self {
            study_id: f.study_id,
            status: f.status,
            country: f.country,
            cro_vendor_id: f.cro_vendor_id,
            external_id: f.external_id,
        }
    }
}

/// List sites
///
/// The sites the caller may read (a `cro`: those of its studies; a `site` client: its own),
/// in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_sites",
    tag = "sites",
    params(ListParams, SiteListFilter),
    responses((status = 200, description = "A page of sites", body = Page<Site>)),
)]
#[get("/sites")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<SiteListFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    let scope = caller.row_scope(Resource::Site);
    let filter: SiteFilter = filter.into_inner().into();
    export::list(
        format,
        &state.db,
        params.limit,
        page,
        async move |conn, page| Ok(db::sites::list(conn, &scope, &filter, page).await?),
    )
    .await
}

/// Create a site
///
/// `admin`, `sponsor`, and `cro` within its studies (a study outside the caller's scope
/// answers 404). `site_number` is unique among the live sites of the study (409).
#[utoipa::path(
    operation_id = "create_site",
    tag = "sites",
    request_body = SiteFields,
    responses((status = 201, description = "Created; `Location` and `ETag` set", body = Site)),
)]
#[post("/sites")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<SiteFields>,
) -> ApiResult<HttpResponse> {
    caller.require(Resource::Site, Operation::Create)?;
    let mut conn = state.db.get().await?;
    // A study outside the caller's scope is as absent as one that does not exist.
    if !caller
        .study_scope(&mut conn)
        .await?
        .contains(body.0.study_id)
    {
        return Err(ApiError::NotFound);
    }
    let site: Site = write::create(&mut conn, &caller.write_context(reason.0), body.0).await?;
    Ok(respond::created(
        format!("/api/v1/sites/{}", site.id),
        &site,
        site.version,
    ))
}

/// Read a site
#[utoipa::path(
    operation_id = "read_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    responses((status = 200, description = "The site; `ETag` is its version", body = Site)),
)]
#[get("/sites/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let site = db::sites::find(
        &mut conn,
        id.into_inner(),
        &caller.row_scope(Resource::Site),
    )
    .await?;
    Ok(respond::tagged(&site, site.version))
}

/// Update a site
///
/// JSON Merge Patch (RFC 7396). `study_id` cannot change (422). Send `If-Match` with the
/// `ETag` you read (412 on mismatch).
#[utoipa::path(
    operation_id = "update_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    request_body(content = SiteFields, content_type = "application/merge-patch+json",
        description = "Any subset of the writable fields"),
    responses((status = 200, description = "The updated site", body = Site)),
)]
#[patch("/sites/{id}")]
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Site);
    let mut conn = state.db.get().await?;
    db::sites::find(&mut conn, id, &scope).await?;
    caller.require(Resource::Site, Operation::Update)?;
    let ctx = caller.write_context(reason.0);
    let in_scope = |site: &Site| scope.allows(site.keys());
    let site = write::update(
        &mut conn,
        &ctx,
        id,
        in_scope,
        &if_match,
        |current: &Site| apply_merge_patch(&current.fields(), &patch.0),
    )
    .await?;
    Ok(respond::tagged(&site, site.version))
}

/// Delete a site
///
/// A soft delete: the site leaves lists and reads but stays in the database and the audit
/// trail.
#[utoipa::path(
    operation_id = "delete_site",
    tag = "sites",
    params(("id" = Uuid, Path, description = "Site id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/sites/{id}")]
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Site);
    let mut conn = state.db.get().await?;
    let permitted = caller.require(Resource::Site, Operation::Delete);
    let in_scope = |site: &Site| scope.allows(site.keys());
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
