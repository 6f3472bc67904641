//! A bound on the requests this instance works on at once (`TRIALOPS_MAX_IN_FLIGHT`).
//!
//! Under a crowd (thousands of open connections, each with a request) nearly every request
//! waits for a pool connection. Waiting inside its handler, a request holds the futures of
//! every middleware layer and of the handler, about 4 KiB (docs/benchmarks.md, "Memory per
//! connection"); waiting here, in front of them, it holds only what actix-http already gave
//! it (the parsed head and its connection's buffers): nothing of ours is built for it yet.
//! The wait is first come, first served (tokio's semaphore is fair), as the pool's is.
//!
//! The health checks never wait here: a busy instance must still look alive to its probes.
//! The permit is held until the answer's head is ready; a streamed body (a CSV export) goes
//! on without one.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::AppState;

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The middleware, just inside `edge::outer` (so the wait counts in the
/// request's logged time and its metrics).
pub async fn admit<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let gate = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !is_probe(req.path()) => state.in_flight.clone(),
        _ => None,
    };
    // Never closed, so `acquire_owned` cannot fail; if it did, the request would go on.
    let _permit = match gate {
        Some(gate) => gate.acquire_owned().await.ok(),
        None => None,
    };
    next.call(req).await
}
