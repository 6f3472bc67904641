//! Risks: the register's CRUD, the derived score, escalation at the study's threshold, the
//! required change reason, filters, and who may do what.

use std::collections::BTreeSet;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, actions, bad, id_of, ids, spawn_app};

/// A vendor row, straight into the database (vendors have their own API elsewhere).
async fn insert_vendor(app: &TestApp, deleted: bool) -> String {
    let id = Uuid::now_v7().to_string();
    let deleted_at = if deleted { "now()" } else { "NULL" };
    let mut conn = app.db().await;
    diesel::sql_query(format!(
        "INSERT INTO vendors (id, name, kind, deleted_at) VALUES ($1::uuid, 'Acme Labs', 'central_lab', {deleted_at})"
    ))
    .bind::<Text, _>(&id)
    .execute(&mut conn)
    .await
    .unwrap();
    id
}

fn risk_body(study_id: &str, overrides: Value) -> Value {
    let mut body = json!({
        "study_id": study_id,
        "title": "Central lab turnaround exceeds 72 h",
        "category": "vendor",
        "likelihood": 2,
        "impact": 2,
        "detectability": 2
    });
    json_patch::merge(&mut body, &overrides);
    body
}

async fn create_risk(app: &TestApp, study_id: &str, overrides: Value) -> Value {
    app.admin_post("/api/v1/risks", &risk_body(study_id, overrides))
        .await
        .ok(201)
        .clone()
}

/// Asserts an escalation event: its reason, and the status it moved from open.
#[track_caller]
fn assert_escalation(escalate: &Value, reason: &str) {
    assert_eq!(escalate["reason"], reason);
    let moved = json!({"status": {"old": "open", "new": "escalated"}});
    assert_eq!(escalate["changes"], moved);
}

#[actix_web::test]
async fn risk_lifecycle() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({})).await;
    let site = app.create_site(study_id, json!({})).await;
    let vendor = insert_vendor(&app, false).await;
    let body = risk_body(
        study_id,
        json!({
            "site_id": site["id"], "vendor_id": vendor, "likelihood": 2, "impact": 3,
            "detectability": 4, "owner": "QA lead", "review_due_on": "2026-06-30"
        }),
    );
    let (risk, path) = app.create_checked("/api/v1/risks", &body).await;
    assert_eq!(risk["score"], 24);
    assert_eq!(risk["status"], "open");
    assert_eq!(risk["version"], 1);
    assert_eq!(risk["site_id"], site["id"]);
    assert_eq!(risk["vendor_id"], vendor.as_str());

    app.assert_reads_back(&path, &risk).await;

    let patched = app
        .admin_patch_with(
            &path,
            &json!({"impact": 1, "mitigation_plan": "Second lab on standby", "site_id": null}),
            Some("Quarterly risk review"),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["score"], 8, "the score follows its factors");
    assert_eq!(patched["version"], 2);
    assert!(patched["site_id"].is_null());
    assert_eq!(patched["mitigation_plan"], "Second lab on standby");

    // A patch that changes nothing writes nothing.
    let same = app
        .admin_patch_with(&path, &json!({"impact": 1}), Some("x"))
        .await;
    assert_eq!(same.ok(200)["version"], 2);

    let events = app.audit_events(&id_of(&risk)).await;
    assert_eq!(actions(&events), ["create", "update"]);
    assert_eq!(events[0]["entity_type"], "risk");
    assert_eq!(events[0]["study_id"], study_id.as_str());
    assert_eq!(events[1]["reason"], "Quarterly risk review");
    assert_eq!(events[1]["changes"]["impact"], json!({"old": 3, "new": 1}));
    assert_eq!(events[1]["changes"]["score"], json!({"old": 24, "new": 8}));

    app.assert_soft_delete(&path, &format!("/api/v1/risks?study_id={study_id}"))
        .await;
    let live = app
        .admin_get(&format!("/api/v1/risks?study_id={study_id}"))
        .await;
    assert!(ids(live.ok(200)).is_empty());
    assert_eq!(
        actions(&app.audit_events(&id_of(&risk)).await),
        ["create", "update", "delete"]
    );
}

