//! Extractors for the request parts every resource reads the same way: JSON bodies, merge
//! patches, `If-Match`, `X-Change-Reason` and the common list parameters. Each refuses bad
//! input with the right problem+json answer before a handler runs.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::IntoParams;
use validator::Validate;

use crate::api::batch::BatchRequest;
use crate::domain::cursor::{PageRequest, SeqPageRequest, decode_cursor, decode_seq_cursor};
use crate::domain::json;
use crate::domain::validation::field_errors;
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, FieldError};

/// Default body limit (contract: 1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Body limit of the batch endpoints (contract: 10 MiB).
pub const BATCH_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// Items a batch takes at most.
pub const BATCH_MAX_ITEMS: usize = 1000;
/// Body limit of the ClinicalTrials.gov import (contract: 5 MiB; a record with thousands
/// of locations stays well below it).
pub const IMPORT_BODY_LIMIT: usize = 5 * 1024 * 1024;
pub const CTGOV_IMPORT_PATH: &str = "/api/v1/studies/import/ctgov";

/// The body limit of a request path: the batch endpoints (`/api/v1/<resource>/batch`) take
/// 10 MiB, the ClinicalTrials.gov import 5 MiB, every other route 1 MiB. One rule for the
/// body extractors and the `Idempotency-Key` middleware, which reads bodies before them.
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/api/v1/") && path.ends_with("/batch") {
        BATCH_BODY_LIMIT
    } else if path == CTGOV_IMPORT_PATH {
        IMPORT_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Reads the request body (decoded as `Content-Encoding` says) up to the path's
/// `body_limit`: 413 beyond it, refused by `Content-Length` before reading when it says so.
pub fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let limit = body_limit(req.path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let stream = actix_web::dev::Decompress::from_headers(payload.take(), req.headers());
    Box::pin(async move {
        if declared.is_some_and(|length| length > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let body = actix_web::body::BodyStream::new(stream);
        match actix_web::body::to_bytes_limited(body, limit).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(error)) => Err(ApiError::BadRequest(format!(
                "could not read the request body: {error}"
            ))),
            Err(_) => Err(ApiError::PayloadTooLarge { limit }),
        }
    })
}

pub const CHANGE_REASON_HEADER: &str = "x-change-reason";
const CHANGE_REASON_MAX_CHARS: usize = 500;

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// `application/json`, or any `application/*+json` (such as merge-patch+json).
fn is_json(media_type: &str) -> bool {
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// Reads the body as bytes within the limit: 415 if it is not JSON, 413 if too large.
fn json_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let media = media_type(req.headers());
    let bytes = read_body(req, payload);
    Box::pin(async move {
        match media.as_deref() {
            Some(media) if is_json(media) => {}
            Some(other) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "expected application/json, got {other}"
                )));
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "expected Content-Type: application/json".into(),
                ));
            }
        }
        bytes.await
    })
}

/// A JSON body, parsed (400 / 422 naming the field) and validated (422).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move {
            let value: T = json::from_slice(&bytes.await?)?;
            value.validate()?;
            Ok(Body(value))
        })
    }
}

/// A batch body, `{"items": [...]}`: 1 to 1,000 items, each parsed and validated exactly
/// like the `POST` body `T`, with errors naming the item (`items[3].likelihood`; 400 for a
/// wrong JSON type, 422 for a refused value).
pub struct Batch<T>(pub Vec<T>);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for Batch<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move {
            let BatchRequest { items } = json::from_slice::<BatchRequest<T>>(&bytes.await?)?;
            if !(1..=BATCH_MAX_ITEMS).contains(&items.len()) {
                return Err(ApiError::invalid(
                    "items",
                    "length",
                    format!(
                        "must hold 1 to {BATCH_MAX_ITEMS} items, not {}",
                        items.len()
                    ),
                ));
            }
            let errors: Vec<FieldError> = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| item.validate().err().map(|e| (index, e)))
                .flat_map(|(index, errors)| {
                    field_errors(&errors).into_iter().map(move |mut error| {
                        error.field = format!("items[{index}].{}", error.field);
                        error
                    })
                })
                .collect();
            if errors.is_empty() {
                Ok(Batch(items))
            } else {
                Err(ApiError::Validation(errors))
            }
        })
    }
}

/// A JSON document read as it is (a ClinicalTrials.gov record): malformed JSON is a 400,
/// a string holding U+0000 a 422; its shape is the handler's to judge.
pub struct JsonDocument(pub Value);

impl FromRequest for JsonDocument {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move { Ok(JsonDocument(json::from_slice::<Value>(&bytes.await?)?)) })
    }
}

