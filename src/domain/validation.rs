//! Field rules shared by the resources (codes, dates). Their errors become the `errors[]`
//! of a 422 in `error::field_errors`.

use std::borrow::Cow;

use chrono::NaiveDate;
use validator::ValidationError;

use crate::error::FIELD_PARAM;

fn error(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// A `format` error in `words` unless `ok`.
fn format_rule(ok: bool, words: &'static str) -> Result<(), ValidationError> {
    if ok {
        Ok(())
    } else {
        Err(error("format", words))
    }
}

// The words of two format rules, said the same by the validators below and by
// `pattern_rule` (a refused query parameter, the document's patterns).
const NCT_WORDS: &str = "must be NCT followed by 8 digits, e.g. NCT01234567";
const EUCT_WORDS: &str = "must be an EU CT number, YYYY-5NNNNN-NN-NN";

/// A struct-level rule's error, pinned to the field a client must change.
pub fn field_error(
    field: &'static str,
    code: &'static str,
    message: impl Into<Cow<'static, str>>,
) -> ValidationError {
    let mut err = error(code, message);
    err.add_param(Cow::Borrowed(FIELD_PARAM), &field);
    err
}

/// ClinicalTrials.gov registry id: `NCT` and eight digits.
pub fn nct_id(value: &str) -> Result<(), ValidationError> {
    let digits = value.strip_prefix("NCT").unwrap_or("");
    let ok = digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit());
    format_rule(ok, NCT_WORDS)
}

/// ISO 3166-1 alpha-2 country code, upper case.
pub fn country_code(value: &str) -> Result<(), ValidationError> {
    let upper = value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase());
    format_rule(
        upper && celes::Country::from_alpha2(value).is_ok(),
        "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. DE",
    )
}

/// ISO 4217 currency code, upper case.
pub fn currency_code(value: &str) -> Result<(), ValidationError> {
    let upper = value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase());
    format_rule(
        upper && iso_currency::Currency::from_code(value).is_some(),
        "must be an ISO 4217 currency code in upper case, e.g. EUR",
    )
}

