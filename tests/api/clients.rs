//! API clients: admin creates, lists, reads and revokes them; secrets are shown once and
//! never again; every change is audited; other roles are refused.
// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use uuid::Uuid;

use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, column, spawn_app};

const CLIENTS: &str = "/api/v1/clients";

/// The client id (`sub`) a token was issued to.
fn token_sub(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

/// Asserts no secret, hash or key with such a name anywhere in a client answer.
#[track_caller]
fn assert_no_secret(resp: &Resp, secrets: &[&str]) {
    let text = resp.text.to_ascii_lowercase();
    assert!(
        !text.contains("secret"),
        "answer mentions a secret: {}",
        resp.text
    );
    assert!(
        !text.contains("hash"),
        "answer mentions a hash: {}",
        resp.text
    );
    assert!(
        !text.contains("$argon2"),
        "answer leaks a hash: {}",
        resp.text
    );
    for secret in secrets {
        assert!(!resp.text.contains(secret), "answer leaks the secret");
    }
}

fn ids_of(list: &Value) -> Vec<String> {
    column(list, "id")
}

/// A vendor row, straight into the database (for `vendor` clients' scope).
async fn insert_vendor(app: &TestApp) -> Uuid {
    let id = Uuid::now_v7();
    let mut conn = app.db().await;
    diesel::sql_query(
        "INSERT INTO vendors (id, name, kind) VALUES ($1, 'Acme Labs', 'central_lab')",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .execute(&mut conn)
    .await
    .unwrap();
    id
}

async fn create_client(app: &TestApp, body: &Value) -> Resp {
    app.admin_post(CLIENTS, body).await
}

/// Creates a `cro` client claiming `study_id` (as admin): the answer, a 201.
async fn cro_client(app: &TestApp, study_id: &str) -> Resp {
    let body = json!({"name": "Acme CRO sync", "role": "cro", "studies": [study_id]});
    let resp = create_client(app, &body).await;
    resp.ok(201);
    resp
}

#[actix_web::test]
async fn admin_creates_a_client_whose_secret_works_and_is_never_shown_again() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();

    let resp = cro_client(&app, study_id).await;
    let created = resp.body.clone();
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert!(client_id.parse::<Uuid>().is_ok());
    assert!(secret.len() >= 32, "a short secret: {secret}");
    assert_eq!(created["id"], client_id);
    assert_eq!(created["name"], "Acme CRO sync");
    assert_eq!(created["role"], "cro");
    assert_eq!(created["studies"], json!([study_id]));
    assert_eq!(created["sites"], json!([]));
    assert!(created["vendor"].is_null());
    assert!(created["revoked_at"].is_null());
    assert_eq!(created["version"], 1);
    assert!(created["created_at"].is_string());
    assert!(
        !resp.text.to_ascii_lowercase().contains("hash"),
        "{}",
        resp.text
    );
    assert!(
        resp.header("cache-control")
            .unwrap_or_default()
            .contains("no-store"),
        "an answer carrying a secret must not be cached"
    );
    if let Some(location) = resp.header("location") {
        assert!(location.ends_with(&format!("/api/v1/clients/{client_id}")));
    }

    // The secret works at the token endpoint, with the client's role and scope.
    let token_resp = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(
        token_resp.ok(200)["scope"],
        format!("role:cro study:{study_id}")
    );
    let token = token_resp.body["access_token"].as_str().unwrap();
    assert_eq!(token_sub(token), client_id);
    app.get(&format!("/api/v1/studies/{study_id}"), token)
        .await
        .ok(200);
    // A CRO may not manage clients.
    app.get(CLIENTS, token).await.problem(403);

    // Reads and lists never show the secret, nor its hash.
    let read = app.admin_get(&format!("{CLIENTS}/{client_id}")).await;
    let record = read.ok(200).clone();
    assert_no_secret(&read, &[&secret]);
    let mut expected = created.clone();
    let fields = expected.as_object_mut().unwrap();
    fields.remove("client_id");
    fields.remove("client_secret");
    assert_eq!(record, expected);

    let list = app.admin_get(CLIENTS).await;
    list.ok(200);
    assert_no_secret(&list, &[&secret]);
    assert!(list.body["next_cursor"].is_null());
    let listed = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == client_id.as_str())
        .unwrap_or_else(|| panic!("new client not listed: {}", list.text));
    assert_eq!(listed, &record);
    // The admin the harness registered is listed too.
    assert!(ids_of(&list.body).contains(&token_sub(&app.admin_token)));

    let with_deleted = app
        .admin_get(&format!("{CLIENTS}?include_deleted=true"))
        .await;
    with_deleted.ok(200);
    assert_no_secret(&with_deleted, &[&secret]);
}

