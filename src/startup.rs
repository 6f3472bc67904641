//! Assembling the service: the database and keys made ready, the shared state
//! (`app::AppState`) built, the actix app and the HTTP server put together. `main` and the
//! integration tests both start the service through here.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{self, extract, fallback::KnownRoutes};
use crate::app::AppState;
use crate::auth::keys::{KeySet, KeySource, KeyStorage};
use crate::auth::tokens::TokenService;
use crate::config::Settings;
use crate::db;

/// Creates the database if needed, applies migrations, loads (or creates) the signing key.
pub async fn prepare(settings: &Settings) -> anyhow::Result<web::Data<AppState>> {
    db::create_database_if_missing(&settings.database_url).await?;
    let applied = db::run_migrations(&settings.database_url).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let pool = db::pool(&settings.database_url, settings.db_pool_size)?;
    // A connection of its own, not one of the request pool's (see `AppState::db`).
    let mut conn = AsyncPgConnection::establish(&settings.database_url)
        .await
        .context("connecting to the database")?;
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

/// Starts the HTTP server on `listener`. actix-web stops gracefully on SIGINT and SIGTERM:
/// it stops accepting, lets in-flight requests finish (up to 30 s), then exits.
pub fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    if !state.webhooks.poll_interval.is_zero() {
        actix_web::rt::spawn(crate::webhooks::dispatcher::run(
            state.background_db.clone(),
            state.webhooks.clone(),
        ));
    }
    if !state.seal_interval.is_zero() {
        actix_web::rt::spawn(crate::audit::sealer::run(
            state.database_url.clone(),
            state.seal_interval,
        ));
    }
    actix_web::rt::spawn(crate::auth::live_keys::listen(
        state.background_db.clone(),
        state.tokens.clone(),
        state.database_url.clone(),
        state.listen_retry,
    ));
    actix_web::rt::spawn(
        state
            .live_clients
            .clone()
            .listen(state.database_url.clone(), state.listen_retry),
    );
    let (workers, connections) = (state.workers, state.connections.clone());
    let openapi = api::document::openapi();
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
            .wrap(from_fn(api::edge::inner))
            // Compresses as the body streams; outside it, the caching headers see the
            // encoded answer (weak ETag) and can answer 304 before the body is polled.
            .wrap(Compress::default())
            .wrap(Condition::new(
                cors,
                api::headers::cors(&state.cors_origins),
            ))
            // Requests beyond the bound wait here, before anything of the handlers' is built.
            .wrap(from_fn(api::admission::admit))
            .wrap(from_fn(api::edge::outer))
            .configure(|cfg| {
                // Registered again here for serving; `api::document::openapi()` registered them once to
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
    .workers(workers)
    .shutdown_timeout(30)
    .client_request_timeout(Duration::from_secs(30));
    if let Some(connections) = connections {
        server =
            server
                .max_connections(connections.per_worker())
                .on_connect(move |_, extensions| {
                    extensions.insert(connections.opened());
                });
    }
    // std listens with a queue of 128; beyond the connection bound new connections wait in
    // this queue, so make it as deep as the kernel allows (it caps the value at
    // net.core.somaxconn). Connections beyond what it holds retry their handshakes with
    // back-off: late answers, some resets (docs/decisions.md #26).
    socket2::SockRef::from(&listener)
        .listen(i32::MAX)
        .context("setting the listener's accept queue")?;
    Ok(server.listen(listener).context("listening")?.run())
}
