//! The state every request may need (`AppState`), below the handlers that read it: `api`,
//! `operations` and the `Caller` extractor import it; it imports nothing of theirs.
//! `startup` builds it and assembles the app around it.

use std::sync::Arc;
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
