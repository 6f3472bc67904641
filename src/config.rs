//! Settings, from the environment (and a `.env` file, read by `main` before this).

use clap::Args;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/trialops";

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "TRIALOPS_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// Public base URL, used in the printed Swagger UI link (default: http://<bind>).
    #[arg(long, env = "TRIALOPS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// `iss` claim of issued tokens, checked on every request.
    #[arg(
        long,
        env = "TRIALOPS_TOKEN_ISSUER",
        default_value = "trialops",
        global = true
    )]
    pub token_issuer: String,

    /// `aud` claim of issued tokens, checked on every request.
    #[arg(
        long,
        env = "TRIALOPS_TOKEN_AUDIENCE",
        default_value = "trialops-api",
        global = true
    )]
    pub token_audience: String,

    /// Lifetime of access tokens, in seconds.
    #[arg(
        long,
        env = "TRIALOPS_TOKEN_TTL_SECONDS",
        default_value_t = 900,
        global = true
    )]
    pub token_ttl_seconds: i64,

    /// An Ed25519 private key (PKCS#8 PEM) to sign tokens with, instead of the key the
    /// service creates and keeps in the database.
    #[arg(
        long,
        env = "TRIALOPS_SIGNING_KEY_PEM",
        hide_env_values = true,
        global = true
    )]
    pub signing_key_pem: Option<String>,

    /// 32 random bytes, base64: the key that seals the signing keys (and other secrets)
    /// kept in the database. Without it they are stored in plain form, and a database
    /// reader can sign tokens.
    #[arg(
        long,
        env = "TRIALOPS_KEY_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub key_encryption_key: Option<String>,

    /// After a rotation, how long the new key is published before it signs, in
    /// milliseconds: every instance learns of it first.
    #[arg(
        long,
        env = "TRIALOPS_KEY_ACTIVATION_MS",
        default_value_t = 500,
        global = true
    )]
    pub key_activation_ms: u64,

    /// The allowance for clock skew, in seconds, added to the token lifetime before a
    /// superseded signing key retires (stops verifying tokens).
    #[arg(
        long,
        env = "TRIALOPS_KEY_SKEW_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub key_skew_seconds: i64,

    /// Requests per client per minute (0: no limit).
    #[arg(
        long,
        env = "TRIALOPS_RATE_LIMIT_PER_MINUTE",
        default_value_t = 1200,
        global = true
    )]
    pub rate_limit_per_minute: u32,

    /// Size of the database connection pool.
    #[arg(
        long,
        env = "TRIALOPS_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: usize,

    /// Requests worked on at once by this instance; further ones wait, parsed, in front of
    /// the middleware and the handlers (first come, first served). `0`: no bound.
    #[arg(
        long,
        env = "TRIALOPS_MAX_IN_FLIGHT",
        default_value_t = 512,
        global = true
    )]
    pub max_in_flight: usize,

    /// Connections this instance holds at most, shared out evenly among the workers. Beyond
    /// it, new connections wait in the kernel's accept queue, and while it is reached every
    /// answer closes its connection, so that the waiting ones get their turn. `0`: actix's
    /// own bound (25,600 a worker).
    #[arg(
        long,
        env = "TRIALOPS_MAX_CONNECTIONS",
        default_value_t = 1024,
        global = true
    )]
    pub max_connections: usize,

    /// HTTP worker threads (default: one per core); at least 1.
    #[arg(long, env = "TRIALOPS_WORKERS", global = true, value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// `json` for JSON log lines, anything else for human-readable ones.
    #[arg(
        long,
        env = "TRIALOPS_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,

    /// Let webhooks call loopback, private and link-local addresses (development and
    /// tests only: otherwise a webhook could reach services inside the network).
    #[arg(
        long,
        env = "TRIALOPS_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhook_allow_private: bool,

    /// How often this instance looks for webhook work, in milliseconds (0: never; another
    /// instance does the sending).
    #[arg(
        long,
        env = "TRIALOPS_WEBHOOK_POLL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub webhook_poll_ms: u64,

    /// Attempts per webhook delivery before it is marked `failed`.
    #[arg(
        long,
        env = "TRIALOPS_WEBHOOK_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true
    )]
    pub webhook_max_attempts: i32,

    /// Wait before the second attempt of a delivery, in milliseconds; it doubles with
    /// each further attempt.
    #[arg(
        long,
        env = "TRIALOPS_WEBHOOK_BACKOFF_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub webhook_backoff_ms: u64,

    /// How often this instance seals committed audit events (gives them their change-feed
    /// position and chain hash), in milliseconds; 0: never (another instance does, and
    /// reads of the feed and the trail seal for themselves).
    #[arg(
        long,
        env = "TRIALOPS_SEAL_INTERVAL_MS",
        default_value_t = 20,
        global = true
    )]
    pub seal_interval_ms: u64,

    /// How long an instance waits before listening again for client changes (revocations)
    /// after losing its notification connection, in milliseconds. Until it listens again
    /// it checks the database on every request.
    #[arg(
        long,
        env = "TRIALOPS_LISTEN_RETRY_MS",
        default_value_t = 1000,
        global = true
    )]
    pub listen_retry_ms: u64,

    /// An optional PostgreSQL streaming replica for the reads that tolerate a little lag
    /// (study metrics, the portfolio, the enrollment curve); their `as_of` then tells the
    /// replica's last replayed transaction time. Records, lists, the feed and the audit
    /// trail always read the primary.
    #[arg(
        long,
        env = "TRIALOPS_READ_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub read_database_url: Option<String>,

    /// Browser origins allowed to call the API (CORS), comma-separated exact origins such as
    /// `https://dash.example.com`; empty: CORS off, no `Access-Control-*` header anywhere.
    #[arg(
        long,
        env = "TRIALOPS_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin,
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Address of the Prometheus `/metrics` endpoint, kept apart from the API so it is never
    /// public by accident (unset: no metrics endpoint).
    #[arg(long, env = "TRIALOPS_METRICS_BIND", global = true)]
    pub metrics_bind: Option<std::net::SocketAddr>,
}

