//! The dashboards' answers as clients see them (the study's metrics, a week of the
//! enrollment curve, a portfolio row), with every figure's definition; `db::metrics`
//! fills them from its queries and the formulas of `domain::metrics`. Definitions:
//! `docs/metrics.md`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::enums::{DeviationCategory, StudyPhase, StudyStatus};
use crate::domain::ids::{SiteId, StudyId};
use crate::domain::metrics::PlanBasis;
use crate::domain::money::Money;
use crate::domain::signals::SignalSummary;

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
    /// The count of `category`.
    pub fn slot(&mut self, category: DeviationCategory) -> &mut i64 {
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
    pub site_id: SiteId,
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
    pub study_id: StudyId,
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
    pub study_id: StudyId,
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