#[actix_web::test]
async fn invalid_risks_are_refused() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let other = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();
    let foreign_site = app
        .create_site(other["id"].as_str().unwrap(), json!({}))
        .await;
    let deleted_vendor = insert_vendor(&app, true).await;
    let ghost = Uuid::now_v7().to_string();
    let before = app.fingerprint().await;
    let cases = [
        bad("likelihood", json!(0), "range"),
        bad("likelihood", json!(6), "range"),
        bad("impact", json!(6), "range"),
        bad("detectability", json!(0), "range"),
        bad("likelihood", json!(null), "required"),
        bad("score", json!(8), "unknown_field"),
        bad("title", json!("  "), "blank"),
        bad("title", json!(null), "required"),
        bad("category", json!("weather"), "enum"),
        bad("status", json!("done"), "enum"),
        bad("site_id", json!(foreign_site["id"]), "reference"),
        bad("site_id", json!(ghost), "reference"),
        bad("vendor_id", json!(ghost), "reference"),
        bad("vendor_id", json!(deleted_vendor), "reference"),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .admin_post("/api/v1/risks", &risk_body(study_id, overrides.clone()))
            .await;
        resp.refuses(field, code, &overrides.to_string());
    }
    // A study that does not exist is a 404.
    app.admin_post("/api/v1/risks", &risk_body(&ghost, json!({})))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before, "nothing written");
}

#[actix_web::test]
async fn a_patch_cannot_write_the_score_move_the_risk_or_break_a_rule() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let other = app.create_study(json!({})).await;
    let risk = create_risk(&app, study["id"].as_str().unwrap(), json!({})).await;
    let path = format!("/api/v1/risks/{}", id_of(&risk));
    let before = app.fingerprint().await;
    let cases = [
        bad("score", json!(125), "unknown_field"),
        bad("likelihood", json!(6), "range"),
        bad("detectability", json!(0), "range"),
        bad("impact", json!(null), "not_nullable"),
        bad("study_id", json!(other["id"]), "immutable"),
        bad("site_id", json!(Uuid::now_v7().to_string()), "reference"),
    ];
    for (patch, field, code) in cases {
        let resp = app.admin_patch_with(&path, &patch, Some("try")).await;
        resp.refuses(field, code, &patch.to_string());
    }
    assert_eq!(app.fingerprint().await, before, "nothing written");
}

#[actix_web::test]
async fn patch_requires_a_change_reason() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let risk = create_risk(&app, study["id"].as_str().unwrap(), json!({})).await;
    let path = format!("/api/v1/risks/{}", id_of(&risk));
    app.assert_reason_required(&path, &json!({"title": "Renamed"}))
        .await;
    assert_eq!(app.admin_get(&path).await.body["title"], risk["title"]);
    // Create and delete take a reason but do not demand one.
    app.admin_delete(&path).await.ok(204);
}

#[actix_web::test]
async fn a_risk_created_at_the_threshold_is_escalated_as_its_own_audit_event() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    assert_eq!(study["risk_escalation_threshold"], 45);
    let created = app
        .send(
            app.request("POST", "/api/v1/risks", &app.admin_token)
                .header("x-change-reason", "Initial assessment")
                .json(&risk_body(
                    study["id"].as_str().unwrap(),
                    json!({"likelihood": 3, "impact": 5, "detectability": 3}),
                )),
        )
        .await;
    let risk = created.ok(201).clone();
    assert_eq!(risk["score"], 45);
    assert_eq!(risk["status"], "escalated");
    assert_eq!(risk["version"], 2);
    assert_eq!(created.header("etag").as_deref(), Some("\"2\""));

    let events = app.audit_events(&id_of(&risk)).await;
    assert_eq!(actions(&events), ["create", "escalate"]);
    let (create, escalate) = (&events[0], &events[1]);
    assert_eq!(create["reason"], "Initial assessment");
    assert_eq!(create["changes"]["status"]["new"], "open");
    assert_escalation(escalate, "score 45 reached threshold 45");
    assert_eq!(escalate["actor"], create["actor"], "the writer escalates");
    assert_eq!(escalate["role"], "admin");
    assert_eq!(escalate["entity_version"], 2);
    assert_eq!(escalate["request_id"], create["request_id"]);
    assert_eq!(escalate["data"]["status"], "escalated");
    assert_eq!(
        app.admin_get(&format!("/api/v1/risks/{}", id_of(&risk)))
            .await
            .body,
        risk
    );
}

