//! Weekly enrollment reports: rows, their stored fields, the upsert, and the list.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Date, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::WriteContext;
use crate::db::schema::{enrollment_reports, sites};
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Record};
use crate::db::{Conn, filter_eq, keyset_page};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::ids::{EnrollmentReportId, SiteId, StudyId};

use crate::domain::enrollment::EnrollmentCounts;
use crate::domain::enums::EntityType;
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::versioning::IfMatch;
use crate::error::ApiError;

/// The stored fields of a report.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = enrollment_reports)]
pub struct EnrollmentFields {
    pub study_id: StudyId,
    pub site_id: SiteId,
    pub week_start: NaiveDate,
    pub screened: i32,
    pub screen_failed: i32,
    pub enrolled: i32,
    pub discontinued: i32,
    pub completed: i32,
}

impl EnrollmentFields {
    pub fn new(
        study_id: StudyId,
        site_id: SiteId,
        week_start: NaiveDate,
        counts: &EnrollmentCounts,
    ) -> Self {
        Self {
            study_id,
            site_id,
            week_start,
            screened: counts.screened,
            screen_failed: counts.screen_failed,
            enrolled: counts.enrolled,
            discontinued: counts.discontinued,
            completed: counts.completed,
        }
    }
}

/// One site's counts for one ISO week.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = enrollment_reports)]
#[schema(example = json!({
    "id": "0193f0e9-aaaa-7bbb-8ccc-123456789abc",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f",
    "week_start": "2026-11-23", "screened": 12, "screen_failed": 3, "enrolled": 8, "discontinued": 1, "completed": 0,
    "created_at": "2026-11-24T08:00:00Z", "updated_at": "2026-11-25T08:00:00Z", "version": 2
}))]
pub struct EnrollmentReport {
    pub id: EnrollmentReportId,
    pub study_id: StudyId,
    pub site_id: SiteId,
    /// The Monday of the ISO week.
    pub week_start: NaiveDate,
    pub screened: i32,
    pub screen_failed: i32,
    pub enrolled: i32,
    pub discontinued: i32,
    pub completed: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, +1 on every change; the `ETag` of the report.
    pub version: i32,
}

impl Record for EnrollmentReport {
    type Fields = EnrollmentFields;
    type Id = EnrollmentReportId;
    const ENTITY: EntityType = EntityType::EnrollmentReport;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: Some(self.site_id),
            vendor_id: None,
        }
    }
    fn fields(&self) -> EnrollmentFields {
        EnrollmentFields {
            study_id: self.study_id,
            site_id: self.site_id,
            week_start: self.week_start,
            screened: self.screened,
            screen_failed: self.screen_failed,
            enrolled: self.enrolled,
            discontinued: self.discontinued,
            completed: self.completed,
        }
    }

    write::table_steps!(never_deleted enrollment_reports);
}

/// Whether an upsert made a new report or changed (or kept) an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// Writes the week's counts for a live site: a new report, or the existing one updated (no
/// new version and no audit event if the counts are the same). Idempotent: the same PUT
/// twice leaves one report.
pub async fn upsert(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: EnrollmentFields,
    if_match: &IfMatch,
) -> Result<(EnrollmentReport, Upserted), ApiError> {
    conn.transaction::<_, ApiError, _>(async move |conn| {
        // The site may not be deleted while its week is written.
        sites::table
            .find(fields.site_id)
            .filter(sites::deleted_at.is_null())
            .select(sites::id)
            .for_key_share()
            .first::<SiteId>(conn)
            .await
            .optional()?
            .ok_or(ApiError::NotFound)?;
        // Two first reports of the same week at once: the second waits here and then
        // updates the row the first one made, instead of failing on the unique key.
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || $2::text, 0))",
        )
        .bind::<SqlUuid, _>(fields.site_id)
        .bind::<Date, _>(fields.week_start)
        .execute(conn)
        .await?;
        let existing: Option<EnrollmentReportId> = enrollment_reports::table
            .filter(enrollment_reports::site_id.eq(fields.site_id))
            .filter(enrollment_reports::week_start.eq(fields.week_start))
            .select(enrollment_reports::id)
            .first(conn)
            .await
            .optional()?;
        match existing {
            None => {
                if !if_match.matches_absent() {
                    return Err(ApiError::PreconditionFailed { current_version: 0 });
                }
                Ok((write::create(conn, ctx, fields).await?, Upserted::Created))
            }
            Some(id) => {
                let report = write::update(
                    conn,
                    ctx,
                    id,
                    |_: &EnrollmentReport| true,
                    if_match,
                    |_| Ok(fields),
                )
                .await?;
                Ok((report, Upserted::Updated))
            }
        }
    })
    .await
}

/// Filters of `GET /enrollment`.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentFilter {
    pub study_id: Option<StudyId>,
    pub site_id: Option<SiteId>,
    /// Weeks starting on or after this date.
    pub from: Option<NaiveDate>,
    /// Weeks starting on or before this date.
    pub to: Option<NaiveDate>,
}

fn visible(scope: &RowScope) -> enrollment_reports::BoxedQuery<'static, diesel::pg::Pg> {
    // No enrollment week names a vendor: such callers see none.
    let keys = Keys {
        study: enrollment_reports::study_id,
        site: enrollment_reports::site_id,
        vendor: Absent,
    };
    keys.visible(enrollment_reports::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &EnrollmentFilter,
    page: &PageRequest,
) -> QueryResult<Page<EnrollmentReport>> {
    let mut query = filter_eq!(visible(scope), filter, enrollment_reports::{study_id, site_id});
    if let Some(from) = filter.from {
        query = query.filter(enrollment_reports::week_start.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(enrollment_reports::week_start.le(to));
    }
    let rows: Vec<EnrollmentReport> = keyset_page!(query, enrollment_reports, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |row| row.id))
}

/// Participants enrolled to date per site of a study (the sum of its weekly reports), for
/// the sites within `scope`.
pub async fn enrolled_by_site(
    conn: &mut Conn,
    study_id: StudyId,
    scope: &RowScope,
) -> QueryResult<Vec<(SiteId, i64)>> {
    use diesel::dsl::sum;
    let mut query = enrollment_reports::table
        .filter(enrollment_reports::study_id.eq(study_id))
        .group_by(enrollment_reports::site_id)
        .select((
            enrollment_reports::site_id,
            sum(enrollment_reports::enrolled),
        ))
        .into_boxed();
    match scope {
        RowScope::All => {}
        RowScope::Studies(ids) => {
            query = query.filter(enrollment_reports::study_id.eq_any(ids.clone()));
        }
        RowScope::Sites(ids) => {
            query = query.filter(enrollment_reports::site_id.eq_any(ids.clone()));
        }
        RowScope::Vendor(_) | RowScope::Nothing => return Ok(Vec::new()),
    }
    let rows: Vec<(SiteId, Option<i64>)> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(site, enrolled)| (site, enrolled.unwrap_or(0)))
        .collect())
}
