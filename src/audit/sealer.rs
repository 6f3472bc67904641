//! The background sealer: a loop in every instance (unless its interval is 0) that seals
//! committed audit events, so the change feed and the webhooks move on while nobody reads.
//!
//! Any number of instances run it; one seals at a time (a transaction-scoped advisory lock
//! in `audit_seal`), the others find the lock taken and try again at their next tick. An
//! instance that dies mid-batch rolls its transaction back: the events stay queued and the
//! next sealer, on any instance, seals them. Nothing is skipped and nothing is sealed twice
//! (`audit_seals.event_id` is unique).

use std::time::Duration;

use crate::db::{self, Pool};

/// Runs until the process ends.
pub async fn run(pool: Pool, interval: Duration) {
    loop {
        match seal_round(&pool).await {
            // A full batch: more is waiting, go on at once.
            Ok(sealed) if sealed == db::seals::BATCH => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "sealing failed; retrying"),
        }
        tokio::time::sleep(interval).await;
    }
}

async fn seal_round(pool: &Pool) -> anyhow::Result<i32> {
    let mut conn = pool.get().await?;
    Ok(db::seals::seal_batch(&mut conn, false).await?)
}
