//! The exchange standards at the HTTP edge: `GET /studies/{id}/fhir` (HL7 FHIR R5),
//! `GET /studies/{id}/sdtm/dv` (CDISC SDTM DV as Dataset-JSON 1.1 or CSV) and
//! `POST /studies/import/ctgov` (a ClinicalTrials.gov record). The mappings live in
//! `crate::standards` and are documented in `docs/standards.md`.
//!
//! Who reads the exports: whoever reads the study (outside the caller's scope: 404). They
//! hold what the caller may read of it: a `site` client's bundle lists its own sites, its
//! DV dataset its own sites' deviations; a study's enrolled total goes only to the roles
//! that read its metrics.

use crate::domain::ids::StudyId;
use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::export::{CSV_CONTENT_TYPE, Format};
use crate::api::extract::{ChangeReason, JsonDocument};
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::sites::Site;
use crate::db::write::Record;
use crate::domain::enums::EntityType;
use crate::domain::policy::Operation;
use crate::domain::tabular::CsvEncoder;
use crate::error::{ApiError, ApiResult, Problem};
use crate::standards::import::ImportAnswer;
use crate::standards::sdtm::DatasetJson;
use crate::standards::{ctgov, fhir, import, sdtm};

/// The header that counts the deviations the DV dataset leaves out.
pub const EXCLUDED_HEADER: &str = "X-Excluded-Deviations";

/// The reason kept with the audit events of an import sent without `X-Change-Reason`.
pub const DEFAULT_IMPORT_REASON: &str = "ClinicalTrials.gov import";

/// A study as FHIR R5
///
/// An HL7 FHIR R5 `Bundle` of type `collection`: one `ResearchStudy` for the study, and per
/// live site a site-level `ResearchStudy` (`partOf` the study, its `site` the site's
/// `Location`) and a `Location`. Every entry's `fullUrl` is `urn:uuid:<id>`; references
/// between entries use those URLs. The codes and systems are tabled in `docs/standards.md`.
/// Whoever reads the study; the bundle holds the sites the caller reads, and
/// `recruitment.actualNumber` only what the caller may read of enrollment.
#[utoipa::path(
    operation_id = "read_study_fhir",
    tag = "standards",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "An R5 `Bundle` (type `collection`)",
        content_type = "application/fhir+json", body = Object,
        example = json!({"resourceType": "Bundle", "type": "collection", "timestamp": "2026-12-01T09:30:00Z",
            "entry": [{"fullUrl": "urn:uuid:0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "resource": {
                "resourceType": "ResearchStudy", "id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
                "identifier": [{"use": "official", "system": "urn:trialops:protocol-number", "value": "TOP-2026-001"}],
                "title": "A Phase 3 Study of Examplumab", "status": "active",
                "phase": {"coding": [{"system": "http://hl7.org/fhir/research-study-phase", "code": "phase-3"}]},
                "progressStatus": [{"state": {"coding": [{"system": "http://hl7.org/fhir/research-study-status", "code": "recruiting"}]}}],
                "recruitment": {"targetNumber": 480, "actualNumber": 112}}}]}))),
)]
#[get("/studies/{id}/fhir")]
pub async fn read_fhir(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<StudyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let study = db::studies::find(&mut conn, id.into_inner(), &scope).await?;
    let sites =
        db::sites::live_in_study(&mut conn, study.id, &caller.row_scope(EntityType::Site)).await?;
    let reports = caller.row_scope(EntityType::EnrollmentReport);
    let enrolled = db::enrollment::enrolled_by_site(&mut conn, study.id, &reports).await?;
    // Roles that read a study's metrics read all of its enrollment reports: the sum over
    // them is the study's total.
    let study_enrolled = caller
        .require_metrics()
        .ok()
        .map(|()| enrolled.iter().map(|(_, n)| n).sum());
    // A site's count, for a caller who reads the site's reports (0 before the first one).
    let site_enrolled = |site: &Site| {
        reports.allows(site.keys()).then(|| {
            enrolled
                .iter()
                .find(|(id, _)| *id == site.id)
                .map_or(0, |(_, n)| *n)
        })
    };
    let bundle = fhir::bundle(&fhir::BundleInput {
        study: &study,
        sites: &sites,
        study_enrolled,
        site_enrolled: &site_enrolled,
        timestamp: chrono::Utc::now(),
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, fhir::MEDIA_TYPE))
        .body(bundle.to_string()))
}

