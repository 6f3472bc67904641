//! Vendors: create, read, update, delete, their rules, the references that keep a vendor
//! alive, and who may do what.

use std::collections::BTreeSet;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, spawn_app};

fn ids(resp: &crate::helpers::Resp) -> Vec<String> {
    resp.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
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
    let created = app.post("/api/v1/vendors", &app.admin_token, &body).await;
    let vendor = created.ok(201).clone();
    let id = id_of(&vendor);
    let path = format!("/api/v1/vendors/{id}");
    assert_eq!(created.header("location"), Some(path.clone()));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(vendor["status"], "onboarding", "the default status");
    assert_eq!(vendor["version"], 1);
    assert_eq!(vendor["kind"], "central_lab");
    assert_eq!(vendor["qualified_on"], "2026-01-15");

    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200), &vendor);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let patched = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"status": "qualified", "contact_email": null}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["status"], "qualified");
    assert!(patched["contact_email"].is_null());
    assert_eq!(patched["name"], "Example Central Lab", "absent fields stay");
    assert_eq!(patched["version"], 2);

    app.delete(&path, &app.admin_token).await.ok(204);
    app.get(&path, &app.admin_token).await.problem(404);
    app.patch(&path, &app.admin_token, &json!({"name": "x"}))
        .await
        .problem(404);
    assert!(ids(&app.get("/api/v1/vendors", &app.admin_token).await).is_empty());
    let with_deleted = app
        .get("/api/v1/vendors?include_deleted=true", &app.admin_token)
        .await;
    assert_eq!(ids(&with_deleted), vec![id.clone()]);
    assert!(with_deleted.body["data"][0]["deleted_at"].is_string());
    assert_eq!(with_deleted.body["data"][0]["version"], 3);

    let events = app.audit_events(&id).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for event in &events {
        assert_eq!(event["entity_type"], "vendor");
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
        let resp = app.post("/api/v1/vendors", &app.admin_token, &body).await;
        let mut fields = resp.invalid_fields();
        fields.dedup();
        assert_eq!(
            fields,
            vec![field.to_string()],
            "{overrides}: {}",
            resp.text
        );
    }
    let wrong_type = app
        .post(
            "/api/v1/vendors",
            &app.admin_token,
            &json!({"name": 7, "kind": "cro"}),
        )
        .await;
    assert_eq!(wrong_type.invalid_fields(), ["name"]);
    assert_eq!(app.fingerprint().await, before);

    // A PATCH runs the same rules.
    let vendor = app.create_vendor(json!({})).await;
    let path = format!("/api/v1/vendors/{}", id_of(&vendor));
    let before = app.fingerprint().await;
    for (patch, field, code) in [
        (json!({"name": null}), "name", "not_nullable"),
        (json!({"kind": null}), "kind", "not_nullable"),
        (json!({"name": " "}), "name", "blank"),
        (json!({"contact_email": "nope"}), "contact_email", "email"),
        (json!({"country": "ZZ"}), "country", "format"),
        (json!({"kind": "bank"}), "kind", "enum"),
        (json!({"version": 9}), "version", "unknown_field"),
    ] {
        let resp = app.patch(&path, &app.admin_token, &patch).await;
        assert_eq!(resp.invalid_fields(), vec![field.to_string()], "{patch}");
        assert_eq!(resp.body["errors"][0]["code"], code, "{patch}");
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
        async move {
            ids(&app
                .get(&format!("/api/v1/vendors{query}"), &app.admin_token)
                .await)
        }
    };
    assert_eq!(list("").await, vec![lab.clone(), cro.clone(), irt.clone()]);
    assert_eq!(list("?kind=cro").await, vec![cro.clone()]);
    assert_eq!(list("?status=active").await, vec![cro.clone(), irt.clone()]);
    assert_eq!(list("?status=onboarding").await, vec![lab.clone()]);
    assert_eq!(list("?country=DE").await, vec![lab.clone()]);
    assert_eq!(list("?external_id=E-1").await, vec![lab.clone()]);
    assert_eq!(list("?kind=irt&status=active").await, vec![irt.clone()]);
    assert!(list("?kind=cro&country=DE").await.is_empty());
    app.get("/api/v1/vendors?kind=bank", &app.admin_token)
        .await
        .problem(400);
    // Pages walk every vendor once.
    let first = app.get("/api/v1/vendors?limit=2", &app.admin_token).await;
    assert_eq!(ids(&first), vec![lab.clone(), cro.clone()]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(
            &format!("/api/v1/vendors?limit=2&cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(ids(&second), vec![irt.clone()]);
    assert!(second.body["next_cursor"].is_null());

    let before = app.fingerprint().await;
    let dup = app
        .post(
            "/api/v1/vendors",
            &app.admin_token,
            &json!({"name": "Other", "kind": "edc", "external_id": "E-1"}),
        )
        .await;
    assert!(
        dup.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("external_id")
    );
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn if_match_guards_vendor_patch_and_delete() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(json!({})).await;
    let path = format!("/api/v1/vendors/{}", id_of(&vendor));
    let patch = |etag: &'static str| {
        app.http
            .patch(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(json!({"name": format!("n {etag}")}).to_string())
    };
    app.send(patch("\"1\"")).await.ok(200);
    let before = app.fingerprint().await;
    let stale = app.send(patch("\"1\"")).await;
    assert!(
        stale.problem(412)["detail"]
            .as_str()
            .unwrap()
            .contains("\"2\"")
    );
    let delete = |etag: &'static str| {
        app.http
            .delete(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("if-match", etag)
    };
    app.send(delete("\"1\"")).await.problem(412);
    assert_eq!(app.fingerprint().await, before);
    app.send(delete("\"2\"")).await.ok(204);
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
    let study = id_of(&app.create_study(json!({})).await);

    // Each case names the vendor one way, then takes the reference away again.
    let cases = ["milestone", "site", "budget line", "risk"];
    for case in cases {
        let vendor = id_of(&app.create_vendor(json!({})).await);
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
        let refused = app.delete(&path, &app.admin_token).await;
        let detail = refused.problem(409)["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(case), "{case}: {detail}");
        assert_eq!(app.fingerprint().await, before, "{case}: nothing written");
        app.get(&path, &app.admin_token).await.ok(200);

        match release.split_once(':').unwrap() {
            ("DELETE", target) => {
                app.delete(target, &app.admin_token).await.ok(204);
            }
            ("PATCH", target) => {
                app.patch(target, &app.admin_token, &json!({"cro_vendor_id": null}))
                    .await
                    .ok(200);
            }
            (_, statement) => sql(&app, statement).await,
        }
        app.delete(&path, &app.admin_token).await.ok(204);
        app.get(&path, &app.admin_token).await.problem(404);
    }

    // A deleted vendor cannot be named again.
    let gone = id_of(&app.create_vendor(json!({})).await);
    app.delete(&format!("/api/v1/vendors/{gone}"), &app.admin_token)
        .await
        .ok(204);
    let before = app.fingerprint().await;
    let site = app
        .post(
            "/api/v1/sites",
            &app.admin_token,
            &json!({"study_id": study, "site_number": "X-1", "name": "S", "country": "DE", "cro_vendor_id": gone}),
        )
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
    let study = id_of(&app.create_study(json!({})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);
    let vendor_id: Uuid = vendor.parse().unwrap();

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
    app.get(&format!("/api/v1/vendors/{vendor}"), &app.admin_token)
        .await
        .ok(200);
}

/// The other order: a delete in flight holds the vendor `FOR UPDATE`; a milestone naming
/// it waits, then finds the vendor gone (422) instead of pointing at a deleted vendor.
#[actix_web::test]
async fn a_write_naming_a_vendor_waits_for_its_delete() {
    let app = spawn_app().await;
    let study = id_of(&app.create_study(json!({})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);

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

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count =
        diesel::sql_query("SELECT count(*) AS n FROM milestones WHERE vendor_id = $1::uuid")
            .bind::<Text, _>(&vendor)
            .get_result::<Count>(&mut conn)
            .await
            .unwrap();
    assert_eq!(count.n, 0);
}

/// `[own, other]` statuses of list, read, patch and delete (a list status of 200 means
/// "listed", 404 "left out"), and the status of a create.
type RoleRow = (Role, Pair, Pair, u16, Pair, Pair);
type Pair = [u16; 2];

/// Who may do what with vendors: every role, on the vendor client's own vendor and on
/// another one. Vendors are global reference data, so only the `vendor` role
/// has a scope to be in or out of; the `site` role reads none.
#[rustfmt::skip]
const VENDOR_ROLES: &[RoleRow] = &[
    //                list        read        create  patch       delete
    (Role::Admin,   [200, 200], [200, 200], 201,    [200, 200], [204, 204]),
    (Role::Sponsor, [200, 200], [200, 200], 201,    [200, 200], [204, 204]),
    (Role::Cro,     [200, 200], [200, 200], 403,    [403, 403], [403, 403]),
    (Role::Site,    [404, 404], [404, 404], 403,    [404, 404], [404, 404]),
    (Role::Vendor,  [200, 404], [200, 404], 403,    [403, 404], [403, 404]),
    (Role::Auditor, [200, 200], [200, 200], 403,    [403, 403], [403, 403]),
    (Role::Analyst, [200, 200], [200, 200], 403,    [403, 403], [403, 403]),
];

#[actix_web::test]
async fn vendor_endpoints_follow_the_role_table() {
    let app = spawn_app().await;
    let own = id_of(&app.create_vendor(json!({"name": "Own"})).await);
    let other = id_of(&app.create_vendor(json!({"name": "Other"})).await);
    let study = id_of(&app.create_study(json!({})).await);
    let site = id_of(&app.create_site(&study, json!({})).await);
    let mut tokens = Vec::new();
    for &(role, ..) in VENDOR_ROLES {
        let token = match role {
            Role::Admin => app.admin_token.clone(),
            Role::Cro => app.token_for(role, &[&study], &[], None).await,
            Role::Site => app.token_for(role, &[], &[&site], None).await,
            Role::Vendor => app.token_for(role, &[], &[], Some(&own)).await,
            _ => app.token_for(role, &[], &[], None).await,
        };
        tokens.push(token);
    }
    let objects = [&own, &other];

    // Lists first, while the two vendors are all there is.
    for (&(role, list, ..), token) in VENDOR_ROLES.iter().zip(&tokens) {
        let listed: BTreeSet<String> = ids(&app.get("/api/v1/vendors", token).await)
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = objects
            .iter()
            .zip(list)
            .filter(|(_, status)| *status == 200)
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(listed, expected, "{role} lists vendors");
    }

    for (&(role, _, read, create, patch, delete), token) in VENDOR_ROLES.iter().zip(&tokens) {
        for (i, object) in objects.iter().enumerate() {
            let path = format!("/api/v1/vendors/{object}");
            let what = |op: &str| format!("{role} {op} {}", ["own", "other"][i]);

            let resp = app.get(&path, token).await;
            assert_eq!(resp.status, read[i], "{}: {}", what("read"), resp.text);
            if read[i] == 200 {
                assert_eq!(resp.body["id"], object.as_str());
            } else {
                resp.problem(read[i]);
            }

            let before = app.fingerprint().await;
            let name = format!("patched by {role}");
            let resp = app.patch(&path, token, &json!({"name": name})).await;
            assert_eq!(resp.status, patch[i], "{}: {}", what("patch"), resp.text);
            if patch[i] == 200 {
                assert_eq!(resp.body["name"], name.as_str());
            } else {
                resp.problem(patch[i]);
                assert_eq!(app.fingerprint().await, before, "{}", what("patch"));
            }

            // A delete expected to succeed acts on a vendor made for it, so the next row
            // still finds the original.
            let target = if delete[i] == 204 {
                id_of(&app.create_vendor(json!({})).await)
            } else {
                object.to_string()
            };
            let path = format!("/api/v1/vendors/{target}");
            let before = app.fingerprint().await;
            let resp = app.delete(&path, token).await;
            assert_eq!(resp.status, delete[i], "{}: {}", what("delete"), resp.text);
            if delete[i] == 204 {
                app.get(&path, &app.admin_token).await.problem(404);
            } else {
                resp.problem(delete[i]);
                assert_eq!(app.fingerprint().await, before, "{}", what("delete"));
            }
        }

        let before = app.fingerprint().await;
        let resp = app
            .post(
                "/api/v1/vendors",
                token,
                &json!({"name": format!("made by {role}"), "kind": "other"}),
            )
            .await;
        assert_eq!(resp.status, create, "{role} create: {}", resp.text);
        if create == 201 {
            assert_eq!(resp.body["name"], format!("made by {role}"));
        } else {
            resp.problem(create);
            assert_eq!(app.fingerprint().await, before, "{role} create");
        }
    }
}
