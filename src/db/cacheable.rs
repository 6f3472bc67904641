//! Every write inserts its row and its audit event with statements diesel can keep
//! prepared on the connection. An `Insertable` with an `Option` field writes `DEFAULT` for
//! `None` unless told otherwise, which makes its SQL depend on the values, so diesel
//! prepares it anew on every call: a Parse round trip before the insert and a Close after
//! it, and PostgreSQL parses and plans it again (about a fifth of the write benchmark's
//! cost, docs/benchmarks.md). The structs say `treat_none_as_default_value = false` (their
//! optional columns default to NULL anyway); these tests fail if one stops saying so.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::PartialSchema;
use uuid::Uuid;

use crate::db::schema::{
    budget_lines, deviations, expenses, milestones, risks, sites, studies, vendors,
};
use crate::db::{
    budget_lines::BudgetLineFields, deviations::DeviationFields, expenses::ExpenseFields,
    milestones::MilestoneFields, risks::RiskFields, sites::SiteFields, studies::StudyFields,
    vendors::VendorFields,
};

/// The document's example of `F`, with every field that may be null set to null: the
/// case that would write `DEFAULT`.
fn example_with_nulls<F: PartialSchema + DeserializeOwned>() -> F {
    let schema = serde_json::to_value(F::schema()).unwrap();
    let mut example = schema["example"].clone();
    let properties = schema["properties"].as_object().unwrap();
    for (name, property) in properties {
        if property.to_string().contains("\"null\"") {
            example[name] = Value::Null;
        }
    }
    serde_json::from_value(example).unwrap()
}

/// Fails naming `what` when diesel would prepare `query` anew on every call.
pub(crate) fn assert_cacheable(query: impl QueryFragment<Pg>, what: &str) {
    assert!(
        query.is_safe_to_cache_prepared(&Pg).unwrap(),
        "the insert of {what} is prepared anew on every call"
    );
}

macro_rules! assert_insert_cacheable {
    ($($table:ident => $fields:ty),+ $(,)?) => {$(
        let fields: $fields = example_with_nulls();
        assert_cacheable(
            diesel::insert_into($table::table).values(($table::id.eq(Uuid::nil()), &fields)),
            stringify!($fields),
        );
    )+};
}

#[test]
fn every_resource_insert_is_a_cacheable_statement() {
    assert_insert_cacheable! {
        studies => StudyFields,
        sites => SiteFields,
        vendors => VendorFields,
        milestones => MilestoneFields,
        budget_lines => BudgetLineFields,
        expenses => ExpenseFields,
        risks => RiskFields,
        deviations => DeviationFields,
    }
}
