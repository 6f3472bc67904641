//! `/api/v1/milestones`: the trial's plan (protocol final to clinical study report) and
//! vendor deliverables, with their slippage and overdue state.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::batch::{self, BatchAnswer, BatchRequest};
use crate::api::export::{self, Format};
use crate::api::extract::{Batch, Body, ChangeReason, ListParams, MergePatch};
use crate::api::respond;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::milestones::{Milestone, MilestoneFilter};
use crate::db::write::{self, Upsert};
use crate::domain::cursor::Page;
use crate::domain::enums::{MilestoneKind, MilestoneStatus, Role};
use crate::domain::milestones::{MilestoneFields, VENDOR_WRITABLE, refused_for_vendor};
use crate::domain::patch::apply_merge_patch;
use crate::domain::policy::{Operation, Resource};
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, ApiResult, Problem};

/// A milestone as answered: the stored record plus two values derived from its dates on
/// the day of the answer (UTC). The derived values are not stored: the audit trail and
/// the change feed carry the stored record only, since the calendar changes them, not
/// writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct MilestoneView {
    #[serde(flatten)]
    pub milestone: Milestone,
    /// Days late against the baseline: `actual_date` (else `forecast_date`) minus
    /// `baseline_date`. Negative when early, 0 when on time, `null` when either side is
    /// missing.
    #[schema(example = 9)]
    pub slippage_days: Option<i64>,
    /// `true` when the milestone has no `actual_date`, is neither `completed` nor
    /// `cancelled`, and its due date (`forecast_date`, else `baseline_date`) is before
    /// today (UTC). A milestone without either date is never overdue.
    #[schema(example = false)]
    pub overdue: bool,
}

impl MilestoneView {
    fn new(milestone: Milestone, today: NaiveDate) -> Self {
        let schedule = milestone.schedule(today);
        Self {
            milestone,
            slippage_days: schedule.slippage_days,
            overdue: schedule.overdue,
        }
    }
}

/// "Today" for the derived values: the UTC calendar day.
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Filters of the milestone list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MilestoneListFilter {
    pub study_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
    pub kind: Option<MilestoneKind>,
    pub status: Option<MilestoneStatus>,
    /// `true`: only overdue milestones (as of today, UTC); `false`: only those that are not.
    pub overdue: Option<bool>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

impl From<MilestoneListFilter> for MilestoneFilter {
    fn from(f: MilestoneListFilter) -> Self {
        Self {
            study_id: f.study_id,
            site_id: f.site_id,
            vendor_id: f.vendor_id,
            kind: f.kind,
            status: f.status,
            overdue: f.overdue,
            external_id: f.external_id,
        }
    }
}

/// List milestones
///
/// The milestones the caller may read (a `cro`: those of its studies; a `vendor` client:
/// those naming its vendor; a `site` client: none), in creation order, one page at a time.
#[utoipa::path(
    operation_id = "list_milestones",
    tag = "milestones",
    params(ListParams, MilestoneListFilter),
    responses((status = 200, description = "A page of milestones", body = Page<MilestoneView>)),
)]
#[get("/milestones")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
    filter: web::Query<MilestoneListFilter>,
) -> ApiResult<HttpResponse> {
    let page = params.page()?;
    // One "today" for the whole answer, however many pages a CSV export reads.
    let today = today();
    let scope = caller.row_scope(Resource::Milestone);
    let filter: MilestoneFilter = filter.into_inner().into();
    export::list(
        format,
        &state.db,
        params.limit,
        page,
        async move |conn, page| {
            let milestones = db::milestones::list(conn, &scope, &filter, today, page).await?;
            Ok(milestones.map(|m| MilestoneView::new(m, today)))
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
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<MilestoneFields>,
) -> ApiResult<HttpResponse> {
    caller.require(Resource::Milestone, Operation::Create)?;
    let mut conn = state.db.get().await?;
    // A study outside the caller's scope is as absent as one that does not exist.
    let scope = caller.create_scope(&mut conn, Resource::Milestone).await?;
    if scope
        .refused_reference(Milestone::keys_of(&body.0))
        .is_some()
    {
        return Err(ApiError::NotFound);
    }
    let milestone: Milestone =
        write::create(&mut conn, &caller.write_context(reason.0), body.0).await?;
    let version = milestone.version;
    Ok(respond::created(
        format!("/api/v1/milestones/{}", milestone.id),
        &MilestoneView::new(milestone, today()),
        version,
    ))
}

/// Read a milestone
#[utoipa::path(
    operation_id = "read_milestone",
    tag = "milestones",
    params(("id" = Uuid, Path, description = "Milestone id")),
    responses((status = 200, description = "The milestone; `ETag` is its version", body = MilestoneView)),
)]
#[get("/milestones/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let milestone = db::milestones::find(
        &mut conn,
        id.into_inner(),
        &caller.row_scope(Resource::Milestone),
    )
    .await?;
    let version = milestone.version;
    Ok(respond::tagged(
        &MilestoneView::new(milestone, today()),
        version,
    ))
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
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
    patch: MergePatch,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Milestone);
    let mut conn = state.db.get().await?;
    db::milestones::find(&mut conn, id, &scope).await?;
    caller.require(Resource::Milestone, Operation::Update)?;
    if caller.role == Role::Vendor {
        refuse_fields_outside_a_vendors_reach(&patch.0)?;
    }
    let ctx = caller.write_context(reason.0);
    let in_scope = |milestone: &Milestone| scope.allows(milestone.keys());
    let milestone = write::update(
        &mut conn,
        &ctx,
        id,
        in_scope,
        &if_match,
        |current: &Milestone| apply_merge_patch(&current.fields(), &patch.0),
    )
    .await?;
    let version = milestone.version;
    Ok(respond::tagged(
        &MilestoneView::new(milestone, today()),
        version,
    ))
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
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = caller.row_scope(Resource::Milestone);
    let mut conn = state.db.get().await?;
    let permitted = caller.require(Resource::Milestone, Operation::Delete);
    let in_scope = |milestone: &Milestone| scope.allows(milestone.keys());
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
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Batch<MilestoneFields>,
) -> ApiResult<HttpResponse> {
    batch::upsert::<Milestone>(
        &caller,
        &state,
        Resource::Milestone,
        reason,
        false,
        body.0,
        &vendor_field_limits(&caller),
    )
    .await
}

/// A `vendor` client's limits on milestone updates through a batch: the fields an item
/// changes must be among the four it may patch (`refuse_fields_outside_a_vendors_reach`, the
/// PATCH rule, applied to the fields that differ).
fn vendor_field_limits(
    caller: &Caller,
) -> impl Fn(&Milestone, &MilestoneFields) -> Result<(), ApiError> + Sync + '_ {
    move |current, item| {
        if caller.role != Role::Vendor {
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
