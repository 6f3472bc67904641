//! Studies: create, read, update (merge patch, If-Match), soft delete, validation.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn create_read_list_a_study() {
    let app = spawn_app().await;
    let created = app
        .create_study(json!({"nct_id": "NCT01234567", "euct_number": "2026-500123-12-00"}))
        .await;
    assert_eq!(created["version"], 1);
    assert_eq!(created["status"], "planning");
    assert_eq!(created["risk_escalation_threshold"], 45);
    assert_eq!(created["deviation_reporting_days"], 7);
    let id = created["id"].as_str().unwrap();

    let read = app.admin_get(&format!("/api/v1/studies/{id}")).await;
    assert_eq!(read.ok(200), &created);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let list = app.admin_get("/api/v1/studies").await;
    assert_eq!(list.ok(200)["data"][0]["id"], id);
    assert!(list.body["next_cursor"].is_null());
}

#[actix_web::test]
async fn create_answers_location_and_etag() {
    let app = spawn_app().await;
    let body = json!({"protocol_number": "LOC-1", "title": "T", "phase": "phase1", "currency": "USD", "target_enrollment": 0});
    let resp = app.admin_post("/api/v1/studies", &body).await;
    resp.ok(201);
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/studies/{}", resp.id()))
    );
    assert_eq!(resp.header("etag").as_deref(), Some("\"1\""));
    // UUIDv7: the version nibble is 7.
    assert_eq!(&resp.id()[14..15], "7");
}

#[actix_web::test]
async fn invalid_studies_are_422_naming_each_field_and_write_nothing() {
    let app = spawn_app().await;
    let before = app.fingerprint().await;
    let cases = [
        (json!({"nct_id": "NCT123"}), "nct_id"),
        (json!({"nct_id": "nct01234567"}), "nct_id"),
        (json!({"euct_number": "2026-12"}), "euct_number"),
        (json!({"currency": "EURO"}), "currency"),
        (json!({"currency": "XYZ"}), "currency"),
        (json!({"currency": "eur"}), "currency"),
        (json!({"target_enrollment": -1}), "target_enrollment"),
        (
            json!({"enrollment_buffer_pct": 101}),
            "enrollment_buffer_pct",
        ),
        (
            json!({"risk_escalation_threshold": 0}),
            "risk_escalation_threshold",
        ),
        (
            json!({"risk_escalation_threshold": 126}),
            "risk_escalation_threshold",
        ),
        (
            json!({"deviation_reporting_days": 0}),
            "deviation_reporting_days",
        ),
        (
            json!({"planned_start_date": "2026-05-01", "planned_end_date": "2026-04-30"}),
            "planned_end_date",
        ),
        (
            json!({"actual_start_date": "2026-05-01", "actual_end_date": "2026-01-01"}),
            "actual_end_date",
        ),
        (json!({"phase": "phase9"}), "phase"),
        (json!({"status": "running"}), "status"),
        (json!({"title": "   "}), "title"),
        (json!({"protocol_number": ""}), "protocol_number"),
        (
            json!({"planned_start_date": "2026-02-30"}),
            "planned_start_date",
        ),
        (json!({"id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"}), "id"),
        (json!({"external_id": "x".repeat(101)}), "external_id"),
    ];
    for (overrides, field) in cases {
        let mut body = json!({"protocol_number": "V-1", "title": "T", "phase": "phase1", "currency": "EUR", "target_enrollment": 10});
        json_patch::merge(&mut body, &overrides);
        let resp = app.admin_post("/api/v1/studies", &body).await;
        resp.refuses_field(field, &overrides.to_string());
    }
    let missing = app
        .admin_post("/api/v1/studies", &json!({"title": "T"}))
        .await;
    assert!(
        missing
            .invalid_fields()
            .contains(&"protocol_number".to_string())
    );
    // A wrong JSON type is a 422 naming the field, with every other invalid field.
    let wrong_type = app
        .admin_post(
            "/api/v1/studies",
            &json!({"protocol_number": 5, "title": "T"}),
        )
        .await;
    let fields = wrong_type.invalid_fields();
    assert!(
        fields.contains(&"protocol_number".to_string()),
        "{fields:?}"
    );
    assert!(fields.contains(&"phase".to_string()), "{fields:?}");
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn duplicate_protocol_number_is_409_until_the_first_is_deleted() {
    let app = spawn_app().await;
    let first = app.create_study(json!({"protocol_number": "DUP-1"})).await;
    let body = json!({"protocol_number": "DUP-1", "title": "T", "phase": "phase1", "currency": "EUR", "target_enrollment": 1});
    let conflict = app.admin_post("/api/v1/studies", &body).await;
    assert!(conflict.detail(409).contains("protocol_number"));
    assert!(
        !conflict.text.contains("studies_protocol_number_key"),
        "no internal names leak"
    );

    app.admin_delete_ok(&format!(
        "/api/v1/studies/{}",
        first["id"].as_str().unwrap()
    ))
    .await;
    app.admin_post("/api/v1/studies", &body).await.ok(201);
}

#[actix_web::test]
async fn merge_patch_sets_clears_and_keeps() {
    let app = spawn_app().await;
    let study = app
        .create_study(json!({"short_title": "S", "sponsor_name": "Acme", "nct_id": "NCT00000001"}))
        .await;
    let path = format!("/api/v1/studies/{}", study["id"].as_str().unwrap());

    let patched = app
        .admin_patch(
            &path,
            &json!({"title": "New title", "short_title": null, "status": "recruiting"}),
        )
        .await;
    let body = patched.ok(200);
    assert_eq!(body["title"], "New title");
    assert!(body["short_title"].is_null());
    assert_eq!(body["status"], "recruiting");
    assert_eq!(body["sponsor_name"], "Acme", "absent fields stay");
    assert_eq!(body["nct_id"], "NCT00000001");
    assert_eq!(body["version"], 2);
    assert_eq!(patched.header("etag").as_deref(), Some("\"2\""));

    // null on a required field, or on one with a default, is refused and changes nothing.
    for field in ["title", "currency", "risk_escalation_threshold"] {
        let resp = app.admin_patch(&path, &json!({ field: null })).await;
        assert_eq!(resp.invalid_fields(), vec![field.to_string()]);
        assert_eq!(resp.body["errors"][0]["code"], "not_nullable");
    }
    // Read-only fields cannot be patched.
    for field in ["id", "version", "created_at"] {
        let resp = app.admin_patch(&path, &json!({ field: "x" })).await;
        assert_eq!(resp.invalid_fields(), vec![field.to_string()]);
    }
    // A patch that breaks a cross-field rule is refused as a whole.
    let resp = app
        .admin_patch(
            &path,
            &json!({"planned_start_date": "2027-01-01", "planned_end_date": "2026-01-01"}),
        )
        .await;
    assert_eq!(resp.invalid_fields(), vec!["planned_end_date".to_string()]);
    // Not an object: 400.
    app.admin_patch(&path, &json!([1, 2])).await.problem(400);

    let now = app.admin_get(&path).await;
    assert_eq!(now.body["version"], 2);
}

#[actix_web::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({"title": "Same"})).await;
    let path = format!("/api/v1/studies/{id}");
    let resp = app.admin_patch(&path, &json!({"title": "Same"})).await;
    assert_eq!(resp.ok(200)["version"], 1);
    assert_eq!(app.audit_events(id).await.len(), 1, "only the create");
}

