//! Risks: the row, every query on it, and escalation, which runs in the transaction of the
//! write that makes a risk's score reach its study's threshold (`Record::after_write`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, WriteContext};
use crate::db::schema::{risks, studies};
use crate::db::write::{self, Record, Upsert};
use crate::db::{Conn, keyset_page, sites, vendors};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{AuditAction, EntityType, RiskCategory, RiskStatus};
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::risks::{RiskFields, escalates, escalation_reason};
use crate::error::ApiError;

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
    pub id: Uuid,
    pub external_id: Option<String>,
    pub study_id: Uuid,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
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

impl Risk {
    pub fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: self.site_id,
            vendor_id: self.vendor_id,
        }
    }

    /// The writable part, as a PATCH is merged into it.
    pub fn fields(&self) -> RiskFields {
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
}

/// Filters of `GET /risks` beyond the common list parameters.
#[derive(Debug, Default, Clone)]
pub struct RiskFilter {
    pub study_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub vendor_id: Option<Uuid>,
    pub category: Option<RiskCategory>,
    pub status: Option<RiskStatus>,
    pub min_score: Option<i32>,
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> risks::BoxedQuery<'static, diesel::pg::Pg> {
    let query = risks::table.into_boxed();
    match scope {
        RowScope::All => query,
        RowScope::Studies(studies) => query.filter(risks::study_id.eq_any(studies.clone())),
        RowScope::Sites(ids) => query.filter(risks::site_id.eq_any(ids.clone())),
        RowScope::Vendor(vendor) => query.filter(risks::vendor_id.eq(*vendor)),
        RowScope::Nothing => query.filter(risks::id.eq_any(Vec::<Uuid>::new())),
    }
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &RiskFilter,
    page: &PageRequest,
) -> QueryResult<Page<Risk>> {
    let mut query = visible(scope);
    if let Some(study_id) = filter.study_id {
        query = query.filter(risks::study_id.eq(study_id));
    }
    if let Some(site_id) = filter.site_id {
        query = query.filter(risks::site_id.eq(site_id));
    }
    if let Some(vendor_id) = filter.vendor_id {
        query = query.filter(risks::vendor_id.eq(vendor_id));
    }
    if let Some(category) = filter.category {
        query = query.filter(risks::category.eq(category));
    }
    if let Some(status) = filter.status {
        query = query.filter(risks::status.eq(status));
    }
    if let Some(min_score) = filter.min_score {
        query = query.filter(risks::score.ge(min_score));
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(risks::external_id.eq(external_id.clone()));
    }
    let rows: Vec<Risk> = keyset_page!(query, risks, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |risk| risk.id))
}

/// A live risk within `scope`, or 404.
pub async fn find(conn: &mut Conn, id: Uuid, scope: &RowScope) -> Result<Risk, ApiError> {
    visible(scope)
        .filter(risks::id.eq(id))
        .filter(risks::deleted_at.is_null())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
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
    fn row_keys(&self) -> RowKeys {
        self.keys()
    }
    fn keys_of(fields: &RiskFields) -> RowKeys {
        RowKeys {
            study_id: Some(fields.study_id),
            site_id: fields.site_id,
            vendor_id: fields.vendor_id,
        }
    }
    write::external_id_lock!(soft_delete risks);
}

impl Record for Risk {
    type Fields = RiskFields;
    const ENTITY: EntityType = EntityType::Risk;

    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn study_id(&self) -> Option<Uuid> {
        Some(self.study_id)
    }
    fn fields(&self) -> RiskFields {
        Risk::fields(self)
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
        let mut checked = write::Checked::default();
        match before {
            None => {
                checked.study =
                    Some(crate::db::studies::lock_for_child(conn, fields.study_id).await?);
            }
            Some(before) if before.study_id != fields.study_id => {
                return Err(ApiError::invalid(
                    "study_id",
                    "immutable",
                    "a risk cannot move to another study",
                ));
            }
            Some(_) => {}
        }
        // A site or vendor the risk starts naming stays live until this write commits.
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
