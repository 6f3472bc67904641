//! Scope beyond the role table (`roles.rs`): a scoped client cannot reach outside its
//! claim through a reference in a body, and a client whose claim names nothing sees
//! nothing. Outside its scope an object is as absent as one that does not exist.

use serde_json::json;
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{id_of, ids};
use crate::roles::World;

#[actix_web::test]
async fn cro_cannot_create_a_site_in_a_study_outside_its_claim() {
    let world = World::new().await;
    let app = &world.app;
    let cro = world.token(Role::Cro);
    let body = |study: &str| {
        json!({
            "study_id": study,
            "site_number": "CRO-1",
            "name": "Smuggled site",
            "country": "DE"
        })
    };

    let before = app.fingerprint().await;
    let outside = app
        .post("/api/v1/sites", cro, &body(&world.b().study))
        .await;
    outside.problem(404);
    // Existence is not leaked: a study that does not exist answers the same.
    let missing = app
        .post("/api/v1/sites", cro, &body(&Uuid::now_v7().to_string()))
        .await;
    missing.problem(404);
    assert_eq!(outside.body["type"], missing.body["type"]);
    assert_eq!(outside.body["detail"], missing.body["detail"]);
    assert_eq!(before, app.fingerprint().await, "nothing written");

    let sites = app
        .admin_get(&format!("/api/v1/sites?study_id={}", world.b().study))
        .await;
    let listed: Vec<String> = sites.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(listed, vec![world.b().site.clone()]);

    // The same body in its own study is fine.
    let inside = app
        .post("/api/v1/sites", cro, &body(&world.a().study))
        .await;
    assert_eq!(inside.ok(201)["study_id"], world.a().study.as_str());
}

/// A `vendor` client whose vendor no milestone or risk names reads no study and no site:
/// lists are empty, reads, updates and deletes 404, creates 403, and nothing is written.
#[actix_web::test]
async fn a_vendor_client_named_by_nothing_sees_no_study_or_site() {
    let world = World::new().await;
    let app = &world.app;
    let vendor = app.vendor_id(json!({"name": "Unnamed"})).await;
    let token = app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await;
    let before = app.fingerprint().await;
    for (collection, field) in [("/api/v1/studies", "title"), ("/api/v1/sites", "name")] {
        let list = app.get(collection, &token).await;
        assert!(ids(list.ok(200)).is_empty(), "{collection} listed");
        for side in &world.sides {
            let id = if collection.ends_with("studies") {
                &side.study
            } else {
                &side.site
            };
            let path = format!("{collection}/{id}");
            let what = |op: &str| format!("{op} {path}");
            app.get(&path, &token).await.expect(404, &what("read"));
            app.patch(&path, &token, &json!({ field: "x" }))
                .await
                .expect(404, &what("update"));
            app.delete(&path, &token).await.expect(404, &what("delete"));
        }
    }
    let study = json!({"protocol_number": "P-V", "title": "T", "phase": "phase2", "currency": "EUR", "target_enrollment": 1});
    app.post("/api/v1/studies", &token, &study)
        .await
        .expect(403, "create a study");
    for side in &world.sides {
        let site =
            json!({"study_id": side.study, "site_number": "S-V", "name": "S", "country": "DE"});
        app.post("/api/v1/sites", &token, &site)
            .await
            .expect(403, "create a site");
    }
    assert_eq!(before, app.fingerprint().await, "nothing written");
}
