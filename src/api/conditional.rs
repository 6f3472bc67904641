//! Conditional GET for computed answers (a study's metrics, curve, forecast and signals,
//! and the portfolio): their `ETag` is known before any figure is computed, so a dashboard
//! polling an unchanged study gets a 304 for the price of one index scan.
//!
//! The rule (docs/conventions.md): the tag is weak (`W/"..."`: the figures, not the bytes,
//! are the same, and a compressed answer may share it) and hashes
//! - the change count of the data read (`db::validators`), which every committed write
//!   changes at once,
//! - today's date (UTC): the figures move at midnight without any write,
//! - the path and the query string (the study, `as_of`, the prior),
//! - the negotiated media type (JSON, CSV or SVG),
//! - for the portfolio, the studies in the caller's scope.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use sha2::{Digest, Sha256};

use crate::api::export::Format;
use crate::api::headers::none_match_fails;
use crate::domain::ids::StudyId;
use crate::error::ApiError;

/// The `ETag` of one computed answer.
pub struct Validator(HeaderValue);

impl Validator {
    pub fn new(req: &HttpRequest, media: &str, changes: i64, scope: Option<&[StudyId]>) -> Self {
        let mut hash = Sha256::new();
        hash.update(req.path().as_bytes());
        hash.update(b"?");
        hash.update(req.query_string().as_bytes());
        hash.update(b"\0");
        hash.update(media.as_bytes());
        hash.update(changes.to_be_bytes());
        hash.update(chrono::Utc::now().date_naive().to_string().as_bytes());
        for id in scope.unwrap_or_default() {
            hash.update(id.uuid().as_bytes());
        }
        let digest = hash.finalize();
        let tag = format!("W/\"{}\"", hex::encode(&digest[..12]));
        // Hex and quotes only: always a valid header value.
        Self(HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("W/\"0\"")))
    }

    /// The 304 when the request's `If-None-Match` names this tag.
    pub fn not_modified(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let if_none_match = req.headers().get(header::IF_NONE_MATCH)?;
        none_match_fails(if_none_match, &self.0).then(|| {
            HttpResponse::NotModified()
                .insert_header((header::ETAG, self.0.clone()))
                .finish()
        })
    }

    /// The computed answer with this tag.
    pub fn tag(self, answer: Result<HttpResponse, ApiError>) -> Result<HttpResponse, ApiError> {
        let mut answer = answer?;
        if answer.status().is_success() {
            answer.headers_mut().insert(header::ETAG, self.0);
        }
        Ok(answer)
    }
}

/// The media type part of a validator.
pub fn media(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Csv => "csv",
    }
}
