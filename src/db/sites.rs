//! Sites: the row, the writable fields (what a POST takes and a PATCH is merged into,
//! with their rules), and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::db::schema::{deviations, enrollment_reports, milestones, risks, sites};
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Readable, Record, Upsert};
use crate::db::{Conn, count_naming, filter_eq, keyset_page, locks, refuse_while_named};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, SiteStatus};
use crate::domain::ids::{SiteId, StudyId, VendorId};

use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::{self, dates_in_order, not_blank};
use crate::error::ApiError;

/// A site as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = sites, treat_none_as_null = true, treat_none_as_default_value = false)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "site_dates_in_order"))]
#[schema(example = json!({
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "site_number": "DE-001",
    "name": "Charité Pneumology",
    "institution": "Charité – Universitätsmedizin Berlin",
    "principal_investigator": "Dr. A. Example",
    "country": "DE",
    "city": "Berlin",
    "status": "selected",
    "irb_approved_on": "2026-02-10",
    "planned_activation_on": "2026-03-02",
    "target_enrollment": 40
}))]
pub struct SiteFields {
    /// The partner system's id for this site (unique among live sites, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study the site takes part in; fixed once the site exists.
    pub study_id: StudyId,
    /// The site's number, unique among the live sites of its study.
    #[validate(length(min = 1, max = 50), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 50, pattern = "\\S")]
    pub site_number: String,
    #[validate(length(min = 1, max = 300), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: String,
    #[validate(length(max = 300))]
    #[schema(max_length = 300)]
    pub institution: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub principal_investigator: Option<String>,
    /// ISO 3166-1 alpha-2 code.
    #[validate(custom(function = "validation::country_code"))]
    #[schema(schema_with = crate::domain::validation::country_schema)]
    pub country: String,
    /// The city the site is in (up to 200 chars), when known: the FHIR export's
    /// `Location.address.city`.
    #[validate(length(min = 1, max = 200), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub city: Option<String>,
    /// Defaults to `planned`.
    #[serde(default)]
    pub status: SiteStatus,
    /// IRB / ethics committee approval date.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub irb_approved_on: Option<NaiveDate>,
    /// Site activation date (after the site initiation visit); not before `irb_approved_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub activated_on: Option<NaiveDate>,
    /// Participants this site is expected to enroll (0 or more).
    #[validate(range(min = 0, max = 1_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub target_enrollment: Option<i32>,
    /// The CRO vendor managing this site, if any.
    pub cro_vendor_id: Option<VendorId>,
    /// When the site is planned to activate. The enrollment forecast starts a site that is
    /// not yet active (`planned`, `selected`) on this date, and leaves one without it out.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub planned_activation_on: Option<NaiveDate>,
}

fn site_dates_in_order(site: &SiteFields) -> Result<(), ValidationError> {
    dates_in_order(
        ("irb_approved_on", site.irb_approved_on),
        ("activated_on", site.activated_on),
    )
}

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
    pub id: SiteId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub site_number: String,
    pub name: String,
    pub institution: Option<String>,
    pub principal_investigator: Option<String>,
    pub country: String,
    pub status: SiteStatus,
    pub irb_approved_on: Option<NaiveDate>,
    pub activated_on: Option<NaiveDate>,
    pub target_enrollment: Option<i32>,
    pub cro_vendor_id: Option<VendorId>,
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

/// Filters of `GET /sites` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiteFilter {
    pub study_id: Option<StudyId>,
    pub status: Option<SiteStatus>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    pub cro_vendor_id: Option<VendorId>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> sites::BoxedQuery<'static, diesel::pg::Pg> {
    // No site is scoped by vendor: such callers see none.
    let keys = Keys {
        study: sites::study_id,
        site: sites::id,
        vendor: Absent,
    };
    keys.visible(sites::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &SiteFilter,
    page: &PageRequest,
) -> QueryResult<Page<Site>> {
    let query = filter_eq!(
        visible(scope),
        filter,
        sites::{study_id, status, country, cro_vendor_id, external_id}
    );
    let rows: Vec<Site> = keyset_page!(query, sites, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |site| site.id))
}

/// The studies the given (live) sites belong to.
pub async fn study_ids_of(conn: &mut Conn, site_ids: &[SiteId]) -> QueryResult<Vec<StudyId>> {
    sites::table
        .filter(sites::id.eq_any(site_ids))
        .filter(sites::deleted_at.is_null())
        .select(sites::study_id)
        .distinct()
        .load(conn)
        .await
}

impl Upsert for Site {
    fn keys_of(fields: &SiteFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: None,
            vendor_id: None,
        }
    }
    write::external_id_lock!(soft_delete sites);
}

impl Readable for Site {
    write::read_as_stored!(sites);
}

impl Record for Site {
    type Fields = SiteFields;
    type Id = SiteId;
    const ENTITY: EntityType = EntityType::Site;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: Some(self.id),
            vendor_id: None,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> SiteFields {
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

    write::table_steps!(soft_delete sites);

    fn external_id(fields: &SiteFields) -> Option<&str> {
        fields.external_id.as_deref()
    }

    /// A site with live milestones, risks, deviations (which are never deleted) or
    /// enrollment reports stays: deleting it would orphan regulated records. The delete holds
    /// the site's row lock, which blocks a concurrent write naming it (`locks::site_for_reference`,
    /// the enrollment upsert's share lock).
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let milestones = count_naming!(conn, milestones::site_id, self.id)?;
        let risks = count_naming!(conn, risks::site_id, self.id)?;
        let deviations = count_naming!(never_deleted conn, deviations::site_id, self.id)?;
        let weeks = count_naming!(never_deleted conn, enrollment_reports::site_id, self.id)?;
        refuse_while_named(
            "the site still has",
            &[
                (milestones, "milestone(s)"),
                (risks, "risk(s)"),
                (deviations, "deviation(s)"),
                (weeks, "enrollment report(s)"),
            ],
            "",
        )
    }

    /// A new site needs a live study (locked against deletion until the insert commits); a
    /// site stays in its study; a CRO vendor it starts naming must be live (and is locked
    /// against deletion the same way).
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &SiteFields,
    ) -> Result<write::Checked, ApiError> {
        let study =
            locks::in_study(conn, before.map(|b| b.study_id), fields.study_id, "a site").await?;
        locks::named_vendor(
            conn,
            before.map(|b| b.cro_vendor_id),
            fields.cro_vendor_id,
            "cro_vendor_id",
        )
        .await?;
        Ok(write::Checked { study })
    }
}

/// The live sites of a study within `scope`, by site number: what the FHIR export shows.
pub async fn live_in_study(
    conn: &mut Conn,
    study_id: StudyId,
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
    study_id: StudyId,
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
pub async fn numbers_in_study(conn: &mut Conn, study_id: StudyId) -> QueryResult<Vec<String>> {
    sites::table
        .filter(sites::study_id.eq(study_id))
        .select(sites::site_number)
        .load(conn)
        .await
}
