//! Milestones: the row, and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Nullable};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::milestones;
use crate::db::write::{self, Record, Upsert};
use crate::db::{Conn, keyset_page, sites, studies, vendors};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, MilestoneKind, MilestoneStatus};
use crate::domain::milestones::{MilestoneFields, SETTLED, Schedule, schedule};
use crate::domain::policy::{RowKeys, RowScope};
use crate::error::ApiError;

/// A milestone as stored: the shape the audit trail and the change feed carry. Answers add
/// the values derived from its dates (`MilestoneView`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = milestones)]
#[schema(example = json!({
    "id": "0193f0e7-2b3c-7d4e-8f50-6a7b8c9d0e1f", "external_id": "CTMS-MS-0107",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "site_id": null,
    "vendor_id": "0193f0e6-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
    "name": "Central lab kits shipped to all activated sites", "kind": "vendor_deliverable",
    "baseline_date": "2026-04-01", "forecast_date": "2026-04-10", "actual_date": null,
    "status": "in_progress", "owner": "Clinical supplies lead", "notes": null,
    "created_at": "2026-02-01T10:00:00Z", "updated_at": "2026-03-20T09:15:00Z",
    "deleted_at": null, "version": 3
}))]
pub struct Milestone {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub study_id: Uuid,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
    pub name: String,
    pub kind: MilestoneKind,
    pub baseline_date: Option<NaiveDate>,
    pub forecast_date: Option<NaiveDate>,
    pub actual_date: Option<NaiveDate>,
    pub status: MilestoneStatus,
    pub owner: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the milestone was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change; the `ETag` of the milestone.
    pub version: i32,
}

impl Milestone {
    pub fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: self.site_id,
            vendor_id: self.vendor_id,
        }
    }

    /// The writable part, as a PATCH is merged into it.
    pub fn fields(&self) -> MilestoneFields {
        MilestoneFields {
            external_id: self.external_id.clone(),
            study_id: self.study_id,
            site_id: self.site_id,
            vendor_id: self.vendor_id,
            name: self.name.clone(),
            kind: self.kind,
            baseline_date: self.baseline_date,
            forecast_date: self.forecast_date,
            actual_date: self.actual_date,
            status: self.status,
            owner: self.owner.clone(),
            notes: self.notes.clone(),
        }
    }

    /// Slippage and overdue as of `today`.
    pub fn schedule(&self, today: NaiveDate) -> Schedule {
        schedule(
            self.baseline_date,
            self.forecast_date,
            self.actual_date,
            self.status,
            today,
        )
    }
}

/// Filters of `GET /milestones` beyond the common list parameters.
#[derive(Debug, Default, Clone)]
pub struct MilestoneFilter {
    pub study_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
    pub kind: Option<MilestoneKind>,
    pub status: Option<MilestoneStatus>,
    /// Overdue (or not) as of `today`.
    pub overdue: Option<bool>,
    pub external_id: Option<String>,
}

diesel::define_sql_function! {
    fn coalesce(x: Nullable<Date>, y: Nullable<Date>) -> Nullable<Date>;
}

fn visible(scope: &RowScope) -> milestones::BoxedQuery<'static, diesel::pg::Pg> {
    let query = milestones::table.into_boxed();
    match scope {
        RowScope::All => query,
        RowScope::Studies(ids) => query.filter(milestones::study_id.eq_any(ids.clone())),
        RowScope::Sites(ids) => query.filter(milestones::site_id.eq_any(ids.clone())),
        RowScope::Vendor(id) => query.filter(milestones::vendor_id.eq(*id)),
        RowScope::Nothing => query.filter(milestones::id.eq_any(Vec::<Uuid>::new())),
    }
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &MilestoneFilter,
    today: NaiveDate,
    page: &PageRequest,
) -> QueryResult<Page<Milestone>> {
    let mut query = visible(scope);
    if let Some(study_id) = filter.study_id {
        query = query.filter(milestones::study_id.eq(study_id));
    }
    if let Some(site_id) = filter.site_id {
        query = query.filter(milestones::site_id.eq(site_id));
    }
    if let Some(vendor_id) = filter.vendor_id {
        query = query.filter(milestones::vendor_id.eq(vendor_id));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(milestones::kind.eq(kind));
    }
    if let Some(status) = filter.status {
        query = query.filter(milestones::status.eq(status));
    }
    if let Some(overdue) = filter.overdue {
        // `domain::milestones::schedule` in SQL, so that the filter pages with the keyset;
        // the milestone tests check that both agree row by row. The `IS NOT NULL` keeps
        // the expression two-valued, so that its negation is exactly "not overdue".
        let due = coalesce(milestones::forecast_date, milestones::baseline_date);
        let is_overdue = milestones::actual_date
            .is_null()
            .and(milestones::status.ne_all(SETTLED))
            .and(due.is_not_null())
            .and(due.lt(today));
        query = if overdue {
            query.filter(is_overdue)
        } else {
            query.filter(diesel::dsl::not(is_overdue))
        };
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(milestones::external_id.eq(external_id.clone()));
    }
    let rows: Vec<Milestone> = keyset_page!(query, milestones, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |milestone| {
        milestone.id
    }))
}

/// A live milestone within `scope`, or 404.
pub async fn find(conn: &mut Conn, id: Uuid, scope: &RowScope) -> Result<Milestone, ApiError> {
    visible(scope)
        .filter(milestones::id.eq(id))
        .filter(milestones::deleted_at.is_null())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

impl Upsert for Milestone {
    fn row_keys(&self) -> RowKeys {
        self.keys()
    }
    fn keys_of(fields: &MilestoneFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: fields.site_id,
            vendor_id: fields.vendor_id,
        }
    }
    write::external_id_lock!(soft_delete milestones);
}

impl Record for Milestone {
    type Fields = MilestoneFields;
    const ENTITY: EntityType = EntityType::Milestone;

    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn study_id(&self) -> Option<Uuid> {
        Some(self.study_id)
    }
    fn fields(&self) -> MilestoneFields {
        Milestone::fields(self)
    }

    write::table_steps!(soft_delete milestones);

    fn external_id(fields: &MilestoneFields) -> Option<&str> {
        fields.external_id.as_deref()
    }

    /// A new milestone needs a live study (locked against deletion until the insert
    /// commits); a milestone stays in its study; a site it starts naming must be a live
    /// site of that study, and a vendor a live vendor, both locked the same way.
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &MilestoneFields,
    ) -> Result<write::Checked, ApiError> {
        let mut checked = write::Checked::default();
        match before {
            None => {
                checked.study = Some(studies::lock_for_child(conn, fields.study_id).await?);
            }
            Some(before) if before.study_id != fields.study_id => {
                return Err(ApiError::invalid(
                    "study_id",
                    "immutable",
                    "a milestone cannot move to another study",
                ));
            }
            Some(_) => {}
        }
        if let Some(site) = fields.site_id
            && before.is_none_or(|b| b.site_id != fields.site_id)
        {
            sites::lock_for_reference(conn, site, fields.study_id).await?;
        }
        if let Some(vendor) = fields.vendor_id
            && before.is_none_or(|b| b.vendor_id != fields.vendor_id)
        {
            vendors::lock_for_reference(conn, vendor, "vendor_id").await?;
        }
        Ok(checked)
    }
}
