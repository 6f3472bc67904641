//! The ClinicalTrials.gov import: compares a mapped record (`standards::ctgov`) with the
//! database, answers what it would do, and, unless it is a dry run, does it through the
//! one write path (`db::write`), so every created or changed study and site is audited
//! and on the change feed like any other write.
//!
//! The plan and the answer are the same code for a dry run and a real import. A real
//! import plans inside its transaction, after an advisory lock on the NCT id (two imports
//! of one record run one after the other) and with the study and its sites locked, so
//! what it writes is exactly what it planned.

use diesel_async::AsyncConnection;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::audit::{self, WriteContext};
use crate::db::sites::Site;
use crate::db::sites::SiteFields;
use crate::db::studies::Study;
use crate::db::studies::StudyFields;
use crate::db::write::{self, Record};
use crate::db::{self, Conn};
use crate::domain::enums::SiteStatus;
use crate::domain::ids::{SiteId, StudyId};
use crate::domain::validation;
use crate::domain::versioning::IfMatch;
use crate::error::{ApiError, FieldError, field_errors};
use crate::standards::ctgov::{Location, Mapped, site_key};

/// What the import did (or, in a dry run, would do) to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    Create,
    Update,
    Unchanged,
    /// A site of the study that the record no longer lists: left as it is.
    NotInRecord,
}

/// The study's part of the answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StudyOutcome {
    /// `create`, `update` or `unchanged`.
    pub action: ImportAction,
    /// The study's id; `null` in a dry run that would create it.
    pub id: Option<StudyId>,
    /// `{"field": {"old": .., "new": ..}}` for every field the import sets (on a create,
    /// `old` is `null`), as the audit trail records it.
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
}

/// One site's part of the answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SiteOutcome {
    pub action: ImportAction,
    /// The site's id; `null` in a dry run that would create it.
    pub id: Option<SiteId>,
    pub site_number: String,
    pub name: String,
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
    pub status: SiteStatus,
}

/// The answer of `POST /api/v1/studies/import/ctgov`, the same for a dry run and a real
/// import.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "study": {"action": "create", "id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
              "changes": {"protocol_number": {"old": null, "new": "JAB-21822-2001"}, "phase": {"old": null, "new": "phase2"}}},
    "sites": [{"action": "create", "id": "0193f0e5-0c2d-7a11-8f3e-6b5a4c3d2e1f", "site_number": "001",
               "name": "Anhui Provincial Cancer Hospital", "city": "Hefei", "country": "CN", "status": "enrolling"}],
    "warnings": ["protocolSection.statusModule.startDateStruct.date is 2023-10 (a month): imported as 2023-10-01"],
    "ignored": ["derivedSection", "protocolSection.statusModule.primaryCompletionDateStruct"]
}))]
pub struct ImportAnswer {
    pub study: StudyOutcome,
    pub sites: Vec<SiteOutcome>,
    /// What a person should check: dates read as the 1st of a month, locations skipped,
    /// values that could not be imported.
    pub warnings: Vec<String>,
    /// Paths of the record's fields that are not imported.
    pub ignored: Vec<String>,
}

enum StudyStep {
    Create(StudyFields),
    Update {
        before: Box<Study>,
        after: StudyFields,
    },
}

enum SiteStep {
    Create(SiteFields),
    Update {
        before: Box<Site>,
        after: SiteFields,
    },
    NotInRecord(Box<Site>),
}

struct Plan {
    study: StudyStep,
    sites: Vec<SiteStep>,
    warnings: Vec<String>,
}

/// A 422 naming `currency`, the query parameter.
fn currency_error(message: &str) -> ApiError {
    ApiError::invalid("currency", "required", message)
}

