//! `/api/v1/clients`: the API clients (machine users) that may call TrialOps.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::export::{self, Format};
use crate::api::extract::{Body, ChangeReason, ListParams};
use crate::app::AppState;
use crate::auth::Caller;
use crate::auth::clients::{NewClientRequest, register};
use crate::db;
use crate::db::clients::ApiClient;
use crate::domain::cursor::Page;
use crate::domain::enums::EntityType;
use crate::domain::ids::ClientId;
use crate::domain::policy::Operation;
use crate::error::{ApiError, ApiResult};

/// A new client and its credentials. The secret is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ApiClient,
    /// The OAuth `client_id` (the client's `id`).
    pub client_id: ClientId,
    /// The OAuth `client_secret`. Store it now: only its Argon2id hash is kept.
    #[schema(example = "tos_q0C5Hh2m7b9yWQb3m3o0b2aN1xk1VJ3c7Nq9d2r5t8U")]
    pub client_secret: String,
}

/// List API clients
///
/// `admin` and `auditor`. Revoked clients are listed with `include_deleted=true`.
#[utoipa::path(
    operation_id = "list_clients",
    tag = "clients",
    params(ListParams),
    responses((status = 200, description = "A page of clients (never a secret)", body = Page<ApiClient>)),
)]
#[get("/clients")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    params: web::Query<ListParams>,
) -> ApiResult<HttpResponse> {
    caller.require_read(EntityType::Client)?;
    let page = params.page()?;
    export::list(format, &state.db, params.limit, page, async |conn, page| {
        Ok(db::clients::list(conn, page).await?)
    })
    .await
}

/// Create an API client
///
/// `admin` only. The answer carries `client_id` and `client_secret` for the OAuth token
/// endpoint; the secret is never shown again.
#[utoipa::path(
    operation_id = "create_client",
    tag = "clients",
    request_body = NewClientRequest,
    responses((status = 201, description = "Created, with its one-time secret", body = CreatedClient)),
)]
#[post("/clients")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    body: Body<NewClientRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(EntityType::Client, Operation::Create)?;
    let mut conn = state.db.get().await?;
    let (client, client_secret) =
        register(&mut conn, &caller.write_context(reason.0), body.0).await?;
    let location = format!("/api/v1/clients/{}", client.id);
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedClient {
            client_id: client.id,
            client,
            client_secret,
        }))
}

/// Read an API client
#[utoipa::path(
    operation_id = "read_client",
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id")),
    responses((status = 200, description = "The client (never its secret)", body = ApiClient)),
)]
#[get("/clients/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<ClientId>,
) -> ApiResult<HttpResponse> {
    caller.require_read(EntityType::Client)?;
    let mut conn = state.db.get().await?;
    let client = db::clients::find(&mut conn, id.into_inner())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(ApiClient::from(client)))
}

/// Revoke an API client
///
/// `admin` only. The client gets no new tokens, and the tokens it holds stop working at
/// once. Audited as `revoke`.
#[utoipa::path(
    operation_id = "revoke_client",
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id")),
    responses((status = 204, description = "Revoked")),
)]
#[delete("/clients/{id}")]
pub async fn revoke(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<ClientId>,
    reason: ChangeReason,
) -> ApiResult<HttpResponse> {
    caller.require(EntityType::Client, Operation::Delete)?;
    let mut conn = state.db.get().await?;
    db::clients::revoke(&mut conn, &caller.write_context(reason.0), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
