//! The dashboard figures: aggregate queries over the committed data (no row of study data
//! leaves the database, only sums and counts), the answered shapes, and their assembly
//! with the formulas of `domain::metrics`. Every figure of one answer is read in one
//! REPEATABLE READ, read-only transaction, so they agree with each other and with `as_of`.
//!
//! Each aggregate takes a list of study ids and groups by study, so the study dashboard
//! and the portfolio share the same SQL. Definitions: `docs/metrics.md`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Date, Double, Integer, Nullable, Numeric, Text, Timestamptz,
};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::studies::{self, Study};
use crate::domain::enums::{DeviationCategory, StudyPhase, StudyStatus};
use crate::domain::metrics::{self as formula, Plan, PlanBasis};
use crate::domain::money::Money;
use crate::domain::policy::Scope;
use crate::domain::signals::SignalSummary;
use crate::error::ApiError;

type SqlUuid = diesel::sql_types::Uuid;

/// The time of the data read: the `as_of` of an answer. On the primary that is the
/// transaction's timestamp; on a streaming replica (`TRIALOPS_READ_DATABASE_URL`) it is the
/// commit time of the last transaction the replica replayed, which is how old the data is.
async fn now(conn: &mut Conn) -> Result<DateTime<Utc>, ApiError> {
    Ok(diesel::sql_query(
        "SELECT coalesce(CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END,
                         now()) AS as_of",
    )
    .get_result::<AsOf>(conn)
    .await?
    .as_of)
}

/// A study's dashboard, read in one REPEATABLE READ, READ ONLY transaction: every figure
/// comes from the same snapshot, taken at `as_of`. The caller has checked that it may read
/// the study; a study deleted since is a 404.
pub async fn read_study_metrics(conn: &mut Conn, id: Uuid) -> Result<StudyMetrics, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let as_of = now(conn).await?;
            let study = studies::find(conn, id, &Scope::All).await?;
            study_metrics(conn, &study, as_of).await
        })
        .await
}

/// A study's weekly enrollment curve, in one snapshot like its dashboard.
pub async fn read_enrollment_curve(
    conn: &mut Conn,
    id: Uuid,
) -> Result<Vec<EnrollmentCurveWeek>, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let today = now(conn).await?.date_naive();
            let study = studies::find(conn, id, &Scope::All).await?;
            enrollment_curve(conn, &study, today).await
        })
        .await
}

/// The portfolio rows of the live studies in `scope`, in one snapshot.
pub async fn read_portfolio(conn: &mut Conn, scope: Scope) -> Result<Vec<PortfolioRow>, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let as_of = now(conn).await?;
            let studies = visible_studies(conn, &scope).await?;
            portfolio(conn, &studies, as_of).await
        })
        .await
}

#[derive(QueryableByName)]
struct AsOf {
    #[diesel(sql_type = Timestamptz)]
    as_of: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------
// Aggregates, one row per study.

#[derive(Debug, Clone, Default, QueryableByName)]
struct EnrollmentAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    reports: i64,
    #[diesel(sql_type = BigInt)]
    enrolled: i64,
    #[diesel(sql_type = BigInt)]
    screened: i64,
    #[diesel(sql_type = BigInt)]
    screen_failed: i64,
    #[diesel(sql_type = BigInt)]
    discontinued: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    window_enrolled: i64,
    #[diesel(sql_type = Nullable<Date>)]
    reached_week: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    reached_week_buffered: Option<NaiveDate>,
}

