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
use crate::db::locks::{self, LockedStudy};
use crate::db::{Conn, check_if_match};
use crate::domain::enums::{AuditAction, EntityType};
use crate::domain::ids::{EntityId, StudyId};
use crate::domain::policy::{CreateScope, Operation, RowKeys, RowScope};
use crate::domain::versioning::IfMatch;
use crate::error::ApiError;

/// A row of a resource table, as answered to clients.
pub trait Record: Serialize + Send + Sync + Sized {
    /// The writable fields: what a POST takes and a PATCH is merged into.
    type Fields: PartialEq + Send + Sync;
    /// The id type of its rows (`SiteId` for sites): a function written once for every
    /// resource takes `R::Id`, so it cannot be handed another kind's id.
    type Id: EntityId;

    const ENTITY: EntityType;

    fn id(&self) -> Self::Id;
    fn version(&self) -> i32;
    /// The ids scope rules look at (`RowScope::allows`): the one way a row is matched
    /// against what a caller reaches, for reads, updates, deletes and batches alike.
    fn keys(&self) -> RowKeys;
    /// The study the row belongs to, for the audit trail (the study itself for a study):
    /// the study its scope keys name.
    fn study_id(&self) -> Option<StudyId> {
        self.keys().study_id
    }
    fn fields(&self) -> Self::Fields;

    /// Inserts a row with this id.
    fn insert(
        conn: &mut Conn,
        id: Self::Id,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;

    /// The live row with this id, locked `FOR UPDATE` until the transaction ends.
    fn lock(
        conn: &mut Conn,
        id: Self::Id,
    ) -> impl Future<Output = Result<Option<Self>, ApiError>> + Send;

    /// Writes `fields` over the row, with `version + 1` and a new `updated_at`.
    fn write(
        conn: &mut Conn,
        id: Self::Id,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;

    /// Sets `deleted_at`, with `version + 1`. Resources whose rows are never deleted keep
    /// this refusal (their routes offer no DELETE in the first place).
    fn mark_deleted(
        conn: &mut Conn,
        id: Self::Id,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send {
        let _ = (conn, id);
        async {
            Err(ApiError::Conflict(
                "records of this kind are never deleted".into(),
            ))
        }
    }

    /// Rules that need the database (references to other rows, rows that may not change),
    /// checked inside the write's transaction. `before` is `None` on create. Answers what
    /// it read on the way, for `after_write`.
    fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &Self::Fields,
    ) -> impl Future<Output = Result<Checked, ApiError>> + Send {
        let _ = (conn, before, fields);
        async { Ok(Checked::default()) }
    }

    /// What follows a create or an update that changed the row, in the same transaction
    /// (a risk's escalation). `before` is `None` on create; `checked` is what `check` read.
    fn after_write(
        conn: &mut Conn,
        ctx: &WriteContext,
        before: Option<&Self>,
        row: Self,
        checked: Checked,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send {
        let _ = (conn, ctx, before, checked);
        async { Ok(row) }
    }

    /// The partner system's id in the writable fields, for resources that have one: writes
    /// naming it take `lock_external_ids` first, so a batch and a single create of the same
    /// id wait for each other instead of deadlocking.
    fn external_id(fields: &Self::Fields) -> Option<&str> {
        let _ = fields;
        None
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
            entity_id: self.id().into(),
            study_id: self.study_id(),
            version: Some(self.version()),
        }
    }
}

/// A resource read by id: what a read (and an update) answers, and how a read finds it.
pub trait Readable: Record {
    /// The row as answered: the row itself, or the row with what is derived from it on the
    /// day of the answer (a milestone's slippage, a deviation's `reporting_overdue`).
    type Answer: Serialize + Send;

    /// The live row with this id within `scope`, as answered, in one statement outside any
    /// transaction; 404 when there is none or the caller does not reach it.
    fn find(
        conn: &mut Conn,
        id: Self::Id,
        scope: &RowScope,
    ) -> impl Future<Output = Result<Self::Answer, ApiError>> + Send;

    /// A row just written, as answered.
    fn answer(
        conn: &mut Conn,
        row: Self,
    ) -> impl Future<Output = Result<Self::Answer, ApiError>> + Send;
}

/// What a write's `check` read on the way (rows it locked), so that a later step of the
/// same transaction does not ask the database again: one round trip fewer per write.
#[derive(Debug, Default)]
pub struct Checked {
    /// The live study the row belongs to, when `check` locked it (`locks::study_for_child`).
    pub study: Option<LockedStudy>,
}

pub async fn create<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: R::Fields,
) -> Result<R, ApiError> {
    conn.transaction::<_, ApiError, _>(async |conn| {
        if let Some(external_id) = R::external_id(&fields) {
            lock_external_ids(conn, R::ENTITY, &[external_id]).await?;
        }
        insert_steps(conn, ctx, fields).await
    })
    .await
}

/// The steps of a create, inside the caller's transaction.
async fn insert_steps<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: R::Fields,
) -> Result<R, ApiError> {
    let checked = R::check(conn, None, &fields).await?;
    let row = R::insert(conn, R::Id::new_v7(), &fields).await?;
    audit::record(
        conn,
        ctx,
        AuditAction::Create,
        row.subject(),
        None,
        Some(&row),
    )
    .await?;
    R::after_write(conn, ctx, None, row, checked).await
}

