//! `GET /api/v1/studies/{id}/sdtm/dv`: protocol deviations as the CDISC SDTM DV domain,
//! validated against CDISC's Dataset-JSON 1.1 JSON Schema (Draft 2019-09, the fixture
//! `cdisc/dataset-json-1.1.schema.json`) by an independent validator (Python
//! `jsonschema`), plus what the schema cannot check.

use std::collections::HashMap;

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, fixture_path, run_python, spawn_app};

const VALIDATE_SCHEMA: &str = r#"
import json, sys
from jsonschema import Draft201909Validator
document = json.load(open(sys.argv[1], encoding="utf-8"))
schema = json.load(open(sys.argv[2], encoding="utf-8"))
assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema"
Draft201909Validator.check_schema(schema)
validator = Draft201909Validator(schema, format_checker=Draft201909Validator.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(document), key=str)
for error in errors:
    print(list(error.absolute_path), error.message, file=sys.stderr)
sys.exit(1 if errors else 0)
"#;

const VARIABLES: [&str; 10] = [
    "STUDYID", "DOMAIN", "USUBJID", "DVSEQ", "DVREFID", "DVSPID", "DVTERM", "DVDECOD", "DVCAT",
    "DVSTDTC",
];

fn schema_valid(document: &Value) -> (bool, String) {
    let schema = fixture_path("cdisc/dataset-json-1.1.schema.json");
    assert!(schema.exists(), "missing fixture {}", schema.display());
    run_python(VALIDATE_SCHEMA, &[document], &[&schema])
}

async fn deviation(app: &TestApp, study: &str, site: &str, extra: Value) -> String {
    let mut body = json!({"study_id": study, "site_id": site, "category": "informed_consent",
        "description": "Consent form v2 not signed before visit 3", "importance": "important",
        "occurred_on": "2026-03-02", "detected_on": "2026-03-04"});
    json_patch::merge(&mut body, &extra);
    app.admin_post("/api/v1/deviations", &body).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The checks the schema cannot make: records = rows, row width, gap-free `DVSEQ` per
/// subject. Answers the rows as maps by variable.
fn check_table(document: &Value) -> Vec<HashMap<String, Value>> {
    let columns = document["columns"].as_array().unwrap();
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, VARIABLES);
    for column in columns {
        assert_eq!(
            column["itemOID"],
            format!("IT.DV.{}", column["name"].as_str().unwrap())
        );
    }
    let by_name: HashMap<&str, &Value> = names.iter().copied().zip(columns).collect();
    assert_eq!(by_name["DVSEQ"]["dataType"], "integer");
    assert_eq!(by_name["DVSTDTC"]["dataType"], "date");
    let rows = document["rows"].as_array().unwrap();
    assert_eq!(document["records"].as_u64().unwrap() as usize, rows.len());
    let mut seqs: HashMap<String, Vec<i64>> = HashMap::new();
    let mut out = Vec::new();
    for row in rows {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), columns.len(), "{row:?}");
        let row: HashMap<String, Value> = names
            .iter()
            .map(|n| n.to_string())
            .zip(row.iter().cloned())
            .collect();
        seqs.entry(row["USUBJID"].as_str().unwrap().to_string())
            .or_default()
            .push(row["DVSEQ"].as_i64().unwrap());
        out.push(row);
    }
    for (subject, mut seq) in seqs {
        seq.sort_unstable();
        assert_eq!(seq, (1..=seq.len() as i64).collect::<Vec<_>>(), "{subject}");
    }
    out
}

/// The keys of a JSON object's text in the order they are written (a `Value` map sorts
/// them).
fn top_level_keys(text: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            mut self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                self.0.push(key);
            }
            Ok(self.0)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut deserializer, Keys(Vec::new())).unwrap()
}

