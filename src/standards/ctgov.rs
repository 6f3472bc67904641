//! A ClinicalTrials.gov API v2 study record, read into what TrialOps imports from it: the
//! study's fields, its locations as sites, the warnings a person should read, and the
//! record's fields that are not imported. Pure code: `standards::import` compares the
//! result with the database and writes it.
//!
//! The mapping is documented as tables in `docs/standards.md`; the refusals (422) name the
//! record's field by its path (`protocolSection.identificationModule.orgStudyIdInfo.id`).

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::domain::enums::{SiteStatus, StudyPhase, StudyStatus};
use crate::domain::validation;
use crate::error::{ApiError, FieldError};
use crate::standards::countries;

/// What the import takes from one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub nct_id: String,
    pub protocol_number: String,
    pub title: String,
    pub euct_number: Option<String>,
    pub status: StudyStatus,
    pub phase: StudyPhase,
    pub planned_start_date: Option<NaiveDate>,
    pub actual_start_date: Option<NaiveDate>,
    pub planned_end_date: Option<NaiveDate>,
    pub actual_end_date: Option<NaiveDate>,
    /// An `ESTIMATED` enrollment count; `None` when the record has none.
    pub target_enrollment: Option<i32>,
    /// The record's locations that become sites, in record order, without duplicates.
    pub locations: Vec<Location>,
    pub warnings: Vec<String>,
    /// Paths of the record's fields that are not imported.
    pub ignored: Vec<String>,
}

/// One location of the record, as a site.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Its index in `contactsLocationsModule.locations`, for error paths.
    pub index: usize,
    pub name: String,
    pub city: Option<String>,
    pub country: String,
    pub status: SiteStatus,
}

impl Location {
    /// What sites are matched on: facility, city and country, normalised (case and runs
    /// of white space do not count), so re-importing a record finds the sites it made.
    pub fn key(&self) -> (String, String, String) {
        site_key(&self.name, self.city.as_deref(), &self.country)
    }
}

/// The matching key of a site (see [`Location::key`]).
pub fn site_key(name: &str, city: Option<&str>, country: &str) -> (String, String, String) {
    let normalise = |text: &str| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    (
        normalise(name),
        normalise(city.unwrap_or_default()),
        country.to_ascii_uppercase(),
    )
}

const PS: &str = "protocolSection";
const IDENTIFICATION: &str = "protocolSection.identificationModule";
const STATUS: &str = "protocolSection.statusModule";
const DESIGN: &str = "protocolSection.designModule";
const LOCATIONS: &str = "protocolSection.contactsLocationsModule.locations";

/// The one record of the body: the record itself, or `{"studies": [record]}` (what a
/// search answer looks like).
pub fn the_record(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    let Value::Object(members) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object: one ClinicalTrials.gov study record".into(),
        ));
    };
    match members.get("studies") {
        None => Ok(members),
        Some(Value::Array(studies)) if studies.len() == 1 => match &studies[0] {
            Value::Object(record) => Ok(record),
            _ => Err(ApiError::invalid(
                "studies[0]",
                "type",
                "must be a study record (an object)",
            )),
        },
        Some(_) => Err(ApiError::invalid(
            "studies",
            "length",
            "must hold exactly one study record",
        )),
    }
}

/// Collects every refusal of a record, so one answer names them all.
#[derive(Default)]
struct Reader {
    errors: Vec<FieldError>,
    warnings: Vec<String>,
    ignored: Vec<String>,
}

impl Reader {
    fn refuse(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// A text member of `object` (missing or empty: `None`; another type: a refusal).
    fn text<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'a str> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(Value::String(text)) => Some(text),
            Some(_) => {
                self.refuse(&format!("{path}.{key}"), "type", "must be a string");
                None
            }
        }
    }

    /// An object member of `object` (missing: an empty object).
    fn object<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(inner)) => Some(inner),
            Some(_) => {
                self.refuse(&format!("{path}.{key}"), "type", "must be an object");
                None
            }
        }
    }

    /// Notes every member of `object` not in `used` as ignored.
    fn ignore_rest(&mut self, object: &Map<String, Value>, path: &str, used: &[&str]) {
        for key in object.keys() {
            if !used.contains(&key.as_str()) {
                let entry = format!("{path}.{key}");
                if !self.ignored.contains(&entry) {
                    self.ignored.push(entry);
                }
            }
        }
    }
}

