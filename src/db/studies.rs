//! Studies: the row, and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::{milestones, risks, sites, studies};
use crate::db::write::{self, Record};
use crate::db::{Conn, budget_lines, keyset_page};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, StudyPhase, StudyStatus};
use crate::domain::policy::Scope;
use crate::domain::studies::StudyFields;
use crate::error::ApiError;

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
    pub id: Uuid,
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

impl Study {
    /// The writable part, as a PATCH is merged into it.
    pub fn fields(&self) -> StudyFields {
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
}

/// Filters of `GET /studies` beyond the common list parameters.
#[derive(Debug, Default, Clone)]
pub struct StudyFilter {
    pub status: Option<StudyStatus>,
    pub phase: Option<StudyPhase>,
    pub protocol_number: Option<String>,
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
    let mut query = visible(scope);
    if let Some(status) = filter.status {
        query = query.filter(studies::status.eq(status));
    }
    if let Some(phase) = filter.phase {
        query = query.filter(studies::phase.eq(phase));
    }
    if let Some(number) = &filter.protocol_number {
        query = query.filter(studies::protocol_number.eq(number.clone()));
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(studies::external_id.eq(external_id.clone()));
    }
    let rows: Vec<Study> = keyset_page!(query, studies, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |study| study.id))
}

/// A live study within `scope`, or 404.
pub async fn find(conn: &mut Conn, id: Uuid, scope: &Scope) -> Result<Study, ApiError> {
    // A static query, not `visible(scope)`'s boxed one: diesel keeps a static query as a
    // prepared statement per connection, so PostgreSQL parses and plans it once, not on
    // every read. The scope is then checked on the row.
    let study: Option<Study> = studies::table
        .find(id)
        .filter(studies::deleted_at.is_null())
        .first(conn)
        .await
        .optional()?;
    study
        .filter(|study| match scope {
            Scope::All => true,
            Scope::Only(ids) => ids.contains(&study.id),
        })
        .ok_or(ApiError::NotFound)
}

impl Record for Study {
    type Fields = StudyFields;
    const ENTITY: EntityType = EntityType::Study;

    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn study_id(&self) -> Option<Uuid> {
        Some(self.id)
    }
    fn fields(&self) -> StudyFields {
        Study::fields(self)
    }

    write::table_steps!(soft_delete studies);

    /// A study's budget is kept in its currency: the currency cannot change while the study
    /// has live budget lines. The update holds the study's row lock, which blocks a
    /// concurrent line insert (`lock_for_child`).
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
    /// row lock, which blocks a concurrent child insert (`lock_for_child`), so none can
    /// appear meanwhile.
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let live_sites: i64 = sites::table
            .filter(sites::study_id.eq(self.id))
            .filter(sites::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        let live_milestones: i64 = milestones::table
            .filter(milestones::study_id.eq(self.id))
            .filter(milestones::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        let live_risks: i64 = risks::table
            .filter(risks::study_id.eq(self.id))
            .filter(risks::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        let live_lines = budget_lines::count_live_in_study(conn, self.id).await?;
        let children: Vec<String> = [
            (live_sites, "site(s)"),
            (live_milestones, "milestone(s)"),
            (live_lines, "budget line(s)"),
            (live_risks, "risk(s)"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} live {what}"))
        .collect();
        if children.is_empty() {
            return Ok(());
        }
        Err(ApiError::Conflict(format!(
            "the study still has {}; delete them first",
            children.join(", ")
        )))
    }
}

/// The studies with a live milestone or risk naming `vendor`: what a vendor client sees.
pub async fn ids_naming_vendor(conn: &mut Conn, vendor: Uuid) -> QueryResult<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = milestones::table
        .filter(milestones::vendor_id.eq(vendor))
        .filter(milestones::deleted_at.is_null())
        .select(milestones::study_id)
        .distinct()
        .load(conn)
        .await?;
    let from_risks: Vec<Uuid> = risks::table
        .filter(risks::vendor_id.eq(vendor))
        .filter(risks::deleted_at.is_null())
        .select(risks::study_id)
        .distinct()
        .load(conn)
        .await?;
    ids.extend(from_risks);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Locks a live study against deletion while a row is written under it (404 if there is
/// no such live study).
///
/// `FOR KEY SHARE`, the weakest lock that conflicts with the `FOR UPDATE` every study
/// update and delete takes first (`write::table_steps`): a delete waits for the child's
/// commit and then sees the child (409), or the child waits for the delete and then finds
/// no live study (404). It is also the lock the child's foreign key takes anyway, so
/// concurrent writers under one study share one lock instead of stacking a `FOR SHARE`
/// on it (each of which PostgreSQL records as a new multixact of every holder).
pub async fn lock_for_child(conn: &mut Conn, id: Uuid) -> Result<Study, ApiError> {
    studies::table
        .find(id)
        .filter(studies::deleted_at.is_null())
        .for_key_share()
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

/// `lock_for_child` for many studies at once, in id order so that concurrent lockers agree
/// on it (a batch takes them before its first write; see `write::upsert_batch`). Studies
/// that are missing are skipped: the item naming one answers for it.
pub async fn share_lock_all(conn: &mut Conn, ids: &[Uuid]) -> Result<(), ApiError> {
    studies::table
        .filter(studies::id.eq_any(ids))
        .filter(studies::deleted_at.is_null())
        .order(studies::id)
        .select(studies::id)
        .for_key_share()
        .load::<Uuid>(conn)
        .await?;
    Ok(())
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
