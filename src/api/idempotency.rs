//! `Idempotency-Key` on every POST (contract section 5), as a middleware step
//! (`edge::inner`) so no handler can forget it.
//!
//! The key is claimed in the database (per client, so it holds across instances) before the
//! request runs. The same key with the same request replays the first answer, status and
//! body, with `Idempotent-Replayed: true`; with another request it is a 422; while the first
//! request is still running it is a 409, so two concurrent requests never create two
//! records. Answers of 5xx free the key again, so a retry runs anew.
//!
//! A kept answer can hold a secret (`POST /clients` answers the new client's), so with
//! `TRIALOPS_KEY_ENCRYPTION_KEY` it is stored sealed, bound to the client and key.

use actix_web::body::{EitherBody, MessageBody, to_bytes_limited};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use sha2::{Digest, Sha256};

use crate::api::extract::read_body;
use crate::app::AppState;
use crate::auth::encryption;
use crate::db;
use crate::db::idempotency::{StoredBody, StoredKey};
use crate::domain::ids::ClientId;
use crate::error::ApiError;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_CHARS: usize = 255;
/// Answers larger than this are not kept for replay (no POST answer of ours comes close).
const MAX_STORED_ANSWER: usize = 4 * 1024 * 1024;

/// The client a bearer token names, if it verifies; a request whose token does not verify is
/// left alone, to be refused by the handler's `Caller` (401).
fn client_of(req: &ServiceRequest, state: &AppState) -> Option<ClientId> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    state
        .tokens
        .verify(token.trim())
        .ok()
        .map(|claims| claims.sub)
}

fn fingerprint(req: &ServiceRequest, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [req.method().as_str(), req.path(), req.query_string()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn refuse<B>(req: ServiceRequest, error: ApiError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(error.error_response())
        .map_into_right_body()
}

/// The middleware. Every request in flight holds this future (boxed by the layer outside
/// it) while it waits, e.g. for a pool connection, so the common case, a request without a
/// key, keeps it small: the claim-and-replay path, a state machine of several KiB (the
/// claim's and the store's database futures), is boxed only for a POST with a key.
pub async fn idempotency<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    Box::pin(keyed(req, next)).await
}

/// A POST with a key: the key checked, the caller's client and the request's fingerprint
/// found, the key claimed; then a kept answer replayed, or the request run and its answer
/// kept.
async fn keyed<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let key = match checked_key(&req) {
        None => return pass_through(req, next).await,
        Some(Err(error)) => return Ok(refuse(req, error)),
        Some(Ok(key)) => key,
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return pass_through(req, next).await;
    };
    let Some(client) = client_of(&req, &state) else {
        return pass_through(req, next).await;
    };
    let request_hash = match fingerprint_and_restore_body(&mut req).await {
        Ok(hash) => hash,
        Err(error) => return Ok(refuse(req, error)),
    };
    let answer = match claim(&state, client, &key, &request_hash).await {
        Ok(None) => return run_and_keep(req, next, &state, client, &key).await,
        Ok(Some(kept)) => replay(&state, client, &key, &request_hash, kept),
        Err(error) => Err(error),
    };
    match answer {
        Ok(replayed) => Ok(req.into_response(replayed).map_into_right_body()),
        Err(error) => Ok(refuse(req, error)),
    }
}

/// A request the middleware leaves alone.
async fn pass_through<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    Ok(next.call(req).await?.map_into_left_body())
}

/// The request's key: `None` without one, a 422 for one that is blank, too long or not
/// visible ASCII.
fn checked_key(req: &ServiceRequest) -> Option<Result<String, ApiError>> {
    let key = req
        .headers()
        .get(IDEMPOTENCY_KEY)?
        .to_str()
        .map(str::to_string);
    Some(match key {
        Ok(key) if !key.trim().is_empty() && key.chars().count() <= MAX_KEY_CHARS => Ok(key),
        _ => Err(ApiError::invalid(
            "Idempotency-Key",
            "length",
            "must be 1 to 255 visible ASCII characters",
        )),
    })
}

