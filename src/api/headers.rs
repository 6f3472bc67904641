//! What browsers, caches and BI tools expect on every answer: safe caching headers,
//! `nosniff`, a Content-Security-Policy on Swagger UI, `304 Not Modified`, and CORS for the
//! origins `TRIALOPS_CORS_ORIGINS` names.
//!
//! The rule for caching (also in docs/conventions): answers that may carry secrets (the
//! token endpoint, clients, webhooks) and errors are `no-store`; an answer with a validator
//! (`ETag`) is `private, no-cache` so a browser keeps it but asks again each time, getting
//! a 304 while nothing changed (`no-store` would forbid that revalidation); anything else
//! authenticated is `no-store`.
//!
//! This middleware sits outside `Compress`: it sees the encoded answer, so an `ETag` on a
//! compressed body is made weak (`W/"3"`), like nginx does, and a compressed and an identity
//! answer never share a strong validator. A 304 is cut from the answer before its body is
//! polled, so nothing is compressed for it.

use actix_cors::Cors;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web;

use crate::app::AppState;
use crate::error::ApiError;

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const REVALIDATE: HeaderValue = HeaderValue::from_static("private, no-cache");
const VARY: HeaderValue =
    HeaderValue::from_static("Authorization, Accept, Accept-Encoding, Origin");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
/// Swagger UI's own files only; it styles with inline `style` attributes and draws icons
/// from `data:` URIs, and fetches nothing but the OpenAPI document and the API.
const SWAGGER_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
);

/// Paths whose answers may carry a secret, `no-store` whatever their status (and so with no
/// validator: the OpenAPI document promises none there either).
pub fn carries_secrets(path: &str) -> bool {
    path.starts_with("/oauth/")
        || path.starts_with("/api/v1/clients")
        || path.starts_with("/api/v1/webhooks")
}

/// The answer-headers step of `api::edge::outer`: what it needs to know of the request,
/// taken before the request is handed on.
pub struct AnswerHeaders {
    /// `If-None-Match` of a GET or HEAD.
    conditional: Option<HeaderValue>,
    swagger: bool,
    secret: bool,
}

impl AnswerHeaders {
    /// Refuses a CORS preflight from an unknown origin; otherwise what `apply` needs.
    pub fn of(req: &ServiceRequest) -> Result<Self, ApiError> {
        if let Some(refusal) = refuse_unknown_preflight(req) {
            return Err(refusal);
        }
        let path = req.path();
        Ok(Self {
            conditional: matches!(*req.method(), Method::GET | Method::HEAD)
                .then(|| req.headers().get(header::IF_NONE_MATCH).cloned())
                .flatten(),
            swagger: path.starts_with("/swagger-ui"),
            secret: carries_secrets(path),
        })
    }

    /// The headers above on the answer, or its 304 when `If-None-Match` names its `ETag`.
    /// The body stays as it is (no boxing on the way out): this runs on every request.
    pub fn apply<B: MessageBody>(
        self,
        mut res: ServiceResponse<B>,
    ) -> ServiceResponse<EitherBody<B>> {
        let status = res.status();
        let headers = res.headers_mut();
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        if self.swagger {
            headers.insert(header::CONTENT_SECURITY_POLICY, SWAGGER_CSP);
        }
        weaken_if_encoded(headers);
        let validated = headers.contains_key(header::ETAG);
        if !headers.contains_key(header::CACHE_CONTROL) && !self.swagger {
            if (status.is_success() || status == StatusCode::NOT_MODIFIED)
                && validated
                && !self.secret
            {
                headers.insert(header::CACHE_CONTROL, REVALIDATE);
                headers.insert(header::VARY, VARY);
            } else if status != StatusCode::NOT_MODIFIED {
                headers.insert(header::CACHE_CONTROL, NO_STORE);
            }
        }
        if let Some(if_none_match) = self.conditional
            && status == StatusCode::OK
            && headers
                .get(header::ETAG)
                .is_some_and(|etag| none_match_fails(&if_none_match, etag))
        {
            return not_modified(res);
        }
        res.map_into_left_body()
    }
}

/// actix-cors refuses a preflight from an origin it does not know with a text/plain 400;
/// this says it as every other refusal is said (problem+json), still without any CORS
/// header. Only preflights pay for the look-up.
fn refuse_unknown_preflight(req: &ServiceRequest) -> Option<ApiError> {
    if req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?.as_bytes();
    let state = req.app_data::<web::Data<AppState>>()?;
    let allowed = &state.cors_origins;
    if allowed.is_empty() || allowed.iter().any(|o| o.as_bytes() == origin) {
        return None;
    }
    Some(ApiError::Forbidden(
        "this origin may not call the API from a browser (see TRIALOPS_CORS_ORIGINS)".into(),
    ))
}

/// `W/` before a strong `ETag` when the body is encoded: the bytes differ from the
/// identity answer's, so the validator may only be a weak one.
fn weaken_if_encoded(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONTENT_ENCODING) {
        return;
    }
    let Some(etag) = headers.get(header::ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"W/") {
        return;
    }
    let mut weak = Vec::with_capacity(etag.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(etag.as_bytes());
    if let Ok(weak) = HeaderValue::from_bytes(&weak) {
        headers.insert(header::ETAG, weak);
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 13.1.2), so the
/// condition is false and the answer is a 304.
pub fn none_match_fails(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    fn opaque(tag: &str) -> &str {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag)
    }
    let current = opaque(etag);
    list.trim() == "*" || list.split(',').any(|tag| opaque(tag) == current)
}

/// The 304 of an answer: its validator and caching headers, no body (never polled, so
/// never computed further nor compressed).
fn not_modified<B: MessageBody>(res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let mut res = res.map_body(|head, _body| {
        head.status = StatusCode::NOT_MODIFIED;
        EitherBody::right(BoxBody::new(()))
    });
    let headers = res.headers_mut();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_DISPOSITION,
    ] {
        headers.remove(name);
    }
    res
}

/// CORS for exactly `origins`: every method and header the API takes, and the answer
/// headers a client must read exposed. Requests from other origins go on without any
/// `Access-Control-*` header (the browser then refuses them; a server-side client never
/// cared).
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::ACCEPT_ENCODING,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-change-reason"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let etag = HeaderValue::from_static("\"7\"");
        for header in ["\"7\"", "W/\"7\"", "\"1\", W/\"7\"", "*"] {
            assert!(
                none_match_fails(&HeaderValue::from_static(header), &etag),
                "{header}"
            );
        }
        for header in ["\"8\"", "7", ""] {
            assert!(
                !none_match_fails(&HeaderValue::from_static(header), &etag),
                "{header}"
            );
        }
    }

    #[test]
    fn an_encoded_answer_gets_a_weak_etag() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"3\""));
        weaken_if_encoded(&mut headers);
        assert_eq!(headers.get(header::ETAG).unwrap(), "\"3\"");
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        weaken_if_encoded(&mut headers);
        weaken_if_encoded(&mut headers);
        assert_eq!(headers.get(header::ETAG).unwrap(), "W/\"3\"");
    }
}
