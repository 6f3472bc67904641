//! Field rules shared by the resources (codes, dates) and the mapping of validator's
//! errors to the `errors[]` of a 422.

use std::borrow::Cow;

use chrono::NaiveDate;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::FieldError;

/// Key of a struct-level error's param that names the field it is about.
const FIELD_PARAM: &str = "field";

fn error(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

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
    if digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(error(
            "format",
            "must be NCT followed by 8 digits, e.g. NCT01234567",
        ))
    }
}

/// ISO 3166-1 alpha-2 country code, upper case.
pub fn country_code(value: &str) -> Result<(), ValidationError> {
    let upper = value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase());
    if upper && celes::Country::from_alpha2(value).is_ok() {
        Ok(())
    } else {
        Err(error(
            "format",
            "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. DE",
        ))
    }
}

/// ISO 4217 currency code, upper case.
pub fn currency_code(value: &str) -> Result<(), ValidationError> {
    let upper = value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase());
    if upper && iso_currency::Currency::from_code(value).is_some() {
        Ok(())
    } else {
        Err(error(
            "format",
            "must be an ISO 4217 currency code in upper case, e.g. EUR",
        ))
    }
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
    if ok {
        Ok(())
    } else {
        Err(error(
            "format",
            "must be an EU CT number, YYYY-5NNNNN-NN-NN",
        ))
    }
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

/// Flattens validator's nested errors into `errors[]`, one entry per problem, with dotted
/// paths for nested structs and `[i]` for list items; sorted for a stable answer.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field).then(a.code.cmp(&b.code)));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (name, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for err in list {
                    let field = match err.params.get(FIELD_PARAM).and_then(|v| v.as_str()) {
                        Some(field) if prefix.is_empty() => field.to_string(),
                        Some(field) => format!("{prefix}.{field}"),
                        None => path.clone(),
                    };
                    out.push(FieldError::new(field, err.code.as_ref(), message_of(err)));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn message_of(err: &ValidationError) -> String {
    if let Some(message) = &err.message {
        return message.to_string();
    }
    let param = |name: &str| err.params.get(name).map(|v| v.to_string());
    match err.code.as_ref() {
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be {min} or more"),
            (None, Some(max)) => format!("must be {max} or less"),
            _ => "out of range".into(),
        },
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            _ => "wrong length".into(),
        },
        "email" => "must be an e-mail address".into(),
        code => format!("invalid ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
