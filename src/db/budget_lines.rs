//! Budget lines: the row, its derived amounts, the writable fields (with their rules), and
//! every query on it.

use std::collections::HashMap;
use validator::Validate;

use chrono::{DateTime, Utc};
use diesel::dsl::sum;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Numeric};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::schema::{budget_lines, expenses};
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Readable, Record};
use crate::db::{Conn, count_naming, filter_eq, keyset_page, locks, refuse_while_named};
use crate::domain::ids::{BudgetLineId, StudyId, VendorId};

use crate::domain::budget_lines::not_negative;
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{BudgetCategory, EntityType};
use crate::domain::money::Money;
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::{currency_code, not_blank};
use crate::error::ApiError;

/// A budget line as a client writes it (POST body; PATCH bodies are merged into it).
///
/// A line is always in its study's currency: `currency` may be left out.
// `currency` is checked, never stored from here (`skip_insertion`, `skip_update`): the
// insert takes the study's.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = budget_lines, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    pub study_id: StudyId,
    /// The vendor the money goes to, if any (a live vendor).
    pub vendor_id: Option<VendorId>,
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

/// A budget line as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = budget_lines)]
pub struct BudgetLineRow {
    pub id: BudgetLineId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub vendor_id: Option<VendorId>,
    pub category: BudgetCategory,
    pub description: String,
    pub planned_amount: Money,
    pub committed_amount: Money,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i32,
}

/// What a line's live expenses add up to, computed by the database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub actual: Money,
    pub remaining: Money,
}

/// A budget line, with what its live expenses add up to so far.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0e7-2a3b-7c4d-9e5f-6a7b8c9d0e1f", "external_id": "FIN-BL-0042",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "vendor_id": "0193f0e6-1d2e-7f30-8a41-5c6d7e8f9a0b",
    "category": "cro_services", "description": "CRO monitoring visits, Germany",
    "planned_amount": "250000.00", "committed_amount": "180000.00",
    "actual_amount": "61250.00", "remaining_amount": "188750.00", "currency": "EUR",
    "created_at": "2026-02-01T10:00:00Z", "updated_at": "2026-04-30T16:00:00Z", "deleted_at": null, "version": 2
}))]
pub struct BudgetLine {
    pub id: BudgetLineId,
    pub external_id: Option<String>,
    pub study_id: StudyId,
    pub vendor_id: Option<VendorId>,
    pub category: BudgetCategory,
    pub description: String,
    pub planned_amount: Money,
    pub committed_amount: Money,
    /// The sum of the line's live expenses ("0.00" when it has none).
    pub actual_amount: Money,
    /// `planned_amount - actual_amount`; negative when the line is overspent.
    pub remaining_amount: Money,
    /// ISO 4217 code: always the study's currency.
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the line was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change to the line itself (not to its expenses); the
    /// `ETag` of the line.
    pub version: i32,
}

impl BudgetLine {
    fn new(row: BudgetLineRow, totals: Totals) -> Self {
        Self {
            id: row.id,
            external_id: row.external_id,
            study_id: row.study_id,
            vendor_id: row.vendor_id,
            category: row.category,
            description: row.description,
            planned_amount: row.planned_amount,
            committed_amount: row.committed_amount,
            actual_amount: totals.actual,
            remaining_amount: totals.remaining,
            currency: row.currency,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            version: row.version,
        }
    }
}

/// Filters of `GET /budget-lines` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BudgetLineFilter {
    pub study_id: Option<StudyId>,
    pub vendor_id: Option<VendorId>,
    pub category: Option<BudgetCategory>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
}

fn visible(scope: &RowScope) -> budget_lines::BoxedQuery<'static, diesel::pg::Pg> {
    // Budgets are scoped by study only: site and vendor callers see none.
    let keys = Keys {
        study: budget_lines::study_id,
        site: Absent,
        vendor: Absent,
    };
    keys.visible(budget_lines::table.into_boxed(), scope)
}

