//! The dashboard figures of contract section 7, as pure functions of the aggregates the
//! database computes (`db::metrics`) and of `today`. Every figure is defined in
//! `docs/metrics.md`; the doc comments of the answered types (`answers`) repeat the
//! definitions for the OpenAPI document. A figure that would divide by zero, or that has no
//! data to stand on, is `None` (JSON `null`), never a guess.

pub mod answers;

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::money::Money;

/// The 4-week velocity looks at this many complete ISO weeks.
pub const VELOCITY_WEEKS: i64 = 4;
/// The monthly burn looks at this many full calendar months.
pub const BURN_MONTHS: u32 = 3;
/// Risk score bands (score = likelihood x impact x detectability, 1..=125): `low` below
/// `MEDIUM_FROM`, `medium` from `MEDIUM_FROM` to below `HIGH_FROM`, `high` from `HIGH_FROM`
/// (the default escalation threshold, so "high" means the same in every study).
pub const RISK_MEDIUM_FROM: i32 = 20;
pub const RISK_HIGH_FROM: i32 = 45;
/// Days in an average Gregorian month (365.2425 / 12 = 30.436875), exact in decimal: the
/// unit in which the estimate at completion counts the months left.
const DAYS_PER_MONTH: Decimal = Decimal::from_parts(30_436_875, 0, 0, false, 6);

/// Monday of the ISO week containing `day`.
pub fn week_monday(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day.checked_sub_days(Days::new(back)).unwrap_or(day)
}

/// Sunday, the last day of the ISO week that starts on `monday`.
pub fn week_sunday(monday: NaiveDate) -> Option<NaiveDate> {
    monday.checked_add_days(Days::new(6))
}

/// Mondays of the first and the last of the 4 complete ISO weeks before the week of
/// `today` (the week of `today` is not complete, even on its Sunday).
pub fn velocity_window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let this_week = week_monday(today);
    let weeks = |n: i64| {
        this_week
            .checked_sub_days(Days::new((7 * n).unsigned_abs()))
            .unwrap_or(this_week)
    };
    (weeks(VELOCITY_WEEKS), weeks(1))
}

/// First day of the first of the 3 full calendar months before the month of `today`, and
/// first day of the month of `today` (exclusive end).
pub fn burn_window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let this_month = today.with_day(1).unwrap_or(today);
    let first = this_month
        .checked_sub_months(chrono::Months::new(BURN_MONTHS))
        .unwrap_or(this_month);
    (first, this_month)
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// `part / whole`, a fraction rounded to 4 places; `None` when `whole` is 0.
pub fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole != 0).then(|| round(part as f64 / whole as f64, 4))
}

/// `part / whole x 100`, rounded to 2 places; `None` when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole != 0).then(|| round(part as f64 * 100.0 / whole as f64, 2))
}

/// `part / whole x 100` in exact decimal arithmetic, rounded to 2 places; `None` when
/// `whole` is 0.
pub fn percent_of_money(part: Money, whole: Money) -> Option<f64> {
    if whole.amount().is_zero() {
        return None;
    }
    let pct = part.amount().checked_mul(Decimal::ONE_HUNDRED)?;
    pct.checked_div(whole.amount())?.round_dp(2).to_f64()
}

/// A mean the database computed, rounded to 2 places.
pub fn mean(value: Option<f64>) -> Option<f64> {
    value.map(|v| round(v, 2))
}

/// The enrollment target raised by the study's buffer, rounded up to whole participants:
/// `ceil(target x (100 + buffer_pct) / 100)`. `db::metrics` computes the same in SQL.
pub fn buffered_target(target: i32, buffer_pct: i32) -> i64 {
    let raised = i64::from(target) * (100 + i64::from(buffer_pct));
    // Both factors are non-negative (CHECKed), so this is the ceiling.
    (raised + 99).div_euclid(100)
}