/// Reads a record (see the module comment). Refusals are one 422 naming every bad field.
pub fn map_record(record: &Map<String, Value>) -> Result<Mapped, ApiError> {
    let mut r = Reader::default();
    for key in record.keys().filter(|key| *key != PS) {
        r.ignored.push(key.clone());
    }
    let empty = Map::new();
    let protocol = match record.get(PS) {
        Some(Value::Object(protocol)) => protocol,
        _ => {
            return Err(ApiError::invalid(
                PS,
                "required",
                "a ClinicalTrials.gov study record has a protocolSection object",
            ));
        }
    };
    let modules = [
        "identificationModule",
        "statusModule",
        "designModule",
        "contactsLocationsModule",
    ];
    r.ignore_rest(protocol, PS, &modules);

    let identification = r
        .object(protocol, "identificationModule", PS)
        .unwrap_or(&empty);
    let (nct_id, protocol_number, title, euct_number) = read_identification(&mut r, identification);

    let status_module = r.object(protocol, "statusModule", PS).unwrap_or(&empty);
    let status = read_status(&mut r, status_module);
    let mut used = vec!["overallStatus", "startDateStruct", "completionDateStruct"];
    if status_module.get("overallStatus").and_then(Value::as_str) == Some("UNKNOWN") {
        used.push("lastKnownStatus");
    }
    r.ignore_rest(status_module, STATUS, &used);
    let (planned_start_date, actual_start_date) =
        read_date(&mut r, status_module, "startDateStruct");
    let (planned_end_date, actual_end_date) =
        read_date(&mut r, status_module, "completionDateStruct");

    let design = r.object(protocol, "designModule", PS).unwrap_or(&empty);
    let phase = read_phase(&mut r, design);
    let target_enrollment = read_enrollment(&mut r, design);

    let contacts = r
        .object(protocol, "contactsLocationsModule", PS)
        .unwrap_or(&empty);
    r.ignore_rest(
        contacts,
        "protocolSection.contactsLocationsModule",
        &["locations"],
    );
    let site_status_default = status.map(site_status_of_study);
    let locations = read_locations(&mut r, contacts, site_status_default);

    if !r.errors.is_empty() {
        return Err(ApiError::Validation(r.errors));
    }
    // Every `None` below was refused above.
    let (Some(nct_id), Some(protocol_number), Some(title), Some(status), Some(phase)) =
        (nct_id, protocol_number, title, status, phase)
    else {
        return Err(anyhow::anyhow!("a required field was neither read nor refused").into());
    };
    Ok(Mapped {
        nct_id,
        protocol_number,
        title,
        euct_number,
        status,
        phase,
        planned_start_date,
        actual_start_date,
        planned_end_date,
        actual_end_date,
        target_enrollment,
        locations,
        warnings: r.warnings,
        ignored: r.ignored,
    })
}

type Identification = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn read_identification(r: &mut Reader, module: &Map<String, Value>) -> Identification {
    let mut used = vec!["nctId", "orgStudyIdInfo"];
    let nct_id = match r.text(module, "nctId", IDENTIFICATION) {
        Some(id) if validation::nct_id(id).is_ok() => Some(id.to_string()),
        Some(_) => {
            r.refuse(
                &format!("{IDENTIFICATION}.nctId"),
                "format",
                "must be NCT followed by 8 digits",
            );
            None
        }
        None => {
            r.refuse(
                &format!("{IDENTIFICATION}.nctId"),
                "required",
                "is required",
            );
            None
        }
    };
    let org_path = format!("{IDENTIFICATION}.orgStudyIdInfo");
    let protocol_number = r
        .object(module, "orgStudyIdInfo", IDENTIFICATION)
        .and_then(|info| r.text(info, "id", &org_path))
        .map(str::to_string);
    if protocol_number.is_none() {
        r.refuse(
            &format!("{org_path}.id"),
            "required",
            "the sponsor's study id is the protocol number, and is required",
        );
    }
    let official = r.text(module, "officialTitle", IDENTIFICATION);
    let brief = r.text(module, "briefTitle", IDENTIFICATION);
    let title = match (official, brief) {
        (Some(official), _) => {
            used.push("officialTitle");
            Some(official.to_string())
        }
        (None, Some(brief)) => {
            used.push("briefTitle");
            Some(brief.to_string())
        }
        (None, None) => {
            r.refuse(
                &format!("{IDENTIFICATION}.officialTitle"),
                "required",
                "the record has neither an officialTitle nor a briefTitle",
            );
            None
        }
    };
    let euct_number = read_euct_number(r, module);
    if euct_number.is_some() {
        used.push("secondaryIdInfos");
    }
    r.ignore_rest(module, IDENTIFICATION, &used);
    (nct_id, protocol_number, title, euct_number)
}

