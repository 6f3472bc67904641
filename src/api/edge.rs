//! The service's own middleware: two layers with named steps, instead of one boxed layer
//! per concern (each layer costs every request a boxed future and a hop through it).
//!
//! - `outer`, outside compression and CORS: the request id and its span
//!   (`telemetry::traced`), then the answer headers and `304` (`headers::AnswerHeaders`,
//!   which must see the encoded answer);
//! - `inner`, next to the handlers: the query held to the OpenAPI document (an undeclared
//!   parameter, an inexact date or a `%00` is a 400: `strict_query`), `Idempotency-Key` on
//!   a POST (`idempotency`; any other request passes straight through), and the
//!   `RateLimit-*` headers (`rate_limit::add_headers`).

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::api::headers::AnswerHeaders;
use crate::api::{idempotency, strict_query};
use crate::auth::rate_limit;
use crate::telemetry;

/// The outer layer (see the module's summary).
pub async fn outer<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    telemetry::traced(req, |req| async move {
        let answer = match AnswerHeaders::of(&req) {
            Ok(answer) => answer,
            Err(refusal) => {
                return Ok(req
                    .into_response(refusal.error_response())
                    .map_into_right_body());
            }
        };
        Ok(answer.apply(next.call(req).await?))
    })
    .await
}

/// The inner layer (see the module's summary).
pub async fn inner<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if let Err(refusal) = strict_query::check(&req) {
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    let mut response = idempotency::idempotency(req, next).await?;
    rate_limit::add_headers(&mut response);
    Ok(response)
}
