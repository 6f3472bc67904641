//! Vendors: create, read, update, delete, their rules, the references that keep a vendor
//! alive, and who may do what.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use trialops::domain::ids::VendorId;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, bad, column, id_of, spawn_app};

fn ids(resp: &Resp) -> Vec<String> {
    column(resp.ok(200), "id")
}

#[actix_web::test]
async fn vendor_lifecycle_with_its_audit_trail() {
    let app = spawn_app().await;
    let body = json!({
        "external_id": "SUP-1",
        "name": "Example Central Lab",
        "kind": "central_lab",
        "country": "DE",
        "contact_email": "trials@lab.example",
        "qualified_on": "2026-01-15"
    });
    let (vendor, path) = app.create_checked("/api/v1/vendors", &body).await;
    assert_eq!(vendor["status"], "onboarding", "the default status");
    assert_eq!(vendor["kind"], "central_lab");
    assert_eq!(vendor["qualified_on"], "2026-01-15");

    app.assert_reads_back(&path, &vendor).await;

    let patched = app
        .admin_patch(
            &path,
            &json!({"status": "qualified", "contact_email": null}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["status"], "qualified");
    assert!(patched["contact_email"].is_null());
    assert_eq!(patched["name"], "Example Central Lab", "absent fields stay");
    assert_eq!(patched["version"], 2);

    app.assert_deleted(&path, &json!({"name": "x"})).await;
    assert!(ids(&app.admin_get("/api/v1/vendors").await).is_empty());
    let id = id_of(&vendor);
    let with_deleted = app.admin_get("/api/v1/vendors?include_deleted=true").await;
    assert_eq!(ids(&with_deleted), vec![id.clone()]);
    assert!(with_deleted.body["data"][0]["deleted_at"].is_string());
    assert_eq!(with_deleted.body["data"][0]["version"], 3);

    let events = app
        .audit_trail(&id, "vendor", &["create", "update", "delete"])
        .await;
    for event in &events {
        assert!(event["study_id"].is_null(), "vendors belong to no study");
    }
    assert_eq!(events[0]["changes"]["name"]["new"], "Example Central Lab");
    assert_eq!(
        events[1]["changes"],
        json!({
            "status": {"old": "onboarding", "new": "qualified"},
            "contact_email": {"old": "trials@lab.example", "new": null}
        })
    );
    assert!(events[2]["changes"]["deleted_at"]["new"].is_string());
    assert!(events[2]["data"].is_null());
}

#[actix_web::test]
async fn invalid_vendors_are_422_naming_each_field_and_write_nothing() {
    let app = spawn_app().await;
    let before = app.fingerprint().await;
    let cases = [
        (json!({"name": "  "}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": null}), "name"),
        (json!({"kind": "bank"}), "kind"),
        (json!({"status": "active_ish"}), "status"),
        (json!({"country": "XX"}), "country"),
        (json!({"country": "de"}), "country"),
        (json!({"country": "DEU"}), "country"),
        (json!({"contact_email": "not-an-email"}), "contact_email"),
        (json!({"contact_email": "a@"}), "contact_email"),
        (json!({"qualified_on": "2026-02-30"}), "qualified_on"),
        (json!({"qualified_on": "15.01.2026"}), "qualified_on"),
        (json!({"external_id": "x".repeat(101)}), "external_id"),
        (json!({"website": "https://lab.example"}), "website"),
        (json!({"id": Uuid::now_v7()}), "id"),
    ];
    for (overrides, field) in cases {
        let mut body = json!({"name": "Lab", "kind": "central_lab"});
        json_patch::merge(&mut body, &overrides);
        let resp = app.admin_post("/api/v1/vendors", &body).await;
        resp.refuses_field(field, &overrides.to_string());
    }
    let wrong_type = app
        .admin_post("/api/v1/vendors", &json!({"name": 7, "kind": "cro"}))
        .await;
    assert_eq!(wrong_type.invalid_fields(), ["name"]);
    assert_eq!(app.fingerprint().await, before);

    // A PATCH runs the same rules.
    let vendor = app.create_vendor(json!({})).await;
    let path = format!("/api/v1/vendors/{}", id_of(&vendor));
    let before = app.fingerprint().await;
    for (patch, field, code) in [
        bad("name", json!(null), "not_nullable"),
        bad("kind", json!(null), "not_nullable"),
        bad("name", json!(" "), "blank"),
        bad("contact_email", json!("nope"), "email"),
        bad("country", json!("ZZ"), "format"),
        bad("kind", json!("bank"), "enum"),
        bad("version", json!(9), "unknown_field"),
    ] {
        let resp = app.admin_patch(&path, &patch).await;
        resp.refuses(field, code, &patch.to_string());
    }
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn vendor_filters_and_unique_external_id() {
    let app = spawn_app().await;
    let lab = app
        .create_vendor(json!({"kind": "central_lab", "country": "DE", "external_id": "E-1"}))
        .await;
    let cro = app
        .create_vendor(json!({"kind": "cro", "country": "US", "status": "active"}))
        .await;
    let irt = app
        .create_vendor(json!({"kind": "irt", "status": "active"}))
        .await;
    let (lab, cro, irt) = (id_of(&lab), id_of(&cro), id_of(&irt));
    let list = |query: &'static str| {
        let app = &app;
        async move { ids(&app.admin_get(&format!("/api/v1/vendors{query}")).await) }
    };
    assert_eq!(list("").await, vec![lab.clone(), cro.clone(), irt.clone()]);
    assert_eq!(list("?kind=cro").await, vec![cro.clone()]);
    assert_eq!(list("?status=active").await, vec![cro.clone(), irt.clone()]);
    assert_eq!(list("?status=onboarding").await, vec![lab.clone()]);
    assert_eq!(list("?country=DE").await, vec![lab.clone()]);
    assert_eq!(list("?external_id=E-1").await, vec![lab.clone()]);
    assert_eq!(list("?kind=irt&status=active").await, vec![irt.clone()]);
    assert!(list("?kind=cro&country=DE").await.is_empty());
    app.admin_get("/api/v1/vendors?kind=bank")
        .await
        .problem(400);
    // Pages walk every vendor once.
    let first = app.admin_get("/api/v1/vendors?limit=2").await;
    assert_eq!(ids(&first), vec![lab.clone(), cro.clone()]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .admin_get(&format!("/api/v1/vendors?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), vec![irt.clone()]);
    assert!(second.body["next_cursor"].is_null());

    let before = app.fingerprint().await;
    let dup = app
        .admin_post(
            "/api/v1/vendors",
            &json!({"name": "Other", "kind": "edc", "external_id": "E-1"}),
        )
        .await;
    assert!(dup.detail(409).contains("external_id"));
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn if_match_guards_vendor_patch_and_delete() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(json!({})).await;
    let path = format!("/api/v1/vendors/{}", id_of(&vendor));
    app.assert_if_match_guards(&path, "name").await;
}

async fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.db().await;
    conn.batch_execute(statement).await.unwrap();
}

/// A vendor named by a live milestone, site, budget line or risk stays (409, nothing
/// written); once the reference is gone (deleted, or pointed elsewhere) it can go.
#[actix_web::test]
async fn a_vendor_named_by_live_rows_cannot_be_deleted() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;

    // Each case names the vendor one way, then takes the reference away again.
    let cases = ["milestone", "site", "budget line", "risk"];
    for case in cases {
        let vendor = app.vendor_id(json!({})).await;
        let path = format!("/api/v1/vendors/{vendor}");
        // How the reference is taken away again: an API call, or SQL for the tables whose
        // API is built elsewhere.
        let release: String = match case {
            "milestone" => {
                let m = app
                    .create_milestone(&study, json!({"vendor_id": vendor}))
                    .await;
                format!("DELETE:/api/v1/milestones/{}", id_of(&m))
            }
            "site" => {
                let s = app
                    .create_site(&study, json!({"cro_vendor_id": vendor}))
                    .await;
                format!("PATCH:/api/v1/sites/{}", id_of(&s))
            }
            "budget line" => {
                let line = Uuid::now_v7();
                // The budget line API is built elsewhere: the row goes in by SQL.
                sql(&app, &format!(
                    "INSERT INTO budget_lines (id, study_id, vendor_id, category, description, planned_amount, currency)
                     VALUES ('{line}', '{study}', '{vendor}', 'vendor_services', 'Lab services', 1000.00, 'EUR')"
                ))
                .await;
                format!("SQL:UPDATE budget_lines SET deleted_at = now() WHERE id = '{line}'")
            }
            _ => {
                let risk = Uuid::now_v7();
                sql(&app, &format!(
                    "INSERT INTO risks (id, study_id, vendor_id, title, category, likelihood, impact, detectability, status)
                     VALUES ('{risk}', '{study}', '{vendor}', 'Lab capacity', 'vendor', 2, 3, 2, 'open')"
                ))
                .await;
                format!("SQL:UPDATE risks SET deleted_at = now() WHERE id = '{risk}'")
            }
        };

        let before = app.fingerprint().await;
        let refused = app.admin_delete(&path).await;
        let detail = refused.detail(409).to_string();
        assert!(detail.contains(case), "{case}: {detail}");
        assert_eq!(app.fingerprint().await, before, "{case}: nothing written");
        app.admin_get(&path).await.ok(200);

        match release.split_once(':').unwrap() {
            ("DELETE", target) => {
                app.admin_delete_ok(target).await;
            }
            ("PATCH", target) => {
                app.admin_patch_ok(target, &json!({"cro_vendor_id": null}))
                    .await;
            }
            (_, statement) => sql(&app, statement).await,
        }
        app.admin_delete_ok(&path).await;
        app.admin_get(&path).await.problem(404);
    }

    // A deleted vendor cannot be named again.
    let gone = app.vendor_id(json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/vendors/{gone}"))
        .await;
    let before = app.fingerprint().await;
    let site = app.admin_post("/api/v1/sites", &json!({"study_id": study, "site_number": "X-1", "name": "S", "country": "DE", "cro_vendor_id": gone}))
        .await;
    assert_eq!(site.invalid_fields(), vec!["cro_vendor_id".to_string()]);
    assert_eq!(site.body["errors"][0]["code"], "reference");
    assert_eq!(app.fingerprint().await, before);
}

/// A write that starts naming a vendor holds it `FOR SHARE` from its check until it
/// commits; a delete arriving between the check and the insert waits for it, then sees
/// the new reference and refuses. (After the insert the foreign key's own lock would hold
/// the vendor too; the window this test opens is the one before it.)
#[actix_web::test]
async fn a_vendor_delete_waits_for_a_write_naming_the_vendor() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let vendor = app.vendor_id(json!({})).await;
    let vendor_id: VendorId = vendor.parse().unwrap();

    let mut conn = app.db().await;
    conn.batch_execute("BEGIN").await.unwrap();
    trialops::db::vendors::lock_for_reference(&mut conn, vendor_id, "vendor_id")
        .await
        .unwrap();

    let request = app
        .http
        .delete(app.url(&format!("/api/v1/vendors/{vendor}")))
        .bearer_auth(&app.admin_token);
    let delete = actix_web::rt::spawn(async move { request.send().await.unwrap().status() });
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(!delete.is_finished(), "the delete waits for the reference");
    conn.batch_execute(&format!(
        "INSERT INTO milestones (id, study_id, vendor_id, name, kind, status)
         VALUES ('{}', '{study}', '{vendor}', 'Kits shipped', 'vendor_deliverable', 'planned');
         COMMIT;",
        Uuid::now_v7()
    ))
    .await
    .unwrap();
    assert_eq!(delete.await.unwrap().as_u16(), 409);
    app.admin_get(&format!("/api/v1/vendors/{vendor}"))
        .await
        .ok(200);
}

/// The other order: a delete in flight holds the vendor `FOR UPDATE`; a milestone naming
/// it waits, then finds the vendor gone (422) instead of pointing at a deleted vendor.
#[actix_web::test]
async fn a_write_naming_a_vendor_waits_for_its_delete() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let vendor = app.vendor_id(json!({})).await;

    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "BEGIN;
         SELECT id FROM vendors WHERE id = '{vendor}' FOR UPDATE;
         UPDATE vendors SET deleted_at = now(), version = version + 1 WHERE id = '{vendor}';"
    ))
    .await
    .unwrap();

    let request = app
        .http
        .post(app.url("/api/v1/milestones"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"study_id": study, "vendor_id": vendor, "name": "Kits", "kind": "vendor_deliverable"}));
    let create = actix_web::rt::spawn(async move {
        let resp = request.send().await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(!create.is_finished(), "the insert waits for the delete");
    conn.batch_execute("COMMIT").await.unwrap();
    let (status, body) = create.await.unwrap();
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "vendor_id");
    assert_eq!(body["errors"][0]["code"], "reference");

    let naming = format!("SELECT count(*) FROM milestones WHERE vendor_id = '{vendor}'");
    assert_eq!(app.count(&naming).await, 0);
}