#[actix_web::test]
async fn if_match_guards_patch_and_delete() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let path = format!("/api/v1/studies/{}", study["id"].as_str().unwrap());
    let patch = |etag: &'static str| {
        app.request("PATCH", &path, &app.admin_token)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(json!({"title": format!("t {etag}")}).to_string())
    };
    app.send(patch("\"1\"")).await.ok(200);
    let stale = app.send(patch("\"1\"")).await;
    assert!(stale.detail(412).contains("\"2\""));
    app.send(patch("\"abc\"")).await.problem(412);
    app.send(patch("W/\"2\"")).await.ok(200);
    app.send(patch("*")).await.ok(200);

    let delete = |etag: &'static str| {
        app.request("DELETE", &path, &app.admin_token)
            .header("if-match", etag)
    };
    app.send(delete("\"1\"")).await.problem(412);
    app.admin_get(&path).await.ok(200);
    app.send(delete("\"4\"")).await.ok(204);
}

#[actix_web::test]
async fn soft_deleted_study_leaves_reads_but_stays_in_the_database() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({})).await;
    let path = format!("/api/v1/studies/{id}");
    app.assert_deleted(&path, &json!({"title": "x"})).await;
    app.admin_delete(&path).await.problem(404);
    let list = app.admin_get("/api/v1/studies").await;
    assert!(list.body["data"].as_array().unwrap().is_empty());
    let with_deleted = app.admin_get("/api/v1/studies?include_deleted=true").await;
    assert_eq!(with_deleted.body["data"][0]["id"], id.as_str());
    assert!(with_deleted.body["data"][0]["deleted_at"].is_string());
    assert_eq!(with_deleted.body["data"][0]["version"], 2);
}

#[actix_web::test]
async fn a_study_with_live_sites_cannot_be_deleted() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({})).await;
    let site = app.create_site(id, json!({})).await;
    let before = app.fingerprint().await;
    app.admin_delete(&format!("/api/v1/studies/{id}"))
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before);
    app.admin_delete_ok(&format!("/api/v1/sites/{}", site["id"].as_str().unwrap()))
        .await;
    app.admin_delete_ok(&format!("/api/v1/studies/{id}")).await;
}
