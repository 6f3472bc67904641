//! The per-client rate limit (contract section 2): a fixed one-minute window counted in
//! PostgreSQL (`db::rate_limits`), checked by the `Caller` extractor, and reported on every
//! authenticated answer as `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// Where a caller stands in the current window; kept in the request's extensions by the
/// `Caller` extractor for the header middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u32,
}

impl RateLimitStatus {
    /// `None` when the limit is off (0).
    pub fn new(limit: u32, hits: i32, reset_seconds: i32) -> Option<Self> {
        (limit > 0).then(|| Self {
            limit,
            remaining: limit.saturating_sub(u32::try_from(hits).unwrap_or(u32::MAX)),
            reset_seconds: u32::try_from(reset_seconds).unwrap_or(0).max(1),
        })
    }

    pub fn exceeded(&self, hits: i32) -> bool {
        i64::from(hits) > i64::from(self.limit)
    }
}

/// Middleware: adds the `RateLimit-*` headers to answers of authenticated requests,
/// including their error answers (a 429 among them).
pub async fn rate_limit_headers<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let status = response
        .request()
        .extensions()
        .get::<RateLimitStatus>()
        .copied();
    if let Some(status) = status {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", status.limit),
            ("ratelimit-remaining", status.remaining),
            ("ratelimit-reset", status.reset_seconds),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_counts_down_and_stops_at_zero() {
        let status = RateLimitStatus::new(3, 1, 40).unwrap();
        assert_eq!((status.remaining, status.reset_seconds), (2, 40));
        assert_eq!(RateLimitStatus::new(3, 5, 0).unwrap().remaining, 0);
        assert_eq!(RateLimitStatus::new(3, 5, 0).unwrap().reset_seconds, 1);
        assert!(!status.exceeded(3) && status.exceeded(4));
        assert_eq!(
            RateLimitStatus::new(0, 1, 40),
            None,
            "0 turns the limit off"
        );
    }
}