#[actix_web::test]
async fn below_the_threshold_or_already_closed_a_new_risk_is_left_alone() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({})).await;
    // 40 < 45.
    let below = create_risk(
        &app,
        study_id,
        json!({"likelihood": 2, "impact": 4, "detectability": 5}),
    )
    .await;
    assert_eq!(below["score"], 40);
    assert_eq!(below["status"], "open");
    assert_eq!(below["version"], 1);
    assert_eq!(actions(&app.audit_events(&id_of(&below)).await), ["create"]);

    for status in ["closed", "escalated"] {
        let risk = create_risk(
            &app,
            study_id,
            json!({"likelihood": 5, "impact": 5, "detectability": 5, "status": status}),
        )
        .await;
        assert_eq!(risk["status"], status);
        assert_eq!(risk["version"], 1);
        assert_eq!(actions(&app.audit_events(&id_of(&risk)).await), ["create"]);
    }
}

#[actix_web::test]
async fn an_update_crossing_the_studys_threshold_escalates() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({"risk_escalation_threshold": 20})).await;
    let cro = app.token_for(Role::Cro, &[study_id], &[], None).await;
    // 2 x 3 x 3 = 18 < 20.
    let risk = create_risk(
        &app,
        study_id,
        json!({"likelihood": 2, "impact": 3, "detectability": 3}),
    )
    .await;
    assert_eq!(risk["status"], "open");
    let path = format!("/api/v1/risks/{}", id_of(&risk));

    let resp = app
        .patch_with(&path, &cro, &json!({"likelihood": 3}), Some("New data"))
        .await;
    let escalated = resp.ok(200);
    assert_eq!(escalated["score"], 27);
    assert_eq!(escalated["status"], "escalated");
    assert_eq!(escalated["version"], 3, "update and escalation");
    assert_eq!(resp.header("etag").as_deref(), Some("\"3\""));

    let events = app.audit_events(&id_of(&risk)).await;
    assert_eq!(actions(&events), ["create", "update", "escalate"]);
    let (update, escalate) = (&events[1], &events[2]);
    assert_eq!(update["reason"], "New data");
    assert_escalation(escalate, "score 27 reached threshold 20");
    assert_eq!(escalate["actor"], update["actor"], "the cro escalated it");
    assert_eq!(escalate["role"], "cro");
    assert_ne!(escalate["actor"], events[0]["actor"]);
}

#[actix_web::test]
async fn updates_below_the_threshold_or_staying_above_it_do_not_escalate() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({"risk_escalation_threshold": 20})).await;
    // Raised, but still below: 1x3x3 = 9 -> 2x3x3 = 18.
    let risk = create_risk(
        &app,
        study_id,
        json!({"likelihood": 1, "impact": 3, "detectability": 3}),
    )
    .await;
    let path = format!("/api/v1/risks/{}", id_of(&risk));
    let resp = app
        .admin_patch_with(&path, &json!({"likelihood": 2}), Some("r"))
        .await;
    assert_eq!(resp.ok(200)["score"], 18);
    assert_eq!(resp.body["status"], "open");
    assert_eq!(
        actions(&app.audit_events(&id_of(&risk)).await),
        ["create", "update"]
    );

    // Crossing escalates (18 -> 27); a person then moves it to `mitigating`.
    let resp = app
        .admin_patch_with(&path, &json!({"likelihood": 3}), Some("r"))
        .await;
    assert_eq!(resp.ok(200)["status"], "escalated");
    let resp = app
        .admin_patch_with(
            &path,
            &json!({"status": "mitigating"}),
            Some("Mitigation agreed"),
        )
        .await;
    assert_eq!(resp.ok(200)["status"], "mitigating");

    // Still at or above the threshold, even raised further: the decision stands.
    let resp = app
        .admin_patch_with(&path, &json!({"impact": 4}), Some("r"))
        .await;
    assert_eq!(resp.ok(200)["score"], 36);
    assert_eq!(resp.body["status"], "mitigating");
    let events = app.audit_events(&id_of(&risk)).await;
    assert_eq!(
        actions(&events),
        ["create", "update", "update", "escalate", "update", "update"]
    );

    // Below and back up: reaching the threshold again escalates again.
    let resp = app
        .admin_patch_with(&path, &json!({"likelihood": 1}), Some("r"))
        .await;
    assert_eq!(resp.ok(200)["score"], 12);
    let resp = app
        .admin_patch_with(&path, &json!({"likelihood": 2}), Some("r"))
        .await;
    assert_eq!(resp.ok(200)["score"], 24);
    assert_eq!(resp.body["status"], "escalated");
    let events = app.audit_events(&id_of(&risk)).await;
    assert_eq!(events.last().unwrap()["action"], "escalate");
    assert_eq!(
        events.last().unwrap()["reason"],
        "score 24 reached threshold 20"
    );

    // A closed risk stays closed whatever its score does.
    let closed = create_risk(
        &app,
        study_id,
        json!({"likelihood": 1, "impact": 1, "detectability": 1, "status": "closed"}),
    )
    .await;
    let closed_path = format!("/api/v1/risks/{}", id_of(&closed));
    let resp = app
        .admin_patch_with(
            &closed_path,
            &json!({"likelihood": 5, "impact": 5, "detectability": 5}),
            Some("r"),
        )
        .await;
    assert_eq!(resp.ok(200)["status"], "closed");
    assert_eq!(
        actions(&app.audit_events(&id_of(&closed)).await),
        ["create", "update"]
    );
}

