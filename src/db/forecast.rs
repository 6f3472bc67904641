//! The enrollment forecast's data: each live site's status, dates and reports before t0,
//! read for one study or for many at once (the portfolio), and the forecast assembled
//! with `domain::forecast`. Reads run in the caller's transaction, or in one
//! REPEATABLE READ, read-only transaction of their own (`read_forecast`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Date, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::db::snapshot;
use crate::db::studies::{self, OfStudy, Study, study_ids};
use crate::domain::forecast::{self, EnrollmentForecast, Forecasted, SiteData, StudyData};
use crate::domain::ids::StudyId;
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

/// The live sites of the given studies with their reports of weeks before `t0` (deleted
/// sites and their reports are left out), by study.
pub async fn site_data(
    conn: &mut Conn,
    ids: &[StudyId],
    t0: NaiveDate,
) -> Result<HashMap<StudyId, Vec<SiteData>>, ApiError> {
    let rows: Vec<(OfStudy, SiteData)> = diesel::sql_query(
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
    let mut by_study: HashMap<StudyId, Vec<SiteData>> = HashMap::new();
    for (of, site) in rows {
        by_study.entry(of.study_id).or_default().push(site);
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
    let id = study.id;
    let mut sites = site_data(conn, &[id], forecast::clock(as_of)).await?;
    forecast::forecast(
        id,
        &study_data(study),
        sites.remove(&id).unwrap_or_default(),
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
) -> Result<HashMap<StudyId, Option<Forecasted>>, ApiError> {
    let ids = study_ids(studies);
    let mut sites = site_data(conn, &ids, forecast::clock(as_of)).await?;
    let mut out = HashMap::new();
    for (study, id) in studies.iter().zip(ids) {
        let data = sites.remove(&id).unwrap_or_default();
        let forecasted = match forecast::forecast(id, &study_data(study), data, as_of, None) {
            Ok(f) => Some(f),
            Err(ApiError::Validation(_)) => None,
            Err(other) => return Err(other),
        };
        out.insert(id, forecasted);
    }
    Ok(out)
}

/// One study and the day a read is as of (`as_of`, default the transaction's date), in
/// the caller's snapshot.
pub async fn study_on(
    conn: &mut Conn,
    id: StudyId,
    as_of: Option<NaiveDate>,
) -> Result<(Study, NaiveDate), ApiError> {
    let as_of = match as_of {
        Some(day) => day,
        None => today(conn).await?,
    };
    Ok((studies::find(conn, id, &Scope::All).await?, as_of))
}

/// `GET /studies/{id}/enrollment-forecast`, in one REPEATABLE READ, read-only snapshot.
/// `as_of` defaults to the transaction's date.
pub async fn read_forecast(
    conn: &mut Conn,
    id: StudyId,
    as_of: Option<NaiveDate>,
    prior: Option<(f64, f64)>,
) -> Result<EnrollmentForecast, ApiError> {
    snapshot!(conn, async move |conn| {
        let (study, as_of) = study_on(conn, id, as_of).await?;
        Ok(forecast_of(conn, &study, as_of, prior).await?.answer)
    })
}
