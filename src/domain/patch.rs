//! JSON Merge Patch (RFC 7396) over a resource's writable fields.
//!
//! The current row is turned into its input shape, the patch merged into that JSON, and the
//! result parsed and validated exactly like a create body: one code path for every
//! resource, so a PATCH can never store what a POST would refuse.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::Validate;

use crate::domain::json;
use crate::error::{ApiError, FieldError};

pub fn apply_merge_patch<T>(current: &T, patch: &Value) -> Result<T, ApiError>
where
    T: Serialize + DeserializeOwned + Validate + utoipa::ToSchema,
{
    let Value::Object(members) = patch else {
        return Err(ApiError::BadRequest(
            "a merge patch must be a JSON object".into(),
        ));
    };
    let mut document = serde_json::to_value(current).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("serialising current row"))
    })?;
    json_patch::merge(&mut document, patch);
    // A required field set to null arrives here as "missing": say what really happened.
    let updated: T = json::parse(document).map_err(|error| match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|e| match members.get(&e.field) {
                    Some(Value::Null) if e.code == "required" => {
                        FieldError::new(e.field, "not_nullable", "cannot be null")
                    }
                    _ => e,
                })
                .collect(),
        ),
        other => other,
    })?;

    // `null` removes a member; for a field with a default that would quietly reset it
    // instead of clearing it. Only nullable fields may be set to null.
    let after = serde_json::to_value(&updated).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("serialising patched row"))
    })?;
    let not_nullable: Vec<FieldError> = members
        .iter()
        .filter(|(name, value)| {
            value.is_null() && after.get(name.as_str()).is_some_and(|v| !v.is_null())
        })
        .map(|(name, _)| FieldError::new(name.clone(), "not_nullable", "cannot be null"))
        .collect();
    if !not_nullable.is_empty() {
        return Err(ApiError::Validation(not_nullable));
    }
    updated.validate()?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, Validate, PartialEq, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        #[validate(length(min = 1))]
        name: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default = "seven")]
        days: i32,
    }

    fn seven() -> i32 {
        7
    }

    fn thing() -> Thing {
        Thing {
            name: "a".into(),
            note: Some("n".into()),
            days: 9,
        }
    }

    #[test]
    fn absent_keeps_null_clears_value_sets() {
        let out = apply_merge_patch(&thing(), &json!({"note": null, "name": "b"})).unwrap();
        assert_eq!(
            out,
            Thing {
                name: "b".into(),
                note: None,
                days: 9
            }
        );
        assert_eq!(apply_merge_patch(&thing(), &json!({})).unwrap(), thing());
    }

    #[test]
    fn null_on_a_required_or_defaulted_field_is_refused() {
        for patch in [json!({"name": null}), json!({"days": null})] {
            match apply_merge_patch(&thing(), &patch) {
                Err(ApiError::Validation(errors)) => {
                    assert_eq!(errors.len(), 1, "{patch}");
                    assert_eq!(errors[0].code, "not_nullable", "{patch}");
                }
                other => panic!("{patch}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_wrong_types_and_invalid_values_are_refused() {
        assert!(matches!(
            apply_merge_patch(&thing(), &json!({"id": "x"})),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            apply_merge_patch(&thing(), &json!({"days": "x"})),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            apply_merge_patch(&thing(), &json!({"name": ""})),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            apply_merge_patch(&thing(), &json!([1])),
            Err(ApiError::BadRequest(_))
        ));
    }
}
