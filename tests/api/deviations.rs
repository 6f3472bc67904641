//! Protocol deviations: reporting, correcting and withdrawing them (never deleting them),
//! their rules, `reporting_overdue`, the required change reason, filters, and who may do
//! what.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate, Utc};
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, bad, id_of, ids, spawn_app};
use crate::roles::World;

fn deviation_body(study_id: &str, site_id: &str, overrides: Value) -> Value {
    let mut body = json!({
        "study_id": study_id,
        "site_id": site_id,
        "participant_ref": "DE-001-0042",
        "category": "visit_schedule",
        "description": "Visit 4 done three days out of window",
        "importance": "not_important",
        "occurred_on": "2026-03-01",
        "detected_on": "2026-03-02"
    });
    json_patch::merge(&mut body, &overrides);
    body
}

async fn create_deviation(app: &TestApp, study_id: &str, site_id: &str, overrides: Value) -> Value {
    app.admin_post(
        "/api/v1/deviations",
        &deviation_body(study_id, site_id, overrides),
    )
    .await
    .ok(201)
    .clone()
}

/// A study and one of its sites.
async fn study_and_site(app: &TestApp, study: Value) -> (String, String) {
    let study = id_of(&app.create_study(study).await);
    let site = app.site_id(&study, json!({})).await;
    (study, site)
}

/// How many rows, deleted or not, hold the deviation `id`.
async fn count_rows(app: &TestApp, id: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM deviations WHERE id = '{id}'");
    app.count(&sql).await
}

#[actix_web::test]
async fn deviation_lifecycle_from_report_to_withdrawal() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let body = deviation_body(&study, &site, json!({"external_id": "EDC-PD-1"}));
    let reason = Some("Found at monitoring visit");
    let (deviation, path) = app
        .create_checked_with("/api/v1/deviations", &body, reason)
        .await;
    let id = id_of(&deviation);
    assert_eq!(deviation["status"], "open");
    assert_eq!(deviation["version"], 1);
    assert_eq!(deviation["reporting_overdue"], false);
    assert_eq!(deviation["participant_ref"], "DE-001-0042");
    assert!(
        deviation.get("deleted_at").is_none(),
        "never deleted, so no deleted_at"
    );

    app.assert_reads_back(&path, &deviation).await;

    let resp = app.admin_patch_with(&path, &json!({"status": "under_review", "reported_on": "2026-03-03", "root_cause": "Holiday"}), Some("Reported to sponsor"))
    .await;
    assert_eq!(resp.ok(200)["version"], 2);
    assert_eq!(resp.body["reported_on"], "2026-03-03");
    assert_eq!(resp.header("etag").as_deref(), Some("\"2\""));

    let invalidated = json!({"status": "invalidated"});
    let resp = app
        .admin_patch_with(&path, &invalidated, Some("Duplicate of EDC-PD-0"))
        .await;
    assert_eq!(resp.ok(200)["status"], "invalidated");
    // Withdrawn, still there.
    assert_eq!(app.admin_get(&path).await.ok(200)["status"], "invalidated");

    let events = app
        .audit_trail(&id, "deviation", &["create", "update", "update"])
        .await;
    assert_eq!(events[0]["study_id"], study.as_str());
    assert_eq!(events[0]["reason"], "Found at monitoring visit");
    assert_eq!(events[1]["reason"], "Reported to sponsor");
    assert_eq!(
        events[1]["changes"]["status"],
        json!({"old": "open", "new": "under_review"})
    );
    assert_eq!(
        events[1]["changes"]["reported_on"],
        json!({"old": null, "new": "2026-03-03"})
    );
    assert_eq!(events[2]["reason"], "Duplicate of EDC-PD-0");
    assert!(
        events[2]["changes"].get("reporting_overdue").is_none(),
        "derived values are not audited"
    );

    // The external id is unique.
    let dup = app
        .admin_post(
            "/api/v1/deviations",
            &deviation_body(&study, &site, json!({"external_id": "EDC-PD-1"})),
        )
        .await;
    dup.problem(409);
}

