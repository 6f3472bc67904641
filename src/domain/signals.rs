//! Signals of trouble (issue 11): leading indicators named before they compound, each a
//! pure rule over the facts `db::signals` reads and the day `as_of`. Every signal carries
//! the numbers behind it, exactly (money as decimals). The rules, their thresholds and
//! their reasons are in `docs/metrics.md`.

use chrono::{Days, NaiveDate};
use diesel::QueryableByName;
use diesel::sql_types::{Date, Nullable, Numeric, Text};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::deviations::reporting_overdue;
use crate::domain::enums::{DeviationImportance, DeviationStatus, MilestoneStatus};
use crate::domain::forecast::{Participation, SiteData};
use crate::domain::ids::{BudgetLineId, DeviationId, MilestoneId, SiteId, StudyId};
use crate::domain::milestones::SETTLED;
use crate::domain::money::Money;

type SqlUuid = diesel::sql_types::Uuid;

/// An active site with nothing enrolled this many days after activation is a warning...
pub const NOT_ENROLLING_WARNING_DAYS: i64 = 8 * 7;
/// ...and this many days, critical.
pub const NOT_ENROLLING_CRITICAL_DAYS: i64 = 16 * 7;
/// A planned activation missed by more than this many days is critical.
pub const ACTIVATION_OVERDUE_CRITICAL_DAYS: i64 = 28;
/// A forecast more than this many days after the baseline is a slipping milestone.
pub const MILESTONE_SLIP_DAYS: i64 = 14;
/// Spend above the time-proportional budget by these factors (percent).
pub const OVERBURN_WARNING_PCT: i64 = 110;
pub const OVERBURN_CRITICAL_PCT: i64 = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    CompletionAtRisk,
    SiteNotEnrolling,
    SiteActivationOverdue,
    MilestoneSlipping,
    BudgetOverburn,
    DeviationReportingOverdue,
}

impl SignalKind {
    /// What a signal of this kind is about.
    pub fn subject_type(self) -> SubjectType {
        match self {
            Self::CompletionAtRisk => SubjectType::Study,
            Self::SiteNotEnrolling | Self::SiteActivationOverdue => SubjectType::Site,
            Self::MilestoneSlipping => SubjectType::Milestone,
            Self::BudgetOverburn => SubjectType::BudgetLine,
            Self::DeviationReportingOverdue => SubjectType::Deviation,
        }
    }

