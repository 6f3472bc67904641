//! Reading request JSON with errors that name the field.
//!
//! The split follows the contract: malformed JSON, or a body that is not a JSON object, is a
//! 400; anything else wrong is a 422 that names every invalid field at once. A body is
//! checked against the JSON Schema of its type, the one the OpenAPI document publishes
//! (`utoipa::ToSchema`), so the document states each rule the server applies to a field and
//! a client learns of all its mistakes in one round trip. serde then builds the value, and
//! only reports what the schema cannot say.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{JsonType, ValidationError, Validator};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::domain::validation::pattern_rule;
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
    serde_path_to_error::deserialize(integral_numbers(value)).map_err(classify)
}

/// A JSON body of type `T`: every field checked against `T`'s published JSON Schema (all
/// errors at once, 422), then built by serde. `2.0` counts as the integer 2, as it does in
/// JSON Schema.
pub fn parse<T: DeserializeOwned + ToSchema>(value: Value) -> Result<T, ApiError> {
    let value = integral_numbers(value);
    let errors = schema_errors::<T>(&value, "");
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    from_value(value)
}

/// The errors of `value` against `T`'s schema, with paths below `prefix` (`items[3]`),
/// sorted by field; empty when it conforms.
pub fn schema_errors<T: ToSchema>(value: &Value, prefix: &str) -> Vec<FieldError> {
    let Some(compiled) = compiled::<T>() else {
        return Vec::new();
    };
    let errors: Vec<ValidationError<'_>> = compiled.validator.iter_errors(value).collect();
    if errors.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for error in &errors {
        // The locations point into the document the validator was compiled from.
        describe(error, prefix, &compiled.document, &mut out);
    }
    // A value of the wrong JSON type breaks its other rules too (an enum, a pattern): the
    // type error alone says what to fix.
    let mistyped: Vec<String> = out
        .iter()
        .filter(|e| e.code == "type" || e.code == "not_nullable")
        .map(|e| e.field.clone())
        .collect();
    out.retain(|e| e.code == "type" || e.code == "not_nullable" || !mistyped.contains(&e.field));
    out.sort_by(|a, b| a.field.cmp(&b.field).then(a.code.cmp(&b.code)));
    out.dedup();
    out
}

/// `T`'s schema, with the schemas it refers to, as one JSON Schema document.
pub fn schema_document<T: ToSchema>() -> Value {
    let mut schemas = Vec::new();
    T::schemas(&mut schemas);
    let mut components = Map::new();
    for (name, schema) in schemas {
        components.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    let name = T::name().to_string();
    components.insert(
        name.clone(),
        serde_json::to_value(T::schema()).unwrap_or_default(),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": {"schemas": components},
    })
}

/// A body type's schema document and the validator compiled from it.
struct Compiled {
    document: Value,
    validator: Validator,
}

/// Compiled once per type; the schemas are fixed at build time. The document is kept too:
/// building it again for every refused body would cost more than the check itself. `None`
/// only if a schema did not compile (a test keeps every body schema compiling): then serde
/// and the validators still judge the body.
fn compiled<T: ToSchema>() -> Option<Arc<Compiled>> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<Compiled>>>>> =
        LazyLock::new(Default::default);
    let name = T::name().to_string();
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(compiled) = cache.get(&name) {
        return compiled.clone();
    }
    let document = schema_document::<T>();
    let compiled = match compile(&document) {
        Ok(validator) => Some(Arc::new(Compiled {
            document,
            validator,
        })),
        Err(error) => {
            tracing::error!(schema = %name, error = %error, "a body schema does not compile");
            None
        }
    };
    cache.insert(name, compiled.clone());
    compiled
}

/// A JSON Schema document compiled as the service checks bodies: formats enforced.
pub fn compile(document: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(document)
        .map_err(|error| error.to_string())
}

/// `2.0` (a number with an integral value) becomes `2`, so serde reads it where an integer
/// is expected; JSON Schema cannot tell them apart, so neither does the service.
fn integral_numbers(value: Value) -> Value {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => match number.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 => {
                Value::from(x as i64)
            }
            _ => Value::Number(number),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, item)| (key, integral_numbers(item)))
                .collect(),
        ),
        other => other,
    }
}

/// `/items/3/likelihood` below `prefix` as `prefix.items[3].likelihood`.
fn field_path(prefix: &str, pointer: &jsonschema::paths::Location) -> String {
    let mut path = prefix.to_string();
    for segment in pointer.segments() {
        match segment {
            jsonschema::paths::LocationSegment::Index(index) => {
                path.push_str(&format!("[{index}]"))
            }
            jsonschema::paths::LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
        }
    }
    path
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn json_type_words(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    }
}

