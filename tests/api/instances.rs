//! Several instances on one PostgreSQL: what each remembers in memory (verified tokens,
//! live clients, a share of each client's rate limit) never lets it break a promise the
//! others keep, and the audit trail is sealed once, in order, whoever seals it.

use std::collections::BTreeSet;
use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use trialops::domain::enums::Role;

use crate::helpers::{TestApp, id_of, spawn_app, spawn_app_with};

const TOKEN_PATH: &str = "/oauth/token";

async fn wait_listening(app: &TestApp) {
    for _ in 0..200 {
        if app.state.live_clients.listening() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("instance never listened for client changes");
}

#[actix_web::test]
async fn a_client_revoked_on_one_instance_is_refused_by_another_within_a_second() {
    let a = spawn_app().await;
    let b = a.another_instance(|_| {}).await;
    wait_listening(&b).await;
    let (id, secret) = a.register(Role::Sponsor, vec![], vec![], None).await;
    let token = a.token(&id, &secret).await;
    // B has verified the token and remembers the client as live.
    b.get("/api/v1/studies", &token).await.ok(200);
    b.get("/api/v1/studies", &token).await.ok(200);

    a.admin_delete(&format!("/api/v1/clients/{id}"))
        .await
        .ok(204);
    let took = b
        .answers_within("/api/v1/studies", &token, 401, Duration::from_secs(1))
        .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // And it stays refused.
    b.get("/api/v1/studies", &token).await.problem(401);
}

#[actix_web::test]
async fn without_its_notification_connection_an_instance_asks_the_database_every_time() {
    let a = spawn_app().await;
    // B waits long before listening again, so the test sees it without notifications.
    let b = a
        .another_instance(|settings| settings.listen_retry_ms = 30_000)
        .await;
    wait_listening(&b).await;
    let (id, secret) = a.register(Role::Sponsor, vec![], vec![], None).await;
    let token = a.token(&id, &secret).await;
    b.get("/api/v1/studies", &token).await.ok(200);

    // Cut every listener's connection (A's and B's): notifications stop.
    let mut conn = a.db().await;
    conn.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'trialops-listener' AND datname = current_database()",
    )
    .await
    .unwrap();
    for _ in 0..200 {
        if !b.state.live_clients.listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!b.state.live_clients.listening());
    let ready = b.send(b.bare("GET", "/readyz")).await;
    assert_eq!(ready.ok(200)["revocations"], "checked on every request");

    // A revocation B hears nothing of is still honoured by B's very next request.
    a.admin_delete(&format!("/api/v1/clients/{id}"))
        .await
        .ok(204);
    b.get("/api/v1/studies", &token).await.problem(401);
}

#[actix_web::test]
async fn the_rate_limit_holds_across_two_instances() {
    const LIMIT: usize = 300;
    let a = spawn_app_with(|settings| settings.rate_limit_per_minute = LIMIT as u32).await;
    let b = a
        .another_instance(|settings| settings.rate_limit_per_minute = LIMIT as u32)
        .await;
    // A fresh client, and a window with time to spare: every request below counts in one.
    let token = a.token_for(Role::Auditor, &[], &[], None).await;
    let first = a.get("/healthz", &token).await;
    let _ = first;
    let seconds = chrono::Utc::now().timestamp() % 60;
    if seconds > 45 {
        tokio::time::sleep(Duration::from_secs((61 - seconds) as u64)).await;
    }
    let window = chrono::Utc::now().timestamp() / 60;
    let mut answered = 0;
    let mut refused = 0;
    for round in 0..((LIMIT + 150) / 25) {
        let requests = (0..25).map(|i| {
            let app = if (round + i) % 2 == 0 { &a } else { &b };
            app.get("/api/v1/studies?limit=1", &token)
        });
        for resp in futures_util::future::join_all(requests).await {
            match resp.status {
                200 => answered += 1,
                429 => {
                    refused += 1;
                    assert!(resp.header("retry-after").is_some());
                    assert_eq!(resp.header("ratelimit-remaining").as_deref(), Some("0"));
                }
                other => panic!("unexpected {other}: {}", resp.text),
            }
        }
    }
    assert_eq!(
        chrono::Utc::now().timestamp() / 60,
        window,
        "the test ran across a window boundary"
    );
    assert!(
        answered <= LIMIT + LIMIT / 10,
        "{answered} answered across both instances"
    );
    // What one instance leased and did not spend is lost to the other: one share each.
    assert!(
        answered >= LIMIT - 2 * (LIMIT / 20),
        "only {answered} answered"
    );
    assert!(refused > 0);
}

