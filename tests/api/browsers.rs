//! What browsers, caches and BI tools expect of the service (issue 14): CORS for the
//! configured origins only, compression on request (streamed CSV too), 304s on records and
//! on computed answers, and the caching and safety headers.

use std::io::Read;

use chrono::{Datelike, Days, Utc};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, ORIGIN};
use serde_json::json;

use crate::helpers::{Resp, TestApp, spawn_app, spawn_app_with};

const DASH: &str = "https://dash.example.com";

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = app.request("GET", path, &app.admin_token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request).await
}

#[actix_web::test]
async fn cors_preflights_succeed_for_configured_origins_only() {
    let app = spawn_app_with(|s| s.cors_origins = vec![DASH.into()]).await;
    let study = app.study_id(json!({})).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/api/v1/studies/{study}")),
            )
            .header(ORIGIN, origin)
            .header("Access-Control-Request-Method", "PATCH")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, if-match, idempotency-key, x-change-reason",
            )
    };
    let ok = app.send(preflight(DASH)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some(DASH)
    );
    let methods = ok.header("access-control-allow-methods").unwrap();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = ok.header("access-control-allow-headers").unwrap();
    for header in [
        "authorization",
        "if-match",
        "idempotency-key",
        "x-change-reason",
    ] {
        assert!(headers.contains(header), "{headers}");
    }

    // An actual request from the origin: allowed and the client-needed headers exposed.
    let read = get_with(
        &app,
        &format!("/api/v1/studies/{study}"),
        &[("origin", DASH)],
    )
    .await;
    read.ok(200);
    assert_eq!(
        read.header("access-control-allow-origin").as_deref(),
        Some(DASH)
    );
    let exposed = read.header("access-control-expose-headers").unwrap();
    for header in [
        "etag",
        "location",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
        "x-request-id",
        "idempotent-replayed",
    ] {
        assert!(exposed.contains(header), "{exposed}");
    }

    // Another origin: no CORS header at all, a problem+json refusal for its preflight,
    // and its plain requests go on (a server-side client is not a browser).
    let refused = app.send(preflight("https://evil.example.com")).await;
    refused.expect(403, "preflight from an unknown origin");
    assert!(
        refused
            .headers
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        refused.headers
    );
    let other = get_with(
        &app,
        &format!("/api/v1/studies/{study}"),
        &[("origin", "https://evil.example.com")],
    )
    .await;
    other.ok(200);
    assert!(other.header("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn cors_is_off_by_default() {
    let app = spawn_app().await;
    let preflight = app
        .send(
            app.http
                .request(reqwest::Method::OPTIONS, app.url("/api/v1/studies"))
                .header(ORIGIN, DASH)
                .header("Access-Control-Request-Method", "GET"),
        )
        .await;
    assert!(preflight.header("access-control-allow-origin").is_none());
    let read = get_with(&app, "/api/v1/studies", &[("origin", DASH)]).await;
    read.ok(200);
    assert!(read.header("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn answers_are_compressed_when_asked_and_csv_still_streams() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    for i in 0..30 {
        app.create_site(&study, json!({"site_number": format!("S-{i:03}")}))
            .await;
    }
    // JSON: gzip decodes to the identity body.
    let path = format!("/api/v1/sites?study_id={study}&limit=100");
    let plain = get_with(&app, &path, &[]).await;
    plain.ok(200);
    assert!(plain.header("content-encoding").is_none());
    let response = app
        .http
        .get(app.url(&path))
        .bearer_auth(&app.admin_token)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.len() < plain.text.len() / 2);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&gunzip(&bytes)).unwrap(),
        plain.body
    );

    // Streamed CSV: chunked, no Content-Length, and compressed.
    let csv = app
        .http
        .get(app.url(&path))
        .bearer_auth(&app.admin_token)
        .header(ACCEPT, "text/csv")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-encoding"], "gzip");
    assert!(csv.headers().get("content-length").is_none());
    assert_eq!(csv.headers()["transfer-encoding"], "chunked");
    let text = gunzip(&csv.bytes().await.unwrap());
    assert_eq!(text.lines().count(), 31, "{text}");

    // The OpenAPI document with brotli and zstd; the SVG chart with gzip.
    for encoding in ["br", "zstd"] {
        let doc = app
            .http
            .get(app.url("/api-docs/openapi.json"))
            .header(ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(doc.headers()["content-encoding"], encoding);
    }
    let svg = app
        .http
        .get(app.url(&format!("/api/v1/studies/{study}/enrollment-curve")))
        .bearer_auth(&app.admin_token)
        .header(ACCEPT, "image/svg+xml")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-encoding"], "gzip");
    assert!(svg.headers()["etag"].to_str().unwrap().starts_with("W/\""));
    assert!(gunzip(&svg.bytes().await.unwrap()).starts_with("<svg"));
}