/// The first `CTIS` secondary id, or else the first id shaped like an EU CT number.
fn read_euct_number(r: &mut Reader, module: &Map<String, Value>) -> Option<String> {
    let infos = match module.get("secondaryIdInfos") {
        Some(Value::Array(infos)) => infos,
        None | Some(Value::Null) => return None,
        Some(_) => {
            r.refuse(
                &format!("{IDENTIFICATION}.secondaryIdInfos"),
                "type",
                "must be an array",
            );
            return None;
        }
    };
    let ids = infos.iter().filter_map(|info| {
        let id = info.get("id")?.as_str()?.trim();
        Some((id, info.get("type").and_then(Value::as_str)))
    });
    let shaped = |id: &str| validation::euct_number(id).is_ok();
    if let Some((id, _)) = ids.clone().find(|(_, kind)| *kind == Some("CTIS")) {
        if shaped(id) {
            return Some(id.to_string());
        }
        r.warnings.push(format!(
            "secondary id {id:?} is of type CTIS but not shaped like an EU CT number (YYYY-5NNNNN-NN-NN): not imported"
        ));
    }
    ids.map(|(id, _)| id)
        .find(|id| shaped(id))
        .map(str::to_string)
}

/// A study status of ClinicalTrials.gov (`overallStatus`, `lastKnownStatus`, a location's
/// `status`), as the study status of the same name.
fn study_status(value: &str) -> Option<StudyStatus> {
    Some(match value {
        "NOT_YET_RECRUITING" => StudyStatus::NotYetRecruiting,
        "RECRUITING" => StudyStatus::Recruiting,
        "ENROLLING_BY_INVITATION" => StudyStatus::EnrollingByInvitation,
        "ACTIVE_NOT_RECRUITING" => StudyStatus::ActiveNotRecruiting,
        "SUSPENDED" => StudyStatus::Suspended,
        "TERMINATED" => StudyStatus::Terminated,
        "COMPLETED" => StudyStatus::Completed,
        "WITHDRAWN" => StudyStatus::Withdrawn,
        _ => return None,
    })
}

/// Statuses of expanded-access records: a program, not a trial.
const EXPANDED_ACCESS: &[&str] = &[
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
];

fn read_status(r: &mut Reader, module: &Map<String, Value>) -> Option<StudyStatus> {
    let field = format!("{STATUS}.overallStatus");
    let overall = r.text(module, "overallStatus", STATUS);
    let (value, field) = match overall {
        Some("UNKNOWN") => {
            let last = r.text(module, "lastKnownStatus", STATUS);
            (last, format!("{STATUS}.lastKnownStatus"))
        }
        other => (other, field),
    };
    match value {
        None => {
            r.refuse(&field, "required", "is required");
            None
        }
        Some(value) if EXPANDED_ACCESS.contains(&value) => {
            r.refuse(
                &field,
                "expanded_access",
                format!("{value} is an expanded-access status: the record is not a clinical trial"),
            );
            None
        }
        Some(value) => {
            let status = study_status(value);
            if status.is_none() {
                r.refuse(
                    &field,
                    "enum",
                    format!("{value} is not a study status TrialOps knows"),
                );
            }
            status
        }
    }
}

/// A date struct `{date, type}`: `ACTUAL` gives the actual date, `ESTIMATED` the planned
/// one. Answers (planned, actual).
fn read_date(
    r: &mut Reader,
    module: &Map<String, Value>,
    key: &str,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let path = format!("{STATUS}.{key}");
    let Some(structure) = r.object(module, key, STATUS) else {
        return (None, None);
    };
    let Some(text) = r.text(structure, "date", &path) else {
        return (None, None);
    };
    let date = match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => match NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d") {
            Ok(date) if text.len() == 7 => {
                r.warnings.push(format!(
                    "{path}.date is {text} (a month): imported as {date}"
                ));
                Some(date)
            }
            _ => {
                r.refuse(
                    &format!("{path}.date"),
                    "format",
                    "must be yyyy-MM-dd or yyyy-MM",
                );
                None
            }
        },
    };
    let Some(date) = date.filter(|date| {
        let ok = validation::date_in_range(date);
        if !ok {
            r.refuse(
                &format!("{path}.date"),
                "range",
                "must be between 1900-01-01 and 2999-12-31",
            );
        }
        ok
    }) else {
        return (None, None);
    };
    match structure.get("type").and_then(Value::as_str) {
        Some("ACTUAL") => (None, Some(date)),
        Some("ESTIMATED") => (Some(date), None),
        other => {
            r.warnings.push(format!(
                "{path}.type is {}: the date is imported as planned",
                other.map_or("missing".to_string(), |t| format!("{t:?}"))
            ));
            (Some(date), None)
        }
    }
}