/// Reads the body to fingerprint the request, then hands it on unchanged.
async fn fingerprint_and_restore_body(req: &mut ServiceRequest) -> Result<String, ApiError> {
    let (http_req, payload) = req.parts_mut();
    let body = read_body(http_req, payload).await?;
    let request_hash = fingerprint(req, &body);
    // `read_body` decoded any `Content-Encoding`: what goes on is plain bytes, and the
    // handler's extractor must not try to decode them again.
    let headers = req.headers_mut();
    headers.remove(header::CONTENT_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    req.set_payload(Payload::from(body));
    Ok(request_hash)
}

/// Claims the key for this request: `None` when it is ours to run, else what the key
/// already holds.
async fn claim(
    state: &AppState,
    client: ClientId,
    key: &str,
    request_hash: &str,
) -> Result<Option<StoredKey>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(db::idempotency::claim(&mut conn, client, key, request_hash).await?)
}

/// What a key already claimed answers: a 422 when it was used for another request, a 409
/// while the first request is still running, else the kept answer, replayed.
fn replay(
    state: &AppState,
    client: ClientId,
    key: &str,
    request_hash: &str,
    kept: StoredKey,
) -> Result<HttpResponse, ApiError> {
    if kept.request_hash != request_hash {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "reused",
            "was used with a different request",
        ));
    }
    if kept.state != "completed" {
        return Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still running; retry shortly".into(),
        ));
    }
    let status = u16::try_from(kept.response_status.unwrap_or(200))
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut replay = HttpResponse::build(status);
    replay.insert_header((REPLAYED, "true"));
    if let Some(content_type) = kept.response_type {
        replay.insert_header((header::CONTENT_TYPE, content_type));
    }
    if let Some(location) = kept.response_location {
        replay.insert_header((header::LOCATION, location));
    }
    let body = match (kept.response_body, kept.response_body_enc) {
        (Some(body), _) => body,
        (None, Some(sealed)) => {
            let opened =
                state.tokens.source.encryption.as_ref().and_then(|kek| {
                    kek.open(&sealed, &encryption::idempotency_binding(client, key))
                });
            opened.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "a kept Idempotency-Key answer does not decrypt with {}",
                    encryption::VARIABLE
                ))
            })?
        }
        (None, None) => Vec::new(),
    };
    Ok(replay.body(body))
}

/// Ours: runs the request, then keeps its answer (or frees the key after a 5xx, or when
/// the answer is too large to keep).
async fn run_and_keep<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    state: &AppState,
    client: ClientId,
    key: &str,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let response = next.call(req).await?;
    let (http_req, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let (head, body) = response.into_parts();
    let body = match to_bytes_limited(body, MAX_STORED_ANSWER).await {
        Ok(Ok(bytes)) => bytes,
        _ => {
            if let Ok(mut conn) = state.db.get().await {
                let _ = db::idempotency::release(&mut conn, client, key).await;
            }
            let error = ApiError::Internal(anyhow::anyhow!(
                "answer too large to keep for Idempotency-Key"
            ));
            return Ok(ServiceResponse::new(http_req, error.error_response()).map_into_right_body());
        }
    };
    keep_answer(state, client, key, status, &headers, &body).await;
    let response = head.set_body(body).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, response).map_into_right_body())
}

/// Keeps the answer for replay, sealed when it can be; frees the key instead after a 5xx
/// or when the answer cannot be sealed. A failure here is logged: the client still gets
/// its answer.
async fn keep_answer(
    state: &AppState,
    client: ClientId,
    key: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let Ok(mut conn) = state.db.get().await else {
        return;
    };
    let kept = if status.is_server_error() {
        db::idempotency::release(&mut conn, client, key).await
    } else {
        match stored_body(state, client, key, body) {
            Some(stored) => {
                db::idempotency::complete(
                    &mut conn,
                    client,
                    key,
                    status.as_u16(),
                    header_text(header::CONTENT_TYPE),
                    header_text(header::LOCATION),
                    stored,
                )
                .await
            }
            None => db::idempotency::release(&mut conn, client, key).await,
        }
    };
    if let Err(error) = kept {
        tracing::warn!(error = %error, "could not keep the answer of an Idempotency-Key request");
    }
}

/// The answer as it is stored: sealed under the key-encryption key when there is one;
/// `None` for an answer that cannot be sealed (released rather than kept in plain form).
fn stored_body<'a>(
    state: &AppState,
    client: ClientId,
    key: &str,
    body: &'a [u8],
) -> Option<StoredBody<'a>> {
    match &state.tokens.source.encryption {
        Some(kek) => match kek.seal(body, &encryption::idempotency_binding(client, key)) {
            Ok(sealed) => Some(StoredBody::Sealed(sealed)),
            Err(error) => {
                tracing::warn!(error = %error, "could not seal an Idempotency-Key answer");
                None
            }
        },
        None => Some(StoredBody::Plain(body)),
    }
}
