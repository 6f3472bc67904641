//! Structured logs and the request id.
//!
//! Every request runs inside a tracing span carrying its request id (the client's
//! `X-Request-Id` if it sent a sane one, else a fresh UUIDv7), so every log line of that
//! request names it. The id also lives in a task-local so the error mapping can put it in
//! problem+json bodies without each handler passing it along.
//!
//! Each completed request is also counted for Prometheus (`record_request`), once
//! `operations` has installed the recorder; `operations` serves the figures.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called while serving one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Logs go to stderr, as JSON when `TRIALOPS_LOG_FORMAT=json`; the level comes from
/// `RUST_LOG` (default `info`).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start many apps in one process) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A client-chosen id is echoed only when it is short and printable, so it cannot forge
/// log lines or bloat them.
fn accepted_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    sane.then(|| value.to_string())
}

/// The request-id step of `api::edge::outer`: gives the request its id, runs `inner` inside
/// its span and the task-local, logs one line when it completes, and echoes the id on the
/// answer.
pub async fn traced<B, Fut>(
    req: ServiceRequest,
    inner: impl FnOnce(ServiceRequest) -> Fut,
) -> Result<ServiceResponse<B>, actix_web::Error>
where
    Fut: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    let request_id = accepted_request_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    // The answer's header is made now, so the id itself can move into the task-local.
    let echo = HeaderValue::from_str(&request_id);
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(request_id, inner(req))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            record_request(response.request(), response.status(), started.elapsed());
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request completed"
            );
            if let Ok(value) = echo {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(error = %error, "request failed in middleware");
            Err(error)
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Latency buckets, in seconds: the read path answers in milliseconds, exports in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder once (every later call shares it); from then on
/// `record_request` records (`operations` serves what it recorded).
pub fn install_recorder() -> anyhow::Result<&'static PrometheusHandle> {
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

/// The recorder, once `install_recorder` has installed it.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}
