//! Risks: the row, every query on it, and escalation, which runs in the transaction of the
//! write that makes a risk's score reach its study's threshold (`Record::after_write`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::audit::{self, WriteContext};
use crate::db::schema::{risks, studies};
use crate::db::scope::Keys;
use crate::db::write::{self, Readable, Record, Upsert};
use crate::db::{Conn, filter_eq, keyset_page, locks};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{AuditAction, EntityType, RiskCategory, RiskStatus};
use crate::domain::ids::{RiskId, SiteId, StudyId, VendorId};
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::risks::{escalates, escalation_reason};
use crate::domain::validation::not_blank;
use crate::error::ApiError;

/// A risk as a client writes it (POST body; PATCH bodies are merged into it). `score` is
/// not among them: the database derives it from the three factors.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = risks, treat_none_as_null = true, treat_none_as_default_value = false)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "vendor_id": "0193f0e6-1d2e-7f30-8a41-5b6c7d8e9f00",
    "title": "Central lab turnaround exceeds 72 h",
    "description": "Sample results arrive late, delaying eligibility decisions.",
    "category": "vendor",
    "likelihood": 3,
    "impact": 4,
    "detectability": 2,
    "owner": "Clinical operations lead",
    "mitigation_plan": "Weekly turnaround report; escalation call with the lab.",
    "review_due_on": "2026-04-30"
}))]
pub struct RiskFields {
    /// The partner system's id for this risk (unique among live risks, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study the risk belongs to; fixed once the risk exists.
    pub study_id: StudyId,
    /// A live site of the same study, if the risk is about one site.
    pub site_id: Option<SiteId>,
    /// A live vendor, if the risk is about one vendor (its `vendor` clients then read it).
    pub vendor_id: Option<VendorId>,
    #[validate(length(min = 1, max = 500), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub title: String,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub description: Option<String>,
    pub category: RiskCategory,
    /// How likely the risk is to occur: 1 (rare) ..= 5 (almost certain).
    #[validate(range(min = 1, max = 5))]
    #[schema(minimum = 1, maximum = 5)]
    pub likelihood: i32,
    /// How bad it would be: 1 (negligible) ..= 5 (severe).
    #[validate(range(min = 1, max = 5))]
    #[schema(minimum = 1, maximum = 5)]
    pub impact: i32,
    /// How hard it is to detect: 1 (easily detected) ..= 5 (hard to detect).
    #[validate(range(min = 1, max = 5))]
    #[schema(minimum = 1, maximum = 5)]
    pub detectability: i32,
    /// Defaults to `open`. Becomes `escalated` by itself when a write makes the score
    /// reach the study's `risk_escalation_threshold`.
    #[serde(default)]
    pub status: RiskStatus,
    #[validate(length(max = 200))]
    #[schema(max_length = 200)]
    pub owner: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub mitigation_plan: Option<String>,
    #[validate(length(max = 10_000))]
    #[schema(max_length = 10_000)]
    pub contingency_plan: Option<String>,
    /// When the risk is next to be reviewed.
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub review_due_on: Option<NaiveDate>,
}

/// A risk, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = risks)]
#[schema(example = json!({
    "id": "0193f0e7-2a3b-7c4d-8e5f-6a7b8c9d0e1f", "external_id": null,
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "site_id": null,
    "vendor_id": "0193f0e6-1d2e-7f30-8a41-5b6c7d8e9f00",
    "title": "Central lab turnaround exceeds 72 h",
    "description": "Sample results arrive late, delaying eligibility decisions.",
    "category": "vendor", "likelihood": 3, "impact": 4, "detectability": 4, "score": 48,
    "status": "escalated", "owner": "Clinical operations lead",
    "mitigation_plan": "Weekly turnaround report; escalation call with the lab.",
    "contingency_plan": null, "review_due_on": "2026-04-30",
    "created_at": "2026-03-10T08:00:00Z", "updated_at": "2026-03-10T08:00:00Z",
    "deleted_at": null, "version": 2
}))]
pub struct Risk {
    pub id: RiskId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub site_id: Option<SiteId>,
    pub vendor_id: Option<VendorId>,
    pub title: String,
    pub description: Option<String>,
    pub category: RiskCategory,
    pub likelihood: i32,
    pub impact: i32,
    pub detectability: i32,
    /// likelihood x impact x detectability (1..=125), computed by the database; read only.
    pub score: i32,
    pub status: RiskStatus,
    pub owner: Option<String>,
    pub mitigation_plan: Option<String>,
    pub contingency_plan: Option<String>,
    pub review_due_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the risk was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change (an automatic escalation is a change); the `ETag`.
    pub version: i32,
}