#[actix_web::test]
async fn only_admin_manages_clients_auditor_reads() {
    let app = spawn_app().await;
    let (study_id, site_id) = app.study_and_site().await;
    let vendor_id = insert_vendor(&app).await.to_string();
    let (target, _) = app.register(Role::Analyst, vec![], vec![], None).await;
    let body = json!({"name": "sneaky", "role": "admin"});

    let callers = [
        (
            "sponsor",
            app.token_for(Role::Sponsor, &[], &[], None).await,
        ),
        (
            "cro",
            app.token_for(Role::Cro, &[&study_id], &[], None).await,
        ),
        (
            "site",
            app.token_for(Role::Site, &[], &[&site_id], None).await,
        ),
        (
            "vendor",
            app.token_for(Role::Vendor, &[], &[], Some(&vendor_id))
                .await,
        ),
        (
            "analyst",
            app.token_for(Role::Analyst, &[], &[], None).await,
        ),
    ];
    let before = app.fingerprint().await;
    for (role, token) in &callers {
        let resp = app.post(CLIENTS, token, &body).await;
        assert_eq!(resp.status, 403, "{role} POST: {}", resp.text);
        resp.problem(403);
        assert!(!resp.text.contains("client_secret"), "{role}");

        let resp = app.get(CLIENTS, token).await;
        assert_eq!(resp.status, 403, "{role} list: {}", resp.text);
        resp.problem(403);

        let resp = app.get(&format!("{CLIENTS}/{target}"), token).await;
        assert_eq!(resp.status, 403, "{role} read: {}", resp.text);
        resp.problem(403);

        let resp = app.delete(&format!("{CLIENTS}/{target}"), token).await;
        assert_eq!(resp.status, 403, "{role} revoke: {}", resp.text);
        resp.problem(403);
    }
    assert_eq!(
        app.fingerprint().await,
        before,
        "a refused write changed data"
    );

    // The auditor reads, and writes nothing.
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    let before = app.fingerprint().await;
    let list = app.get(CLIENTS, &auditor).await;
    list.ok(200);
    assert!(ids_of(&list.body).contains(&target));
    assert_no_secret(&list, &[]);
    let read = app.get(&format!("{CLIENTS}/{target}"), &auditor).await;
    assert_eq!(read.ok(200)["id"], target);
    assert_eq!(read.body["role"], "analyst");
    assert_no_secret(&read, &[]);
    let resp = app.post(CLIENTS, &auditor, &body).await;
    resp.problem(403);
    assert!(!resp.text.contains("client_secret"));
    app.delete(&format!("{CLIENTS}/{target}"), &auditor)
        .await
        .problem(403);
    assert_eq!(app.fingerprint().await, before, "an auditor changed data");

    // The target is still a working client.
    let list = app.admin_get(CLIENTS).await;
    assert!(ids_of(list.ok(200)).contains(&target));

    // Without a token: 401, not 403.
    let resp = app.send(app.bare("GET", CLIENTS)).await;
    resp.problem(401);
}

#[actix_web::test]
async fn invalid_clients_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({})).await;
    let site = app.create_site(study_id, json!({})).await;
    let site_id = site["id"].as_str().unwrap();
    let vendor_id = insert_vendor(&app).await;
    let missing = Uuid::now_v7();

    let cases = [
        (json!({"name": "c", "role": "cro"}), "studies"),
        (
            json!({"name": "c", "role": "cro", "studies": []}),
            "studies",
        ),
        (json!({"name": "s", "role": "site"}), "sites"),
        (
            json!({"name": "s", "role": "site", "studies": [study_id]}),
            "sites",
        ),
        (json!({"name": "v", "role": "vendor"}), "vendor"),
        (
            json!({"name": "a", "role": "admin", "studies": [study_id]}),
            "studies",
        ),
        (
            json!({"name": "a", "role": "auditor", "sites": [site_id]}),
            "sites",
        ),
        (
            json!({"name": "a", "role": "analyst", "vendor": vendor_id}),
            "vendor",
        ),
        (
            json!({"name": "c", "role": "cro", "studies": [study_id], "sites": [site_id]}),
            "sites",
        ),
        (json!({"name": "x", "role": "superuser"}), "role"),
        (json!({"name": "x", "role": "Admin"}), "role"),
        (json!({"name": "x"}), "role"),
        (
            json!({"name": "c", "role": "cro", "studies": [missing]}),
            "studies[0]",
        ),
        (
            json!({"name": "c", "role": "cro", "studies": [study_id, missing]}),
            "studies[1]",
        ),
        (
            json!({"name": "s", "role": "site", "sites": [missing]}),
            "sites[0]",
        ),
        (
            json!({"name": "v", "role": "vendor", "vendor": missing}),
            "vendor",
        ),
        (json!({"name": "", "role": "sponsor"}), "name"),
        (json!({"name": "   ", "role": "sponsor"}), "name"),
        (json!({"name": "x".repeat(201), "role": "sponsor"}), "name"),
        (json!({"role": "sponsor"}), "name"),
        (
            json!({"name": "x", "role": "sponsor", "colour": "blue"}),
            "colour",
        ),
        (
            json!({"name": "x", "role": "sponsor", "client_secret": "chosen-by-me"}),
            "client_secret",
        ),
    ];
    let before = app.fingerprint().await;
    for (body, field) in cases {
        let resp = create_client(&app, &body).await;
        assert_eq!(resp.status, 422, "{body}: expected 422, got {}", resp.text);
        let fields = resp.invalid_fields();
        assert!(
            fields.iter().any(|f| f == field),
            "{body}: expected field {field}, got {fields:?}"
        );
        assert!(!resp.text.contains("client_secret\":\""), "{}", resp.text);
    }
    assert_eq!(app.fingerprint().await, before, "a refused create wrote");

    // Each scoped role with its own scope is fine.
    for body in [
        json!({"name": "c", "role": "cro", "studies": [study_id]}),
        json!({"name": "s", "role": "site", "sites": [site_id]}),
        json!({"name": "v", "role": "vendor", "vendor": vendor_id}),
        json!({"name": "a", "role": "auditor", "studies": [], "sites": [], "vendor": null}),
    ] {
        create_client(&app, &body).await.ok(201);
    }
}