    /// A signal of this kind about the record `subject_id`; `figures` is a JSON object of
    /// the numbers behind it.
    fn signal(
        self,
        severity: Severity,
        subject_id: impl Into<Uuid>,
        detail: String,
        figures: Value,
    ) -> Signal {
        Signal {
            kind: self,
            severity,
            subject_type: self.subject_type(),
            subject_id: subject_id.into(),
            detail,
            figures: match figures {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// Every rule's ladder: critical when `critical` holds, else a warning when `warning`
    /// holds, else no signal.
    fn of(critical: bool, warning: bool) -> Option<Self> {
        if critical {
            Some(Self::Critical)
        } else if warning {
            Some(Self::Warning)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    Study,
    Site,
    Milestone,
    BudgetLine,
    Deviation,
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Signal {
    pub kind: SignalKind,
    pub severity: Severity,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    /// A sentence for people.
    pub detail: String,
    /// The numbers behind the signal (per kind; money as decimal strings).
    #[schema(value_type = Object)]
    pub figures: Map<String, Value>,
}

fn days_before(as_of: NaiveDate, day: NaiveDate) -> i64 {
    (as_of - day).num_days()
}

/// `completion_at_risk`: the probability of the target by the planned end is below the
/// study's threshold (warning), or below half of it (critical).
pub fn completion_at_risk(
    study_id: StudyId,
    probability: Option<f64>,
    threshold: f64,
    p50_completion: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
) -> Option<Signal> {
    let probability = probability?;
    let severity = Severity::of(probability < threshold / 2.0, probability < threshold)?;
    Some(SignalKind::CompletionAtRisk.signal(
        severity,
        study_id,
        format!(
            "the probability of reaching the target by the planned end is {probability}, below the study's threshold {threshold}"
        ),
        json!({
            "probability_by_planned_end": probability,
            "forecast_confidence_threshold": threshold,
            "critical_below": threshold / 2.0,
            "planned_end_date": planned_end,
            "forecast_p50_completion_date": p50_completion,
        }),
    ))
}

/// `site_not_enrolling`: active, activated at least 8 weeks before `as_of` (critical: 16),
/// and nobody enrolled. The site's data is the forecast's, its reports counted up to
/// `as_of` (weeks starting on or before it).
pub fn site_not_enrolling(site: &SiteData, as_of: NaiveDate) -> Option<Signal> {
    if Participation::from(site.status) != Participation::Active || site.enrolled > 0 {
        return None;
    }
    let days = days_before(as_of, site.activated_on?);
    let severity = Severity::of(
        days >= NOT_ENROLLING_CRITICAL_DAYS,
        days >= NOT_ENROLLING_WARNING_DAYS,
    )?;
    Some(SignalKind::SiteNotEnrolling.signal(
        severity,
        site.site_id,
        format!(
            "site {} was activated {days} days ago and has enrolled nobody",
            site.site_number
        ),
        json!({
            "site_number": site.site_number,
            "activated_on": site.activated_on,
            "days_since_activation": days,
            "enrolled": site.enrolled,
            "warning_from_days": NOT_ENROLLING_WARNING_DAYS,
            "critical_from_days": NOT_ENROLLING_CRITICAL_DAYS,
        }),
    ))
}

/// `site_activation_overdue`: not yet active and its planned activation has passed
/// (critical: by more than 28 days).
pub fn site_activation_overdue(site: &SiteData, as_of: NaiveDate) -> Option<Signal> {
    if Participation::from(site.status) != Participation::NotYetActive {
        return None;
    }
    let planned = site.planned_activation_on?;
    let days = days_before(as_of, planned);
    let severity = Severity::of(days > ACTIVATION_OVERDUE_CRITICAL_DAYS, days > 0)?;
    Some(SignalKind::SiteActivationOverdue.signal(
        severity,
        site.site_id,
        format!(
            "site {} was planned to activate on {planned}, {days} days ago, and is still {}",
            site.site_number,
            site.status.as_ref()
        ),
        json!({
            "site_number": site.site_number,
            "status": site.status,
            "planned_activation_on": planned,
            "days_overdue": days,
            "critical_after_days": ACTIVATION_OVERDUE_CRITICAL_DAYS,
        }),
    ))
}

/// What the milestone rule needs (`db::signals` reads it as it is).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct MilestoneFacts {
    #[diesel(sql_type = SqlUuid)]
    pub id: MilestoneId,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub status: MilestoneStatus,
    #[diesel(sql_type = Nullable<Date>)]
    pub baseline_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub forecast_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub actual_date: Option<NaiveDate>,
}

/// `milestone_slipping`: not done (no actual date, neither completed nor cancelled) and
/// its baseline has passed (critical), or its forecast is more than 14 days after the
/// baseline (warning).
pub fn milestone_slipping(m: &MilestoneFacts, as_of: NaiveDate) -> Option<Signal> {
    if m.actual_date.is_some() || SETTLED.contains(&m.status) {
        return None;
    }
    let baseline = m.baseline_date?;
    let slip = m.forecast_date.map(|f| (f - baseline).num_days());
    let severity = Severity::of(
        baseline < as_of,
        slip.is_some_and(|s| s > MILESTONE_SLIP_DAYS),
    )?;
    let detail = match severity {
        Severity::Critical => format!(
            "milestone \"{}\" was due on {baseline} (baseline) and is not done",
            m.name
        ),
        Severity::Warning => format!(
            "milestone \"{}\" is forecast {} days after its baseline {baseline}",
            m.name,
            slip.unwrap_or_default()
        ),
    };
    Some(SignalKind::MilestoneSlipping.signal(
        severity,
        m.id,
        detail,
        json!({
            "name": m.name,
            "status": m.status,
            "baseline_date": baseline,
            "forecast_date": m.forecast_date,
            "slippage_days": slip,
            "days_past_baseline": days_before(as_of, baseline).max(0),
            "warning_above_days": MILESTONE_SLIP_DAYS,
        }),
    ))
}

/// What the budget rule needs of a live budget line (`db::signals` reads it as it is).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct BudgetLineFacts {
    #[diesel(sql_type = SqlUuid)]
    pub id: BudgetLineId,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Numeric)]
    pub planned: Money,
    /// Live expenses on the line incurred on or before `as_of`.
    #[diesel(sql_type = Numeric)]
    pub actual: Money,
}

/// The study's planned duration and the days of it elapsed at `as_of` (clamped to
/// 0..=duration); `None` without both planned dates or when the end is not after the start.
pub fn elapsed_days(
    planned_start: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
    as_of: NaiveDate,
) -> Option<(i64, i64)> {
    let (start, end) = (planned_start?, planned_end?);
    let duration = (end - start).num_days();
    (duration > 0).then(|| ((as_of - start).num_days().clamp(0, duration), duration))
}

/// `budget_overburn`: actual > planned x elapsed share x 1.10 (critical: x 1.25). Compared
/// exactly, in integers of cents x days: `actual x duration x 100 > planned x elapsed x pct`.
pub fn budget_overburn(
    line: &BudgetLineFacts,
    elapsed: Option<(i64, i64)>,
    currency: &str,
) -> Option<Signal> {
    let (elapsed, duration) = elapsed?;
    let spent = line.actual.amount() * Decimal::from(duration) * Decimal::ONE_HUNDRED;
    let allowed = |pct: i64| line.planned.amount() * Decimal::from(elapsed) * Decimal::from(pct);
    let severity = Severity::of(
        spent > allowed(OVERBURN_CRITICAL_PCT),
        spent > allowed(OVERBURN_WARNING_PCT),
    )?;
    // The thresholds as amounts, rounded to the cent for people; the comparison above is
    // exact.
    let limit = |pct: i64| {
        Money::from((allowed(pct) / (Decimal::from(duration) * Decimal::ONE_HUNDRED)).round_dp(2))
    };
    let share = (Decimal::from(elapsed) / Decimal::from(duration)).round_dp(6);
    Some(SignalKind::BudgetOverburn.signal(
        severity,
        line.id,
        format!(
            "budget line \"{}\" has spent {} {currency} of {} planned with {share} of the study's planned duration elapsed",
            line.description, line.actual, line.planned
        ),
        json!({
            "currency": currency,
            "planned": line.planned,
            "actual": line.actual,
            "elapsed_days": elapsed,
            "planned_duration_days": duration,
            "elapsed_share": share.to_string(),
            "warning_above": limit(OVERBURN_WARNING_PCT),
            "critical_above": limit(OVERBURN_CRITICAL_PCT),
        }),
    ))
}

/// What the deviation rule needs (`db::signals` reads it as it is).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct DeviationFacts {
    #[diesel(sql_type = SqlUuid)]
    pub id: DeviationId,
    #[diesel(sql_type = SqlUuid)]
    pub site_id: SiteId,
    #[diesel(sql_type = Text)]
    pub importance: DeviationImportance,
    #[diesel(sql_type = Text)]
    pub status: DeviationStatus,
    #[diesel(sql_type = Date)]
    pub detected_on: NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    pub reported_on: Option<NaiveDate>,
}

/// `deviation_reporting_overdue` (always critical): an important deviation, not
/// invalidated, whose `reporting_overdue` is true at `as_of`.
pub fn deviation_reporting_overdue(
    d: &DeviationFacts,
    reporting_days: i32,
    as_of: NaiveDate,
) -> Option<Signal> {
    if d.status == DeviationStatus::Invalidated
        || !reporting_overdue(
            d.importance,
            d.detected_on,
            d.reported_on,
            reporting_days,
            as_of,
        )
    {
        return None;
    }
    let deadline = d
        .detected_on
        .checked_add_days(Days::new(u64::try_from(reporting_days).unwrap_or(0)))?;
    let late = (d.reported_on.unwrap_or(as_of) - deadline).num_days();
    Some(SignalKind::DeviationReportingOverdue.signal(
        Severity::Critical,
        d.id,
        format!(
            "an important deviation detected on {} was due to be reported by {deadline}; {}",
            d.detected_on,
            match d.reported_on {
                Some(on) => format!("it was reported on {on}, {late} days late"),
                None => format!("it is {late} days late and still unreported"),
            }
        ),
        json!({
            "site_id": d.site_id,
            "detected_on": d.detected_on,
            "reported_on": d.reported_on,
            "reporting_days": reporting_days,
            "reporting_deadline": deadline,
            "days_late": late,
        }),
    ))
}

/// Signals per kind (every kind present).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SignalsByKind {
    pub completion_at_risk: i64,
    pub site_not_enrolling: i64,
    pub site_activation_overdue: i64,
    pub milestone_slipping: i64,
    pub budget_overburn: i64,
    pub deviation_reporting_overdue: i64,
}