#[actix_web::test]
async fn invalid_deviations_are_refused() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let (_, foreign_site) = study_and_site(&app, json!({})).await;
    let deleted_site = app.site_id(&study, json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/sites/{deleted_site}"))
        .await;
    let before = app.fingerprint().await;
    let cases = [
        bad("participant_ref", json!("   "), "format"),
        bad("participant_ref", json!("a@b.org"), "format"),
        bad("participant_ref", json!("x".repeat(65)), "format"),
        bad("participant_ref", json!("Jane Doe"), "format"),
        bad("participant_ref", json!(""), "format"),
        (
            json!({"occurred_on": "2026-03-05", "detected_on": "2026-03-04"}),
            "detected_on",
            "order",
        ),
        bad("reported_on", json!("2026-03-01"), "order"),
        bad("irb_reported_on", json!("2026-02-28"), "order"),
        bad("detected_on", json!(null), "required"),
        bad("occurred_on", json!("2026-02-30"), "format"),
        bad("description", json!(" "), "blank"),
        bad("importance", json!("major"), "enum"),
        bad("category", json!("weather"), "enum"),
        bad("status", json!("deleted"), "enum"),
        bad("site_id", json!(null), "required"),
        bad("site_id", json!(foreign_site), "reference"),
        bad("site_id", json!(deleted_site), "reference"),
        bad("site_id", json!(Uuid::now_v7().to_string()), "reference"),
        bad("reporting_overdue", json!(false), "unknown_field"),
        bad("deleted_at", json!("2026-03-01T00:00:00Z"), "unknown_field"),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .admin_post(
                "/api/v1/deviations",
                &deviation_body(&study, &site, overrides.clone()),
            )
            .await;
        resp.refuses(field, code, &overrides.to_string());
    }
    // A study that does not exist is a 404.
    let ghost = Uuid::now_v7().to_string();
    app.admin_post(
        "/api/v1/deviations",
        &deviation_body(&ghost, &site, json!({})),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before, "nothing written");

    // The edges that are allowed: 64 characters, and dates on the same day.
    let ok = create_deviation(
        &app,
        &study,
        &site,
        json!({
            "participant_ref": "x".repeat(64), "occurred_on": "2026-03-02",
            "reported_on": "2026-03-02", "irb_reported_on": "2026-03-02"
        }),
    )
    .await;
    assert_eq!(ok["participant_ref"], "x".repeat(64));
}

#[actix_web::test]
async fn a_patch_cannot_move_a_deviation_or_break_its_rules() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let (other_study, _) = study_and_site(&app, json!({})).await;
    let sibling_site = app.site_id(&study, json!({})).await;
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let path = format!("/api/v1/deviations/{}", id_of(&deviation));
    let before = app.fingerprint().await;
    let cases = [
        bad("study_id", json!(other_study), "immutable"),
        bad("site_id", json!(sibling_site), "immutable"),
        bad("detected_on", json!("2026-02-01"), "order"),
        bad("reported_on", json!("2026-03-01"), "order"),
        bad("participant_ref", json!("a@b.org"), "format"),
        bad("description", json!(null), "not_nullable"),
        bad("reporting_overdue", json!(true), "unknown_field"),
    ];
    for (patch, field, code) in cases {
        let resp = app.admin_patch_with(&path, &patch, Some("try")).await;
        resp.refuses(field, code, &patch.to_string());
    }
    assert_eq!(app.fingerprint().await, before, "nothing written");
    // `null` clears an optional field.
    let resp = app
        .admin_patch_with(&path, &json!({"participant_ref": null}), Some("r"))
        .await;
    assert!(resp.ok(200)["participant_ref"].is_null());
}

#[actix_web::test]
async fn patch_requires_a_change_reason() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let path = format!("/api/v1/deviations/{}", id_of(&deviation));
    app.assert_reason_required(&path, &json!({"status": "closed"}))
        .await;
    assert_eq!(app.admin_get(&path).await.body["status"], "open");
}

