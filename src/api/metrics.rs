//! Dashboards and BI (contract section 7): a study's metrics, its enrollment curve, and the
//! portfolio. Computed on read from the committed data; definitions in `docs/metrics.md`.
//!
//! Who reads them: whoever reads the study (outside the caller's scope: 404), if its role
//! reads whole studies (`admin`, `sponsor`, `cro`, `auditor`, `analyst`). `site` and
//! `vendor` clients get a 403: the figures sum data they may not read.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, web};
use chrono::{Days, NaiveDate};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::chart::{self, Chart, Point};
use crate::api::conditional::{self, Validator};
use crate::api::export::{self, Format};
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::metrics::curve::CurveAt;
use crate::domain::forecast::Hyperparameters;
use crate::domain::ids::StudyId;
use crate::domain::metrics::answers::{EnrollmentCurveWeek, PortfolioRow, StudyMetrics};
use crate::domain::policy::Scope;
use crate::domain::{tabular, validation};
use crate::error::{ApiError, ApiResult};

/// The enrollment curve: one flat row per ISO week.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentCurve {
    /// The day of the curve (the `as_of` asked for, default today, UTC).
    pub as_of: NaiveDate,
    /// The prior behind the forecast columns; null when the study lacks the data for a
    /// forecast (the columns are null then).
    pub hyperparameters: Option<Hyperparameters>,
    pub data: Vec<EnrollmentCurveWeek>,
}

/// A given prior: (alpha, beta).
pub type Prior = (f64, f64);

/// The forecast's parameters (`api::forecast`), also taken by the enrollment curve.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForecastParams {
    /// The day of the forecast (default today, UTC); t0 is its Monday. Reports of weeks
    /// starting before t0 are counted.
    pub as_of: Option<NaiveDate>,
    /// The gamma prior's shape (> 0), with `prior_beta`; both or neither. Without them
    /// the prior is fitted from the sites, or else the planning prior.
    #[param(example = 2.0, exclusive_minimum = 0.0)]
    pub prior_alpha: Option<f64>,
    /// The gamma prior's rate (> 0, per week), with `prior_alpha`.
    #[param(example = 8.0, exclusive_minimum = 0.0)]
    pub prior_beta: Option<f64>,
}

impl ForecastParams {
    /// The `as_of` (range-checked) and the given prior: 400 for one of the two alone, or
    /// for a value that is not a positive finite number.
    pub fn checked(&self) -> Result<(Option<NaiveDate>, Option<Prior>), ApiError> {
        validation::date_param("as_of", self.as_of)?;
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(ApiError::BadRequest(format!(
                    "{name} must be a number greater than 0"
                )))
            }
        };
        let prior = match (self.prior_alpha, self.prior_beta) {
            (None, None) => None,
            (Some(alpha), Some(beta)) => Some((
                positive("prior_alpha", alpha)?,
                positive("prior_beta", beta)?,
            )),
            (Some(_), None) => {
                return Err(ApiError::BadRequest(
                    "prior_alpha needs prior_beta: give both or neither".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::BadRequest(
                    "prior_beta needs prior_alpha: give both or neither".into(),
                ));
            }
        };
        Ok((self.as_of, prior))
    }
}

/// The portfolio: one flat row per live study the caller reads, in creation order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Portfolio {
    pub data: Vec<PortfolioRow>,
}

/// What every computed answer about one study (metrics, curve, forecast, signals) takes
/// from its request: the caller, the app's state, the study's id (the path's `{id}`), the
/// format asked for and the request itself (for the validator). One extractor, so that
/// each handler names only what is its own (its query). The caller, then the path, are
/// extracted in the order they were as separate arguments, so a request wrong in both
/// still gets the same error.
pub(crate) struct StudyAnswer {
    caller: Caller,
    state: web::Data<AppState>,
    id: StudyId,
    format: Format,
    req: HttpRequest,
}

impl FromRequest for StudyAnswer {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(
            Caller,
            web::Data<AppState>,
            web::Path<StudyId>,
            Format,
            HttpRequest,
        )>::from_request(req, payload);
        Box::pin(async move {
            let (caller, state, id, format, req) = parts.await?;
            Ok(Self {
                caller,
                state,
                id: id.into_inner(),
                format,
                req,
            })
        })
    }
}

