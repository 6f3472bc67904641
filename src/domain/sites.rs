//! A site's writable fields and their rules.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::db::schema::sites;
use crate::domain::enums::SiteStatus;
use crate::domain::validation::{self, dates_in_order, not_blank};

fn default_status() -> SiteStatus {
    SiteStatus::Planned
}

/// A site as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = sites, treat_none_as_null = true)]
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
    pub study_id: Uuid,
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
    #[serde(default = "default_status")]
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
    pub cro_vendor_id: Option<Uuid>,
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
