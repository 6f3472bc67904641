//! Sites: the row, and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::{deviations, enrollment_reports, milestones, risks, sites};
use crate::db::write::{self, Record, Upsert};
use crate::db::{Conn, keyset_page, studies, vendors};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, SiteStatus};
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::sites::SiteFields;
use crate::error::ApiError;

/// A site, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = sites)]
#[schema(example = json!({
    "id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f", "external_id": null,
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "site_number": "DE-001",
    "name": "Charité Pneumology", "institution": "Charité – Universitätsmedizin Berlin",
    "principal_investigator": "Dr. A. Example", "country": "DE", "status": "enrolling",
    "irb_approved_on": "2026-02-10", "activated_on": "2026-03-02", "target_enrollment": 40,
    "cro_vendor_id": null, "created_at": "2026-02-01T10:00:00Z", "updated_at": "2026-03-02T12:00:00Z",
    "deleted_at": null, "version": 4, "planned_activation_on": "2026-03-02", "city": "Berlin"
}))]
pub struct Site {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub study_id: Uuid,
    pub site_number: String,
    pub name: String,
    pub institution: Option<String>,
    pub principal_investigator: Option<String>,
    pub country: String,
    pub status: SiteStatus,
    pub irb_approved_on: Option<NaiveDate>,
    pub activated_on: Option<NaiveDate>,
    pub target_enrollment: Option<i32>,
    pub cro_vendor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the site was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change; the `ETag` of the site.
    pub version: i32,
    /// When a site not yet active is planned to activate (the enrollment forecast starts
    /// it then).
    pub planned_activation_on: Option<NaiveDate>,
    /// The city the site is in, when known.
    pub city: Option<String>,
}

impl Site {
    pub fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: Some(self.id),
            vendor_id: None,
        }
    }

    /// The writable part, as a PATCH is merged into it.
    pub fn fields(&self) -> SiteFields {
        SiteFields {
            external_id: self.external_id.clone(),
            study_id: self.study_id,
            site_number: self.site_number.clone(),
            name: self.name.clone(),
            institution: self.institution.clone(),
            principal_investigator: self.principal_investigator.clone(),
            country: self.country.clone(),
            status: self.status,
            irb_approved_on: self.irb_approved_on,
            activated_on: self.activated_on,
            target_enrollment: self.target_enrollment,
            cro_vendor_id: self.cro_vendor_id,
            planned_activation_on: self.planned_activation_on,
            city: self.city.clone(),
        }
    }
}

/// Filters of `GET /sites` beyond the common list parameters.
#[derive(Debug, Default, Clone)]
pub struct SiteFilter {
    pub study_id: Option<Uuid>,
    pub status: Option<SiteStatus>,
    pub country: Option<String>,
    pub cro_vendor_id: Option<Uuid>,
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> sites::BoxedQuery<'static, diesel::pg::Pg> {
    let query = sites::table.into_boxed();
    match scope {
        RowScope::All => query,
        RowScope::Studies(studies) => query.filter(sites::study_id.eq_any(studies.clone())),
        RowScope::Sites(ids) => query.filter(sites::id.eq_any(ids.clone())),
        // No site is scoped by vendor: such callers see none.
        RowScope::Vendor(_) | RowScope::Nothing => {
            query.filter(sites::id.eq_any(Vec::<Uuid>::new()))
        }
    }
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &SiteFilter,
    page: &PageRequest,
) -> QueryResult<Page<Site>> {
    let mut query = visible(scope);
    if let Some(study_id) = filter.study_id {
        query = query.filter(sites::study_id.eq(study_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(sites::status.eq(status));
    }
    if let Some(country) = &filter.country {
        query = query.filter(sites::country.eq(country.clone()));
    }
    if let Some(vendor) = filter.cro_vendor_id {
        query = query.filter(sites::cro_vendor_id.eq(vendor));
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(sites::external_id.eq(external_id.clone()));
    }
    let rows: Vec<Site> = keyset_page!(query, sites, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |site| site.id))
}

/// A live site within `scope`, or 404.
pub async fn find(conn: &mut Conn, id: Uuid, scope: &RowScope) -> Result<Site, ApiError> {
    visible(scope)
        .filter(sites::id.eq(id))
        .filter(sites::deleted_at.is_null())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

/// The studies the given (live) sites belong to.
pub async fn study_ids_of(conn: &mut Conn, site_ids: &[Uuid]) -> QueryResult<Vec<Uuid>> {
    sites::table
        .filter(sites::id.eq_any(site_ids))
        .filter(sites::deleted_at.is_null())
        .select(sites::study_id)
        .distinct()
        .load(conn)
        .await
}

/// Call inside the transaction of a write that starts naming `site_id` under `study_id`
/// (a milestone, say): 422 on `site_id` unless it is a live site of that study, and a
/// `FOR KEY SHARE` lock that keeps it so until the write commits (a site delete takes the row
/// `FOR UPDATE` before it counts what names the site).
pub async fn lock_for_reference(
    conn: &mut Conn,
    site_id: Uuid,
    study_id: Uuid,
) -> Result<(), ApiError> {
    let study_of_site: Option<Uuid> = sites::table
        .find(site_id)
        .filter(sites::deleted_at.is_null())
        .select(sites::study_id)
        .for_key_share()
        .first(conn)
        .await
        .optional()?;
    if study_of_site == Some(study_id) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "site_id",
            "reference",
            "names no site of this study",
        ))
    }
}

