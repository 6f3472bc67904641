//! Protocol deviations: reporting, correcting and withdrawing them (never deleting them),
//! their rules, `reporting_overdue`, the required change reason, filters, and who may do
//! what.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, spawn_app};

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
    app.post(
        "/api/v1/deviations",
        &app.admin_token,
        &deviation_body(study_id, site_id, overrides),
    )
    .await
    .ok(201)
    .clone()
}

fn ids(page: &Value) -> BTreeSet<String> {
    page["data"].as_array().unwrap().iter().map(id_of).collect()
}

/// A study and one of its sites.
async fn study_and_site(app: &TestApp, study: Value) -> (String, String) {
    let study = id_of(&app.create_study(study).await);
    let site = id_of(&app.create_site(&study, json!({})).await);
    (study, site)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count_rows(app: &TestApp, id: &str) -> i64 {
    let mut conn = app.db().await;
    diesel::sql_query("SELECT count(*) AS n FROM deviations WHERE id = $1::uuid")
        .bind::<Text, _>(id)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[actix_web::test]
async fn deviation_lifecycle_from_report_to_withdrawal() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let created = app
        .send(
            app.http
                .post(app.url("/api/v1/deviations"))
                .bearer_auth(&app.admin_token)
                .header("x-change-reason", "Found at monitoring visit")
                .json(&deviation_body(
                    &study,
                    &site,
                    json!({"external_id": "EDC-PD-1"}),
                )),
        )
        .await;
    let deviation = created.ok(201).clone();
    let id = id_of(&deviation);
    let path = format!("/api/v1/deviations/{id}");
    assert_eq!(created.header("location").as_deref(), Some(path.as_str()));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(deviation["status"], "open");
    assert_eq!(deviation["version"], 1);
    assert_eq!(deviation["reporting_overdue"], false);
    assert_eq!(deviation["participant_ref"], "DE-001-0042");
    assert!(
        deviation.get("deleted_at").is_none(),
        "never deleted, so no deleted_at"
    );

    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200), &deviation);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let resp = app.patch_with(&path,
        &app.admin_token,
        &json!({"status": "under_review", "reported_on": "2026-03-03", "root_cause": "Holiday"}),
        Some("Reported to sponsor"),
    )
    .await;
    assert_eq!(resp.ok(200)["version"], 2);
    assert_eq!(resp.body["reported_on"], "2026-03-03");
    assert_eq!(resp.header("etag").as_deref(), Some("\"2\""));

    let resp = app
        .patch_with(
            &path,
            &app.admin_token,
            &json!({"status": "invalidated"}),
            Some("Duplicate of EDC-PD-0"),
        )
        .await;
    assert_eq!(resp.ok(200)["status"], "invalidated");
    // Withdrawn, still there.
    assert_eq!(
        app.get(&path, &app.admin_token).await.ok(200)["status"],
        "invalidated"
    );

    let events = app.audit_events(&id).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "update"]);
    assert_eq!(events[0]["entity_type"], "deviation");
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
        .post(
            "/api/v1/deviations",
            &app.admin_token,
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
    let deleted_site = id_of(&app.create_site(&study, json!({})).await);
    app.delete(&format!("/api/v1/sites/{deleted_site}"), &app.admin_token)
        .await
        .ok(204);
    let before = app.fingerprint().await;
    let cases = [
        (
            json!({"participant_ref": "   "}),
            "participant_ref",
            "format",
        ),
        (
            json!({"participant_ref": "a@b.org"}),
            "participant_ref",
            "format",
        ),
        (
            json!({"participant_ref": "x".repeat(65)}),
            "participant_ref",
            "format",
        ),
        (
            json!({"participant_ref": "Jane Doe"}),
            "participant_ref",
            "format",
        ),
        (json!({"participant_ref": ""}), "participant_ref", "format"),
        (
            json!({"occurred_on": "2026-03-05", "detected_on": "2026-03-04"}),
            "detected_on",
            "order",
        ),
        (json!({"reported_on": "2026-03-01"}), "reported_on", "order"),
        (
            json!({"irb_reported_on": "2026-02-28"}),
            "irb_reported_on",
            "order",
        ),
        (json!({"detected_on": null}), "detected_on", "required"),
        (
            json!({"occurred_on": "2026-02-30"}),
            "occurred_on",
            "format",
        ),
        (json!({"description": " "}), "description", "blank"),
        (json!({"importance": "major"}), "importance", "enum"),
        (json!({"category": "weather"}), "category", "enum"),
        (json!({"status": "deleted"}), "status", "enum"),
        (json!({"site_id": null}), "site_id", "required"),
        (json!({"site_id": foreign_site}), "site_id", "reference"),
        (json!({"site_id": deleted_site}), "site_id", "reference"),
        (
            json!({"site_id": Uuid::now_v7().to_string()}),
            "site_id",
            "reference",
        ),
        (
            json!({"reporting_overdue": false}),
            "reporting_overdue",
            "unknown_field",
        ),
        (
            json!({"deleted_at": "2026-03-01T00:00:00Z"}),
            "deleted_at",
            "unknown_field",
        ),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .post(
                "/api/v1/deviations",
                &app.admin_token,
                &deviation_body(&study, &site, overrides.clone()),
            )
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec![field.to_string()],
            "{overrides}: {}",
            resp.text
        );
        assert_eq!(resp.body["errors"][0]["code"], code, "{overrides}");
    }
    // A study that does not exist is a 404.
    let ghost = Uuid::now_v7().to_string();
    app.post(
        "/api/v1/deviations",
        &app.admin_token,
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
    let sibling_site = id_of(&app.create_site(&study, json!({})).await);
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let path = format!("/api/v1/deviations/{}", id_of(&deviation));
    let before = app.fingerprint().await;
    let cases = [
        (json!({"study_id": other_study}), "study_id", "immutable"),
        (json!({"site_id": sibling_site}), "site_id", "immutable"),
        (json!({"detected_on": "2026-02-01"}), "detected_on", "order"),
        (json!({"reported_on": "2026-03-01"}), "reported_on", "order"),
        (
            json!({"participant_ref": "a@b.org"}),
            "participant_ref",
            "format",
        ),
        (json!({"description": null}), "description", "not_nullable"),
        (
            json!({"reporting_overdue": true}),
            "reporting_overdue",
            "unknown_field",
        ),
    ];
    for (patch, field, code) in cases {
        let resp = app
            .patch_with(&path, &app.admin_token, &patch, Some("try"))
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec![field.to_string()],
            "{patch}: {}",
            resp.text
        );
        assert_eq!(resp.body["errors"][0]["code"], code, "{patch}");
    }
    assert_eq!(app.fingerprint().await, before, "nothing written");
    // `null` clears an optional field.
    let resp = app
        .patch_with(
            &path,
            &app.admin_token,
            &json!({"participant_ref": null}),
            Some("r"),
        )
        .await;
    assert!(resp.ok(200)["participant_ref"].is_null());
}

