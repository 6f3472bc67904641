//! `POST /api/v1/studies/import/ctgov`: a ClinicalTrials.gov v2 record (the fixture
//! `ctgov/NCT06008288.json`, used as it is) becomes a study and its sites through the
//! normal write path; a second import changes nothing.

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, fixture_path, spawn_app};

const IMPORT: &str = "/api/v1/studies/import/ctgov";

fn fixture() -> Value {
    let path = fixture_path("ctgov/NCT06008288.json");
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

async fn import(
    app: &TestApp,
    token: &str,
    query: &str,
    body: &Value,
    reason: Option<&str>,
) -> Resp {
    let path = format!("{IMPORT}{query}");
    app.post_with(&path, token, body, reason).await
}

/// An answer with the ids of what it created erased: what a dry run answers.
fn without_new_ids(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if answer["study"]["action"] == "create" {
        answer["study"]["id"] = Value::Null;
    }
    for site in answer["sites"].as_array_mut().unwrap() {
        if site["action"] == "create" {
            site["id"] = Value::Null;
        }
    }
    answer
}

async fn feed(app: &TestApp) -> Vec<Value> {
    app.admin_get("/api/v1/changes?limit=1000").await.ok(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[actix_web::test]
async fn the_fixture_is_imported_then_a_second_import_changes_nothing() {
    let app = spawn_app().await;
    let record = fixture();

    // Creating needs a currency.
    let before = app.fingerprint().await;
    let resp = import(&app, &app.admin_token, "", &record, None).await;
    assert_eq!(resp.invalid_fields(), ["currency"]);
    assert_eq!(resp.body["errors"][0]["code"], "required");
    assert_eq!(app.fingerprint().await, before);

    // A dry run answers what would be created and writes nothing.
    let dry = import(
        &app,
        &app.admin_token,
        "?currency=EUR&dry_run=true",
        &record,
        None,
    )
    .await;
    let dry_answer = dry.ok(200).clone();
    assert_eq!(app.fingerprint().await, before);
    assert_eq!(dry_answer["study"]["action"], "create");
    assert!(dry_answer["study"]["id"].is_null());

    let resp = import(&app, &app.admin_token, "?currency=EUR", &record, None).await;
    let answer = resp.ok(201).clone();
    let study_id = answer["study"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/studies/{study_id}"))
    );
    // The dry run said the same, ids aside.
    assert_eq!(without_new_ids(&answer), dry_answer);

    let study = app.admin_json(&format!("/api/v1/studies/{study_id}")).await;
    assert_eq!(study["protocol_number"], "JAB-21822-2001");
    assert_eq!(study["nct_id"], "NCT06008288");
    assert_eq!(study["phase"], "phase2");
    assert_eq!(study["status"], "recruiting");
    assert_eq!(study["actual_start_date"], "2023-10-27");
    assert_eq!(study["planned_end_date"], "2027-12-31");
    assert_eq!(study["target_enrollment"], 88);
    assert_eq!(study["currency"], "EUR");
    assert!(
        study["title"]
            .as_str()
            .unwrap()
            .starts_with("A Single-arm, Multicenter")
    );
    assert_eq!(
        answer["study"]["changes"]["protocol_number"],
        json!({"old": null, "new": "JAB-21822-2001"})
    );

    let sites = app
        .admin_get(&format!("/api/v1/sites?study_id={study_id}&limit=1000"))
        .await
        .ok(200)["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sites.len(), 31);
    assert!(sites.iter().all(|s| s["country"] == "CN"));
    let count = |status: &str| sites.iter().filter(|s| s["status"] == status).count();
    assert_eq!((count("enrolling"), count("planned")), (29, 2));
    let mut numbers: Vec<&str> = sites
        .iter()
        .map(|s| s["site_number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers.first(), Some(&"001"));
    assert_eq!(numbers.last(), Some(&"031"));
    assert_eq!(answer["sites"][0]["site_number"], "001");
    assert_eq!(
        answer["sites"][0]["name"],
        "Anhui Provincial Cancer Hospital"
    );
    assert_eq!(answer["sites"][0]["city"], "Hefei");
    // Non-ASCII text survives unchanged, in the answer and in the database.
    assert!(sites.iter().any(|s| s["city"] == "Xi\u{2019}an"), "Xi’an");
    assert!(
        sites
            .iter()
            .any(|s| s["name"].as_str().unwrap().contains('\u{FF06}')),
        "＆"
    );
    assert!(
        answer["sites"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["city"] == "Xi\u{2019}an")
    );
    let ignored: Vec<&str> = answer["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for path in [
        "protocolSection.statusModule.primaryCompletionDateStruct",
        "protocolSection.descriptionModule",
        "derivedSection",
        "protocolSection.contactsLocationsModule.locations[].geoPoint",
    ] {
        assert!(ignored.contains(&path), "{path} not in {ignored:?}");
    }

    // Audited with the default reason, and on the feed.
    let events = app.audit_events(&study_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "ClinicalTrials.gov import");
    let site_events = app.audit_events(sites[0]["id"].as_str().unwrap()).await;
    assert_eq!(site_events[0]["reason"], "ClinicalTrials.gov import");
    let changes = feed(&app).await;
    let created_sites = changes
        .iter()
        .filter(|c| {
            c["entity_type"] == "site"
                && c["action"] == "create"
                && c["study_id"] == study_id.as_str()
        })
        .count();
    assert_eq!(created_sites, 31);
    assert!(
        changes
            .iter()
            .any(|c| c["entity_type"] == "study" && c["entity_id"] == study_id.as_str())
    );

    // The same record again: nothing changes, nothing is written.
    let before = app.fingerprint().await;
    let again = import(&app, &app.admin_token, "?currency=EUR", &record, None).await;
    let again = again.ok(200);
    assert_eq!(again["study"]["action"], "unchanged");
    assert_eq!(again["study"]["changes"], json!({}));
    assert!(
        again["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "unchanged"),
        "{again}"
    );
    assert_eq!(app.fingerprint().await, before);
    // Also wrapped as a search answer, and without a currency (an update needs none).
    let wrapped = json!({"studies": [record]});
    assert_eq!(
        import(&app, &app.admin_token, "", &wrapped, None)
            .await
            .ok(200)["study"]["action"],
        "unchanged"
    );
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn a_changed_record_updates_and_reports_sites_it_no_longer_lists() {
    let app = spawn_app().await;
    let mut record = fixture();
    let first = import(&app, &app.admin_token, "?currency=USD", &record, None).await;
    let study_id = first.ok(201)["study"]["id"].as_str().unwrap().to_string();

    let protocol = &mut record["protocolSection"];
    protocol["statusModule"]["overallStatus"] = json!("ACTIVE_NOT_RECRUITING");
    protocol["designModule"]["enrollmentInfo"] = json!({"count": 90, "type": "ESTIMATED"});
    let locations = protocol["contactsLocationsModule"]["locations"]
        .as_array_mut()
        .unwrap();
    let dropped = locations.remove(1);
    locations[0]["status"] = json!("COMPLETED");
    locations.push(json!({"facility": "Seoul National University Hospital", "city": "Seoul", "country": "Korea, Republic of", "status": "RECRUITING"}));
    locations.push(json!({"facility": "No Country Clinic", "city": "Nowhere"}));
    // The same facility with other case and spacing is the same site.
    locations[2]["facility"] = json!(
        locations[2]["facility"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace(' ', "  ")
    );

    let dry = import(&app, &app.admin_token, "?dry_run=true", &record, None).await;
    let dry = dry.ok(200).clone();
    let resp = import(
        &app,
        &app.admin_token,
        "",
        &record,
        Some("Registry update of 2026-12"),
    )
    .await;
    let answer = resp.ok(200).clone();
    assert_eq!(without_new_ids(&answer), dry);
    assert_eq!(answer["study"]["action"], "update");
    assert_eq!(
        answer["study"]["changes"]["status"],
        json!({"old": "recruiting", "new": "active_not_recruiting"})
    );
    assert_eq!(
        answer["study"]["changes"]["target_enrollment"],
        json!({"old": 88, "new": 90})
    );
    let sites = answer["sites"].as_array().unwrap();
    let of = |action: &str| {
        sites
            .iter()
            .filter(|s| s["action"] == action)
            .collect::<Vec<_>>()
    };
    // Site 001 closed, site 003 renamed by case; the new Korean site is 032.
    assert_eq!(of("update").len(), 2, "{sites:?}");
    assert_eq!(of("update")[0]["site_number"], "001");
    assert_eq!(of("update")[0]["status"], "closed");
    assert_eq!(of("create").len(), 1);
    assert_eq!(of("create")[0]["site_number"], "032");
    assert_eq!(of("create")[0]["country"], "KR");
    let gone = of("not_in_record");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["name"], dropped["facility"]);
    assert_eq!(gone[0]["status"], "enrolling");
    assert_eq!(of("unchanged").len(), 28);
    assert!(
        answer["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("has no country"))
    );

    // The site the record dropped stays as it was.
    let kept = app
        .admin_get(&format!(
            "/api/v1/sites/{}",
            gone[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(kept.ok(200)["version"], 1);
    let events = app.audit_events(&study_id).await;
    assert_eq!(
        events.last().unwrap()["reason"],
        "Registry update of 2026-12"
    );
    assert_eq!(events.last().unwrap()["action"], "update");
}

#[actix_web::test]
async fn refusals_are_clean_and_write_nothing() {
    let app = spawn_app().await;
    let record = fixture();
    let study = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;
    let vendor = app.create_vendor(json!({})).await;
    let vendor = vendor["id"].as_str().unwrap();
    let mut refused = Vec::new();
    for (role, studies, sites, vendor) in [
        (Role::Cro, vec![study.as_str()], vec![], None),
        (Role::Site, vec![], vec![site.as_str()], None),
        (Role::Vendor, vec![], vec![], Some(vendor)),
        (Role::Auditor, vec![], vec![], None),
        (Role::Analyst, vec![], vec![], None),
    ] {
        refused.push(app.token_for(role, &studies, &sites, vendor).await);
    }
    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;
    let before = app.fingerprint().await;

    // Roles: admin and sponsor only.
    for token in &refused {
        import(&app, token, "?currency=EUR&dry_run=true", &record, None)
            .await
            .problem(403);
    }
    import(&app, &sponsor, "?currency=EUR&dry_run=true", &record, None)
        .await
        .ok(200);

    // Bad parameters and bodies.
    import(
        &app,
        &app.admin_token,
        "?currency=EUR&dryrun=true",
        &record,
        None,
    )
    .await
    .problem(400);
    import(
        &app,
        &app.admin_token,
        "?currency=EUR&dry_run=maybe",
        &record,
        None,
    )
    .await
    .problem(400);
    assert_eq!(
        import(&app, &app.admin_token, "?currency=euro", &record, None)
            .await
            .invalid_fields(),
        ["currency"]
    );
    import(
        &app,
        &app.admin_token,
        "?currency=EUR",
        &json!([record]),
        None,
    )
    .await
    .problem(400);
    let text = app
        .send(
            app.request("POST", IMPORT, &app.admin_token)
                .header("content-type", "text/plain")
                .body("x"),
        )
        .await;
    text.problem(415);

    let mut broken = record.clone();
    broken["protocolSection"]["identificationModule"]["orgStudyIdInfo"] = json!({});
    broken["protocolSection"]["designModule"]["phases"] = json!(["PHASE1", "PHASE3"]);
    assert_eq!(
        import(&app, &app.admin_token, "?currency=EUR", &broken, None)
            .await
            .invalid_fields(),
        [
            "protocolSection.identificationModule.orgStudyIdInfo.id",
            "protocolSection.designModule.phases"
        ]
    );
    let mut expanded = record.clone();
    expanded["protocolSection"]["statusModule"]["overallStatus"] = json!("AVAILABLE");
    let resp = import(&app, &app.admin_token, "?currency=EUR", &expanded, None).await;
    assert_eq!(
        resp.invalid_fields(),
        ["protocolSection.statusModule.overallStatus"]
    );
    assert_eq!(resp.body["errors"][0]["code"], "expanded_access");

    // The body limit is 5 MiB: 2 MiB of ignored text is fine, 6 MiB is a 413.
    for (mib, status) in [(2, 200), (6, 413)] {
        let mut padded = record.clone();
        padded["derivedSection"]["padding"] = json!("x".repeat(mib * 1024 * 1024));
        let dry_run = "?currency=EUR&dry_run=true";
        let resp = import(&app, &app.admin_token, dry_run, &padded, None).await;
        resp.expect(status, &format!("{mib} MiB"));
    }
    assert_eq!(app.fingerprint().await, before);

    // Conflicts: another study holds the protocol number; two studies hold the NCT id.
    let holder = app
        .study_id(json!({"protocol_number": "JAB-21822-2001"}))
        .await;
    import(&app, &app.admin_token, "?currency=EUR", &record, None)
        .await
        .problem(409);
    app.admin_delete_ok(&format!("/api/v1/studies/{holder}"))
        .await;
    app.study_id(json!({"nct_id": "NCT06008288"})).await;
    app.study_id(json!({"nct_id": "NCT06008288"})).await;
    let before = app.fingerprint().await;
    let resp = import(&app, &app.admin_token, "?currency=EUR", &record, None).await;
    assert!(resp.detail(409).contains("NCT06008288"));
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn an_existing_study_keeps_its_numbering_and_fields_the_record_does_not_set() {
    let app = spawn_app().await;
    let study = app
        .study_id(
            json!({"protocol_number": "JAB-21822-2001", "nct_id": "NCT06008288", "currency": "CHF",
                         "indication": "Pancreatic cancer", "planned_start_date": "2023-09-01"}),
        )
        .await;
    app.site_id(&study, json!({"site_number": "007", "name": "Beijing Cancer Hospital", "city": "beijing", "country": "CN"})).await;
    app.site_id(
        &study,
        json!({"site_number": "A-1", "name": "Elsewhere", "country": "DE"}),
    )
    .await;
    let answer = import(&app, &app.admin_token, "", &fixture(), None).await;
    let answer = answer.ok(200);
    assert_eq!(answer["study"]["action"], "update");
    assert!(answer["study"]["changes"].get("indication").is_none());
    assert!(answer["study"]["changes"].get("currency").is_none());
    let read = app.admin_get(&format!("/api/v1/studies/{study}")).await;
    assert_eq!(read.ok(200)["indication"], "Pancreatic cancer");
    assert_eq!(read.body["planned_start_date"], "2023-09-01");
    assert_eq!(read.body["actual_start_date"], "2023-10-27");
    let sites = answer["sites"].as_array().unwrap();
    // Beijing Cancer Hospital matched (city case aside) and was updated; new sites follow 007.
    let beijing = sites
        .iter()
        .find(|s| s["name"] == "Beijing Cancer Hospital")
        .unwrap();
    assert_eq!(beijing["site_number"], "007");
    assert_eq!(beijing["action"], "update");
    assert_eq!(beijing["city"], "Beijing");
    let created: Vec<&str> = sites
        .iter()
        .filter(|s| s["action"] == "create")
        .map(|s| s["site_number"].as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 30);
    assert_eq!(created[0], "008");
    assert_eq!(created[29], "037");
    assert_eq!(
        sites
            .iter()
            .filter(|s| s["action"] == "not_in_record")
            .count(),
        1
    );

    // A currency change under live budget lines is the write path's 409, in a dry run too.
    app.admin_post("/api/v1/budget-lines", &json!({"study_id": study, "category": "lab", "description": "Lab", "planned_amount": "100.00"}))
        .await
        .ok(201);
    let before = app.fingerprint().await;
    import(
        &app,
        &app.admin_token,
        "?currency=EUR&dry_run=true",
        &fixture(),
        None,
    )
    .await
    .problem(409);
    import(&app, &app.admin_token, "?currency=EUR", &fixture(), None)
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before);
    let same = import(&app, &app.admin_token, "?currency=CHF", &fixture(), None).await;
    assert_eq!(same.ok(200)["study"]["action"], "unchanged");
}