/// Sums of the weekly reports, the enrollment of the velocity window, and the first week
/// whose cumulative enrollment reached the target (and the buffered target, computed as
/// `domain::metrics::buffered_target` does).
async fn enrollment(
    conn: &mut Conn,
    ids: &[Uuid],
    today: NaiveDate,
) -> Result<HashMap<Uuid, EnrollmentAgg>, ApiError> {
    let (first, last) = formula::velocity_window(today);
    let rows: Vec<EnrollmentAgg> = diesel::sql_query(
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
    Ok(rows.into_iter().map(|r| (r.study_id, r)).collect())
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct SiteAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    planned: i64,
    #[diesel(sql_type = BigInt)]
    selected: i64,
    #[diesel(sql_type = BigInt)]
    activated: i64,
    #[diesel(sql_type = BigInt)]
    enrolling: i64,
    #[diesel(sql_type = BigInt)]
    closed_to_enrollment: i64,
    #[diesel(sql_type = BigInt)]
    closed: i64,
    #[diesel(sql_type = BigInt)]
    terminated: i64,
    #[diesel(sql_type = Nullable<Double>)]
    mean_activation_lag_days: Option<f64>,
    #[diesel(sql_type = BigInt)]
    with_activation_lag: i64,
}

async fn sites(conn: &mut Conn, ids: &[Uuid]) -> Result<HashMap<Uuid, SiteAgg>, ApiError> {
    let rows: Vec<SiteAgg> = diesel::sql_query(
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
    Ok(rows.into_iter().map(|r| (r.study_id, r)).collect())
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct MilestoneAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    overdue: i64,
    #[diesel(sql_type = BigInt)]
    at_risk: i64,
    #[diesel(sql_type = BigInt)]
    completed_judged: i64,
    #[diesel(sql_type = BigInt)]
    completed_on_time: i64,
    #[diesel(sql_type = Nullable<Double>)]
    mean_slippage_days: Option<f64>,
}

/// `overdue` is `domain::milestones::schedule` in SQL (as the milestone list's filter).
async fn milestones(
    conn: &mut Conn,
    ids: &[Uuid],
    today: NaiveDate,
) -> Result<HashMap<Uuid, MilestoneAgg>, ApiError> {
    let rows: Vec<MilestoneAgg> = diesel::sql_query(
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
    Ok(rows.into_iter().map(|r| (r.study_id, r)).collect())
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct BudgetLineAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = Numeric)]
    planned: Money,
    #[diesel(sql_type = Numeric)]
    committed: Money,
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct ExpenseAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    expenses: i64,
    #[diesel(sql_type = Numeric)]
    actual: Money,
    #[diesel(sql_type = Numeric)]
    burn_window: Money,
}

async fn budget(
    conn: &mut Conn,
    ids: &[Uuid],
    today: NaiveDate,
) -> Result<(HashMap<Uuid, BudgetLineAgg>, HashMap<Uuid, ExpenseAgg>), ApiError> {
    let lines: Vec<BudgetLineAgg> = diesel::sql_query(
        "SELECT study_id, sum(planned_amount) AS planned, sum(committed_amount) AS committed
         FROM budget_lines
         WHERE study_id = ANY($1) AND deleted_at IS NULL
         GROUP BY study_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    let (from, until) = formula::burn_window(today);
    let expenses: Vec<ExpenseAgg> = diesel::sql_query(
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
    Ok((
        lines.into_iter().map(|r| (r.study_id, r)).collect(),
        expenses.into_iter().map(|r| (r.study_id, r)).collect(),
    ))
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct RiskAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    open: i64,
    #[diesel(sql_type = BigInt)]
    low: i64,
    #[diesel(sql_type = BigInt)]
    medium: i64,
    #[diesel(sql_type = BigInt)]
    high: i64,
    #[diesel(sql_type = BigInt)]
    escalated: i64,
    #[diesel(sql_type = BigInt)]
    reviews_overdue: i64,
}

async fn risks(
    conn: &mut Conn,
    ids: &[Uuid],
    today: NaiveDate,
) -> Result<HashMap<Uuid, RiskAgg>, ApiError> {
    let rows: Vec<RiskAgg> = diesel::sql_query(
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
    Ok(rows.into_iter().map(|r| (r.study_id, r)).collect())
}

#[derive(Debug, Clone, Default, QueryableByName)]
struct DeviationAgg {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    important: i64,
    #[diesel(sql_type = BigInt)]
    open: i64,
    #[diesel(sql_type = BigInt)]
    reporting_overdue: i64,
    #[diesel(sql_type = BigInt)]
    invalidated: i64,
}

/// `reporting_overdue` is `domain::deviations::reporting_overdue` in SQL (as the deviation
/// list's filter), with the study's reporting window.
async fn deviations(
    conn: &mut Conn,
    ids: &[Uuid],
    today: NaiveDate,
) -> Result<HashMap<Uuid, DeviationAgg>, ApiError> {
    let rows: Vec<DeviationAgg> = diesel::sql_query(
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
    Ok(rows.into_iter().map(|r| (r.study_id, r)).collect())
}

// ---------------------------------------------------------------------------------------
// Aggregates of one study that only its dashboard shows.

#[derive(QueryableByName)]
struct SitePlanRow {
    #[diesel(sql_type = Nullable<Date>)]
    start: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    target: i64,
}

/// The study's enrollment plan (`Plan::new`): its live sites' targets grouped by the day
/// their ramp starts.
async fn plan(conn: &mut Conn, study: &Study) -> Result<Option<Plan>, ApiError> {
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
struct HeatCell {
    #[diesel(sql_type = Integer)]
    likelihood: i32,
    #[diesel(sql_type = Integer)]
    impact: i32,
    #[diesel(sql_type = BigInt)]
    risks: i64,
}

async fn heat_map(conn: &mut Conn, study_id: Uuid) -> Result<Vec<Vec<i64>>, ApiError> {
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
struct CategoryCount {
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = BigInt)]
    deviations: i64,
}

async fn deviations_by_category(
    conn: &mut Conn,
    study_id: Uuid,
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
struct SiteDeviationRow {
    #[diesel(sql_type = SqlUuid)]
    site_id: Uuid,
    #[diesel(sql_type = Text)]
    site_number: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    important: i64,
    #[diesel(sql_type = BigInt)]
    enrolled: i64,
}

async fn deviations_by_site(
    conn: &mut Conn,
    study_id: Uuid,
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
struct WeekRow {
    #[diesel(sql_type = Date)]
    week_start: NaiveDate,
    #[diesel(sql_type = BigInt)]
    enrolled: i64,
    #[diesel(sql_type = BigInt)]
    screened: i64,
    #[diesel(sql_type = BigInt)]
    screen_failed: i64,
}

// ---------------------------------------------------------------------------------------
// The answers.

/// Enrollment: counts summed over every weekly report of the study's sites, the 4-week
/// velocity, and where it leads.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EnrollmentMetrics {
    /// The study's `target_enrollment` (participants).
    pub target: i32,
    /// The study's `enrollment_buffer_pct` (percent).
    pub buffer_pct: i32,
    /// `ceil(target x (100 + buffer_pct) / 100)`: the target with the plan's buffer
    /// (participants).
    pub buffered_target: i64,
    /// Sum of `enrolled` over every weekly report (participants).
    pub enrolled: i64,
    /// Sum of `screened` over every weekly report (participants).
    pub screened: i64,
    /// Sum of `screen_failed` over every weekly report (participants).
    pub screen_failed: i64,
    /// Sum of `discontinued` over every weekly report (participants).
    pub discontinued: i64,
    /// Sum of `completed` over every weekly report (participants).
    pub completed: i64,
    /// `screen_failed / screened`, a fraction 0..1 (4 places); null when nobody was
    /// screened.
    pub screen_fail_rate: Option<f64>,
    /// `enrolled / target x 100` (percent, 2 places, may exceed 100); null when the target
    /// is 0.
    pub percent_of_target: Option<f64>,
    /// `max(target - enrolled, 0)` (participants).
    pub remaining: i64,
    /// Enrolled in the last 4 complete ISO weeks (`velocity_window_start` to
    /// `velocity_window_end`; the current week is not complete) / 4, participants per
    /// week (2 places). Weeks without reports count as 0. Null when the study has no
    /// enrollment report at all.
    pub velocity_4w: Option<f64>,
    /// Monday of the first week of the velocity window.
    pub velocity_window_start: NaiveDate,
    /// Sunday of the last week of the velocity window.
    pub velocity_window_end: Option<NaiveDate>,
    /// The Sunday of the ISO week in which cumulative enrollment reaches `target`: the
    /// week it did if it already has, else counting the current week as the first, week
    /// `ceil(remaining / velocity_4w)`. Null when the target is 0, or the velocity is null
    /// or 0.
    pub projected_completion_date: Option<NaiveDate>,
    /// The same projection for `buffered_target`.
    pub projected_completion_date_with_buffer: Option<NaiveDate>,
    /// The study's `planned_end_date`.
    pub planned_end_date: Option<NaiveDate>,
    /// `projected_completion_date_with_buffer <= planned_end_date`. Null without a planned
    /// end, with a target of 0, or with no enrollment report; false when reports exist but
    /// the velocity is 0 and participants remain.
    pub on_track: Option<bool>,
    /// Where the planned curve comes from (`per_site` when a live site has a
    /// `target_enrollment`, else `linear`); null when the study lacks the planned dates a
    /// plan needs.
    pub plan_basis: Option<PlanBasis>,
    /// Participants planned to be enrolled by today (2 places): see
    /// `GET /studies/{id}/enrollment-curve`. Null without a plan.
    pub planned_to_date: Option<f64>,
}

/// Live sites by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct SitesByStatus {
    pub planned: i64,
    pub selected: i64,
    pub activated: i64,
    pub enrolling: i64,
    pub closed_to_enrollment: i64,
    pub closed: i64,
    pub terminated: i64,
}

/// Sites (live, i.e. not deleted).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SiteMetrics {
    /// Live sites (count).
    pub total: i64,
    /// Live sites per status (counts; every status present).
    pub by_status: SitesByStatus,
    /// Mean of `activated_on - irb_approved_on` over live sites with both dates (days, 2
    /// places); null when no site has both.
    pub mean_activation_lag_days: Option<f64>,
    /// Live sites with both dates, the mean's sample (count).
    pub sites_with_activation_lag: i64,
}

/// Milestones (live).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MilestoneMetrics {
    /// Live milestones (count).
    pub total: i64,
    /// Status `completed` (count).
    pub completed: i64,
    /// Not reached (no `actual_date`), neither completed nor cancelled, and due (forecast,
    /// else baseline) before today (count; the milestone's own `overdue`).
    pub overdue: i64,
    /// Status `at_risk` (count).
    pub at_risk: i64,
    /// Completed milestones with `actual_date <= baseline_date`, over completed milestones
    /// with both dates (fraction 0..1, 4 places); null when there is none.
    pub on_time_rate: Option<f64>,
    /// Completed milestones with both dates: the rate's denominator (count).
    pub completed_with_dates: i64,
    /// Mean `slippage_days` (actual, else forecast, minus baseline) over live milestones
    /// that are not cancelled and have it (days, 2 places; negative = early); null when
    /// none has it.
    pub mean_slippage_days: Option<f64>,
}

/// Budget, exact decimals in the study's currency (strings with two places).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BudgetMetrics {
    /// The study's currency (ISO 4217); every amount is in it.
    pub currency: String,
    /// Sum of live budget lines' `planned_amount`.
    pub planned: Money,
    /// Sum of live budget lines' `committed_amount`.
    pub committed: Money,
    /// Sum of live expenses' `amount`.
    pub actual: Money,
    /// `planned - actual` (negative when overspent).
    pub remaining: Money,
    /// Live expenses incurred in the 3 full calendar months before this month
    /// (`burn_window_start` to `burn_window_end`, exclusive) / 3, rounded to the cent.
    /// Null when the study has no expense at all.
    pub monthly_burn: Option<Money>,
    /// First day of the burn window.
    pub burn_window_start: NaiveDate,
    /// First day after the burn window (the first day of the current month).
    pub burn_window_end: NaiveDate,
    /// `actual + monthly_burn x months_left`, `months_left` = days from today to the
    /// planned end date (0 once passed) / 30.436875, rounded to the cent. Null without a
    /// burn or a planned end date.
    pub estimate_at_completion: Option<Money>,
    /// `planned - estimate_at_completion` (positive = expected under budget). Null when the
    /// estimate is.
    pub variance_at_completion: Option<Money>,
    /// `actual / planned x 100` (percent, 2 places); null when nothing is planned.
    pub pct_spent: Option<f64>,
    /// `(today - planned_start_date) / (planned_end_date - planned_start_date) x 100`,
    /// clamped to 0..100 (percent, 2 places); null without both dates or when the end is
    /// not after the start. Compare with `pct_spent`.
    pub pct_time_elapsed: Option<f64>,
}

/// Open risks by score band.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct RiskBands {
    /// Score 1..=19.
    pub low: i64,
    /// Score 20..=44.
    pub medium: i64,
    /// Score 45..=125 (45 is the default escalation threshold).
    pub high: i64,
}

/// The risk register (live risks). "Open" is every status but `closed` (`accepted` risks
/// remain on the register).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RiskMetrics {
    /// Live risks (count).
    pub total: i64,
    /// Live risks not `closed` (count).
    pub open: i64,
    /// Open risks per score band (counts).
    pub open_by_band: RiskBands,
    /// Open risks per (likelihood, impact) cell: `heat_map[likelihood - 1][impact - 1]`,
    /// 5 x 5 counts.
    pub heat_map: Vec<Vec<i64>>,
    /// Status `escalated` (count).
    pub escalated: i64,
    /// Open risks whose `review_due_on` is before today (count).
    pub reviews_overdue: i64,
}

