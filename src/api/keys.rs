//! `/api/v1/keys`: rotation of the token signing key.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::api::extract::{Body, ChangeReason};
use crate::app::AppState;
use crate::auth::{Caller, keys, live_keys};
use crate::db::keys::Rotation;
use crate::domain::enums::EntityType;
use crate::domain::policy::{self, Operation};
use crate::error::{ApiError, ApiResult};

/// A rotation takes no options: send `{}` (the reason goes in `X-Change-Reason`).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {}

/// Rotate the signing key
///
/// Publishes a new signing key now: every instance learns of it at once (it appears in
/// `/.well-known/jwks.json`) and signs with it from `signing_from`, a moment later. The
/// keys it supersedes keep verifying tokens until the last one they signed has expired
/// (token lifetime plus an allowance for clock skew: `tokens_until`), then retire by
/// themselves. Each step is an audit event of entity type `signing_key`. A 409 when the
/// key comes from `TRIALOPS_SIGNING_KEY_PEM`: rotation does not apply there. `admin`.
#[utoipa::path(
    operation_id = "rotate_signing_key",
    tag = "auth",
    request_body = RotateRequest,
    responses(
        (status = 200, description = "The new key and the keys it supersedes", body = Rotation),
        (status = 409, description = "The signing key comes from the environment", body = crate::error::Problem),
    ),
)]
#[post("/keys/rotate")]
pub async fn rotate(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    _body: Body<RotateRequest>,
) -> ApiResult<HttpResponse> {
    if !policy::may_write(caller.role, EntityType::SigningKey, Operation::Create) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not rotate the signing key",
            caller.role
        )));
    }
    let mut conn = state.db.get().await?;
    let rotation = keys::rotate(
        &mut conn,
        &caller.write_context(reason.0),
        &state.tokens.source,
    )
    .await?;
    drop(conn);
    // This instance need not wait for the notification.
    live_keys::reload(&state.background_db, &state.tokens).await?;
    tracing::info!(kid = %rotation.kid, "signing key rotated");
    Ok(HttpResponse::Ok().json(rotation))
}
