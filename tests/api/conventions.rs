//! Conventions every endpoint shares: problem+json for every failure, 404/405/413/415,
//! request ids, change reasons, health, and 503 when the database is gone.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_routes_are_404_problems() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/studies/1/2",
        "/api/v2/studies",
    ] {
        app.admin_get(path).await.problem(404);
    }
    // A malformed id cannot name anything.
    app.admin_get("/api/v1/studies/not-a-uuid")
        .await
        .problem(404);
}

#[actix_web::test]
async fn wrong_methods_are_405_with_allow() {
    let app = spawn_app().await;
    let resp = app
        .send(app.request("PUT", "/api/v1/studies", &app.admin_token))
        .await;
    resp.problem(405);
    assert_eq!(resp.header("allow").as_deref(), Some("GET, POST"));
    let id = uuid::Uuid::now_v7();
    let resp = app
        .send(app.request("POST", &format!("/api/v1/sites/{id}"), &app.admin_token))
        .await;
    resp.problem(405);
    assert_eq!(resp.header("allow").as_deref(), Some("DELETE, GET, PATCH"));
    // `/sites/batch` under PATCH reaches the route `PATCH /sites/{id}` (the id "batch" does
    // not parse), but names the batch route, which takes only POST.
    for method in ["PATCH", "GET"] {
        let resp = app
            .send(app.request(method, "/api/v1/sites/batch", &app.admin_token))
            .await;
        resp.problem(405);
        assert_eq!(resp.header("allow").as_deref(), Some("POST"));
    }
}

