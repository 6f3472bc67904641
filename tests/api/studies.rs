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

    let read = app
        .get(&format!("/api/v1/studies/{id}"), &app.admin_token)
        .await;
    assert_eq!(read.ok(200), &created);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let list = app.get("/api/v1/studies", &app.admin_token).await;
    assert_eq!(list.ok(200)["data"][0]["id"], id);
    assert!(list.body["next_cursor"].is_null());
}