/// A study's protocol deviations as CDISC SDTM DV
///
/// The DV domain as CDISC Dataset-JSON 1.1, or with `Accept: text/csv` the same table as
/// CSV (RFC 4180, a header row of the variable names). One record per deviation that names
/// a participant and is not `invalidated`; the deviations left out are counted in
/// `X-Excluded-Deviations`. Variables, in order: `STUDYID`, `DOMAIN`, `USUBJID`, `DVSEQ`,
/// `DVREFID`, `DVSPID`, `DVTERM`, `DVDECOD`, `DVCAT`, `DVSTDTC` (their sources are tabled
/// in `docs/standards.md`). Whoever reads the study; a `site` client gets its own sites'
/// deviations.
#[utoipa::path(
    operation_id = "read_study_sdtm_dv",
    tag = "standards",
    params(("id" = Uuid, Path, description = "Study id")),
    responses((status = 200, description = "The DV dataset",
        headers(("X-Excluded-Deviations" = u32, description = "Deviations left out: no participant, or invalidated")),
        content(
            (DatasetJson = "application/json"),
            (String = "text/csv", example = json!("STUDYID,DOMAIN,USUBJID,DVSEQ,DVREFID,DVSPID,DVTERM,DVDECOD,DVCAT,DVSTDTC\r\n"))
        ))),
)]
#[get("/studies/{id}/sdtm/dv")]
pub async fn read_sdtm_dv(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<StudyId>,
    format: Format,
) -> ApiResult<HttpResponse> {
    let mut conn = state.db.get().await?;
    let scope = caller.study_scope(&mut conn).await?;
    let study = db::studies::find(&mut conn, id.into_inner(), &scope).await?;
    let sources = db::deviations::dv_sources(
        &mut conn,
        study.id,
        &caller.row_scope(EntityType::Deviation),
    )
    .await?;
    drop(conn);
    let table = sdtm::table(&study.protocol_number, sources);
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((EXCLUDED_HEADER, table.excluded.to_string()))
        .insert_header((header::VARY, "Accept"));
    match format {
        Format::Csv => {
            let names = sdtm::column_names();
            let mut encoder = CsvEncoder::with_columns(names.clone())?;
            let records: Vec<serde_json::Value> = table
                .rows
                .into_iter()
                .map(|row| serde_json::Value::Object(names.iter().cloned().zip(row).collect()))
                .collect();
            encoder.write(&records)?;
            Ok(answer
                .insert_header((header::CONTENT_TYPE, CSV_CONTENT_TYPE))
                .body(encoder.take()))
        }
        Format::Json => {
            let originator = study.sponsor_name.as_deref().unwrap_or("TrialOps");
            let dataset = sdtm::dataset(
                &study.protocol_number,
                originator,
                table.rows,
                chrono::Utc::now(),
            );
            Ok(answer.json(dataset))
        }
    }
}

/// Query parameters of the import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Answer what the import would do, and write nothing.
    pub dry_run: Option<bool>,
    /// ISO 4217 code of the study's budget currency: required to create a study (a record
    /// carries none); on an update, it changes the study's currency.
    pub currency: Option<String>,
}

/// Import a ClinicalTrials.gov record
///
/// The body is one study record as `GET https://clinicaltrials.gov/api/v2/studies/{nctId}`
/// answers it, or `{"studies": [record]}` (up to 5 MiB); the service never calls out. The
/// study is created, or, when a live study has the record's `nct_id`, updated; its
/// locations become sites, matched to the study's sites on (facility, city, country) so
/// a second import of the same record changes nothing. Sites the record no longer lists
/// stay as they are (`not_in_record`). The mapping is tabled in `docs/standards.md`.
///
/// Everything is written like any other write: audited (with `X-Change-Reason`, by default
/// "ClinicalTrials.gov import") and on the change feed. `?dry_run=true` answers the same
/// without writing. 201 when the study is created, 200 otherwise. Two live studies with the
/// record's `nct_id`, or another study with its protocol number: 409. A record that cannot
/// be imported (no `orgStudyIdInfo.id`, an expanded-access status, an unknown phase
/// combination, creating without `currency`): 422 naming each field. `admin` and `sponsor`.
#[utoipa::path(
    operation_id = "import_ctgov_study",
    tag = "standards",
    params(ImportParams),
    request_body(content = Object, content_type = "application/json",
        description = "A ClinicalTrials.gov API v2 study record, or `{\"studies\": [record]}`",
        example = json!({"protocolSection": {
            "identificationModule": {"nctId": "NCT06008288", "orgStudyIdInfo": {"id": "JAB-21822-2001"},
                "officialTitle": "A Single-arm, Multicenter, Open-label Phase II Clinical Study ..."},
            "statusModule": {"overallStatus": "RECRUITING", "startDateStruct": {"date": "2023-10-27", "type": "ACTUAL"},
                "completionDateStruct": {"date": "2027-12-31", "type": "ESTIMATED"}},
            "designModule": {"phases": ["PHASE2"], "enrollmentInfo": {"count": 88, "type": "ESTIMATED"}},
            "contactsLocationsModule": {"locations": [{"facility": "Anhui Provincial Cancer Hospital",
                "status": "RECRUITING", "city": "Hefei", "country": "China"}]}}})),
    responses(
        (status = 201, description = "The study was created; `Location` names it", body = ImportAnswer),
        (status = 200, description = "The study was updated or unchanged, or a dry run", body = ImportAnswer),
        (status = 413, description = "Body over 5 MiB", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/studies/import/ctgov")]
pub async fn import_ctgov(
    caller: Caller,
    state: web::Data<AppState>,
    reason: ChangeReason,
    params: web::Query<ImportParams>,
    body: JsonDocument,
) -> ApiResult<HttpResponse> {
    caller.require(EntityType::Study, Operation::Create)?;
    caller.require(EntityType::Site, Operation::Create)?;
    let mapped = ctgov::map_record(ctgov::the_record(&body.0)?)?;
    let reason = reason
        .0
        .unwrap_or_else(|| DEFAULT_IMPORT_REASON.to_string());
    let ctx = caller.write_context(Some(reason));
    let params = params.into_inner();
    let mut conn = state.db.get().await?;
    let (created, answer) = import::import(
        &mut conn,
        &ctx,
        &mapped,
        params.currency.as_deref(),
        params.dry_run.unwrap_or(false),
    )
    .await?;
    match (created, answer.study.id) {
        (true, Some(id)) => Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/studies/{id}")))
            .json(answer)),
        (true, None) => Err(ApiError::Internal(anyhow::anyhow!(
            "an import created a study without an id"
        ))),
        (false, _) => Ok(HttpResponse::Ok().json(answer)),
    }
}