/// The study fields the record sets over `current` (`None`: a new study).
fn study_fields(
    current: Option<StudyFields>,
    mapped: &Mapped,
    currency: Option<&str>,
) -> Result<StudyFields, ApiError> {
    let mut fields = match current {
        Some(fields) => fields,
        None => StudyFields {
            external_id: None,
            protocol_number: String::new(),
            title: String::new(),
            short_title: None,
            phase: mapped.phase,
            status: mapped.status,
            therapeutic_area: None,
            indication: None,
            sponsor_name: None,
            nct_id: None,
            euct_number: None,
            ind_number: None,
            currency: currency
                .ok_or_else(|| currency_error("a ClinicalTrials.gov record carries no currency: creating a study needs ?currency= (an ISO 4217 code)"))?
                .to_string(),
            target_enrollment: 0,
            enrollment_buffer_pct: 0,
            planned_start_date: None,
            planned_end_date: None,
            actual_start_date: None,
            actual_end_date: None,
            risk_escalation_threshold: crate::domain::studies::DEFAULT_RISK_ESCALATION_THRESHOLD,
            deviation_reporting_days: crate::domain::studies::DEFAULT_DEVIATION_REPORTING_DAYS,
            forecast_confidence_threshold:
                crate::domain::studies::DEFAULT_FORECAST_CONFIDENCE_THRESHOLD,
        },
    };
    fields.nct_id = Some(mapped.nct_id.clone());
    fields.protocol_number = mapped.protocol_number.clone();
    fields.title = mapped.title.clone();
    fields.phase = mapped.phase;
    fields.status = mapped.status;
    if let Some(euct) = &mapped.euct_number {
        fields.euct_number = Some(euct.clone());
    }
    if let Some(currency) = currency {
        fields.currency = currency.to_string();
    }
    if let Some(target) = mapped.target_enrollment {
        fields.target_enrollment = target;
    }
    let dates = [
        (&mut fields.planned_start_date, mapped.planned_start_date),
        (&mut fields.actual_start_date, mapped.actual_start_date),
        (&mut fields.planned_end_date, mapped.planned_end_date),
        (&mut fields.actual_end_date, mapped.actual_end_date),
    ];
    for (field, value) in dates {
        if value.is_some() {
            *field = value;
        }
    }
    fields.validate()?;
    Ok(fields)
}

/// A site's fields with the location's facility, city, country and status.
fn site_fields(mut fields: SiteFields, location: &Location) -> Result<SiteFields, ApiError> {
    fields.name = location.name.clone();
    fields.city = location.city.clone();
    fields.country = location.country.clone();
    fields.status = location.status;
    fields.validate().map_err(|errors| {
        // Name the record's field, not ours.
        let path = format!(
            "protocolSection.contactsLocationsModule.locations[{}]",
            location.index
        );
        ApiError::Validation(
            field_errors(&errors)
                .into_iter()
                .map(|e| FieldError::new(format!("{path}.{}", e.field), e.code, e.message))
                .collect(),
        )
    })?;
    Ok(fields)
}

