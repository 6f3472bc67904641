//! Webhooks against a real local receiver: signed deliveries of what the owner may read,
//! retries with backoff, failure after the last attempt, and the SSRF guard.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// What the receiver got: the signature header and the raw body of each request.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

/// A local HTTP receiver that answers 500 to its first `failures` requests, then 200.
struct Receiver {
    url: String,
    received: Received,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(failures: usize) -> Self {
        let received = Received::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = received.clone();
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: String| {
                let state = state.clone();
                async move {
                    let signature = req
                        .headers()
                        .get("x-trialops-signature")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    let mut all = state.0.lock().unwrap();
                    all.push((signature, body));
                    if all.len() <= failures {
                        HttpResponse::InternalServerError().finish()
                    } else {
                        HttpResponse::Ok().finish()
                    }
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            received,
            server: handle,
        }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.received.0.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// An app whose dispatcher runs often, retries fast, and may call 127.0.0.1.
async fn app_for_webhooks(max_attempts: i32) -> TestApp {
    spawn_app_with(|settings| {
        settings.webhook_allow_private = true;
        settings.webhook_poll_ms = 50;
        settings.webhook_backoff_ms = 100;
        settings.webhook_max_attempts = max_attempts;
    })
    .await
}

async fn subscribe(app: &TestApp, token: &str, url: &str, types: &[&str]) -> Value {
    app.post(
        "/api/v1/webhooks",
        token,
        &json!({"url": url, "entity_types": types}),
    )
    .await
    .ok(201)
    .clone()
}

/// Waits until `done` holds for the webhook's deliveries, or fails after 20 s.
async fn wait_for_deliveries(
    app: &TestApp,
    token: &str,
    webhook_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let page = app
            .get(
                &format!("/api/v1/webhooks/{webhook_id}/deliveries?limit=1000"),
                token,
            )
            .await;
        let deliveries = page.ok(200)["data"].as_array().unwrap().clone();
        if done(&deliveries) {
            return deliveries;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "deliveries never settled: {deliveries:#?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_in(state: &'static str) -> impl Fn(&[Value]) -> bool {
    move |deliveries: &[Value]| {
        !deliveries.is_empty() && deliveries.iter().all(|d| d["state"] == state)
    }
}

/// Checks `X-TrialOps-Signature: t=<unix>,v1=<hex>` as a receiver would.
fn signature_holds(secret: &str, header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

#[actix_web::test]
async fn changes_are_pushed_signed_in_feed_order_and_shown_as_deliveries() {
    let app = app_for_webhooks(5).await;
    let receiver = Receiver::start(0);
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap().to_string();
    let hook = subscribe(&app, &app.admin_token, &receiver.url, &["study", "site"]).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["entity_types"], json!(["site", "study"]));

    // Changes after the subscription, of the chosen types (the milestone is not one).
    app.admin_patch(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": "T2"}),
    )
    .await
    .ok(200);
    let site = app.create_site(&study_id, json!({})).await;
    app.create_milestone(&study_id, json!({})).await;
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": "T3"}),
    )
    .await;

    let deliveries = wait_for_deliveries(&app, &app.admin_token, &hook_id, |d| {
        d.len() == 3 && all_in("delivered")(d)
    })
    .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "each change once: {requests:#?}");
    let arrived: Vec<Value> = requests
        .iter()
        .map(|(signature, body)| {
            assert!(signature_holds(&secret, signature, body), "{signature}");
            assert!(!signature_holds("another secret", signature, body));
            serde_json::from_str(body).unwrap()
        })
        .collect();
    // One record's changes arrive in feed order; different records' may overlap.
    let study_versions: Vec<i64> = arrived
        .iter()
        .filter(|b| b["entity_type"] == "study")
        .map(|b| b["version"].as_i64().unwrap())
        .collect();
    assert_eq!(study_versions, [2, 3]);
    // Each body is one change-feed item, equal to what the feed answers.
    let mut bodies = arrived;
    bodies.sort_by_key(|b| b["seq"].as_i64().unwrap());
    let after = bodies[0]["seq"].as_i64().unwrap() - 1;
    let feed = app
        .admin_get(&format!(
            "/api/v1/changes?after={after}&entity_type=study,site"
        ))
        .await;
    assert_eq!(feed.ok(200)["data"].as_array().unwrap(), &bodies);
    assert_eq!(
        bodies
            .iter()
            .map(|b| (
                b["entity_type"].as_str().unwrap(),
                b["version"].as_i64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("study", 2), ("site", 1), ("study", 3)]
    );
    assert_eq!(bodies[1]["entity_id"], site["id"]);
    let seqs: Vec<i64> = deliveries
        .iter()
        .map(|d| d["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let attempt = &deliveries[0]["attempts"][0];
    assert_eq!(attempt["response_status"], 200);
    assert!(attempt["error"].is_null() && attempt["at"].is_string());

    // The secret is shown once; reads never carry it.
    let read = app.admin_get(&format!("/api/v1/webhooks/{hook_id}")).await;
    assert!(read.ok(200).get("secret").is_none());
    assert!(
        !app.admin_get("/api/v1/webhooks")
            .await
            .text
            .contains(&secret)
    );

    // Deleted: nothing more is sent.
    app.admin_delete_ok(&format!("/api/v1/webhooks/{hook_id}"))
        .await;
    let study_path = format!("/api/v1/studies/{study_id}");
    app.admin_patch_ok(&study_path, &json!({"title": "T4"}))
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.requests().len(), 3);
    app.admin_get(&format!("/api/v1/webhooks/{hook_id}"))
        .await
        .problem(404);
}

#[actix_web::test]
async fn a_receiver_that_fails_twice_gets_the_change_on_the_third_attempt() {
    let app = app_for_webhooks(5).await;
    let receiver = Receiver::start(2);
    let hook = subscribe(&app, &app.admin_token, &receiver.url, &["study"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    app.create_study(json!({})).await;

    let deliveries =
        wait_for_deliveries(&app, &app.admin_token, hook_id, all_in("delivered")).await;
    assert_eq!(deliveries.len(), 1);
    let attempts = deliveries[0]["attempts"].as_array().unwrap();
    let statuses: Vec<i64> = attempts
        .iter()
        .map(|a| a["response_status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(attempts[0]["error"], "receiver answered 500");
    // Exponential backoff: the second wait (200 ms) is longer than the first (100 ms).
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(attempts[i]["at"].as_str().unwrap()).unwrap()
    };
    let (first_wait, second_wait) = (at(1) - at(0), at(2) - at(1));
    assert!(
        first_wait >= chrono::Duration::milliseconds(100),
        "{first_wait}"
    );
    assert!(
        second_wait >= chrono::Duration::milliseconds(200),
        "{second_wait}"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.1 == requests[0].1),
        "every attempt sends the same item"
    );
}

#[actix_web::test]
async fn a_delivery_is_failed_after_its_last_attempt_and_later_ones_still_flow() {
    let app = app_for_webhooks(3).await;
    // Nothing listens here: every attempt fails to connect.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", dead.local_addr().unwrap());
    drop(dead);
    let hook = subscribe(&app, &app.admin_token, &url, &["vendor"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    app.create_vendor(json!({})).await;
    let deliveries = wait_for_deliveries(&app, &app.admin_token, hook_id, all_in("failed")).await;
    let attempts = deliveries[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a["response_status"].is_null()));
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
}

#[actix_web::test]
async fn a_cro_webhook_carries_only_what_the_cro_may_read() {
    let app = app_for_webhooks(5).await;
    let receiver = Receiver::start(0);
    let mine_id = &app.study_id(json!({})).await;
    let other = app.create_study(json!({})).await;
    let cro = app.token_for(Role::Cro, &[mine_id], &[], None).await;
    let hook = subscribe(&app, &cro, &receiver.url, &["site"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    let my_site = app.create_site(mine_id, json!({})).await;
    app.create_site(other["id"].as_str().unwrap(), json!({}))
        .await;
    let deliveries = wait_for_deliveries(&app, &cro, hook_id, all_in("delivered")).await;
    // Give the other study's site time to (wrongly) arrive.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.requests();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(body["entity_id"], my_site["id"]);

    // Another client's webhook is not the cro's business; an admin sees it.
    let other_cro = app.token_for(Role::Cro, &[mine_id], &[], None).await;
    app.get(&format!("/api/v1/webhooks/{hook_id}"), &other_cro)
        .await
        .problem(404);
    app.get(
        &format!("/api/v1/webhooks/{hook_id}/deliveries"),
        &other_cro,
    )
    .await
    .problem(404);
    let all = app.admin_get("/api/v1/webhooks").await;
    assert_eq!(all.ok(200)["data"].as_array().unwrap().len(), 1);
    let theirs = app.get("/api/v1/webhooks", &other_cro).await;
    assert!(theirs.ok(200)["data"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn registration_refuses_internal_addresses_and_bad_requests() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();
    let site = app.create_site(study_id, json!({})).await;
    let site_id = site["id"].as_str().unwrap();
    let vendor = app.create_vendor(json!({})).await;
    let vendor_id = vendor["id"].as_str().unwrap();
    let before = app.fingerprint().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "not a url",
    ] {
        let resp = app
            .admin_post(
                "/api/v1/webhooks",
                &json!({"url": url, "entity_types": ["study"]}),
            )
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec!["url".to_string()],
            "{url}: {}",
            resp.text
        );
    }
    let resp = app
        .admin_post(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/h", "entity_types": []}),
        )
        .await;
    assert_eq!(resp.invalid_fields(), vec!["entity_types".to_string()]);
    let resp = app
        .admin_post(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/h", "entity_types": ["studies"]}),
        )
        .await;
    resp.problem(422);
    let cro = app.token_for(Role::Cro, &[study_id], &[], None).await;
    let resp = app
        .post(
            "/api/v1/webhooks",
            &cro,
            &json!({"url": "https://8.8.8.8/h", "entity_types": ["site", "client"]}),
        )
        .await;
    assert_eq!(resp.invalid_fields(), vec!["entity_types[1]".to_string()]);
    for token in [
        app.token_for(Role::Site, &[], &[site_id], None).await,
        app.token_for(Role::Vendor, &[], &[], Some(vendor_id)).await,
        app.token_for(Role::Auditor, &[], &[], None).await,
        app.token_for(Role::Analyst, &[], &[], None).await,
    ] {
        app.post(
            "/api/v1/webhooks",
            &token,
            &json!({"url": "https://8.8.8.8/h", "entity_types": ["study"]}),
        )
        .await
        .problem(403);
        app.get("/api/v1/webhooks", &token).await.problem(403);
    }
    // Registering clients above changed the fingerprint; compare from here on.
    let _ = before;
    let none = app.admin_get("/api/v1/webhooks").await;
    assert!(none.ok(200)["data"].as_array().unwrap().is_empty());
    // A public address is accepted (nothing is sent to it here: no change follows).
    let created = app
        .admin_post(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/h", "entity_types": ["study"]}),
        )
        .await;
    assert!(created.ok(201)["secret"].is_string());
    assert_eq!(created.header("cache-control").as_deref(), Some("no-store"));
}

#[actix_web::test]
async fn two_dispatchers_on_one_database_send_each_change_once() {
    // This instance's own dispatcher runs; a second one (another instance, as far as the
    // database can tell) runs rounds beside it as fast as it can.
    let app = app_for_webhooks(5).await;
    let receiver = Receiver::start(0);
    let hook = subscribe(&app, &app.admin_token, &receiver.url, &["milestone"]).await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let study_id = app.study_id(json!({})).await;

    let settings = app.state.webhooks.clone();
    let http = trialops::webhooks::dispatcher::client(&settings).unwrap();
    let second = async {
        for _ in 0..200 {
            trialops::webhooks::dispatcher::round(&app.state.db, &http, &settings)
                .await
                .unwrap();
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let writes = async {
        for i in 0..20 {
            app.create_milestone(&study_id, json!({"name": format!("M{i}")}))
                .await;
        }
    };
    futures_util::future::join(second, writes).await;
    let deliveries = wait_for_deliveries(&app, &app.admin_token, &hook_id, |d| {
        d.len() == 20 && all_in("delivered")(d)
    })
    .await;
    assert!(
        deliveries
            .iter()
            .all(|d| d["attempts"].as_array().unwrap().len() == 1)
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 20, "no change sent twice");
}

#[actix_web::test]
async fn deliveries_wait_in_the_database_for_whichever_instance_runs_next() {
    // An instance that sends nothing: subscriptions and changes are only rows.
    let app = spawn_app_with(|settings| {
        settings.webhook_allow_private = true;
        settings.webhook_poll_ms = 0;
    })
    .await;
    let receiver = Receiver::start(0);
    let hook = subscribe(&app, &app.admin_token, &receiver.url, &["vendor"]).await;
    app.create_vendor(json!({})).await;
    app.create_vendor(json!({})).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.requests().is_empty());

    // Another instance (a restart, say) picks the work up from the database.
    let settings = app.state.webhooks.clone();
    let http = trialops::webhooks::dispatcher::client(&settings).unwrap();
    trialops::webhooks::dispatcher::round(&app.state.db, &http, &settings)
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 2);
    let deliveries = wait_for_deliveries(
        &app,
        &app.admin_token,
        hook["id"].as_str().unwrap(),
        all_in("delivered"),
    )
    .await;
    assert_eq!(deliveries.len(), 2);
}
