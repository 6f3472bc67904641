//! Milestones: the row, the writable fields (what a POST takes and a PATCH is merged into,
//! with their rules), and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Nullable};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::db::schema::milestones;
use crate::db::scope::Keys;
use crate::db::write::{self, Readable, Record, Upsert};
use crate::db::{Conn, filter_eq, keyset_page, locks};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, MilestoneKind, MilestoneStatus};
use crate::domain::ids::{MilestoneId, SiteId, StudyId, VendorId};
use crate::domain::milestones::{SETTLED, Schedule, schedule};
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::not_blank;
use crate::error::ApiError;

/// A milestone as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = milestones, treat_none_as_null = true, treat_none_as_default_value = false)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "CTMS-MS-0107",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "vendor_id": "0193f0e6-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
    "name": "Central lab kits shipped to all activated sites",
    "kind": "vendor_deliverable",
    "baseline_date": "2026-04-01",
    "forecast_date": "2026-04-10",
    "status": "in_progress",
    "owner": "Clinical supplies lead"
}))]
pub struct MilestoneFields {
    /// The partner system's id for this milestone (unique among live milestones, up to 100
    /// chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study the milestone belongs to; fixed once the milestone exists.
    pub study_id: StudyId,
    /// A site of the same study, for site-level milestones (e.g. `site_activation`).
    pub site_id: Option<SiteId>,
    /// The vendor responsible, for vendor deliverables. The vendor's clients read the
    /// milestone and may update its forecast and actual dates, status and notes.
    pub vendor_id: Option<VendorId>,
    #[validate(length(min = 1, max = 300), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: String,
    pub kind: MilestoneKind,
    /// The date first planned, against which slippage is measured.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub baseline_date: Option<NaiveDate>,
    /// The date currently expected.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub forecast_date: Option<NaiveDate>,
    /// The date the milestone was reached.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub actual_date: Option<NaiveDate>,
    /// Defaults to `planned`.
    #[serde(default)]
    pub status: MilestoneStatus,
    /// Who answers for the milestone (a person or a function).
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub owner: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub notes: Option<String>,
}

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
    pub id: MilestoneId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub site_id: Option<SiteId>,
    pub vendor_id: Option<VendorId>,
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

/// A milestone as answered: the stored record plus two values derived from its dates on
/// the day of the answer (UTC). The derived values are not stored: the audit trail and
/// the change feed carry the stored record only, since the calendar changes them, not
/// writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct MilestoneView {
    #[serde(flatten)]
    pub milestone: Milestone,
    /// Days late against the baseline: `actual_date` (else `forecast_date`) minus
    /// `baseline_date`. Negative when early, 0 when on time, `null` when either side is
    /// missing.
    #[schema(example = 9)]
    pub slippage_days: Option<i64>,
    /// `true` when the milestone has no `actual_date`, is neither `completed` nor
    /// `cancelled`, and its due date (`forecast_date`, else `baseline_date`) is before
    /// today (UTC). A milestone without either date is never overdue.
    #[schema(example = false)]
    pub overdue: bool,
}

impl MilestoneView {
    pub fn new(milestone: Milestone, today: NaiveDate) -> Self {
        let schedule = milestone.schedule(today);
        Self {
            milestone,
            slippage_days: schedule.slippage_days,
            overdue: schedule.overdue,
        }
    }
}

/// "Today" for the derived values: the UTC calendar day.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Filters of `GET /milestones` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MilestoneFilter {
    pub study_id: Option<StudyId>,
    pub site_id: Option<SiteId>,
    pub vendor_id: Option<VendorId>,
    pub kind: Option<MilestoneKind>,
    pub status: Option<MilestoneStatus>,
    /// `true`: only overdue milestones (as of today, UTC); `false`: only those that are not.
    pub overdue: Option<bool>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

diesel::define_sql_function! {
    fn coalesce(x: Nullable<Date>, y: Nullable<Date>) -> Nullable<Date>;
}

fn visible(scope: &RowScope) -> milestones::BoxedQuery<'static, diesel::pg::Pg> {
    let keys = Keys {
        study: milestones::study_id,
        site: milestones::site_id,
        vendor: milestones::vendor_id,
    };
    keys.visible(milestones::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &MilestoneFilter,
    today: NaiveDate,
    page: &PageRequest,
) -> QueryResult<Page<Milestone>> {
    let mut query = filter_eq!(
        visible(scope),
        filter,
        milestones::{study_id, site_id, vendor_id, kind, status, external_id}
    );
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
    let rows: Vec<Milestone> = keyset_page!(query, milestones, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |milestone| {
        milestone.id
    }))
}

impl Readable for Milestone {
    type Answer = MilestoneView;

    async fn find(
        conn: &mut Conn,
        id: MilestoneId,
        scope: &RowScope,
    ) -> Result<MilestoneView, ApiError> {
        let milestone = write::find_live!(milestones, conn, id, scope)?;
        Ok(MilestoneView::new(milestone, today()))
    }

    async fn answer(_: &mut Conn, row: Self) -> Result<MilestoneView, ApiError> {
        Ok(MilestoneView::new(row, today()))
    }
}

impl Upsert for Milestone {
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
    type Id = MilestoneId;
    const ENTITY: EntityType = EntityType::Milestone;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: self.site_id,
            vendor_id: self.vendor_id,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> MilestoneFields {
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
        let ids = |row: &Self| (row.study_id, row.site_id, row.vendor_id);
        let after = (fields.study_id, fields.site_id, fields.vendor_id);
        let study = locks::study_site_vendor(conn, before.map(ids), after, "a milestone").await?;
        Ok(write::Checked { study })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::milestones::{FIELDS, VENDOR_WRITABLE};

    #[test]
    fn fields_lists_every_writable_field() {
        let fields = MilestoneFields {
            external_id: None,
            study_id: StudyId::new_v7(),
            site_id: None,
            vendor_id: None,
            name: "n".into(),
            kind: MilestoneKind::Other,
            baseline_date: None,
            forecast_date: None,
            actual_date: None,
            status: MilestoneStatus::Planned,
            owner: None,
            notes: None,
        };
        let json = serde_json::to_value(fields).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = FIELDS.to_vec();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert!(VENDOR_WRITABLE.iter().all(|f| FIELDS.contains(f)));
    }
}
