//! The state every request may need (`AppState`), below the handlers that read it: `api`,
//! `operations` and the `Caller` extractor import it; it imports nothing of theirs.
//! `startup` builds it and assembles the app around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::auth::live_clients::LiveClients;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::secret_guard::SecretGuard;
use crate::auth::tokens::TokenService;
use crate::config::{Settings, WebhookSettings};
use crate::db::{self, Pool};

/// Connections of `AppState::background_db` at most.
const BACKGROUND_POOL_SIZE: usize = 4;

/// What every request may need. Nothing here is state another instance would need: the
/// pool and the keys come from PostgreSQL, and what is remembered in memory (verified
/// tokens, live clients, a share of each client's rate limit, verified secrets) is a cache
/// another instance builds for itself, kept true by PostgreSQL.
pub struct AppState {
    /// The request handlers' pool. Only HTTP workers take connections from it: each
    /// connection's I/O task runs on the thread that opened it (diesel-async spawns it
    /// there), so a connection opened by a background task on the main thread would make
    /// every request that later borrows it wake that thread and wait for it, twice per
    /// query (5-7 % of the service's CPU in the read benchmark, docs/benchmarks.md).
    pub db: Pool,
    /// Background work off the HTTP workers (the webhook dispatcher, signing key reloads,
    /// start-up, the metrics endpoint): a small pool of its own, for the reason above.
    pub background_db: Pool,
    /// Where lag-tolerant reads go (metrics, the portfolio, the curve): the replica of
    /// `TRIALOPS_READ_DATABASE_URL`, else the primary's pool.
    pub read_db: Pool,
    /// Shared with the task that keeps the keys equal to the database's (`auth::live_keys`).
    pub tokens: Arc<TokenService>,
    pub live_clients: Arc<LiveClients>,
    pub rate_limiter: RateLimiter,
    pub secret_guard: SecretGuard,
    pub webhooks: WebhookSettings,
    pub(crate) database_url: String,
    /// `TRIALOPS_CORS_ORIGINS`; empty: CORS off.
    pub cors_origins: Vec<String>,
    /// `TRIALOPS_MAX_IN_FLIGHT` permits (`api::admission`); `None`: no bound.
    pub in_flight: Option<Arc<tokio::sync::Semaphore>>,
    /// HTTP worker threads (`TRIALOPS_WORKERS`, else one per core).
    pub workers: usize,
    /// `TRIALOPS_MAX_CONNECTIONS` shared out among the workers, and the connections held
    /// (`api::admission`); `None`: actix's own bound.
    pub connections: Option<ConnectionBound>,
    pub(crate) seal_interval: Duration,
    pub(crate) listen_retry: Duration,
}

impl AppState {
    /// The state for `settings`, on a primary pool and signing keys already loaded.
    pub fn new(settings: &Settings, db: Pool, tokens: TokenService) -> anyhow::Result<Self> {
        let read_db = match &settings.read_database_url {
            Some(url) => db::pool(url, settings.db_pool_size)?,
            None => db.clone(),
        };
        let workers = settings.workers.unwrap_or_else(|| {
            // actix-server's own default, needed here to share out the connection bound.
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let mut webhooks = settings.webhooks();
        webhooks.secrets = tokens.source.encryption.clone();
        Ok(Self {
            background_db: db::pool(&settings.database_url, BACKGROUND_POOL_SIZE)?,
            db,
            read_db,
            tokens: Arc::new(tokens),
            live_clients: Arc::new(LiveClients::default()),
            rate_limiter: RateLimiter::new(settings.rate_limit_per_minute),
            secret_guard: SecretGuard::default(),
            webhooks,
            database_url: settings.database_url.clone(),
            cors_origins: settings.cors_origins.clone(),
            in_flight: gate(settings.max_in_flight),
            workers,
            connections: ConnectionBound::new(settings.max_connections, workers),
            seal_interval: Duration::from_millis(settings.seal_interval_ms),
            listen_retry: Duration::from_millis(settings.listen_retry_ms),
        })
    }
}

/// The permits of one instance (`api::admission`); `None` when unbounded
/// (`TRIALOPS_MAX_IN_FLIGHT=0`).
fn gate(max_in_flight: usize) -> Option<Arc<Semaphore>> {
    (max_in_flight > 0).then(|| Arc::new(Semaphore::new(max_in_flight)))
}

/// The connections this instance holds, against its bound. actix-server enforces the bound
/// itself, a share per worker, by not accepting; this count tells a request whether the
/// bound is reached, so that its answer can make room.
#[derive(Clone)]
pub struct ConnectionBound {
    open: Arc<AtomicUsize>,
    limit: usize,
    per_worker: usize,
}

impl ConnectionBound {
    /// `limit` connections shared out among `workers` (rounded up to a whole share each);
    /// `None` for no bound of ours (`limit` 0).
    pub fn new(limit: usize, workers: usize) -> Option<Self> {
        if limit == 0 {
            return None;
        }
        let per_worker = limit.div_ceil(workers.max(1));
        Some(Self {
            open: Arc::new(AtomicUsize::new(0)),
            // Saturating: any `usize` is a valid setting, the largest included.
            limit: per_worker.saturating_mul(workers.max(1)),
            per_worker,
        })
    }

    /// What each worker may hold (actix-server's `max_connections`).
    pub fn per_worker(&self) -> usize {
        self.per_worker
    }

    /// Counts a connection just accepted; it counts until the value is dropped, which
    /// actix-http does when the connection closes (it keeps the value in the connection's
    /// extensions).
    pub fn opened(&self) -> OpenConnection {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// The bound: `TRIALOPS_MAX_CONNECTIONS` rounded up to whole shares.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether the connections held fill the bound, give or take a sixteenth
    /// (`api::admission` then closes them). While connections wait, each one that closes
    /// makes room for one more, so the count hovers a few below the bound: measured at
    /// 8,000 connections against a bound of 1,024, closing only at the exact bound let half
    /// the answers keep their connections, and those waiting got a p99 of 5.5 s.
    pub fn is_reached(&self) -> bool {
        self.open().saturating_mul(16) >= self.limit.saturating_mul(15)
    }
}

/// One open connection, counted in its `ConnectionBound` while it lives.
pub struct OpenConnection(ConnectionBound);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_shared_out_in_whole_shares_and_counts_connections_while_they_live() {
        assert!(ConnectionBound::new(0, 2).is_none());
        assert_eq!(ConnectionBound::new(1024, 2).unwrap().per_worker(), 512);
        let bound = ConnectionBound::new(3, 2).unwrap();
        assert_eq!(bound.per_worker(), 2);
        let first = bound.opened();
        let second = bound.opened();
        let third = bound.opened();
        assert!(!bound.is_reached(), "3 of 4");
        let fourth = bound.opened();
        assert!(bound.is_reached());
        drop(first);
        assert_eq!(bound.open(), 3);
        assert!(!bound.is_reached());
        drop((second, third, fourth));
        assert_eq!(bound.open(), 0);
        // The largest setting neither overflows nor is ever reached.
        let unbounded = ConnectionBound::new(usize::MAX, 3).unwrap();
        let _held = unbounded.opened();
        assert!(!unbounded.is_reached());
    }
}