/// Locks the row, lets `guard` admit it (404 outside the caller's reach, then the role's
/// 403 and the handler's own refusal), checks `If-Match` (412), asks `change` for the new
/// fields, and writes them with an audit event. A change that alters nothing answers the
/// row as it is: no new version, no audit event. The row is read once, locked, inside the
/// transaction.
pub async fn guarded_update<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: R::Id,
    guard: Guard<'_>,
    if_match: &IfMatch,
    change: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> Result<R, ApiError> {
    locked_update(conn, ctx, id, |row| guard.admit(row), if_match, change).await
}

/// `guarded_update` for a write the service makes on its own account (an import, an
/// enrollment week), whose caller was checked before: `in_scope` only says which rows it
/// may touch (`|_| true`: any).
pub async fn update<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: R::Id,
    in_scope: impl FnOnce(&R) -> bool + Send,
    if_match: &IfMatch,
    change: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> Result<R, ApiError> {
    let admit = |row: Option<R>| row.filter(in_scope).ok_or(ApiError::NotFound);
    locked_update(conn, ctx, id, admit, if_match, change).await
}

async fn locked_update<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: R::Id,
    admit: impl FnOnce(Option<R>) -> Result<R, ApiError> + Send,
    if_match: &IfMatch,
    change: impl FnOnce(&R) -> Result<R::Fields, ApiError> + Send,
) -> Result<R, ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let before = admit(R::lock(conn, id).await?)?;
        check_if_match(if_match, before.version())?;
        let fields = change(&before)?;
        Ok(update_steps(conn, ctx, before, fields).await?.0)
    })
    .await
}

/// The one check a caller's update or delete takes, on the row locked inside the write's
/// transaction: outside `scope` the row does not exist (404, so existence does not leak);
/// inside it, `permitted` answers: the role's check (403) and any refusal of the handler's
/// own (a risk's missing reason, a vendor client's fields), in that order.
pub struct Guard<'a> {
    pub scope: &'a RowScope,
    pub permitted: Result<(), ApiError>,
}

impl Guard<'_> {
    fn admit<R: Record>(self, row: Option<R>) -> Result<R, ApiError> {
        let row = row
            .filter(|row| self.scope.allows(row.keys()))
            .ok_or(ApiError::NotFound)?;
        self.permitted?;
        Ok(row)
    }
}

/// The steps of an update of a locked row, inside the caller's transaction. Answers the row
/// and whether it changed: fields equal to the row's write nothing (no new version, no
/// audit event).
async fn update_steps<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    before: R,
    fields: R::Fields,
) -> Result<(R, bool), ApiError> {
    if fields == before.fields() {
        return Ok((before, false));
    }
    let checked = R::check(conn, Some(&before), &fields).await?;
    let after = R::write(conn, before.id(), &fields).await?;
    audit::record(
        conn,
        ctx,
        AuditAction::Update,
        after.subject(),
        Some(&before),
        Some(&after),
    )
    .await?;
    let after = R::after_write(conn, ctx, Some(&before), after, checked).await?;
    Ok((after, true))
}