#[actix_web::test]
async fn deviations_are_never_deleted() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let id = id_of(&deviation);
    let path = format!("/api/v1/deviations/{id}");
    let before = app.fingerprint().await;

    let resp = app.admin_delete(&path).await;
    resp.problem(405);
    assert_eq!(resp.header("allow").as_deref(), Some("GET, PATCH"));
    assert_eq!(app.admin_get(&path).await.ok(200), &deviation);
    assert_eq!(app.fingerprint().await, before);

    // Not even behind the service's back: the database turns DELETE into a no-op.
    let mut conn = app.db().await;
    let deleted = diesel::sql_query("DELETE FROM deviations")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    let deleted = diesel::sql_query("DELETE FROM deviations WHERE id = $1::uuid")
        .bind::<Text, _>(&id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    assert_eq!(count_rows(&app, &id).await, 1);
    assert_eq!(app.admin_get(&path).await.ok(200), &deviation);
    assert_eq!(app.fingerprint().await, before);
}

fn days_ago(days: u64) -> String {
    Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(days))
        .unwrap()
        .to_string()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[actix_web::test]
async fn reporting_overdue_follows_the_studys_window() {
    let app = spawn_app().await;
    // Default window: 7 days.
    let (study, site) = study_and_site(&app, json!({})).await;
    // A 3-day window.
    let (short, short_site) = study_and_site(&app, json!({"deviation_reporting_days": 3})).await;
    let cases = [
        // (study, site, importance, detected_on, reported_on, overdue)
        (
            &study,
            &site,
            "important",
            "2026-01-01".to_string(),
            Some("2026-01-08"),
            false,
        ),
        (
            &study,
            &site,
            "important",
            "2026-01-01".to_string(),
            Some("2026-01-09"),
            true,
        ),
        (
            &study,
            &site,
            "important",
            "2026-01-01".to_string(),
            Some("2026-01-01"),
            false,
        ),
        (&study, &site, "important", days_ago(7), None, false),
        (&study, &site, "important", days_ago(8), None, true),
        (
            &study,
            &site,
            "not_important",
            "2020-01-01".to_string(),
            None,
            false,
        ),
        (
            &study,
            &site,
            "not_important",
            "2020-01-01".to_string(),
            Some("2021-01-01"),
            false,
        ),
        (&short, &short_site, "important", days_ago(3), None, false),
        (&short, &short_site, "important", days_ago(4), None, true),
        (
            &short,
            &short_site,
            "important",
            "2026-01-01".to_string(),
            Some("2026-01-05"),
            true,
        ),
    ];
    let mut expected_overdue = BTreeSet::new();
    let mut expected_in_time = BTreeSet::new();
    let mut short_unreported = None;
    for (study_id, site_id, importance, detected, reported, overdue) in &cases {
        let deviation = create_deviation(
            &app,
            study_id,
            site_id,
            json!({
                "importance": importance, "occurred_on": detected, "detected_on": detected,
                "reported_on": reported
            }),
        )
        .await;
        let what = format!("{importance} detected {detected} reported {reported:?} in {study_id}");
        assert_eq!(
            deviation["reporting_overdue"], *overdue,
            "create answer: {what}"
        );
        let read = app
            .admin_get(&format!("/api/v1/deviations/{}", id_of(&deviation)))
            .await;
        assert_eq!(read.ok(200)["reporting_overdue"], *overdue, "read: {what}");
        if *overdue {
            expected_overdue.insert(id_of(&deviation));
        } else {
            expected_in_time.insert(id_of(&deviation));
        }
        if *study_id == &short && reported.is_none() && date(detected) < date(&days_ago(3)) {
            short_unreported = Some(id_of(&deviation));
        }
    }

    // Lists answer the same, over studies with different windows, and filter by it.
    let all = app.admin_get("/api/v1/deviations?limit=3").await;
    assert!(all.ok(200)["next_cursor"].is_string());
    let mut listed_overdue = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/deviations?limit=3&cursor={c}"),
            None => "/api/v1/deviations?limit=3".into(),
        };
        let page = app.admin_json(&path).await;
        for row in page["data"].as_array().unwrap() {
            if row["reporting_overdue"] == true {
                listed_overdue.insert(id_of(row));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(listed_overdue, expected_overdue, "list rows");
    let filtered = app
        .admin_get("/api/v1/deviations?reporting_overdue=true&limit=1000")
        .await;
    assert_eq!(ids(filtered.ok(200)), expected_overdue, "filter true");
    assert!(
        filtered.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["reporting_overdue"] == true)
    );
    let filtered = app
        .admin_get("/api/v1/deviations?reporting_overdue=false")
        .await;
    assert_eq!(ids(filtered.ok(200)), expected_in_time, "filter false");

    // The study's setting decides: widen the short window and the unreported one is in time.
    let short_unreported = short_unreported.unwrap();
    app.admin_patch_ok(
        &format!("/api/v1/studies/{short}"),
        &json!({"deviation_reporting_days": 10}),
    )
    .await;
    let read = app
        .admin_get(&format!("/api/v1/deviations/{short_unreported}"))
        .await;
    assert_eq!(read.ok(200)["reporting_overdue"], false);
    let filtered = app
        .admin_get(&format!(
            "/api/v1/deviations?reporting_overdue=true&study_id={short}"
        ))
        .await;
    // The one reported on 2026-01-05 (four days after detection) is in time now too.
    assert!(ids(filtered.ok(200)).is_empty());
}

