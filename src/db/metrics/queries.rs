//! The dashboards' SQL: aggregate queries over the committed data (no row of study data
//! leaves the database, only sums and counts). Each aggregate takes a list of study ids and
//! groups by study, so the study dashboard and the portfolio share the same SQL; a few more
//! read one study for its dashboard only. The caller runs them in one snapshot.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Date, Double, Integer, Nullable, Numeric, Text, Timestamptz,
};
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::db::studies::OfStudy;
use crate::db::studies::Study;
use crate::domain::enums::DeviationCategory;
use crate::domain::ids::{SiteId, StudyId};
use crate::domain::metrics::answers::{DeviationsByCategory, SiteDeviations};
use crate::domain::metrics::{self as formula, Plan};
use crate::domain::money::Money;
use crate::domain::policy::Scope;
use crate::error::ApiError;

type SqlUuid = diesel::sql_types::Uuid;

/// The time of the data read: the `as_of` of an answer. On the primary that is the
/// transaction's timestamp; on a streaming replica (`TRIALOPS_READ_DATABASE_URL`) it is the
/// commit time of the last transaction the replica replayed, which is how old the data is.
pub async fn now(conn: &mut Conn) -> Result<DateTime<Utc>, ApiError> {
    Ok(diesel::sql_query(
        "SELECT coalesce(CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END,
                         now()) AS as_of",
    )
    .get_result::<AsOf>(conn)
    .await?
    .as_of)
}

