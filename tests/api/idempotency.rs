//! `Idempotency-Key` on POST: replay, reuse with another body, concurrency, per client.

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, spawn_app};

async fn post_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> Resp {
    app.send(
        app.request("POST", "/api/v1/vendors", token)
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

async fn vendors(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM vendors").await
}

#[actix_web::test]
async fn the_same_key_and_body_replays_the_first_answer() {
    let app = spawn_app().await;
    let body = json!({"name": "Acme Lab", "kind": "central_lab"});
    let first = post_with_key(&app, &app.admin_token, "order-1", &body).await;
    first.ok(201);
    assert!(first.header("idempotent-replayed").is_none());
    let again = post_with_key(&app, &app.admin_token, "order-1", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.body, first.body, "the first answer, byte for byte");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(vendors(&app).await, 1);
    assert_eq!(app.audit_events(&first.id()).await.len(), 1);

    // Without a key, the same body is a second vendor.
    app.admin_post("/api/v1/vendors", &body).await.ok(201);
    assert_eq!(vendors(&app).await, 2);
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_a_422_and_writes_nothing() {
    let app = spawn_app().await;
    post_with_key(
        &app,
        &app.admin_token,
        "k",
        &json!({"name": "A", "kind": "imaging"}),
    )
    .await
    .ok(201);
    let before = app.fingerprint().await;
    let other = post_with_key(
        &app,
        &app.admin_token,
        "k",
        &json!({"name": "B", "kind": "imaging"}),
    )
    .await;
    assert_eq!(other.invalid_fields(), vec!["Idempotency-Key".to_string()]);
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn refusals_are_replayed_too_and_keys_are_per_client() {
    let app = spawn_app().await;
    let bad = json!({"name": "", "kind": "imaging"});
    let first = post_with_key(&app, &app.admin_token, "bad-1", &bad).await;
    first.problem(422);
    let again = post_with_key(&app, &app.admin_token, "bad-1", &bad).await;
    assert_eq!(again.status, 422);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));

    // Another client's identical key is its own.
    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;
    let body = json!({"name": "Shared key", "kind": "irt"});
    post_with_key(&app, &app.admin_token, "same", &body)
        .await
        .ok(201);
    let theirs = post_with_key(&app, &sponsor, "same", &body).await;
    assert_eq!(theirs.status, 201);
    assert!(theirs.header("idempotent-replayed").is_none());
    assert_eq!(vendors(&app).await, 2);
}

#[actix_web::test]
async fn concurrent_requests_with_one_key_create_one_record() {
    let app = spawn_app().await;
    let body = json!({"name": "Race Lab", "kind": "central_lab"});
    let requests = (0..8).map(|_| post_with_key(&app, &app.admin_token, "race", &body));
    let answers = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(vendors(&app).await, 1, "{statuses:?}");
    let fresh = answers
        .iter()
        .filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "{statuses:?}");
    // The others waited out as a replay of the one answer, or were told to retry (409).
    assert!(
        answers.iter().all(|r| r.status == 201 || r.status == 409),
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn bad_keys_are_refused() {
    let app = spawn_app().await;
    let before = app.fingerprint().await;
    let long = "k".repeat(256);
    let resp = post_with_key(
        &app,
        &app.admin_token,
        &long,
        &json!({"name": "X", "kind": "other"}),
    )
    .await;
    assert_eq!(resp.invalid_fields(), vec!["Idempotency-Key".to_string()]);
    assert_eq!(app.fingerprint().await, before);
    // 255 characters is fine.
    post_with_key(
        &app,
        &app.admin_token,
        &"k".repeat(255),
        &json!({"name": "X", "kind": "other"}),
    )
    .await
    .ok(201);
}

#[actix_web::test]
async fn a_compressed_body_with_a_key_is_decoded_once() {
    let app = spawn_app().await;
    let body = json!({"name": "Gzip Lab", "kind": "central_lab"}).to_string();
    // gzip from the system: the test binary has no compressor of its own.
    let mut gzip = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    std::io::Write::write_all(gzip.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
    let compressed = gzip.wait_with_output().unwrap().stdout;
    let send = || {
        app.send(
            app.request("POST", "/api/v1/vendors", &app.admin_token)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .header("idempotency-key", "gzip-1")
                .body(compressed.clone()),
        )
    };
    let first = send().await;
    assert_eq!(first.ok(201)["name"], "Gzip Lab");
    let again = send().await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(vendors(&app).await, 1);
}
