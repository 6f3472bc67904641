//! A risk's writable fields and their rules, and when a risk escalates.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::db::schema::risks;
use crate::domain::enums::{RiskCategory, RiskStatus};
use crate::domain::validation::not_blank;

fn default_status() -> RiskStatus {
    RiskStatus::Open
}

/// A risk as a client writes it (POST body; PATCH bodies are merged into it). `score` is
/// not among them: the database derives it from the three factors.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = risks, treat_none_as_null = true)]
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
    pub study_id: Uuid,
    /// A live site of the same study, if the risk is about one site.
    pub site_id: Option<Uuid>,
    /// A live vendor, if the risk is about one vendor (its `vendor` clients then read it).
    pub vendor_id: Option<Uuid>,
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
    #[serde(default = "default_status")]
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

/// Whether a write escalates a risk: the score reached the threshold with this write (it
/// was below before, or the risk is new) and nobody has already escalated or closed it.
///
/// A risk that stays at or above the threshold is not escalated again by later writes, so
/// a person who moves an escalated risk to `mitigating` or `accepted` keeps that decision
/// until the score drops below the threshold and reaches it again.
pub fn escalates(
    score_before: Option<i32>,
    score_after: i32,
    status_after: RiskStatus,
    threshold: i32,
) -> bool {
    let reached = score_after >= threshold && score_before.is_none_or(|before| before < threshold);
    reached && !matches!(status_after, RiskStatus::Escalated | RiskStatus::Closed)
}

/// The audit reason of an automatic escalation.
pub fn escalation_reason(score: i32, threshold: i32) -> String {
    format!("score {score} reached threshold {threshold}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use RiskStatus::*;

    #[test]
    fn a_new_risk_escalates_at_the_threshold_not_below() {
        assert!(escalates(None, 45, Open, 45));
        assert!(escalates(None, 125, Mitigating, 45));
        assert!(!escalates(None, 44, Open, 45));
    }

    #[test]
    fn an_update_escalates_when_the_score_crosses_the_threshold() {
        assert!(escalates(Some(12), 24, Open, 20));
        assert!(escalates(Some(19), 20, Accepted, 20));
        assert!(!escalates(Some(12), 18, Open, 20), "still below");
        assert!(!escalates(Some(24), 12, Open, 20), "dropped");
    }

    #[test]
    fn staying_above_does_not_escalate_again() {
        assert!(!escalates(Some(60), 60, Mitigating, 45));
        assert!(!escalates(Some(60), 80, Accepted, 45));
    }

    #[test]
    fn escalated_and_closed_risks_stay_as_they_are() {
        assert!(!escalates(None, 100, Escalated, 45));
        assert!(!escalates(None, 100, Closed, 45));
        assert!(!escalates(Some(10), 100, Closed, 45));
    }

    #[test]
    fn the_reason_names_score_and_threshold() {
        assert_eq!(escalation_reason(48, 45), "score 48 reached threshold 45");
    }
}
