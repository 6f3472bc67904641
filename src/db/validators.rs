//! The validator of computed answers (a study's metrics, curve, forecast, signals, and the
//! portfolio): a number that every committed write touching their inputs changes.
//!
//! No row of these tables is ever deleted (deletes are soft), every insert adds a row and
//! every update adds 1 to the row's `version`, so `count(*) + sum(version)` over the rows
//! an answer reads only ever grows, and grows with each write, visible the moment the
//! writing transaction commits. It costs an index scan of the study's rows, no write and no
//! lock, and far less than the figures it spares.

use std::sync::LazyLock;

use crate::domain::ids::StudyId;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;

use crate::db::Conn;

#[derive(QueryableByName)]
struct Changes {
    #[diesel(sql_type = BigInt)]
    changes: i64,
}

/// Tables a study's figures read, each with a `study_id` column.
const STUDY_TABLES: &[&str] = &[
    "sites",
    "milestones",
    "budget_lines",
    "expenses",
    "risks",
    "deviations",
    "enrollment_reports",
];

fn sql(filtered: bool) -> String {
    let filter = |column: &str| {
        if filtered {
            format!(" WHERE {column} = ANY($1)")
        } else {
            String::new()
        }
    };
    let mut parts = vec![format!(
        "(SELECT count(*) + coalesce(sum(version), 0) FROM studies{})",
        filter("id")
    )];
    parts.extend(STUDY_TABLES.iter().map(|table| {
        format!(
            "(SELECT count(*) + coalesce(sum(version), 0) FROM {table}{})",
            filter("study_id")
        )
    }));
    // Milestones name their vendor; vendors are few and have no study.
    parts.push("(SELECT count(*) + coalesce(sum(version), 0) FROM vendors)".into());
    format!("SELECT ({})::int8 AS changes", parts.join(" + "))
}

static FILTERED: LazyLock<String> = LazyLock::new(|| sql(true));
static ALL: LazyLock<String> = LazyLock::new(|| sql(false));

/// The change count of the given studies' data, or of all studies' with `None`.
pub async fn changes(conn: &mut Conn, studies: Option<&[StudyId]>) -> diesel::QueryResult<i64> {
    let row: Changes = match studies {
        Some(ids) => {
            diesel::sql_query(FILTERED.as_str())
                .bind::<Array<SqlUuid>, _>(ids)
                .get_result(conn)
                .await?
        }
        None => diesel::sql_query(ALL.as_str()).get_result(conn).await?,
    };
    Ok(row.changes)
}
