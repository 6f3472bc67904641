//! A study as an HL7 FHIR R5 `Bundle` (type `collection`): one `ResearchStudy` for the
//! study, and per site a site-level `ResearchStudy` (`partOf` the study) and a `Location`.
//! The mapping is documented as tables in `docs/standards.md`.
//!
//! Every entry's `fullUrl` is `urn:uuid:<id>` and references between entries use those
//! URLs. The study and the site-level studies carry the TrialOps ids. A site's `Location`
//! needs an id of its own (a bundle's `fullUrl`s are unique): a name-based UUID (version 8,
//! RFC 9562) from the SHA-256 of the site id and `Location`, so it is the same in every
//! export.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::ids::{SiteId, StudyId};

use crate::db::sites::Site;
use crate::db::studies::Study;
use crate::domain::enums::{SiteStatus, StudyPhase, StudyStatus};

/// The media type of the answer.
pub const MEDIA_TYPE: &str = "application/fhir+json";

pub const PHASE_SYSTEM: &str = "http://hl7.org/fhir/research-study-phase";
pub const STATUS_SYSTEM: &str = "http://hl7.org/fhir/research-study-status";
pub const COUNTRY_SYSTEM: &str = "urn:iso:std:iso:3166";
pub const NCT_SYSTEM: &str = "http://clinicaltrials.gov";
pub const EUCT_SYSTEM: &str = "https://euclinicaltrials.eu";
/// The system of TrialOps protocol numbers (unique among live studies).
pub const PROTOCOL_NUMBER_SYSTEM: &str = "urn:trialops:protocol-number";

/// The system of a study's site numbers (unique only within the study, hence the study id
/// in it).
pub fn site_number_system(study_id: StudyId) -> String {
    format!("urn:trialops:study:{study_id}:site-number")
}

/// The id of a site's `Location` (see the module comment).
pub fn location_id(site_id: SiteId) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(site_id.uuid().as_bytes())
        .chain_update(b"Location")
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

pub fn phase_code(phase: StudyPhase) -> &'static str {
    match phase {
        StudyPhase::EarlyPhase1 => "early-phase-1",
        StudyPhase::Phase1 => "phase-1",
        StudyPhase::Phase1Phase2 => "phase-1-phase-2",
        StudyPhase::Phase2 => "phase-2",
        StudyPhase::Phase2Phase3 => "phase-2-phase-3",
        StudyPhase::Phase3 => "phase-3",
        StudyPhase::Phase4 => "phase-4",
        StudyPhase::NotApplicable => "n-a",
    }
}

pub fn study_status_code(status: StudyStatus) -> &'static str {
    match status {
        StudyStatus::Planning | StudyStatus::NotYetRecruiting => "not-yet-recruiting",
        StudyStatus::Recruiting => "recruiting",
        StudyStatus::ActiveNotRecruiting => "active-but-not-recruiting",
        StudyStatus::Suspended => "temporarily-closed-to-accrual",
        StudyStatus::Completed => "completed",
        StudyStatus::Terminated => "terminated",
        StudyStatus::Withdrawn => "withdrawn",
        StudyStatus::EnrollingByInvitation => "enrolling-by-invitation",
    }
}

pub fn site_status_code(status: SiteStatus) -> &'static str {
    match status {
        SiteStatus::Planned | SiteStatus::Selected => "not-yet-recruiting",
        SiteStatus::Activated | SiteStatus::Enrolling => "recruiting",
        SiteStatus::ClosedToEnrollment => "closed-to-accrual",
        SiteStatus::Closed => "completed",
        SiteStatus::Terminated => "terminated",
    }
}

/// What the bundle is made of. Enrollment counts are `None` where the caller may not read
/// them (the study's total needs the study's metrics; a site's, its enrollment reports).
pub struct BundleInput<'a> {
    pub study: &'a Study,
    pub sites: &'a [Site],
    pub study_enrolled: Option<i64>,
    pub site_enrolled: &'a dyn Fn(&Site) -> Option<i64>,
    pub timestamp: DateTime<Utc>,
}

