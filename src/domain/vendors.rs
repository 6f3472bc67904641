//! A vendor's writable fields and their rules.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::db::schema::vendors;
use crate::domain::enums::{VendorKind, VendorStatus};
use crate::domain::validation::{self, not_blank};

fn default_status() -> VendorStatus {
    VendorStatus::Onboarding
}

/// A vendor as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = vendors, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "SUP-00042",
    "name": "Example Central Lab GmbH",
    "kind": "central_lab",
    "status": "qualified",
    "country": "DE",
    "contact_email": "trials@lab.example",
    "qualified_on": "2026-01-15"
}))]
pub struct VendorFields {
    /// The partner system's id for this vendor (unique among live vendors, up to 100 chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    #[validate(length(min = 1, max = 300), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: String,
    pub kind: VendorKind,
    /// Defaults to `onboarding`.
    #[serde(default = "default_status")]
    pub status: VendorStatus,
    /// ISO 3166-1 alpha-2 code of the vendor's seat.
    #[validate(custom(function = "validation::country_code"))]
    #[schema(schema_with = crate::domain::validation::country_or_null_schema)]
    pub country: Option<String>,
    /// Where the sponsor reaches the vendor about this trial.
    #[validate(length(max = 254), email)]
    #[schema(example = "trials@lab.example", max_length = 254, format = Email)]
    pub contact_email: Option<String>,
    /// When the vendor passed the sponsor's qualification (audit, questionnaire).
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub qualified_on: Option<NaiveDate>,
}
