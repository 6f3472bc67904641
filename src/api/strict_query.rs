//! Query strings held to the OpenAPI document: a parameter the operation does not declare
//! is a 400 naming it (a typo in a filter name must not return the whole collection), and
//! a declared date or timestamp must be exactly `YYYY-MM-DD` or RFC 3339. One middleware
//! for every operation, driven by the parameters the document lists, so an endpoint that
//! takes no query refuses every parameter, and the document and the server cannot differ.
//!
//! Not checked: `/oauth/token`, which must ignore unknown form fields (RFC 6749 §3.2), and
//! what the document does not list (Swagger UI and its assets).

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::dev::ServiceRequest;
use serde_json::Value;

use crate::domain::validation::{strict_date, strict_timestamp};
use crate::error::ApiError;

/// The query parameters an operation declares, with their `format` when they have one.
#[derive(Debug, Default)]
struct Operation {
    parameters: HashMap<String, Option<String>>,
}

/// Path templates (as segments) and their operations by method.
#[derive(Debug, Default)]
pub struct QueryRules(Vec<(Vec<String>, HashMap<String, Operation>)>);

/// Paths whose query (or form) is not ours to judge.
const EXEMPT: &[&str] = &["/oauth/token"];

impl QueryRules {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let doc = serde_json::to_value(api).unwrap_or_default();
        let mut rules = Vec::new();
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Self(rules);
        };
        for (path, item) in paths {
            if EXEMPT.contains(&path.as_str()) {
                continue;
            }
            let mut operations = HashMap::new();
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let parameters = operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                    .filter_map(|p| {
                        let name = p.get("name")?.as_str()?.to_string();
                        let format = p
                            .pointer("/schema/format")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        Some((name, format))
                    })
                    .collect();
                operations.insert(method.to_ascii_uppercase(), Operation { parameters });
            }
            rules.push((path.split('/').map(str::to_string).collect(), operations));
        }
        Self(rules)
    }

    /// The operation `method path` names: of the templates that match, the one with the
    /// most literal segments (`/studies/import/ctgov` before `/studies/{id}/...`).
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let method = if method == "HEAD" { "GET" } else { method };
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| {
                        t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty())
                    })
            })
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
            .and_then(|(_, operations)| operations.get(method))
    }

    /// `Err` with the 400 to answer when the query breaks the operation's declaration.
    pub fn check(&self, method: &str, path: &str, query: &str) -> Result<(), ApiError> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if pairs
            .iter()
            .any(|(key, value)| key.contains('\0') || value.contains('\0'))
        {
            return Err(ApiError::BadRequest(
                "query parameters must not contain U+0000".into(),
            ));
        }
        let Some(operation) = self.operation(method, path) else {
            return Ok(());
        };
        let mut unknown: Vec<&str> = pairs
            .iter()
            .map(|(key, _)| key.as_str())
            .filter(|key| !operation.parameters.contains_key(*key))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            let mut known: Vec<&str> = operation.parameters.keys().map(String::as_str).collect();
            known.sort_unstable();
            let takes = if known.is_empty() {
                "this endpoint takes no query parameters".to_string()
            } else {
                format!("this endpoint takes: {}", known.join(", "))
            };
            let noun = if unknown.len() == 1 {
                "unknown query parameter"
            } else {
                "unknown query parameters"
            };
            return Err(ApiError::BadRequest(format!(
                "{noun}: {} ({takes})",
                unknown.join(", ")
            )));
        }
        for (key, value) in &pairs {
            match operation.parameters.get(key).and_then(Option::as_deref) {
                Some("date") if strict_date(value).is_none() => {
                    return Err(ApiError::BadRequest(format!(
                        "{key} must be a date, YYYY-MM-DD"
                    )));
                }
                Some("date-time") if strict_timestamp(value).is_none() => {
                    return Err(ApiError::BadRequest(format!(
                        "{key} must be an RFC 3339 timestamp, e.g. 2026-03-01T09:30:00Z"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

static RULES: LazyLock<QueryRules> =
    LazyLock::new(|| QueryRules::from_openapi(&crate::api::document::openapi()));

/// The query of a request checked by [`QueryRules::check`] before any handler runs
/// (U+0000 included: PostgreSQL text cannot hold it); a step of `api::edge::inner`.
pub fn check(req: &ServiceRequest) -> Result<(), ApiError> {
    // No query, nothing to refuse: spares most requests the search for their operation
    // among every path template (1.5 % of the service's CPU in the read benchmark).
    if req.query_string().is_empty() {
        return Ok(());
    }
    RULES.check(req.method().as_str(), req.path(), req.query_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_named() {
        let rules = QueryRules::from_openapi(&crate::api::document::openapi());
        assert!(rules.check("GET", "/api/v1/sites", "limit=2").is_ok());
        let error = rules
            .check("GET", "/api/v1/sites", "site_id=x&limit=2")
            .unwrap_err();
        assert!(error.to_string().contains("site_id"), "{error}");
        assert!(rules.check("GET", "/healthz", "x=1").is_err());
        assert!(rules.check("POST", "/oauth/token", "x=1").is_ok());
        assert!(rules.check("GET", "/swagger-ui/index.html", "x=1").is_ok());
        assert!(
            rules
                .check("POST", "/api/v1/studies/import/ctgov", "dry_run=true")
                .is_ok()
        );
    }

    #[test]
    fn dates_and_timestamps_are_exact() {
        let rules = QueryRules::from_openapi(&crate::api::document::openapi());
        let check = |query: &str| rules.check("GET", "/api/v1/enrollment", query).is_ok();
        assert!(check("from=2026-01-05"));
        assert!(!check("from=2026-1-5"));
        assert!(!check("from=%202026-01-05"));
        assert!(!check("from=2026-01-05%20"));
        assert!(check("updated_since=2026-03-01T09:30:00Z"));
        assert!(check("updated_since=2026-03-01T09:30:00%2B01:00"));
        assert!(!check("updated_since=2026-03-01T09:30:00"));
        assert!(!check("updated_since=2026-03-01%2009:30:00Z"));
        assert!(!check("updated_since=%202026-03-01T09:30:00Z"));
    }
}