/// Deviations by category (counts, `invalidated` excluded; every category present).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct DeviationsByCategory {
    pub informed_consent: i64,
    pub eligibility: i64,
    pub study_procedure: i64,
    pub investigational_product: i64,
    pub safety_reporting: i64,
    pub visit_schedule: i64,
    pub data_management: i64,
    pub privacy: i64,
    pub other: i64,
}

impl DeviationsByCategory {
    fn slot(&mut self, category: DeviationCategory) -> &mut i64 {
        match category {
            DeviationCategory::InformedConsent => &mut self.informed_consent,
            DeviationCategory::Eligibility => &mut self.eligibility,
            DeviationCategory::StudyProcedure => &mut self.study_procedure,
            DeviationCategory::InvestigationalProduct => &mut self.investigational_product,
            DeviationCategory::SafetyReporting => &mut self.safety_reporting,
            DeviationCategory::VisitSchedule => &mut self.visit_schedule,
            DeviationCategory::DataManagement => &mut self.data_management,
            DeviationCategory::Privacy => &mut self.privacy,
            DeviationCategory::Other => &mut self.other,
        }
    }
}

/// One site's deviations.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SiteDeviations {
    pub site_id: Uuid,
    pub site_number: String,
    /// Deviations at the site, `invalidated` excluded (count).
    pub deviations: i64,
    /// Of which `important` (count).
    pub important: i64,
    /// Participants enrolled at the site (sum of its weekly reports).
    pub enrolled: i64,
    /// `deviations / enrolled x 100` (2 places); null when nobody is enrolled there.
    pub per_100_enrolled: Option<f64>,
}