fn read_phase(r: &mut Reader, module: &Map<String, Value>) -> Option<StudyPhase> {
    let field = format!("{DESIGN}.phases");
    let phases: Vec<&str> = match module.get("phases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if texts.len() != items.len() {
                r.refuse(&field, "type", "must be an array of strings");
                return None;
            }
            texts
        }
        Some(_) => {
            r.refuse(&field, "type", "must be an array of strings");
            return None;
        }
    };
    let phase = match phases.as_slice() {
        // Observational studies have no phase in the record.
        [] => {
            r.warnings.push(format!(
                "{field} is missing (an observational study?): imported as not_applicable"
            ));
            Some(StudyPhase::NotApplicable)
        }
        ["EARLY_PHASE1"] => Some(StudyPhase::EarlyPhase1),
        ["PHASE1"] => Some(StudyPhase::Phase1),
        ["PHASE2"] => Some(StudyPhase::Phase2),
        ["PHASE3"] => Some(StudyPhase::Phase3),
        ["PHASE4"] => Some(StudyPhase::Phase4),
        ["NA"] => Some(StudyPhase::NotApplicable),
        ["PHASE1", "PHASE2"] | ["PHASE2", "PHASE1"] => Some(StudyPhase::Phase1Phase2),
        ["PHASE2", "PHASE3"] | ["PHASE3", "PHASE2"] => Some(StudyPhase::Phase2Phase3),
        other => {
            r.refuse(
                &field,
                "enum",
                format!("{} is no phase TrialOps knows", other.join(" + ")),
            );
            None
        }
    };
    let mut used = vec!["phases"];
    if module
        .get("enrollmentInfo")
        .and_then(|info| info.get("type"))
        .and_then(Value::as_str)
        == Some("ESTIMATED")
    {
        used.push("enrollmentInfo");
    }
    r.ignore_rest(module, DESIGN, &used);
    phase
}

fn read_enrollment(r: &mut Reader, module: &Map<String, Value>) -> Option<i32> {
    let path = format!("{DESIGN}.enrollmentInfo");
    let info = r.object(module, "enrollmentInfo", DESIGN)?;
    match (info.get("count"), info.get("type").and_then(Value::as_str)) {
        (Some(count), Some("ESTIMATED")) => {
            match count
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n >= 0)
            {
                Some(count) => Some(count),
                None => {
                    r.refuse(
                        &format!("{path}.count"),
                        "range",
                        "must be a whole number, 0 or more",
                    );
                    None
                }
            }
        }
        (Some(_), kind) => {
            r.warnings.push(format!(
                "{path} is {} (not ESTIMATED): not a target, not imported",
                kind.unwrap_or("of no type")
            ));
            None
        }
        (None, _) => None,
    }
}

/// A site status for a study status: what a location without a status takes.
pub fn site_status_of_study(status: StudyStatus) -> SiteStatus {
    match status {
        StudyStatus::Planning | StudyStatus::NotYetRecruiting => SiteStatus::Planned,
        StudyStatus::Recruiting | StudyStatus::EnrollingByInvitation => SiteStatus::Enrolling,
        StudyStatus::ActiveNotRecruiting | StudyStatus::Suspended => SiteStatus::ClosedToEnrollment,
        StudyStatus::Completed => SiteStatus::Closed,
        StudyStatus::Terminated | StudyStatus::Withdrawn => SiteStatus::Terminated,
    }
}

const LOCATION_FIELDS: &[&str] = &["facility", "status", "city", "country"];

