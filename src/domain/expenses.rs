//! An expense's rules on amounts.

use validator::ValidationError;

use crate::domain::money::Money;

/// More than 0: an expense of nothing is not an expense, and a credit note is not one
/// either (correct or delete the expense instead).
pub fn positive(amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() || *amount == Money::ZERO {
        Err(ValidationError::new("range").with_message("must be more than 0.00".into()))
    } else {
        Ok(())
    }
}
