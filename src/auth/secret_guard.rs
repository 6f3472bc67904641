//! What stands between a stranger and the Argon2 check of `/oauth/token`.
//!
//! Each wrong secret costs the service an Argon2 verification (about 20 ms of a core, on
//! purpose). Unchecked, a flood of wrong secrets takes every core from the clients that do
//! have a token. So:
//! - a secret that verified once is remembered (as a SHA-256 bound to the client and its
//!   stored hash), and the right secret skips the expensive check from then on: nothing a
//!   stranger sends can lock the real client out;
//! - wrong secrets are counted per source address (GCRA, `governor`): past
//!   `ADDRESS_FAILURES_PER_MINUTE` the address gets a 429 with `Retry-After` for
//!   `ADDRESS_BLOCK` without any check, and the refusal is logged;
//! - checks are counted per client id too (`CLIENT_CHECKS_PER_SECOND`), so a flood spread
//!   over many addresses still cannot spend more than that on one client;
//! - Argon2 runs on the blocking pool behind a semaphore with half the cores' permits, so
//!   it can never take every core.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::auth::secrets;
use crate::domain::ids::ClientId;
use crate::error::ApiError;

/// Wrong secrets an address may send per minute before it is blocked.
pub const ADDRESS_FAILURES_PER_MINUTE: u32 = 20;
/// How long a blocked address gets a 429 without any check.
pub const ADDRESS_BLOCK: Duration = Duration::from_secs(60);
/// Argon2 checks per client id per second (a burst of twice that).
pub const CLIENT_CHECKS_PER_SECOND: u32 = 5;
/// How long a verified secret is remembered.
const REMEMBER_VERIFIED: Duration = Duration::from_secs(15 * 60);

pub struct SecretGuard {
    failures_by_address: DefaultKeyedRateLimiter<IpAddr>,
    blocked_until: Cache<IpAddr, Instant>,
    checks_by_client: DefaultKeyedRateLimiter<ClientId>,
    verified: Cache<[u8; 32], ()>,
    hashing: Semaphore,
}

impl Default for SecretGuard {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            failures_by_address: RateLimiter::keyed(Quota::per_minute(nonzero(
                ADDRESS_FAILURES_PER_MINUTE,
            ))),
            blocked_until: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ADDRESS_BLOCK)
                .build(),
            checks_by_client: RateLimiter::keyed(
                Quota::per_second(nonzero(CLIENT_CHECKS_PER_SECOND))
                    .allow_burst(nonzero(CLIENT_CHECKS_PER_SECOND * 2)),
            ),
            verified: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REMEMBER_VERIFIED)
                .build(),
            hashing: Semaphore::new((cores / 2).max(1)),
        }
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn fingerprint(client_id: ClientId, secret: &str, stored_hash: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(client_id.uuid().as_bytes());
    hasher.update(stored_hash.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

impl SecretGuard {
    /// The 429 for an address still blocked, if it is.
    pub fn refuse_blocked_address(&self, address: IpAddr) -> Result<(), ApiError> {
        match self.blocked_until.get(&address) {
            Some(until) if until > Instant::now() => Err(ApiError::TooManyRequests {
                retry_after: seconds(until.saturating_duration_since(Instant::now())),
                why: "too many wrong client secrets from this address",
            }),
            _ => Ok(()),
        }
    }

    /// Whether this exact secret verified for this client (and its current hash) lately.
    pub fn remembered(&self, client_id: ClientId, secret: &str, stored_hash: &str) -> bool {
        self.verified
            .contains_key(&fingerprint(client_id, secret, stored_hash))
    }

    /// The Argon2 check, within the client's budget of checks and the semaphore; a secret
    /// that passes is remembered.
    pub async fn verify(
        &self,
        client_id: ClientId,
        secret: String,
        stored_hash: String,
    ) -> Result<bool, ApiError> {
        if let Err(not_until) = self.checks_by_client.check_key(&client_id) {
            return Err(ApiError::TooManyRequests {
                retry_after: seconds(not_until.wait_time_from(DefaultClock::default().now())),
                why: "too many secret checks for this client",
            });
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("secret check")))?;
        let key = fingerprint(client_id, &secret, &stored_hash);
        let ok = tokio::task::spawn_blocking(move || secrets::verify_secret(&secret, &stored_hash))
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("secret check task")))?;
        if ok {
            self.verified.insert(key, ());
        }
        Ok(ok)
    }

    /// Counts a wrong secret (or an unknown client) from `address`; past the limit the
    /// address is blocked for `ADDRESS_BLOCK`.
    pub fn record_failure(&self, address: IpAddr) {
        if self.failures_by_address.check_key(&address).is_err()
            && self.blocked_until.get(&address).is_none()
        {
            tracing::warn!(%address, block_seconds = ADDRESS_BLOCK.as_secs(),
                "blocking an address after repeated wrong client secrets");
            self.blocked_until
                .insert(address, Instant::now() + ADDRESS_BLOCK);
        }
        // The limiters keep a cell per key; drop the ones that are back to full.
        if self.failures_by_address.len() > 10_000 {
            self.failures_by_address.retain_recent();
        }
        if self.checks_by_client.len() > 10_000 {
            self.checks_by_client.retain_recent();
        }
    }
}

fn seconds(wait: Duration) -> u32 {
    u32::try_from(wait.as_secs_f64().ceil() as u64)
        .unwrap_or(u32::MAX)
        .max(1)
}
