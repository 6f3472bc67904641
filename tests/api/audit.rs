//! The audit trail: one event per write, with who, what (old and new values), why, and
//! the request; the database itself refuses to change or remove events.

use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use trialops::domain::enums::Role;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn every_write_of_studies_and_sites_is_audited() {
    let app = spawn_app().await;
    let study = app.create_study(json!({"title": "Before"})).await;
    let study_id = study["id"].as_str().unwrap();
    let site = app.create_site(study_id, json!({"name": "Site"})).await;
    let site_id = site["id"].as_str().unwrap();
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": "After", "short_title": "S"}),
    )
    .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{site_id}"))
        .await;

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
    app.admin_post("/api/v1/studies", &dup).await.problem(409);
    app.admin_patch(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"currency": "NOPE"}),
    )
    .await
    .problem(422);
    assert_eq!(app.audit_events(study_id).await.len(), 1);
    let total = app
        .count("SELECT count(*) FROM audit_events WHERE entity_type = 'study'")
        .await;
    assert_eq!(total, 1);
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
        "UPDATE audit_seals SET hash = 'tampered'",
        "DELETE FROM audit_seals",
        "TRUNCATE audit_seals",
    ] {
        let error = conn.batch_execute(statement).await.expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    // The seals refer to the events: truncating the trail is refused before its own
    // trigger is reached.
    let error = conn
        .batch_execute("TRUNCATE audit_events")
        .await
        .expect_err("TRUNCATE audit_events");
    assert!(
        error.to_string().contains("foreign key"),
        "TRUNCATE audit_events: {error}"
    );
    assert_eq!(
        app.audit_events(study["id"].as_str().unwrap()).await,
        before
    );
}

async fn seqs_and_hashes(app: &crate::helpers::TestApp) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit-events?limit=7&cursor={c}"),
            None => "/api/v1/audit-events?limit=7".to_string(),
        };
        let page = app.admin_get(&path).await;
        for event in page.ok(200)["data"].as_array().unwrap() {
            out.push((
                event["seq"].as_i64().unwrap(),
                event["prev_hash"].as_str().unwrap().to_string(),
                event["hash"].as_str().unwrap().to_string(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    out
}

#[actix_web::test]
async fn the_audit_api_shows_who_did_what_and_why_to_the_roles_that_may_see_it() {
    let app = spawn_app().await;
    let study = app.create_study(json!({"title": "Before"})).await;
    let id = study["id"].as_str().unwrap();
    let path = format!("/api/v1/studies/{id}");
    let after = json!({"title": "After"});
    app.admin_patch_with(&path, &after, Some("Amendment 3"))
        .await
        .ok(200);

    let events = app
        .admin_list(&format!("/api/v1/audit-events?entity_id={id}"))
        .await;
    assert_eq!(events.len(), 2);
    let update = &events[1];
    assert_eq!(update["action"], "update");
    assert_eq!(update["entity_type"], "study");
    assert_eq!(update["study_id"], id);
    assert_eq!(update["role"], "admin");
    assert_eq!(update["reason"], "Amendment 3");
    assert_eq!(
        update["changes"],
        json!({"title": {"old": "Before", "new": "After"}})
    );
    assert!(
        update["request_id"].is_string()
            && update["occurred_at"].is_string()
            && update["actor_name"].is_string()
    );
    assert_eq!(update["prev_hash"], events[0]["hash"]);

    let actor = update["actor"].as_str().unwrap();
    let by_actor = app
        .admin_get(&format!(
            "/api/v1/audit-events?actor={actor}&entity_type=study"
        ))
        .await;
    assert_eq!(by_actor.ok(200)["data"].as_array().unwrap().len(), 2);
    let by_study = app
        .admin_get(&format!(
            "/api/v1/audit-events?study_id={id}&since=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(by_study.ok(200)["data"].as_array().unwrap().len(), 2);
    app.admin_get("/api/v1/audit-events?entity_type=planet")
        .await
        .problem(400);
    app.admin_get("/api/v1/audit-events?cursor=nope")
        .await
        .problem(400);

    for role in [Role::Sponsor, Role::Auditor] {
        let token = app.token_for(role, &[], &[], None).await;
        app.get("/api/v1/audit-events", &token).await.ok(200);
    }
    for (role, studies) in [(Role::Cro, vec![id]), (Role::Analyst, vec![])] {
        let token = app.token_for(role, &studies, &[], None).await;
        app.get("/api/v1/audit-events", &token).await.problem(403);
        app.get("/api/v1/audit-events/verify", &token)
            .await
            .problem(403);
    }
    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;
    app.get("/api/v1/audit-events/verify", &sponsor)
        .await
        .problem(403);
}

#[actix_web::test]
async fn concurrent_writers_leave_a_gap_free_chain_in_commit_order() {
    let app = spawn_app().await;
    let writes = (0..12).map(|i| {
        let app = &app;
        async move {
            let body = json!({"name": format!("Vendor {i}"), "kind": "other"});
            app.admin_post("/api/v1/vendors", &body).await.status
        }
    });
    let statuses = futures_util::future::join_all(writes).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let chain = seqs_and_hashes(&app).await;
    let seqs: Vec<i64> = chain.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap-free, in order"
    );
    assert_eq!(chain[0].1, "0".repeat(64));
    for pair in chain.windows(2) {
        assert_eq!(pair[1].1, pair[0].2, "each event links to the one before");
    }
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(
        check.ok(200),
        &json!({"valid": true, "events_checked": seqs.len(), "first_broken_seq": null})
    );
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    app.get("/api/v1/audit-events/verify", &auditor)
        .await
        .ok(200);
}

#[actix_web::test]
async fn an_event_edited_behind_the_services_back_is_named_by_the_verifier() {
    let app = spawn_app().await;
    app.studies(4).await;
    let chain = seqs_and_hashes(&app).await;
    let victim = chain[2].0;
    // The database owner can switch the guard off; the chain still tells.
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
         UPDATE audit_events SET reason = 'nothing to see'
         WHERE id = (SELECT event_id FROM audit_seals WHERE seq = {victim});
         ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;"
    ))
    .await
    .unwrap();
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(check.ok(200)["valid"], false);
    assert_eq!(check.body["first_broken_seq"], victim);
}

#[actix_web::test]
async fn removing_the_newest_event_behind_the_services_back_is_seen_too() {
    let app = spawn_app().await;
    app.create_study(json!({})).await;
    app.create_study(json!({})).await;
    let chain = seqs_and_hashes(&app).await;
    let last = chain.last().unwrap().0;
    let mut conn = app.db().await;
    // The seal refers to its event, so the owner has to remove both.
    conn.batch_execute(&format!(
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
         ALTER TABLE audit_seals DISABLE TRIGGER audit_seals_append_only;
         WITH seal AS (DELETE FROM audit_seals WHERE seq = {last} RETURNING event_id)
         DELETE FROM audit_events WHERE id = (SELECT event_id FROM seal);
         ALTER TABLE audit_seals ENABLE TRIGGER audit_seals_append_only;
         ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;"
    ))
    .await
    .unwrap();
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(check.ok(200)["valid"], false);
    assert_eq!(check.body["first_broken_seq"], last);
}
