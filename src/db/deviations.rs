//! Protocol deviations: the row, the writable fields (with their rules), and every query on
//! it. Deviations are regulated records:
//! never deleted (the table has no `deleted_at`, and a database rule turns `DELETE` into a
//! no-op), withdrawn by the status `invalidated` instead.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Date};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::audit::WriteContext;
use crate::db::schema::{deviations, studies};
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Readable, Record, Upsert};
use crate::db::{Conn, filter_eq, keyset_page, locks};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::deviations::participant_code;
use crate::domain::deviations::reporting_overdue;
use crate::domain::enums::{DeviationCategory, DeviationImportance, DeviationStatus, EntityType};
use crate::domain::ids::{DeviationId, SiteId, StudyId};
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::{dates_in_order, not_blank};
use crate::error::ApiError;

/// A protocol deviation as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = deviations, treat_none_as_null = true, treat_none_as_default_value = false)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "deviation_dates_in_order"))]
#[schema(example = json!({
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f",
    "participant_ref": "DE-001-0042",
    "category": "informed_consent",
    "description": "Visit 3 procedures done before the amended consent form was signed.",
    "importance": "important",
    "occurred_on": "2026-03-02",
    "detected_on": "2026-03-04",
    "reported_on": "2026-03-06"
}))]
pub struct DeviationFields {
    /// The partner system's id for this deviation (unique, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study; fixed once the deviation exists.
    pub study_id: StudyId,
    /// A live site of the study; fixed once the deviation exists.
    pub site_id: SiteId,
    /// The participant's pseudonymous code (never a name or an e-mail address): 1 to 64
    /// characters, no whitespace, no `@`.
    #[validate(custom(function = "participant_code"))]
    #[schema(
        example = "DE-001-0042",
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f@]{1,64}$"
    )]
    pub participant_ref: Option<String>,
    pub category: DeviationCategory,
    #[validate(length(min = 1, max = 10_000), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 10_000, pattern = "\\S")]
    pub description: String,
    /// ICH E6(R3): an important deviation may significantly affect the completeness,
    /// accuracy or reliability of key data, or a participant's rights, safety or well-being.
    pub importance: DeviationImportance,
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub occurred_on: NaiveDate,
    /// Not before `occurred_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub detected_on: NaiveDate,
    /// When it was reported to the sponsor; not before `detected_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub reported_on: Option<NaiveDate>,
    /// When it was reported to the IRB / ethics committee; not before `detected_on`.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub irb_reported_on: Option<NaiveDate>,
    /// Defaults to `open`. A deviation is never deleted: `invalidated` withdraws it.
    #[serde(default)]
    pub status: DeviationStatus,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub root_cause: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub corrective_action: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub preventive_action: Option<String>,
    /// When the corrective and preventive actions are due.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub capa_due_on: Option<NaiveDate>,
}

fn deviation_dates_in_order(deviation: &DeviationFields) -> Result<(), ValidationError> {
    let detected = ("detected_on", Some(deviation.detected_on));
    dates_in_order(("occurred_on", Some(deviation.occurred_on)), detected)?;
    dates_in_order(detected, ("reported_on", deviation.reported_on))?;
    dates_in_order(detected, ("irb_reported_on", deviation.irb_reported_on))
}

/// A protocol deviation as stored: what the audit trail and the change feed carry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = deviations)]
pub struct DeviationRecord {
    pub id: DeviationId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub site_id: SiteId,
    pub participant_ref: Option<String>,
    pub category: DeviationCategory,
    pub description: String,
    pub importance: DeviationImportance,
    pub occurred_on: NaiveDate,
    pub detected_on: NaiveDate,
    pub reported_on: Option<NaiveDate>,
    pub irb_reported_on: Option<NaiveDate>,
    pub status: DeviationStatus,
    pub root_cause: Option<String>,
    pub corrective_action: Option<String>,
    pub preventive_action: Option<String>,
    pub capa_due_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, +1 on every change; the `ETag` of the deviation.
    pub version: i32,
}

