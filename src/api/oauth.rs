//! `POST /oauth/token` (OAuth 2.0 client credentials, RFC 6749 §4.4) and the public keys
//! that verify the tokens it issues.
//!
//! Failures here use RFC 6749 §5.2 error bodies (`{"error": "invalid_client"}`), not
//! problem+json: OAuth client libraries expect exactly that shape.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::db;
use crate::domain::ids::ClientId;
use crate::error::ApiError;

/// The token request form (`application/x-www-form-urlencoded`). The client may send its
/// credentials here or as HTTP Basic, not both.
/// How long an address blocked for wrong secrets waits for its 429.
const THROTTLED_ANSWER_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(example = "client_credentials")]
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Ignored: a token always carries the client's whole role and scope.
    pub scope: Option<String>,
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...", "token_type": "Bearer", "expires_in": 900, "scope": "role:cro study:0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"}))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// The client's role and scope: `role:<role>` then `study:<id>`, `site:<id>` or
    /// `vendor:<id>` entries.
    pub scope: String,
}

/// An RFC 6749 §5.2 error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_client", "error_description": "unknown client or wrong secret"}))]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, or `server_error`.
    pub error: String,
    pub error_description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `challenge`: answer with `WWW-Authenticate: Basic` (RFC 6749 §5.2: when the client
    /// authenticated with Basic), except to browser scripts, where the challenge would make
    /// the browser pop up its own sign-in prompt instead of letting Swagger UI show the error.
    #[error("invalid_client")]
    InvalidClient { challenge: bool },
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("server error: {0}")]
    Server(#[from] ApiError),
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::UnsupportedGrantType => StatusCode::BAD_REQUEST,
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::Server(inner) => inner.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, description) = match self {
            Self::InvalidRequest(why) => ("invalid_request", why.clone()),
            Self::InvalidClient { .. } => (
                "invalid_client",
                "unknown client, revoked client or wrong secret".to_string(),
            ),
            Self::UnsupportedGrantType => (
                "unsupported_grant_type",
                "only client_credentials is supported".to_string(),
            ),
            // A database outage is still a 503 with Retry-After, in the problem+json shape.
            Self::Server(inner) => return inner.error_response(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if matches!(self, Self::InvalidClient { challenge: true }) {
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"trialops\""));
        }
        response.json(OAuthErrorBody {
            error: error.into(),
            error_description: description,
        })
    }
}

/// Credentials from `Authorization: Basic` if present.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::InvalidRequest("malformed Basic credentials".into());
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "only Basic client authentication is supported".into(),
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((id.to_string(), secret.to_string())))
}

/// Get an access token
///
/// OAuth 2.0 client credentials grant. Send `grant_type=client_credentials` with
/// `client_id` and `client_secret` in the form, or the credentials as HTTP Basic. The token
/// is a JWT (EdDSA) valid for `expires_in` seconds; send it as `Authorization: Bearer`.
#[utoipa::path(
    operation_id = "request_token",
    tag = "auth",
    security(()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "`invalid_request` or `unsupported_grant_type`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: unknown or revoked client, or wrong secret", body = OAuthErrorBody),
        (status = 429, description = "Too many wrong secrets from this address, or too many checks for this client: retry after `Retry-After` seconds (a secret verified before still passes)", body = crate::error::Problem),
        (status = 503, description = "Database unreachable", body = crate::error::Problem),
    ),
)]
#[post("/oauth/token")]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::InvalidRequest(
            "send the request as application/x-www-form-urlencoded".into(),
        ));
    }
    let used_basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    let from_script = req
        .headers()
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"));
    let invalid_client = || OAuthError::InvalidClient {
        challenge: used_basic && !from_script,
    };
    let form: TokenRequest = serde_urlencoded::from_bytes(&body)
        .map_err(|e| OAuthError::InvalidRequest(format!("malformed form: {e}")))?;
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
        None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
    }
    let in_body = match (form.client_id, form.client_secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        _ => {
            return Err(OAuthError::InvalidRequest(
                "send both client_id and client_secret".into(),
            ));
        }
    };
    let (client_id, secret) = match (basic_credentials(&req)?, in_body) {
        (Some(basic), None) => basic,
        (None, Some(form)) => form,
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "send credentials either as Basic or in the form, not both".into(),
            ));
        }
        (None, None) => return Err(invalid_client()),
    };
    // Every 429 here is answered after a pause: a flood that ignores `Retry-After` then
    // costs a timer per request, not CPU.
    let address = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
    let guard = &state.secret_guard;
    let refused_at_the_door = |error: ApiError| async move {
        tokio::time::sleep(THROTTLED_ANSWER_DELAY).await;
        OAuthError::Server(error)
    };
    let client_id = client_id.parse::<ClientId>().ok();
    let client = match client_id {
        Some(id) => {
            let mut conn = state.db.get().await.map_err(ApiError::from)?;
            db::clients::find(&mut conn, id)
                .await
                .map_err(ApiError::from)?
                .filter(|client| client.revoked_at.is_none())
        }
        None => None,
    };
    // The right secret, verified before, passes whatever strangers have sent.
    let remembered = client
        .as_ref()
        .is_some_and(|c| guard.remembered(c.id, &secret, &c.secret_hash));
    if !remembered && let Err(blocked) = guard.refuse_blocked_address(address) {
        return Err(refused_at_the_door(blocked).await);
    }
    let Some(client) = client else {
        guard.record_failure(address);
        return Err(invalid_client());
    };
    let client_id = client.id;
    if !remembered {
        let secret_ok = match guard
            .verify(client_id, secret, client.secret_hash.clone())
            .await
        {
            Ok(ok) => ok,
            // Too many checks for this client: an unverified attempt the address pays for.
            Err(throttled @ ApiError::TooManyRequests { .. }) => {
                guard.record_failure(address);
                return Err(refused_at_the_door(throttled).await);
            }
            Err(other) => return Err(other.into()),
        };
        if !secret_ok {
            tracing::warn!(client_id = %client_id, %address, "token refused: wrong client secret");
            guard.record_failure(address);
            return Err(invalid_client());
        }
    }
    let issued = state.tokens.issue(
        client.id,
        client.role,
        client.studies,
        client.sites,
        client.vendor_id,
    )?;
    tracing::info!(client_id = %client_id, role = %client.role, "token issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            scope: issued.scope,
        }))
}

/// Token verification keys
///
/// The public keys (JWKS, RFC 7517; Ed25519 as RFC 8037 OKP keys) that verify access
/// tokens, by `kid`.
#[utoipa::path(
    operation_id = "jwks",
    tag = "auth",
    security(()),
    responses((status = 200, description = "The key set", body = Object,
        example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "3f1c0a9b7d2e4f6a8b0c1d2e", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}))),
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}
