//! Each rule at its threshold and one day (or one cent, or one unit) on either side.

use super::*;
use crate::domain::enums::SiteStatus;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const AS_OF: &str = "2026-06-15";

fn plus(days: i64) -> NaiveDate {
    d(AS_OF) + chrono::Duration::days(days)
}

fn severity(signal: Option<Signal>) -> Option<Severity> {
    signal.map(|s| s.severity)
}

fn site(
    status: SiteStatus,
    activated: Option<NaiveDate>,
    planned: Option<NaiveDate>,
    enrolled: i64,
) -> SiteData {
    SiteData {
        site_id: SiteId::from(Uuid::nil()),
        site_number: "S1".into(),
        status,
        activated_on: activated,
        planned_activation_on: planned,
        enrolled,
        first_week: None,
        last_week: None,
    }
}

use Severity::{Critical, Warning};

#[test]
fn completion_at_risk_below_the_threshold_and_below_half_of_it() {
    let at = |p: f64| {
        severity(completion_at_risk(
            StudyId::from(Uuid::nil()),
            Some(p),
            0.8,
            None,
            None,
        ))
    };
    assert_eq!(at(0.8), None);
    assert_eq!(at(0.799999), Some(Warning));
    assert_eq!(at(0.4), Some(Warning));
    assert_eq!(at(0.399999), Some(Critical));
    assert_eq!(
        severity(completion_at_risk(
            StudyId::from(Uuid::nil()),
            None,
            0.8,
            None,
            None
        )),
        None
    );
}

#[test]
fn site_not_enrolling_from_8_and_16_weeks() {
    let at = |days: i64, enrolled: i64| {
        severity(site_not_enrolling(
            &site(SiteStatus::Enrolling, Some(plus(-days)), None, enrolled),
            d(AS_OF),
        ))
    };
    assert_eq!(at(55, 0), None);
    assert_eq!(at(56, 0), Some(Warning));
    assert_eq!(at(111, 0), Some(Warning));
    assert_eq!(at(112, 0), Some(Critical));
    assert_eq!(at(112, 1), None, "one enrolled: not signalled");
    // Not active: not this rule.
    let planned = site(SiteStatus::Planned, Some(plus(-200)), None, 0);
    assert_eq!(severity(site_not_enrolling(&planned, d(AS_OF))), None);
}

#[test]
fn site_activation_overdue_after_the_planned_day_and_28_days() {
    let at = |days: i64, status| {
        severity(site_activation_overdue(
            &site(status, None, Some(plus(-days)), 0),
            d(AS_OF),
        ))
    };
    assert_eq!(at(0, SiteStatus::Planned), None);
    assert_eq!(at(1, SiteStatus::Planned), Some(Warning));
    assert_eq!(at(28, SiteStatus::Selected), Some(Warning));
    assert_eq!(at(29, SiteStatus::Selected), Some(Critical));
    assert_eq!(at(29, SiteStatus::Activated), None, "already active");
}

#[test]
fn milestone_slipping_by_forecast_and_by_a_passed_baseline() {
    let m = |baseline: i64, forecast: Option<i64>, status, actual: Option<i64>| MilestoneFacts {
        id: MilestoneId::from(Uuid::nil()),
        name: "LPI".into(),
        status,
        baseline_date: Some(plus(baseline)),
        forecast_date: forecast.map(plus),
        actual_date: actual.map(plus),
    };
    let at = |m: MilestoneFacts| severity(milestone_slipping(&m, d(AS_OF)));
    use MilestoneStatus::*;
    assert_eq!(
        at(m(10, Some(24), Planned, None)),
        None,
        "14 days late: not more than 14"
    );
    assert_eq!(at(m(10, Some(25), Planned, None)), Some(Warning));
    assert_eq!(
        at(m(0, None, InProgress, None)),
        None,
        "due today: not passed"
    );
    assert_eq!(at(m(-1, None, InProgress, None)), Some(Critical));
    assert_eq!(at(m(-1, Some(30), AtRisk, None)), Some(Critical));
    assert_eq!(at(m(-1, None, Completed, None)), None, "done");
    assert_eq!(at(m(-1, None, Cancelled, None)), None, "done");
    assert_eq!(at(m(-1, None, InProgress, Some(-2))), None, "reached");
}

