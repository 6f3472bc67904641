//! Weekly enrollment: `PUT /api/v1/sites/{site_id}/enrollment/{week_start}` and
//! `GET /api/v1/enrollment`.

use actix_web::http::header;
use actix_web::{HttpResponse, get, put};
use chrono::Utc;

use crate::api::extract::{Body, ListParams};
use crate::api::resource::{self, Listing, RecordChange};
use crate::db;
use crate::db::enrollment::EnrollmentFields;
use crate::db::enrollment::{EnrollmentFilter, EnrollmentReport, Upserted};
use crate::db::sites::Site;
use crate::db::write::{Readable, Record};
use crate::domain::cursor::Page;
use crate::domain::enrollment::{EnrollmentCounts, parse_week_start};
use crate::domain::enums::EntityType;
use crate::domain::ids::SiteId;
use crate::domain::policy::Operation;
use crate::domain::validation;
use crate::domain::versioning::etag;
use crate::error::{ApiError, ApiResult};

/// Report a site's week
///
/// Sets the counts of one site for one ISO week (`week_start` is that week's Monday, not in
/// the future). Idempotent: the first PUT of a week creates its report (201), later ones
/// replace its counts (200; unchanged counts keep the version and write no audit event).
/// Counts are for that week only. `admin`, `sponsor`, `cro` within its studies, and a
/// `site` client for its own sites. `If-Match` guards against overwriting a newer report.
#[utoipa::path(
    operation_id = "put_enrollment_report",
    tag = "enrollment",
    params(
        ("site_id" = Uuid, Path, description = "Site id"),
        ("week_start" = String, Path, description = "Monday of the ISO week, YYYY-MM-DD", example = "2026-11-23"),
    ),
    request_body = EnrollmentCounts,
    responses(
        (status = 201, description = "The week's first report", body = EnrollmentReport),
        (status = 200, description = "The week's report, updated", body = EnrollmentReport),
    ),
)]
#[put("/sites/{site_id}/enrollment/{week_start}")]
pub async fn put_week(
    change: RecordChange<(SiteId, String)>,
    body: Body<EnrollmentCounts>,
) -> ApiResult<HttpResponse> {
    let RecordChange {
        caller,
        state,
        id: (site_id, week_start),
        if_match,
        reason,
    } = change;
    let mut conn = state.db.get().await?;
    let site = Site::find(&mut conn, site_id, &caller.row_scope(EntityType::Site)).await?;
    if !caller
        .row_scope(EntityType::EnrollmentReport)
        .allows(site.keys())
    {
        return Err(ApiError::NotFound);
    }
    caller.require(EntityType::EnrollmentReport, Operation::Create)?;
    let week_start = parse_week_start(&week_start, Utc::now().date_naive())?;
    let fields = EnrollmentFields::new(site.study_id, site.id, week_start, &body.0);
    let (report, upserted) = db::enrollment::upsert(
        &mut conn,
        &caller.write_context(reason.0),
        fields,
        &if_match,
    )
    .await?;
    let mut response = match upserted {
        Upserted::Created => {
            let mut created = HttpResponse::Created();
            // The week's report lives at the URL it was PUT to.
            created.insert_header((
                header::LOCATION,
                format!(
                    "/api/v1/sites/{}/enrollment/{}",
                    report.site_id, report.week_start
                ),
            ));
            created
        }
        Upserted::Updated => HttpResponse::Ok(),
    };
    Ok(response
        .insert_header((header::ETAG, etag(report.version)))
        .json(report))
}

/// List weekly enrollment
///
/// The weekly reports the caller may read (a `cro`: of its studies; a `site` client: of its
/// sites), each with its `study_id`, `site_id` and `week_start`, in the order they were
/// first reported, one page at a time.
#[utoipa::path(
    operation_id = "list_enrollment_reports",
    tag = "enrollment",
    params(ListParams, EnrollmentFilter),
    responses((status = 200, description = "A page of weekly reports", body = Page<EnrollmentReport>)),
)]
#[get("/enrollment")]
pub async fn list(listing: Listing<EnrollmentFilter>) -> ApiResult<HttpResponse> {
    let filter = &listing.filter;
    validation::date_param("from", filter.from)?;
    validation::date_param("to", filter.to)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    resource::list(listing, EntityType::EnrollmentReport, db::enrollment::list).await
}
