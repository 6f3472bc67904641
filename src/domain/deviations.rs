//! A protocol deviation's rules on participant references, and when its reporting is
//! overdue.

use chrono::{Days, NaiveDate};
use validator::ValidationError;

use crate::domain::enums::DeviationImportance;

/// Longest participant code kept (the column is `varchar(64)`).
pub const PARTICIPANT_REF_MAX_CHARS: usize = 64;

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