#[actix_web::test]
async fn bodies_over_one_mebibyte_are_413_and_non_json_415() {
    let app = spawn_app().await;
    let before = app.fingerprint().await;
    let huge = json!({"protocol_number": "BIG", "title": "x".repeat(1024 * 1024), "phase": "phase1", "currency": "EUR", "target_enrollment": 1});
    app.admin_post("/api/v1/studies", &huge).await.problem(413);
    let text = app
        .http
        .post(app.url("/api/v1/studies"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/plain")
        .body("protocol_number=1");
    app.send(text).await.problem(415);
    let none = app
        .http
        .post(app.url("/api/v1/studies"))
        .bearer_auth(&app.admin_token)
        .body("{}");
    app.send(none).await.problem(415);
    let malformed = app
        .http
        .post(app.url("/api/v1/studies"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"title\": ");
    app.send(malformed).await.problem(400);
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let resp = app
        .send(
            app.bare("GET", "/healthz")
                .header("x-request-id", "abc-123"),
        )
        .await;
    assert_eq!(resp.header("x-request-id").as_deref(), Some("abc-123"));
    let resp = app.send(app.bare("GET", "/healthz")).await;
    assert_eq!(resp.header("x-request-id").unwrap().len(), 36);
    // A hostile id (log injection) is replaced, not echoed.
    let resp = app
        .send(app.bare("GET", "/healthz").header("x-request-id", "a b\tc"))
        .await;
    assert_ne!(resp.header("x-request-id").as_deref(), Some("a b\tc"));
    // Error bodies carry the same id.
    let resp = app
        .send(
            app.bare("GET", "/api/v1/studies")
                .header("x-request-id", "req-42"),
        )
        .await;
    assert_eq!(resp.problem(401)["request_id"], "req-42");
}

#[actix_web::test]
async fn change_reason_is_kept_with_the_audit_event() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({})).await;
    let patch = app
        .http
        .patch(app.url(&format!("/api/v1/studies/{id}")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/merge-patch+json")
        .header("x-change-reason", "Protocol amendment 2")
        .header("x-request-id", "reason-test")
        .body(json!({"target_enrollment": 120}).to_string());
    app.send(patch).await.ok(200);
    let events = app.audit_events(id).await;
    let update = events.last().unwrap();
    assert_eq!(update["reason"], "Protocol amendment 2");
    assert_eq!(update["request_id"], "reason-test");

    let too_long = app
        .http
        .patch(app.url(&format!("/api/v1/studies/{id}")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/merge-patch+json")
        .header("x-change-reason", "r".repeat(501))
        .body(json!({"target_enrollment": 130}).to_string());
    let resp = app.send(too_long).await;
    assert_eq!(resp.invalid_fields(), vec!["X-Change-Reason".to_string()]);
    assert_eq!(
        app.admin_get(&format!("/api/v1/studies/{id}")).await.body["target_enrollment"],
        120
    );
}

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health = app.send(app.bare("GET", "/healthz")).await;
    assert_eq!(health.ok(200)["status"], "ok");
    let ready = app.send(app.bare("GET", "/readyz")).await;
    assert_eq!(ready.ok(200)["status"], "ready");
}

#[actix_web::test]
async fn an_unreachable_database_is_503_with_retry_after_and_the_process_stays_up() {
    let app = spawn_app().await;
    // A second server on the same keys, whose pool points at a port nothing listens on.
    let mut conn = app.state.db.get().await.unwrap();
    let source =
        trialops::startup::key_source(&trialops::config::Settings::for_database(&app.database_url))
            .unwrap();
    let keys = trialops::auth::keys::KeySet::load(&mut conn, &source)
        .await
        .unwrap();
    drop(conn);
    let tokens = trialops::auth::tokens::TokenService::new(
        keys,
        source,
        "trialops".into(),
        "trialops-api".into(),
        900,
    );
    let nowhere = "postgres://postgres@127.0.0.1:1/nowhere";
    let pool = trialops::db::pool(nowhere, 2).unwrap();
    let mut settings = trialops::config::Settings::for_database(nowhere);
    settings.rate_limit_per_minute = 0;
    settings.workers = Some(1);
    let state =
        actix_web::web::Data::new(trialops::app::AppState::new(&settings, pool, tokens).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = trialops::startup::run(listener, state).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    for path in ["/readyz", "/api/v1/studies"] {
        let resp = app
            .send(
                app.http
                    .get(format!("{base}{path}"))
                    .bearer_auth(&app.admin_token),
            )
            .await;
        resp.problem(503);
        assert!(resp.header("retry-after").is_some());
        assert!(
            !resp.text.to_lowercase().contains("connect"),
            "no internal detail: {}",
            resp.text
        );
    }
    let token = app
        .send(
            app.http
                .post(format!("{base}/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&client_id={}&client_secret=x",
                    uuid::Uuid::now_v7()
                )),
        )
        .await;
    assert_eq!(token.status, 503);
    let health = app.send(app.http.get(format!("{base}/healthz"))).await;
    assert_eq!(health.status, 200, "the process stays up");
    handle.stop(false).await;
}

#[actix_web::test]
async fn each_client_has_a_rate_limit_shared_through_the_database() {
    let app = spawn_app_with(|settings| settings.rate_limit_per_minute = 5).await;
    let other = app
        .token_for(trialops::domain::enums::Role::Auditor, &[], &[], None)
        .await;
    // Stay clear of a window boundary, so all requests below count in one window.
    let first = app.admin_get("/api/v1/studies").await;
    let reset: u64 = first.header("ratelimit-reset").unwrap().parse().unwrap();
    if reset < 5 {
        tokio::time::sleep(std::time::Duration::from_secs(reset + 1)).await;
    }
    let mut remaining = Vec::new();
    let mut last = None;
    for _ in 0..7 {
        let resp = app.admin_get("/api/v1/studies").await;
        assert_eq!(resp.header("ratelimit-limit").as_deref(), Some("5"));
        remaining.push(resp.header("ratelimit-remaining").unwrap());
        last = Some(resp);
    }
    let last = last.unwrap();
    last.problem(429);
    let retry_after: u32 = last.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(remaining.last().map(String::as_str), Some("0"));
    assert!(
        remaining
            .windows(2)
            .all(|w| w[0].parse::<u32>().unwrap() >= w[1].parse::<u32>().unwrap())
    );
    // Writes are refused too, and change nothing.
    let before = app.fingerprint().await;
    let body = json!({"protocol_number": "RL", "title": "T", "phase": "phase1", "currency": "EUR", "target_enrollment": 1});
    app.admin_post("/api/v1/studies", &body).await.problem(429);
    assert_eq!(app.fingerprint().await, before);
    // Another client has its own budget; unauthenticated endpoints carry no limit headers.
    let resp = app.get("/api/v1/studies", &other).await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("ratelimit-remaining").is_some());
    let health = app.send(app.bare("GET", "/healthz")).await;
    assert!(health.header("ratelimit-limit").is_none());
}

#[actix_web::test]
async fn dates_outside_the_stored_calendar_are_refused_not_500() {
    let app = spawn_app().await;
    let study_id = &app.study_id(json!({})).await;
    let site_id = &app.site_id(study_id, json!({})).await;
    let before = app.fingerprint().await;
    for date in [
        "-5000-01-01",
        "-4714-01-01",
        "1899-12-31",
        "+300000-01-01",
        "3000-01-01",
    ] {
        let resp = app
            .admin_patch(
                &format!("/api/v1/studies/{study_id}"),
                &json!({"planned_start_date": date}),
            )
            .await;
        assert_eq!(resp.status, 422, "{date}: {}", resp.text);
        let deviation = json!({"study_id": study_id, "site_id": site_id, "category": "other", "description": "d",
            "importance": "not_important", "occurred_on": date, "detected_on": "2026-01-02"});
        let resp = app.admin_post("/api/v1/deviations", &deviation).await;
        assert_eq!(resp.status, 422, "{date}: {}", resp.text);
    }
    let resp = app
        .admin_patch(
            &format!("/api/v1/studies/{study_id}"),
            &json!({"planned_start_date": "-5000-01-01"}),
        )
        .await;
    assert_eq!(
        resp.invalid_fields(),
        vec!["planned_start_date".to_string()]
    );
    let week = app
        .send(app.request("PUT", &format!("/api/v1/sites/{site_id}/enrollment/-5000-01-06"), &app.admin_token).json(
            &json!({"screened": 1, "screen_failed": 0, "enrolled": 1, "discontinued": 0, "completed": 0}),
        ))
        .await;
    assert_eq!(week.invalid_fields(), vec!["week_start".to_string()]);
    for path in [
        "/api/v1/enrollment?from=-5000-01-01",
        "/api/v1/expenses?incurred_from=-5000-01-01",
        "/api/v1/expenses?incurred_to=3000-01-01",
        "/api/v1/studies?updated_since=-5000-01-01T00:00:00Z",
    ] {
        app.admin_get(path).await.problem(400);
    }
    assert_eq!(app.fingerprint().await, before);
}