/// Protocol deviations. `invalidated` ones (withdrawn as not being deviations) are left
/// out of every figure but `invalidated`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviationMetrics {
    /// Deviations (count).
    pub total: i64,
    /// Importance `important` (count).
    pub important: i64,
    /// Status `open`, `under_review` or `capa_in_progress` (count).
    pub open: i64,
    /// Important deviations reported (or, unreported, still not reported by today) later
    /// than `deviation_reporting_days` after detection (count; the deviation's own
    /// `reporting_overdue`).
    pub reporting_overdue: i64,
    /// Status `invalidated` (count).
    pub invalidated: i64,
    /// `total / enrollment.enrolled x 100` (2 places); null when nobody is enrolled.
    pub per_100_enrolled: Option<f64>,
    pub by_category: DeviationsByCategory,
    /// Every live site of the study (and any deleted one with deviations), by site number.
    pub by_site: Vec<SiteDeviations>,
}

/// A study's dashboard: every figure computed on read from the committed data, in one
/// consistent snapshot taken at `as_of`. Definitions: `docs/metrics.md`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StudyMetrics {
    pub study_id: Uuid,
    /// The time of the read (the database transaction's timestamp, UTC). Every figure is
    /// as of this instant.
    pub as_of: DateTime<Utc>,
    /// The UTC date of `as_of`: "today" in every date rule (overdue, windows, elapsed).
    pub today: NaiveDate,
    pub enrollment: EnrollmentMetrics,
    pub sites: SiteMetrics,
    pub milestones: MilestoneMetrics,
    pub budget: BudgetMetrics,
    pub risks: RiskMetrics,
    pub deviations: DeviationMetrics,
    /// The P50 completion date of the enrollment forecast at today, with a fitted or
    /// planning prior (`GET /studies/{id}/enrollment-forecast`); null when it has none
    /// (target reached, no future enrollment, beyond 520 weeks, or missing data).
    pub forecast_p50_completion_date: Option<NaiveDate>,
    /// The forecast's probability of reaching the target by the planned end; null without
    /// a planned end or a forecast.
    pub probability_by_planned_end: Option<f64>,
    /// The study's signals today (`GET /studies/{id}/signals`), counted.
    pub signals: SignalSummary,
}