/// Soft-deletes a row `guard` admits (as for `update`), unless `If-Match` or a live child
/// says no.
pub async fn soft_delete<R: Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: R::Id,
    guard: Guard<'_>,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let before = guard.admit(R::lock(conn, id).await?)?;
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

/// Takes, in one statement and in a fixed order, the transaction-scoped advisory locks of
/// these external ids of `entity`. Every create naming an external id of a batch-writable
/// resource takes its lock first, so two batches (or a batch and a single create) with the
/// same ids run one after the other: the second then finds the first one's rows and updates
/// them, instead of both inserting (a unique violation) or deadlocking on each other's
/// uncommitted rows and the audit chain. Ids are hashed into 1,024 buckets per resource, so a
/// batch holds at most that many locks however large it is; two ids in one bucket only wait.
pub async fn lock_external_ids(
    conn: &mut Conn,
    entity: EntityType,
    external_ids: &[&str],
) -> Result<(), ApiError> {
    use diesel::sql_types::{Array, Text};
    use diesel_async::RunQueryDsl;
    let ids: Vec<&str> = external_ids.to_vec();
    // Sorted keys in a subquery: every locker takes them in the same order.
    diesel::sql_query(
        "SELECT count(pg_advisory_xact_lock(hashtext($1), bucket)) FROM \
         (SELECT DISTINCT hashtext(id) & 1023 AS bucket FROM unnest($2::text[]) AS id \
          ORDER BY bucket) AS buckets",
    )
    .bind::<Text, _>(format!("trialops external_id {entity}"))
    .bind::<Array<Text>, _>(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// A resource partner systems write in batches, keyed by `external_id`.
pub trait Upsert: Record {
    /// The ids scope rules look at (`Record::keys`) of a row about to be created from these fields.
    fn keys_of(fields: &Self::Fields) -> RowKeys;
    /// The live row with this external id, locked `FOR UPDATE` until the transaction ends.
    fn lock_by_external_id(
        conn: &mut Conn,
        external_id: &str,
    ) -> impl Future<Output = Result<Option<Self>, ApiError>> + Send;
}

/// What one batch item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    /// No live record had the item's `external_id`: one was created.
    Created,
    /// The live record with the item's `external_id` was replaced by the item.
    Updated,
    /// The live record already held exactly the item: nothing written, no new version, no
    /// audit event.
    Unchanged,
}

/// A check of an update's fields against the row it replaces (field limits beyond the role).
pub type FieldLimits<'a, R> =
    dyn Fn(&R, &<R as Record>::Fields) -> Result<(), ApiError> + Sync + 'a;

/// The caller's rules for a batch, item by item the same as for its single writes.
pub struct Access<'a, R: Upsert> {
    /// The role check of a `POST` (`Operation::Create`) or `PATCH` (`Operation::Update`):
    /// `Caller::require`, a 403.
    pub permitted: &'a (dyn Fn(Operation) -> Result<(), ApiError> + Sync),
    /// Where a `POST` may create.
    pub create_scope: &'a CreateScope,
    /// The rows a `PATCH` may touch.
    pub row_scope: &'a RowScope,
    /// Limits beyond the role on what an update may change (a `vendor` client's four
    /// milestone fields): a 403.
    pub may_change: &'a FieldLimits<'a, R>,
}

