//! A budget line's writable fields and their rules.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::db::schema::budget_lines;
use crate::domain::enums::BudgetCategory;
use crate::domain::money::Money;
use crate::domain::validation::{currency_code, not_blank};

/// 0 or more: a plan or a commitment can be nothing yet, never less.
pub fn not_negative(amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() {
        Err(ValidationError::new("range").with_message("must be 0.00 or more".into()))
    } else {
        Ok(())
    }
}

/// A budget line as a client writes it (POST body; PATCH bodies are merged into it).
///
/// A line is always in its study's currency: `currency` may be left out.
// `currency` is checked, never stored from here (`skip_insertion`, `skip_update`): the
// insert takes the study's.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = budget_lines, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "FIN-BL-0042",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    "vendor_id": "0193f0e6-1d2e-7f30-8a41-5c6d7e8f9a0b",
    "category": "cro_services",
    "description": "CRO monitoring visits, Germany",
    "planned_amount": "250000.00",
    "committed_amount": "180000.00"
}))]
pub struct BudgetLineFields {
    /// The partner system's id for this line (unique among live budget lines, up to 100
    /// chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The study the line belongs to; fixed once the line exists.
    pub study_id: Uuid,
    /// The vendor the money goes to, if any (a live vendor).
    pub vendor_id: Option<Uuid>,
    pub category: BudgetCategory,
    #[validate(length(min = 1, max = 2000), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub description: String,
    /// What the line is planned to cost: a decimal string, 0.00 or more.
    #[validate(custom(function = "not_negative"))]
    #[schema(schema_with = crate::domain::money::non_negative_schema)]
    pub planned_amount: Money,
    /// What is contracted so far (purchase orders, signed work orders); 0.00 or more,
    /// default "0.00".
    #[serde(default)]
    #[validate(custom(function = "not_negative"))]
    #[schema(schema_with = crate::domain::money::non_negative_schema)]
    pub committed_amount: Money,
    /// ISO 4217 code. Always the study's currency: leave it out to take the study's;
    /// another currency is refused (422).
    #[validate(custom(function = "currency_code"))]
    #[diesel(skip_insertion, skip_update)]
    #[schema(schema_with = crate::domain::validation::currency_or_null_schema)]
    pub currency: Option<String>,
}