/// A protocol deviation as answered: the stored record and whether its reporting is
/// overdue today.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0e8-4b5c-7d6e-8f70-8a9b0c1d2e3f", "external_id": "EDC-PD-0193",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "site_id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f", "participant_ref": "DE-001-0042",
    "category": "informed_consent",
    "description": "Visit 3 procedures done before the amended consent form was signed.",
    "importance": "important", "occurred_on": "2026-03-02", "detected_on": "2026-03-04",
    "reported_on": null, "irb_reported_on": null, "status": "under_review",
    "root_cause": null, "corrective_action": null, "preventive_action": null,
    "capa_due_on": null, "created_at": "2026-03-04T15:20:00Z",
    "updated_at": "2026-03-05T09:00:00Z", "version": 2, "reporting_overdue": true
}))]
pub struct Deviation {
    #[serde(flatten)]
    pub record: DeviationRecord,
    /// Important, and not reported within the study's `deviation_reporting_days` after
    /// detection: reported later than that, or still unreported with the window (in UTC
    /// dates) passed. Derived when answered; never stored or written.
    pub reporting_overdue: bool,
}

impl Deviation {
    fn new(record: DeviationRecord, reporting_days: i32, today: NaiveDate) -> Self {
        let reporting_overdue = reporting_overdue(
            record.importance,
            record.detected_on,
            record.reported_on,
            reporting_days,
            today,
        );
        Self {
            record,
            reporting_overdue,
        }
    }
}

/// Filters of `GET /deviations` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviationFilter {
    pub study_id: Option<StudyId>,
    pub site_id: Option<SiteId>,
    pub category: Option<DeviationCategory>,
    pub importance: Option<DeviationImportance>,
    pub status: Option<DeviationStatus>,
    /// `true`: only deviations whose reporting is overdue today; `false`: only the others.
    pub reporting_overdue: Option<bool>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

/// Deviations beside their study, whose `deviation_reporting_days` decides
/// `reporting_overdue`: one query per page, however many studies it spans.
type WithStudy = diesel::dsl::InnerJoinOn<
    deviations::table,
    studies::table,
    diesel::dsl::Eq<deviations::study_id, studies::id>,
>;
type Visible = diesel::dsl::IntoBoxed<'static, WithStudy, Pg>;

fn visible(scope: &RowScope) -> Visible {
    let query = deviations::table
        .inner_join(studies::table.on(deviations::study_id.eq(studies::id)))
        .into_boxed();
    // No deviation names a vendor: such callers see none.
    let keys = Keys {
        study: deviations::study_id,
        site: deviations::site_id,
        vendor: Absent,
    };
    keys.visible(query, scope)
}

/// Today's date in UTC, the calendar `reporting_overdue` is judged in.
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &DeviationFilter,
    page: &PageRequest,
) -> QueryResult<Page<Deviation>> {
    let today = today();
    let mut query = filter_eq!(
        visible(scope),
        filter,
        deviations::{study_id, site_id, category, importance, status, external_id}
    );
    if let Some(wanted) = filter.reporting_overdue {
        // `domain::deviations::reporting_overdue` in SQL, so the filter pages like every
        // other; the list tests check that both agree on every row.
        let overdue = sql::<Bool>(
            "(deviations.importance = 'important' \
             AND deviations.detected_on + studies.deviation_reporting_days \
                 < coalesce(deviations.reported_on, ",
        )
        .bind::<Date, _>(today)
        .sql("))");
        query = if wanted {
            query.filter(overdue)
        } else {
            query.filter(diesel::dsl::not(overdue))
        };
    }
    let rows: Vec<(DeviationRecord, i32)> = keyset_page!(query, deviations, page)
        .select((
            DeviationRecord::as_select(),
            studies::deviation_reporting_days,
        ))
        .load(conn)
        .await?;
    let page_of_rows = Page::from_overfetch(rows, page.limit, |(record, _)| record.id);
    Ok(page_of_rows.map(|(record, days)| Deviation::new(record, days, today)))
}

/// A written record as answered, with its study's reporting window.
async fn answered(conn: &mut Conn, record: DeviationRecord) -> Result<Deviation, ApiError> {
    let days: i32 = studies::table
        .find(record.study_id)
        .select(studies::deviation_reporting_days)
        .first(conn)
        .await?;
    Ok(Deviation::new(record, days, today()))
}

pub async fn create(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: DeviationFields,
) -> Result<Deviation, ApiError> {
    let record: DeviationRecord = write::create(conn, ctx, fields).await?;
    answered(conn, record).await
}

impl Readable for DeviationRecord {
    type Answer = Deviation;

