//! A study's defaults: what a new study takes when a POST leaves a rule out.

pub const DEFAULT_RISK_ESCALATION_THRESHOLD: i32 = 45;
pub const DEFAULT_DEVIATION_REPORTING_DAYS: i32 = 7;
pub const DEFAULT_FORECAST_CONFIDENCE_THRESHOLD: f64 = 0.8;
