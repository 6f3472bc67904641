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

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "TRIALOPS_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// `json` for JSON log lines, anything else for human-readable ones.
    #[arg(
        long,
        env = "TRIALOPS_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
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
            rate_limit_per_minute: 1200,
            db_pool_size: 8,
            workers: Some(2),
            log_format: "text".into(),
        }
    }
}