/// Participants per week over the 4 complete weeks before this one:
/// `window_enrolled / 4`. `None` when the study has no enrollment report at all (there is
/// no data to stand on); weeks without reports in the window count as 0.
pub fn velocity(window_enrolled: i64, reports: i64) -> Option<f64> {
    (reports > 0).then(|| round(window_enrolled as f64 / VELOCITY_WEEKS as f64, 2))
}

/// The last day (Sunday) of the ISO week in which cumulative enrollment reaches `target`:
/// if it already has, the week it did (`reached_week`); otherwise, counting the current
/// week as the first, the `ceil((target - enrolled) / velocity)`-th week from now at the
/// 4-week velocity. `None` for a target of 0, or when the velocity is unknown or 0 (the
/// target is never reached at that pace).
pub fn projected_completion(
    target: i64,
    enrolled: i64,
    reached_week: Option<NaiveDate>,
    window_enrolled: i64,
    reports: i64,
    today: NaiveDate,
) -> Option<NaiveDate> {
    if target <= 0 {
        return None;
    }
    if enrolled >= target {
        return reached_week.and_then(week_sunday);
    }
    if reports == 0 || window_enrolled <= 0 {
        return None;
    }
    // velocity = window_enrolled / 4, so weeks = ceil(remaining x 4 / window_enrolled),
    // in integers so the week never moves by a rounding error.
    let remaining = target - enrolled;
    let weeks = (remaining * VELOCITY_WEEKS + window_enrolled - 1).div_euclid(window_enrolled);
    let monday =
        week_monday(today).checked_add_days(Days::new(7 * u64::try_from(weeks - 1).ok()?))?;
    week_sunday(monday)
}

/// Whether the buffered projection lands on or before the planned end. `None` without a
/// planned end date or a target, or when the velocity is unknown (no reports); `false`
/// when the velocity is 0 with participants still to enroll (never at this pace).
pub fn on_track(
    projected_with_buffer: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
    target: i32,
    reports: i64,
) -> Option<bool> {
    let end = planned_end?;
    if target <= 0 {
        return None;
    }
    match projected_with_buffer {
        Some(date) => Some(date <= end),
        None if reports > 0 => Some(false),
        None => None,
    }
}

/// Where the planned enrollment curve comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanBasis {
    /// The study's target, linear from its planned start to its planned end.
    Linear,
    /// The sum of its sites' targets, each linear from the site's activation date (else
    /// the study's planned start) to the study's planned end.
    PerSite,
}

/// The planned enrollment: a sum of linear ramps that all end on the study's planned end.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub basis: PlanBasis,
    /// (ramp start, participants) of each ramp.
    pub ramps: Vec<(NaiveDate, i64)>,
    pub end: NaiveDate,
}

impl Plan {
    /// The study's plan: per site when at least one live site has a target
    /// (`site_targets`: each site's start, activation date else the study's planned start,
    /// and its target; sites with no start contribute nothing), else linear over the
    /// study's target. `None` without the dates a plan needs.
    pub fn new(
        target: i32,
        planned_start: Option<NaiveDate>,
        planned_end: Option<NaiveDate>,
        site_targets: &[(Option<NaiveDate>, i64)],
    ) -> Option<Plan> {
        let end = planned_end?;
        if site_targets.is_empty() {
            return Some(Plan {
                basis: PlanBasis::Linear,
                ramps: vec![(planned_start?, i64::from(target))],
                end,
            });
        }
        Some(Plan {
            basis: PlanBasis::PerSite,
            ramps: site_targets
                .iter()
                .filter_map(|(start, n)| start.map(|s| (s, *n)))
                .collect(),
            end,
        })
    }

