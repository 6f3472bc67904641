//! Signals of trouble: the facts each rule of `domain::signals` looks at, read for one
//! study or for many at once (the study metrics and the portfolio), and the leading
//! indicators (forecast headline and signals) assembled from them.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::sql_types::{Array, Date};
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::db::forecast;
use crate::db::snapshot;
use crate::db::studies::Study;
use crate::db::studies::{OfStudy, study_ids};
use crate::domain::ids::StudyId;
use crate::domain::signals::{self, Signal, StudyFacts};
use crate::error::ApiError;

type SqlUuid = diesel::sql_types::Uuid;

/// The milestones the rule may name: live, not done, with a baseline. (`file` binds
/// `as_of` as $2 for every query; the milestone rule judges dates itself, so this one
/// leaves it unused.)
const MILESTONES: &str = "
    SELECT study_id, id, name, status, baseline_date, forecast_date, actual_date
    FROM milestones
    WHERE study_id = ANY($1) AND deleted_at IS NULL AND actual_date IS NULL
      AND status NOT IN ('completed', 'cancelled') AND baseline_date IS NOT NULL
    ORDER BY id";

/// The live budget lines with their live expenses incurred by `as_of` ($2).
const BUDGET_LINES: &str = "
    SELECT b.study_id, b.id, b.description, b.planned_amount AS planned,
           coalesce((SELECT sum(x.amount) FROM expenses x
                     WHERE x.budget_line_id = b.id AND x.deleted_at IS NULL
                       AND x.incurred_on <= $2), 0) AS actual
    FROM budget_lines b
    WHERE b.study_id = ANY($1) AND b.deleted_at IS NULL
    ORDER BY b.id";

/// Deviations are never deleted; the rule itself decides, the SQL only narrows to the
/// candidates (important, not invalidated, past the window at `as_of`, $2).
const DEVIATIONS: &str = "
    SELECT d.study_id, d.id, d.site_id, d.importance, d.status, d.detected_on, d.reported_on
    FROM deviations d JOIN studies s ON s.id = d.study_id
    WHERE d.study_id = ANY($1) AND d.importance = 'important' AND d.status <> 'invalidated'
      AND d.detected_on + s.deviation_reporting_days < coalesce(d.reported_on, $2)
    ORDER BY d.id";

/// Reads the facts of `sql` over the studies of `all` ($1) at `as_of` ($2), and files
/// each in its study's `list`.
async fn file<T>(
    conn: &mut Conn,
    sql: &'static str,
    as_of: NaiveDate,
    all: &mut HashMap<StudyId, StudyFacts>,
    list: fn(&mut StudyFacts) -> &mut Vec<T>,
) -> Result<(), ApiError>
where
    T: QueryableByName<Pg> + Send + 'static,
{
    let ids: Vec<StudyId> = all.keys().copied().collect();
    let rows: Vec<(OfStudy, T)> = diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Date, _>(as_of)
        .load(conn)
        .await?;
    for (of, row) in rows {
        if let Some(facts) = all.get_mut(&of.study_id) {
            list(facts).push(row);
        }
    }
    Ok(())
}

/// The facts of every given study at `as_of`, with its forecast's headline.
async fn facts(
    conn: &mut Conn,
    studies: &[Study],
    as_of: NaiveDate,
) -> Result<HashMap<StudyId, StudyFacts>, ApiError> {
    let ids = study_ids(studies);
    let forecasts = forecast::forecasts(conn, studies, as_of).await?;
    let mut all: HashMap<StudyId, StudyFacts> = studies
        .iter()
        .zip(&ids)
        .map(|(s, &id)| {
            let headline = forecasts.get(&id).and_then(Option::as_ref);
            let facts = StudyFacts {
                study_id: id,
                currency: s.currency.clone(),
                planned_start: s.planned_start_date,
                planned_end: s.planned_end_date,
                confidence_threshold: s.forecast_confidence_threshold,
                deviation_reporting_days: s.deviation_reporting_days,
                probability_by_planned_end: headline
                    .and_then(|f| f.answer.probability_by_planned_end),
                p50_completion: headline.and_then(|f| f.answer.completion_date.p50),
                sites: Vec::new(),
                milestones: Vec::new(),
                budget_lines: Vec::new(),
                deviations: Vec::new(),
            };
            (id, facts)
        })
        .collect();
    // The forecast's site data, its reports counted up to `as_of` rather than to t0.
    let through = as_of.checked_add_days(Days::new(1)).unwrap_or(as_of);
    for (id, sites) in forecast::site_data(conn, &ids, through).await? {
        if let Some(f) = all.get_mut(&id) {
            f.sites = sites;
        }
    }
    file(conn, MILESTONES, as_of, &mut all, |f| &mut f.milestones).await?;
    file(conn, BUDGET_LINES, as_of, &mut all, |f| &mut f.budget_lines).await?;
    file(conn, DEVIATIONS, as_of, &mut all, |f| &mut f.deviations).await?;
    Ok(all)
}

/// A study's leading indicators: its forecast's headline and its signals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Leading {
    pub forecast_p50_completion_date: Option<NaiveDate>,
    pub probability_by_planned_end: Option<f64>,
    pub signals: Vec<Signal>,
}

/// The leading indicators of every given study at `as_of`, in the caller's transaction.
pub async fn leading(
    conn: &mut Conn,
    studies: &[Study],
    as_of: NaiveDate,
) -> Result<HashMap<StudyId, Leading>, ApiError> {
    Ok(facts(conn, studies, as_of)
        .await?
        .into_iter()
        .map(|(id, facts)| {
            let signals = signals::evaluate(&facts, as_of);
            let leading = Leading {
                forecast_p50_completion_date: facts.p50_completion,
                probability_by_planned_end: facts.probability_by_planned_end,
                signals,
            };
            (id, leading)
        })
        .collect())
}

/// `GET /studies/{id}/signals`, in one REPEATABLE READ, read-only snapshot. `as_of`
/// defaults to the transaction's date.
pub async fn read_signals(
    conn: &mut Conn,
    id: StudyId,
    as_of: Option<NaiveDate>,
) -> Result<Vec<Signal>, ApiError> {
    snapshot!(conn, async move |conn| {
        let (study, as_of) = forecast::study_on(conn, id, as_of).await?;
        let mut all = leading(conn, std::slice::from_ref(&study), as_of).await?;
        Ok(all.remove(&id).map(|l| l.signals).unwrap_or_default())
    })
}
