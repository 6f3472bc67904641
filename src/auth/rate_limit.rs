//! The per-client rate limit (contract section 2): a fixed one-minute window, checked by
//! the `Caller` extractor, and reported on every authenticated answer as `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`.
//!
//! The budget is shared by every instance without a database write per request: an
//! instance leases a share of a client's window from PostgreSQL (`db::rate_limits`,
//! a twentieth of the limit at a time) and spends it from memory. PostgreSQL never leases
//! out more than the limit, so all instances together answer at most `limit` requests of a
//! client in a window. The price: a share leased by one instance and not spent there is
//! not available to another until the next window (at most one share per instance).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};

use crate::db::{self, Pool};
use crate::domain::ids::ClientId;
use crate::error::ApiError;

/// Where a caller stands in the current window; kept in the request's extensions by the
/// `Caller` extractor for the header middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u32,
}

/// What an instance holds of a client's current window.
#[derive(Debug)]
struct Share {
    /// When the window ends (the database's reset, on this instance's monotonic clock).
    ends: Instant,
    /// Requests left to spend from memory.
    left: u32,
    /// The budget leased out to every instance as of this instance's last lease.
    leased: i64,
    /// The last lease got nothing: refuse without asking again until the window ends.
    exhausted: bool,
}

/// The per-client limit, leased from PostgreSQL in shares (see the module doc).
pub struct RateLimiter {
    /// Requests per client per minute; 0 turns the limit off.
    limit: u32,
    shares: moka::sync::Cache<ClientId, Arc<Mutex<Share>>>,
}

/// What `RateLimiter::admit` decided.
pub enum Admission {
    Allowed(RateLimitStatus),
    Refused(RateLimitStatus),
}

impl RateLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            shares: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(120))
                .build(),
        }
    }

    /// How many requests one lease asks for.
    fn share_size(&self) -> u32 {
        (self.limit / 20).max(1)
    }

    /// Counts a request of `client_id`; `None` when the limit is off.
    pub async fn admit(
        &self,
        pool: &Pool,
        client_id: ClientId,
    ) -> Result<Option<Admission>, ApiError> {
        if self.limit == 0 {
            return Ok(None);
        }
        let share = self.shares.get_with(client_id, || {
            Arc::new(Mutex::new(Share {
                ends: Instant::now(),
                left: 0,
                leased: 0,
                exhausted: false,
            }))
        });
        // At most twice: spend from memory, else lease once more and spend from that.
        for _ in 0..2 {
            if let Some(decision) = self.spend(&share) {
                return Ok(Some(decision));
            }
            let asked = self.share_size();
            let mut conn = pool.get().await?;
            let lease = db::rate_limits::lease(&mut conn, client_id, asked).await?;
            drop(conn);
            let granted = lease.granted(asked, self.limit);
            let ends = Instant::now()
                + Duration::from_secs(u64::try_from(lease.reset_seconds.max(1)).unwrap_or(1));
            let mut held = share.lock().map_err(|_| poisoned())?;
            if held.ends <= Instant::now() {
                // A new window: what was left of the old one is gone.
                held.left = 0;
                held.exhausted = false;
            }
            held.ends = ends;
            held.left += granted;
            held.leased = i64::from(lease.leased);
            held.exhausted = granted == 0;
        }
        // Leased twice and still nothing to spend: refused.
        let held = share.lock().map_err(|_| poisoned())?;
        Ok(Some(Admission::Refused(self.status(&held))))
    }

    /// Spends one request from memory if this window's share allows it; `None` when a
    /// lease is needed first.
    fn spend(&self, share: &Mutex<Share>) -> Option<Admission> {
        let mut held = share.lock().ok()?;
        if held.ends <= Instant::now() {
            return None;
        }
        if held.left > 0 {
            held.left -= 1;
            return Some(Admission::Allowed(self.status(&held)));
        }
        held.exhausted
            .then(|| Admission::Refused(self.status(&held)))
    }

    fn status(&self, held: &Share) -> RateLimitStatus {
        let unleased = (i64::from(self.limit) - held.leased).max(0);
        let remaining = u32::try_from(unleased + i64::from(held.left)).unwrap_or(u32::MAX);
        RateLimitStatus {
            limit: self.limit,
            remaining: remaining.min(self.limit),
            reset_seconds: u32::try_from(
                held.ends
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
                    .ceil() as u64,
            )
            .unwrap_or(60)
            .max(1),
        }
    }
}

fn poisoned() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("rate limit state poisoned"))
}

/// Adds the `RateLimit-*` headers to the answer of an authenticated request, error
/// answers (a 429 among them) included: a step of `api::edge::inner`.
pub fn add_headers<B>(response: &mut ServiceResponse<B>) {
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
}
