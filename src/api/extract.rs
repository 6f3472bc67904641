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
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::domain::cursor::{PageRequest, SeqPageRequest, decode_cursor, decode_seq_cursor};
use crate::domain::json;
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, FieldError, field_errors};

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

/// The body as a JSON object: 400 for malformed JSON or any other JSON value (a U+0000 in a
/// string is a 422 naming the field).
fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match json::from_slice::<Value>(bytes)? {
        Value::Object(members) => Ok(members),
        _ => Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        )),
    }
}

/// A JSON body: checked against its published schema (every invalid field in one 422),
/// parsed, then validated by the rules a schema cannot state (422).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Validate + ToSchema + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move {
            let members = json_object(&bytes.await?)?;
            let value: T = json::parse(Value::Object(members))?;
            value.validate()?;
            Ok(Body(value))
        })
    }
}

/// A batch body, `{"items": [...]}`: 1 to 1,000 items, each parsed and validated exactly
/// like the `POST` body `T`. One 422 names every invalid field of every item
/// (`items[3].likelihood`).
pub struct Batch<T>(pub Vec<T>);

impl<T: DeserializeOwned + Validate + ToSchema + 'static> FromRequest for Batch<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(req, payload);
        Box::pin(async move {
            let mut members = json_object(&bytes.await?)?;
            let mut errors: Vec<FieldError> = members
                .keys()
                .filter(|key| *key != "items")
                .map(|key| {
                    FieldError::new(
                        key.clone(),
                        "unknown_field",
                        "is not a field of this resource, or is read-only",
                    )
                })
                .collect();
            let items = match members.remove("items") {
                None => {
                    errors.push(FieldError::new("items", "required", "is required"));
                    Vec::new()
                }
                Some(Value::Array(items)) => items,
                Some(Value::Null) => {
                    errors.push(FieldError::new("items", "not_nullable", "cannot be null"));
                    Vec::new()
                }
                Some(_) => {
                    errors.push(FieldError::new("items", "type", "must be an array"));
                    Vec::new()
                }
            };
            if errors.is_empty() && !(1..=BATCH_MAX_ITEMS).contains(&items.len()) {
                errors.push(FieldError::new(
                    "items",
                    "length",
                    format!(
                        "must hold 1 to {BATCH_MAX_ITEMS} items, not {}",
                        items.len()
                    ),
                ));
            }
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            let mut parsed = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let prefix = format!("items[{index}]");
                if !item.is_object() {
                    errors.push(FieldError::new(prefix, "type", "must be an object"));
                    continue;
                }
                let item = match json::parse::<T>(item) {
                    Ok(item) => item,
                    Err(ApiError::Validation(item_errors)) => {
                        errors.extend(item_errors.into_iter().map(|mut error| {
                            error.field = format!("{prefix}.{}", error.field);
                            error
                        }));
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                if let Err(item_errors) = item.validate() {
                    errors.extend(field_errors(&item_errors).into_iter().map(|mut error| {
                        error.field = format!("{prefix}.{}", error.field);
                        error
                    }));
                }
                parsed.push(item);
            }
            if errors.is_empty() {
                Ok(Batch(parsed))
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
        Box::pin(
            async move { json_object(&bytes.await?).map(|patch| MergePatch(Value::Object(patch))) },
        )
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
    pub fn require(&self) -> Result<(), ApiError> {
        match self.0 {
            Some(_) => Ok(()),
            None => Err(ApiError::invalid(
                "X-Change-Reason",
                "required",
                "a reason for this change is required",
            )),
        }
    }

    /// The reason, which `require` demands.
    pub fn required(self) -> Result<String, ApiError> {
        self.require()?;
        Ok(self.0.unwrap_or_default())
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
    // A malformed id cannot name anything: the same 404 as an id that names nothing. But
    // `PATCH /sites/batch` reaches `PATCH /sites/{id}` with the id "batch" while naming the
    // batch route, which takes only POST: the fallback's answer, a 405 with `Allow`.
    web::PathConfig::default().error_handler(|_, req| crate::api::fallback::refusal(req).into())
}

pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(BODY_LIMIT)
}