diesel::define_sql_function! {
    /// SQL `coalesce`, for a sum over no rows (NULL) that means zero.
    fn coalesce(value: Nullable<Numeric>, fallback: Numeric) -> Numeric;
}

/// Actual and remaining amounts of the given lines, in one aggregate query: the sum of
/// each line's live expenses, and its planned amount minus that. Exact (NUMERIC), and no
/// expense row leaves the database.
pub async fn totals(
    conn: &mut Conn,
    ids: &[BudgetLineId],
) -> QueryResult<HashMap<BudgetLineId, Totals>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let actual = coalesce(sum(expenses::amount.nullable()), Money::ZERO);
    let rows: Vec<(BudgetLineId, Money, Money)> = budget_lines::table
        .left_join(
            expenses::table.on(expenses::budget_line_id
                .eq(budget_lines::id)
                .and(expenses::deleted_at.is_null())),
        )
        .filter(budget_lines::id.eq_any(ids))
        .group_by(budget_lines::id)
        .select((
            budget_lines::id,
            actual,
            budget_lines::planned_amount - actual,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, actual, remaining)| (id, Totals { actual, remaining }))
        .collect())
}

/// The answered form of stored rows: each with its totals, from one aggregate query.
async fn with_totals(conn: &mut Conn, rows: Vec<BudgetLineRow>) -> QueryResult<Vec<BudgetLine>> {
    let ids: Vec<BudgetLineId> = rows.iter().map(|row| row.id).collect();
    let totals = totals(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            // A line the aggregate did not see has no live expenses.
            let totals = totals.get(&row.id).copied().unwrap_or(Totals {
                actual: Money::ZERO,
                remaining: row.planned_amount,
            });
            BudgetLine::new(row, totals)
        })
        .collect())
}

