//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::app::AppState;
use crate::db;
use crate::error::{ApiError, ApiResult};

/// Liveness
///
/// The process is up. Does not touch the database.
#[utoipa::path(operation_id = "healthz", tag = "operations", security(()), responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok"}))))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness
///
/// The database is reachable and every migration this build knows is applied; 503
/// otherwise (take the instance out of rotation). `signing_keys` says where the token
/// signing key is kept: `encrypted`, `from the environment`, or `not encrypted` (a
/// database reader could sign tokens; still ready).
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "migration": "20261201000002", "revocations": "notified", "signing_keys": "encrypted"})),
        (status = 503, description = "Database unreachable or not migrated", body = crate::error::Problem),
    ),
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let applied = db::applied_migration_version(&mut conn)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading migrations: {e}")))?;
    let expected = db::latest_migration_version();
    if applied < expected {
        return Err(ApiError::Unavailable(format!(
            "migrations not applied: have {applied:?}, need {expected:?}"
        )));
    }
    // Whether revocations reach this instance by notification, or (while its notification
    // connection is down) by a database check on every request.
    let revocations = if state.live_clients.listening() {
        "notified"
    } else {
        "checked on every request"
    };
    // Where the token signing key is kept: `not encrypted` still answers ready, but says
    // that a database reader could sign tokens.
    let signing_keys = state.tokens.keys().storage.describe();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "migration": applied,
        "revocations": revocations,
        "signing_keys": signing_keys,
    })))
}
