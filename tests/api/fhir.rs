//! `GET /api/v1/studies/{id}/fhir`: the study as an HL7 FHIR R5 Bundle, validated by an
//! independent R5 model (the Python `fhir.resources` 8.x package), with every code checked
//! against the value sets of the mapping (the model does not check codes).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, run_python, spawn_app};

/// Parses the file as an R5 Bundle with `fhir.resources` (whose default package is R5).
const VALIDATE_R5: &str = r#"
import json, sys
import fhir.resources
from fhir.resources.bundle import Bundle
assert fhir.resources.__fhir_version__.startswith("5."), fhir.resources.__fhir_version__
bundle = Bundle.model_validate(json.load(open(sys.argv[1], encoding="utf-8")))
print(len(bundle.entry or []), "entries:", sorted({e.resource.get_resource_type() for e in bundle.entry}))
"#;

const PHASES: &[&str] = &[
    "early-phase-1",
    "phase-1",
    "phase-1-phase-2",
    "phase-2",
    "phase-2-phase-3",
    "phase-3",
    "phase-4",
    "n-a",
];

/// The study statuses of the mapping, plus `overall-study` for the periods.
const STUDY_STATES: &[&str] = &[
    "not-yet-recruiting",
    "recruiting",
    "active-but-not-recruiting",
    "temporarily-closed-to-accrual",
    "completed",
    "terminated",
    "withdrawn",
    "enrolling-by-invitation",
    "overall-study",
];

const SITE_STATES: &[(&str, &str)] = &[
    ("planned", "not-yet-recruiting"),
    ("selected", "not-yet-recruiting"),
    ("activated", "recruiting"),
    ("enrolling", "recruiting"),
    ("closed_to_enrollment", "closed-to-accrual"),
    ("closed", "completed"),
    ("terminated", "terminated"),
];

