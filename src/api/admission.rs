//! Two bounds on what this instance takes on at once: the requests it works on
//! (`TRIALOPS_MAX_IN_FLIGHT`) and the connections it holds (`TRIALOPS_MAX_CONNECTIONS`).
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
//!
//! Even a connection whose request waits costs actix-http about 26 KiB (its read and write
//! buffers, the parsed head, its task), so thousands of them cost hundreds of MiB however
//! little we add (docs/benchmarks.md). Beyond the connection bound actix-server stops
//! accepting, and a new connection waits in the kernel's accept queue, where it costs the
//! process nothing. Keep-alive would let the connections already accepted keep their places
//! for ever, so while the bound is reached every answer closes its connection
//! (`Connection: close`): its client reconnects and queues behind the ones that waited. Below
//! the bound nothing changes.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::{AppState, ConnectionBound};

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The middleware, just inside `edge::outer` (so the wait counts in the
/// request's logged time and its metrics).
pub async fn admit<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let gate = match &state {
        Some(state) if !is_probe(req.path()) => state.in_flight.clone(),
        _ => None,
    };
    // Never closed, so `acquire_owned` cannot fail; if it did, the request would go on.
    let _permit = match gate {
        Some(gate) => gate.acquire_owned().await.ok(),
        None => None,
    };
    let mut response = next.call(req).await?;
    let bound_reached = state
        .as_ref()
        .and_then(|state| state.connections.as_ref())
        .is_some_and(ConnectionBound::is_reached);
    if bound_reached {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}