/// The highest number among the study's numeric site numbers (0 without one).
fn highest_site_number(numbers: &[String]) -> u64 {
    numbers
        .iter()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

async fn plan(
    conn: &mut Conn,
    mapped: &Mapped,
    currency: Option<&str>,
    lock: bool,
) -> Result<Plan, ApiError> {
    let mut studies = db::studies::live_with_nct_id(conn, &mapped.nct_id).await?;
    if studies.len() > 1 {
        return Err(ApiError::Conflict(format!(
            "{} live studies are registered as {}: the import cannot tell which to update",
            studies.len(),
            mapped.nct_id
        )));
    }
    let mut existing = studies.pop();
    if let (true, Some(study)) = (lock, &existing) {
        existing = Some(
            Study::lock(conn, study.id)
                .await?
                .ok_or(ApiError::Conflict(
                    "the study changed during the import; retry".into(),
                ))?,
        );
    }
    if let Some(other) =
        db::studies::live_with_protocol_number(conn, &mapped.protocol_number).await?
        && existing.as_ref().is_none_or(|study| study.id != other.id)
    {
        return Err(ApiError::Conflict(format!(
            "another study already has the protocol number {}",
            mapped.protocol_number
        )));
    }
    let study = match existing {
        None => StudyStep::Create(study_fields(None, mapped, currency)?),
        Some(study) => {
            let after = study_fields(Some(study.fields()), mapped, currency)?;
            // The rules the write path checks (a currency cannot change under live budget
            // lines), checked here too so a dry run answers what the import would.
            if after != study.fields() {
                Study::check(conn, Some(&study), &after).await?;
            }
            StudyStep::Update {
                before: Box::new(study),
                after,
            }
        }
    };
    let (study_id, mut unmatched, numbers) = match &study {
        StudyStep::Create(_) => (Uuid::nil().into(), Vec::new(), Vec::new()),
        StudyStep::Update { before, .. } => (
            before.id,
            db::sites::live_in_study_for_import(conn, before.id, lock).await?,
            db::sites::numbers_in_study(conn, before.id).await?,
        ),
    };
    let mut next_number = highest_site_number(&numbers);
    let mut sites = Vec::new();
    let mut errors = Vec::new();
    for location in &mapped.locations {
        let key = location.key();
        let matched = unmatched
            .iter()
            .position(|site| site_key(&site.name, site.city.as_deref(), &site.country) == key)
            .map(|at| unmatched.remove(at));
        let step = match matched {
            Some(site) => site_fields(site.fields(), location).map(|after| SiteStep::Update {
                before: Box::new(site),
                after,
            }),
            None => {
                next_number += 1;
                let fields = SiteFields {
                    external_id: None,
                    study_id,
                    site_number: format!("{next_number:03}"),
                    name: String::new(),
                    institution: None,
                    principal_investigator: None,
                    country: String::new(),
                    city: None,
                    status: SiteStatus::Planned,
                    irb_approved_on: None,
                    activated_on: None,
                    target_enrollment: None,
                    cro_vendor_id: None,
                    planned_activation_on: None,
                };
                site_fields(fields, location).map(SiteStep::Create)
            }
        };
        match step {
            Ok(step) => sites.push(step),
            Err(ApiError::Validation(mut more)) => errors.append(&mut more),
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    sites.extend(
        unmatched
            .into_iter()
            .map(|site| SiteStep::NotInRecord(Box::new(site))),
    );
    Ok(Plan {
        study,
        sites,
        warnings: mapped.warnings.clone(),
    })
}

fn changes(before: Option<&StudyFields>, after: &StudyFields) -> Map<String, Value> {
    let before = before.and_then(|fields| serde_json::to_value(fields).ok());
    let after = serde_json::to_value(after).ok();
    audit::diff(before.as_ref(), after.as_ref())
}

fn site_outcome(action: ImportAction, id: Option<SiteId>, fields: &SiteFields) -> SiteOutcome {
    SiteOutcome {
        action,
        id,
        site_number: fields.site_number.clone(),
        name: fields.name.clone(),
        city: fields.city.clone(),
        country: fields.country.clone(),
        status: fields.status,
    }
}

/// The answer for a plan; `written` holds the ids a real import got (study, then one per
/// created site in order).
fn answer(
    plan: &Plan,
    mapped: &Mapped,
    study_id: Option<StudyId>,
    created_sites: &[SiteId],
) -> ImportAnswer {
    let study = match &plan.study {
        StudyStep::Create(fields) => StudyOutcome {
            action: ImportAction::Create,
            id: study_id,
            changes: changes(None, fields),
        },
        StudyStep::Update { before, after } => {
            let changes = changes(Some(&before.fields()), after);
            StudyOutcome {
                action: if changes.is_empty() {
                    ImportAction::Unchanged
                } else {
                    ImportAction::Update
                },
                id: Some(before.id),
                changes,
            }
        }
    };
    let mut created = created_sites.iter();
    let sites = plan
        .sites
        .iter()
        .map(|step| match step {
            SiteStep::Create(fields) => {
                site_outcome(ImportAction::Create, created.next().copied(), fields)
            }
            SiteStep::Update { before, after } => {
                let action = if before.fields() == *after {
                    ImportAction::Unchanged
                } else {
                    ImportAction::Update
                };
                site_outcome(action, Some(before.id), after)
            }
            SiteStep::NotInRecord(site) => {
                site_outcome(ImportAction::NotInRecord, Some(site.id), &site.fields())
            }
        })
        .collect();
    ImportAnswer {
        study,
        sites,
        warnings: plan.warnings.clone(),
        ignored: mapped.ignored.clone(),
    }
}

/// Writes a plan through the write path: answers the study's id and the ids of the sites
/// it created, in order.
async fn apply(
    conn: &mut Conn,
    ctx: &WriteContext,
    plan: &Plan,
) -> Result<(StudyId, Vec<SiteId>), ApiError> {
    let study_id: StudyId = match &plan.study {
        StudyStep::Create(fields) => {
            let study: Study = write::create(conn, ctx, fields.clone()).await?;
            study.id
        }
        StudyStep::Update { before, after } => {
            update_changed::<Study>(conn, ctx, before, after).await?;
            before.id
        }
    };
    let mut created = Vec::new();
    for step in &plan.sites {
        match step {
            SiteStep::Create(fields) => {
                let mut fields = fields.clone();
                fields.study_id = study_id;
                let site: Site = write::create(conn, ctx, fields).await?;
                created.push(site.id);
            }
            SiteStep::Update { before, after } => {
                update_changed::<Site>(conn, ctx, before, after).await?
            }
            SiteStep::NotInRecord(_) => {}
        }
    }
    Ok((study_id, created))
}

/// Writes the record's fields mapped from the record, when they differ from its stored
/// ones, through the write path without `If-Match`: the import answers for the whole record.
async fn update_changed<R>(
    conn: &mut Conn,
    ctx: &WriteContext,
    before: &R,
    after: &R::Fields,
) -> Result<(), ApiError>
where
    R: Record + Sync,
    R::Fields: Clone,
{
    if before.fields() != *after {
        let change = |_: &R| Ok(after.clone());
        write::update::<R>(conn, ctx, before.id(), |_| true, &IfMatch::any(), change).await?;
    }
    Ok(())
}

/// Validates the `currency` query parameter (422 naming it).
pub fn check_currency(currency: Option<&str>) -> Result<(), ApiError> {
    match currency {
        Some(code) => validation::currency_code(code).map_err(|e| {
            ApiError::invalid(
                "currency",
                "format",
                e.message.map(|m| m.to_string()).unwrap_or_default(),
            )
        }),
        None => Ok(()),
    }
}

/// Imports a mapped record (see the module comment). Answers whether the study was
/// created, and the answer.
pub async fn import(
    conn: &mut Conn,
    ctx: &WriteContext,
    mapped: &Mapped,
    currency: Option<&str>,
    dry_run: bool,
) -> Result<(bool, ImportAnswer), ApiError> {
    check_currency(currency)?;
    if dry_run {
        let plan = plan(conn, mapped, currency, false).await?;
        return Ok((false, answer(&plan, mapped, None, &[])));
    }
    conn.transaction::<_, ApiError, _>(async |conn| {
        lock_record(conn, &mapped.nct_id).await?;
        let plan = plan(conn, mapped, currency, true).await?;
        let (study_id, created) = apply(conn, ctx, &plan).await?;
        let is_new = matches!(plan.study, StudyStep::Create(_));
        Ok((is_new, answer(&plan, mapped, Some(study_id), &created)))
    })
    .await
}

/// The transaction-scoped advisory lock of one NCT id.
async fn lock_record(conn: &mut Conn, nct_id: &str) -> Result<(), ApiError> {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtext('trialops ctgov import'), hashtext($1))",
    )
    .bind::<Text, _>(nct_id)
    .execute(conn)
    .await?;
    Ok(())
}
