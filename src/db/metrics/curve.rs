//! A study's weekly enrollment curve, with the forecast's columns from t0 on: one
//! snapshot, like the dashboard.

use chrono::NaiveDate;

use crate::db::metrics::queries::{WeekRow, now, plan, weekly_enrollment};
use crate::db::studies::{self, Study};
use crate::db::{Conn, snapshot};
use crate::domain::ids::StudyId;
use crate::domain::metrics as formula;
use crate::domain::metrics::answers::EnrollmentCurveWeek;
use crate::domain::policy::Scope;
use crate::error::ApiError;

/// A study's weekly enrollment curve, in one snapshot like its dashboard.
pub async fn read_enrollment_curve(
    conn: &mut Conn,
    id: StudyId,
) -> Result<Vec<EnrollmentCurveWeek>, ApiError> {
    snapshot!(conn, async move |conn| {
        let today = now(conn).await?.date_naive();
        let study = studies::find(conn, id, &Scope::All).await?;
        enrollment_curve(conn, &study, today).await
    })
}

/// The enrollment curve at `as_of` with the forecast's columns, and what the chart needs.
#[derive(Debug, Clone)]
pub struct CurveAt {
    pub study: Study,
    /// The `as_of` asked for (default today, UTC): the curve's "current" week is its week.
    pub as_of: NaiveDate,
    pub rows: Vec<EnrollmentCurveWeek>,
    /// The forecast behind the forecast columns; `None` when it lacks data.
    pub forecast: Option<crate::domain::forecast::Forecasted>,
}

/// A study's weekly curve as of `as_of` (default: today), with `forecast_p10/p50/p90`
/// on the weeks from t0 on, in one snapshot. `prior` as for the forecast; without one the
/// prior is fitted or planned, and a study lacking the data for either gets no forecast
/// columns (the curve itself still answers).
pub async fn read_enrollment_curve_at(
    conn: &mut Conn,
    id: StudyId,
    as_of: Option<NaiveDate>,
    prior: Option<(f64, f64)>,
) -> Result<CurveAt, ApiError> {
    snapshot!(conn, async move |conn| {
        let as_of = match as_of {
            Some(day) => day,
            None => now(conn).await?.date_naive(),
        };
        let study = studies::find(conn, id, &Scope::All).await?;
        let mut rows = enrollment_curve(conn, &study, as_of).await?;
        let forecast = match crate::db::forecast::forecast_of(conn, &study, as_of, prior).await {
            Ok(f) => Some(f),
            Err(ApiError::Validation(_)) => None,
            Err(other) => return Err(other),
        };
        if let Some(f) = &forecast {
            for row in &mut rows {
                let [p10, p50, p90] = forecast_columns(f, row.week_start);
                row.forecast_p10 = p10;
                row.forecast_p50 = p50;
                row.forecast_p90 = p90;
            }
        }
        Ok(CurveAt {
            study,
            as_of,
            rows,
            forecast,
        })
    })
}

/// The forecast columns of the week starting `week_start`: none before t0; else, with
/// x = the weeks from t0 to the week's end, enrolled-so-far + the quantiles of N(x).
pub fn forecast_columns(
    f: &crate::domain::forecast::Forecasted,
    week_start: NaiveDate,
) -> [Option<i64>; 3] {
    if week_start < f.t0 {
        return [None; 3];
    }
    let x = ((week_start - f.t0).num_days() / 7 + 1) as f64;
    crate::domain::forecast::QUANTILES
        .map(|q| Some(f.answer.enrolled + f.model.count_quantile(x, q)))
}

/// The weekly curve of one study: from the earlier of its first reported week and the
/// week of its planned start, to the later of the current week and the week of its planned
/// end. Weeks without reports have 0; weeks after the current one have no actual figures.
async fn enrollment_curve(
    conn: &mut Conn,
    study: &Study,
    today: NaiveDate,
) -> Result<Vec<EnrollmentCurveWeek>, ApiError> {
    let weeks = weekly_enrollment(conn, study.id).await?;
    let plan = plan(conn, study).await?;
    let current = formula::week_monday(today);
    let first = [
        <[WeekRow]>::first(&weeks).map(|w| w.week_start),
        study.planned_start_date.map(formula::week_monday),
    ]
    .into_iter()
    .flatten()
    .min();
    let Some(first) = first else {
        // No report and no planned start: no curve to draw.
        return Ok(Vec::new());
    };
    let last = [
        Some(current),
        study.planned_end_date.map(formula::week_monday),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(current);
    let mut reported = weeks.into_iter().peekable();
    let mut cumulative = 0i64;
    let mut rows = Vec::new();
    let mut monday = first;
    while monday <= last {
        let week_end = formula::week_sunday(monday);
        let planned_cumulative = plan
            .as_ref()
            .zip(week_end)
            .map(|(plan, end)| plan.cumulative(end));
        let row = if monday <= current {
            let week = reported.next_if(|w| w.week_start == monday);
            let (enrolled, screened, screen_failed) = week
                .map(|w| (w.enrolled, w.screened, w.screen_failed))
                .unwrap_or_default();
            cumulative += enrolled;
            EnrollmentCurveWeek {
                week_start: monday,
                week_end,
                enrolled: Some(enrolled),
                cumulative_enrolled: Some(cumulative),
                planned_cumulative,
                screened: Some(screened),
                screen_failed: Some(screen_failed),
                forecast_p10: None,
                forecast_p50: None,
                forecast_p90: None,
            }
        } else {
            EnrollmentCurveWeek {
                week_start: monday,
                week_end,
                enrolled: None,
                cumulative_enrolled: None,
                planned_cumulative,
                screened: None,
                screen_failed: None,
                forecast_p10: None,
                forecast_p50: None,
                forecast_p90: None,
            }
        };
        rows.push(row);
        let Some(next) = monday.checked_add_days(chrono::Days::new(7)) else {
            break;
        };
        monday = next;
    }
    Ok(rows)
}
