//! `/api/v1/webhooks`: subscriptions that push the change feed to a partner's URL.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::api::export::{self, Format};
use crate::api::extract::{self, Body};
use crate::app::AppState;
use crate::auth::Caller;
use crate::auth::encryption;
use crate::auth::secrets::generate_secret;
use crate::db;
use crate::db::webhooks::StoredSecret;
use crate::db::webhooks::{Delivery, Webhook, WebhookRow};
use crate::domain::cursor::Page;
use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::WebhookId;
use crate::domain::policy::{self, Reach};
use crate::error::{ApiError, ApiResult};
use crate::webhooks::address::check_url;

/// A subscription to register.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://cro.example.com/trialops/hooks", "entity_types": ["risk", "deviation"]}))]
pub struct NewWebhook {
    /// An `http` or `https` URL that resolves to public addresses only (unless the service
    /// runs with `TRIALOPS_WEBHOOK_ALLOW_PRIVATE=true`). Redirects are not followed.
    #[validate(length(min = 1, max = 2000))]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// The entity types to receive; each must be one the caller's role reads.
    #[validate(length(min = 1, max = 10))]
    #[schema(min_items = 1, max_items = 10)]
    pub entity_types: Vec<EntityType>,
}

/// A new subscription, with the secret that signs its deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The HMAC-SHA256 key of `X-TrialOps-Signature` (its UTF-8 bytes). Shown only now.
    #[schema(example = "tos_q0C5Hh2m7b9yWQb3m3o0b2aN1xk1VJ3c7Nq9d2r5t8U")]
    pub secret: String,
}

/// Registering webhooks is for the roles that run studies.
fn require_subscriber(caller: &Caller) -> ApiResult<()> {
    if matches!(caller.role, Role::Admin | Role::Sponsor | Role::Cro) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "role {} may not use webhooks",
            caller.role
        )))
    }
}

/// The subscription if the caller may see it: its owner, or an admin (others: 404).
async fn visible_webhook(
    caller: &Caller,
    conn: &mut db::Conn,
    id: WebhookId,
) -> ApiResult<WebhookRow> {
    require_subscriber(caller)?;
    db::webhooks::find(conn, id)
        .await?
        .filter(|w| w.owner_id == caller.client_id || caller.role == Role::Admin)
        .ok_or(ApiError::NotFound)
}

/// Register a webhook
///
/// `admin`, `sponsor`, `cro`. Every change of the chosen entity types that the caller may
/// read, committed after registration, is POSTed to `url` at least once, in feed order per
/// record: the body is one change-feed item, signed in `X-TrialOps-Signature:
/// t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under `secret`. A non-2xx answer or no
/// answer within 10 s is retried with exponential backoff, then the delivery is `failed`.
/// A URL that resolves to a loopback, private or link-local address is a 422.
#[utoipa::path(
    operation_id = "create_webhook",
    tag = "sync",
    request_body = NewWebhook,
    responses((status = 201, description = "Registered, with its one-time secret", body = CreatedWebhook)),
)]
#[post("/webhooks")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: Body<NewWebhook>,
) -> ApiResult<HttpResponse> {
    require_subscriber(&caller)?;
    let request = body.0;
    for (index, entity) in request.entity_types.iter().enumerate() {
        if policy::reach(caller.role, *entity) == Reach::Nothing {
            return Err(ApiError::invalid(
                &format!("entity_types[{index}]"),
                "not_readable",
                format!("role {} does not read {entity} records", caller.role),
            ));
        }
    }
    let url = check_url(request.url.trim(), state.webhooks.allow_private)
        .await
        .map_err(|refusal| ApiError::invalid("url", "refused", refusal.to_string()))?;
    let mut types: Vec<String> = request
        .entity_types
        .iter()
        .map(ToString::to_string)
        .collect();
    types.sort();
    types.dedup();
    let secret = generate_secret();
    let id = WebhookId::new_v7();
    // Needed in clear to sign deliveries, so sealed (not hashed) when there is a key.
    let stored = match &state.webhooks.secrets {
        Some(kek) => StoredSecret::Sealed(
            kek.seal(secret.as_bytes(), &encryption::webhook_binding(id))
                .map_err(ApiError::Internal)?,
        ),
        None => StoredSecret::Plain(secret.clone()),
    };
    let mut conn = state.db.get().await?;
    let row = db::webhooks::create(
        &mut conn,
        id,
        caller.client_id,
        url.as_str(),
        &types,
        stored,
    )
    .await?;
    tracing::info!(webhook = %row.id, owner = %caller.client_id, "webhook registered");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhooks/{}", row.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedWebhook {
            webhook: row.into(),
            secret,
        }))
}

/// List webhooks
///
/// The caller's own subscriptions (an `admin`: everyone's), oldest first, in one page.
#[utoipa::path(
    operation_id = "list_webhooks",
    tag = "sync",
    responses((status = 200, description = "The subscriptions (never a secret)", body = Page<Webhook>)),
)]
#[get("/webhooks")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
) -> ApiResult<HttpResponse> {
    require_subscriber(&caller)?;
    let owner = (caller.role != Role::Admin).then_some(caller.client_id);
    let mut conn = state.db.get().await?;
    let rows = db::webhooks::list(&mut conn, owner).await?;
    let data: Vec<Webhook> = rows.into_iter().map(Webhook::from).collect();
    match format {
        Format::Csv => export::csv_rows(data),
        Format::Json => Ok(HttpResponse::Ok().json(Page {
            data,
            next_cursor: None,
        })),
    }
}

/// Read a webhook
#[utoipa::path(
    operation_id = "read_webhook",
    tag = "sync",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, description = "The subscription (never its secret)", body = Webhook)),
)]
#[get("/webhooks/{id}")]
pub async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let row = visible_webhook(&caller, &mut conn, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Webhook::from(row)))
}

/// Delete a webhook
///
/// Nothing more is queued or sent for it (its deliveries stay in the database).
#[utoipa::path(
    operation_id = "delete_webhook",
    tag = "sync",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted")),
)]
#[delete("/webhooks/{id}")]
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let row = visible_webhook(&caller, &mut conn, id.into_inner()).await?;
    db::webhooks::delete(&mut conn, row.id).await?;
    tracing::info!(webhook = %row.id, by = %caller.client_id, "webhook deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Query of a webhook's deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Deliveries per page, 1..=1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List a webhook's deliveries
///
/// Every queued change, in feed order, with its state (`pending`, `delivered`, `failed`)
/// and each attempt: when, the receiver's status, and the error if it failed.
#[utoipa::path(
    operation_id = "list_webhook_deliveries",
    tag = "sync",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveryQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<Delivery>)),
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<WebhookId>,
    query: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    let page = extract::seq_page(query.limit, query.cursor.as_deref())?;
    let mut conn = state.db.get().await?;
    let row = visible_webhook(&caller, &mut conn, id.into_inner()).await?;
    let deliveries = db::webhooks::deliveries(&mut conn, row.id, page.after, page.limit).await?;
    Ok(HttpResponse::Ok().json(Page::from_seq_overfetch(
        deliveries,
        page.limit,
        |delivery| delivery.seq,
    )))
}