#[test]
fn budget_overburn_at_110_and_125_percent_of_the_time_share() {
    // Half the planned duration elapsed: 1000.00 planned allows 550.00, then 625.00.
    let elapsed = elapsed_days(Some(plus(-50)), Some(plus(50)), d(AS_OF));
    assert_eq!(elapsed, Some((50, 100)));
    let at = |actual: &str| {
        let line = BudgetLineFacts {
            id: BudgetLineId::from(Uuid::nil()),
            description: "CRO".into(),
            planned: "1000.00".parse().unwrap(),
            actual: actual.parse().unwrap(),
        };
        severity(budget_overburn(&line, elapsed, "EUR"))
    };
    assert_eq!(at("550.00"), None);
    assert_eq!(at("550.01"), Some(Warning));
    assert_eq!(at("625.00"), Some(Warning));
    assert_eq!(at("625.01"), Some(Critical));
    // Before the start nothing may be spent; after the end the share is 1.
    assert_eq!(
        elapsed_days(Some(plus(10)), Some(plus(20)), d(AS_OF)),
        Some((0, 10))
    );
    assert_eq!(
        elapsed_days(Some(plus(-30)), Some(plus(-20)), d(AS_OF)),
        Some((10, 10))
    );
    assert_eq!(elapsed_days(None, Some(plus(20)), d(AS_OF)), None);
}

#[test]
fn budget_overburn_figures_are_exact_decimals() {
    let line = BudgetLineFacts {
        id: BudgetLineId::from(Uuid::nil()),
        description: "Lab".into(),
        planned: "1000.00".parse().unwrap(),
        actual: "700.00".parse().unwrap(),
    };
    let signal = budget_overburn(&line, Some((1, 3)), "EUR").unwrap();
    assert_eq!(signal.figures["actual"], "700.00");
    assert_eq!(signal.figures["warning_above"], "366.67");
    assert_eq!(signal.figures["elapsed_share"], "0.333333");
}

#[test]
fn deviation_reporting_overdue_after_the_window() {
    let dev = |detected: i64, reported: Option<i64>, importance, status| DeviationFacts {
        id: DeviationId::from(Uuid::nil()),
        site_id: SiteId::from(Uuid::nil()),
        importance,
        status,
        detected_on: plus(detected),
        reported_on: reported.map(plus),
    };
    let at = |d: DeviationFacts| severity(deviation_reporting_overdue(&d, 7, self::d(AS_OF)));
    use DeviationImportance::*;
    use DeviationStatus::*;
    assert_eq!(
        at(dev(-7, None, Important, Open)),
        None,
        "the window's last day"
    );
    assert_eq!(at(dev(-8, None, Important, Open)), Some(Critical));
    assert_eq!(
        at(dev(-30, Some(-23), Important, Closed)),
        None,
        "reported in time"
    );
    assert_eq!(at(dev(-30, Some(-22), Important, Closed)), Some(Critical));
    assert_eq!(at(dev(-30, None, NotImportant, Open)), None);
    assert_eq!(at(dev(-30, None, Important, Invalidated)), None);
}

#[test]
fn the_summary_counts_by_severity_and_kind() {
    let facts = StudyFacts {
        study_id: StudyId::from(Uuid::nil()),
        currency: "EUR".into(),
        planned_start: None,
        planned_end: None,
        confidence_threshold: 0.8,
        deviation_reporting_days: 0,
        probability_by_planned_end: Some(0.5),
        p50_completion: None,
        sites: vec![
            site(SiteStatus::Enrolling, Some(plus(-200)), None, 0),
            site(SiteStatus::Planned, None, Some(plus(-3)), 0),
        ],
        milestones: Vec::new(),
        budget_lines: Vec::new(),
        deviations: Vec::new(),
    };
    let signals = evaluate(&facts, d(AS_OF));
    assert_eq!(signals[0].severity, Critical, "critical first");
    let summary = SignalSummary::of(&signals);
    assert_eq!((summary.warning, summary.critical), (2, 1));
    assert_eq!(summary.by_kind.completion_at_risk, 1);
    assert_eq!(summary.by_kind.site_not_enrolling, 1);
    assert_eq!(summary.by_kind.site_activation_overdue, 1);
}
