//! Studies: the row, the writable fields (what a POST takes and a PATCH is merged into,
//! with their rules), and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::db::schema::{milestones, risks, sites, studies};
use crate::db::write::{self, Readable, Record};
use crate::db::{Conn, budget_lines, count_naming, filter_eq, keyset_page, refuse_while_named};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, StudyPhase, StudyStatus};
use crate::domain::ids::{StudyId, VendorId};
use crate::domain::policy::{RowKeys, RowScope, Scope};

use crate::domain::studies::{
    DEFAULT_DEVIATION_REPORTING_DAYS, DEFAULT_FORECAST_CONFIDENCE_THRESHOLD,
    DEFAULT_RISK_ESCALATION_THRESHOLD,
};
use crate::domain::validation::{self, currency_code, dates_in_order, not_blank};
use crate::error::ApiError;

fn default_threshold() -> i32 {
    DEFAULT_RISK_ESCALATION_THRESHOLD
}

fn default_reporting_days() -> i32 {
    DEFAULT_DEVIATION_REPORTING_DAYS
}

fn default_confidence() -> f64 {
    DEFAULT_FORECAST_CONFIDENCE_THRESHOLD
}

/// A study as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = studies, treat_none_as_null = true, treat_none_as_default_value = false)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "study_dates_in_order"))]
#[schema(example = json!({
    "protocol_number": "TOP-2026-001",
    "title": "A Phase 3 Study of Examplumab in Adults with Moderate Asthma",
    "short_title": "EXAMPLE-3",
    "phase": "phase3",
    "status": "recruiting",
    "therapeutic_area": "Respiratory",
    "indication": "Asthma",
    "sponsor_name": "Example Pharma",
    "nct_id": "NCT01234567",
    "currency": "EUR",
    "target_enrollment": 480,
    "enrollment_buffer_pct": 10,
    "planned_start_date": "2026-03-01",
    "planned_end_date": "2027-12-31"
}))]
pub struct StudyFields {
    /// The partner system's id for this study (unique among live studies, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The sponsor's protocol number; unique among live studies.
    #[validate(length(min = 1, max = 100), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub protocol_number: String,
    #[validate(length(min = 1, max = 500), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub title: String,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub short_title: Option<String>,
    pub phase: StudyPhase,
    /// Defaults to `planning`.
    #[serde(default)]
    pub status: StudyStatus,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub therapeutic_area: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub indication: Option<String>,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub sponsor_name: Option<String>,
    /// ClinicalTrials.gov id: `NCT` and 8 digits.
    #[validate(custom(function = "validation::nct_id"))]
    #[schema(example = "NCT01234567", pattern = "^NCT[0-9]{8}$")]
    pub nct_id: Option<String>,
    /// EU CT number (CTIS), `YYYY-5NNNNN-NN-NN`.
    #[validate(custom(function = "validation::euct_number"))]
    #[schema(
        example = "2026-500123-12-00",
        pattern = "^[0-9]{4}-5[0-9]{5}-[0-9]{2}-[0-9]{2}$"
    )]
    pub euct_number: Option<String>,
    /// US IND number.
    #[validate(length(min = 1, max = 20))]
    #[schema(min_length = 1, max_length = 20)]
    pub ind_number: Option<String>,
    /// ISO 4217 code of the study's budget currency.
    #[validate(custom(function = "currency_code"))]
    #[schema(schema_with = crate::domain::validation::currency_schema)]
    pub currency: String,
    /// Participants to enroll (0 or more).
    #[validate(range(min = 0, max = 10_000_000))]
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub target_enrollment: i32,
    /// Buffer added to the enrollment plan, in percent (0..=100, default 0).
    #[serde(default)]
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100)]
    pub enrollment_buffer_pct: i32,
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub planned_start_date: Option<NaiveDate>,
    /// Not before `planned_start_date`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub planned_end_date: Option<NaiveDate>,
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub actual_start_date: Option<NaiveDate>,
    /// Not before `actual_start_date`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub actual_end_date: Option<NaiveDate>,
    /// Risk score (1..=125) at which a risk escalates; default 45.
    #[serde(default = "default_threshold")]
    #[validate(range(min = 1, max = 125))]
    #[schema(minimum = 1, maximum = 125)]
    pub risk_escalation_threshold: i32,
    /// Days after detection within which an important deviation must be reported; default 7.
    #[serde(default = "default_reporting_days")]
    #[validate(range(min = 1, max = 365))]
    #[schema(minimum = 1, maximum = 365)]
    pub deviation_reporting_days: i32,
    /// The probability of enrolling the target by the planned end that the study wants
    /// (0 < x < 1, default 0.8): below it the study signals `completion_at_risk`
    /// (critical below half of it).
    #[serde(default = "default_confidence")]
    #[validate(range(exclusive_min = 0.0, exclusive_max = 1.0))]
    #[schema(example = 0.8, exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    pub forecast_confidence_threshold: f64,
}