fn urn(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

fn coded(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn period(start: Option<NaiveDate>, end: Option<NaiveDate>) -> Option<Value> {
    let mut period = serde_json::Map::new();
    if let Some(start) = start {
        period.insert("start".into(), json!(start.to_string()));
    }
    if let Some(end) = end {
        period.insert("end".into(), json!(end.to_string()));
    }
    (!period.is_empty()).then_some(Value::Object(period))
}

/// `progressStatus`: the current state, then the planned and the actual overall period.
fn progress(current: &str, planned: Option<Value>, actual: Option<Value>) -> Value {
    let mut states = vec![json!({"state": coded(STATUS_SYSTEM, current)})];
    for (is_actual, period) in [(false, planned), (true, actual)] {
        let mut state =
            json!({"state": coded(STATUS_SYSTEM, "overall-study"), "actual": is_actual});
        if let Some(period) = period {
            state["period"] = period;
        }
        states.push(state);
    }
    Value::Array(states)
}

/// `recruitment` with the members that have a value (FHIR forbids empty elements).
fn recruitment(target: Option<i64>, actual: Option<i64>) -> Option<Value> {
    let mut recruitment = serde_json::Map::new();
    if let Some(target) = target {
        recruitment.insert("targetNumber".into(), json!(target.max(0)));
    }
    if let Some(actual) = actual {
        recruitment.insert("actualNumber".into(), json!(actual.max(0)));
    }
    (!recruitment.is_empty()).then_some(Value::Object(recruitment))
}

fn study_resource(input: &BundleInput<'_>) -> Value {
    let study = input.study;
    let mut identifiers = vec![json!({
        "use": "official", "system": PROTOCOL_NUMBER_SYSTEM, "value": study.protocol_number
    })];
    if let Some(nct) = &study.nct_id {
        identifiers.push(json!({"system": NCT_SYSTEM, "value": nct}));
    }
    if let Some(euct) = &study.euct_number {
        identifiers.push(json!({"system": EUCT_SYSTEM, "value": euct}));
    }
    let mut countries: Vec<&str> = input.sites.iter().map(|s| s.country.as_str()).collect();
    countries.sort_unstable();
    countries.dedup();
    let mut resource = json!({
        "resourceType": "ResearchStudy",
        "id": study.id.to_string(),
        "identifier": identifiers,
        "title": study.title,
        "status": "active",
        "phase": coded(PHASE_SYSTEM, phase_code(study.phase)),
        "progressStatus": progress(
            study_status_code(study.status),
            period(study.planned_start_date, study.planned_end_date),
            period(study.actual_start_date, study.actual_end_date),
        ),
    });
    if !countries.is_empty() {
        resource["region"] = countries
            .iter()
            .map(|code| coded(COUNTRY_SYSTEM, code))
            .collect();
    }
    if let Some(recruitment) = recruitment(
        Some(i64::from(study.target_enrollment)),
        input.study_enrolled,
    ) {
        resource["recruitment"] = recruitment;
    }
    resource
}

fn site_resources(input: &BundleInput<'_>, site: &Site) -> (Value, Value) {
    let location_id = location_id(site.id);
    let mut address = json!({"country": site.country});
    if let Some(city) = &site.city {
        address["city"] = json!(city);
    }
    let location = json!({
        "resourceType": "Location",
        "id": location_id.to_string(),
        "identifier": [{"system": site_number_system(site.study_id), "value": site.site_number}],
        "name": site.name,
        "address": address,
    });
    let mut site_study = json!({
        "resourceType": "ResearchStudy",
        "id": site.id.to_string(),
        "identifier": [{"system": site_number_system(site.study_id), "value": site.site_number}],
        "title": site.name,
        "status": "active",
        "partOf": [{"reference": urn(input.study.id.uuid())}],
        "progressStatus": [{"state": coded(STATUS_SYSTEM, site_status_code(site.status))}],
        "region": [coded(COUNTRY_SYSTEM, &site.country)],
        "site": [{"reference": urn(location_id)}],
    });
    if let Some(recruitment) = recruitment(
        site.target_enrollment.map(i64::from),
        (input.site_enrolled)(site),
    ) {
        site_study["recruitment"] = recruitment;
    }
    (site_study, location)
}

/// The bundle (see the module comment). Sites come in the order given.
pub fn bundle(input: &BundleInput<'_>) -> Value {
    let entry = |resource: Value| {
        let id = resource["id"].as_str().unwrap_or_default().to_string();
        json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
    };
    let mut entries = vec![entry(study_resource(input))];
    for site in input.sites {
        let (site_study, location) = site_resources(input, site);
        entries.push(entry(site_study));
        entries.push(entry(location));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": input.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "entry": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    /// Every value of `T` has a code of `value_set`.
    fn all_coded<T>(value_set: &[&str], code: fn(T) -> &'static str)
    where
        T: VariantArray + Copy + std::fmt::Display,
    {
        for value in T::VARIANTS {
            assert!(value_set.contains(&code(*value)), "{value}");
        }
    }

    #[test]
    fn every_enum_value_has_a_code_of_the_value_sets() {
        let phases = [
            "early-phase-1",
            "phase-1",
            "phase-1-phase-2",
            "phase-2",
            "phase-2-phase-3",
            "phase-3",
            "phase-4",
            "n-a",
        ];
        all_coded::<StudyPhase>(&phases, phase_code);
        let states = [
            "not-yet-recruiting",
            "recruiting",
            "active-but-not-recruiting",
            "temporarily-closed-to-accrual",
            "completed",
            "terminated",
            "withdrawn",
            "enrolling-by-invitation",
            "closed-to-accrual",
        ];
        all_coded::<StudyStatus>(&states, study_status_code);
        all_coded::<SiteStatus>(&states, site_status_code);
    }

    #[test]
    fn location_ids_are_stable_and_distinct_from_the_site_id() {
        let site = SiteId::new_v7();
        assert_eq!(location_id(site), location_id(site));
        assert_ne!(location_id(site), site.uuid());
    }
}