async fn one_with_totals(conn: &mut Conn, row: BudgetLineRow) -> Result<BudgetLine, ApiError> {
    with_totals(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a budget line went missing")))
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &BudgetLineFilter,
    page: &PageRequest,
) -> QueryResult<Page<BudgetLine>> {
    let query = filter_eq!(
        visible(scope),
        filter,
        budget_lines::{study_id, vendor_id, category, external_id}
    );
    let rows: Vec<BudgetLineRow> = keyset_page!(query, budget_lines, deleted_at, page)
        .load(conn)
        .await?;
    let page = Page::from_overfetch(rows, page.limit, |line| line.id);
    Ok(Page {
        data: with_totals(conn, page.data).await?,
        next_cursor: page.next_cursor,
    })
}

/// A live line within `scope`, without its totals, or 404.
pub async fn find_row(
    conn: &mut Conn,
    id: BudgetLineId,
    scope: &RowScope,
) -> Result<BudgetLineRow, ApiError> {
    visible(scope)
        .filter(budget_lines::id.eq(id))
        .filter(budget_lines::deleted_at.is_null())
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

impl Readable for BudgetLine {
    type Answer = Self;

    /// A live line within `scope` with its totals, or 404.
    async fn find(conn: &mut Conn, id: BudgetLineId, scope: &RowScope) -> Result<Self, ApiError> {
        let row = find_row(conn, id, scope).await?;
        one_with_totals(conn, row).await
    }

    async fn answer(_: &mut Conn, row: Self) -> Result<Self, ApiError> {
        Ok(row)
    }
}

/// The number of live lines of a study (which keep it from being deleted, and its currency
/// from changing).
pub async fn count_live_in_study(conn: &mut Conn, study_id: StudyId) -> QueryResult<i64> {
    count_naming!(conn, budget_lines::study_id, study_id)
}

impl Record for BudgetLine {
    type Fields = BudgetLineFields;
    type Id = BudgetLineId;
    const ENTITY: EntityType = EntityType::BudgetLine;

    fn id(&self) -> BudgetLineId {
        self.id
    }
    fn version(&self) -> i32 {
        self.version
    }
    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: None,
            // A vendor named on a line does not make the line the vendor's to read.
            vendor_id: None,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> BudgetLineFields {
        BudgetLineFields {
            external_id: self.external_id.clone(),
            study_id: self.study_id,
            vendor_id: self.vendor_id,
            category: self.category,
            description: self.description.clone(),
            planned_amount: self.planned_amount,
            committed_amount: self.committed_amount,
            currency: Some(self.currency.clone()),
        }
    }

    /// The line takes its study's currency (the study is locked by `check`).
    async fn insert(
        conn: &mut Conn,
        id: BudgetLineId,
        fields: &BudgetLineFields,
    ) -> Result<Self, ApiError> {
        let study = locks::study_for_child(conn, fields.study_id).await?;
        let row: BudgetLineRow = diesel::insert_into(budget_lines::table)
            .values((
                budget_lines::id.eq(id),
                budget_lines::currency.eq(study.currency),
                fields,
            ))
            .returning(BudgetLineRow::as_returning())
            .get_result(conn)
            .await?;
        one_with_totals(conn, row).await
    }

    async fn lock(conn: &mut Conn, id: BudgetLineId) -> Result<Option<Self>, ApiError> {
        let row: Option<BudgetLineRow> = budget_lines::table
            .find(id)
            .filter(budget_lines::deleted_at.is_null())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        match row {
            Some(row) => Ok(Some(one_with_totals(conn, row).await?)),
            None => Ok(None),
        }
    }

    /// `currency` is not written: it is the study's, which cannot change while the study has
    /// live lines.
    async fn write(
        conn: &mut Conn,
        id: BudgetLineId,
        fields: &BudgetLineFields,
    ) -> Result<Self, ApiError> {
        let row: BudgetLineRow = diesel::update(budget_lines::table.find(id))
            .set((
                fields,
                budget_lines::version.eq(budget_lines::version + 1),
                budget_lines::updated_at.eq(diesel::dsl::now),
            ))
            .returning(BudgetLineRow::as_returning())
            .get_result(conn)
            .await?;
        one_with_totals(conn, row).await
    }

    async fn mark_deleted(conn: &mut Conn, id: BudgetLineId) -> Result<Self, ApiError> {
        let row: BudgetLineRow = diesel::update(budget_lines::table.find(id))
            .set((
                budget_lines::deleted_at.eq(diesel::dsl::now),
                budget_lines::version.eq(budget_lines::version + 1),
                budget_lines::updated_at.eq(diesel::dsl::now),
            ))
            .returning(BudgetLineRow::as_returning())
            .get_result(conn)
            .await?;
        one_with_totals(conn, row).await
    }

    /// A line needs a live study (locked against deletion and currency changes until the
    /// write commits), stays in its study, is in the study's currency, and names a live
    /// vendor if any.
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &BudgetLineFields,
    ) -> Result<write::Checked, ApiError> {
        if let Some(before) = before
            && before.study_id != fields.study_id
        {
            return Err(ApiError::invalid(
                "study_id",
                "immutable",
                "a budget line cannot move to another study",
            ));
        }
        let study = locks::study_for_child(conn, fields.study_id).await?;
        if let Some(currency) = &fields.currency
            && *currency != study.currency
        {
            return Err(ApiError::invalid(
                "currency",
                "mismatch",
                format!("must be the study's currency, {}", study.currency),
            ));
        }
        locks::named_vendor(
            conn,
            before.map(|b| b.vendor_id),
            fields.vendor_id,
            "vendor_id",
        )
        .await?;
        Ok(write::Checked { study: Some(study) })
    }

    /// A line with live expenses stays. The delete holds the line's row lock, which blocks a
    /// concurrent expense insert (`locks::budget_line_for_child`), so none can appear meanwhile.
    async fn check_deletable(&self, conn: &mut Conn) -> Result<(), ApiError> {
        let live = count_naming!(conn, expenses::budget_line_id, self.id)?;
        refuse_while_named(
            "the budget line still has",
            &[(live, "live expense(s)")],
            "; delete them first",
        )
    }
}