#[actix_web::test]
async fn deviations_are_a_valid_dataset_json_dv_domain() {
    let app = spawn_app().await;
    let study = app
        .study_id(json!({"protocol_number": "TOP-7", "sponsor_name": "Example Pharma"}))
        .await;
    let site1 = app.site_id(&study, json!({"site_number": "001"})).await;
    let site2 = app.site_id(&study, json!({"site_number": "002"})).await;
    // Subject 0042 at site 001: three deviations, two on one day (external id decides,
    // the one without comes last).
    let late = deviation(&app, &study, &site1, json!({"participant_ref": "0042", "occurred_on": "2026-04-01", "detected_on": "2026-04-01"})).await;
    let no_ext = deviation(&app, &study, &site1, json!({"participant_ref": "0042", "category": "visit_schedule", "importance": "not_important"})).await;
    let ext = deviation(
        &app,
        &study,
        &site1,
        json!({"participant_ref": "0042", "external_id": "EDC-9"}),
    )
    .await;
    // A code already prefixed with the study id is kept as it is.
    let prefixed = deviation(&app, &study, &site2, json!({"participant_ref": "TOP-7-002-0007", "external_id": "EDC-1", "category": "study_procedure"})).await;
    // Left out: no participant, and an invalidated one.
    deviation(&app, &study, &site1, json!({})).await;
    let withdrawn = deviation(&app, &study, &site2, json!({"participant_ref": "0009"})).await;
    app.admin_patch_with(
        &format!("/api/v1/deviations/{withdrawn}"),
        &json!({"status": "invalidated"}),
        Some("Duplicate"),
    )
    .await
    .ok(200);
    // Another study with the same participant code: never in this export.
    let other = app.study_id(json!({})).await;
    let other_site = app.site_id(&other, json!({"site_number": "001"})).await;
    let foreign = deviation(
        &app,
        &other,
        &other_site,
        json!({"participant_ref": "0042"}),
    )
    .await;

    let resp = app
        .admin_get(&format!("/api/v1/studies/{study}/sdtm/dv"))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.header("x-excluded-deviations").as_deref(), Some("2"));
    let document = &resp.body;
    let (valid, output) = schema_valid(document);
    assert!(valid, "not valid Dataset-JSON 1.1: {output}\n{document:#}");
    // Top-level keys in the order of the standard.
    let order = [
        "datasetJSONCreationDateTime",
        "datasetJSONVersion",
        "originator",
        "sourceSystem",
        "studyOID",
        "itemGroupOID",
        "records",
        "name",
        "label",
        "columns",
        "rows",
    ];
    assert_eq!(top_level_keys(&resp.text), order);
    assert_eq!(document["datasetJSONVersion"], "1.1.0");
    assert_eq!(document["itemGroupOID"], "IG.DV");
    assert_eq!(document["name"], "DV");
    assert_eq!(document["label"], "Protocol Deviations");
    assert_eq!(document["originator"], "Example Pharma");
    assert_eq!(document["sourceSystem"]["name"], "TrialOps");

    let rows = check_table(document);
    let summary: Vec<(String, i64, String, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["USUBJID"].as_str().unwrap().to_string(),
                r["DVSEQ"].as_i64().unwrap(),
                r["DVREFID"].as_str().unwrap().to_string(),
                r["DVSPID"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("TOP-7-001-0042".to_string(), 1, ext.clone(), json!("EDC-9")),
            ("TOP-7-001-0042".to_string(), 2, no_ext.clone(), Value::Null),
            ("TOP-7-001-0042".to_string(), 3, late.clone(), Value::Null),
            (
                "TOP-7-002-0007".to_string(),
                1,
                prefixed.clone(),
                json!("EDC-1")
            ),
        ]
    );
    assert!(rows.iter().all(|r| r["DVREFID"] != foreign.as_str()));
    let first = &rows[0];
    assert_eq!(first["STUDYID"], "TOP-7");
    assert_eq!(first["DOMAIN"], "DV");
    assert_eq!(first["DVTERM"], "Consent form v2 not signed before visit 3");
    assert_eq!(first["DVDECOD"], "INFORMED CONSENT");
    assert_eq!(first["DVCAT"], "IMPORTANT");
    assert_eq!(first["DVSTDTC"], "2026-03-02");
    assert_eq!(rows[1]["DVDECOD"], "VISIT SCHEDULE");
    assert_eq!(rows[1]["DVCAT"], "NON-IMPORTANT");
    assert_eq!(rows[3]["DVDECOD"], "STUDY PROCEDURE");

    // The other study's export holds its own deviation only.
    let theirs = app
        .admin_get(&format!("/api/v1/studies/{other}/sdtm/dv"))
        .await;
    let their_rows = check_table(theirs.ok(200));
    assert_eq!(their_rows.len(), 1);
    assert_eq!(their_rows[0]["DVREFID"], foreign.as_str());
    assert_eq!(theirs.header("x-excluded-deviations").as_deref(), Some("0"));

    // The same table as CSV.
    let csv = app
        .admin_csv(&format!("/api/v1/studies/{study}/sdtm/dv"))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(
        csv.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(csv.header("x-excluded-deviations").as_deref(), Some("2"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], VARIABLES.join(","));
    assert_eq!(lines.len(), 1 + rows.len());
    assert_eq!(
        lines[1],
        format!(
            "TOP-7,DV,TOP-7-001-0042,1,{ext},EDC-9,Consent form v2 not signed before visit 3,INFORMED CONSENT,IMPORTANT,2026-03-02"
        )
    );
}

#[actix_web::test]
async fn an_empty_study_is_a_valid_empty_dataset_and_the_validator_catches_breakage() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let resp = app
        .admin_get(&format!("/api/v1/studies/{study}/sdtm/dv"))
        .await;
    let document = resp.ok(200).clone();
    assert_eq!(document["records"], 0);
    assert_eq!(resp.header("x-excluded-deviations").as_deref(), Some("0"));
    assert!(schema_valid(&document).0);
    // The schema check would fail if the export broke the format.
    let mut extra_key = document.clone();
    extra_key["data"] = json!([]);
    let mut bad_version = document.clone();
    bad_version["datasetJSONVersion"] = json!("1.0");
    let mut bad_type = document.clone();
    bad_type["columns"][3]["dataType"] = json!("int");
    for broken in [extra_key, bad_version, bad_type] {
        let (valid, output) = schema_valid(&broken);
        assert!(!valid, "accepted {broken}");
        assert!(!output.contains("Traceback"), "{output}");
    }
}

#[actix_web::test]
async fn readers_see_the_deviations_they_may_read() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let mine = app.site_id(&study, json!({"site_number": "001"})).await;
    let theirs = app.site_id(&study, json!({"site_number": "002"})).await;
    let own = deviation(&app, &study, &mine, json!({"participant_ref": "1"})).await;
    deviation(&app, &study, &theirs, json!({"participant_ref": "2"})).await;
    let site_client = app.token_for(Role::Site, &[], &[&mine], None).await;
    let resp = app
        .get(&format!("/api/v1/studies/{study}/sdtm/dv"), &site_client)
        .await;
    let rows = check_table(resp.ok(200));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["DVREFID"], own.as_str());

    let other = app.study_id(json!({})).await;
    let cro = app.token_for(Role::Cro, &[&other], &[], None).await;
    app.get(&format!("/api/v1/studies/{study}/sdtm/dv"), &cro)
        .await
        .problem(404);
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    assert_eq!(
        check_table(
            app.get(&format!("/api/v1/studies/{study}/sdtm/dv"), &auditor)
                .await
                .ok(200)
        )
        .len(),
        2
    );
}
