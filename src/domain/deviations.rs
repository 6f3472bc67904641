//! A protocol deviation's writable fields and their rules, and when its reporting is
//! overdue.

use chrono::{Days, NaiveDate};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::db::schema::deviations;
use crate::domain::enums::{DeviationCategory, DeviationImportance, DeviationStatus};
use crate::domain::validation::{dates_in_order, not_blank};

/// Longest participant code kept (the column is `varchar(64)`).
pub const PARTICIPANT_REF_MAX_CHARS: usize = 64;

fn default_status() -> DeviationStatus {
    DeviationStatus::Open
}

/// A protocol deviation as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = deviations, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "deviation_dates_in_order"))]
#[schema(example = json!({
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f",
    "participant_ref": "DE-001-0042",
    "category": "informed_consent",
    "description": "Visit 3 procedures done before the amended consent form was signed.",
    "importance": "important",
    "occurred_on": "2026-03-02",
    "detected_on": "2026-03-04",
    "reported_on": "2026-03-06"
}))]
pub struct DeviationFields {
    /// The partner system's id for this deviation (unique, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study; fixed once the deviation exists.
    pub study_id: Uuid,
    /// A live site of the study; fixed once the deviation exists.
    pub site_id: Uuid,
    /// The participant's pseudonymous code (never a name or an e-mail address): 1 to 64
    /// characters, no whitespace, no `@`.
    #[validate(custom(function = "participant_code"))]
    #[schema(
        example = "DE-001-0042",
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f@]{1,64}$"
    )]
    pub participant_ref: Option<String>,
    pub category: DeviationCategory,
    #[validate(length(min = 1, max = 10_000), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 10_000, pattern = "\\S")]
    pub description: String,
    /// ICH E6(R3): an important deviation may significantly affect the completeness,
    /// accuracy or reliability of key data, or a participant's rights, safety or well-being.
    pub importance: DeviationImportance,
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub occurred_on: NaiveDate,
    /// Not before `occurred_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub detected_on: NaiveDate,
    /// When it was reported to the sponsor; not before `detected_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub reported_on: Option<NaiveDate>,
    /// When it was reported to the IRB / ethics committee; not before `detected_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub irb_reported_on: Option<NaiveDate>,
    /// Defaults to `open`. A deviation is never deleted: `invalidated` withdraws it.
    #[serde(default = "default_status")]
    pub status: DeviationStatus,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub root_cause: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub corrective_action: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub preventive_action: Option<String>,
    /// When the corrective and preventive actions are due.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub capa_due_on: Option<NaiveDate>,
}

fn deviation_dates_in_order(deviation: &DeviationFields) -> Result<(), ValidationError> {
    let detected = ("detected_on", Some(deviation.detected_on));
    dates_in_order(("occurred_on", Some(deviation.occurred_on)), detected)?;
    dates_in_order(detected, ("reported_on", deviation.reported_on))?;
    dates_in_order(detected, ("irb_reported_on", deviation.irb_reported_on))
}

/// A pseudonymous participant code: short, one token, and never an e-mail address. The
/// rule cannot tell a code from a name written as one word, but it refuses the usual ways
/// personal data slips in (a full name with spaces, an address).
pub fn participant_code(value: &str) -> Result<(), ValidationError> {
    let problem = if value.is_empty() {
        Some("must not be empty")
    } else if value.chars().count() > PARTICIPANT_REF_MAX_CHARS {
        Some("must be at most 64 characters")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must be a pseudonymous code without spaces, never a name")
    } else if value.contains('@') {
        Some("must be a pseudonymous code, never an e-mail address")
    } else {
        None
    };
    match problem {
        Some(message) => Err(ValidationError::new("format").with_message(message.into())),
        None => Ok(()),
    }
}

/// Whether an important deviation missed its reporting window: it was reported later than
/// `reporting_days` after detection, or it is still unreported and that window has passed
/// (`today` is the UTC date). Reporting on the window's last day is in time; deviations
/// that are not important have no window.
pub fn reporting_overdue(
    importance: DeviationImportance,
    detected_on: NaiveDate,
    reported_on: Option<NaiveDate>,
    reporting_days: i32,
    today: NaiveDate,
) -> bool {
    if importance != DeviationImportance::Important {
        return false;
    }
    let Some(deadline) = u64::try_from(reporting_days)
        .ok()
        .and_then(|days| detected_on.checked_add_days(Days::new(days)))
    else {
        // A window past the calendar's end (or a negative one, which studies refuse) never
        // closes.
        return false;
    };
    reported_on.unwrap_or(today) > deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviationImportance::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reported_on_the_last_day_is_in_time_a_day_later_is_not() {
        let detected = d("2026-03-01");
        let today = d("2026-06-01");
        assert!(!reporting_overdue(
            Important,
            detected,
            Some(d("2026-03-01")),
            7,
            today
        ));
        assert!(!reporting_overdue(
            Important,
            detected,
            Some(d("2026-03-08")),
            7,
            today
        ));
        assert!(reporting_overdue(
            Important,
            detected,
            Some(d("2026-03-09")),
            7,
            today
        ));
    }

    #[test]
    fn unreported_is_overdue_only_once_the_window_has_passed() {
        let detected = d("2026-03-01");
        assert!(!reporting_overdue(
            Important,
            detected,
            None,
            7,
            d("2026-03-08")
        ));
        assert!(reporting_overdue(
            Important,
            detected,
            None,
            7,
            d("2026-03-09")
        ));
        assert!(!reporting_overdue(
            Important,
            detected,
            None,
            30,
            d("2026-03-09")
        ));
    }

    #[test]
    fn a_late_report_stays_overdue_whatever_today_is() {
        assert!(reporting_overdue(
            Important,
            d("2026-03-01"),
            Some(d("2026-03-20")),
            7,
            d("2026-03-02")
        ));
    }

    #[test]
    fn deviations_that_are_not_important_are_never_overdue() {
        assert!(!reporting_overdue(
            NotImportant,
            d("2020-01-01"),
            None,
            1,
            d("2026-01-01")
        ));
        assert!(!reporting_overdue(
            NotImportant,
            d("2020-01-01"),
            Some(d("2025-01-01")),
            1,
            d("2026-01-01")
        ));
    }

    #[test]
    fn odd_windows_do_not_panic() {
        assert!(!reporting_overdue(
            Important,
            NaiveDate::MAX,
            None,
            7,
            d("2026-01-01")
        ));
        assert!(!reporting_overdue(
            Important,
            d("2026-01-01"),
            None,
            -1,
            d("2026-06-01")
        ));
    }

    #[test]
    fn participant_codes() {
        for ok in ["DE-001-0042", "P0001", "a", &"x".repeat(64), "S01/0042"] {
            assert!(participant_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "   ",
            " P1",
            "Jane Doe",
            "P\t1",
            "a@b.org",
            "jane.doe@example.com",
            &"x".repeat(65),
        ] {
            let err = participant_code(bad).unwrap_err();
            assert_eq!(err.code, "format", "{bad:?}");
        }
    }
}