    /// A deviation within `scope` with its study's reporting window, in one statement, or
    /// 404.
    async fn find(
        conn: &mut Conn,
        id: DeviationId,
        scope: &RowScope,
    ) -> Result<Deviation, ApiError> {
        let (record, days) = visible(scope)
            .filter(deviations::id.eq(id))
            .select((
                DeviationRecord::as_select(),
                studies::deviation_reporting_days,
            ))
            .first::<(DeviationRecord, i32)>(conn)
            .await
            .optional()?
            .ok_or(ApiError::NotFound)?;
        Ok(Deviation::new(record, days, today()))
    }

    async fn answer(conn: &mut Conn, row: Self) -> Result<Deviation, ApiError> {
        answered(conn, row).await
    }
}

impl Upsert for DeviationRecord {
    fn keys_of(fields: &DeviationFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: Some(fields.site_id),
            vendor_id: None,
        }
    }
    write::external_id_lock!(never_deleted deviations);
}

impl Record for DeviationRecord {
    type Fields = DeviationFields;
    type Id = DeviationId;
    const ENTITY: EntityType = EntityType::Deviation;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: Some(self.site_id),
            vendor_id: None,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> DeviationFields {
        DeviationFields {
            external_id: self.external_id.clone(),
            study_id: self.study_id,
            site_id: self.site_id,
            participant_ref: self.participant_ref.clone(),
            category: self.category,
            description: self.description.clone(),
            importance: self.importance,
            occurred_on: self.occurred_on,
            detected_on: self.detected_on,
            reported_on: self.reported_on,
            irb_reported_on: self.irb_reported_on,
            status: self.status,
            root_cause: self.root_cause.clone(),
            corrective_action: self.corrective_action.clone(),
            preventive_action: self.preventive_action.clone(),
            capa_due_on: self.capa_due_on,
        }
    }

    write::table_steps!(never_deleted deviations);

    fn external_id(fields: &DeviationFields) -> Option<&str> {
        fields.external_id.as_deref()
    }

    // `mark_deleted` keeps the trait's refusal: there is no DELETE route (405), and the
    // database ignores a DELETE that comes from anywhere else.

    /// A new deviation needs a live study (locked until the insert commits) and a live
    /// site of that study; neither can change afterwards.
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &DeviationFields,
    ) -> Result<write::Checked, ApiError> {
        let study = locks::in_study(
            conn,
            before.map(|b| b.study_id),
            fields.study_id,
            "a deviation",
        )
        .await?;
        match before {
            // The site stays live until the deviation is in (a site delete counts them).
            None => locks::site_for_reference(conn, fields.site_id, fields.study_id).await?,
            Some(before) if before.site_id != fields.site_id => {
                return Err(ApiError::invalid(
                    "site_id",
                    "immutable",
                    "a deviation cannot move to another site",
                ));
            }
            Some(_) => {}
        }
        Ok(write::Checked { study })
    }
}

/// A deviation as the SDTM DV export reads it: with the number of its site, which the
/// subject id is made of.
#[derive(Debug, Clone, Queryable)]
pub struct DvSource {
    pub id: DeviationId,
    pub external_id: Option<String>,
    pub site_number: String,
    pub participant_ref: Option<String>,
    pub description: String,
    pub category: DeviationCategory,
    pub importance: DeviationImportance,
    pub occurred_on: NaiveDate,
    pub status: DeviationStatus,
}

/// Every deviation of a study within `scope`, invalidated ones and those without a
/// participant included (the export counts them). Both the deviation and its site must
/// belong to the study, so no other study's deviation can ever show.
pub async fn dv_sources(
    conn: &mut Conn,
    study_id: StudyId,
    scope: &RowScope,
) -> QueryResult<Vec<DvSource>> {
    use crate::db::schema::sites;
    visible(scope)
        .inner_join(sites::table.on(sites::id.eq(deviations::site_id)))
        .filter(deviations::study_id.eq(study_id))
        .filter(sites::study_id.eq(study_id))
        .select((
            deviations::id,
            deviations::external_id,
            sites::site_number,
            deviations::participant_ref,
            deviations::description,
            deviations::category,
            deviations::importance,
            deviations::occurred_on,
            deviations::status,
        ))
        .order(deviations::id.asc())
        .load(conn)
        .await
}