#[actix_web::test]
async fn records_answer_304_and_a_compressed_answer_never_shares_a_strong_etag() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let path = format!("/api/v1/studies/{study}");
    let first = get_with(&app, &path, &[]).await;
    first.ok(200);
    let etag = first.header("etag").unwrap();
    assert_eq!(etag, "\"1\"");
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("private, no-cache")
    );
    assert_eq!(
        first.header("vary").as_deref(),
        Some("Authorization, Accept, Accept-Encoding, Origin")
    );

    let again = get_with(&app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304, "{}", again.text);
    assert!(again.text.is_empty());
    assert_eq!(again.header("etag").as_deref(), Some("\"1\""));

    let gzip = get_with(&app, &path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gzip.header("etag").as_deref(), Some("W/\"1\""));
    // Weak comparison: the compressed answer's tag revalidates too.
    let revalidated = get_with(
        &app,
        &path,
        &[("if-none-match", "W/\"1\""), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(revalidated.status, 304);

    // After a change the old tag no longer matches.
    app.admin_patch(&path, &json!({"title": "Changed"}))
        .await
        .ok(200);
    let changed = get_with(&app, &path, &[("if-none-match", &etag)]).await;
    changed.ok(200);
    assert_eq!(changed.header("etag").as_deref(), Some("\"2\""));
}

async fn report_week(app: &TestApp, site: &str, enrolled: i64) {
    let today = Utc::now().date_naive();
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()) + 7);
    app.send(
        app.request(
            "PUT",
            &format!("/api/v1/sites/{site}/enrollment/{monday}"),
            &app.admin_token,
        )
        .json(&json!({"screened": enrolled, "screen_failed": 0,
                          "enrolled": enrolled, "discontinued": 0, "completed": 0})),
    )
    .await
    .expect(201, "enrollment week");
}

#[actix_web::test]
async fn computed_answers_carry_a_validator_that_changes_with_each_write() {
    let app = spawn_app().await;
    let study = app.study_id(json!({"target_enrollment": 40})).await;
    let site = app
        .site_id(
            &study,
            json!({"status": "enrolling", "activated_on": "2026-01-05"}),
        )
        .await;
    let paths = [
        format!("/api/v1/studies/{study}/metrics"),
        format!("/api/v1/studies/{study}/enrollment-curve"),
        format!("/api/v1/studies/{study}/signals"),
        "/api/v1/metrics/portfolio".to_string(),
    ];
    for path in &paths {
        let first = get_with(&app, path, &[]).await;
        first.ok(200);
        let etag = first.header("etag").unwrap();
        assert!(etag.starts_with("W/\""), "{path}: {etag}");
        assert_eq!(
            first.header("cache-control").as_deref(),
            Some("private, no-cache"),
            "{path}"
        );
        let unchanged = get_with(&app, path, &[("if-none-match", &etag)]).await;
        assert_eq!(unchanged.status, 304, "{path}: {}", unchanged.text);
        assert_eq!(unchanged.header("etag").as_deref(), Some(etag.as_str()));
        assert_eq!(
            unchanged.header("cache-control").as_deref(),
            Some("private, no-cache")
        );

        // The query string and the media type each give another tag.
        let other_day = format!(
            "{path}{}as_of=2026-03-02",
            if path.contains('?') { '&' } else { '?' }
        );
        if !path.ends_with("portfolio") && !path.ends_with("metrics") {
            let dated = get_with(&app, &other_day, &[("if-none-match", &etag)]).await;
            dated.ok(200);
            assert_ne!(dated.header("etag").unwrap(), etag);
        }
        let csv = get_with(
            &app,
            path,
            &[("accept", "text/csv"), ("if-none-match", &etag)],
        )
        .await;
        csv.ok(200);
        assert_ne!(csv.header("etag").unwrap(), etag, "{path}");
    }

    // A write that commits changes every validator at once (no sealing awaited).
    let before: Vec<String> =
        futures_util::future::join_all(paths.iter().map(|path| get_with(&app, path, &[])))
            .await
            .iter()
            .map(|r| r.header("etag").unwrap())
            .collect();
    report_week(&app, &site, 3).await;
    for (path, etag) in paths.iter().zip(&before) {
        let after = get_with(&app, path, &[("if-none-match", etag)]).await;
        after.ok(200);
        assert_ne!(&after.header("etag").unwrap(), etag, "{path}");
    }
    // The forecast, once the study has what a forecast needs.
    let forecast =
        format!("/api/v1/studies/{study}/enrollment-forecast?prior_alpha=2&prior_beta=8");
    let first = get_with(&app, &forecast, &[]).await;
    if first.status == 200 {
        let etag = first.header("etag").unwrap();
        let again = get_with(&app, &forecast, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304);
    }
}

#[actix_web::test]
async fn safe_headers_on_every_answer() {
    let app = spawn_app().await;
    // Errors: no-store and nosniff.
    let missing = get_with(
        &app,
        "/api/v1/studies/00000000-0000-0000-0000-000000000000",
        &[],
    )
    .await;
    missing.expect(404, "unknown study");
    assert_eq!(missing.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        missing.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // The token endpoint and client answers: no-store.
    let token = app
        .form("/oauth/token", &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(token.header("cache-control").as_deref(), Some("no-store"));
    let clients = get_with(&app, "/api/v1/clients", &[]).await;
    clients.ok(200);
    assert_eq!(clients.header("cache-control").as_deref(), Some("no-store"));
    // A list (no validator): no-store; nosniff everywhere.
    let list = get_with(&app, "/api/v1/studies", &[]).await;
    list.ok(200);
    assert_eq!(list.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        list.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // Swagger UI: a Content-Security-Policy (the browser check is scripts/browser_check.mjs).
    let ui = app.send(app.bare("GET", "/swagger-ui/")).await;
    assert_eq!(ui.status, 200);
    let csp = ui.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
}