impl StudyAnswer {
    /// The steps every computed answer about one study shares: the caller may read the
    /// study's figures, then its validator, so that an unchanged study answers 304 before
    /// anything is computed, then `read` of the study on the same connection, answered by
    /// `respond` in the format asked for and tagged with the validator.
    pub(crate) async fn answer<T>(
        self,
        read: impl AsyncFnOnce(&mut db::Conn, StudyId) -> ApiResult<T>,
        respond: impl FnOnce(T, Format) -> ApiResult<HttpResponse>,
    ) -> ApiResult<HttpResponse> {
        let media = conditional::media(self.format);
        self.answer_as(media, read, respond).await
    }

    /// `answer`, with the validator's media named by the caller (the curve's SVG).
    async fn answer_as<T>(
        self,
        media: &str,
        read: impl AsyncFnOnce(&mut db::Conn, StudyId) -> ApiResult<T>,
        respond: impl FnOnce(T, Format) -> ApiResult<HttpResponse>,
    ) -> ApiResult<HttpResponse> {
        let mut conn = self.state.read_db.get().await?;
        check_study(&self.caller, &mut conn, self.id).await?;
        let changes = db::validators::changes(&mut conn, Some(&[self.id])).await?;
        let validator = Validator::new(&self.req, media, changes, None);
        if let Some(not_modified) = validator.not_modified(&self.req) {
            return Ok(not_modified);
        }
        let answer = read(&mut conn, self.id).await?;
        validator.tag(respond(answer, self.format))
    }
}

/// One nested answer as JSON, or for BI tools as a two-column table (figure, value).
pub(crate) fn figures<T: Serialize>(answer: T, format: Format) -> ApiResult<HttpResponse> {
    match format {
        Format::Csv => {
            let value = serde_json::to_value(&answer).map_err(anyhow::Error::new)?;
            export::csv_rows(tabular::figures(&value))
        }
        Format::Json => Ok(HttpResponse::Ok().json(answer)),
    }
}

/// 404 unless the caller reads the study, then 403 unless its role reads metrics.
async fn check_study(caller: &Caller, conn: &mut db::Conn, id: StudyId) -> ApiResult<()> {
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
pub async fn study(answer: StudyAnswer) -> ApiResult<HttpResponse> {
    answer
        .answer(db::metrics::read_study_metrics, figures)
        .await
}

/// A study's enrollment curve
///
/// Weekly cumulative enrollment, actual against planned, one row per ISO week from the
/// earlier of the first reported week and the planned start, to the later of the week of
/// `as_of` (default today, UTC) and the planned end. The plan is linear over the study's
/// target from its planned start to its planned end, or, when any site has a
/// `target_enrollment`, the sum of the sites' linear ramps from their activation to the
/// planned end. Weeks after the week of `as_of` carry only the plan. From t0 (the Monday
/// of `as_of`) on, each week carries the enrollment forecast's P10/P50/P90 of cumulative
/// enrollment by its end (`GET /studies/{id}/enrollment-forecast`, with the same
/// `prior_alpha`/`prior_beta`). With `Accept: image/svg+xml`, the chart as an SVG to embed
/// as it is: actual, plan, target, and the forecast median with its P10-P90 band (drawn
/// on to the P90 completion when that is after the planned end, up to three more years).
#[utoipa::path(
    operation_id = "read_enrollment_curve",
    tag = "metrics",
    params(("id" = Uuid, Path, description = "Study id"), ForecastParams),
    responses((status = 200, description = "The weekly curve", content(
        (EnrollmentCurve = "application/json"),
        (String = "image/svg+xml", example = json!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"540\" ...><title>TOP-2026-001: enrollment</title>...</svg>")),
    ))),
)]
#[get("/studies/{id}/enrollment-curve")]
pub async fn enrollment_curve(
    answer: StudyAnswer,
    params: web::Query<ForecastParams>,
) -> ApiResult<HttpResponse> {
    let (as_of, prior) = params.checked()?;
    let read = async |conn: &mut db::Conn, id| {
        db::metrics::curve::read_enrollment_curve_at(conn, id, as_of, prior).await
    };
    if chart::wants_svg(&answer.req) {
        return answer
            .answer_as("svg", read, |curve, _| {
                Ok(chart::respond(chart::render(&chart_of(&curve))))
            })
            .await;
    }
    answer
        .answer(read, |curve, format| {
            let CurveAt {
                as_of,
                rows,
                forecast,
                ..
            } = curve;
            match format {
                Format::Csv => export::csv_rows(rows),
                Format::Json => Ok(HttpResponse::Ok().json(EnrollmentCurve {
                    as_of,
                    hyperparameters: forecast.map(|f| f.answer.hyperparameters),
                    data: rows,
                })),
            }
        })
        .await
}