/// How many signals a study has, by severity and kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SignalSummary {
    pub warning: i64,
    pub critical: i64,
    pub by_kind: SignalsByKind,
}

impl SignalSummary {
    pub fn of(signals: &[Signal]) -> Self {
        let mut summary = Self::default();
        for signal in signals {
            match signal.severity {
                Severity::Warning => summary.warning += 1,
                Severity::Critical => summary.critical += 1,
            }
            let by = &mut summary.by_kind;
            *match signal.kind {
                SignalKind::CompletionAtRisk => &mut by.completion_at_risk,
                SignalKind::SiteNotEnrolling => &mut by.site_not_enrolling,
                SignalKind::SiteActivationOverdue => &mut by.site_activation_overdue,
                SignalKind::MilestoneSlipping => &mut by.milestone_slipping,
                SignalKind::BudgetOverburn => &mut by.budget_overburn,
                SignalKind::DeviationReportingOverdue => &mut by.deviation_reporting_overdue,
            } += 1;
        }
        summary
    }
}

/// Every fact of one study the rules look at.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyFacts {
    pub study_id: StudyId,
    pub currency: String,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
    pub confidence_threshold: f64,
    pub deviation_reporting_days: i32,
    /// The forecast's probability by the planned end and its P50 date, when it has one.
    pub probability_by_planned_end: Option<f64>,
    pub p50_completion: Option<NaiveDate>,
    /// The live sites, their reports counted up to `as_of`.
    pub sites: Vec<SiteData>,
    pub milestones: Vec<MilestoneFacts>,
    pub budget_lines: Vec<BudgetLineFacts>,
    pub deviations: Vec<DeviationFacts>,
}

