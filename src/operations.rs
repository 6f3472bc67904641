//! Operations metrics for Prometheus, on an address of their own (`TRIALOPS_METRICS_BIND`)
//! so they are never public by accident.
//!
//! Request figures are recorded as requests complete (`telemetry::record_request`, by
//! route template, method and status, plus a latency histogram); the rest (pools, the
//! change feed, sealing delay, the webhook backlog) is read here when `/metrics` is scraped,
//! so it costs nothing between scrapes. The exporter is `metrics-exporter-prometheus`.
//!
//! Nothing is recorded until the endpoint is configured: `run` installs the recorder
//! (`telemetry::install_recorder`), and before that the per-request hook is one relaxed load.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

use crate::app::AppState;
use crate::db::{self, Pool};
use crate::telemetry;

fn pool_gauges(pool: &Pool, name: &'static str) {
    let status = pool.status();
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!("trialops_db_pool_connections", "pool" => name, "state" => "in_use")
        .set(in_use as f64);
    metrics::gauge!("trialops_db_pool_connections", "pool" => name, "state" => "idle")
        .set(status.available as f64);
    metrics::gauge!("trialops_db_pool_max_connections", "pool" => name).set(status.max_size as f64);
    metrics::gauge!("trialops_db_pool_waiting", "pool" => name).set(status.waiting as f64);
}

/// `GET /metrics`: the Prometheus text exposition format. It takes no query parameters:
/// any is a 400 naming it, as on the API.
async fn scrape(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !req.query_string().is_empty() {
        use actix_web::ResponseError;
        let names: Vec<String> = url::form_urlencoded::parse(req.query_string().as_bytes())
            .map(|(key, _)| key.into_owned())
            .collect();
        return crate::error::ApiError::BadRequest(format!(
            "unknown query parameter: {} (/metrics takes no query parameters)",
            names.join(", ")
        ))
        .error_response();
    }
    let Some(handle) = telemetry::recorder() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    pool_gauges(&state.db, "primary");
    pool_gauges(&state.read_db, "read");
    if let Some(connections) = &state.connections {
        metrics::gauge!("trialops_http_connections_open").set(connections.open() as f64);
        metrics::gauge!("trialops_http_max_connections").set(connections.limit() as f64);
    }
    let backlog = match state.background_db.get().await {
        Ok(mut conn) => db::operations::backlog(&mut conn).await.ok(),
        Err(_) => None,
    };
    metrics::gauge!("trialops_database_up").set(if backlog.is_some() { 1.0 } else { 0.0 });
    if let Some(backlog) = backlog {
        metrics::gauge!("trialops_change_feed_head").set(backlog.feed_head as f64);
        metrics::gauge!("trialops_audit_unsealed_events").set(backlog.unsealed as f64);
        metrics::gauge!("trialops_audit_sealing_delay_seconds").set(backlog.sealing_delay_seconds);
        metrics::gauge!("trialops_webhook_deliveries", "state" => "pending")
            .set(backlog.webhook_pending as f64);
        metrics::gauge!("trialops_webhook_deliveries", "state" => "failed")
            .set(backlog.webhook_failed as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(handle.render())
}

/// Serves `/metrics` on `listener` with one worker, apart from the API's server.
pub fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    telemetry::install_recorder()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("listening on TRIALOPS_METRICS_BIND")?
    .run();
    Ok(server)
}