fn limit_text(limit: &Value) -> String {
    match limit {
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// One schema error as `errors[]` entries, in the API's words: JSON types, field names and
/// the rule, never a Rust type.
fn describe(
    error: &ValidationError<'_>,
    prefix: &str,
    document: &Value,
    out: &mut Vec<FieldError>,
) {
    let path = field_path(prefix, error.instance_path());
    let at = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    let here = at(&path);
    macro_rules! push {
        ($code:expr, $message:expr $(,)?) => {
            out.push(FieldError::new(here.clone(), $code, String::from($message)))
        };
    }
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(FieldError::new(
                join(&path, name),
                "required",
                "is required",
            ));
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                out.push(FieldError::new(
                    join(&path, name),
                    "unknown_field",
                    "is not a field of this resource, or is read-only",
                ));
            }
        }
        ValidationErrorKind::Type { kind } => {
            if error.instance().is_null() {
                push!("not_nullable", "cannot be null");
                return;
            }
            let words: Vec<&str> = match kind {
                jsonschema::error::TypeKind::Single(kind) => vec![json_type_words(*kind)],
                jsonschema::error::TypeKind::Multiple(kinds) => kinds
                    .iter()
                    .filter(|kind| *kind != JsonType::Null)
                    .map(json_type_words)
                    .collect(),
            };
            // Money is a string so that no client rounds it through a float: say how to
            // write it rather than only which JSON type it is not.
            let rule = error
                .schema_path()
                .as_str()
                .rsplit_once('/')
                .and_then(|(parent, _)| document.pointer(parent));
            if rule.and_then(|r| r.get("format")).and_then(Value::as_str) == Some("decimal") {
                push!(
                    "type",
                    "must be a decimal string with at most two places, such as \"125.50\", not a JSON number",
                );
                return;
            }
            push!("type", format!("must be {}", words.join(" or ")));
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<String> = options
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter(|v| !v.is_null())
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            if names.len() > 40 && names.iter().all(|n| n.len() == 2) {
                push!(
                    "format",
                    "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. DE",
                );
            } else if names.len() > 40 && names.iter().all(|n| n.len() == 3) {
                push!(
                    "format",
                    "must be an ISO 4217 currency code in upper case, e.g. EUR",
                );
            } else {
                push!("enum", format!("must be one of: {}", names.join(", ")));
            }
        }
        ValidationErrorKind::Constant { expected_value } => {
            push!("enum", format!("must be {expected_value}"))
        }
        ValidationErrorKind::Minimum { limit } => {
            push!("range", format!("must be {} or more", limit_text(limit)))
        }
        ValidationErrorKind::Maximum { limit } => {
            push!("range", format!("must be {} or less", limit_text(limit)))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            push!("range", format!("must be more than {}", limit_text(limit)))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            push!("range", format!("must be less than {}", limit_text(limit)))
        }
        ValidationErrorKind::MinLength { limit } => {
            push!("length", format!("length must be at least {limit}"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            push!("length", format!("length must be at most {limit}"))
        }
        ValidationErrorKind::MinItems { limit } => {
            push!("length", format!("must hold at least {limit} items"))
        }
        ValidationErrorKind::MaxItems { limit } => {
            push!("length", format!("must hold at most {limit} items"))
        }
        ValidationErrorKind::UniqueItems => push!("unique", "items must be distinct"),
        // A malformed date fails `format` too: one error says it.
        ValidationErrorKind::Pattern { pattern }
            if pattern == crate::domain::validation::DATE_PATTERN
                && error
                    .instance()
                    .as_str()
                    .is_some_and(|text| crate::domain::validation::strict_date(text).is_none()) => {
        }
        // An amount that is a decimal but too small breaks a range, not a format.
        ValidationErrorKind::Pattern { pattern }
            if (pattern == crate::domain::money::NON_NEGATIVE_PATTERN
                || pattern == crate::domain::money::POSITIVE_PATTERN)
                && error
                    .instance()
                    .as_str()
                    .and_then(|text| text.parse::<crate::domain::money::Money>().ok())
                    .is_some() =>
        {
            if pattern == crate::domain::money::POSITIVE_PATTERN {
                push!("range", "must be more than 0.00")
            } else {
                push!("range", "must be 0.00 or more")
            }
        }
        ValidationErrorKind::Pattern { pattern } => match pattern_rule(pattern) {
            Some((code, message)) => push!(code, message),
            None => push!("format", format!("must match the pattern {pattern}")),
        },
        // `email` keeps the code the service has always answered for a bad address.
        ValidationErrorKind::Format { format } if format == "email" => {
            push!("email", "must be an e-mail address")
        }
        ValidationErrorKind::Format { format } => push!(
            "format",
            match format.as_str() {
                "date" => "must be a date, YYYY-MM-DD".to_string(),
                "date-time" => {
                    "must be an RFC 3339 timestamp, e.g. 2026-03-01T09:30:00Z".into()
                }
                "uuid" => "must be a UUID".to_string(),
                "uri" => "must be an absolute URL".to_string(),
                other => format!("must be a valid {other}"),
            },
        ),
        // A nullable reference (`oneOf: [null, X]`) or a choice of shapes: the errors of the
        // branch the value was meant for, the one that is not just "not null".
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let meant = context.iter().find(|branch| {
                !branch.iter().all(|e| {
                    matches!(
                        e.kind(),
                        ValidationErrorKind::Type {
                            kind: jsonschema::error::TypeKind::Single(JsonType::Null)
                        }
                    )
                })
            });
            match meant {
                Some(branch) if !branch.is_empty() => {
                    for inner in branch {
                        describe(inner, prefix, document, out);
                    }
                }
                _ => push!("invalid", "does not match any allowed shape"),
            }
        }
        _ => push!("invalid", "is not allowed here"),
    }
}