#[actix_web::test]
async fn patch_requires_a_change_reason() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let path = format!("/api/v1/deviations/{}", id_of(&deviation));
    let before = app.fingerprint().await;
    for reason in [None, Some(""), Some("  ")] {
        let resp = app
            .patch_with(
                &path,
                &app.admin_token,
                &json!({"status": "closed"}),
                reason,
            )
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec!["X-Change-Reason".to_string()],
            "{reason:?}"
        );
        assert_eq!(resp.body["errors"][0]["code"], "required");
    }
    assert_eq!(app.fingerprint().await, before, "nothing changed");
    assert_eq!(
        app.get(&path, &app.admin_token).await.body["status"],
        "open"
    );
}

#[actix_web::test]
async fn deviations_are_never_deleted() {
    let app = spawn_app().await;
    let (study, site) = study_and_site(&app, json!({})).await;
    let deviation = create_deviation(&app, &study, &site, json!({})).await;
    let id = id_of(&deviation);
    let path = format!("/api/v1/deviations/{id}");
    let before = app.fingerprint().await;

    let resp = app.delete(&path, &app.admin_token).await;
    resp.problem(405);
    assert_eq!(resp.header("allow").as_deref(), Some("GET, PATCH"));
    assert_eq!(app.get(&path, &app.admin_token).await.ok(200), &deviation);
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
    assert_eq!(app.get(&path, &app.admin_token).await.ok(200), &deviation);
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
            .get(
                &format!("/api/v1/deviations/{}", id_of(&deviation)),
                &app.admin_token,
            )
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
    let all = app
        .get("/api/v1/deviations?limit=3", &app.admin_token)
        .await;
    assert!(all.ok(200)["next_cursor"].is_string());
    let mut listed_overdue = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/deviations?limit=3&cursor={c}"),
            None => "/api/v1/deviations?limit=3".into(),
        };
        let page = app.get(&path, &app.admin_token).await.ok(200).clone();
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
        .get(
            "/api/v1/deviations?reporting_overdue=true&limit=1000",
            &app.admin_token,
        )
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
        .get(
            "/api/v1/deviations?reporting_overdue=false",
            &app.admin_token,
        )
        .await;
    assert_eq!(ids(filtered.ok(200)), expected_in_time, "filter false");

    // The study's setting decides: widen the short window and the unreported one is in time.
    let short_unreported = short_unreported.unwrap();
    app.patch(
        &format!("/api/v1/studies/{short}"),
        &app.admin_token,
        &json!({"deviation_reporting_days": 10}),
    )
    .await
    .ok(200);
    let read = app
        .get(
            &format!("/api/v1/deviations/{short_unreported}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(read.ok(200)["reporting_overdue"], false);
    let filtered = app
        .get(
            &format!("/api/v1/deviations?reporting_overdue=true&study_id={short}"),
            &app.admin_token,
        )
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
    for (query, expected) in cases {
        let resp = app
            .get(&format!("/api/v1/deviations?{query}"), &app.admin_token)
            .await;
        assert_eq!(ids(resp.ok(200)), expected, "{query}");
    }
    app.get("/api/v1/deviations?importance=major", &app.admin_token)
        .await
        .problem(400);
    app.get(
        "/api/v1/deviations?reporting_overdue=maybe",
        &app.admin_token,
    )
    .await
    .problem(400);
}

// ---------------------------------------------------------------------------------------
// Who may do what, as a table: every role against every endpoint, on a deviation inside
// and one outside the caller's scope. The world: studies A and B with sites A1 and B1 and
// one deviation at each (DA, DB). The `cro` is scoped to A, the `site` client to A1; the
// `vendor` sees no deviation. Create names A / A1 (in scope) or B / B1 (out of scope).
// DELETE is 405 for everyone: there is no such operation.

const L: u16 = 200;
const H: u16 = 404;

struct Line {
    role: Role,
    list: [u16; 2],
    read: [u16; 2],
    create: [u16; 2],
    patch: [u16; 2],
}

#[rustfmt::skip]
const TABLE: &[Line] = &[
    //                          list          read                create              patch
    Line { role: Role::Admin,   list: [L, L], read: [200, 200], create: [201, 201], patch: [200, 200] },
    Line { role: Role::Sponsor, list: [L, L], read: [200, 200], create: [201, 201], patch: [200, 200] },
    Line { role: Role::Cro,     list: [L, H], read: [200, 404], create: [201, 404], patch: [200, 404] },
    Line { role: Role::Site,    list: [L, H], read: [200, 404], create: [201, 404], patch: [200, 404] },
    Line { role: Role::Vendor,  list: [H, H], read: [404, 404], create: [403, 403], patch: [404, 404] },
    Line { role: Role::Auditor, list: [L, L], read: [200, 200], create: [403, 403], patch: [403, 403] },
    Line { role: Role::Analyst, list: [L, L], read: [200, 200], create: [403, 403], patch: [403, 403] },
];

struct World {
    app: TestApp,
    tokens: Vec<(Role, String)>,
    studies: [String; 2],
    sites: [String; 2],
    deviations: [String; 2],
    /// A second site of study A, not the `site` client's.
    sibling_site: String,
}

impl World {
    async fn new() -> Self {
        let app = spawn_app().await;
        let (a, a1) = study_and_site(&app, json!({"title": "Study A"})).await;
        let (b, b1) = study_and_site(&app, json!({"title": "Study B"})).await;
        let sibling_site = id_of(&app.create_site(&a, json!({})).await);
        let da = id_of(&create_deviation(&app, &a, &a1, json!({})).await);
        let db = id_of(&create_deviation(&app, &b, &b1, json!({})).await);
        let vendor = Uuid::now_v7().to_string();
        let mut conn = app.db().await;
        diesel::sql_query("INSERT INTO vendors (id, name, kind) VALUES ($1::uuid, 'V', 'cro')")
            .bind::<Text, _>(&vendor)
            .execute(&mut conn)
            .await
            .unwrap();
        let mut tokens = vec![(Role::Admin, app.admin_token.clone())];
        for line in &TABLE[1..] {
            let token = match line.role {
                Role::Cro => app.token_for(Role::Cro, &[&a], &[], None).await,
                Role::Site => app.token_for(Role::Site, &[], &[&a1], None).await,
                Role::Vendor => app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await,
                role => app.token_for(role, &[], &[], None).await,
            };
            tokens.push((line.role, token));
        }
        Self {
            app,
            tokens,
            studies: [a, b],
            sites: [a1, b1],
            deviations: [da, db],
            sibling_site,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

#[actix_web::test]
async fn deviation_endpoints_follow_the_role_table() {
    let world = World::new().await;
    let app = &world.app;
    let scopes = ["in scope", "out of scope"];

    for line in TABLE {
        let resp = app.get("/api/v1/deviations", world.token(line.role)).await;
        resp.expect(200, &format!("{} lists", line.role));
        let expected: BTreeSet<String> = (0..2)
            .filter(|&i| line.list[i] == L)
            .map(|i| world.deviations[i].clone())
            .collect();
        assert_eq!(ids(&resp.body), expected, "{} lists", line.role);
    }

    for line in TABLE {
        let token = world.token(line.role);
        for (i, scope) in scopes.iter().enumerate() {
            let what = |op: &str| format!("{} {op} {scope}", line.role);
            let path = format!("/api/v1/deviations/{}", world.deviations[i]);

            let resp = app.get(&path, token).await;
            resp.expect(line.read[i], &what("reads"));
            if resp.status == 200 {
                assert_eq!(resp.body["id"], world.deviations[i].as_str());
            }

            let before = app.fingerprint().await;
            let note = format!("analysed by {}", line.role);
            let resp = app
                .patch_with(&path, token, &json!({"root_cause": note}), Some("table"))
                .await;
            resp.expect(line.patch[i], &what("patches"));
            let after = app.fingerprint().await;
            if resp.status == 200 {
                assert_eq!(resp.body["root_cause"], note.as_str());
                assert_ne!(before, after);
            } else {
                assert_eq!(
                    before,
                    after,
                    "{}: a refused write changed data",
                    what("patches")
                );
            }

            let before = app.fingerprint().await;
            let body = deviation_body(
                &world.studies[i],
                &world.sites[i],
                json!({"description": format!("reported by {}", line.role)}),
            );
            let resp = app.post("/api/v1/deviations", token, &body).await;
            resp.expect(line.create[i], &what("creates"));
            let after = app.fingerprint().await;
            if resp.status == 201 {
                assert_eq!(resp.body["site_id"], world.sites[i].as_str());
                assert_ne!(before, after);
            } else {
                assert_eq!(
                    before,
                    after,
                    "{}: a refused write changed data",
                    what("creates")
                );
            }

            let before = app.fingerprint().await;
            let resp = app.delete(&path, token).await;
            resp.expect(405, &what("deletes"));
            assert_eq!(resp.header("allow").as_deref(), Some("GET, PATCH"));
            assert_eq!(before, app.fingerprint().await, "{}", what("deletes"));
        }
    }
}

#[actix_web::test]
async fn a_site_client_reports_deviations_for_its_own_sites_only() {
    let world = World::new().await;
    let app = &world.app;
    let site = world.token(Role::Site);
    let before = app.fingerprint().await;
    // Another site of its own study, another study's site, a site that does not exist, and
    // its own site under another study: all as absent as nothing.
    let ghost = Uuid::now_v7().to_string();
    for (study, site_id) in [
        (&world.studies[0], &world.sibling_site),
        (&world.studies[1], &world.sites[1]),
        (&world.studies[0], &ghost),
        (&world.studies[1], &world.sites[0]),
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
            &deviation_body(&world.studies[0], &world.sites[0], json!({})),
        )
        .await;
    let own = own.ok(201).clone();
    let events = app.audit_events(&id_of(&own)).await;
    assert_eq!(events[0]["role"], "site");
    // It reads its own and lists nothing else.
    let listed = ids(app.get("/api/v1/deviations", site).await.ok(200));
    assert_eq!(
        listed,
        BTreeSet::from([world.deviations[0].clone(), id_of(&own)])
    );
    let sibling = create_deviation(app, &world.studies[0], &world.sibling_site, json!({})).await;
    app.get(&format!("/api/v1/deviations/{}", id_of(&sibling)), site)
        .await
        .problem(404);
}
