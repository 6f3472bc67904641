//! Which API clients are live (exist and are not revoked), as every authenticated request
//! must know, without a database round trip per request.
//!
//! Each instance remembers the answer per client and forgets it the moment PostgreSQL says
//! the client changed: a trigger announces every update or delete of an API client on the
//! `trialops_clients` channel (`migrations/20261201000001_request_path`), and a task here
//! listens on a connection of its own. A revocation made on any instance (or by hand in
//! SQL) is therefore honoured by every instance within the notification's delivery time.
//!
//! While that connection is down the promise cannot be kept from memory, so the instance
//! asks the database on every request until it listens again (and then forgets
//! everything it remembered, since notifications may have been missed meanwhile).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use moka::sync::Cache;

use crate::db::{self, Pool};
use crate::domain::ids::ClientId;
use crate::error::ApiError;

/// The notification channel the trigger speaks on.
pub const CHANNEL: &str = "trialops_clients";
/// Clients remembered at most; the least recently used are forgotten first.
const CAPACITY: u64 = 10_000;
/// Even while listening, nothing is remembered longer than this: a safety net, not the
/// mechanism.
const REMEMBER_AT_MOST: Duration = Duration::from_secs(60);
/// How often the listening connection is checked when nothing arrives: a connection that
/// died silently is noticed within this (plus the check's own time limit).
const HEARTBEAT: Duration = Duration::from_secs(1);

pub struct LiveClients {
    /// Client id -> its name if live, `None` if revoked or unknown.
    names: Cache<ClientId, Option<Arc<str>>>,
    /// True while the notification connection is up and listening.
    listening: AtomicBool,
    /// Bumped by every invalidation: a lookup that started before one does not store its
    /// (possibly stale) answer.
    generation: AtomicU64,
}

impl Default for LiveClients {
    fn default() -> Self {
        Self {
            names: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(REMEMBER_AT_MOST)
                .build(),
            listening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }
}

impl LiveClients {
    /// Whether revocations reach this instance by notification right now (`/readyz`
    /// reports it).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The client's name if it exists and is not revoked: from memory while listening,
    /// from the database otherwise (or when not remembered).
    pub async fn name(&self, pool: &Pool, id: ClientId) -> Result<Option<Arc<str>>, ApiError> {
        if self.listening()
            && let Some(known) = self.names.get(&id)
        {
            return Ok(known);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let mut conn = pool.get().await?;
        let name: Option<Arc<str>> = db::clients::live_name(&mut conn, id).await?.map(Into::into);
        // Remember only if no change was announced while we asked, and only while
        // listening (otherwise a later change would go unnoticed).
        if self.listening() && self.generation.load(Ordering::Acquire) == generation {
            self.names.insert(id, name.clone());
        }
        Ok(name)
    }

    fn forget(&self, id: Option<ClientId>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match id {
            Some(id) => self.names.invalidate(&id),
            None => self.names.invalidate_all(),
        }
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        self.forget(None);
    }

    /// Listens for client changes until the process ends, reconnecting after `retry`
    /// whenever the connection is lost.
    pub async fn listen(self: Arc<Self>, database_url: String, retry: Duration) {
        loop {
            match self.listen_once(&database_url).await {
                Ok(()) => tracing::warn!(
                    "client-change notifications stopped; checking the database on every request"
                ),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot listen for client changes; checking the database on every request"
                ),
            }
            self.set_listening(false);
            tokio::time::sleep(retry).await;
        }
    }

    /// One connection's life: LISTEN, then forget each client announced, checking the
    /// connection whenever it has been quiet for a heartbeat. Returns when it is lost.
    async fn listen_once(&self, database_url: &str) -> anyhow::Result<()> {
        // Scoped here: its `load` would shadow the atomics' `load` elsewhere in this file.
        use diesel_async::RunQueryDsl;
        let url = with_application_name(database_url);
        let mut conn = AsyncPgConnection::establish(&url).await?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await?;
        // Anything remembered before now may have changed unannounced.
        self.set_listening(true);
        tracing::info!("listening for client changes");
        loop {
            let next = {
                let mut notifications = std::pin::pin!(conn.notifications_stream());
                tokio::time::timeout(HEARTBEAT, notifications.next()).await
            };
            match next {
                Ok(Some(Ok(notification))) => self.forget(notification.payload.parse().ok()),
                Ok(Some(Err(error))) => return Err(error.into()),
                Ok(None) => return Ok(()),
                Err(_quiet) => {
                    tokio::time::timeout(
                        HEARTBEAT,
                        diesel::sql_query("SELECT 1").execute(&mut conn),
                    )
                    .await??;
                }
            }
        }
    }
}

/// The listener's connection is named so operators (and tests) can tell it apart.
fn with_application_name(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .append_pair("application_name", "trialops-listener");
            url.into()
        }
        Err(_) => database_url.to_string(),
    }
}