/// Filters of `GET /risks` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiskFilter {
    pub study_id: Option<StudyId>,
    pub site_id: Option<SiteId>,
    pub vendor_id: Option<VendorId>,
    pub category: Option<RiskCategory>,
    pub status: Option<RiskStatus>,
    /// Only risks whose score is at least this (1..=125).
    pub min_score: Option<i32>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> risks::BoxedQuery<'static, diesel::pg::Pg> {
    let keys = Keys {
        study: risks::study_id,
        site: risks::site_id,
        vendor: risks::vendor_id,
    };
    keys.visible(risks::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &RiskFilter,
    page: &PageRequest,
) -> QueryResult<Page<Risk>> {
    let mut query = filter_eq!(
        visible(scope),
        filter,
        risks::{study_id, site_id, vendor_id, category, status, external_id}
    );
    if let Some(min_score) = filter.min_score {
        query = query.filter(risks::score.ge(min_score));
    }
    let rows: Vec<Risk> = keyset_page!(query, risks, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |risk| risk.id))
}

/// Sets `escalated` when `escalates` says so, as an audit event of its own (`escalate`)
/// by the same actor, with the score and threshold as its reason. `threshold` is the
/// study's, when the write already read it (a create locks its study in `check`).
async fn escalate_if_reached(
    conn: &mut Conn,
    ctx: &WriteContext,
    score_before: Option<i32>,
    threshold: Option<i32>,
    risk: Risk,
) -> Result<Risk, ApiError> {
    // Read in the write's transaction, with the study locked against deletion: the
    // escalation and its reason agree with the score just written and the threshold that
    // judged it.
    let threshold: i32 = match threshold {
        Some(threshold) => threshold,
        None => {
            studies::table
                .find(risk.study_id)
                .select(studies::risk_escalation_threshold)
                .for_key_share()
                .first(conn)
                .await?
        }
    };
    if !escalates(score_before, risk.score, risk.status, threshold) {
        return Ok(risk);
    }
    let escalated: Risk = diesel::update(risks::table.find(risk.id))
        .set((
            risks::status.eq(RiskStatus::Escalated),
            risks::version.eq(risks::version + 1),
            risks::updated_at.eq(diesel::dsl::now),
        ))
        .get_result(conn)
        .await?;
    let ctx = WriteContext {
        reason: Some(escalation_reason(risk.score, threshold)),
        ..ctx.clone()
    };
    audit::record(
        conn,
        &ctx,
        AuditAction::Escalate,
        escalated.subject(),
        Some(&risk),
        Some(&escalated),
    )
    .await?;
    Ok(escalated)
}

impl Upsert for Risk {
    fn keys_of(fields: &RiskFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: fields.site_id,
            vendor_id: fields.vendor_id,
        }
    }
    write::external_id_lock!(soft_delete risks);
}

impl Readable for Risk {
    write::read_as_stored!(risks);
}

impl Record for Risk {
    type Fields = RiskFields;
    type Id = RiskId;
    const ENTITY: EntityType = EntityType::Risk;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: self.site_id,
            vendor_id: self.vendor_id,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> RiskFields {
        RiskFields {
            external_id: self.external_id.clone(),
            study_id: self.study_id,
            site_id: self.site_id,
            vendor_id: self.vendor_id,
            title: self.title.clone(),
            description: self.description.clone(),
            category: self.category,
            likelihood: self.likelihood,
            impact: self.impact,
            detectability: self.detectability,
            status: self.status,
            owner: self.owner.clone(),
            mitigation_plan: self.mitigation_plan.clone(),
            contingency_plan: self.contingency_plan.clone(),
            review_due_on: self.review_due_on,
        }
    }

    write::table_steps!(soft_delete risks);

    /// A write that makes the score reach the study's threshold escalates the risk, in the
    /// same transaction (only a rising score can reach it).
    async fn after_write(
        conn: &mut Conn,
        ctx: &WriteContext,
        before: Option<&Self>,
        risk: Self,
        checked: write::Checked,
    ) -> Result<Self, ApiError> {
        let threshold = checked.study.map(|study| study.risk_escalation_threshold);
        match before.map(|before| before.score) {
            Some(before) if before >= risk.score => Ok(risk),
            score_before => escalate_if_reached(conn, ctx, score_before, threshold, risk).await,
        }
    }

    fn external_id(fields: &RiskFields) -> Option<&str> {
        fields.external_id.as_deref()
    }

    /// A new risk needs a live study (locked against deletion until the insert commits); a
    /// risk stays in its study; a site must be a live site of that study, a vendor a live
    /// vendor (both locked against deletion the same way).
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &RiskFields,
    ) -> Result<write::Checked, ApiError> {
        let ids = |row: &Self| (row.study_id, row.site_id, row.vendor_id);
        let after = (fields.study_id, fields.site_id, fields.vendor_id);
        let study = locks::study_site_vendor(conn, before.map(ids), after, "a risk").await?;
        Ok(write::Checked { study })
    }
}