/// One week of the enrollment curve. Flat (scalars only), for BI tools and CSV.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EnrollmentCurveWeek {
    /// Monday of the ISO week.
    pub week_start: NaiveDate,
    /// Sunday of the ISO week; the planned figure is as of the end of this day.
    pub week_end: Option<NaiveDate>,
    /// Enrolled that week, all sites (participants); null for weeks after the current one.
    pub enrolled: Option<i64>,
    /// Enrolled up to and including that week (participants); null for weeks after the
    /// current one.
    pub cumulative_enrolled: Option<i64>,
    /// Planned cumulative enrollment by `week_end` (participants, 2 places): linear from the
    /// planned start to the planned end, or the sum of the per-site ramps. Null without a
    /// plan.
    pub planned_cumulative: Option<f64>,
    /// Screened that week, all sites; null for weeks after the current one.
    pub screened: Option<i64>,
    /// Screen failures that week, all sites; null for weeks after the current one.
    pub screen_failed: Option<i64>,
    /// On weeks with `week_start` >= t0 (the Monday of `as_of`): enrolled before t0 plus
    /// the 10% quantile of the forecast's N(x), x = weeks from t0 to this week's end
    /// (participants, not capped at the target). Null before t0 or without a forecast.
    pub forecast_p10: Option<i64>,
    /// The same with the median.
    pub forecast_p50: Option<i64>,
    /// The same with the 90% quantile.
    pub forecast_p90: Option<i64>,
}

/// The headline figures of one study. Flat (scalars only), for BI tools and CSV; each
/// figure is defined as in the study's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PortfolioRow {
    pub study_id: Uuid,
    pub protocol_number: String,
    pub short_title: Option<String>,
    pub status: StudyStatus,
    pub phase: StudyPhase,
    /// The time of the read, as in the study's metrics.
    pub as_of: DateTime<Utc>,
    pub target_enrollment: i32,
    /// `enrollment.enrolled`.
    pub enrolled: i64,
    /// `enrollment.percent_of_target`.
    pub percent_of_target: Option<f64>,
    /// `enrollment.velocity_4w`.
    pub velocity_4w: Option<f64>,
    /// `enrollment.projected_completion_date_with_buffer`.
    pub projected_completion_date_with_buffer: Option<NaiveDate>,
    pub planned_end_date: Option<NaiveDate>,
    /// `enrollment.on_track`.
    pub on_track: Option<bool>,
    /// `sites.total`.
    pub sites_total: i64,
    /// Live sites `activated` or `enrolling` (count).
    pub sites_active: i64,
    /// `milestones.overdue`.
    pub milestones_overdue: i64,
    /// `milestones.at_risk`.
    pub milestones_at_risk: i64,
    /// The study's currency; the amounts below are in it.
    pub currency: String,
    /// `budget.planned`.
    pub budget_planned: Money,
    /// `budget.actual`.
    pub budget_actual: Money,
    /// `budget.estimate_at_completion`.
    pub estimate_at_completion: Option<Money>,
    /// `budget.pct_spent`.
    pub pct_spent: Option<f64>,
    /// `budget.pct_time_elapsed`.
    pub pct_time_elapsed: Option<f64>,
    /// `risks.open`.
    pub risks_open: i64,
    /// `risks.open_by_band.high`.
    pub risks_open_high: i64,
    /// `risks.escalated`.
    pub risks_escalated: i64,
    /// `deviations.open`.
    pub deviations_open: i64,
    /// `deviations.important`.
    pub deviations_important: i64,
    /// `deviations.reporting_overdue`.
    pub deviations_reporting_overdue: i64,
    /// `forecast_p50_completion_date` of the study's metrics.
    pub forecast_p50_completion_date: Option<NaiveDate>,
    /// `probability_by_planned_end` of the study's metrics.
    pub probability_by_planned_end: Option<f64>,
    /// `signals` of the study's metrics (an object; compact JSON text in CSV).
    pub signals: SignalSummary,
}