/// Maps serde's error to ours, in the API's words. The schema check comes first, so this is
/// what a schema cannot say (a 30 February).
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
        let allowed = message.split("expected ").nth(1).unwrap_or_default();
        ApiError::invalid(
            &field(&path),
            "enum",
            format!("must be {}", allowed.replace('`', "")),
        )
    } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
        let expected = message.split("expected ").nth(1).unwrap_or_default();
        ApiError::invalid(
            &field(&path),
            "type",
            format!("must be {}", json_words(expected)),
        )
    } else if message.starts_with("invalid value") {
        ApiError::invalid(
            &field(&path),
            "format",
            "is not a valid value for this field",
        )
    } else {
        // Everything else is a value its type refused: a date that does not exist, a
        // malformed UUID, a number out of range for its field. serde's words name Rust
        // types, so the message is ours.
        let words = if message.contains("out of range") || message.contains("overflow") {
            "is out of range"
        } else if message.contains("UUID") || message.contains("uuid") {
            "must be a UUID"
        } else if message.contains("premature end")
            || message.contains("input contains invalid characters")
            || message.contains("input is out of range")
            || message.contains("no possible date")
            || message.contains("trailing input")
            || message.contains("input is not enough")
        {
            "must be an existing date, YYYY-MM-DD (a timestamp: RFC 3339)"
        } else {
            "is not a valid value for this field"
        };
        ApiError::invalid(&field(&path), "format", words)
    }
}

/// serde's "expected ..." in JSON's words: `i32` is an integer, `struct X` an object.
fn json_words(expected: &str) -> &'static str {
    let expected = expected.trim();
    let integers = [
        "i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128", "usize", "isize",
    ];
    if integers.contains(&expected) || expected.contains("integer") {
        "an integer"
    } else if expected == "f32" || expected == "f64" || expected.contains("float") {
        "a number"
    } else if expected.starts_with("struct") || expected.contains("map") {
        "an object"
    } else if expected.contains("sequence")
        || expected.contains("tuple")
        || expected.contains("array")
    {
        "an array"
    } else if expected.contains("bool") {
        "a boolean"
    } else if expected.contains("string")
        || expected.contains("UUID")
        || expected.contains("date")
        || expected.contains("char")
        || expected.contains("variant")
        || expected.contains("enum")
    {
        "a string"
    } else {
        "a value of the field's type"
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
    fn syntax_errors_are_400_and_type_errors_422_in_json_words() {
        assert!(matches!(
            from_slice::<Outer>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            from_slice::<Outer>(br#"{"inner": {"count": 1}} x"#),
            Err(ApiError::BadRequest(_))
        ));
        match from_slice::<Outer>(br#"{"inner": {"count": "1"}}"#) {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors[0].field, "inner.count");
                assert_eq!(errors[0].code, "type");
                assert_eq!(errors[0].message, "must be an integer");
            }
            other => panic!("{other:?}"),
        }
        match from_slice::<Outer>(b"[]") {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].message, "must be an object"),
            other => panic!("{other:?}"),
        }
        // `2.0` is the integer 2.
        assert!(from_slice::<Outer>(br#"{"inner": {"count": 2.0}}"#).is_ok());
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