#[actix_web::test]
async fn risks_filter_by_study_site_vendor_category_status_and_score() {
    let app = spawn_app().await;
    let (a, b) = &app.two_studies().await;
    let (a, b) = (a.as_str(), b.as_str());
    let site = app.create_site(a, json!({})).await;
    let vendor = insert_vendor(&app, false).await;
    let r1 = create_risk(
        &app,
        a,
        json!({"site_id": site["id"], "category": "recruitment", "likelihood": 1}),
    )
    .await;
    let r2 = create_risk(
        &app,
        a,
        json!({"vendor_id": vendor, "category": "vendor", "likelihood": 4, "status": "mitigating"}),
    )
    .await;
    let r3 = create_risk(
        &app,
        b,
        json!({"category": "budget", "likelihood": 5, "impact": 5, "detectability": 2}),
    )
    .await;
    let set = |risks: &[&Value]| -> BTreeSet<String> { risks.iter().map(|r| id_of(r)).collect() };
    let vendor_query = format!("vendor_id={vendor}");
    let site_query = format!("site_id={}", id_of(&site));
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (format!("study_id={a}"), set(&[&r1, &r2])),
        (format!("study_id={b}"), set(&[&r3])),
        (site_query, set(&[&r1])),
        (vendor_query, set(&[&r2])),
        ("category=budget".into(), set(&[&r3])),
        ("status=mitigating".into(), set(&[&r2])),
        ("status=escalated".into(), set(&[&r3])),
        ("min_score=16".into(), set(&[&r2, &r3])),
        ("min_score=50".into(), set(&[&r3])),
        (format!("study_id={a}&min_score=16"), set(&[&r2])),
    ];
    let refused = ["category=weather", "min_score=high"];
    app.assert_filters("/api/v1/risks", cases, &refused).await;
}

#[actix_web::test]
async fn a_vendor_client_sees_the_studies_of_the_risks_naming_it() {
    let app = spawn_app().await;
    let a = app.study_id(json!({"title": "Study A"})).await;
    let b = app.study_id(json!({"title": "Study B"})).await;
    let vendor_id = insert_vendor(&app, false).await;
    let ra = id_of(&create_risk(&app, &a, json!({"vendor_id": vendor_id})).await);
    create_risk(&app, &b, json!({})).await;
    let vendor = &app
        .token_for(Role::Vendor, &[], &[], Some(&vendor_id))
        .await;
    let studies = app.get("/api/v1/studies", vendor).await;
    let seen: BTreeSet<String> = ids(studies.ok(200));
    assert_eq!(seen, BTreeSet::from([a]));
    // Once no live risk names the vendor, the study is out of its sight too.
    app.admin_delete(&format!("/api/v1/risks/{ra}"))
        .await
        .ok(204);
    assert!(ids(app.get("/api/v1/studies", vendor).await.ok(200)).is_empty());
    assert!(ids(app.get("/api/v1/risks", vendor).await.ok(200)).is_empty());
}