// ---------------------------------------------------------------------------------------
// Assembly.

/// Every per-study aggregate of the given studies.
struct Aggregates {
    enrollment: HashMap<Uuid, EnrollmentAgg>,
    sites: HashMap<Uuid, SiteAgg>,
    milestones: HashMap<Uuid, MilestoneAgg>,
    lines: HashMap<Uuid, BudgetLineAgg>,
    expenses: HashMap<Uuid, ExpenseAgg>,
    risks: HashMap<Uuid, RiskAgg>,
    deviations: HashMap<Uuid, DeviationAgg>,
}

impl Aggregates {
    async fn load(conn: &mut Conn, ids: &[Uuid], today: NaiveDate) -> Result<Self, ApiError> {
        let (lines, expenses) = budget(conn, ids, today).await?;
        Ok(Self {
            enrollment: enrollment(conn, ids, today).await?,
            sites: sites(conn, ids).await?,
            milestones: milestones(conn, ids, today).await?,
            lines,
            expenses,
            risks: risks(conn, ids, today).await?,
            deviations: deviations(conn, ids, today).await?,
        })
    }

    /// One study's aggregates; a study absent from a grouped query has no rows there, so
    /// zeros.
    fn of(&self, id: Uuid) -> StudyAggregates {
        fn get<T: Clone + Default>(map: &HashMap<Uuid, T>, id: Uuid) -> T {
            map.get(&id).cloned().unwrap_or_default()
        }
        StudyAggregates {
            enrollment: get(&self.enrollment, id),
            sites: get(&self.sites, id),
            milestones: get(&self.milestones, id),
            lines: get(&self.lines, id),
            expenses: get(&self.expenses, id),
            risks: get(&self.risks, id),
            deviations: get(&self.deviations, id),
        }
    }
}

struct StudyAggregates {
    enrollment: EnrollmentAgg,
    sites: SiteAgg,
    milestones: MilestoneAgg,
    lines: BudgetLineAgg,
    expenses: ExpenseAgg,
    risks: RiskAgg,
    deviations: DeviationAgg,
}

impl StudyAggregates {
    fn enrollment(
        &self,
        study: &Study,
        plan: Option<&Plan>,
        today: NaiveDate,
    ) -> EnrollmentMetrics {
        let e = &self.enrollment;
        let target = i64::from(study.target_enrollment);
        let buffered_target =
            formula::buffered_target(study.target_enrollment, study.enrollment_buffer_pct);
        let (window_start, window_last) = formula::velocity_window(today);
        let project = |goal: i64, reached: Option<NaiveDate>| {
            formula::projected_completion(
                goal,
                e.enrolled,
                reached,
                e.window_enrolled,
                e.reports,
                today,
            )
        };
        let with_buffer = project(buffered_target, e.reached_week_buffered);
        EnrollmentMetrics {
            target: study.target_enrollment,
            buffer_pct: study.enrollment_buffer_pct,
            buffered_target,
            enrolled: e.enrolled,
            screened: e.screened,
            screen_failed: e.screen_failed,
            discontinued: e.discontinued,
            completed: e.completed,
            screen_fail_rate: formula::ratio(e.screen_failed, e.screened),
            percent_of_target: formula::percent(e.enrolled, target),
            remaining: formula::still_to_enroll(target, e.enrolled),
            velocity_4w: formula::velocity(e.window_enrolled, e.reports),
            velocity_window_start: window_start,
            velocity_window_end: formula::week_sunday(window_last),
            projected_completion_date: project(target, e.reached_week),
            projected_completion_date_with_buffer: with_buffer,
            planned_end_date: study.planned_end_date,
            on_track: formula::on_track(
                with_buffer,
                study.planned_end_date,
                study.target_enrollment,
                e.reports,
            ),
            plan_basis: plan.map(|p| p.basis),
            planned_to_date: plan.map(|p| p.cumulative(today)),
        }
    }