/// A worker count: actix-server refuses 0 with a panic, so it is refused here, by name.
fn parse_workers(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("at least one worker is needed".into()),
        Ok(workers) => Ok(workers),
        Err(e) => Err(e.to_string()),
    }
}

/// An exact origin (`scheme://host[:port]`), as browsers send it in `Origin`.
fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let url = url::Url::parse(value).map_err(|e| format!("not an origin: {e}"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https") || origin != value.trim_end_matches('/') {
        return Err("an origin is scheme://host[:port], nothing more".into());
    }
    Ok(origin)
}

impl Settings {
    /// What the webhook dispatcher and registration need to know.
    pub fn webhooks(&self) -> WebhookSettings {
        WebhookSettings {
            allow_private: self.webhook_allow_private,
            poll_interval: std::time::Duration::from_millis(self.webhook_poll_ms),
            max_attempts: self.webhook_max_attempts.max(1),
            backoff: std::time::Duration::from_millis(self.webhook_backoff_ms),
            secrets: None,
        }
    }
}

/// Webhook settings, kept in the application state.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_private: bool,
    /// Zero: this instance sends nothing.
    pub poll_interval: std::time::Duration,
    pub max_attempts: i32,
    /// Before the second attempt; doubled for each further one.
    pub backoff: std::time::Duration,
    /// What opens the subscriptions' sealed secrets (`TRIALOPS_KEY_ENCRYPTION_KEY`).
    pub secrets: Option<crate::auth::encryption::KeyEncryptionKey>,
}

impl Settings {
    /// Settings for a given database with every other value at its default (tests, tools).
    pub fn for_database(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".into(),
            public_url: None,
            token_issuer: "trialops".into(),
            token_audience: "trialops-api".into(),
            token_ttl_seconds: 900,
            signing_key_pem: None,
            key_encryption_key: None,
            key_activation_ms: 500,
            key_skew_seconds: 60,
            rate_limit_per_minute: 1200,
            db_pool_size: 8,
            max_in_flight: 512,
            max_connections: 1024,
            workers: Some(2),
            log_format: "text".into(),
            webhook_allow_private: false,
            webhook_poll_ms: 1000,
            webhook_max_attempts: 8,
            webhook_backoff_ms: 10_000,
            seal_interval_ms: 20,
            listen_retry_ms: 1000,
            read_database_url: None,
            cors_origins: Vec::new(),
            metrics_bind: None,
        }
    }
}