fn codes(concept: &Value, system: &str) -> Vec<String> {
    concept["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["system"], system, "{concept}");
            c["code"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn fhir(app: &TestApp, study: &str, token: &str) -> Value {
    let resp = app
        .get(&format!("/api/v1/studies/{study}/fhir"), token)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/fhir+json")
    );
    resp.body
}

/// Asserts what the R5 model and the value sets say of a bundle; answers its resources by
/// fullUrl.
fn check_bundle(bundle: &Value) -> HashMap<String, Value> {
    let (valid, output) = run_python(VALIDATE_R5, &[bundle], &[]);
    assert!(valid, "not a valid R5 Bundle: {output}\n{bundle:#}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let mut by_url = HashMap::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        let url = entry["fullUrl"].as_str().unwrap();
        assert_eq!(
            url,
            format!("urn:uuid:{}", resource["id"].as_str().unwrap())
        );
        assert!(
            by_url.insert(url.to_string(), resource.clone()).is_none(),
            "{url} twice"
        );
    }
    for resource in by_url.values() {
        if resource["resourceType"] != "ResearchStudy" {
            continue;
        }
        assert_eq!(resource["status"], "active");
        if !resource["phase"].is_null() {
            for code in codes(
                &resource["phase"],
                "http://hl7.org/fhir/research-study-phase",
            ) {
                assert!(PHASES.contains(&code.as_str()), "{code}");
            }
        }
        for state in resource["progressStatus"].as_array().unwrap() {
            for code in codes(&state["state"], "http://hl7.org/fhir/research-study-status") {
                assert!(
                    STUDY_STATES.contains(&code.as_str()) || code == "closed-to-accrual",
                    "{code}"
                );
            }
        }
        for region in resource["region"].as_array().into_iter().flatten() {
            for code in codes(region, "urn:iso:std:iso:3166") {
                assert!(celes::Country::from_alpha2(&code).is_ok(), "{code}");
            }
        }
        // Every reference points at an entry of the bundle.
        for reference in resource["partOf"]
            .as_array()
            .into_iter()
            .chain(resource["site"].as_array())
            .flatten()
        {
            let target = reference["reference"].as_str().unwrap();
            assert!(by_url.contains_key(target), "{target} is not in the bundle");
        }
    }
    by_url
}

#[actix_web::test]
async fn a_study_is_a_valid_r5_bundle_with_the_mapped_codes() {
    let app = spawn_app().await;
    let study = app
        .create_study(json!({
            "protocol_number": "TOP-2026-001", "title": "A Phase 2/3 Study", "phase": "phase2_phase3",
            "status": "active_not_recruiting", "nct_id": "NCT01234567", "euct_number": "2026-500123-12-00",
            "target_enrollment": 120, "planned_start_date": "2026-01-01", "planned_end_date": "2027-12-31",
            "actual_start_date": "2026-02-01"
        }))
        .await;
    let study_id = study["id"].as_str().unwrap();
    let mut sites = HashMap::new();
    for (i, (status, _)) in SITE_STATES.iter().enumerate() {
        let country = ["DE", "FR", "KR"][i % 3];
        let city = (i % 2 == 0).then(|| format!("City {i}"));
        let site = app
            .create_site(
                study_id,
                json!({"site_number": format!("{:03}", i + 1), "name": format!("Site {i}"),
                       "status": status, "country": country, "city": city, "target_enrollment": 10}),
            )
            .await;
        sites.insert(site["id"].as_str().unwrap().to_string(), site);
    }
    // Enrollment at two sites; a deleted site is not exported.
    let ids: Vec<String> = sites.keys().cloned().collect();
    for (site, enrolled) in [(&ids[0], 5), (&ids[1], 7)] {
        app.send(
            app.request("PUT", &format!("/api/v1/sites/{site}/enrollment/2026-03-02"), &app.admin_token)
                .json(&json!({"screened": 9, "screen_failed": 0, "enrolled": enrolled, "discontinued": 0, "completed": 0})),
        )
        .await
        .ok(201);
    }
    let gone = app
        .site_id(study_id, json!({"site_number": "999", "country": "US"}))
        .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{gone}")).await;

    let bundle = fhir(&app, study_id, &app.admin_token).await;
    let resources = check_bundle(&bundle);
    assert_eq!(resources.len(), 1 + 2 * SITE_STATES.len());

    let main = &resources[&format!("urn:uuid:{study_id}")];
    assert_eq!(main["title"], "A Phase 2/3 Study");
    assert_eq!(
        codes(&main["phase"], "http://hl7.org/fhir/research-study-phase"),
        ["phase-2-phase-3"]
    );
    let identifiers = main["identifier"].as_array().unwrap();
    assert!(identifiers.contains(&json!({"use": "official", "system": "urn:trialops:protocol-number", "value": "TOP-2026-001"})));
    assert!(
        identifiers
            .contains(&json!({"system": "http://clinicaltrials.gov", "value": "NCT01234567"}))
    );
    assert!(
        identifiers.contains(
            &json!({"system": "https://euclinicaltrials.eu", "value": "2026-500123-12-00"})
        )
    );
    let progress = main["progressStatus"].as_array().unwrap();
    assert_eq!(
        codes(
            &progress[0]["state"],
            "http://hl7.org/fhir/research-study-status"
        ),
        ["active-but-not-recruiting"]
    );
    assert_eq!(progress[1]["actual"], false);
    assert_eq!(
        progress[1]["period"],
        json!({"start": "2026-01-01", "end": "2027-12-31"})
    );
    assert_eq!(progress[2]["actual"], true);
    assert_eq!(progress[2]["period"], json!({"start": "2026-02-01"}));
    assert_eq!(
        main["recruitment"],
        json!({"targetNumber": 120, "actualNumber": 12})
    );
    let regions: Vec<String> = main["region"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| codes(r, "urn:iso:std:iso:3166"))
        .collect();
    assert_eq!(regions, ["DE", "FR", "KR"]);

    for (id, site) in &sites {
        let site_study = &resources[&format!("urn:uuid:{id}")];
        assert_eq!(site_study["resourceType"], "ResearchStudy");
        assert_eq!(
            site_study["partOf"],
            json!([{"reference": format!("urn:uuid:{study_id}")}])
        );
        let expected = SITE_STATES
            .iter()
            .find(|(status, _)| *status == site["status"])
            .unwrap()
            .1;
        assert_eq!(
            codes(
                &site_study["progressStatus"][0]["state"],
                "http://hl7.org/fhir/research-study-status"
            ),
            [expected]
        );
        let location_url = site_study["site"][0]["reference"].as_str().unwrap();
        let location = &resources[location_url];
        assert_eq!(location["resourceType"], "Location");
        assert_eq!(location["name"], site["name"]);
        assert_eq!(location["identifier"][0]["value"], site["site_number"]);
        assert_eq!(location["address"]["country"], site["country"]);
        assert_eq!(location["address"]["city"], site["city"]);
        assert_eq!(site_study["recruitment"]["targetNumber"], 10);
        let enrolled = if *id == ids[0] {
            5
        } else if *id == ids[1] {
            7
        } else {
            0
        };
        assert_eq!(site_study["recruitment"]["actualNumber"], enrolled);
    }
    // The export is stable: the same ids (Location's derived ones too) on every read.
    let again = fhir(&app, study_id, &app.admin_token).await;
    let urls = |b: &Value| -> HashSet<String> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(urls(&again), urls(&bundle));
}

#[actix_web::test]
async fn the_validator_catches_a_broken_bundle() {
    // The check above would fail if the export broke R5: a bundle with an unknown
    // resource element, or without a required one, is refused by the model.
    let broken = [
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "ResearchStudy", "id": "1", "status": "active", "sponsorName": "x"}}]}),
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "ResearchStudy", "id": "1"}}]}),
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "ResearchStudy", "id": "1", "status": "active", "recruitment": {"targetNumber": -1}}}]}),
    ];
    for bundle in broken {
        let (valid, output) = run_python(VALIDATE_R5, &[&bundle], &[]);
        assert!(!valid, "accepted {bundle}: {output}");
        assert!(output.contains("ValidationError"), "{output}");
    }
}

#[actix_web::test]
async fn readers_get_what_they_may_read_and_others_a_404() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let other = app.study_id(json!({})).await;
    let mine = app.site_id(&study, json!({"country": "DE"})).await;
    app.site_id(&study, json!({"country": "FR"})).await;

    // A site client reads its study with its own site only, and no study-wide total.
    let site_client = app.token_for(Role::Site, &[], &[&mine], None).await;
    let bundle = fhir(&app, &study, &site_client).await;
    let resources = check_bundle(&bundle);
    assert_eq!(resources.len(), 3);
    assert!(resources.contains_key(&format!("urn:uuid:{mine}")));
    assert!(
        resources[&format!("urn:uuid:{study}")]["recruitment"]
            .get("actualNumber")
            .is_none()
    );

    let cro = app.token_for(Role::Cro, &[&study], &[], None).await;
    assert_eq!(check_bundle(&fhir(&app, &study, &cro).await).len(), 5);
    app.get(&format!("/api/v1/studies/{other}/fhir"), &cro)
        .await
        .problem(404);
    app.get(&format!("/api/v1/studies/{other}/fhir"), &site_client)
        .await
        .problem(404);
    let analyst = app.token_for(Role::Analyst, &[], &[], None).await;
    fhir(&app, &other, &analyst).await;
    app.admin_get("/api/v1/studies/not-a-uuid/fhir")
        .await
        .problem(404);
    app.send(app.bare("GET", &format!("/api/v1/studies/{study}/fhir")))
        .await
        .problem(401);
}
