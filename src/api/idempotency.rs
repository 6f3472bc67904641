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
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::extract::read_body;
use crate::app::AppState;
use crate::auth::encryption;
use crate::db;
use crate::db::idempotency::StoredBody;
use crate::error::ApiError;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_CHARS: usize = 255;
/// Answers larger than this are not kept for replay (no POST answer of ours comes close).
const MAX_STORED_ANSWER: usize = 4 * 1024 * 1024;

/// The client a bearer token names, if it verifies; a request whose token does not verify is
/// left alone, to be refused by the handler's `Caller` (401).
fn client_of(req: &ServiceRequest, state: &AppState) -> Option<Uuid> {
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

async fn keyed<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        Some(value) => value.to_str().map(str::to_string),
        None => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let key = match key {
        Ok(key) if !key.trim().is_empty() && key.chars().count() <= MAX_KEY_CHARS => key,
        _ => {
            let error = ApiError::invalid(
                "Idempotency-Key",
                "length",
                "must be 1 to 255 visible ASCII characters",
            );
            return Ok(refuse(req, error));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(client) = client_of(&req, &state) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };

    // The body is read here to fingerprint the request, then handed on unchanged.
    let (http_req, payload) = req.parts_mut();
    let body = match read_body(http_req, payload).await {
        Ok(body) => body,
        Err(error) => return Ok(refuse(req, error)),
    };
    let request_hash = fingerprint(&req, &body);
    // `read_body` decoded any `Content-Encoding`: what goes on is plain bytes, and the
    // handler's extractor must not try to decode them again.
    let headers = req.headers_mut();
    headers.remove(header::CONTENT_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    req.set_payload(Payload::from(body));

    let claimed = async {
        let mut conn = state.db.get().await?;
        Ok::<_, ApiError>(db::idempotency::claim(&mut conn, client, &key, &request_hash).await?)
    }
    .await;
    match claimed {
        Err(error) => return Ok(refuse(req, error)),
        Ok(Some(stored)) if stored.request_hash != request_hash => {
            let error = ApiError::invalid(
                "Idempotency-Key",
                "reused",
                "was used with a different request",
            );
            return Ok(refuse(req, error));
        }
        Ok(Some(stored)) if stored.state != "completed" => {
            let error = ApiError::Conflict(
                "a request with this Idempotency-Key is still running; retry shortly".into(),
            );
            return Ok(refuse(req, error));
        }
        Ok(Some(stored)) => {
            let status = u16::try_from(stored.response_status.unwrap_or(200))
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut replay = HttpResponse::build(status);
            replay.insert_header((REPLAYED, "true"));
            if let Some(content_type) = stored.response_type {
                replay.insert_header((header::CONTENT_TYPE, content_type));
            }
            if let Some(location) = stored.response_location {
                replay.insert_header((header::LOCATION, location));
            }
            let body = match (stored.response_body, stored.response_body_enc) {
                (Some(body), _) => body,
                (None, Some(sealed)) => {
                    let opened = state.tokens.source.encryption.as_ref().and_then(|kek| {
                        kek.open(&sealed, &encryption::idempotency_binding(client, &key))
                    });
                    match opened {
                        Some(body) => body,
                        None => {
                            let error = ApiError::Internal(anyhow::anyhow!(
                                "a kept Idempotency-Key answer does not decrypt with {}",
                                encryption::VARIABLE
                            ));
                            return Ok(refuse(req, error));
                        }
                    }
                }
                (None, None) => Vec::new(),
            };
            let response = replay.body(body);
            return Ok(req.into_response(response).map_into_right_body());
        }
        Ok(None) => {}
    }

    // Ours: run the request, then keep its answer (or free the key after a 5xx).
    let response = next.call(req).await?;
    let (http_req, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let (head, body) = response.into_parts();
    let body = match to_bytes_limited(body, MAX_STORED_ANSWER).await {
        Ok(Ok(bytes)) => bytes,
        _ => {
            if let Ok(mut conn) = state.db.get().await {
                let _ = db::idempotency::release(&mut conn, client, &key).await;
            }
            let error = ApiError::Internal(anyhow::anyhow!(
                "answer too large to keep for Idempotency-Key"
            ));
            return Ok(ServiceResponse::new(http_req, error.error_response()).map_into_right_body());
        }
    };
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    if let Ok(mut conn) = state.db.get().await {
        let kept = if status.is_server_error() {
            db::idempotency::release(&mut conn, client, &key).await
        } else {
            // Sealed under the key-encryption key when there is one; an answer that cannot
            // be sealed is released rather than kept in plain form.
            let stored = match &state.tokens.source.encryption {
                Some(kek) => {
                    match kek.seal(&body, &encryption::idempotency_binding(client, &key)) {
                        Ok(sealed) => Some(StoredBody::Sealed(sealed)),
                        Err(error) => {
                            tracing::warn!(error = %error, "could not seal an Idempotency-Key answer");
                            None
                        }
                    }
                }
                None => Some(StoredBody::Plain(&body)),
            };
            match stored {
                Some(stored) => {
                    db::idempotency::complete(
                        &mut conn,
                        client,
                        &key,
                        status.as_u16(),
                        header_text(header::CONTENT_TYPE),
                        header_text(header::LOCATION),
                        stored,
                    )
                    .await
                }
                None => db::idempotency::release(&mut conn, client, &key).await,
            }
        };
        if let Err(error) = kept {
            tracing::warn!(error = %error, "could not keep the answer of an Idempotency-Key request");
        }
    }
    let response = head.set_body(body).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, response).map_into_right_body())
}