#[actix_web::test]
async fn wrong_secrets_are_throttled_per_address_but_the_right_one_still_passes() {
    let app = spawn_app().await;
    let (id, secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    // The real client got a token once: its secret is known good from then on.
    app.token(&id, &secret).await;
    let wrong = async |secret: &str| {
        app.form(
            TOKEN_PATH,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", secret),
            ],
        )
        .await
    };
    let mut statuses = Vec::new();
    for _ in 0..(trialops::auth::secret_guard::ADDRESS_FAILURES_PER_MINUTE + 5) {
        statuses.push(wrong("not-the-secret").await.status);
    }
    assert!(statuses.contains(&401));
    let throttled = wrong("not-the-secret").await;
    throttled.problem(429);
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // The address is blocked, yet the client's right secret skips the block.
    let token = app.token(&id, &secret).await;
    app.get("/api/v1/studies", &token).await.ok(200);
    // A client whose secret was never verified here waits with the address.
    let (other, other_secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let resp = app
        .form(
            TOKEN_PATH,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &other),
                ("client_secret", &other_secret),
            ],
        )
        .await;
    resp.problem(429);
}

async fn sealed_events(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM audit_seals").await
}

#[actix_web::test]
async fn thirty_two_writers_through_the_api_are_in_the_feed_once_in_order_and_the_chain_holds() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit_per_minute = 0;
        settings.db_pool_size = 16;
    })
    .await;
    let study_id = app.study_id(json!({})).await;
    // 32 writers, each creating a risk and then updating it twice.
    let writers = (0..32).map(|writer| {
        let app = &app;
        let study_id = study_id.clone();
        async move {
            let body = json!({"study_id": study_id, "title": format!("Risk {writer}"), "category": "vendor",
                              "likelihood": 1, "impact": 1, "detectability": 1});
            let risk = app.admin_post("/api/v1/risks", &body).await.ok(201).clone();
            let path = format!("/api/v1/risks/{}", id_of(&risk));
            for likelihood in [2, 3] {
                app.admin_patch_with(&path, &json!({"likelihood": likelihood}), Some("reassessed"))
                .await
                .ok(200);
            }
            id_of(&risk)
        }
    });
    let risks: BTreeSet<String> = futures_util::future::join_all(writers)
        .await
        .into_iter()
        .collect();
    assert_eq!(risks.len(), 32);

    let mut seen: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .admin_json(&format!(
                "/api/v1/changes?after={after}&limit=50&entity_type=risk"
            ))
            .await;
        let items = page["data"].as_array().unwrap().clone();
        after = page["next_after"].as_i64().unwrap();
        if items.is_empty() {
            break;
        }
        seen.extend(items);
    }
    assert_eq!(seen.len(), 32 * 3, "every change once");
    let seqs: Vec<i64> = seen.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    for risk in &risks {
        let versions: Vec<i64> = seen
            .iter()
            .filter(|i| i["entity_id"] == risk.as_str())
            .map(|i| i["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [1, 2, 3], "{risk}: its changes in their order");
    }
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(check.ok(200)["valid"], true, "{}", check.text);
    // The study, the admin client that wrote it, and every risk change.
    assert_eq!(check.body["events_checked"], 2 + 32 * 3);
}

#[actix_web::test]
async fn events_wait_for_a_sealer_and_a_sealer_that_dies_mid_batch_loses_nothing() {
    // No background sealer on this instance.
    let app = spawn_app_with(|settings| settings.seal_interval_ms = 0).await;
    for i in 0..3 {
        app.create_study(json!({"title": format!("S{i}")})).await;
    }
    assert_eq!(
        sealed_events(&app).await,
        0,
        "nothing sealed without a sealer"
    );

    // A sealer that dies mid-batch: its transaction never commits.
    let mut conn = app.db().await;
    conn.batch_execute("BEGIN; SELECT audit_seal(1000, false); ROLLBACK;")
        .await
        .unwrap();
    assert_eq!(sealed_events(&app).await, 0);

    // Another instance's background sealer seals them, in id order, once.
    let other = app
        .another_instance(|settings| settings.seal_interval_ms = 10)
        .await;
    for _ in 0..200 {
        if sealed_events(&app).await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sealed_events(&app).await, 4);
    drop(other);

    // A read of the feed seals for itself: a write is in the feed as soon as it is answered.
    let study = app.create_study(json!({"title": "Late"})).await;
    let page = app.admin_json("/api/v1/changes?after=4").await;
    assert_eq!(page["data"][0]["entity_id"], study["id"]);
    assert_eq!(page["data"][0]["seq"], 5);
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(check.ok(200)["valid"], true);
    assert_eq!(check.body["events_checked"], 5);
}