/// Every rule over a study's facts: critical first, then by kind and subject.
pub fn evaluate(facts: &StudyFacts, as_of: NaiveDate) -> Vec<Signal> {
    let elapsed = elapsed_days(facts.planned_start, facts.planned_end, as_of);
    let mut signals: Vec<Signal> = completion_at_risk(
        facts.study_id,
        facts.probability_by_planned_end,
        facts.confidence_threshold,
        facts.p50_completion,
        facts.planned_end,
    )
    .into_iter()
    .chain(facts.sites.iter().flat_map(|s| {
        [
            site_not_enrolling(s, as_of),
            site_activation_overdue(s, as_of),
        ]
        .into_iter()
        .flatten()
    }))
    .chain(
        facts
            .milestones
            .iter()
            .filter_map(|m| milestone_slipping(m, as_of)),
    )
    .chain(
        facts
            .budget_lines
            .iter()
            .filter_map(|l| budget_overburn(l, elapsed, &facts.currency)),
    )
    .chain(
        facts
            .deviations
            .iter()
            .filter_map(|d| deviation_reporting_overdue(d, facts.deviation_reporting_days, as_of)),
    )
    .collect();
    signals.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.subject_id.cmp(&b.subject_id))
    });
    signals
}

#[cfg(test)]
mod tests;
