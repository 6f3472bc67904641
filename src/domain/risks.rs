//! When a risk escalates.

use crate::domain::enums::RiskStatus;

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