fn study_dates_in_order(study: &StudyFields) -> Result<(), ValidationError> {
    dates_in_order(
        ("planned_start_date", study.planned_start_date),
        ("planned_end_date", study.planned_end_date),
    )?;
    dates_in_order(
        ("actual_start_date", study.actual_start_date),
        ("actual_end_date", study.actual_end_date),
    )
}

/// A study, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = studies)]
#[schema(example = json!({
    "id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "external_id": "CRO-STUDY-17",
    "protocol_number": "TOP-2026-001",
    "title": "A Phase 3 Study of Examplumab in Adults with Moderate Asthma", "short_title": "EXAMPLE-3",
    "phase": "phase3", "status": "recruiting", "therapeutic_area": "Respiratory", "indication": "Asthma",
    "sponsor_name": "Example Pharma", "nct_id": "NCT01234567", "euct_number": "2026-500123-12-00",
    "ind_number": "123456", "currency": "EUR", "target_enrollment": 480, "enrollment_buffer_pct": 10,
    "planned_start_date": "2026-03-01", "planned_end_date": "2027-12-31",
    "actual_start_date": "2026-03-15", "actual_end_date": null,
    "risk_escalation_threshold": 45, "deviation_reporting_days": 7,
    "created_at": "2026-02-01T09:30:00Z", "updated_at": "2026-03-15T08:00:00Z", "deleted_at": null, "version": 3,
    "forecast_confidence_threshold": 0.8
}))]
pub struct Study {
    pub id: StudyId,
    pub external_id: Option<String>,
    pub protocol_number: String,
    pub title: String,
    pub short_title: Option<String>,
    pub phase: StudyPhase,
    pub status: StudyStatus,
    pub therapeutic_area: Option<String>,
    pub indication: Option<String>,
    pub sponsor_name: Option<String>,
    pub nct_id: Option<String>,
    pub euct_number: Option<String>,
    pub ind_number: Option<String>,
    pub currency: String,
    pub target_enrollment: i32,
    pub enrollment_buffer_pct: i32,
    pub planned_start_date: Option<NaiveDate>,
    pub planned_end_date: Option<NaiveDate>,
    pub actual_start_date: Option<NaiveDate>,
    pub actual_end_date: Option<NaiveDate>,
    pub risk_escalation_threshold: i32,
    pub deviation_reporting_days: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the study was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change; the `ETag` of the study.
    pub version: i32,
    /// The probability of reaching the target by the planned end below which the study
    /// signals `completion_at_risk` (0 < x < 1).
    pub forecast_confidence_threshold: f64,
}

/// Filters of `GET /studies` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StudyFilter {
    pub status: Option<StudyStatus>,
    pub phase: Option<StudyPhase>,
    /// Exact protocol number.
    pub protocol_number: Option<String>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

fn visible(scope: &Scope) -> studies::BoxedQuery<'static, diesel::pg::Pg> {
    let query = studies::table.into_boxed();
    match scope {
        Scope::All => query,
        Scope::Only(ids) => query.filter(studies::id.eq_any(ids.clone())),
    }
}

pub async fn list(
    conn: &mut Conn,
    scope: &Scope,
    filter: &StudyFilter,
    page: &PageRequest,
) -> QueryResult<Page<Study>> {
    let query =
        filter_eq!(visible(scope), filter, studies::{status, phase, protocol_number, external_id});
    let rows: Vec<Study> = keyset_page!(query, studies, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |study| study.id))
}

/// The rows a study scope reaches, as the scope of any other resource is written.
pub fn row_scope(scope: &Scope) -> RowScope {
    match scope {
        Scope::All => RowScope::All,
        Scope::Only(ids) => RowScope::Studies(ids.clone()),
    }
}

/// A live study within `scope`, or 404.
pub async fn find(conn: &mut Conn, id: StudyId, scope: &Scope) -> Result<Study, ApiError> {
    <Study as Readable>::find(conn, id, &row_scope(scope)).await
}

impl Readable for Study {
    write::read_as_stored!(studies);
}

impl Record for Study {
    type Fields = StudyFields;
    type Id = StudyId;
    const ENTITY: EntityType = EntityType::Study;

