//! Signals of trouble: the facts each rule of `domain::signals` looks at, read for one
//! study or for many at once (the study metrics and the portfolio), and the leading
//! indicators (forecast headline and signals) assembled from them.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Numeric, Text};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::forecast;
use crate::db::studies::{self, Study};
use crate::domain::enums::{DeviationImportance, DeviationStatus, MilestoneStatus, SiteStatus};
use crate::domain::money::Money;
use crate::domain::policy::Scope;
use crate::domain::signals::{
    self, BudgetLineFacts, DeviationFacts, MilestoneFacts, Signal, SiteFacts, StudyFacts,
};
use crate::error::ApiError;

type SqlUuid = diesel::sql_types::Uuid;

#[derive(QueryableByName)]
struct SiteRow {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    site_number: String,
    #[diesel(sql_type = Text)]
    status: SiteStatus,
    #[diesel(sql_type = Nullable<Date>)]
    activated_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    planned_activation_on: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    enrolled: i64,
}

#[derive(QueryableByName)]
struct MilestoneRow {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    status: MilestoneStatus,
    #[diesel(sql_type = Nullable<Date>)]
    baseline_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    forecast_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    actual_date: Option<NaiveDate>,
}

#[derive(QueryableByName)]
struct BudgetLineRow {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Numeric)]
    planned: Money,
    #[diesel(sql_type = Numeric)]
    actual: Money,
}

#[derive(QueryableByName)]
struct DeviationRow {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    site_id: Uuid,
    #[diesel(sql_type = Text)]
    importance: DeviationImportance,
    #[diesel(sql_type = Text)]
    status: DeviationStatus,
    #[diesel(sql_type = Date)]
    detected_on: NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    reported_on: Option<NaiveDate>,
}

/// The facts of every given study at `as_of`, with its forecast's headline.
async fn facts(
    conn: &mut Conn,
    studies: &[Study],
    as_of: NaiveDate,
) -> Result<HashMap<Uuid, StudyFacts>, ApiError> {
    let ids: Vec<Uuid> = studies.iter().map(|s| s.id.uuid()).collect();
    let forecasts = forecast::forecasts(conn, studies, as_of).await?;
    let mut all: HashMap<Uuid, StudyFacts> = studies
        .iter()
        .map(|s| {
            let headline = forecasts.get(&s.id.uuid()).and_then(Option::as_ref);
            let facts = StudyFacts {
                study_id: s.id.uuid(),
                currency: s.currency.clone(),
                planned_start: s.planned_start_date,
                planned_end: s.planned_end_date,
                confidence_threshold: s.forecast_confidence_threshold,
                deviation_reporting_days: s.deviation_reporting_days,
                probability_by_planned_end: headline
                    .and_then(|f| f.answer.probability_by_planned_end),
                p50_completion: headline.and_then(|f| f.answer.completion_date.p50),
                ..StudyFacts::default()
            };
            (s.id.uuid(), facts)
        })
        .collect();
    let sites: Vec<SiteRow> = diesel::sql_query(
        "SELECT s.study_id, s.id, s.site_number::text AS site_number, s.status, s.activated_on,
                s.planned_activation_on, coalesce(e.enrolled, 0)::int8 AS enrolled
         FROM sites s
         LEFT JOIN (SELECT site_id, sum(enrolled) AS enrolled
                    FROM enrollment_reports
                    WHERE study_id = ANY($1) AND week_start <= $2
                    GROUP BY site_id) e ON e.site_id = s.id
         WHERE s.study_id = ANY($1) AND s.deleted_at IS NULL
           AND s.status IN ('activated', 'enrolling', 'planned', 'selected')
         ORDER BY s.site_number, s.id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Date, _>(as_of)
    .load(conn)
    .await?;
    for r in sites {
        if let Some(f) = all.get_mut(&r.study_id) {
            f.sites.push(SiteFacts {
                id: r.id,
                site_number: r.site_number,
                status: r.status,
                activated_on: r.activated_on,
                planned_activation_on: r.planned_activation_on,
                enrolled: r.enrolled,
            });
        }
    }
    let milestones: Vec<MilestoneRow> = diesel::sql_query(
        "SELECT study_id, id, name, status, baseline_date, forecast_date, actual_date
         FROM milestones
         WHERE study_id = ANY($1) AND deleted_at IS NULL AND actual_date IS NULL
           AND status NOT IN ('completed', 'cancelled') AND baseline_date IS NOT NULL
         ORDER BY id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    for r in milestones {
        if let Some(f) = all.get_mut(&r.study_id) {
            f.milestones.push(MilestoneFacts {
                id: r.id,
                name: r.name,
                status: r.status,
                baseline_date: r.baseline_date,
                forecast_date: r.forecast_date,
                actual_date: r.actual_date,
            });
        }
    }
    let lines: Vec<BudgetLineRow> = diesel::sql_query(
        "SELECT b.study_id, b.id, b.description, b.planned_amount AS planned,
                coalesce((SELECT sum(x.amount) FROM expenses x
                          WHERE x.budget_line_id = b.id AND x.deleted_at IS NULL
                            AND x.incurred_on <= $2), 0) AS actual
         FROM budget_lines b
         WHERE b.study_id = ANY($1) AND b.deleted_at IS NULL
         ORDER BY b.id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Date, _>(as_of)
    .load(conn)
    .await?;
    for r in lines {
        if let Some(f) = all.get_mut(&r.study_id) {
            f.budget_lines.push(BudgetLineFacts {
                id: r.id,
                description: r.description,
                planned: r.planned,
                actual: r.actual,
            });
        }
    }
    // Deviations are never deleted; the rule itself decides, the SQL only narrows to the
    // candidates (important, not invalidated, past the window).
    let deviations: Vec<DeviationRow> = diesel::sql_query(
        "SELECT d.study_id, d.id, d.site_id, d.importance, d.status, d.detected_on, d.reported_on
         FROM deviations d JOIN studies s ON s.id = d.study_id
         WHERE d.study_id = ANY($1) AND d.importance = 'important' AND d.status <> 'invalidated'
           AND d.detected_on + s.deviation_reporting_days < coalesce(d.reported_on, $2)
         ORDER BY d.id",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Date, _>(as_of)
    .load(conn)
    .await?;
    for r in deviations {
        if let Some(f) = all.get_mut(&r.study_id) {
            f.deviations.push(DeviationFacts {
                id: r.id,
                site_id: r.site_id,
                importance: r.importance,
                status: r.status,
                detected_on: r.detected_on,
                reported_on: r.reported_on,
            });
        }
    }
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
) -> Result<HashMap<Uuid, Leading>, ApiError> {
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
    id: Uuid,
    as_of: Option<NaiveDate>,
) -> Result<Vec<Signal>, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let as_of = match as_of {
                Some(day) => day,
                None => forecast::today(conn).await?,
            };
            let study = studies::find(conn, id.into(), &Scope::All).await?;
            let mut all = leading(conn, std::slice::from_ref(&study), as_of).await?;
            Ok(all
                .remove(&study.id.uuid())
                .map(|l| l.signals)
                .unwrap_or_default())
        })
        .await
}