/// The most weeks the chart draws the forecast past the curve's last row.
const CHART_EXTRA_WEEKS: u64 = 156;

/// The chart of a curve: each row at its week's end; past the last row, the forecast
/// alone up to its P90 completion (at most three more years), so the band ends where the
/// target is likely reached.
fn chart_of(curve: &CurveAt) -> Chart {
    let st = &curve.study;
    let mut points: Vec<Point> = curve
        .rows
        .iter()
        .map(|row| Point {
            day: row.week_start + Days::new(7),
            actual: row.cumulative_enrolled.map(|v| v as f64),
            planned: row.planned_cumulative,
            forecast: match (row.forecast_p10, row.forecast_p50, row.forecast_p90) {
                (Some(a), Some(b), Some(c)) => Some((a as f64, b as f64, c as f64)),
                _ => None,
            },
        })
        .collect();
    let t0 = curve.forecast.as_ref().map(|f| f.t0);
    if let Some(f) = &curve.forecast {
        // The band starts at t0 from what was enrolled before it.
        let start = f.answer.enrolled as f64;
        points.push(Point {
            day: f.t0,
            actual: None,
            planned: None,
            forecast: Some((start, start, start)),
        });
        let until = f.answer.completion_date.p90;
        let mut week = curve
            .rows
            .last()
            .map_or(f.t0, |row| row.week_start + Days::new(7))
            .max(f.t0);
        for _ in 0..CHART_EXTRA_WEEKS {
            if until.is_none_or(|end| week >= end) {
                break;
            }
            if let [Some(a), Some(b), Some(c)] = db::metrics::curve::forecast_columns(f, week) {
                points.push(Point {
                    day: week + Days::new(7),
                    actual: None,
                    planned: None,
                    forecast: Some((a as f64, b as f64, c as f64)),
                });
            }
            week = week + Days::new(7);
        }
        points.sort_by_key(|p| p.day);
    }
    let name = st
        .short_title
        .as_deref()
        .map_or(st.protocol_number.clone(), |short| {
            format!("{} ({short})", st.protocol_number)
        });
    let forecast_line = match &curve.forecast {
        Some(f) => match (
            f.answer.completion_date.p50,
            f.answer.probability_by_planned_end,
        ) {
            (Some(p50), Some(p)) => format!(
                "; forecast P50 completion {p50}, P(target by planned end) = {:.0}%",
                p * 100.0
            ),
            (Some(p50), None) => format!("; forecast P50 completion {p50}"),
            _ => String::new(),
        },
        None => String::new(),
    };
    Chart {
        title: format!("{name}: enrollment"),
        subtitle: format!(
            "As of {}; target {}{forecast_line}",
            curve.as_of, st.target_enrollment
        ),
        target: Some(f64::from(st.target_enrollment)),
        t0,
        points,
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
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    caller.require_metrics()?;
    let mut conn = state.read_db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let ids = match &scope {
        Scope::All => None,
        Scope::Only(ids) => Some(ids.as_slice()),
    };
    let changes = db::validators::changes(&mut conn, ids).await?;
    let validator = Validator::new(&req, conditional::media(format), changes, ids);
    if let Some(not_modified) = validator.not_modified(&req) {
        return Ok(not_modified);
    }
    let data = db::metrics::read_portfolio(&mut conn, scope).await?;
    validator.tag(match format {
        Format::Csv => export::csv_rows(data),
        Format::Json => Ok(HttpResponse::Ok().json(Portfolio { data })),
    })
}
