//! The dashboard figures (a study's metrics, the portfolio) and the enrollment curve
//! (`curve`): aggregate queries (`queries`) assembled into the answers of
//! `domain::metrics::answers` with the formulas of `domain::metrics`. Every figure of one
//! answer is read in one REPEATABLE READ, read-only transaction, so they agree with each
//! other and with `as_of`. Definitions: `docs/metrics.md`.

pub mod curve;
mod queries;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::db::metrics::queries::{
    BudgetLineAgg, DeviationAgg, EnrollmentAgg, ExpenseAgg, MilestoneAgg, RiskAgg, SiteAgg, budget,
    deviations, deviations_by_category, deviations_by_site, enrollment, heat_map, milestones, now,
    plan, risks, sites, visible_studies,
};
use crate::db::studies::{self, Study, study_ids};
use crate::db::{Conn, snapshot};
use crate::domain::ids::StudyId;
use crate::domain::metrics::answers::{
    BudgetMetrics, DeviationMetrics, DeviationsByCategory, EnrollmentMetrics, MilestoneMetrics,
    PortfolioRow, RiskBands, RiskMetrics, SiteDeviations, SiteMetrics, SitesByStatus, StudyMetrics,
};
use crate::domain::metrics::{self as formula, Plan};
use crate::domain::policy::Scope;
use crate::domain::signals::SignalSummary;
use crate::error::ApiError;

/// A study's dashboard, read in one REPEATABLE READ, READ ONLY transaction: every figure
/// comes from the same snapshot, taken at `as_of`. The caller has checked that it may read
/// the study; a study deleted since is a 404.
pub async fn read_study_metrics(conn: &mut Conn, id: StudyId) -> Result<StudyMetrics, ApiError> {
    snapshot!(conn, async move |conn| {
        let as_of = now(conn).await?;
        let study = studies::find(conn, id, &Scope::All).await?;
        study_metrics(conn, &study, as_of).await
    })
}

/// The portfolio rows of the live studies in `scope`, in one snapshot.
pub async fn read_portfolio(conn: &mut Conn, scope: Scope) -> Result<Vec<PortfolioRow>, ApiError> {
    snapshot!(conn, async move |conn| {
        let as_of = now(conn).await?;
        let studies = visible_studies(conn, &scope).await?;
        portfolio(conn, &studies, as_of).await
    })
}

/// Every per-study aggregate of the given studies.
struct Aggregates {
    enrollment: HashMap<StudyId, EnrollmentAgg>,
    sites: HashMap<StudyId, SiteAgg>,
    milestones: HashMap<StudyId, MilestoneAgg>,
    lines: HashMap<StudyId, BudgetLineAgg>,
    expenses: HashMap<StudyId, ExpenseAgg>,
    risks: HashMap<StudyId, RiskAgg>,
    deviations: HashMap<StudyId, DeviationAgg>,
}

impl Aggregates {
    async fn load(conn: &mut Conn, ids: &[StudyId], today: NaiveDate) -> Result<Self, ApiError> {
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
    fn of(&self, id: StudyId) -> StudyAggregates {
        fn get<T: Clone + Default>(map: &HashMap<StudyId, T>, id: StudyId) -> T {
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
    let id = study.id;
    let aggregates = Aggregates::load(conn, &[id], today).await?.of(id);
    let plan = plan(conn, study).await?;
    let heat_map = heat_map(conn, id).await?;
    let by_category = deviations_by_category(conn, id).await?;
    let by_site = deviations_by_site(conn, id).await?;
    let leading = leading_indicators(conn, std::slice::from_ref(study), today)
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(StudyMetrics {
        study_id: id,
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
    let ids = study_ids(studies);
    let all = Aggregates::load(conn, &ids, today).await?;
    let mut leading = leading_indicators(conn, studies, today).await?;
    studies
        .iter()
        .zip(ids)
        .map(|(study, id)| {
            let a = all.of(id);
            // The plan is not shown in the portfolio; skip its query.
            let enrollment = a.enrollment(study, None, today);
            let budget = a.budget(study, today)?;
            let leading = leading.remove(&id).unwrap_or_default();
            Ok(PortfolioRow {
                study_id: id,
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

/// The forecast headline and signals of the given studies at `today` (`db::signals`).
async fn leading_indicators(
    conn: &mut Conn,
    studies: &[Study],
    today: NaiveDate,
) -> Result<HashMap<StudyId, crate::db::signals::Leading>, ApiError> {
    crate::db::signals::leading(conn, studies, today).await
}
