//! The audit trail: one event per write, with who, what (old and new values), why, and
//! the request; the database itself refuses to change or remove events.

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn every_write_of_studies_and_sites_is_audited() {
    let app = spawn_app().await;
    let study = app.create_study(json!({"title": "Before"})).await;
    let study_id = study["id"].as_str().unwrap();
    let site = app.create_site(study_id, json!({"name": "Site"})).await;
    let site_id = site["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/studies/{study_id}"),
        &app.admin_token,
        &json!({"title": "After", "short_title": "S"}),
    )
    .await
    .ok(200);
    app.delete(&format!("/api/v1/sites/{site_id}"), &app.admin_token)
        .await
        .ok(204);

    let study_events = app.audit_events(study_id).await;
    assert_eq!(study_events.len(), 2);
    let (create, update) = (&study_events[0], &study_events[1]);
    assert_eq!(create["action"], "create");
    assert_eq!(create["entity_type"], "study");
    assert_eq!(create["study_id"], study_id);
    assert_eq!(create["role"], "admin");
    assert_eq!(
        create["changes"]["title"],
        json!({"old": null, "new": "Before"})
    );
    assert_eq!(create["entity_version"], 1);
    assert!(create["actor"].as_str().unwrap().len() == 36 && create["actor_name"].is_string());
    assert!(create["request_id"].is_string());
    assert_eq!(update["action"], "update");
    assert_eq!(update["entity_version"], 2);
    assert_eq!(
        update["changes"],
        json!({"title": {"old": "Before", "new": "After"}, "short_title": {"old": null, "new": "S"}}),
        "only changed fields, without bookkeeping columns"
    );
    assert_eq!(update["data"]["title"], "After");

    let site_events = app.audit_events(site_id).await;
    assert_eq!(site_events.len(), 2);
    assert_eq!(site_events[0]["entity_type"], "site");
    assert_eq!(site_events[0]["study_id"], study_id);
    assert_eq!(site_events[1]["action"], "delete");
    assert!(site_events[1]["changes"]["deleted_at"]["new"].is_string());
    assert!(site_events[1]["data"].is_null(), "a delete carries no row");
}

#[actix_web::test]
async fn refused_writes_leave_no_audit_event() {
    let app = spawn_app().await;
    let study = app.create_study(json!({"protocol_number": "ONE"})).await;
    let study_id = study["id"].as_str().unwrap();
    let dup = json!({"protocol_number": "ONE", "title": "T", "phase": "phase1", "currency": "EUR", "target_enrollment": 1});
    app.post("/api/v1/studies", &app.admin_token, &dup)
        .await
        .problem(409);
    app.patch(
        &format!("/api/v1/studies/{study_id}"),
        &app.admin_token,
        &json!({"currency": "NOPE"}),
    )
    .await
    .problem(422);
    assert_eq!(app.audit_events(study_id).await.len(), 1);
    let mut conn = app.db().await;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let total =
        diesel::sql_query("SELECT count(*) AS n FROM audit_events WHERE entity_type = 'study'")
            .get_result::<Count>(&mut conn)
            .await
            .unwrap();
    assert_eq!(total.n, 1);
}

#[actix_web::test]
async fn the_database_refuses_update_delete_and_truncate_of_audit_events() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let before = app.audit_events(study["id"].as_str().unwrap()).await;
    let mut conn = app.db().await;
    for statement in [
        "UPDATE audit_events SET reason = 'tampered'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let error = conn.batch_execute(statement).await.expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(
        app.audit_events(study["id"].as_str().unwrap()).await,
        before
    );
}