/// Creates or updates every item, in request order, in one transaction: all or nothing.
/// Each item is written by the same steps as a single `POST` (no live row has its
/// `external_id`) or `PATCH` (one does; the item replaces its writable fields), after the
/// same role and scope checks. Items must carry distinct external ids (the handler checks).
/// An error names the item it came from (`items[3].likelihood`, or `items[3]: ...`).
/// Answers each item's id as a bare UUID: a batch answer is the same for every kind.
pub async fn upsert_batch<R: Upsert>(
    conn: &mut Conn,
    ctx: &WriteContext,
    items: Vec<R::Fields>,
    access: &Access<'_, R>,
) -> Result<Vec<(Uuid, Upserted)>, ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let external_ids: Vec<&str> = items.iter().filter_map(R::external_id).collect();
        lock_external_ids(conn, R::ENTITY, &external_ids).await?;
        // The studies named, share-locked up front and in order (as each create would one
        // by one): a concurrent study change then waits for the whole batch, rather than
        // holding the study while the batch holds the audit chain (a deadlock).
        let mut studies: Vec<StudyId> = items
            .iter()
            .filter_map(|fields| R::keys_of(fields).study_id)
            .collect();
        studies.sort_unstable();
        studies.dedup();
        locks::studies_for_batch(conn, &studies).await?;
        let mut answers = Vec::with_capacity(items.len());
        for (index, fields) in items.into_iter().enumerate() {
            let answer = upsert_item(conn, ctx, fields, access)
                .await
                .map_err(|error| at_item(index, error))?;
            answers.push(answer);
        }
        Ok(answers)
    })
    .await
}

async fn upsert_item<R: Upsert>(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: R::Fields,
    access: &Access<'_, R>,
) -> Result<(Uuid, Upserted), ApiError> {
    let external_id = R::external_id(&fields).ok_or_else(|| {
        ApiError::invalid("external_id", "required", "is required in a batch item")
    })?;
    match R::lock_by_external_id(conn, external_id).await? {
        None => {
            (access.permitted)(Operation::Create)?;
            if let Some(field) = access.create_scope.refused_reference(R::keys_of(&fields)) {
                return Err(out_of_scope(field));
            }
            let row: R = insert_steps(conn, ctx, fields).await?;
            Ok((row.id().into(), Upserted::Created))
        }
        Some(before) => {
            // A single POST with this external id would meet the unique key: the same 409,
            // whether or not the caller can see the record that holds it.
            if !access.row_scope.allows(before.keys()) {
                return Err(ApiError::Conflict(
                    "a record of this type with this external_id already exists".into(),
                ));
            }
            (access.permitted)(Operation::Update)?;
            if fields != before.fields() {
                (access.may_change)(&before, &fields)?;
            }
            let (row, changed) = update_steps(conn, ctx, before, fields).await?;
            let outcome = if changed {
                Upserted::Updated
            } else {
                Upserted::Unchanged
            };
            Ok((row.id().into(), outcome))
        }
    }
}

fn out_of_scope(field: &str) -> ApiError {
    ApiError::invalid(
        field,
        "reference",
        "names nothing you may write to (no such record, or outside your scope)",
    )
}

/// An item's error, naming the item: field errors get the item's path (`items[3].title`),
/// other refusals say which item in `detail`.
fn at_item(index: usize, error: ApiError) -> ApiError {
    let item = format!("items[{index}]");
    match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = if e.field == "body" {
                        item.clone()
                    } else {
                        format!("{item}.{}", e.field)
                    };
                    e
                })
                .collect(),
        ),
        // The one record an item's writes look up by id and can miss is its study (a
        // create's `locks::study_for_child`; sites and vendors already answer 422): in a
        // batch that is the item's bad reference, the same answer as a study out of scope.
        ApiError::NotFound => at_item(index, out_of_scope("study_id")),
        ApiError::Conflict(detail) => ApiError::Conflict(format!("{item}: {detail}")),
        ApiError::Forbidden(detail) => ApiError::Forbidden(format!("{item}: {detail}")),
        ApiError::BadRequest(detail) => ApiError::BadRequest(format!("{item}: {detail}")),
        other => other,
    }
}

/// The `lock_by_external_id` of an `Upsert` whose table has `external_id` and
/// `deleted_at`, or (`never_deleted`) only `external_id`.
macro_rules! external_id_lock {
    (soft_delete $table:ident) => {
        $crate::db::write::external_id_lock!(@lock $table, $table::deleted_at.is_null());
    };
    (never_deleted $table:ident) => {
        $crate::db::write::external_id_lock!(@lock $table, diesel::dsl::sql::<diesel::sql_types::Bool>("TRUE"));
    };
    (@lock $table:ident, $live:expr) => {
        async fn lock_by_external_id(
            conn: &mut $crate::db::Conn,
            external_id: &str,
        ) -> Result<Option<Self>, $crate::error::ApiError> {
            Ok($table::table
                .filter($table::external_id.eq(external_id))
                .filter($live)
                .for_update()
                .first(conn)
                .await
                .optional()?)
        }
    };
}
pub(crate) use external_id_lock;

