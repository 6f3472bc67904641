//! The one write path every resource takes: create, update and soft delete, each in one
//! transaction with its audit event, with `If-Match` checked under the row lock.
//!
//! A resource says how its rows are read, locked, inserted and updated (`Record`); the
//! order of the steps, the version check, "nothing changed, nothing written" and the audit
//! trail are written here once.

use std::future::Future;

use diesel_async::AsyncConnection;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{self, Subject, WriteContext};
use crate::db::{Conn, check_if_match};
use crate::domain::enums::{AuditAction, EntityType};
use crate::domain::versioning::IfMatch;
use crate::error::ApiError;

/// A row of a resource table, as answered to clients.
pub trait Record: Serialize + Send + Sync + Sized {
    /// The writable fields: what a POST takes and a PATCH is merged into.
    type Fields: PartialEq + Send + Sync;

    const ENTITY: EntityType;

    fn id(&self) -> Uuid;
    fn version(&self) -> i32;
    /// The study the row belongs to, for the audit trail (the study itself for a study).
    fn study_id(&self) -> Option<Uuid>;
    fn fields(&self) -> Self::Fields;

    /// Inserts a row with this id.
    fn insert(
        conn: &mut Conn,
        id: Uuid,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;

    /// The live row with this id, locked `FOR UPDATE` until the transaction ends.
    fn lock(
        conn: &mut Conn,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Self>, ApiError>> + Send;

    /// Writes `fields` over the row, with `version + 1` and a new `updated_at`.
    fn write(
        conn: &mut Conn,
        id: Uuid,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;

    /// Sets `deleted_at`, with `version + 1`. Resources whose rows are never deleted keep
    /// this refusal (their routes offer no DELETE in the first place).
    fn mark_deleted(
        conn: &mut Conn,
        id: Uuid,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send {
        let _ = (conn, id);
        async {
            Err(ApiError::Conflict(
                "records of this kind are never deleted".into(),
            ))
        }
    }

    /// Rules that need the database (references to other rows, rows that may not change),
    /// checked inside the write's transaction. `before` is `None` on create.
    fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let _ = (conn, before, fields);
        async { Ok(()) }
    }

    /// What keeps the row from being deleted (live children): a 409 naming it.
    fn check_deletable(
        &self,
        conn: &mut Conn,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    fn subject(&self) -> Subject {
        Subject {
            entity_type: Self::ENTITY,
            entity_id: self.id(),
            study_id: self.study_id(),
            version: Some(self.version()),
        }
    }
}

pub async fn create<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: R::Fields,
) -> Result<R, ApiError> {
    conn.transaction::<_, ApiError, _>(async |conn| {
        R::check(conn, None, &fields).await?;
        let row = R::insert(conn, Uuid::now_v7(), &fields).await?;
        audit::record(
            conn,
            ctx,
            AuditAction::Create,
            row.subject(),
            None,
            Some(&row),
        )
        .await?;
        Ok(row)
    })
    .await
}

/// Locks the row, refuses it if `in_scope` says the caller cannot see it (404), checks
/// `If-Match` (412), asks `change` for the new fields, and writes them with an audit event.
/// A change that alters nothing answers the row as it is: no new version, no audit event.
pub async fn update<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: Uuid,
    in_scope: impl Fn(&R) -> bool + Send,
    if_match: &IfMatch,
    change: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> Result<R, ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let before = R::lock(conn, id)
            .await?
            .filter(|row| in_scope(row))
            .ok_or(ApiError::NotFound)?;
        check_if_match(if_match, before.version())?;
        let fields = change(&before)?;
        if fields == before.fields() {
            return Ok(before);
        }
        R::check(conn, Some(&before), &fields).await?;
        let after = R::write(conn, id, &fields).await?;
        audit::record(
            conn,
            ctx,
            AuditAction::Update,
            after.subject(),
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Soft-deletes a row the caller can see (404 otherwise) and may delete (`permitted`, the
/// role check, answered only once the row is known to be visible: 403 never leaks
/// existence), unless `If-Match` or a live child says no.
pub async fn soft_delete<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: Uuid,
    in_scope: impl Fn(&R) -> bool + Send,
    permitted: Result<(), ApiError>,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let before = R::lock(conn, id)
            .await?
            .filter(|row| in_scope(row))
            .ok_or(ApiError::NotFound)?;
        permitted?;
        check_if_match(if_match, before.version())?;
        before.check_deletable(conn).await?;
        let after = R::mark_deleted(conn, id).await?;
        audit::record(
            conn,
            ctx,
            AuditAction::Delete,
            after.subject(),
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(())
    })
    .await
}

/// The table-shaped steps of a `Record` (`insert`, `lock`, `write` and, for tables with soft
/// delete, `mark_deleted`), the same for every resource whose stored fields are exactly its
/// `Fields`. Used inside `impl Record for X { ... }`:
/// `table_steps!(soft_delete studies);` or `table_steps!(never_deleted deviations);`.
macro_rules! table_steps {
    (soft_delete $table:ident) => {
        $crate::db::write::table_steps!(@common $table, $table::deleted_at.is_null());

        async fn mark_deleted(conn: &mut $crate::db::Conn, id: uuid::Uuid) -> Result<Self, $crate::error::ApiError> {
            Ok(diesel::update($table::table.find(id))
                .set((
                    $table::deleted_at.eq(diesel::dsl::now),
                    $table::version.eq($table::version + 1),
                    $table::updated_at.eq(diesel::dsl::now),
                ))
                .get_result(conn)
                .await?)
        }
    };
    (never_deleted $table:ident) => {
        $crate::db::write::table_steps!(@common $table, diesel::dsl::sql::<diesel::sql_types::Bool>("TRUE"));
    };
    (@common $table:ident, $live:expr) => {
        async fn insert(
            conn: &mut $crate::db::Conn,
            id: uuid::Uuid,
            fields: &<Self as $crate::db::write::Record>::Fields,
        ) -> Result<Self, $crate::error::ApiError> {
            Ok(diesel::insert_into($table::table).values(($table::id.eq(id), fields)).get_result(conn).await?)
        }

        async fn lock(conn: &mut $crate::db::Conn, id: uuid::Uuid) -> Result<Option<Self>, $crate::error::ApiError> {
            Ok($table::table.find(id).filter($live).for_update().first(conn).await.optional()?)
        }

        async fn write(
            conn: &mut $crate::db::Conn,
            id: uuid::Uuid,
            fields: &<Self as $crate::db::write::Record>::Fields,
        ) -> Result<Self, $crate::error::ApiError> {
            Ok(diesel::update($table::table.find(id))
                .set((fields, $table::version.eq($table::version + 1), $table::updated_at.eq(diesel::dsl::now)))
                .get_result(conn)
                .await?)
        }
    };
}
pub(crate) use table_steps;
