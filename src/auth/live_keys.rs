//! Every instance's key set kept equal to the database's: a trigger announces every change
//! to `signing_keys` on the `trialops_signing_keys` channel
//! (`migrations/20261201300001_signing_key_encryption`), and a task here listens on a
//! connection of its own and reloads the set. A rotation made on any instance (or the CLI)
//! is known to every instance within the notification's delivery time, well before the new
//! key starts signing.
//!
//! The same task retires keys whose last token has expired (whichever instance comes
//! first; the others hear of it). Tokens of such a key are refused from the moment it is
//! due, even before that: the set in memory knows each key's `tokens_until`.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;

use crate::auth::keys::KeySet;
use crate::auth::tokens::TokenService;
use crate::db::{self, Pool};

/// The notification channel the trigger speaks on.
pub const CHANNEL: &str = "trialops_signing_keys";
/// How often the listening connection is checked, and retirements looked for, when
/// nothing arrives.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Reloads the key set of `tokens` from the database, through `pool`.
pub async fn reload(pool: &Pool, tokens: &TokenService) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let rows = db::keys::published(&mut conn).await?;
    drop(conn);
    let keys = KeySet::from_rows(&rows, &tokens.source)?;
    tokens.replace_keys(keys);
    Ok(())
}

/// Listens for key changes until the process ends, reconnecting after `retry` whenever
/// the connection is lost; `pool` is the background pool (`AppState::background_db`).
pub async fn listen(pool: Pool, tokens: Arc<TokenService>, database_url: String, retry: Duration) {
    loop {
        if let Err(error) = listen_once(&pool, &tokens, &database_url).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot listen for signing key changes; retrying"
            );
        }
        tokio::time::sleep(retry).await;
    }
}

async fn listen_once(pool: &Pool, tokens: &TokenService, database_url: &str) -> anyhow::Result<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .await?;
    // Changes made before now were not announced to us.
    reload(pool, tokens).await?;
    loop {
        let next = {
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            tokio::time::timeout(HEARTBEAT, notifications.next()).await
        };
        match next {
            Ok(Some(Ok(_))) => reload(pool, tokens).await?,
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(None) => return Ok(()),
            Err(_quiet) => {
                tokio::time::timeout(HEARTBEAT, diesel::sql_query("SELECT 1").execute(&mut conn))
                    .await??;
            }
        }
        if tokens.keys().retirement_due() {
            let mut db_conn = pool.get().await?;
            let retired = db::keys::retire_due(&mut db_conn)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            drop(db_conn);
            if !retired.is_empty() {
                reload(pool, tokens).await?;
            }
        }
    }
}
