//! What a caller's `RowScope` leaves of a table: one function for the reads and lists of
//! every resource, told only which columns the table's rows are matched on.

use diesel::dsl;
use diesel::expression::{AsExpression, BoxableExpression};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_dsl::methods::FilterDsl;
use diesel::sql_types::{self, Bool, Nullable};

use crate::domain::ids::{SiteId, StudyId, VendorId};
use crate::domain::policy::RowScope;

/// A condition on the rows of `QS` (a table, or a join), boxed so that one function builds
/// it for every table; nullable because some key columns are.
pub type Condition<QS> = Box<dyn BoxableExpression<QS, Pg, SqlType = Nullable<Bool>>>;

/// A column that holds one kind of key of a table's rows (its study, site or vendor, of id
/// type `Id`), or [`Absent`].
pub trait Key<QS, Id> {
    /// "The key is one of `ids`"; `None` when the table has no such key.
    fn among(self, ids: Vec<Id>) -> Option<Condition<QS>>;
}

/// The table's rows have no key of this kind: a caller scoped by it sees none of them.
pub struct Absent;

impl<QS, Id> Key<QS, Id> for Absent {
    fn among(self, _: Vec<Id>) -> Option<Condition<QS>> {
        None
    }
}

impl<QS, Id, C> Key<QS, Id> for C
where
    C: NullableExpressionMethods,
    Id: AsExpression<Nullable<sql_types::Uuid>> + 'static,
    dsl::Nullable<C>: Expression<SqlType = Nullable<sql_types::Uuid>>,
    dsl::EqAny<dsl::Nullable<C>, Vec<Id>>:
        BoxableExpression<QS, Pg, SqlType = Nullable<Bool>> + 'static,
{
    fn among(self, ids: Vec<Id>) -> Option<Condition<QS>> {
        Some(Box::new(self.nullable().eq_any(ids)))
    }
}

/// The columns a `RowScope` matches a table's rows on: the study, the site and the vendor
/// of a row (for sites and vendors, their own `id`), [`Absent`] where there is none.
pub struct Keys<Study, Site, Vendor> {
    pub study: Study,
    pub site: Site,
    pub vendor: Vendor,
}

impl<Study, Site, Vendor> Keys<Study, Site, Vendor> {
    /// The rows of `query` that `scope` reaches: all of them, those whose key is among the
    /// scope's ids, or none (the scope `Nothing`, or one by a key the table lacks).
    pub fn visible<QS, Q>(self, query: Q, scope: &RowScope) -> Q
    where
        Study: Key<QS, StudyId>,
        Site: Key<QS, SiteId>,
        Vendor: Key<QS, VendorId>,
        Q: FilterDsl<Condition<QS>, Output = Q>,
        dsl::Nullable<dsl::AsExprOf<bool, Bool>>:
            BoxableExpression<QS, Pg, SqlType = Nullable<Bool>> + 'static,
    {
        let matched = match scope {
            RowScope::All => return query,
            RowScope::Studies(ids) => self.study.among(ids.clone()),
            RowScope::Sites(ids) => self.site.among(ids.clone()),
            RowScope::Vendor(id) => self.vendor.among(vec![*id]),
            RowScope::Nothing => None,
        };
        query.filter(matched.unwrap_or_else(|| Box::new(false.into_sql::<Bool>().nullable())))
    }
}

#[cfg(test)]
mod tests {
    use diesel::debug_query;

    use super::*;
    use crate::db::schema::risks;

    /// The SQL of the risks a scope reaches, were risks matched on study and vendor only.
    fn sql(scope: RowScope) -> String {
        let keys = Keys {
            study: risks::study_id,
            site: Absent,
            vendor: risks::vendor_id,
        };
        let query = keys.visible(risks::table.select(risks::id).into_boxed(), &scope);
        debug_query::<Pg, _>(&query).to_string()
    }

    #[test]
    fn a_scope_matches_on_its_key_and_on_an_absent_one_reaches_nothing() {
        assert!(!sql(RowScope::All).contains("WHERE"));
        assert!(
            sql(RowScope::Studies(vec![StudyId::new_v7()]))
                .contains(r#"WHERE ("risks"."study_id" = ANY($1))"#)
        );
        assert!(
            sql(RowScope::Vendor(VendorId::new_v7()))
                .contains(r#"WHERE ("risks"."vendor_id" = ANY($1))"#)
        );
        assert!(
            sql(RowScope::Sites(vec![SiteId::new_v7()])).ends_with("WHERE $1 -- binds: [false]")
        );
        assert!(sql(RowScope::Nothing).ends_with("WHERE $1 -- binds: [false]"));
    }
}
