//! One id type per kind of record, so that a study's id cannot be passed where a site's is
//! wanted: `lock_for_reference(conn, site_id, study_id)` with its arguments swapped does
//! not compile.
//!
//! Each is a UUID underneath and only that on the outside: serde reads and writes the bare
//! UUID string (`transparent`), diesel binds and loads it as a `uuid` column, and the
//! OpenAPI document shows `string`/`uuid`: `build.rs` reads the names of the `entity_id!`
//! block below and tells utoipa (its `config` feature) that each is an alias of `Uuid`, so
//! a field or parameter of an id type needs no attribute. An id type declared elsewhere
//! would not be aliased, and a documented field of it would not compile (the id types do
//! not implement `ToSchema`).
//!
//! A polymorphic reference (an audit event's or feed entry's `entity_id`, which names a
//! record of any kind) stays a bare [`Uuid`].

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::str::FromStr;

use uuid::Uuid;

/// What every id type is, for code written once for records of any kind (the write path's
/// `Record::Id`): a UUID in and out, and a new one per insert.
pub trait EntityId:
    Copy + Eq + Hash + Debug + Display + From<Uuid> + Into<Uuid> + Send + Sync + 'static
{
    /// A new, time-ordered id (UUIDv7).
    fn new_v7() -> Self {
        Self::from(Uuid::now_v7())
    }
}

/// Declares an id type: a UUID that serde, diesel and `Display` see as one.
macro_rules! entity_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), as every record gets on insert.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// The UUID underneath, for a place that takes any kind of record (the audit
            /// trail's `entity_id`, a cursor, a log line).
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl EntityId for $name {}

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                Display::fmt(&self.0, f)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <Uuid as diesel::serialize::ToSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::to_sql(
                    &self.0, out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                <Uuid as diesel::deserialize::FromSql<diesel::sql_types::Uuid, diesel::pg::Pg>>::from_sql(
                    bytes,
                )
                .map(Self)
            }
        }
    )+};
}

entity_id! {
    /// A study's id.
    StudyId;
    /// A site's id.
    SiteId;
    /// A vendor's id.
    VendorId;
    /// A milestone's id.
    MilestoneId;
    /// A budget line's id.
    BudgetLineId;
    /// An expense's id.
    ExpenseId;
    /// A risk's id.
    RiskId;
    /// A protocol deviation's id.
    DeviationId;
    /// A weekly enrollment report's id.
    EnrollmentReportId;
    /// An API client's id (its OAuth2 `client_id`).
    ClientId;
    /// A webhook subscription's id.
    WebhookId;
    /// A webhook delivery's id.
    DeliveryId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_the_bare_uuid_in_json() {
        let uuid = Uuid::now_v7();
        let id = StudyId::from(uuid);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!(uuid.to_string())
        );
        let back: StudyId = serde_json::from_value(serde_json::json!(uuid.to_string())).unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), uuid.to_string());
    }

    #[test]
    fn an_id_that_is_not_a_uuid_is_refused() {
        assert!(serde_json::from_value::<SiteId>(serde_json::json!("not-a-uuid")).is_err());
        assert!(serde_json::from_value::<SiteId>(serde_json::json!(42)).is_err());
    }
}