/// EU clinical trial number (CTIS): `YYYY-5NNNNN-NN-NN`.
pub fn euct_number(value: &str) -> Result<(), ValidationError> {
    let parts: Vec<&str> = value.split('-').collect();
    let shape = [4, 6, 2, 2];
    let ok = parts.len() == 4
        && parts
            .iter()
            .zip(shape)
            .all(|(part, len)| part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
        && parts[1].starts_with('5');
    format_rule(ok, EUCT_WORDS)
}

/// The shape the OpenAPI document gives every calendar date (with `format: date`): a year
/// from 1900 to 2999, so the document states the range the service keeps.
pub const DATE_PATTERN: &str = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$";
pub const NCT_PATTERN: &str = "^NCT[0-9]{8}$";
pub const EUCT_PATTERN: &str = "^[0-9]{4}-5[0-9]{5}-[0-9]{2}-[0-9]{2}$";
/// A pseudonymous participant code: 1 to 64 characters, no whitespace, control
/// characters or `@`.
pub const PARTICIPANT_PATTERN: &str = "^[^\\s\\x00-\\x1f\\x7f-\\x9f@]{1,64}$";
/// Text with at least one character that is not whitespace.
pub const NOT_BLANK_PATTERN: &str = "\\S";

/// The code and sentence for a pattern of the document, as the validators say it.
pub fn pattern_rule(pattern: &str) -> Option<(&'static str, &'static str)> {
    Some(match pattern {
        DATE_PATTERN => ("range", "must be between 1900-01-01 and 2999-12-31"),
        NCT_PATTERN => ("format", NCT_WORDS),
        EUCT_PATTERN => ("format", EUCT_WORDS),
        NOT_BLANK_PATTERN => ("blank", "must not be blank"),
        PARTICIPANT_PATTERN => (
            "format",
            "must be a pseudonymous code of 1 to 64 characters without spaces, control characters or @",
        ),
        crate::domain::money::NON_NEGATIVE_PATTERN => (
            "format",
            "must be a decimal string of 0.00 or more with at most two places, such as \"125000.00\"",
        ),
        crate::domain::money::POSITIVE_PATTERN => (
            "format",
            "must be a decimal string above 0.00 with at most two places, such as \"125.50\"",
        ),
        _ => return None,
    })
}

/// Every ISO 3166-1 alpha-2 code [`country_code`] takes, for the document's `enum`.
pub fn country_codes() -> Vec<String> {
    let mut codes: Vec<String> = celes::Country::get_countries()
        .iter()
        .map(|country| country.alpha2.to_string())
        .filter(|code| country_code(code).is_ok())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// Every ISO 4217 code [`currency_code`] takes, for the document's `enum`.
pub fn currency_codes() -> Vec<String> {
    let letters = b'A'..=b'Z';
    let mut codes = Vec::new();
    for a in letters.clone() {
        for b in letters.clone() {
            for c in letters.clone() {
                let code = String::from_utf8_lossy(&[a, b, c]).into_owned();
                if currency_code(&code).is_ok() {
                    codes.push(code);
                }
            }
        }
    }
    codes
}

fn code_schema(codes: Vec<String>, nullable: bool, description: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let mut values: Vec<serde_json::Value> = codes.into_iter().map(Into::into).collect();
    let schema_type = if nullable {
        values.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::from(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

/// The document's schema of a country field: the ISO 3166-1 alpha-2 codes, upper case.
pub fn country_schema() -> utoipa::openapi::Object {
    code_schema(
        country_codes(),
        false,
        "ISO 3166-1 alpha-2 country code, upper case.",
    )
}
pub fn country_or_null_schema() -> utoipa::openapi::Object {
    code_schema(
        country_codes(),
        true,
        "ISO 3166-1 alpha-2 country code, upper case.",
    )
}
/// The document's schema of a currency field: the ISO 4217 codes, upper case.
pub fn currency_schema() -> utoipa::openapi::Object {
    code_schema(
        currency_codes(),
        false,
        "ISO 4217 currency code, upper case.",
    )
}
pub fn currency_or_null_schema() -> utoipa::openapi::Object {
    code_schema(
        currency_codes(),
        true,
        "ISO 4217 currency code, upper case.",
    )
}

/// A date exactly as `YYYY-MM-DD` (chrono alone also takes `2026-1-5` and leading blanks).
pub fn strict_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if shape {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    } else {
        None
    }
}

/// A timestamp exactly as RFC 3339 (`2026-03-01T09:30:00Z`, an offset required, no blanks).
pub fn strict_timestamp(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let date = text.get(..10)?;
    strict_date(date)?;
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) || text.trim() != text {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text).ok()
}

/// The calendar this service keeps: 1900-01-01 to 2999-12-31. Wide for any trial, and well
/// inside what PostgreSQL stores (a year like -5000 parses, but the database refuses it).
pub const FIRST_DATE: (i32, u32, u32) = (1900, 1, 1);
pub const LAST_YEAR: i32 = 2999;

pub fn date_in_range(date: &NaiveDate) -> bool {
    use chrono::Datelike;
    (FIRST_DATE.0..=LAST_YEAR).contains(&date.year())
}

/// A date field's range rule.
pub fn calendar_date(date: &NaiveDate) -> Result<(), ValidationError> {
    if date_in_range(date) {
        Ok(())
    } else {
        Err(error("range", "must be between 1900-01-01 and 2999-12-31"))
    }
}

/// A date query parameter's range rule (400, as for any bad query parameter).
pub fn date_param(name: &str, date: Option<NaiveDate>) -> Result<(), crate::error::ApiError> {
    match date {
        Some(date) if !date_in_range(&date) => Err(crate::error::ApiError::BadRequest(format!(
            "{name} must be between 1900-01-01 and 2999-12-31"
        ))),
        _ => Ok(()),
    }
}

/// Text that is more than whitespace.
pub fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        Err(error("blank", "must not be blank"))
    } else {
        Ok(())
    }
}

/// `later` may not come before `earlier` when both are set.
pub fn dates_in_order(
    earlier: (&'static str, Option<NaiveDate>),
    later: (&'static str, Option<NaiveDate>),
) -> Result<(), ValidationError> {
    match (earlier.1, later.1) {
        (Some(a), Some(b)) if b < a => Err(field_error(
            later.0,
            "order",
            format!("must not be before {}", earlier.0),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use validator::ValidationErrors;

    use super::*;
    use crate::error::{FieldError, field_errors};

    #[test]
    fn nct_ids() {
        assert!(nct_id("NCT01234567").is_ok());
        for bad in [
            "NCT1234567",
            "NCT012345678",
            "nct01234567",
            "NCTABCDEFGH",
            "",
            "XYZ01234567",
        ] {
            assert!(nct_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_stay_in_the_calendar_the_database_keeps() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert!(calendar_date(&d(1900, 1, 1)).is_ok());
        assert!(calendar_date(&d(2999, 12, 31)).is_ok());
        assert!(calendar_date(&d(1899, 12, 31)).is_err());
        assert!(calendar_date(&d(-5000, 1, 1)).is_err());
        assert!(calendar_date(&d(3000, 1, 1)).is_err());
        assert!(date_param("from", Some(d(-5000, 1, 1))).is_err());
        assert!(date_param("from", None).is_ok());
    }

    #[test]
    fn euct_numbers() {
        assert!(euct_number("2026-500123-12-00").is_ok());
        for bad in [
            "2026-400123-12-00",
            "26-500123-12-00",
            "2026-500123-12",
            "2026-5001a3-12-00",
        ] {
            assert!(euct_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_and_currencies() {
        assert!(country_code("DE").is_ok());
        assert!(country_code("US").is_ok());
        for bad in ["de", "XX", "DEU", "", "D"] {
            assert!(country_code(bad).is_err(), "{bad}");
        }
        assert!(currency_code("EUR").is_ok());
        for bad in ["eur", "EU", "XYZ", "EURO"] {
            assert!(currency_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_order_names_the_later_field() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert!(dates_in_order(("a", d("2026-01-01")), ("b", d("2026-01-01"))).is_ok());
        assert!(dates_in_order(("a", None), ("b", d("2026-01-01"))).is_ok());
        let err = dates_in_order(("a", d("2026-01-02")), ("b", d("2026-01-01"))).unwrap_err();
        let mut errors = ValidationErrors::new();
        errors.add("__all__", err);
        let flat = field_errors(&errors);
        assert_eq!(
            flat,
            vec![FieldError::new("b", "order", "must not be before a")]
        );
    }
}
