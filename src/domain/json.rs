//! Reading request JSON with errors that name the field.
//!
//! The split follows the contract: malformed JSON and wrong types are a 400; a well-formed
//! value that is not allowed (unknown enum value, unknown or missing field) is a 422 with
//! the field's path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, FieldError};

pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    refuse_nul_characters(&document, "")?;
    from_value(document)
}

/// PostgreSQL text cannot hold U+0000, and no field of ours has a use for it: refuse it as
/// the client's error, naming the field, before it could reach a query.
fn refuse_nul_characters(value: &Value, path: &str) -> Result<(), ApiError> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => Err(ApiError::invalid(
            if path.is_empty() { "body" } else { path },
            "nul_character",
            "must not contain U+0000",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| refuse_nul_characters(item, &format!("{path}[{i}]"))),
        Value::Object(members) => members.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(ApiError::invalid(
                    &join(key),
                    "nul_character",
                    "field names must not contain U+0000",
                ));
            }
            refuse_nul_characters(item, &join(key))
        }),
        _ => Ok(()),
    }
}

pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(classify)
}

fn classify(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner();
    if !inner.is_data() {
        return ApiError::BadRequest(format!("malformed JSON: {inner}"));
    }
    // serde_json appends " at line L column C" to data errors; the field path says more.
    let full = inner.to_string();
    let message = full.split(" at line ").next().unwrap_or(&full).to_string();
    let field = |fallback: &str| {
        if fallback.is_empty() || fallback == "." {
            "body".to_string()
        } else {
            fallback.to_string()
        }
    };
    let named = |prefix: &str| {
        // "missing field `x`" / "unknown field `x`, expected ...": the path is the parent.
        let name = message.split('`').nth(1).unwrap_or_default();
        match path.as_str() {
            "" | "." => name.to_string(),
            parent => format!("{parent}.{name}"),
        }
        .trim_start_matches(prefix)
        .to_string()
    };
    if message.starts_with("invalid type: null") {
        ApiError::invalid(&field(&path), "not_nullable", "cannot be null")
    } else if message.starts_with("missing field") {
        ApiError::invalid(&named(""), "required", "is required")
    } else if message.starts_with("unknown field") {
        ApiError::Validation(vec![FieldError::new(
            field(&path),
            "unknown_field",
            "is not a field of this resource, or is read-only",
        )])
    } else if message.starts_with("unknown variant") {
        ApiError::invalid(&field(&path), "enum", message)
    } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
        ApiError::BadRequest(format!("wrong type at `{}`: {message}", field(&path)))
    } else {
        // Everything else is a value its type refused: a date that does not exist, a
        // malformed UUID, a number out of range for its field.
        ApiError::invalid(&field(&path), "format", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
        day: Option<chrono::NaiveDate>,
        kind: Option<crate::domain::enums::SiteStatus>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    fn field_of(result: Result<Outer, ApiError>) -> (String, String) {
        match result {
            Err(ApiError::Validation(errors)) => (errors[0].field.clone(), errors[0].code.clone()),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn syntax_and_type_errors_are_400() {
        assert!(matches!(
            from_slice::<Outer>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            from_slice::<Outer>(br#"{"inner": {"count": 1}} x"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            from_slice::<Outer>(br#"{"inner": {"count": "1"}}"#),
            Err(ApiError::BadRequest(_))
        ));
        let r = from_slice::<Outer>(b"[]");
        assert!(matches!(r, Err(ApiError::BadRequest(_))), "{r:?}");
    }

    #[test]
    fn nul_characters_are_422_naming_the_field() {
        assert_eq!(
            field_of(from_slice(br#"{"inner": {"count": 1, "x": "a\u0000b"}}"#)),
            ("inner.x".into(), "nul_character".into())
        );
        assert_eq!(
            field_of(from_slice(br#"{"inner": [{"a": "\u0000"}]}"#)),
            ("inner[0].a".into(), "nul_character".into())
        );
    }

    #[test]
    fn value_errors_are_422_with_the_path() {
        assert_eq!(
            field_of(from_slice(br#"{"inner": {}}"#)),
            ("inner.count".into(), "required".into())
        );
        assert_eq!(
            field_of(from_slice(br#"{"inner": {"count": 1, "x": 2}}"#)),
            ("inner.x".into(), "unknown_field".into())
        );
        assert_eq!(
            field_of(from_slice(br#"{"inner": {"count": 1, "kind": "nope"}}"#)),
            ("inner.kind".into(), "enum".into())
        );
        assert_eq!(
            field_of(from_slice(
                br#"{"inner": {"count": 1, "day": "2026-02-30"}}"#
            )),
            ("inner.day".into(), "format".into())
        );
        assert_eq!(
            field_of(from_slice(br#"{"inner": null}"#)),
            ("inner".into(), "not_nullable".into())
        );
    }
}
