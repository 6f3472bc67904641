//! Assembling the service: shared state, the actix app, and the HTTP server. `main` and the
//! integration tests both start the service through here.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{self, extract, fallback::KnownRoutes};
use crate::auth::keys::{KeySet, KeySource, KeyStorage};
use crate::auth::live_clients::LiveClients;
use crate::auth::rate_limit::{RateLimiter, rate_limit_headers};
use crate::auth::secret_guard::SecretGuard;
use crate::auth::tokens::TokenService;
use crate::config::{Settings, WebhookSettings};
use crate::db::{self, Pool};
use crate::telemetry;

/// What every request may need. Nothing here is state another instance would need: the
/// pool and the keys come from PostgreSQL, and what is remembered in memory (verified
/// tokens, live clients, a share of each client's rate limit, verified secrets) is a cache
/// another instance builds for itself, kept true by PostgreSQL.
pub struct AppState {
    pub db: Pool,
    /// Where lag-tolerant reads go (metrics, the portfolio, the curve): the replica of
    /// `TRIALOPS_READ_DATABASE_URL`, else the primary's pool.
    pub read_db: Pool,
    pub tokens: TokenService,
    pub live_clients: Arc<LiveClients>,
    pub rate_limiter: RateLimiter,
    pub secret_guard: SecretGuard,
    pub webhooks: WebhookSettings,
    database_url: String,
    /// `TRIALOPS_CORS_ORIGINS`; empty: CORS off.
    pub cors_origins: Vec<String>,
    seal_interval: Duration,
    listen_retry: Duration,
}

/// Creates the database if needed, applies migrations, loads (or creates) the signing key.
pub async fn prepare(settings: &Settings) -> anyhow::Result<web::Data<AppState>> {
    db::create_database_if_missing(&settings.database_url).await?;
    let applied = db::run_migrations(&settings.database_url).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let pool = db::pool(&settings.database_url, settings.db_pool_size)?;
    let mut conn = pool.get().await.context("connecting to the database")?;
    let source = key_source(settings)?;
    let keys = KeySet::load(&mut conn, &source).await?;
    drop(conn);
    if keys.storage == KeyStorage::Plain {
        tracing::warn!(
            "token signing keys are stored in the database in plain form: anyone who can read \
             the database (a dump, a backup, a replica) can sign tokens. Set \
             TRIALOPS_KEY_ENCRYPTION_KEY and run `trialops keys encrypt`."
        );
    }
    let tokens = TokenService::new(
        keys,
        source,
        settings.token_issuer.clone(),
        settings.token_audience.clone(),
        settings.token_ttl_seconds,
    );
    Ok(web::Data::new(AppState::new(settings, pool, tokens)?))
}

/// The key set's sources from the settings; a bad variable is a one-line error naming it.
pub fn key_source(settings: &Settings) -> anyhow::Result<KeySource> {
    let skew = u64::try_from(settings.key_skew_seconds).unwrap_or(0);
    let ttl = u64::try_from(settings.token_ttl_seconds).unwrap_or(0);
    KeySource::new(
        settings.key_encryption_key.as_deref(),
        settings.signing_key_pem.as_deref(),
        Duration::from_millis(settings.key_activation_ms),
        Duration::from_secs(ttl.saturating_add(skew)),
    )
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
            db,
            read_db,
            tokens,
            live_clients: Arc::new(LiveClients::default()),
            rate_limiter: RateLimiter::new(settings.rate_limit_per_minute),
            secret_guard: SecretGuard::default(),
            webhooks,
            database_url: settings.database_url.clone(),
            cors_origins: settings.cors_origins.clone(),
            seal_interval: Duration::from_millis(settings.seal_interval_ms),
            listen_retry: Duration::from_millis(settings.listen_retry_ms),
        })
    }
}

/// Starts the HTTP server on `listener`. actix-web stops gracefully on SIGINT and SIGTERM:
/// it stops accepting, lets in-flight requests finish (up to 30 s), then exits.
pub fn run(
    listener: TcpListener,
    state: web::Data<AppState>,
    workers: Option<usize>,
) -> anyhow::Result<Server> {
    if !state.webhooks.poll_interval.is_zero() {
        actix_web::rt::spawn(crate::webhooks::dispatcher::run(state.clone()));
    }
    if !state.seal_interval.is_zero() {
        actix_web::rt::spawn(crate::audit::sealer::run(
            state.db.clone(),
            state.seal_interval,
        ));
    }
    actix_web::rt::spawn(crate::auth::live_keys::listen(
        state.clone(),
        state.database_url.clone(),
        state.listen_retry,
    ));
    actix_web::rt::spawn(
        state
            .live_clients
            .clone()
            .listen(state.database_url.clone(), state.listen_retry),
    );
    let openapi = api::openapi();
    let known_routes = web::Data::new(KnownRoutes::from_openapi(&openapi));
    let mut server = HttpServer::new(move || {
        let cors = !state.cors_origins.is_empty();
        App::new()
            .app_data(state.clone())
            .app_data(known_routes.clone())
            .app_data(extract::query_config())
            .app_data(extract::path_config())
            .app_data(extract::payload_config())
            // Outermost last: the request id covers everything inside it.
            .wrap(from_fn(api::idempotency::idempotency))
            .wrap(from_fn(rate_limit_headers))
            .wrap(from_fn(api::strict_query::strict_query))
            // Compresses as the body streams; outside it, the caching headers see the
            // encoded answer (weak ETag) and can answer 304 before the body is polled.
            .wrap(Compress::default())
            .wrap(Condition::new(
                cors,
                api::headers::cors(&state.cors_origins),
            ))
            .wrap(from_fn(api::headers::answer_headers))
            .wrap(from_fn(telemetry::request_id_middleware))
            .configure(|cfg| {
                // Registered again here for serving; `api::openapi()` registered them once to
                // build the document.
                let mut utoipa_cfg = utoipa_actix_web::service_config::ServiceConfig::new(cfg);
                api::routes(&mut utoipa_cfg);
            })
            .service(
                SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", openapi.clone()),
            )
            .route(
                "/swagger-ui",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/swagger-ui/"))
                        .finish()
                }),
            )
            .default_service(web::to(api::fallback::not_found_or_not_allowed))
    })
    .shutdown_timeout(30)
    .client_request_timeout(Duration::from_secs(30));
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener).context("listening")?.run())
}
