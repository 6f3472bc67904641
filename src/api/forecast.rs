//! Leading indicators (issue 11): `GET /studies/{id}/enrollment-forecast`, the
//! probabilistic completion forecast, and `GET /studies/{id}/signals`, trouble named
//! before it compounds. The same readers as the study's metrics; JSON or CSV. The model
//! and the rules are in `docs/metrics.md`.

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::export::{self, Format};
use crate::api::metrics::{ForecastParams, StudyAnswer, figures};
use crate::db;
use crate::domain::forecast::EnrollmentForecast;
use crate::domain::signals::Signal;
use crate::domain::validation;
use crate::error::ApiResult;

/// The day of the signals.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignalParams {
    /// The day the rules are evaluated on (default today, UTC).
    pub as_of: Option<NaiveDate>,
}

/// A study's signals, critical first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": [{
    "kind": "site_not_enrolling", "severity": "warning", "subject_type": "site",
    "subject_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f",
    "detail": "site DE-001 was activated 63 days ago and has enrolled nobody",
    "figures": {"site_number": "DE-001", "activated_on": "2026-01-12", "days_since_activation": 63,
                "enrolled": 0, "warning_from_days": 56, "critical_from_days": 112}
}]}))]
pub struct Signals {
    pub data: Vec<Signal>,
}

/// A study's enrollment forecast
///
/// When will the study reach its target enrollment, and how sure is that? The
/// Poisson-gamma recruitment model (Anisimov & Fedorov 2007): each site enrolls as a
/// Poisson process whose rate has a gamma prior shared by the study's sites, updated by
/// the site's own enrollment and exposure; sites not yet active start at their
/// `planned_activation_on`. The future count is approximated by a negative binomial with
/// the same mean and variance. Answers the P10/P50/P90 completion (weeks after t0 and
/// dates), the probability of reaching the target by the planned end, each site's
/// posterior, and the sites left out and why. The prior is `prior_alpha`/`prior_beta`
/// when given, else fitted by maximum likelihood (3 sites with a week of exposure and 5
/// enrolled), else the planning prior; without the data for it, a 422 names what is
/// missing. Definitions: `docs/metrics.md`.
#[utoipa::path(
    operation_id = "read_enrollment_forecast",
    tag = "metrics",
    params(("id" = Uuid, Path, description = "Study id"), ForecastParams),
    responses(
        (status = 200, description = "The forecast", body = EnrollmentForecast, example = json!({
            "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "as_of": "2026-03-02",
            "status": "forecast", "target": 60, "enrolled": 16, "remaining": 44,
            "hyperparameters": {"alpha": 2.0, "beta": 8.0, "source": "given"},
            "sites": [
                {"site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f", "site_number": "A", "status": "enrolling",
                 "enrolled": 12, "exposure_weeks": 20.0, "delay_weeks": 0.0, "posterior_shape": 14.0,
                 "posterior_rate": 28.0, "mean_weekly_rate": 0.5, "activation_overdue": false},
                {"site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e2f", "site_number": "D", "status": "planned",
                 "enrolled": 0, "exposure_weeks": 0.0, "delay_weeks": 4.0, "posterior_shape": 2.0,
                 "posterior_rate": 8.0, "mean_weekly_rate": 0.25, "activation_overdue": false}
            ],
            "excluded_sites": [{"site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e3f", "site_number": "E",
                                "reason": "no_planned_activation"}],
            "completion_weeks": {"p10": 26.622, "p50": 37.02524, "p90": 52.55575},
            "completion_date": {"p10": "2026-09-05", "p50": "2026-11-17", "p90": "2027-03-05"},
            "beyond_horizon": false, "planned_end_date": "2027-03-01",
            "probability_by_planned_end": 0.893231, "expected_enrolled_by_planned_end": 78.76
        })),
        (status = 422, description = "The data for a prior is missing: `errors` names each missing piece", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/studies/{id}/enrollment-forecast")]
pub async fn enrollment_forecast(
    answer: StudyAnswer,
    params: web::Query<ForecastParams>,
) -> ApiResult<HttpResponse> {
    let (as_of, prior) = params.checked()?;
    let read =
        async |conn: &mut db::Conn, id| db::forecast::read_forecast(conn, id, as_of, prior).await;
    answer.answer(read, figures).await
}

/// A study's signals
///
/// Trouble named while it is still small, computed fresh at `as_of` (default today,
/// UTC), critical first, each with the numbers behind it: `completion_at_risk` (the
/// probability of the target by the planned end below the study's
/// `forecast_confidence_threshold`; critical below half of it), `site_not_enrolling`
/// (active 8 weeks with nobody enrolled; 16), `site_activation_overdue` (planned
/// activation passed; by more than 28 days), `milestone_slipping` (forecast more than 14
/// days after baseline; baseline passed and not done), `budget_overburn` (spend above the
/// planned amount x elapsed share of the planned duration x 1.10; x 1.25), and
/// `deviation_reporting_overdue` (critical: an important deviation reported late).
/// Rules and reasons: `docs/metrics.md`.
#[utoipa::path(
    operation_id = "read_study_signals",
    tag = "metrics",
    params(("id" = Uuid, Path, description = "Study id"), SignalParams),
    responses((status = 200, description = "The study's signals", body = Signals)),
)]
#[get("/studies/{id}/signals")]
pub async fn signals(
    answer: StudyAnswer,
    params: web::Query<SignalParams>,
) -> ApiResult<HttpResponse> {
    validation::date_param("as_of", params.as_of)?;
    let as_of = params.as_of;
    let read = async |conn: &mut db::Conn, id| db::signals::read_signals(conn, id, as_of).await;
    answer
        .answer(read, |data, format| match format {
            Format::Csv => export::csv_rows(data),
            Format::Json => Ok(HttpResponse::Ok().json(Signals { data })),
        })
        .await
}