#[derive(QueryableByName)]
pub struct AsOf {
    #[diesel(sql_type = Timestamptz)]
    pub as_of: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------
// Aggregates, one row per study.

/// A grouped aggregate's rows by study; a study without rows has none here (its zeros are
/// the aggregate's `Default`).
fn by_study<T>(rows: Vec<(OfStudy, T)>) -> HashMap<StudyId, T> {
    rows.into_iter()
        .map(|(of, row)| (of.study_id, row))
        .collect()
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct EnrollmentAgg {
    #[diesel(sql_type = BigInt)]
    pub reports: i64,
    #[diesel(sql_type = BigInt)]
    pub enrolled: i64,
    #[diesel(sql_type = BigInt)]
    pub screened: i64,
    #[diesel(sql_type = BigInt)]
    pub screen_failed: i64,
    #[diesel(sql_type = BigInt)]
    pub discontinued: i64,
    #[diesel(sql_type = BigInt)]
    pub completed: i64,
    #[diesel(sql_type = BigInt)]
    pub window_enrolled: i64,
    #[diesel(sql_type = Nullable<Date>)]
    pub reached_week: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub reached_week_buffered: Option<NaiveDate>,
}

/// Sums of the weekly reports, the enrollment of the velocity window, and the first week
/// whose cumulative enrollment reached the target (and the buffered target, computed as
/// `domain::metrics::buffered_target` does).
pub async fn enrollment(
    conn: &mut Conn,
    ids: &[StudyId],
    today: NaiveDate,
) -> Result<HashMap<StudyId, EnrollmentAgg>, ApiError> {
    let (first, last) = formula::velocity_window(today);
    let rows: Vec<(OfStudy, EnrollmentAgg)> = diesel::sql_query(
        "WITH weekly AS (
             SELECT study_id, week_start, count(*) AS reports,
                    sum(enrolled) AS enrolled, sum(screened) AS screened,
                    sum(screen_failed) AS screen_failed, sum(discontinued) AS discontinued,
                    sum(completed) AS completed,
                    sum(sum(enrolled)) OVER (PARTITION BY study_id ORDER BY week_start) AS cumulative
             FROM enrollment_reports
             WHERE study_id = ANY($1)
             GROUP BY study_id, week_start)
         SELECT w.study_id, sum(w.reports)::int8 AS reports, sum(w.enrolled)::int8 AS enrolled,
                sum(w.screened)::int8 AS screened, sum(w.screen_failed)::int8 AS screen_failed,
                sum(w.discontinued)::int8 AS discontinued, sum(w.completed)::int8 AS completed,
                coalesce(sum(w.enrolled) FILTER (WHERE w.week_start BETWEEN $2 AND $3), 0)::int8
                    AS window_enrolled,
                min(w.week_start) FILTER (WHERE s.target_enrollment > 0
                    AND w.cumulative >= s.target_enrollment) AS reached_week,
                min(w.week_start) FILTER (WHERE s.target_enrollment > 0
                    AND w.cumulative >= (s.target_enrollment::int8 * (100 + s.enrollment_buffer_pct) + 99) / 100)
                    AS reached_week_buffered
         FROM weekly w JOIN studies s ON s.id = w.study_id
         GROUP BY w.study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Date, _>(first)
    .bind::<Date, _>(last)
    .load(conn)
    .await?;
    Ok(by_study(rows))
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct SiteAgg {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub planned: i64,
    #[diesel(sql_type = BigInt)]
    pub selected: i64,
    #[diesel(sql_type = BigInt)]
    pub activated: i64,
    #[diesel(sql_type = BigInt)]
    pub enrolling: i64,
    #[diesel(sql_type = BigInt)]
    pub closed_to_enrollment: i64,
    #[diesel(sql_type = BigInt)]
    pub closed: i64,
    #[diesel(sql_type = BigInt)]
    pub terminated: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub mean_activation_lag_days: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub with_activation_lag: i64,
}

pub async fn sites(
    conn: &mut Conn,
    ids: &[StudyId],
) -> Result<HashMap<StudyId, SiteAgg>, ApiError> {
    let rows: Vec<(OfStudy, SiteAgg)> = diesel::sql_query(
        "SELECT study_id, count(*) AS total,
                count(*) FILTER (WHERE status = 'planned') AS planned,
                count(*) FILTER (WHERE status = 'selected') AS selected,
                count(*) FILTER (WHERE status = 'activated') AS activated,
                count(*) FILTER (WHERE status = 'enrolling') AS enrolling,
                count(*) FILTER (WHERE status = 'closed_to_enrollment') AS closed_to_enrollment,
                count(*) FILTER (WHERE status = 'closed') AS closed,
                count(*) FILTER (WHERE status = 'terminated') AS terminated,
                avg(activated_on - irb_approved_on)::float8 AS mean_activation_lag_days,
                count(activated_on - irb_approved_on) AS with_activation_lag
         FROM sites
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    Ok(by_study(rows))
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct MilestoneAgg {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub completed: i64,
    #[diesel(sql_type = BigInt)]
    pub overdue: i64,
    #[diesel(sql_type = BigInt)]
    pub at_risk: i64,
    #[diesel(sql_type = BigInt)]
    pub completed_judged: i64,
    #[diesel(sql_type = BigInt)]
    pub completed_on_time: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub mean_slippage_days: Option<f64>,
}

/// `overdue` is `domain::milestones::schedule` in SQL (as the milestone list's filter).
pub async fn milestones(
    conn: &mut Conn,
    ids: &[StudyId],
    today: NaiveDate,
) -> Result<HashMap<StudyId, MilestoneAgg>, ApiError> {
    let rows: Vec<(OfStudy, MilestoneAgg)> = diesel::sql_query(
        "SELECT study_id, count(*) AS total,
                count(*) FILTER (WHERE status = 'completed') AS completed,
                count(*) FILTER (WHERE actual_date IS NULL
                    AND status NOT IN ('completed', 'cancelled')
                    AND coalesce(forecast_date, baseline_date) < $2) AS overdue,
                count(*) FILTER (WHERE status = 'at_risk') AS at_risk,
                count(*) FILTER (WHERE status = 'completed' AND actual_date IS NOT NULL
                    AND baseline_date IS NOT NULL) AS completed_judged,
                count(*) FILTER (WHERE status = 'completed' AND actual_date <= baseline_date)
                    AS completed_on_time,
                (avg(coalesce(actual_date, forecast_date) - baseline_date)
                    FILTER (WHERE status <> 'cancelled'))::float8 AS mean_slippage_days
         FROM milestones
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Date, _>(today)
    .load(conn)
    .await?;
    Ok(by_study(rows))
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct BudgetLineAgg {
    #[diesel(sql_type = Numeric)]
    pub planned: Money,
    #[diesel(sql_type = Numeric)]
    pub committed: Money,
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct ExpenseAgg {
    #[diesel(sql_type = BigInt)]
    pub expenses: i64,
    #[diesel(sql_type = Numeric)]
    pub actual: Money,
    #[diesel(sql_type = Numeric)]
    pub burn_window: Money,
}

pub async fn budget(
    conn: &mut Conn,
    ids: &[StudyId],
    today: NaiveDate,
) -> Result<
    (
        HashMap<StudyId, BudgetLineAgg>,
        HashMap<StudyId, ExpenseAgg>,
    ),
    ApiError,
> {
    let lines: Vec<(OfStudy, BudgetLineAgg)> = diesel::sql_query(
        "SELECT study_id, sum(planned_amount) AS planned, sum(committed_amount) AS committed
         FROM budget_lines
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    let (from, until) = formula::burn_window(today);
    let expenses: Vec<(OfStudy, ExpenseAgg)> = diesel::sql_query(
        "SELECT study_id, count(*) AS expenses, sum(amount) AS actual,
                coalesce(sum(amount) FILTER (WHERE incurred_on >= $2 AND incurred_on < $3), 0)
                    AS burn_window
         FROM expenses
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Date, _>(from)
    .bind::<Date, _>(until)
    .load(conn)
    .await?;
    Ok((by_study(lines), by_study(expenses)))
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct RiskAgg {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub open: i64,
    #[diesel(sql_type = BigInt)]
    pub low: i64,
    #[diesel(sql_type = BigInt)]
    pub medium: i64,
    #[diesel(sql_type = BigInt)]
    pub high: i64,
    #[diesel(sql_type = BigInt)]
    pub escalated: i64,
    #[diesel(sql_type = BigInt)]
    pub reviews_overdue: i64,
}

pub async fn risks(
    conn: &mut Conn,
    ids: &[StudyId],
    today: NaiveDate,
) -> Result<HashMap<StudyId, RiskAgg>, ApiError> {
    let rows: Vec<(OfStudy, RiskAgg)> = diesel::sql_query(
        "SELECT study_id, count(*) AS total,
                count(*) FILTER (WHERE status <> 'closed') AS open,
                count(*) FILTER (WHERE status <> 'closed' AND score < $2) AS low,
                count(*) FILTER (WHERE status <> 'closed' AND score >= $2 AND score < $3) AS medium,
                count(*) FILTER (WHERE status <> 'closed' AND score >= $3) AS high,
                count(*) FILTER (WHERE status = 'escalated') AS escalated,
                count(*) FILTER (WHERE status <> 'closed' AND review_due_on < $4) AS reviews_overdue
         FROM risks
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Integer, _>(formula::RISK_MEDIUM_FROM)
    .bind::<Integer, _>(formula::RISK_HIGH_FROM)
    .bind::<Date, _>(today)
    .load(conn)
    .await?;
    Ok(by_study(rows))
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct DeviationAgg {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub important: i64,
    #[diesel(sql_type = BigInt)]
    pub open: i64,
    #[diesel(sql_type = BigInt)]
    pub reporting_overdue: i64,
    #[diesel(sql_type = BigInt)]
    pub invalidated: i64,
}

/// `reporting_overdue` is `domain::deviations::reporting_overdue` in SQL (as the deviation
/// list's filter), with the study's reporting window.
pub async fn deviations(
    conn: &mut Conn,
    ids: &[StudyId],
    today: NaiveDate,
) -> Result<HashMap<StudyId, DeviationAgg>, ApiError> {
    let rows: Vec<(OfStudy, DeviationAgg)> = diesel::sql_query(
        "SELECT d.study_id,
                count(*) FILTER (WHERE d.status <> 'invalidated') AS total,
                count(*) FILTER (WHERE d.status <> 'invalidated' AND d.importance = 'important')
                    AS important,
                count(*) FILTER (WHERE d.status IN ('open', 'under_review', 'capa_in_progress'))
                    AS open,
                count(*) FILTER (WHERE d.status <> 'invalidated' AND d.importance = 'important'
                    AND d.detected_on + s.deviation_reporting_days < coalesce(d.reported_on, $2))
                    AS reporting_overdue,
                count(*) FILTER (WHERE d.status = 'invalidated') AS invalidated
         FROM deviations d JOIN studies s ON s.id = d.study_id
         WHERE d.study_id = ANY($1)
         GROUP BY d.study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Date, _>(today)
    .load(conn)
    .await?;
    Ok(by_study(rows))
}

// ---------------------------------------------------------------------------------------
// Aggregates of one study that only its dashboard shows.

#[derive(QueryableByName)]
pub struct SitePlanRow {
    #[diesel(sql_type = Nullable<Date>)]
    pub start: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    pub target: i64,
}

/// The study's enrollment plan (`Plan::new`): its live sites' targets grouped by the day
/// their ramp starts.
pub async fn plan(conn: &mut Conn, study: &Study) -> Result<Option<Plan>, ApiError> {
    let rows: Vec<SitePlanRow> = diesel::sql_query(
        "SELECT coalesce(activated_on, $2) AS start, sum(target_enrollment)::int8 AS target
         FROM sites
         WHERE study_id = $1 AND deleted_at IS NULL AND target_enrollment IS NOT NULL
         GROUP BY 1",
    )
    .bind::<SqlUuid, _>(study.id)
    .bind::<Nullable<Date>, _>(study.planned_start_date)
    .load(conn)
    .await?;
    let site_targets: Vec<(Option<NaiveDate>, i64)> =
        rows.into_iter().map(|r| (r.start, r.target)).collect();
    Ok(Plan::new(
        study.target_enrollment,
        study.planned_start_date,
        study.planned_end_date,
        &site_targets,
    ))
}

#[derive(QueryableByName)]
pub struct HeatCell {
    #[diesel(sql_type = Integer)]
    pub likelihood: i32,
    #[diesel(sql_type = Integer)]
    pub impact: i32,
    #[diesel(sql_type = BigInt)]
    pub risks: i64,
}

pub async fn heat_map(conn: &mut Conn, study_id: StudyId) -> Result<Vec<Vec<i64>>, ApiError> {
    let cells: Vec<HeatCell> = diesel::sql_query(
        "SELECT likelihood, impact, count(*) AS risks
         FROM risks
         WHERE study_id = $1 AND deleted_at IS NULL AND status <> 'closed'
         GROUP BY likelihood, impact",
    )
    .bind::<SqlUuid, _>(study_id)
    .load(conn)
    .await?;
    let mut map = vec![vec![0i64; 5]; 5];
    for cell in cells {
        // CHECKed to 1..=5; anything else would be skipped rather than panic.
        let (l, i) = (cell.likelihood - 1, cell.impact - 1);
        if let Some(slot) = usize::try_from(l)
            .ok()
            .and_then(|l| map.get_mut(l))
            .and_then(|row| usize::try_from(i).ok().and_then(|i| row.get_mut(i)))
        {
            *slot = cell.risks;
        }
    }
    Ok(map)
}

#[derive(QueryableByName)]
pub struct CategoryCount {
    #[diesel(sql_type = Text)]
    pub category: String,
    #[diesel(sql_type = BigInt)]
    pub deviations: i64,
}

pub async fn deviations_by_category(
    conn: &mut Conn,
    study_id: StudyId,
) -> Result<DeviationsByCategory, ApiError> {
    let rows: Vec<CategoryCount> = diesel::sql_query(
        "SELECT category, count(*) AS deviations
         FROM deviations
         WHERE study_id = $1 AND status <> 'invalidated'
         GROUP BY category",
    )
    .bind::<SqlUuid, _>(study_id)
    .load(conn)
    .await?;
    let mut by = DeviationsByCategory::default();
    for row in rows {
        let Ok(category) = row.category.parse::<DeviationCategory>() else {
            continue;
        };
        *by.slot(category) = row.deviations;
    }
    Ok(by)
}

#[derive(QueryableByName)]
pub struct SiteDeviationRow {
    #[diesel(sql_type = SqlUuid)]
    pub site_id: SiteId,
    #[diesel(sql_type = Text)]
    pub site_number: String,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub important: i64,
    #[diesel(sql_type = BigInt)]
    pub enrolled: i64,
}

pub async fn deviations_by_site(
    conn: &mut Conn,
    study_id: StudyId,
) -> Result<Vec<SiteDeviations>, ApiError> {
    let rows: Vec<SiteDeviationRow> = diesel::sql_query(
        "SELECT s.id AS site_id, s.site_number::text AS site_number,
                coalesce(d.total, 0)::int8 AS total, coalesce(d.important, 0)::int8 AS important,
                coalesce(e.enrolled, 0)::int8 AS enrolled
         FROM sites s
         LEFT JOIN (SELECT site_id, count(*) AS total,
                           count(*) FILTER (WHERE importance = 'important') AS important
                    FROM deviations
                    WHERE study_id = $1 AND status <> 'invalidated'
                    GROUP BY site_id) d ON d.site_id = s.id
         LEFT JOIN (SELECT site_id, sum(enrolled) AS enrolled
                    FROM enrollment_reports
                    WHERE study_id = $1
                    GROUP BY site_id) e ON e.site_id = s.id
         WHERE s.study_id = $1 AND (s.deleted_at IS NULL OR d.total IS NOT NULL)
         ORDER BY s.site_number, s.id",
    )
    .bind::<SqlUuid, _>(study_id)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SiteDeviations {
            site_id: r.site_id,
            site_number: r.site_number,
            deviations: r.total,
            important: r.important,
            enrolled: r.enrolled,
            per_100_enrolled: formula::per_100_enrolled(r.total, r.enrolled),
        })
        .collect())
}

#[derive(QueryableByName)]
pub struct WeekRow {
    #[diesel(sql_type = Date)]
    pub week_start: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub enrolled: i64,
    #[diesel(sql_type = BigInt)]
    pub screened: i64,
    #[diesel(sql_type = BigInt)]
    pub screen_failed: i64,
}

/// The study's weekly sums of its sites' reports, by week.
pub async fn weekly_enrollment(
    conn: &mut Conn,
    study_id: StudyId,
) -> Result<Vec<WeekRow>, ApiError> {
    Ok(diesel::sql_query(
        "SELECT week_start, sum(enrolled)::int8 AS enrolled, sum(screened)::int8 AS screened,
                sum(screen_failed)::int8 AS screen_failed
         FROM enrollment_reports
         WHERE study_id = $1
         GROUP BY week_start
         ORDER BY week_start",
    )
    .bind::<SqlUuid, _>(study_id)
    .load(conn)
    .await?)
}

/// The studies of `scope` that are live, in creation order: the portfolio's rows.
pub async fn visible_studies(conn: &mut Conn, scope: &Scope) -> Result<Vec<Study>, ApiError> {
    use crate::db::schema::studies;
    use diesel::{ExpressionMethods, QueryDsl};
    let mut query = studies::table
        .filter(studies::deleted_at.is_null())
        .order(studies::id.asc())
        .into_boxed();
    if let Scope::Only(ids) = scope {
        query = query.filter(studies::id.eq_any(ids.clone()));
    }
    Ok(query.load(conn).await?)
}
