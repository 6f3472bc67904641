//! The webhook dispatcher: a loop in every instance (unless its poll interval is 0) that
//! queues each subscription's new changes and sends the due deliveries.
//!
//! Queueing reads the change feed with the subscription owner's current rights, so a
//! webhook carries exactly what its owner could pull; a revoked owner's webhooks fall
//! silent. Sending claims rows with `FOR UPDATE SKIP LOCKED` and a lease, so two instances
//! never send the same attempt, and a crash mid-send ends in a retry, never a loss.

use std::time::Duration;

use futures_util::StreamExt;

use crate::auth::Caller;
use crate::config::WebhookSettings;
use crate::db::{self, Conn, Pool};
use crate::domain::enums::EntityType;
use crate::domain::ids::WebhookId;
use crate::webhooks::address::PublicResolver;
use crate::webhooks::signature;

/// Changes queued per subscription per round.
const QUEUE_BATCH: i64 = 500;
/// Deliveries claimed per round.
const SEND_BATCH: i64 = 50;
/// Deliveries sent at once.
const SEND_CONCURRENCY: usize = 8;
/// A receiver gets this long to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A claimed delivery is left alone this long; longer than any send can take.
const LEASE: Duration = Duration::from_secs(60);

/// Runs until the process ends, on `pool` (the background pool, `AppState::background_db`).
pub async fn run(pool: Pool, settings: WebhookSettings) {
    let http = match client(&settings) {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "webhook dispatcher cannot start");
            return;
        }
    };
    loop {
        if let Err(error) = round(&pool, &http, &settings).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "webhook round failed; retrying"
            );
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

/// The HTTP client for deliveries: no redirects (a redirect could point inside the
/// network), and unless private addresses are allowed, names resolve to public ones only.
pub fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .user_agent(concat!("TrialOps-Webhooks/", env!("CARGO_PKG_VERSION")));
    if settings.allow_private {
        builder.build()
    } else {
        builder
            .dns_resolver(std::sync::Arc::new(PublicResolver))
            .build()
    }
}

/// One round: queue new changes for every subscription, then send what is due.
pub async fn round(
    pool: &Pool,
    http: &reqwest::Client,
    settings: &WebhookSettings,
) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    for id in db::webhooks::live_ids(&mut conn).await? {
        if let Err(error) = queue_changes(&mut conn, id).await {
            // Another instance moving the same subscription is the usual cause.
            tracing::debug!(webhook = %id, %error, "queueing skipped this round");
        }
    }
    let claimed = db::webhooks::claim_due(&mut conn, SEND_BATCH, LEASE).await?;
    drop(conn);
    futures_util::stream::iter(claimed)
        .for_each_concurrent(SEND_CONCURRENCY, |delivery| async move {
            let outcome = send(http, settings, &delivery).await;
            match pool.get().await {
                Ok(mut conn) => {
                    if let Err(error) =
                        db::webhooks::record_attempt(&mut conn, &delivery, &outcome).await
                    {
                        tracing::warn!(delivery = %delivery.id, %error, "attempt not recorded; the lease will lapse and it is retried");
                    }
                }
                Err(error) => tracing::warn!(%error, "no connection to record an attempt"),
            }
        })
        .await;
    Ok(())
}

/// Queues the subscription's new changes, read with its owner's rights, in one REPEATABLE
/// READ transaction: the feed page, the new deliveries and the new position agree.
async fn queue_changes(conn: &mut Conn, id: WebhookId) -> anyhow::Result<()> {
    conn.build_transaction()
        .repeatable_read()
        .run(async |conn| {
            let Some(webhook) = db::webhooks::lock_for_queueing(conn, id).await? else {
                return Ok(());
            };
            let owner = match db::clients::find(conn, webhook.owner_id).await? {
                Some(owner) if owner.revoked_at.is_none() => owner,
                _ => return Ok(()),
            };
            let owner = Caller::from_client(&owner);
            let types: Vec<EntityType> = EntityType::FEED
                .into_iter()
                .filter(|t| webhook.entity_types.iter().any(|name| name == t.as_ref()))
                .collect();
            let scope = owner.feed_scope(conn, &types).await?;
            let page =
                db::changes::read_page(conn, &scope, webhook.feed_position, QUEUE_BATCH).await?;
            db::webhooks::queue(conn, webhook.id, &page.data, page.next_after).await?;
            Ok::<(), anyhow::Error>(())
        })
        .await
}

/// One attempt: POST the feed item, signed; any 2xx is delivered.
async fn send(
    http: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &db::webhooks::Claimed,
) -> db::webhooks::Outcome {
    let Some(secret) = crate::auth::encryption::webhook_secret(settings.secrets.as_ref(), delivery)
    else {
        return db::webhooks::Outcome {
            response_status: None,
            error: Some(
                "the webhook's secret does not decrypt with TRIALOPS_KEY_ENCRYPTION_KEY".into(),
            ),
            retry_after: Some(backoff(settings.backoff, delivery.attempt)),
            failed: delivery.attempt >= settings.max_attempts,
        };
    };
    let body = delivery.payload.to_string();
    let signature = signature::sign(&secret, chrono::Utc::now().timestamp(), body.as_bytes());
    let result = http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("x-trialops-signature", signature)
        .header("x-trialops-delivery", delivery.id.to_string())
        .body(body)
        .send()
        .await;
    let (response_status, error) = match result {
        Ok(response) if response.status().is_success() => {
            (Some(i32::from(response.status().as_u16())), None)
        }
        Ok(response) => (
            Some(i32::from(response.status().as_u16())),
            Some(format!("receiver answered {}", response.status().as_u16())),
        ),
        Err(error) => (None, Some(describe(&error))),
    };
    let failed = error.is_some() && delivery.attempt >= settings.max_attempts;
    db::webhooks::Outcome {
        response_status,
        error,
        retry_after: Some(backoff(settings.backoff, delivery.attempt)),
        failed,
    }
}

/// `base`, then doubled after each further failed attempt (capped at a day).
pub fn backoff(base: Duration, attempts_made: i32) -> Duration {
    let doublings = u32::try_from(attempts_made.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    base.saturating_mul(1 << doublings)
        .min(Duration::from_secs(24 * 3600))
}

/// The reason a send failed, without the request's URL (it may carry a token).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirected"
    } else {
        "request failed"
    };
    match std::error::Error::source(error) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 60), Duration::from_secs(24 * 3600));
    }
}
