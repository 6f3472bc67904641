//! Sites: create, read, update, delete, and their rules.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn site_lifecycle() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({})).await;
    let site = app
        .create_site(study_id, json!({"site_number": "DE-001", "irb_approved_on": "2026-01-10", "target_enrollment": 40}))
        .await;
    assert_eq!(site["status"], "planned");
    assert_eq!(site["study_id"], study_id.as_str());
    let path = format!("/api/v1/sites/{}", site["id"].as_str().unwrap());

    let patched = app
        .admin_patch(
            &path,
            &json!({"status": "activated", "activated_on": "2026-02-01"}),
        )
        .await;
    assert_eq!(patched.ok(200)["version"], 2);
    assert_eq!(patched.body["activated_on"], "2026-02-01");
    assert_eq!(
        app.admin_get(&path).await.header("etag").as_deref(),
        Some("\"2\"")
    );

    app.assert_soft_delete(&path, &format!("/api/v1/sites?study_id={study_id}"))
        .await;
}

#[actix_web::test]
async fn site_number_is_unique_within_a_study_only() {
    let app = spawn_app().await;
    let (a, b) = &app.two_studies().await;
    let (a, b) = (a.as_str(), b.as_str());
    app.create_site(a, json!({"site_number": "001"})).await;
    app.create_site(b, json!({"site_number": "001"})).await;
    let before = app.fingerprint().await;
    let dup = app
        .admin_post(
            "/api/v1/sites",
            &json!({"study_id": a, "site_number": "001", "name": "X", "country": "FR"}),
        )
        .await;
    assert!(dup.detail(409).contains("site_number"));
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn invalid_sites_are_refused() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();
    let before = app.fingerprint().await;
    let cases = [
        (json!({"country": "XX"}), "country"),
        (json!({"country": "de"}), "country"),
        (json!({"country": "DEU"}), "country"),
        (json!({"status": "open"}), "status"),
        (json!({"target_enrollment": -5}), "target_enrollment"),
        (
            json!({"irb_approved_on": "2026-03-01", "activated_on": "2026-02-01"}),
            "activated_on",
        ),
        (
            json!({"cro_vendor_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"}),
            "cro_vendor_id",
        ),
        (json!({"study_id": "not-a-uuid"}), "study_id"),
        (json!({"name": " "}), "name"),
    ];
    for (overrides, field) in cases {
        let mut body =
            json!({"study_id": study_id, "site_number": "1", "name": "N", "country": "DE"});
        json_patch::merge(&mut body, &overrides);
        let resp = app.admin_post("/api/v1/sites", &body).await;
        resp.refuses_field(field, &overrides.to_string());
    }
    // A study that does not exist (or is deleted) is a 404.
    let ghost = json!({"study_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99", "site_number": "1", "name": "N", "country": "DE"});
    app.admin_post("/api/v1/sites", &ghost).await.problem(404);
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn a_site_cannot_move_to_another_study() {
    let app = spawn_app().await;
    let a = app.create_study(json!({})).await;
    let b = app.create_study(json!({})).await;
    let site = app.create_site(a["id"].as_str().unwrap(), json!({})).await;
    let path = format!("/api/v1/sites/{}", site["id"].as_str().unwrap());
    let resp = app.admin_patch(&path, &json!({"study_id": b["id"]})).await;
    assert_eq!(resp.invalid_fields(), vec!["study_id".to_string()]);
    assert_eq!(app.admin_get(&path).await.body["study_id"], a["id"]);
}

#[actix_web::test]
async fn a_site_may_name_a_live_cro_vendor() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let vendor = uuid::Uuid::now_v7();
    let mut conn = app.db().await;
    diesel::sql_query("INSERT INTO vendors (id, name, kind) VALUES ($1, 'Acme CRO', 'cro')")
        .bind::<diesel::sql_types::Uuid, _>(vendor)
        .execute(&mut conn)
        .await
        .unwrap();
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(
            study["id"].as_str().unwrap(),
            json!({"cro_vendor_id": vendor}),
        )
        .await;
    assert_eq!(site["cro_vendor_id"], vendor.to_string());
    let listed = app
        .admin_get(&format!("/api/v1/sites?cro_vendor_id={vendor}"))
        .await;
    assert_eq!(listed.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn city_is_optional_and_goes_everywhere_a_site_goes() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let site = app
        .create_site(&study, json!({"city": "Xi\u{2019}an"}))
        .await;
    assert_eq!(site["city"], "Xi\u{2019}an");
    let path = format!("/api/v1/sites/{}", site["id"].as_str().unwrap());
    assert!(app.create_site(&study, json!({})).await["city"].is_null());

    let cleared = app.admin_patch(&path, &json!({"city": null})).await;
    assert!(cleared.ok(200)["city"].is_null());
    app.admin_patch_ok(&path, &json!({"city": "Lyon"})).await;
    for bad in [json!(""), json!("  "), json!("x".repeat(201)), json!(7)] {
        let resp = app.admin_patch(&path, &json!({"city": bad})).await;
        assert!(matches!(resp.status, 400 | 422), "{bad}: {}", resp.text);
        resp.problem(resp.status);
    }
    let batch = app.admin_post("/api/v1/sites/batch", &json!({"items": [{"external_id": "S-CITY", "study_id": study, "site_number": "B-1", "name": "B", "country": "FR", "city": "Paris"}]}))
        .await;
    let batched = batch.ok(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.admin_get(&format!("/api/v1/sites/{batched}"))
            .await
            .ok(200)["city"],
        "Paris"
    );

    // The change feed carries it, and the CSV has its column.
    let feed = app
        .admin_get("/api/v1/changes?entity_type=site&limit=100")
        .await;
    let last = feed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|c| c["entity_id"] == site["id"])
        .unwrap()
        .clone();
    assert_eq!(last["data"]["city"], "Lyon");
    let csv = app
        .admin_csv(&format!("/api/v1/sites?study_id={study}"))
        .await;
    let header = csv.text.lines().next().unwrap();
    assert!(header.split(',').any(|c| c == "city"), "{header}");
    assert!(csv.text.contains("Lyon"));
}
