//! A budget line's rules on amounts.

use validator::ValidationError;

use crate::domain::money::Money;

/// 0 or more: a plan or a commitment can be nothing yet, never less.
pub fn not_negative(amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() {
        Err(ValidationError::new("range").with_message("must be 0.00 or more".into()))
    } else {
        Ok(())
    }
}
