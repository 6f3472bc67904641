//! One error type for the whole service, mapped once to RFC 9457 problem+json.
//!
//! Handlers, extractors and actix's own failures (bad JSON, bad query, unknown route) all end
//! up here, so a client never sees a text/plain error, an SQL message or a stack trace. The
//! full cause of a 500 goes to the log, tagged with the request id the client also gets.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::telemetry;

/// One invalid field of a request (`errors[]` of a 422 answer).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as a path into the request body (`target_enrollment`, `items[3].likelihood`).
    #[schema(example = "target_enrollment")]
    pub field: String,
    /// A stable machine-readable code: `required`, `range`, `length`, `format`, `enum`,
    /// `unknown_field`, `not_nullable`, `order`, `reference`, ...
    #[schema(example = "range")]
    pub code: String,
    /// A sentence for people.
    #[schema(example = "must be 0 or more")]
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Key of a struct-level rule's param that names the field it is about
/// (`domain::validation::field_error` sets it; `field_errors` reads it).
pub const FIELD_PARAM: &str = "field";

/// Flattens validator's nested errors into `errors[]`, one entry per problem, with dotted
/// paths for nested structs and `[i]` for list items; sorted for a stable answer.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field).then(a.code.cmp(&b.code)));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (name, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for err in list {
                    let field = match err.params.get(FIELD_PARAM).and_then(|v| v.as_str()) {
                        Some(field) if prefix.is_empty() => field.to_string(),
                        Some(field) => format!("{prefix}.{field}"),
                        None => path.clone(),
                    };
                    out.push(FieldError::new(field, err.code.as_ref(), message_of(err)));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

fn message_of(err: &ValidationError) -> String {
    if let Some(message) = &err.message {
        return message.to_string();
    }
    let param = |name: &str| err.params.get(name).map(|v| v.to_string());
    match err.code.as_ref() {
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be {min} or more"),
            (None, Some(max)) => format!("must be {max} or less"),
            _ => "out of range".into(),
        },
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            _ => "wrong length".into(),
        },
        "email" => "must be an e-mail address".into(),
        code => format!("invalid ({code})"),
    }
}

/// RFC 9457 problem details, the body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (`/problems/<slug>`); stable for clients
    /// to branch on.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request id of this answer (also in the `X-Request-Id` header and in every log line).
    pub request_id: Option<String>,
    /// Field-level errors, present on 422 answers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One kind of problem, as a client sees it: the HTTP status, the slug of its `type`
/// (`/problems/<slug>`, stable for clients to branch on) and its title. The catalogue below
/// is the only place these are written: the problem+json answers (`ApiError::kind`) and
/// the OpenAPI document's shared error responses (`api::document`) both read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
}