fn read_locations(
    r: &mut Reader,
    module: &Map<String, Value>,
    default_status: Option<SiteStatus>,
) -> Vec<Location> {
    let items = match module.get("locations") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            r.refuse(LOCATIONS, "type", "must be an array");
            return Vec::new();
        }
    };
    let mut locations: Vec<Location> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("{LOCATIONS}[{index}]");
        let Value::Object(item) = item else {
            r.refuse(&path, "type", "must be an object");
            continue;
        };
        for key in item
            .keys()
            .filter(|k| !LOCATION_FIELDS.contains(&k.as_str()))
        {
            let entry = format!("{LOCATIONS}[].{key}");
            if !r.ignored.contains(&entry) {
                r.ignored.push(entry);
            }
        }
        let facility = r.text(item, "facility", &path);
        let city = r.text(item, "city", &path);
        let country_name = r.text(item, "country", &path);
        let status = r.text(item, "status", &path);
        let (Some(facility), Some(country_name)) = (facility, country_name) else {
            r.warnings.push(format!(
                "{path} has no {}: skipped",
                if facility.is_none() {
                    "facility"
                } else {
                    "country"
                }
            ));
            continue;
        };
        let Some(country) = countries::alpha2(country_name) else {
            r.warnings.push(format!(
                "{path} ({facility}): country {country_name:?} has no ISO 3166-1 code TrialOps knows: skipped"
            ));
            continue;
        };
        let status = match status.map(|s| (s, study_status(s))) {
            Some((_, Some(status))) => Some(site_status_of_study(status)),
            Some((other, None)) => {
                r.warnings.push(format!(
                    "{path}.status {other:?} is no site status: the study's status is used"
                ));
                default_status
            }
            None => default_status,
        };
        // Without a study status the record is refused anyway.
        let Some(status) = status else { continue };
        let location = Location {
            index,
            name: facility.to_string(),
            city: city.map(str::to_string),
            country: country.to_string(),
            status,
        };
        if let Some(first) = locations.iter().find(|l| l.key() == location.key()) {
            r.warnings.push(format!(
                "{path} repeats {LOCATIONS}[{}] (same facility, city and country): imported once",
                first.index
            ));
            continue;
        }
        locations.push(location);
    }
    locations
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(protocol: Value) -> Value {
        json!({"protocolSection": protocol, "hasResults": false})
    }

    fn minimal() -> Value {
        json!({
            "identificationModule": {"nctId": "NCT01234567", "orgStudyIdInfo": {"id": "P-1"}, "briefTitle": "Brief"},
            "statusModule": {"overallStatus": "RECRUITING"},
            "designModule": {"phases": ["PHASE3"]}
        })
    }

    fn map(value: &Value) -> Result<Mapped, ApiError> {
        map_record(the_record(value)?)
    }

    /// The record of the minimal protocol with `edit` made to it.
    fn with(edit: impl FnOnce(&mut Value)) -> Value {
        let mut protocol = minimal();
        edit(&mut protocol);
        record(protocol)
    }

    fn refused_fields(value: &Value) -> Vec<String> {
        match map(value) {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_record_maps() {
        let mapped = map(&record(minimal())).unwrap();
        assert_eq!(mapped.title, "Brief");
        assert_eq!(mapped.phase, StudyPhase::Phase3);
        assert_eq!(mapped.status, StudyStatus::Recruiting);
        assert_eq!(mapped.ignored, vec!["hasResults".to_string()]);
        assert!(mapped.locations.is_empty());
    }

    #[test]
    fn a_search_answer_with_one_study_is_taken() {
        let wrapped = json!({"studies": [record(minimal())]});
        assert_eq!(map(&wrapped).unwrap().nct_id, "NCT01234567");
        for bad in [
            json!({"studies": []}),
            json!({"studies": [1]}),
            json!({"studies": [{}, {}]}),
        ] {
            assert!(matches!(map(&bad), Err(ApiError::Validation(_))), "{bad}");
        }
        assert!(matches!(map(&json!([1])), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn phases_map_and_other_combinations_are_refused() {
        for (phases, phase) in [
            (json!(["PHASE1", "PHASE2"]), StudyPhase::Phase1Phase2),
            (json!(["PHASE2", "PHASE3"]), StudyPhase::Phase2Phase3),
            (json!(["NA"]), StudyPhase::NotApplicable),
            (json!(["EARLY_PHASE1"]), StudyPhase::EarlyPhase1),
        ] {
            let edited = with(|p| p["designModule"]["phases"] = phases);
            assert_eq!(map(&edited).unwrap().phase, phase);
        }
        for phases in [
            json!(["PHASE1", "PHASE3"]),
            json!(["PHASE4", "NA"]),
            json!(["PHASE9"]),
            json!("PHASE1"),
        ] {
            let edited = with(|p| p["designModule"]["phases"] = phases);
            assert_eq!(
                refused_fields(&edited),
                ["protocolSection.designModule.phases"]
            );
        }
    }

    #[test]
    fn unknown_takes_the_last_known_status_and_expanded_access_is_refused() {
        let edited = with(|p| {
            p["statusModule"] =
                json!({"overallStatus": "UNKNOWN", "lastKnownStatus": "ACTIVE_NOT_RECRUITING"})
        });
        assert_eq!(
            map(&edited).unwrap().status,
            StudyStatus::ActiveNotRecruiting
        );
        let edited = with(|p| p["statusModule"] = json!({"overallStatus": "AVAILABLE"}));
        assert_eq!(
            refused_fields(&edited),
            ["protocolSection.statusModule.overallStatus"]
        );
    }

    #[test]
    fn dates_go_to_actual_or_planned_and_months_warn() {
        let mut protocol = minimal();
        protocol["statusModule"]["startDateStruct"] = json!({"date": "2024-03", "type": "ACTUAL"});
        protocol["statusModule"]["completionDateStruct"] =
            json!({"date": "2027-12-31", "type": "ESTIMATED"});
        protocol["statusModule"]["primaryCompletionDateStruct"] =
            json!({"date": "2026-12-31", "type": "ESTIMATED"});
        let mapped = map(&record(protocol)).unwrap();
        assert_eq!(
            mapped.actual_start_date,
            NaiveDate::from_ymd_opt(2024, 3, 1)
        );
        assert_eq!(mapped.planned_start_date, None);
        assert_eq!(
            mapped.planned_end_date,
            NaiveDate::from_ymd_opt(2027, 12, 31)
        );
        assert_eq!(mapped.warnings.len(), 1, "{:?}", mapped.warnings);
        assert!(
            mapped
                .ignored
                .contains(&"protocolSection.statusModule.primaryCompletionDateStruct".to_string())
        );
        let edited = with(|p| {
            p["statusModule"]["startDateStruct"] = json!({"date": "March 2024", "type": "ACTUAL"})
        });
        assert_eq!(
            refused_fields(&edited),
            ["protocolSection.statusModule.startDateStruct.date"]
        );
    }

    #[test]
    fn every_missing_required_field_is_named_in_one_answer() {
        let fields = refused_fields(&record(json!({"statusModule": {}})));
        assert_eq!(
            fields,
            [
                "protocolSection.identificationModule.nctId",
                "protocolSection.identificationModule.orgStudyIdInfo.id",
                "protocolSection.identificationModule.officialTitle",
                "protocolSection.statusModule.overallStatus",
            ]
        );
    }

    #[test]
    fn euct_number_comes_from_ctis_or_its_shape() {
        for (infos, euct) in [
            (
                json!([{"id": "2022-000123-11", "type": "EUDRACT_NUMBER"},
                       {"id": "2023-501234-12-00", "type": "OTHER"}]),
                "2023-501234-12-00",
            ),
            (
                json!([{"id": "2023-501234-12-00", "type": "OTHER"},
                       {"id": "2024-509999-01-00", "type": "CTIS"}]),
                "2024-509999-01-00",
            ),
        ] {
            let edited = with(|p| p["identificationModule"]["secondaryIdInfos"] = infos);
            assert_eq!(map(&edited).unwrap().euct_number.as_deref(), Some(euct));
        }
    }

    #[test]
    fn locations_map_skip_and_deduplicate() {
        let edited = with(|p| {
            p["contactsLocationsModule"] = json!({"locations": [
                {"facility": "A", "city": "Seoul", "country": "Korea, Republic of", "status": "COMPLETED", "zip": "1"},
                {"facility": "B", "country": "Germany"},
                {"city": "Nowhere", "country": "Germany"},
                {"facility": "C", "country": "Atlantis"},
                {"facility": " a ", "city": "SEOUL", "country": "South Korea"}
            ]})
        });
        let mapped = map(&edited).unwrap();
        let sites: Vec<(&str, &str, SiteStatus)> = mapped
            .locations
            .iter()
            .map(|l| (l.name.as_str(), l.country.as_str(), l.status))
            .collect();
        assert_eq!(
            sites,
            [
                ("A", "KR", SiteStatus::Closed),
                ("B", "DE", SiteStatus::Enrolling)
            ]
        );
        assert_eq!(mapped.warnings.len(), 3, "{:?}", mapped.warnings);
        assert!(
            mapped
                .ignored
                .contains(&"protocolSection.contactsLocationsModule.locations[].zip".to_string())
        );
    }
}