    fn sites(&self) -> SiteMetrics {
        let s = &self.sites;
        SiteMetrics {
            total: s.total,
            by_status: SitesByStatus {
                planned: s.planned,
                selected: s.selected,
                activated: s.activated,
                enrolling: s.enrolling,
                closed_to_enrollment: s.closed_to_enrollment,
                closed: s.closed,
                terminated: s.terminated,
            },
            mean_activation_lag_days: formula::mean(s.mean_activation_lag_days),
            sites_with_activation_lag: s.with_activation_lag,
        }
    }

    fn milestones(&self) -> MilestoneMetrics {
        let m = &self.milestones;
        MilestoneMetrics {
            total: m.total,
            completed: m.completed,
            overdue: m.overdue,
            at_risk: m.at_risk,
            on_time_rate: formula::ratio(m.completed_on_time, m.completed_judged),
            completed_with_dates: m.completed_judged,
            mean_slippage_days: formula::mean(m.mean_slippage_days),
        }
    }

    fn budget(&self, study: &Study, today: NaiveDate) -> Result<BudgetMetrics, ApiError> {
        let (planned, committed, actual) = (
            self.lines.planned,
            self.lines.committed,
            self.expenses.actual,
        );
        let overflow = || ApiError::Internal(anyhow::anyhow!("budget figures overflow"));
        let burn = formula::monthly_burn(self.expenses.burn_window, self.expenses.expenses);
        let eac = formula::estimate_at_completion(actual, burn, study.planned_end_date, today);
        let variance = match eac {
            Some(eac) => Some(planned.checked_sub(eac).ok_or_else(overflow)?),
            None => None,
        };
        let (burn_window_start, burn_window_end) = formula::burn_window(today);
        Ok(BudgetMetrics {
            currency: study.currency.clone(),
            planned,
            committed,
            actual,
            remaining: planned.checked_sub(actual).ok_or_else(overflow)?,
            monthly_burn: burn,
            burn_window_start,
            burn_window_end,
            estimate_at_completion: eac,
            variance_at_completion: variance,
            pct_spent: formula::percent_of_money(actual, planned),
            pct_time_elapsed: formula::percent_time_elapsed(
                study.planned_start_date,
                study.planned_end_date,
                today,
            ),
        })
    }

    fn risks(&self, heat_map: Vec<Vec<i64>>) -> RiskMetrics {
        let r = &self.risks;
        RiskMetrics {
            total: r.total,
            open: r.open,
            open_by_band: RiskBands {
                low: r.low,
                medium: r.medium,
                high: r.high,
            },
            heat_map,
            escalated: r.escalated,
            reviews_overdue: r.reviews_overdue,
        }
    }

    fn deviations(
        &self,
        by_category: DeviationsByCategory,
        by_site: Vec<SiteDeviations>,
    ) -> DeviationMetrics {
        let d = &self.deviations;
        DeviationMetrics {
            total: d.total,
            important: d.important,
            open: d.open,
            reporting_overdue: d.reporting_overdue,
            invalidated: d.invalidated,
            per_100_enrolled: formula::per_100_enrolled(d.total, self.enrollment.enrolled),
            by_category,
            by_site,
        }
    }
}

/// Every figure of one study's dashboard, as of `as_of`.
async fn study_metrics(
    conn: &mut Conn,
    study: &Study,
    as_of: DateTime<Utc>,
) -> Result<StudyMetrics, ApiError> {
    let today = as_of.date_naive();
    let aggregates = Aggregates::load(conn, &[study.id], today)
        .await?
        .of(study.id);
    let plan = plan(conn, study).await?;
    let heat_map = heat_map(conn, study.id).await?;
    let by_category = deviations_by_category(conn, study.id).await?;
    let by_site = deviations_by_site(conn, study.id).await?;
    let leading = leading_indicators(conn, std::slice::from_ref(study), today)
        .await?
        .remove(&study.id)
        .unwrap_or_default();
    Ok(StudyMetrics {
        study_id: study.id,
        as_of,
        today,
        enrollment: aggregates.enrollment(study, plan.as_ref(), today),
        sites: aggregates.sites(),
        milestones: aggregates.milestones(),
        budget: aggregates.budget(study, today)?,
        risks: aggregates.risks(heat_map),
        deviations: aggregates.deviations(by_category, by_site),
        forecast_p50_completion_date: leading.forecast_p50_completion_date,
        probability_by_planned_end: leading.probability_by_planned_end,
        signals: SignalSummary::of(&leading.signals),
    })
}