    /// A study is in a caller's reach when it is one of the caller's studies.
    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.id),
            ..RowKeys::default()
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> StudyFields {
        StudyFields {
            external_id: self.external_id.clone(),
            protocol_number: self.protocol_number.clone(),
            title: self.title.clone(),
            short_title: self.short_title.clone(),
            phase: self.phase,
            status: self.status,
            therapeutic_area: self.therapeutic_area.clone(),
            indication: self.indication.clone(),
            sponsor_name: self.sponsor_name.clone(),
            nct_id: self.nct_id.clone(),
            euct_number: self.euct_number.clone(),
            ind_number: self.ind_number.clone(),
            currency: self.currency.clone(),
            target_enrollment: self.target_enrollment,
            enrollment_buffer_pct: self.enrollment_buffer_pct,
            planned_start_date: self.planned_start_date,
            planned_end_date: self.planned_end_date,
            actual_start_date: self.actual_start_date,
            actual_end_date: self.actual_end_date,
            risk_escalation_threshold: self.risk_escalation_threshold,
            deviation_reporting_days: self.deviation_reporting_days,
            forecast_confidence_threshold: self.forecast_confidence_threshold,
        }
    }

    write::table_steps!(soft_delete studies);

    /// A study's budget is kept in its currency: the currency cannot change while the study
    /// has live budget lines. The update holds the study's row lock, which blocks a
    /// concurrent line insert (`locks::study_for_child`).
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &StudyFields,
    ) -> Result<write::Checked, ApiError> {
        if let Some(before) = before
            && before.currency != fields.currency
        {
            let lines = budget_lines::count_live_in_study(conn, before.id).await?;
            if lines > 0 {
                return Err(ApiError::Conflict(format!(
                    "the study has {lines} live budget line(s) in {}; its currency cannot change",
                    before.currency
                )));
            }
        }
        Ok(write::Checked::default())
    }

    /// A study with live sites, milestones, budget lines or risks stays (deviations and
    /// enrollment weeks hang off its sites, which keep them). The delete holds the study's
    /// row lock, which blocks a concurrent child insert (`locks::study_for_child`), so none can
    /// appear meanwhile.
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let sites = count_naming!(conn, sites::study_id, self.id)?;
        let milestones = count_naming!(conn, milestones::study_id, self.id)?;
        let risks = count_naming!(conn, risks::study_id, self.id)?;
        let lines = budget_lines::count_live_in_study(conn, self.id).await?;
        refuse_while_named(
            "the study still has",
            &[
                (sites, "live site(s)"),
                (milestones, "live milestone(s)"),
                (lines, "live budget line(s)"),
                (risks, "live risk(s)"),
            ],
            "; delete them first",
        )
    }
}

/// The studies with a live milestone or risk naming `vendor`: what a vendor client sees.
pub async fn ids_naming_vendor(conn: &mut Conn, vendor: VendorId) -> QueryResult<Vec<StudyId>> {
    let naming_in_milestones = milestones::table
        .filter(milestones::vendor_id.eq(vendor))
        .filter(milestones::deleted_at.is_null())
        .select(milestones::study_id);
    let naming_in_risks = risks::table
        .filter(risks::vendor_id.eq(vendor))
        .filter(risks::deleted_at.is_null())
        .select(risks::study_id);
    // `UNION` answers each study once.
    let mut ids: Vec<StudyId> = naming_in_milestones
        .union(naming_in_risks)
        .load(conn)
        .await?;
    ids.sort();
    Ok(ids)
}

/// The live studies registered under a ClinicalTrials.gov id (an import expects at most
/// one).
pub async fn live_with_nct_id(conn: &mut Conn, nct_id: &str) -> QueryResult<Vec<Study>> {
    studies::table
        .filter(studies::nct_id.eq(nct_id))
        .filter(studies::deleted_at.is_null())
        .order(studies::id.asc())
        .load(conn)
        .await
}

/// The live study with this protocol number, if any.
pub async fn live_with_protocol_number(
    conn: &mut Conn,
    protocol_number: &str,
) -> QueryResult<Option<Study>> {
    studies::table
        .filter(studies::protocol_number.eq(protocol_number))
        .filter(studies::deleted_at.is_null())
        .first(conn)
        .await
        .optional()
}

/// The live studies holding any of these external ids, oldest first.
pub async fn live_with_external_ids(
    conn: &mut Conn,
    external_ids: &[&str],
) -> QueryResult<Vec<Study>> {
    studies::table
        .filter(studies::external_id.eq_any(external_ids))
        .filter(studies::deleted_at.is_null())
        .order(studies::id.asc())
        .load(conn)
        .await
}

/// The study a row of a grouped read belongs to, read beside the row.
#[derive(diesel::QueryableByName)]
pub struct OfStudy {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub study_id: StudyId,
}

/// The ids of the given studies, in their order.
pub fn study_ids(studies: &[Study]) -> Vec<StudyId> {
    studies.iter().map(|s| s.id).collect()
}
