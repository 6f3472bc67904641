//! A milestone's rules (which fields a `vendor` client may change), and the two values
//! derived from its dates (`slippage_days`, `overdue`), computed here and nowhere else.

use chrono::NaiveDate;

use crate::domain::enums::MilestoneStatus;

/// The fields a `vendor` client may change on the milestones naming its vendor (contract
/// section 4).
pub const VENDOR_WRITABLE: &[&str] = &["forecast_date", "actual_date", "status", "notes"];

/// Every writable field, by its JSON name (kept equal to `MilestoneFields` by a test).
pub const FIELDS: &[&str] = &[
    "external_id",
    "study_id",
    "site_id",
    "vendor_id",
    "name",
    "kind",
    "baseline_date",
    "forecast_date",
    "actual_date",
    "status",
    "owner",
    "notes",
];

/// The fields a merge patch names that a `vendor` client may not change, in the patch's
/// order. Members that are no field at all are left to the body's validation (422).
pub fn refused_for_vendor<'a>(patch: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    patch
        .into_iter()
        .map(String::as_str)
        .filter(|name| FIELDS.contains(name) && !VENDOR_WRITABLE.contains(name))
        .collect()
}

/// What a milestone's dates say on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Days the milestone is (or was) late against its baseline: the actual date, else the
    /// forecast date, minus the baseline date. Negative when early; `None` when either
    /// side is missing.
    pub slippage_days: Option<i64>,
    /// Not reached (no actual date), not completed or cancelled, and the date it is due
    /// (the forecast date, else the baseline date) is before `today`.
    pub overdue: bool,
}

/// The statuses in which a milestone can no longer be overdue.
pub const SETTLED: [MilestoneStatus; 2] = [MilestoneStatus::Completed, MilestoneStatus::Cancelled];

/// The one place slippage and overdue are computed. `today` is the caller's "now" (UTC)
/// so that the rule is a pure function of its inputs.
pub fn schedule(
    baseline: Option<NaiveDate>,
    forecast: Option<NaiveDate>,
    actual: Option<NaiveDate>,
    status: MilestoneStatus,
    today: NaiveDate,
) -> Schedule {
    let slippage_days = actual
        .or(forecast)
        .zip(baseline)
        .map(|(reached, planned)| (reached - planned).num_days());
    let due = forecast.or(baseline);
    let overdue = actual.is_none() && !SETTLED.contains(&status) && due.is_some_and(|d| d < today);
    Schedule {
        slippage_days,
        overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MilestoneStatus::*;

    fn d(s: &str) -> Option<NaiveDate> {
        Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    const TODAY: &str = "2026-06-15";

    fn at(
        baseline: Option<NaiveDate>,
        forecast: Option<NaiveDate>,
        actual: Option<NaiveDate>,
        status: MilestoneStatus,
    ) -> Schedule {
        schedule(baseline, forecast, actual, status, d(TODAY).unwrap())
    }

    #[test]
    fn slippage_is_actual_else_forecast_minus_baseline() {
        let b = d("2026-03-01");
        assert_eq!(
            at(b, d("2026-03-11"), None, Planned).slippage_days,
            Some(10)
        );
        // The actual date wins over the forecast.
        assert_eq!(
            at(b, d("2026-03-11"), d("2026-03-04"), Completed).slippage_days,
            Some(3)
        );
        // Early is negative; on time is zero.
        assert_eq!(
            at(b, d("2026-02-20"), None, Planned).slippage_days,
            Some(-9)
        );
        assert_eq!(at(b, None, b, Completed).slippage_days, Some(0));
        // Across a leap day.
        assert_eq!(
            at(d("2028-02-28"), d("2028-03-01"), None, Planned).slippage_days,
            Some(2)
        );
    }

    #[test]
    fn slippage_needs_both_sides() {
        assert_eq!(
            at(None, d("2026-03-11"), d("2026-03-12"), Completed).slippage_days,
            None
        );
        assert_eq!(at(d("2026-03-01"), None, None, Planned).slippage_days, None);
        assert_eq!(at(None, None, None, Planned).slippage_days, None);
    }

    #[test]
    fn overdue_when_the_due_date_has_passed_unreached() {
        // Due yesterday: overdue. Due today or later: not yet.
        assert!(at(None, d("2026-06-14"), None, Planned).overdue);
        assert!(!at(None, d(TODAY), None, Planned).overdue);
        assert!(!at(None, d("2026-06-16"), None, InProgress).overdue);
        // Without a forecast the baseline is the due date.
        assert!(at(d("2026-06-14"), None, None, AtRisk).overdue);
        assert!(!at(d(TODAY), None, None, AtRisk).overdue);
        // A forecast moved into the future rescues a passed baseline, and vice versa.
        assert!(!at(d("2026-01-01"), d("2026-07-01"), None, Planned).overdue);
        assert!(at(d("2026-07-01"), d("2026-06-01"), None, Planned).overdue);
        // `missed` is still overdue: it was not reached.
        assert!(at(d("2026-01-01"), None, None, Missed).overdue);
    }

    #[test]
    fn never_overdue_once_reached_settled_or_undated() {
        // Reached, even late or with an actual date in the future.
        assert!(
            !at(
                d("2026-01-01"),
                d("2026-02-01"),
                d("2026-03-01"),
                InProgress
            )
            .overdue
        );
        assert!(!at(d("2026-01-01"), None, d("2026-07-01"), Planned).overdue);
        // Completed or cancelled without an actual date.
        assert!(!at(d("2026-01-01"), None, None, Completed).overdue);
        assert!(!at(d("2026-01-01"), None, None, Cancelled).overdue);
        // No date at all.
        assert!(!at(None, None, None, Planned).overdue);
    }

    #[test]
    fn vendors_may_touch_dates_status_and_notes_only() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let allowed = names(&["forecast_date", "actual_date", "status", "notes"]);
        assert!(refused_for_vendor(&allowed).is_empty());
        let mixed = names(&["notes", "name", "vendor_id", "no_such_field"]);
        assert_eq!(refused_for_vendor(&mixed), vec!["name", "vendor_id"]);
    }
}