impl ProblemKind {
    /// The problem's `type`: `/problems/<slug>`.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug)
    }

    const fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            status,
            slug,
            title,
        }
    }

    pub const BAD_REQUEST: Self = Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request");
    pub const UNAUTHORIZED: Self =
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
    pub const FORBIDDEN: Self = Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    pub const NOT_FOUND: Self = Self::new(StatusCode::NOT_FOUND, "not-found", "Not found");
    pub const METHOD_NOT_ALLOWED: Self = Self::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    );
    pub const CONFLICT: Self = Self::new(StatusCode::CONFLICT, "conflict", "Conflict");
    pub const PRECONDITION_FAILED: Self = Self::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition failed",
    );
    pub const PAYLOAD_TOO_LARGE: Self = Self::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
    );
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
    );
    pub const VALIDATION_FAILED: Self = Self::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
        "Validation failed",
    );
    pub const RATE_LIMITED: Self = Self::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    );
    pub const SERVICE_UNAVAILABLE: Self = Self::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service-unavailable",
        "Service unavailable",
    );
    pub const INTERNAL: Self = Self::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal server error",
    );
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed (current version {current_version})")]
    PreconditionFailed { current_version: i32 },
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// `why` is the first half of the detail: which limit was hit.
    #[error("rate limit exceeded: {why} (retry after {retry_after} s)")]
    TooManyRequests { retry_after: u32, why: &'static str },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 422 naming one field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// The kind of problem this error is: its status, slug and title, from the catalogue.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::BadRequest(_) => ProblemKind::BAD_REQUEST,
            Self::Unauthorized(_) => ProblemKind::UNAUTHORIZED,
            Self::Forbidden(_) => ProblemKind::FORBIDDEN,
            Self::NotFound => ProblemKind::NOT_FOUND,
            Self::MethodNotAllowed { .. } => ProblemKind::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => ProblemKind::CONFLICT,
            Self::PreconditionFailed { .. } => ProblemKind::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => ProblemKind::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => ProblemKind::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => ProblemKind::VALIDATION_FAILED,
            Self::TooManyRequests { .. } => ProblemKind::RATE_LIMITED,
            Self::Unavailable(_) => ProblemKind::SERVICE_UNAVAILABLE,
            Self::Internal(_) => ProblemKind::INTERNAL,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::Conflict(d) => d.clone(),
            Self::UnsupportedMediaType(d) => d.clone(),
            Self::NotFound => "no such resource, or it is outside your scope".into(),
            Self::MethodNotAllowed { allow } => format!("allowed methods: {}", allow.join(", ")),
            Self::PreconditionFailed { current_version } => {
                format!("If-Match does not match the current version (\"{current_version}\")")
            }
            Self::PayloadTooLarge { limit } => {
                format!("the request body is larger than {limit} bytes")
            }
            Self::Validation(errors) if errors.len() == 1 => "1 field is invalid".into(),
            Self::Validation(errors) => format!("{} fields are invalid", errors.len()),
            Self::TooManyRequests { retry_after, why } => {
                format!("{why}; retry in {retry_after} s")
            }
            Self::Unavailable(_) => "the database is unreachable; retry shortly".into(),
            Self::Internal(_) => {
                "an internal error occurred; quote the request id when reporting it".into()
            }
        }
    }

    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        Problem {
            problem_type: kind.type_uri(),
            title: kind.title.into(),
            status: kind.status.as_u16(),
            detail: self.detail(),
            request_id: telemetry::current_request_id(),
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().status
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            other => tracing::debug!(error = %other, "request refused"),
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            Self::Unauthorized(reason) => {
                let reason = reason.replace('"', "'");
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"trialops\", error=\"invalid_token\", error_description=\"{reason}\""),
                ));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.join(", ")));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

/// Unique indexes, by name, and the sentence a client gets when one refuses a write.
fn unique_violation_message(constraint: Option<&str>) -> String {
    match constraint {
        Some("studies_protocol_number_key") => {
            "a study with this protocol_number already exists".into()
        }
        Some("sites_study_id_site_number_key") => {
            "this study already has a site with this site_number".into()
        }
        Some(name) if name.ends_with("_external_id_key") => {
            "a record of this type with this external_id already exists".into()
        }
        _ => "the record conflicts with an existing one".into(),
    }
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(unique_violation_message(info.constraint_name()))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::Conflict("the record refers to, or is referred to by, another record".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Self::Conflict("a concurrent change got there first; retry".into())
            }
            // Writers lock in a fixed order (see `db::write::lock_external_ids`), but should
            // two transactions still wait on each other, PostgreSQL ends one: that client
            // may simply retry, so it is a 409, not a 500.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("deadlock detected") =>
            {
                Self::Conflict("a concurrent change got there first; retry".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
                // The service validates before writing, so this is a rule the validation
                // missed: still the client's input, never a 500.
                let field = info.column_name().unwrap_or("body").to_string();
                Self::invalid(
                    &field,
                    "constraint",
                    "a value breaks a rule of this resource",
                )
            }
            // A value the validation let through but PostgreSQL cannot hold (a date or number
            // beyond its range): still the client's input, never a 500.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("out of range") =>
            {
                Self::invalid(
                    "body",
                    "range",
                    "a value is outside the range this service stores",
                )
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_string())
            }
            other => Self::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        Self::Validation(field_errors(&errors))
    }
}