/// The table-shaped steps of a `Record` (`id`, `version`, `insert`, `lock`, `write` and, for
/// tables with soft delete, `mark_deleted`), the same for every resource whose stored fields
/// are exactly its `Fields`. Used inside `impl Record for X { ... }`:
/// `table_steps!(soft_delete studies);` or `table_steps!(never_deleted deviations);`. A
/// resource that stores more than its `Fields` (an expense: its line's study and currency)
/// writes its own `insert` and `write` and takes the rest: `table_steps!(soft_delete_own_writes
/// expenses);`.
macro_rules! table_steps {
    (soft_delete $table:ident) => {
        $crate::db::write::table_steps!(soft_delete_own_writes $table);
        $crate::db::write::table_steps!(@writes $table);
    };
    (never_deleted $table:ident) => {
        $crate::db::write::table_steps!(@read $table, diesel::dsl::sql::<diesel::sql_types::Bool>("TRUE"));
        $crate::db::write::table_steps!(@writes $table);
    };
    (soft_delete_own_writes $table:ident) => {
        $crate::db::write::table_steps!(@read $table, $table::deleted_at.is_null());

        async fn mark_deleted(conn: &mut $crate::db::Conn, id: <Self as $crate::db::write::Record>::Id) -> Result<Self, $crate::error::ApiError> {
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
    (@read $table:ident, $live:expr) => {
        fn id(&self) -> <Self as $crate::db::write::Record>::Id {
            self.id
        }

        fn version(&self) -> i32 {
            self.version
        }

        async fn lock(conn: &mut $crate::db::Conn, id: <Self as $crate::db::write::Record>::Id) -> Result<Option<Self>, $crate::error::ApiError> {
            Ok($table::table.find(id).filter($live).for_update().first(conn).await.optional()?)
        }
    };
    (@writes $table:ident) => {
        async fn insert(
            conn: &mut $crate::db::Conn,
            id: <Self as $crate::db::write::Record>::Id,
            fields: &<Self as $crate::db::write::Record>::Fields,
        ) -> Result<Self, $crate::error::ApiError> {
            Ok(diesel::insert_into($table::table).values(($table::id.eq(id), fields)).get_result(conn).await?)
        }

        async fn write(
            conn: &mut $crate::db::Conn,
            id: <Self as $crate::db::write::Record>::Id,
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

/// The live row of `$table` with id `$id` within `$scope`, or 404: a static query (diesel
/// keeps it as a prepared statement per connection, so PostgreSQL plans it once, not on
/// every read), with the scope checked on the row (`Record::keys`).
macro_rules! find_live {
    ($table:ident, $conn:expr, $id:expr, $scope:expr) => {{
        let row: Option<Self> = $table::table
            .find($id)
            .filter($table::deleted_at.is_null())
            .first($conn)
            .await
            .optional()?;
        row.filter(|row| $scope.allows($crate::db::write::Record::keys(row)))
            .ok_or($crate::error::ApiError::NotFound)
    }};
}
pub(crate) use find_live;

/// The `Readable` of a resource answered as stored, whose table has `deleted_at`. Used
/// inside `impl Readable for X { ... }`: `read_as_stored!(sites);`.
macro_rules! read_as_stored {
    ($table:ident) => {
        type Answer = Self;

        async fn find(
            conn: &mut $crate::db::Conn,
            id: <Self as $crate::db::write::Record>::Id,
            scope: &$crate::domain::policy::RowScope,
        ) -> Result<Self, $crate::error::ApiError> {
            $crate::db::write::find_live!($table, conn, id, scope)
        }

        async fn answer(
            _: &mut $crate::db::Conn,
            row: Self,
        ) -> Result<Self, $crate::error::ApiError> {
            Ok(row)
        }
    };
}
pub(crate) use read_as_stored;