#[actix_web::test]
async fn deviations_filter_by_study_site_category_importance_and_status() {
    let app = spawn_app().await;
    let (a, site_a) = study_and_site(&app, json!({})).await;
    let (b, site_b) = study_and_site(&app, json!({})).await;
    let d1 = create_deviation(&app, &a, &site_a, json!({"category": "informed_consent", "importance": "important", "reported_on": "2026-03-02"})).await;
    let d2 = create_deviation(&app, &a, &site_a, json!({"status": "closed"})).await;
    let d3 = create_deviation(
        &app,
        &b,
        &site_b,
        json!({"category": "privacy", "status": "invalidated"}),
    )
    .await;
    let set = |rows: &[&Value]| -> BTreeSet<String> { rows.iter().map(|r| id_of(r)).collect() };
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (format!("study_id={a}"), set(&[&d1, &d2])),
        (format!("site_id={site_b}"), set(&[&d3])),
        ("category=informed_consent".into(), set(&[&d1])),
        ("importance=important".into(), set(&[&d1])),
        ("importance=not_important".into(), set(&[&d2, &d3])),
        ("status=closed".into(), set(&[&d2])),
        ("status=invalidated".into(), set(&[&d3])),
        (format!("study_id={b}&category=privacy"), set(&[&d3])),
        (format!("study_id={a}&category=privacy"), set(&[])),
        ("external_id=none".into(), set(&[])),
    ];
    let refused = ["importance=major", "reporting_overdue=maybe"];
    app.assert_filters("/api/v1/deviations", cases, &refused)
        .await;
}

#[actix_web::test]
async fn a_site_client_reports_deviations_for_its_own_sites_only() {
    let world = World::new().await;
    let app = &world.app;
    let (a, b) = (world.a(), world.b());
    let site = world.token(Role::Site);
    // A second site of study A, not the `site` client's.
    let sibling_site = app.site_id(&a.study, json!({})).await;
    let before = app.fingerprint().await;
    // Another site of its own study, another study's site, a site that does not exist, and
    // its own site under another study: all as absent as nothing.
    let ghost = Uuid::now_v7().to_string();
    for (study, site_id) in [
        (&a.study, &sibling_site),
        (&b.study, &b.site),
        (&a.study, &ghost),
        (&b.study, &a.site),
    ] {
        let resp = app
            .post(
                "/api/v1/deviations",
                site,
                &deviation_body(study, site_id, json!({})),
            )
            .await;
        resp.problem(404);
    }
    assert_eq!(app.fingerprint().await, before, "nothing written");

    let own = app
        .post(
            "/api/v1/deviations",
            site,
            &deviation_body(&a.study, &a.site, json!({})),
        )
        .await;
    let own = own.ok(201).clone();
    let events = app.audit_events(&id_of(&own)).await;
    assert_eq!(events[0]["role"], "site");
    // It reads its own and lists nothing else.
    let listed = ids(app.get("/api/v1/deviations", site).await.ok(200));
    assert_eq!(listed, BTreeSet::from([a.deviation.clone(), id_of(&own)]));
    let sibling = create_deviation(app, &a.study, &sibling_site, json!({})).await;
    app.get(&format!("/api/v1/deviations/{}", id_of(&sibling)), site)
        .await
        .problem(404);
}
