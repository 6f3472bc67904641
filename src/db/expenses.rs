//! Expenses: the row, the writable fields (what a POST takes and a PATCH is merged into,
//! with their rules), and every query on it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::db::schema::expenses;
use crate::db::scope::{Absent, Keys};
use crate::db::write::{self, Readable, Record};
use crate::db::{Conn, filter_eq, keyset_page, locks};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::EntityType;
use crate::domain::ids::{BudgetLineId, ExpenseId, StudyId};

use crate::domain::expenses::positive;
use crate::domain::money::Money;
use crate::domain::policy::{RowKeys, RowScope};
use crate::domain::validation::currency_code;
use crate::error::ApiError;

/// An expense as a client writes it (POST body; PATCH bodies are merged into it).
///
/// An expense's `study_id` and `currency` are always its budget line's: `study_id` is not
/// sent at all, and `currency` may be left out.
// `currency` is checked, never stored from here (`skip_insertion`, `skip_update`): the
// insert and update take the line's `study_id` and `currency`.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema, Insertable, AsChangeset,
)]
#[diesel(table_name = expenses, treat_none_as_null = true, treat_none_as_default_value = false)]
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
    pub budget_line_id: BudgetLineId,
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

/// An expense, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = expenses)]
#[schema(example = json!({
    "id": "0193f0e8-3b4c-7d5e-8f60-7a8b9c0d1e2f", "external_id": "AP-INV-2026-0117",
    "study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "budget_line_id": "0193f0e7-2a3b-7c4d-9e5f-6a7b8c9d0e1f",
    "amount": "12500.00", "currency": "EUR", "incurred_on": "2026-04-30",
    "invoice_number": "INV-2026-0117", "description": "Monitoring visits, April",
    "created_at": "2026-05-02T08:15:00Z", "updated_at": "2026-05-02T08:15:00Z", "deleted_at": null, "version": 1
}))]
pub struct Expense {
    pub id: ExpenseId,
    pub external_id: Option<String>,
    /// The study of the expense's budget line.
    pub study_id: StudyId,
    pub budget_line_id: BudgetLineId,
    pub amount: Money,
    /// ISO 4217 code: always the budget line's (and so the study's) currency.
    pub currency: String,
    pub incurred_on: NaiveDate,
    pub invoice_number: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the expense was deleted (visible with `include_deleted=true` only).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Starts at 1, +1 on every change; the `ETag` of the expense.
    pub version: i32,
}

/// Filters of `GET /expenses` beyond the common list parameters.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpenseFilter {
    pub study_id: Option<StudyId>,
    pub budget_line_id: Option<BudgetLineId>,
    /// ISO 4217 code: the currency of the expense's line (its study's).
    pub currency: Option<String>,
    /// Exact partner-system id.
    pub external_id: Option<String>,
    /// Only expenses incurred on or after this day (`YYYY-MM-DD`).
    pub incurred_from: Option<NaiveDate>,
    /// Only expenses incurred on or before this day (`YYYY-MM-DD`).
    pub incurred_to: Option<NaiveDate>,
}

fn visible(scope: &RowScope) -> expenses::BoxedQuery<'static, diesel::pg::Pg> {
    // Expenses are scoped by study only: site and vendor callers see none.
    let keys = Keys {
        study: expenses::study_id,
        site: Absent,
        vendor: Absent,
    };
    keys.visible(expenses::table.into_boxed(), scope)
}

pub async fn list(
    conn: &mut Conn,
    scope: &RowScope,
    filter: &ExpenseFilter,
    page: &PageRequest,
) -> QueryResult<Page<Expense>> {
    let mut query = filter_eq!(
        visible(scope),
        filter,
        expenses::{study_id, budget_line_id, currency, external_id}
    );
    if let Some(from) = filter.incurred_from {
        query = query.filter(expenses::incurred_on.ge(from));
    }
    if let Some(to) = filter.incurred_to {
        query = query.filter(expenses::incurred_on.le(to));
    }
    let rows: Vec<Expense> = keyset_page!(query, expenses, deleted_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |expense| expense.id))
}

impl Readable for Expense {
    write::read_as_stored!(expenses);
}

impl Record for Expense {
    type Fields = ExpenseFields;
    type Id = ExpenseId;
    const ENTITY: EntityType = EntityType::Expense;

    fn keys(&self) -> RowKeys {
        RowKeys {
            study_id: Some(self.study_id),
            site_id: None,
            vendor_id: None,
        }
    }
    /// The writable part, as a PATCH is merged into it.
    fn fields(&self) -> ExpenseFields {
        ExpenseFields {
            external_id: self.external_id.clone(),
            budget_line_id: self.budget_line_id,
            amount: self.amount,
            currency: Some(self.currency.clone()),
            incurred_on: self.incurred_on,
            invoice_number: self.invoice_number.clone(),
            description: self.description.clone(),
        }
    }

    write::table_steps!(soft_delete_own_writes expenses);

    /// `study_id` and `currency` are the line's (locked by `check`), never the client's.
    async fn insert(
        conn: &mut Conn,
        id: ExpenseId,
        fields: &ExpenseFields,
    ) -> Result<Self, ApiError> {
        let line = locks::budget_line_for_child(conn, fields.budget_line_id).await?;
        Ok(diesel::insert_into(expenses::table)
            .values((
                expenses::id.eq(id),
                expenses::study_id.eq(line.study_id),
                expenses::currency.eq(line.currency),
                fields,
            ))
            .get_result(conn)
            .await?)
    }

    /// `study_id` and `currency` are written from the (possibly new) line, exactly as on
    /// insert; `check` has made sure the line is of the same study.
    async fn write(
        conn: &mut Conn,
        id: ExpenseId,
        fields: &ExpenseFields,
    ) -> Result<Self, ApiError> {
        let line = locks::budget_line_for_child(conn, fields.budget_line_id).await?;
        Ok(diesel::update(expenses::table.find(id))
            .set((
                fields,
                expenses::study_id.eq(line.study_id),
                expenses::currency.eq(line.currency),
                expenses::version.eq(expenses::version + 1),
                expenses::updated_at.eq(diesel::dsl::now),
            ))
            .get_result(conn)
            .await?)
    }

    /// The line must be live (and is locked `FOR KEY SHARE`, so it cannot be deleted before the
    /// expense commits), of the expense's study, and in the currency the client sent, if any.
    async fn check(
        conn: &mut Conn,
        before: Option<&Self>,
        fields: &ExpenseFields,
    ) -> Result<write::Checked, ApiError> {
        let line = locks::budget_line_for_child(conn, fields.budget_line_id).await?;
        if let Some(before) = before
            && line.study_id != before.study_id
        {
            return Err(ApiError::invalid(
                "budget_line_id",
                "other_study",
                "an expense can only move to a budget line of its own study",
            ));
        }
        if let Some(currency) = &fields.currency
            && *currency != line.currency
        {
            return Err(ApiError::invalid(
                "currency",
                "mismatch",
                format!("must be the budget line's currency, {}", line.currency),
            ));
        }
        Ok(write::Checked::default())
    }
}
