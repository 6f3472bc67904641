//! Operations metrics for Prometheus, on an address of their own (`TRIALOPS_METRICS_BIND`)
//! so they are never public by accident.
//!
//! Request figures are recorded with the `metrics` crate as requests complete (by route
//! template, method and status, plus a latency histogram); the rest (pools, the change
//! feed, sealing delay, the webhook backlog) is read when `/metrics` is scraped, so it
//! costs nothing between scrapes. The exporter is `metrics-exporter-prometheus`.
//!
//! Nothing is recorded until the endpoint is configured: the recorder is installed then, and
//! before that the per-request hook is one relaxed load.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::{self, Pool};
use crate::startup::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Latency buckets, in seconds: the read path answers in milliseconds, exports in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder once (every later call shares it).
fn handle() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("trialops_http_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        )
        .context("configuring the metrics exporter")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let handle = HANDLE.get_or_init(|| handle);
    RECORDING.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// Records one completed request; `route` is its template (`/api/v1/studies/{id}`), never
/// the raw path, so ids do not explode the series.
pub fn record_request(req: &actix_web::HttpRequest, status: StatusCode, elapsed: Duration) {
    if !RECORDING.load(Ordering::Relaxed) {
        return;
    }
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let code = status.as_u16().to_string();
    metrics::counter!(
        "trialops_http_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => code,
    )
    .increment(1);
    metrics::histogram!(
        "trialops_http_request_duration_seconds",
        "route" => route,
        "method" => method,
    )
    .record(elapsed.as_secs_f64());
    if status == StatusCode::TOO_MANY_REQUESTS {
        metrics::counter!("trialops_rate_limit_refusals_total").increment(1);
    }
}

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
    let Some(handle) = HANDLE.get() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    pool_gauges(&state.db, "primary");
    pool_gauges(&state.read_db, "read");
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
    handle()?;
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