    /// Participants planned to be enrolled by the end of `day`, rounded to 2 places. Each
    /// ramp contributes `participants x (day - start) / (end - start)` clamped to 0..=1
    /// (all of it from its start on when it starts on or after the end).
    pub fn cumulative(&self, day: NaiveDate) -> f64 {
        let total: f64 = self
            .ramps
            .iter()
            .map(|(start, n)| {
                let span = (self.end - *start).num_days();
                let done = (day - *start).num_days();
                let fraction = if span <= 0 {
                    if day >= *start { 1.0 } else { 0.0 }
                } else {
                    (done as f64 / span as f64).clamp(0.0, 1.0)
                };
                *n as f64 * fraction
            })
            .sum();
        round(total, 2)
    }
}

/// Average spend per month over the 3 full calendar months before this one:
/// `sum / 3`, rounded to the cent. `None` when the study has no expense at all.
pub fn monthly_burn(last_months: Money, expenses: i64) -> Option<Money> {
    if expenses == 0 {
        return None;
    }
    let per_month = last_months
        .amount()
        .checked_div(Decimal::from(BURN_MONTHS))?;
    Some(Money::from(per_month))
}

/// What the study will have cost by its planned end at the current burn:
/// `actual + monthly_burn x months_left`, `months_left` = days from `today` to the planned
/// end (0 once it has passed) / 30.436875, rounded to the cent. `None` without a burn or
/// a planned end.
pub fn estimate_at_completion(
    actual: Money,
    burn: Option<Money>,
    planned_end: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<Money> {
    let burn = burn?;
    let days_left = (planned_end? - today).num_days().max(0);
    let months_left = Decimal::from(days_left).checked_div(DAYS_PER_MONTH)?;
    let still_to_spend = burn.amount().checked_mul(months_left)?;
    Some(Money::from(actual.amount().checked_add(still_to_spend)?))
}

/// Percent of the planned duration elapsed by `today`: `(today - planned_start) /
/// (planned_end - planned_start) x 100`, clamped to 0..=100, 2 places. `None` without both
/// dates or when the end is not after the start.
pub fn percent_time_elapsed(
    planned_start: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<f64> {
    let (start, end) = (planned_start?, planned_end?);
    let span = (end - start).num_days();
    if span <= 0 {
        return None;
    }
    let elapsed = (today - start).num_days().clamp(0, span);
    percent(elapsed, span)
}

/// Deviations per 100 enrolled participants, 2 places; `None` with nobody enrolled.
pub fn per_100_enrolled(deviations: i64, enrolled: i64) -> Option<f64> {
    percent(deviations, enrolled)
}

/// Whole-number subtraction that never goes below zero (participants still to enroll).
pub fn still_to_enroll(target: i64, enrolled: i64) -> i64 {
    (target - enrolled).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    // 2026-11-25 is a Wednesday; its ISO week starts on Monday 2026-11-23.
    const TODAY: &str = "2026-11-25";

    #[test]
    fn weeks_start_on_monday_and_the_current_week_is_not_complete() {
        assert_eq!(week_monday(d(TODAY)), d("2026-11-23"));
        assert_eq!(week_monday(d("2026-11-23")), d("2026-11-23"));
        assert_eq!(week_monday(d("2026-11-29")), d("2026-11-23"));
        assert_eq!(week_sunday(d("2026-11-23")), Some(d("2026-11-29")));
        // On Sunday (2026-11-29) the week is still running.
        for today in [TODAY, "2026-11-29"] {
            let window = (d("2026-10-26"), d("2026-11-16"));
            assert_eq!(velocity_window(d(today)), window, "{today}");
        }
    }

    #[test]
    fn burn_window_is_the_three_full_months_before_this_one() {
        for (today, from, until) in [
            (TODAY, "2026-08-01", "2026-11-01"),
            ("2027-01-31", "2026-10-01", "2027-01-01"),
            ("2026-03-01", "2025-12-01", "2026-03-01"),
        ] {
            assert_eq!(burn_window(d(today)), (d(from), d(until)), "{today}");
        }
    }

    #[test]
    fn rates_are_null_instead_of_dividing_by_zero() {
        assert_eq!(ratio(1, 3), Some(0.3333));
        assert_eq!(ratio(0, 0), None);
        assert_eq!(percent(1, 8), Some(12.5));
        assert_eq!(percent(5, 0), None);
        assert_eq!(per_100_enrolled(3, 40), Some(7.5));
        assert_eq!(per_100_enrolled(3, 0), None);
        assert_eq!(percent_of_money(m("1.00"), m("3.00")), Some(33.33));
        assert_eq!(percent_of_money(m("5.00"), Money::ZERO), None);
        assert_eq!(mean(None), None);
        assert_eq!(mean(Some(2.0 / 3.0)), Some(0.67));
    }

    #[test]
    fn the_buffer_raises_the_target_rounding_up() {
        assert_eq!(buffered_target(100, 0), 100);
        assert_eq!(buffered_target(100, 10), 110);
        assert_eq!(buffered_target(101, 10), 112); // 111.1 -> 112
        assert_eq!(buffered_target(0, 50), 0);
        assert_eq!(buffered_target(480, 100), 960);
    }

    #[test]
    fn velocity_is_the_window_over_four_and_null_without_reports() {
        assert_eq!(velocity(0, 0), None);
        assert_eq!(velocity(0, 3), Some(0.0));
        // One reported week in the window still divides by four.
        assert_eq!(velocity(10, 1), Some(2.5));
        assert_eq!(velocity(7, 9), Some(1.75));
    }

    #[test]
    fn projection_counts_whole_weeks_from_the_current_one() {
        let today = d(TODAY);
        // (target, enrolled, enrolled in the 4-week window, the projected Sunday)
        for (target, enrolled, window, sunday) in [
            // 20 to go at 5 a week: 4 weeks, this one the first.
            (100, 80, 20, "2026-12-20"),
            // 21 to go: a fifth week.
            (100, 79, 20, "2026-12-27"),
            // 1 to go: this week.
            (100, 99, 20, "2026-11-29"),
            // A slow pace: 3 in four weeks, 10 to go -> ceil(40 / 3) = 14 weeks.
            (10, 0, 3, "2027-02-28"),
        ] {
            assert_eq!(
                projected_completion(target, enrolled, None, window, 5, today),
                Some(d(sunday)),
                "{target} {enrolled} {window}"
            );
        }
    }

    #[test]
    fn projection_edge_cases() {
        let today = d(TODAY);
        // Reached already: the week it was reached.
        assert_eq!(
            projected_completion(100, 120, Some(d("2026-09-07")), 0, 5, today),
            Some(d("2026-09-13"))
        );
        // Zero target: nothing to project.
        assert_eq!(projected_completion(0, 0, None, 0, 0, today), None);
        assert_eq!(projected_completion(0, 5, None, 5, 1, today), None);
        // No data, or no pace: never.
        assert_eq!(projected_completion(100, 0, None, 0, 0, today), None);
        assert_eq!(projected_completion(100, 10, None, 0, 4, today), None);
    }

    #[test]
    fn on_track_compares_the_buffered_projection_with_the_planned_end() {
        let end = Some(d("2027-01-31"));
        assert_eq!(on_track(Some(d("2027-01-31")), end, 100, 3), Some(true));
        assert_eq!(on_track(Some(d("2027-02-07")), end, 100, 3), Some(false));
        // Reports but no pace: it will not finish.
        assert_eq!(on_track(None, end, 100, 3), Some(false));
        // Nothing to judge.
        assert_eq!(on_track(None, end, 100, 0), None);
        assert_eq!(on_track(Some(d("2027-01-01")), None, 100, 3), None);
        assert_eq!(on_track(None, end, 0, 3), None);
    }

    #[test]
    fn linear_plan_from_planned_start_to_planned_end() {
        let plan = Plan::new(100, Some(d("2026-01-01")), Some(d("2026-01-11")), &[]).unwrap();
        assert_eq!(plan.basis, PlanBasis::Linear);
        assert_eq!(plan.cumulative(d("2025-12-31")), 0.0);
        assert_eq!(plan.cumulative(d("2026-01-01")), 0.0);
        assert_eq!(plan.cumulative(d("2026-01-04")), 30.0);
        assert_eq!(plan.cumulative(d("2026-01-11")), 100.0);
        assert_eq!(plan.cumulative(d("2027-01-01")), 100.0);
        // A plan needs both dates.
        assert_eq!(Plan::new(100, None, Some(d("2026-01-11")), &[]), None);
        assert_eq!(Plan::new(100, Some(d("2026-01-01")), None, &[]), None);
        // Start on the end: all of it from that day.
        let instant = Plan::new(10, Some(d("2026-01-11")), Some(d("2026-01-11")), &[]).unwrap();
        assert_eq!(instant.cumulative(d("2026-01-10")), 0.0);
        assert_eq!(instant.cumulative(d("2026-01-11")), 10.0);
    }

    #[test]
    fn per_site_plan_sums_each_sites_ramp() {
        let plan = Plan::new(
            999,
            Some(d("2026-01-01")),
            Some(d("2026-01-11")),
            &[
                (Some(d("2026-01-01")), 10),
                (Some(d("2026-01-06")), 20),
                (None, 50),
            ],
        )
        .unwrap();
        assert_eq!(plan.basis, PlanBasis::PerSite);
        // Day 5: first ramp half done (5/10), second not started.
        assert_eq!(plan.cumulative(d("2026-01-06")), 5.0);
        // Day 8: 7/10 of 10 + 2/5 of 20.
        assert_eq!(plan.cumulative(d("2026-01-08")), 15.0);
        assert_eq!(plan.cumulative(d("2026-01-11")), 30.0);
    }

    #[test]
    fn burn_and_estimate_at_completion_are_exact_decimals() {
        assert_eq!(monthly_burn(m("1000.00"), 0), None);
        assert_eq!(monthly_burn(Money::ZERO, 4), Some(Money::ZERO));
        assert_eq!(monthly_burn(m("1000.00"), 4), Some(m("333.33")));
        let today = d(TODAY);
        // Ending today: nothing more to spend.
        assert_eq!(
            estimate_at_completion(m("1000.00"), Some(m("300.00")), Some(today), today),
            Some(m("1000.00"))
        );
        let year_end = Some(d("2027-11-25")); // 365 days
        assert_eq!(
            estimate_at_completion(m("0.10"), Some(m("100.00")), year_end, today),
            // 365 / 30.436875 = 11.99203... months
            Some(m("1199.30"))
        );
        // After the planned end nothing more is spent.
        assert_eq!(
            estimate_at_completion(m("10.00"), Some(m("5.00")), Some(d("2026-01-01")), today),
            Some(m("10.00"))
        );
        assert_eq!(
            estimate_at_completion(m("10.00"), None, year_end, today),
            None
        );
        assert_eq!(
            estimate_at_completion(m("10.00"), Some(m("5.00")), None, today),
            None
        );
    }

    #[test]
    fn time_elapsed_is_clamped_and_needs_a_span() {
        let (start, end) = (Some(d("2026-01-01")), Some(d("2026-01-11")));
        assert_eq!(
            percent_time_elapsed(start, end, d("2026-01-04")),
            Some(30.0)
        );
        assert_eq!(percent_time_elapsed(start, end, d("2025-06-01")), Some(0.0));
        assert_eq!(
            percent_time_elapsed(start, end, d("2027-06-01")),
            Some(100.0)
        );
        assert_eq!(percent_time_elapsed(start, start, d("2026-01-04")), None);
        assert_eq!(percent_time_elapsed(None, end, d("2026-01-04")), None);
    }

    #[test]
    fn still_to_enroll_never_goes_negative() {
        assert_eq!(still_to_enroll(100, 30), 70);
        assert_eq!(still_to_enroll(100, 130), 0);
        assert_eq!(still_to_enroll(0, 0), 0);
    }
}
