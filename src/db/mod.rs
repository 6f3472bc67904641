//! The database: pool, creation, migrations, and one module of rows and queries per
//! resource.

pub mod audit_events;
pub mod budget_lines;
#[cfg(test)]
pub(crate) mod cacheable;
pub mod changes;
pub mod clients;
pub mod deviations;
pub mod enrollment;
pub mod expenses;
pub mod forecast;
pub mod idempotency;
pub mod keys;
pub mod locks;
pub mod metrics;
pub mod milestones;
pub mod operations;
pub mod rate_limits;
pub mod risks;
pub mod schema;
pub mod scope;
pub mod seals;
pub mod signals;
pub mod sites;
pub mod studies;
pub mod validators;
pub mod vendors;
pub mod webhooks;
pub mod write;

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// `$read` (an `async move |conn| ...` closure) in one REPEATABLE READ, read-only
/// transaction: every figure of an answer from the same snapshot (the dashboards, the
/// curve, the forecast, the signals). A macro, not a function: diesel-async bounds the
/// closure `run` takes by a trait it does not export, so no function can pass one on.
macro_rules! snapshot {
    ($conn:expr, $read:expr) => {
        $conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run($read)
            .await
    };
}
pub(crate) use snapshot;

/// Applies a list request's common parts to a boxed query of `$table`: hide soft-deleted
/// rows unless asked, `updated_since`, the keyset position, order by id, and fetch one row
/// more than the page so `Page::from_overfetch` knows whether another page exists.
macro_rules! keyset_page {
    ($query:expr, $table:ident, $deleted_at:ident, $page:expr) => {{
        let page: &$crate::domain::cursor::PageRequest = $page;
        let mut query = $query;
        if !page.include_deleted {
            query = query.filter($table::$deleted_at.is_null());
        }
        keyset_page!(query, $table, page)
    }};
    // Tables whose rows are never deleted (deviations, enrollment reports).
    ($query:expr, $table:ident, $page:expr) => {{
        let page: &$crate::domain::cursor::PageRequest = $page;
        let mut query = $query;
        if let Some(since) = page.updated_since {
            query = query.filter($table::updated_at.ge(since));
        }
        if let Some(after) = page.after {
            query = query.filter($table::id.gt(after));
        }
        query.order($table::id.asc()).limit(page.limit + 1)
    }};
}
pub(crate) use keyset_page;

/// Narrows a list query by the equality filters a caller set: for each field named, a
/// filter value of `Some(x)` keeps the rows whose column of the same name equals `x`, and
/// `None` keeps them all. `filter_eq!(query, filter, risks::{study_id, status})`.
macro_rules! filter_eq {
    ($query:expr, $filter:expr, $table:ident::{$($field:ident),+ $(,)?}) => {{
        let mut query = $query;
        $(
            if let Some(value) = &$filter.$field {
                query = query.filter($table::$field.eq(::std::borrow::ToOwned::to_owned(value)));
            }
        )+
        query
    }};
}
pub(crate) use filter_eq;

/// How many live rows of a table name a row in `$column` (`$table::$column = $id`): the
/// children that keep it from being deleted. `never_deleted` for tables without
/// `deleted_at`, where every row counts.
macro_rules! count_naming {
    ($conn:expr, $table:ident::$column:ident, $id:expr) => {
        $crate::db::count_naming!(@count $conn, $table, $table::$column.eq($id).and($table::deleted_at.is_null()))
    };
    (never_deleted $conn:expr, $table:ident::$column:ident, $id:expr) => {
        $crate::db::count_naming!(@count $conn, $table, $table::$column.eq($id))
    };
    (@count $conn:expr, $table:ident, $naming:expr) => {
        diesel_async::RunQueryDsl::get_result::<i64>($table::table.filter($naming).count(), $conn).await
    };
}
pub(crate) use count_naming;

