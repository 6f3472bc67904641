//! A milestone's writable fields, its rules, and the two values derived from its dates
//! (`slippage_days`, `overdue`), computed here and nowhere else.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::db::schema::milestones;
use crate::domain::enums::{MilestoneKind, MilestoneStatus};
use crate::domain::validation::not_blank;

fn default_status() -> MilestoneStatus {
    MilestoneStatus::Planned
}

/// A milestone as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = milestones, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "CTMS-MS-0107",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "vendor_id": "0193f0e6-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
    "name": "Central lab kits shipped to all activated sites",
    "kind": "vendor_deliverable",
    "baseline_date": "2026-04-01",
    "forecast_date": "2026-04-10",
    "status": "in_progress",
    "owner": "Clinical supplies lead"
}))]
pub struct MilestoneFields {
    /// The partner system's id for this milestone (unique among live milestones, up to 100
    /// chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study the milestone belongs to; fixed once the milestone exists.
    pub study_id: Uuid,
    /// A site of the same study, for site-level milestones (e.g. `site_activation`).
    pub site_id: Option<Uuid>,
    /// The vendor responsible, for vendor deliverables. The vendor's clients read the
    /// milestone and may update its forecast and actual dates, status and notes.
    pub vendor_id: Option<Uuid>,
    #[validate(length(min = 1, max = 300), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: String,
    pub kind: MilestoneKind,
    /// The date first planned, against which slippage is measured.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub baseline_date: Option<NaiveDate>,
    /// The date currently expected.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub forecast_date: Option<NaiveDate>,
    /// The date the milestone was reached.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub actual_date: Option<NaiveDate>,
    /// Defaults to `planned`.
    #[serde(default = "default_status")]
    pub status: MilestoneStatus,
    /// Who answers for the milestone (a person or a function).
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub owner: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub notes: Option<String>,
}

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
    fn fields_lists_every_writable_field() {
        let fields = MilestoneFields {
            external_id: None,
            study_id: Uuid::nil(),
            site_id: None,
            vendor_id: None,
            name: "n".into(),
            kind: MilestoneKind::Other,
            baseline_date: None,
            forecast_date: None,
            actual_date: None,
            status: Planned,
            owner: None,
            notes: None,
        };
        let json = serde_json::to_value(fields).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = FIELDS.to_vec();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert!(VENDOR_WRITABLE.iter().all(|f| FIELDS.contains(f)));
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
