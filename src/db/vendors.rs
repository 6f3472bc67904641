//! Vendors: the row, every query on it, and the lock that keeps a vendor alive while a row
//! starts naming it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::db::schema::{budget_lines, milestones, risks, sites, vendors};
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Readable, Record};
use crate::db::{Conn, count_naming, filter_eq, keyset_page, refuse_while_named};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{EntityType, VendorKind, VendorStatus};
use crate::domain::ids::VendorId;

use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::{self, not_blank};
use crate::error::ApiError;

/// A vendor as a client writes it (POST body; PATCH bodies are merged into it).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = vendors, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    #[serde(default)]
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

/// A vendor (CRO, central lab, IRT, ...), as stored and as answered. Vendors are reference
/// data shared by every study.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = vendors)]
#[schema(example = json!({
    "id": "0193f0e6-1a2b-7c3d-8e4f-5a6b7c8d9e0f", "external_id": "SUP-00042",
    "name": "Example Central Lab GmbH", "kind": "central_lab", "status": "qualified",
    "country": "DE", "contact_email": "trials@lab.example", "qualified_on": "2026-01-15",
    "created_at": "2026-01-10T08:00:00Z", "updated_at": "2026-01-15T16:20:00Z",
    "deleted_at": null, "version": 2
}))]
pub struct Vendor {
    pub id: VendorId,
    pub external_id: Option<String>,
    pub name: String,
    pub kind: VendorKind,
    pub status: VendorStatus,
    pub country: Option<String>,
    pub contact_email: Option<String>,
    pub qualified_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the vendor was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change; the `ETag` of the vendor.
    pub version: i32,
}

/// Filters of `GET /vendors` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VendorFilter {
    pub kind: Option<VendorKind>,
    pub status: Option<VendorStatus>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> vendors::BoxedQuery<'static, diesel::pg::Pg> {
    // Vendors belong to no study or site: callers scoped that way see none.
    let keys = Keys {
        study: Absent,
        site: Absent,
        vendor: vendors::id,
    };
    keys.visible(vendors::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &VendorFilter,
    page: &PageRequest,
) -> QueryResult<Page<Vendor>> {
    let query = filter_eq!(visible(scope), filter, vendors::{kind, status, country, external_id});
    let rows: Vec<Vendor> = keyset_page!(query, vendors, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |vendor| vendor.id))
}

/// The lock a write naming a vendor takes (`locks::vendor_for_reference`), under the name
/// the integration tests call it by.
pub use crate::db::locks::vendor_for_reference as lock_for_reference;

impl Readable for Vendor {
    write::read_as_stored!(vendors);
}

impl Record for Vendor {
    type Fields = VendorFields;
    type Id = VendorId;
    const ENTITY: EntityType = EntityType::Vendor;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: None,
            site_id: None,
            vendor_id: Some(self.id),
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> VendorFields {
        VendorFields {
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            status: self.status,
            country: self.country.clone(),
            contact_email: self.contact_email.clone(),
            qualified_on: self.qualified_on,
        }
    }

    write::table_steps!(soft_delete vendors);

    /// A vendor stays while live rows name it. The delete holds the vendor's row lock, and
    /// every write that starts naming a vendor takes `locks::vendor_for_reference` first, so no such
    /// row can appear between this count and the delete.
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let milestones = count_naming!(conn, milestones::vendor_id, self.id)?;
        let budget_lines = count_naming!(conn, budget_lines::vendor_id, self.id)?;
        let risks = count_naming!(conn, risks::vendor_id, self.id)?;
        let sites = count_naming!(conn, sites::cro_vendor_id, self.id)?;
        refuse_while_named(
            "the vendor is still named by",
            &[
                (milestones, "live milestone(s)"),
                (budget_lines, "live budget line(s)"),
                (risks, "live risk(s)"),
                (sites, "live site(s) as their CRO"),
            ],
            "; remove those references first",
        )
    }
}