#[actix_web::test]
async fn create_and_revoke_are_audited_and_revoked_clients_leave_the_list() {
    let app = spawn_app().await;
    let admin_id = token_sub(&app.admin_token);
    let study_id = &app.study_id(json!({})).await;

    let resp = cro_client(&app, study_id).await;
    let created = resp.body.clone();
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();

    let events = app.audit_events(&id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["action"], "create");
    assert_eq!(event["entity_type"], "client");
    assert_eq!(event["entity_id"], id);
    assert_eq!(event["actor"], admin_id);
    assert_eq!(event["role"], "admin");
    assert_eq!(event["entity_version"], 1);
    assert!(event["reason"].is_null());
    assert_eq!(
        event["request_id"].as_str(),
        resp.header("x-request-id").as_deref()
    );
    assert_eq!(event["changes"]["name"]["new"], "Acme CRO sync");
    assert!(event["changes"]["name"]["old"].is_null());
    assert_eq!(event["changes"]["role"]["new"], "cro");
    assert_eq!(event["changes"]["studies"]["new"], json!([study_id]));
    let text = event.to_string();
    assert!(!text.contains(&secret), "the audit trail holds the secret");
    assert!(
        !text.to_ascii_lowercase().contains("secret") && !text.contains("argon2"),
        "the audit trail mentions a secret or its hash: {text}"
    );

    // Revoke, with a reason.
    let revoke = app
        .send(
            app.request("DELETE", &format!("{CLIENTS}/{id}"), &app.admin_token)
                .header("x-change-reason", "contract ended"),
        )
        .await;
    assert_eq!(revoke.status, 204, "{}", revoke.text);
    assert!(revoke.text.is_empty());

    let events = app.audit_events(&id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let event = &events[1];
    assert_eq!(event["action"], "revoke");
    assert_eq!(event["entity_type"], "client");
    assert_eq!(event["actor"], admin_id);
    assert_eq!(event["role"], "admin");
    assert_eq!(event["entity_version"], 2);
    assert_eq!(event["reason"], "contract ended");
    assert!(event["changes"].get("revoked_at").is_some());
    assert!(event["changes"]["revoked_at"]["old"].is_null());
    assert!(event["changes"]["revoked_at"]["new"].is_string());
    assert!(
        event["changes"].get("name").is_none(),
        "{}",
        event["changes"]
    );
    assert!(!event.to_string().to_ascii_lowercase().contains("secret"));

    // Revoking again: the client is no longer there to revoke.
    let before = app.fingerprint().await;
    app.admin_delete(&format!("{CLIENTS}/{id}"))
        .await
        .problem(404);
    app.admin_delete(&format!("{CLIENTS}/{}", Uuid::now_v7()))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);
    assert_eq!(app.audit_events(&id).await.len(), 2);

    // Gone from the list, back with include_deleted=true, marked revoked.
    let list = app.admin_get(CLIENTS).await;
    assert!(!ids_of(list.ok(200)).contains(&id), "{}", list.text);
    assert!(ids_of(&list.body).contains(&admin_id));
    let list = app
        .admin_get(&format!("{CLIENTS}?include_deleted=true"))
        .await;
    let revoked = list.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("revoked client missing: {}", list.text))
        .clone();
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["version"], 2);
    assert_no_secret(&list, &[&secret]);
}

#[actix_web::test]
async fn change_reason_is_stored_with_the_audit_event() {
    let app = spawn_app().await;
    let resp = app
        .send(
            app.request("POST", CLIENTS, &app.admin_token)
                .header("x-change-reason", "onboarding ticket OPS-42")
                .json(&json!({"name": "BI export", "role": "analyst"})),
        )
        .await;
    let id = resp.ok(201)["id"].as_str().unwrap().to_string();
    let events = app.audit_events(&id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "onboarding ticket OPS-42");
    assert_eq!(events[0]["action"], "create");

    // Over 500 characters: refused, nothing written.
    let before = app.fingerprint().await;
    let resp = app
        .send(
            app.request("POST", CLIENTS, &app.admin_token)
                .header("x-change-reason", "r".repeat(501))
                .json(&json!({"name": "BI export 2", "role": "analyst"})),
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text);
    assert!(
        resp.invalid_fields()
            .iter()
            .any(|f| f.eq_ignore_ascii_case("x-change-reason")),
        "{}",
        resp.text
    );
    assert_eq!(app.fingerprint().await, before);
}