impl Upsert for Site {
    fn row_keys(&self) -> RowKeys {
        self.keys()
    }
    fn keys_of(fields: &SiteFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: None,
            vendor_id: None,
        }
    }
    write::external_id_lock!(soft_delete sites);
}

impl Record for Site {
    type Fields = SiteFields;
    const ENTITY: EntityType = EntityType::Site;

    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn study_id(&self) -> Option<Uuid> {
        Some(self.study_id)
    }
    fn fields(&self) -> SiteFields {
        Site::fields(self)
    }

    write::table_steps!(soft_delete sites);

    fn external_id(fields: &SiteFields) -> Option<&str> {
        fields.external_id.as_deref()
    }

    /// A site with live milestones, risks, deviations (which are never deleted) or
    /// enrollment reports stays: deleting it would orphan regulated records. The delete holds
    /// the site's row lock, which blocks a concurrent write naming it (`lock_for_reference`,
    /// the enrollment upsert's share lock).
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let milestones: i64 = milestones::table
            .filter(milestones::site_id.eq(self.id))
            .filter(milestones::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        let risks: i64 = risks::table
            .filter(risks::site_id.eq(self.id))
            .filter(risks::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        let deviations: i64 = deviations::table
            .filter(deviations::site_id.eq(self.id))
            .count()
            .get_result(conn)
            .await?;
        let weeks: i64 = enrollment_reports::table
            .filter(enrollment_reports::site_id.eq(self.id))
            .count()
            .get_result(conn)
            .await?;
        let children = [
            (milestones, "milestone"),
            (risks, "risk"),
            (deviations, "deviation"),
            (weeks, "enrollment report"),
        ];
        let named: Vec<String> = children
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}(s)"))
            .collect();
        if named.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Conflict(format!(
                "the site still has {}",
                named.join(", ")
            )))
        }
    }

    /// A new site needs a live study (locked against deletion until the insert commits); a
    /// site stays in its study; a CRO vendor it starts naming must be live (and is locked
    /// against deletion the same way).
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &SiteFields,
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
                    "a site cannot move to another study",
                ));
            }
            Some(_) => {}
        }
        if let Some(vendor) = fields.cro_vendor_id
            && before.is_none_or(|b| b.cro_vendor_id != fields.cro_vendor_id)
        {
            vendors::lock_for_reference(conn, vendor, "cro_vendor_id").await?;
        }
        Ok(checked)
    }
}

/// The live sites of a study within `scope`, by site number: what the FHIR export shows.
pub async fn live_in_study(
    conn: &mut Conn,
    study_id: Uuid,
    scope: &RowScope,
) -> QueryResult<Vec<Site>> {
    visible(scope)
        .filter(sites::study_id.eq(study_id))
        .filter(sites::deleted_at.is_null())
        .order((sites::site_number.asc(), sites::id.asc()))
        .load(conn)
        .await
}

/// The live sites of a study in creation order, locked `FOR UPDATE` until the transaction
/// ends when `lock` is set (an import computes their new fields from what it read).
pub async fn live_in_study_for_import(
    conn: &mut Conn,
    study_id: Uuid,
    lock: bool,
) -> QueryResult<Vec<Site>> {
    let query = sites::table
        .filter(sites::study_id.eq(study_id))
        .filter(sites::deleted_at.is_null())
        .order(sites::id.asc());
    if lock {
        query.for_update().load(conn).await
    } else {
        query.load(conn).await
    }
}

/// Every site number a study has used, deleted sites included (new numbers never repeat
/// an old one).
pub async fn numbers_in_study(conn: &mut Conn, study_id: Uuid) -> QueryResult<Vec<String>> {
    sites::table
        .filter(sites::study_id.eq(study_id))
        .select(sites::site_number)
        .load(conn)
        .await
}
