//! A study's writable fields and their rules: what a POST takes, and what a PATCH is
//! merged into before the same rules run again.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::db::schema::studies;
use crate::domain::enums::{StudyPhase, StudyStatus};
use crate::domain::validation::{self, currency_code, dates_in_order, not_blank};

pub const DEFAULT_RISK_ESCALATION_THRESHOLD: i32 = 45;
pub const DEFAULT_DEVIATION_REPORTING_DAYS: i32 = 7;
pub const DEFAULT_FORECAST_CONFIDENCE_THRESHOLD: f64 = 0.8;

fn default_status() -> StudyStatus {
    StudyStatus::Planning
}
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
#[diesel(table_name = studies, treat_none_as_null = true)]
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
    #[serde(default = "default_status")]
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
