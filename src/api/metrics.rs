//! Dashboards and BI (contract section 7): a study's metrics, its enrollment curve, and the
//! portfolio. Computed on read from the committed data; definitions in `docs/metrics.md`.
//!
//! Who reads them: whoever reads the study (outside the caller's scope: 404), if its role
//! reads whole studies (`admin`, `sponsor`, `cro`, `auditor`, `analyst`). `site` and
//! `vendor` clients get a 403: the figures sum data they may not read.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::export::{self, Format};
use crate::auth::Caller;
use crate::db;
use crate::db::metrics::{EnrollmentCurveWeek, PortfolioRow, StudyMetrics};
use crate::domain::tabular;
use crate::error::ApiResult;
use crate::startup::AppState;

/// The enrollment curve: one flat row per ISO week.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentCurve {
    pub data: Vec<EnrollmentCurveWeek>,
}

/// The portfolio: one flat row per live study the caller reads, in creation order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Portfolio {
    pub data: Vec<PortfolioRow>,
}

/// 404 unless the caller reads the study, then 403 unless its role reads metrics.
async fn check_study(caller: &Caller, conn: &mut db::Conn, id: Uuid) -> ApiResult<()> {
    let scope = caller.study_scope(conn).await?;
    db::studies::find(conn, id, &scope).await?;
    caller.require_metrics()
}

/// A study's metrics
///
/// The dashboard in one call: enrollment (counts, screen-fail rate, 4-week velocity,
/// projected completion with and without the buffer, on-track flag), sites, milestones,
/// budget (exact decimals in the study's currency), risks (score bands, 5 x 5 heat map)
/// and deviations, all computed from the committed data in one consistent snapshot taken
/// at `as_of`. Figures that would divide by zero or have no data are `null`.
#[utoipa::path(
    operation_id = "read_study_metrics",
    tag = "metrics",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "The study's figures", body = StudyMetrics)),
)]
#[get("/studies/{id}/metrics")]
pub async fn study(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    format: Format,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.read_db.get().await?;
    check_study(&caller, &mut conn, id).await?;
    let metrics = db::metrics::read_study_metrics(&mut conn, id).await?;
    match format {
        // One nested answer as a two-column table (figure, value) for BI tools.
        Format::Csv => {
            let value = serde_json::to_value(&metrics).map_err(anyhow::Error::new)?;
            export::csv_rows(tabular::figures(&value))
        }
        Format::Json => Ok(HttpResponse::Ok().json(metrics)),
    }
}

/// A study's enrollment curve
///
/// Weekly cumulative enrollment, actual against planned, one row per ISO week from the
/// earlier of the first reported week and the planned start, to the later of the current
/// week and the planned end. The plan is linear over the study's target from its planned
/// start to its planned end, or, when any site has a `target_enrollment`, the sum of the
/// sites' linear ramps from their activation to the planned end. Weeks after the current
/// one carry only the plan.
#[utoipa::path(
    operation_id = "read_enrollment_curve",
    tag = "metrics",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "The weekly curve", body = EnrollmentCurve)),
)]
#[get("/studies/{id}/enrollment-curve")]
pub async fn enrollment_curve(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    format: Format,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.read_db.get().await?;
    check_study(&caller, &mut conn, id).await?;
    let data = db::metrics::read_enrollment_curve(&mut conn, id).await?;
    match format {
        Format::Csv => export::csv_rows(data),
        Format::Json => Ok(HttpResponse::Ok().json(EnrollmentCurve { data })),
    }
}

/// The portfolio
///
/// One row of headline figures per live study the caller reads (a `cro`: the studies of
/// its claim), defined as in the study's metrics and read in one consistent snapshot.
#[utoipa::path(
    operation_id = "read_portfolio",
    tag = "metrics",
    responses((status = 200, description = "One row per study", body = Portfolio)),
)]
#[get("/metrics/portfolio")]
pub async fn portfolio(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
) -> ApiResult<HttpResponse> {
    caller.require_metrics()?;
    let mut conn = state.read_db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let data = db::metrics::read_portfolio(&mut conn, scope).await?;
    match format {
        Format::Csv => export::csv_rows(data),
        Format::Json => Ok(HttpResponse::Ok().json(Portfolio { data })),
    }
}
