//! Answers for requests no route takes: 405 (with `Allow`) when the path exists under
//! another method, 404 otherwise. actix alone would answer both with an empty 404.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Path templates and their methods, read from the OpenAPI document, which lists exactly
/// the routes registered.
pub struct KnownRoutes(Vec<(Vec<String>, Vec<String>)>);

impl KnownRoutes {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let doc = serde_json::to_value(api).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
            for (path, item) in paths {
                let methods: Vec<String> = ["get", "post", "put", "patch", "delete"]
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                routes.push((segments(path), methods));
            }
        }
        Self(routes)
    }

    /// The methods allowed on `path`, if any route template matches it.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let wanted = segments(path);
        let matching: Vec<&(Vec<String>, Vec<String>)> = self
            .0
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| {
                        t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty())
                    })
            })
            .collect();
        // `/risks/batch` is its own route, not a risk with the id "batch": the template with
        // the most literal segments names the resource.
        let literal =
            |template: &Vec<String>| template.iter().filter(|t| !t.starts_with('{')).count();
        let most = matching.iter().map(|(t, _)| literal(t)).max().unwrap_or(0);
        let mut allowed: Vec<String> = matching
            .into_iter()
            .filter(|(template, _)| literal(template) == most)
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        allowed.sort();
        allowed.dedup();
        (!allowed.is_empty()).then_some(allowed)
    }
}

/// `/a/b/` keeps its empty last segment: it is not the route `/a/b`.
fn segments(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

pub async fn not_found_or_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(refusal(&req))
}

/// 405 when the path's own route (by [`KnownRoutes::allowed`]) takes other methods only,
/// else 404.
pub fn refusal(req: &HttpRequest) -> ApiError {
    let method = req.method().as_str();
    let allowed = req
        .app_data::<web::Data<KnownRoutes>>()
        .and_then(|routes| routes.allowed(req.path()));
    match allowed {
        // A route that allows this very method would have taken the request: whatever did
        // not match, it is no 405.
        Some(allow) if !allow.iter().any(|m| m == method) => ApiError::MethodNotAllowed { allow },
        _ => ApiError::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates() {
        let routes = KnownRoutes(vec![
            (
                segments("/api/v1/deviations/{id}"),
                vec!["GET".into(), "PATCH".into()],
            ),
            (
                segments("/api/v1/deviations"),
                vec!["GET".into(), "POST".into()],
            ),
        ]);
        assert_eq!(
            routes.allowed("/api/v1/deviations/123"),
            Some(vec!["GET".into(), "PATCH".into()])
        );
        assert_eq!(
            routes.allowed("/api/v1/deviations"),
            Some(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(routes.allowed("/api/v1/deviations/1/2"), None);
        assert_eq!(routes.allowed("/api/v1/nothing"), None);
        assert_eq!(
            routes.allowed("/api/v1/deviations/"),
            None,
            "an empty id names nothing"
        );
        assert_eq!(routes.allowed("/api/v1/deviations//"), None);
    }
}
