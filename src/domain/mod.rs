//! Pure domain code: enums, codes, validation rules, the access policy (who may do what,
//! as data), cursors and merge patch. No I/O here,
//! so all of it is unit-tested beside the code.

pub mod budget_lines;
pub mod cursor;
pub mod deviations;
pub mod enrollment;
pub mod enums;
pub mod expenses;
pub mod forecast;
pub mod ids;
pub mod json;
pub mod metrics;
pub mod milestones;
pub mod money;
pub mod patch;
pub mod policy;
pub mod risks;
pub mod signals;
pub mod studies;
pub mod tabular;
pub mod validation;
pub mod versioning;
