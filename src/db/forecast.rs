//! The enrollment forecast's data: each live site's status, dates and reports before t0,
//! read for one study or for many at once (the portfolio), and the forecast assembled
//! with `domain::forecast`. Reads run in the caller's transaction, or in one
//! REPEATABLE READ, read-only transaction of their own (`read_forecast`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::studies::{self, Study};
use crate::domain::enums::SiteStatus;
use crate::domain::forecast::{self, EnrollmentForecast, Forecasted, SiteData, StudyData};
use crate::domain::policy::Scope;
use crate::error::ApiError;

type SqlUuid = diesel::sql_types::Uuid;

#[derive(QueryableByName)]
struct Today {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// The transaction's date (UTC): the default `as_of`.
pub async fn today(conn: &mut Conn) -> Result<NaiveDate, ApiError> {
    Ok(diesel::sql_query("SELECT now() AS now")
        .get_result::<Today>(conn)
        .await?
        .now
        .date_naive())
}

#[derive(QueryableByName)]
struct SiteRow {
    #[diesel(sql_type = SqlUuid)]
    study_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    site_id: Uuid,
    #[diesel(sql_type = Text)]
    site_number: String,
    #[diesel(sql_type = Text)]
    status: SiteStatus,
    #[diesel(sql_type = Nullable<Date>)]
    activated_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    planned_activation_on: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    enrolled: i64,
    #[diesel(sql_type = Nullable<Date>)]
    first_week: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    last_week: Option<NaiveDate>,
}

/// The live sites of the given studies with their reports of weeks before `t0` (deleted
/// sites and their reports are left out), by study.
pub async fn site_data(
    conn: &mut Conn,
    ids: &[Uuid],
    t0: NaiveDate,
) -> Result<HashMap<Uuid, Vec<SiteData>>, ApiError> {
    let rows: Vec<SiteRow> = diesel::sql_query(
        "SELECT s.study_id, s.id AS site_id, s.site_number::text AS site_number, s.status,
                s.activated_on, s.planned_activation_on,
                coalesce(e.enrolled, 0)::int8 AS enrolled, e.first_week, e.last_week
         FROM sites s
         LEFT JOIN (SELECT site_id, sum(enrolled) AS enrolled,
                           min(week_start) AS first_week, max(week_start) AS last_week
                    FROM enrollment_reports
                    WHERE study_id = ANY($1) AND week_start < $2
                    GROUP BY site_id) e ON e.site_id = s.id
         WHERE s.study_id = ANY($1) AND s.deleted_at IS NULL
         ORDER BY s.site_number, s.id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Date, _>(t0)
    .load(conn)
    .await?;
    let mut by_study: HashMap<Uuid, Vec<SiteData>> = HashMap::new();
    for r in rows {
        by_study.entry(r.study_id).or_default().push(SiteData {
            site_id: r.site_id,
            site_number: r.site_number,
            status: r.status,
            activated_on: r.activated_on,
            planned_activation_on: r.planned_activation_on,
            enrolled: r.enrolled,
            first_week: r.first_week,
            last_week: r.last_week,
        });
    }
    Ok(by_study)
}

fn study_data(study: &Study) -> StudyData {
    StudyData {
        target: study.target_enrollment,
        planned_start: study.planned_start_date,
        planned_end: study.planned_end_date,
    }
}

/// One study's forecast at `as_of`, in the caller's transaction.
pub async fn forecast_of(
    conn: &mut Conn,
    study: &Study,
    as_of: NaiveDate,
    prior: Option<(f64, f64)>,
) -> Result<Forecasted, ApiError> {
    let mut sites = site_data(conn, &[study.id.uuid()], forecast::clock(as_of)).await?;
    forecast::forecast(
        study.id.uuid(),
        &study_data(study),
        sites.remove(&study.id.uuid()).unwrap_or_default(),
        as_of,
        prior,
    )
}

/// The forecasts of many studies at `as_of` with fitted or planning priors (one query
/// for all). A study whose forecast lacks data (the 422 of the endpoint) has `None`.
pub async fn forecasts(
    conn: &mut Conn,
    studies: &[Study],
    as_of: NaiveDate,
) -> Result<HashMap<Uuid, Option<Forecasted>>, ApiError> {
    let ids: Vec<Uuid> = studies.iter().map(|s| s.id.uuid()).collect();
    let mut sites = site_data(conn, &ids, forecast::clock(as_of)).await?;
    let mut out = HashMap::new();
    for study in studies {
        let data = sites.remove(&study.id.uuid()).unwrap_or_default();
        let forecasted =
            match forecast::forecast(study.id.uuid(), &study_data(study), data, as_of, None) {
                Ok(f) => Some(f),
                Err(ApiError::Validation(_)) => None,
                Err(other) => return Err(other),
            };
        out.insert(study.id.uuid(), forecasted);
    }
    Ok(out)
}

/// `GET /studies/{id}/enrollment-forecast`, in one REPEATABLE READ, read-only snapshot.
/// `as_of` defaults to the transaction's date.
pub async fn read_forecast(
    conn: &mut Conn,
    id: Uuid,
    as_of: Option<NaiveDate>,
    prior: Option<(f64, f64)>,
) -> Result<EnrollmentForecast, ApiError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async move |conn| {
            let as_of = match as_of {
                Some(day) => day,
                None => today(conn).await?,
            };
            let study = studies::find(conn, id.into(), &Scope::All).await?;
            Ok(forecast_of(conn, &study, as_of, prior).await?.answer)
        })
        .await
}