/// A delete's 409 while live rows still name the row: `held` ("the study still has") and
/// each non-zero count with what it counts ("2 live site(s), 1 live risk(s)"), then `then`
/// ("; delete them first"). `Ok` when every count is zero.
pub fn refuse_while_named(
    held: &str,
    counts: &[(i64, &str)],
    then: &str,
) -> Result<(), crate::error::ApiError> {
    let named: Vec<String> = counts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    Err(crate::error::ApiError::Conflict(format!(
        "{held} {}{then}",
        named.join(", ")
    )))
}

/// 412 unless `If-Match` (if sent) names the current version. Called under the row lock,
/// so the version cannot change between this check and the write.
pub fn check_if_match(
    if_match: &crate::domain::versioning::IfMatch,
    current_version: i32,
) -> Result<(), crate::error::ApiError> {
    if if_match.matches(current_version) {
        Ok(())
    } else {
        Err(crate::error::ApiError::PreconditionFailed { current_version })
    }
}

pub type Pool = DeadPool<AsyncPgConnection>;
pub type PooledConn = Object<AsyncPgConnection>;
pub type Conn = AsyncPgConnection;

/// Advisory lock key under which migrations run, so two instances starting at once do not
/// both apply them.
const MIGRATION_LOCK: i64 = 0x7472_6961_6c6f_7073; // "trialops"

pub fn pool(database_url: &str, max_size: usize) -> anyhow::Result<Pool> {
    // `Fast` recycling: no `SELECT 1` before every checkout (a round trip per request). A
    // connection that broke is marked broken by diesel-async when a query fails on it, and
    // the pool drops it then; that one request gets a 503.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    // Bounded waits: when the database is down a request gets a 503 in seconds instead of
    // hanging, and the pool reconnects by itself once it is back.
    DeadPool::builder(manager)
        .max_size(max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .context("building the database pool")
}

/// Splits `postgres://.../name?opts` into the URL of the `postgres` maintenance database
/// and `name`.
fn maintenance_url(database_url: &str) -> anyhow::Result<(String, String)> {
    let mut url = url::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
    let name = url.path().trim_start_matches('/').to_string();
    anyhow::ensure!(!name.is_empty(), "DATABASE_URL names no database");
    url.set_path("/postgres");
    Ok((url.to_string(), name))
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Creates the database named by `database_url` if it does not exist yet.
pub async fn create_database_if_missing(database_url: &str) -> anyhow::Result<()> {
    let (admin_url, name) = maintenance_url(database_url)?;
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url} to create database {name}"))?;
    let found = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(&name)
        .get_result::<Exists>(&mut conn)
        .await?;
    if found.n == 0 {
        let quoted = name.replace('"', "\"\"");
        match diesel::sql_query(format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another instance created it between our check and our CREATE.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    Ok(())
}

/// Applies the embedded migrations that are not applied yet.
///
/// diesel's migration harness is synchronous, so it runs on a blocking thread through
/// diesel-async's connection wrapper.
pub async fn run_migrations(database_url: &str) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                .context("connecting to run migrations")?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        applied
    })
    .await
    .context("migration task panicked")?
}

/// The version of the newest embedded migration, which `/readyz` expects applied.
pub fn latest_migration_version() -> Option<String> {
    use diesel::migration::MigrationSource;
    let migrations: Vec<_> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).ok()?;
    migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    version: Option<String>,
}

/// The newest migration applied to the database.
pub async fn applied_migration_version(conn: &mut Conn) -> QueryResult<Option<String>> {
    diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
        .get_result::<AppliedVersion>(conn)
        .await
        .map(|row| row.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_url_swaps_the_database() {
        let (url, name) =
            maintenance_url("postgres://postgres@127.0.0.1:5432/trialops?sslmode=disable").unwrap();
        assert_eq!(
            url,
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
        );
        assert_eq!(name, "trialops");
        assert!(maintenance_url("postgres://postgres@127.0.0.1:5432").is_err());
    }

    #[test]
    fn migrations_are_embedded() {
        assert!(latest_migration_version().is_some());
    }
}