/// A JSON Merge Patch (RFC 7396) body: a JSON object, applied by
/// `domain::patch::apply_merge_patch` to the current record.
pub struct MergePatch(pub Value);

impl FromRequest for MergePatch {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move {
            match json::from_slice::<Value>(&bytes.await?)? {
                patch @ Value::Object(_) => Ok(MergePatch(patch)),
                _ => Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                )),
            }
        })
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.headers().get(header::IF_MATCH) {
            None => Ok(IfMatch::any()),
            Some(value) => value
                .to_str()
                .map(IfMatch::parse)
                .map_err(|_| ApiError::BadRequest("If-Match is not valid ASCII".into())),
        })
    }
}

/// `X-Change-Reason`: why a change is made, kept with its audit event (at most 500
/// characters).
#[derive(Debug, Clone, Default)]
pub struct ChangeReason(pub Option<String>);

impl ChangeReason {
    /// For resources whose changes must be explained (risks, deviations): 422 without one.
    pub fn required(self) -> Result<String, ApiError> {
        self.0.ok_or_else(|| {
            ApiError::invalid(
                "X-Change-Reason",
                "required",
                "a reason for this change is required",
            )
        })
    }
}

impl FromRequest for ChangeReason {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(CHANGE_REASON_HEADER) else {
            return ready(Ok(ChangeReason(None)));
        };
        let result = match std::str::from_utf8(value.as_bytes()) {
            Err(_) => Err(ApiError::BadRequest("X-Change-Reason is not UTF-8".into())),
            Ok(reason) if reason.chars().count() > CHANGE_REASON_MAX_CHARS => {
                Err(ApiError::invalid(
                    "X-Change-Reason",
                    "length",
                    format!("length must be at most {CHANGE_REASON_MAX_CHARS}"),
                ))
            }
            Ok(reason) if reason.trim().is_empty() => Ok(ChangeReason(None)),
            Ok(reason) => Ok(ChangeReason(Some(reason.trim().to_string()))),
        };
        ready(result)
    }
}

/// Query parameters every list endpoint takes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Rows per page, 1..=1000 (default 50). For CSV (`Accept: text/csv`): the most rows
    /// the export sends; without it, every matching row.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only rows changed at or after this time (RFC 3339, e.g. `2026-03-01T09:30:00Z`), for
    /// incremental sync.
    pub updated_since: Option<DateTime<Utc>>,
    /// Include soft-deleted rows (they carry `deleted_at`).
    pub include_deleted: Option<bool>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;

/// `limit` of any list, 1..=[`MAX_LIMIT`], or `default` when absent (400 otherwise).
pub fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )))
    }
}

/// A `cursor` decoded by `decode`, or a 400 that says to start again.
fn decode_or_400<T>(
    cursor: Option<&str>,
    decode: fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    cursor
        .map(|cursor| {
            decode(cursor).ok_or_else(|| {
                ApiError::BadRequest(
                    "cursor is not one this service issued; start again without it".into(),
                )
            })
        })
        .transpose()
}

/// The page asked for by `limit` and `cursor` of a list ordered by sequence number (the
/// audit trail, a webhook's deliveries).
pub fn seq_page(limit: Option<i64>, cursor: Option<&str>) -> Result<SeqPageRequest, ApiError> {
    Ok(SeqPageRequest {
        limit: page_limit(limit, DEFAULT_LIMIT)?,
        after: decode_or_400(cursor, decode_seq_cursor)?,
    })
}

impl ListParams {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = page_limit(self.limit, DEFAULT_LIMIT)?;
        let after = decode_or_400(self.cursor.as_deref(), decode_cursor)?;
        if let Some(since) = self.updated_since {
            crate::domain::validation::date_param("updated_since", Some(since.date_naive()))?;
        }
        Ok(PageRequest {
            limit,
            after,
            updated_since: self.updated_since,
            include_deleted: self.include_deleted.unwrap_or(false),
        })
    }
}

/// Error handlers that route actix's own extractor failures through `ApiError`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _| {
        ApiError::BadRequest(format!("bad query parameter: {error}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    // A malformed id cannot name anything: the same 404 as an id that names nothing.
    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into())
}

pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BODY_LIMIT)
}

/// A query parameter holding U+0000 (`%00`) is a 400 before any handler runs (a step of
/// `api::edge::inner`). PostgreSQL text cannot hold it, and no filter of ours has a use
/// for it.
pub fn nul_in_query(query: &str) -> Option<ApiError> {
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(key, value)| key.contains('\0') || value.contains('\0'))
        .then(|| ApiError::BadRequest("query parameters must not contain U+0000".into()))
}
