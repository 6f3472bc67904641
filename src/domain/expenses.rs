//! An expense's writable fields and their rules.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::db::schema::expenses;
use crate::domain::money::Money;
use crate::domain::validation::currency_code;

/// More than 0: an expense of nothing is not an expense, and a credit note is not one
/// either (correct or delete the expense instead).
pub fn positive(amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() || *amount == Money::ZERO {
        Err(ValidationError::new("range").with_message("must be more than 0.00".into()))
    } else {
        Ok(())
    }
}

/// An expense as a client writes it (POST body; PATCH bodies are merged into it).
///
/// An expense's `study_id` and `currency` are always its budget line's: `study_id` is not
/// sent at all, and `currency` may be left out.
// `currency` is checked, never stored from here (`skip_insertion`, `skip_update`): the
// insert and update take the line's `study_id` and `currency`.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = expenses, treat_none_as_null = true)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "AP-INV-2026-0117",
    "budget_line_id": "0193f0e7-2a3b-7c4d-9e5f-6a7b8c9d0e1f",
    "amount": "12500.00",
    "incurred_on": "2026-04-30",
    "invoice_number": "INV-2026-0117",
    "description": "Monitoring visits, April"
}))]
pub struct ExpenseFields {
    /// The partner system's id for this expense (unique among live expenses, up to 100
    /// chars).
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: Option<String>,
    /// The budget line the expense is booked against. It may move to another line of the
    /// same study only.
    pub budget_line_id: Uuid,
    /// A decimal string, more than 0.00, in the line's currency.
    #[validate(custom(function = "positive"))]
    #[schema(schema_with = crate::domain::money::positive_schema)]
    pub amount: Money,
    /// ISO 4217 code. Always the budget line's currency: leave it out, or send the line's
    /// (another is refused, 422).
    #[validate(custom(function = "currency_code"))]
    #[diesel(skip_insertion, skip_update)]
    #[schema(schema_with = crate::domain::validation::currency_or_null_schema)]
    pub currency: Option<String>,
    /// The day the cost was incurred (service date, or invoice date where there is none).
    #[validate(custom(function = "crate::domain::validation::calendar_date"))]
    #[schema(pattern = "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    pub incurred_on: NaiveDate,
    #[validate(length(min = 1, max = 100))]
    #[schema(min_length = 1, max_length = 100)]
    pub invoice_number: Option<String>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}