/// The headline row of every given study, from the same grouped aggregates as the
/// dashboard (one query per kind of data, whatever the number of studies).
async fn portfolio(
    conn: &mut Conn,
    studies: &[Study],
    as_of: DateTime<Utc>,
) -> Result<Vec<PortfolioRow>, ApiError> {
    let today = as_of.date_naive();
    let ids: Vec<Uuid> = studies.iter().map(|s| s.id).collect();
    let all = Aggregates::load(conn, &ids, today).await?;
    let mut leading = leading_indicators(conn, studies, today).await?;
    studies
        .iter()
        .map(|study| {
            let a = all.of(study.id);
            // The plan is not shown in the portfolio; skip its query.
            let enrollment = a.enrollment(study, None, today);
            let budget = a.budget(study, today)?;
            let leading = leading.remove(&study.id).unwrap_or_default();
            Ok(PortfolioRow {
                study_id: study.id,
                protocol_number: study.protocol_number.clone(),
                short_title: study.short_title.clone(),
                status: study.status,
                phase: study.phase,
                as_of,
                target_enrollment: study.target_enrollment,
                enrolled: enrollment.enrolled,
                percent_of_target: enrollment.percent_of_target,
                velocity_4w: enrollment.velocity_4w,
                projected_completion_date_with_buffer: enrollment
                    .projected_completion_date_with_buffer,
                planned_end_date: study.planned_end_date,
                on_track: enrollment.on_track,
                sites_total: a.sites.total,
                sites_active: a.sites.activated + a.sites.enrolling,
                milestones_overdue: a.milestones.overdue,
                milestones_at_risk: a.milestones.at_risk,
                currency: study.currency.clone(),
                budget_planned: budget.planned,
                budget_actual: budget.actual,
                estimate_at_completion: budget.estimate_at_completion,
                pct_spent: budget.pct_spent,
                pct_time_elapsed: budget.pct_time_elapsed,
                risks_open: a.risks.open,
                risks_open_high: a.risks.high,
                risks_escalated: a.risks.escalated,
                deviations_open: a.deviations.open,
                deviations_important: a.deviations.important,
                deviations_reporting_overdue: a.deviations.reporting_overdue,
                forecast_p50_completion_date: leading.forecast_p50_completion_date,
                probability_by_planned_end: leading.probability_by_planned_end,
                signals: SignalSummary::of(&leading.signals),
            })
        })
        .collect()
}

/// The weekly curve of one study: from the earlier of its first reported week and the
/// week of its planned start, to the later of the current week and the week of its planned
/// end. Weeks without reports have 0; weeks after the current one have no actual figures.
async fn enrollment_curve(
    conn: &mut Conn,
    study: &Study,
    today: NaiveDate,
) -> Result<Vec<EnrollmentCurveWeek>, ApiError> {
    let weeks: Vec<WeekRow> = diesel::sql_query(
        "SELECT week_start, sum(enrolled)::int8 AS enrolled, sum(screened)::int8 AS screened,
                sum(screen_failed)::int8 AS screen_failed
         FROM enrollment_reports
         WHERE study_id = $1
         GROUP BY week_start
         ORDER BY week_start",
    )
    .bind::<SqlUuid, _>(study.id)
    .load(conn)
    .await?;
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

// ---------------------------------------------------------------------------------------
// Leading indicators (issue 11): the forecast's headline and the signals, beside the
// figures above, and the enrollment curve with its forecast columns.

/// The forecast headline and signals of the given studies at `today` (`db::signals`).
async fn leading_indicators(
    conn: &mut Conn,
    studies: &[Study],
    today: NaiveDate,
) -> Result<HashMap<Uuid, crate::db::signals::Leading>, ApiError> {
    crate::db::signals::leading(conn, studies, today).await
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
    id: Uuid,
    as_of: Option<NaiveDate>,
    prior: Option<(f64, f64)>,
) -> Result<CurveAt, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let as_of = match as_of {
                Some(day) => day,
                None => now(conn).await?.date_naive(),
            };
            let study = studies::find(conn, id, &Scope::All).await?;
            let mut rows = enrollment_curve(conn, &study, as_of).await?;
            let forecast = match crate::db::forecast::forecast_of(conn, &study, as_of, prior).await
            {
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
        .await
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

/// The studies of `scope` that are live, in creation order: the portfolio's rows.
async fn visible_studies(conn: &mut Conn, scope: &Scope) -> Result<Vec<Study>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::enums::SiteStatus;
    use strum::VariantArray;

    #[test]
    fn every_category_has_a_slot_of_its_own() {
        let mut by = DeviationsByCategory::default();
        for (n, category) in DeviationCategory::VARIANTS.iter().enumerate() {
            *by.slot(*category) = n as i64 + 1;
        }
        let json = serde_json::to_value(&by).unwrap();
        for (n, category) in DeviationCategory::VARIANTS.iter().enumerate() {
            assert_eq!(json[category.as_ref()], n as i64 + 1);
        }
    }

    #[test]
    fn every_site_status_is_answered() {
        let json = serde_json::to_value(SitesByStatus::default()).unwrap();
        for status in SiteStatus::VARIANTS {
            assert_eq!(json[status.as_ref()], 0, "{status:?}");
        }
    }
}
