//! Weekly enrollment counts: one report per site per ISO week, the numbers behind
//! enrollment velocity.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::domain::validation::field_error;
use crate::error::ApiError;

/// One site's counts for one week (the `PUT` body). Each count is for that week only, not
/// cumulative; at most 100,000, far above any real week at one site, which keeps sums over
/// years of weeks inside 32 bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "failures_within_screened"))]
#[schema(example = json!({"screened": 12, "screen_failed": 3, "enrolled": 8, "discontinued": 1, "completed": 0}))]
pub struct EnrollmentCounts {
    /// Participants who entered screening this week.
    #[validate(range(min = 0, max = 100_000))]
    #[schema(minimum = 0, maximum = 100_000)]
    pub screened: i32,
    /// Of those screened this week, how many did not qualify (at most `screened`).
    #[validate(range(min = 0, max = 100_000))]
    #[schema(minimum = 0, maximum = 100_000)]
    pub screen_failed: i32,
    /// Participants randomized or entering treatment this week.
    #[validate(range(min = 0, max = 100_000))]
    #[schema(minimum = 0, maximum = 100_000)]
    pub enrolled: i32,
    /// Participants who withdrew or were lost to follow-up this week.
    #[validate(range(min = 0, max = 100_000))]
    #[schema(minimum = 0, maximum = 100_000)]
    pub discontinued: i32,
    /// Participants who completed the study this week.
    #[validate(range(min = 0, max = 100_000))]
    #[schema(minimum = 0, maximum = 100_000)]
    pub completed: i32,
}

fn failures_within_screened(counts: &EnrollmentCounts) -> Result<(), ValidationError> {
    if counts.screen_failed > counts.screened {
        return Err(field_error(
            "screen_failed",
            "order",
            "must not be more than screened",
        ));
    }
    Ok(())
}

/// The `week_start` of a path: a date, a Monday, and not in the future (the current week
/// may be reported while it runs).
pub fn parse_week_start(text: &str, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    let week_start = crate::domain::validation::strict_date(text)
        .ok_or_else(|| ApiError::invalid("week_start", "format", "must be a date, YYYY-MM-DD"))?;
    if week_start.weekday() != Weekday::Mon {
        return Err(ApiError::invalid(
            "week_start",
            "format",
            "must be a Monday (the first day of an ISO week)",
        ));
    }
    if !crate::domain::validation::date_in_range(&week_start) {
        return Err(ApiError::invalid(
            "week_start",
            "range",
            "must be between 1900-01-01 and 2999-12-31",
        ));
    }
    if week_start > today {
        return Err(ApiError::invalid(
            "week_start",
            "range",
            "must not be in the future",
        ));
    }
    Ok(week_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn week_start_is_a_past_or_current_monday() {
        let today = day("2026-11-25"); // a Wednesday
        assert_eq!(
            parse_week_start("2026-11-23", today).unwrap(),
            day("2026-11-23")
        );
        assert!(parse_week_start("2026-11-16", today).is_ok());
        for bad in ["2026-11-24", "2026-11-30", "2026-02-30", "23.11.2026", ""] {
            assert!(parse_week_start(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn screen_failures_cannot_exceed_screened() {
        let mut counts = EnrollmentCounts {
            screened: 3,
            screen_failed: 3,
            enrolled: 0,
            discontinued: 0,
            completed: 0,
        };
        assert!(counts.validate().is_ok());
        counts.screen_failed = 4;
        assert!(counts.validate().is_err());
        counts.screen_failed = -1;
        assert!(counts.validate().is_err());
    }
}
