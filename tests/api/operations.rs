//! What an operator needs (issue 14): Prometheus metrics on their own address, parsed by a
//! Prometheus text parser, and start-up failures said in one line naming what to change.

use std::net::TcpListener;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{execute, run_python, server, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_trialops");

/// The Prometheus project's own parser (`prometheus_client.parser`) reads the scrape and
/// answers its samples as JSON: [{"name", "type", "labels", "value"}].
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = json.load(open(sys.argv[1]))["text"]
print(json.dumps([{"name": s.name, "type": f.type, "labels": s.labels, "value": s.value}
                  for f in text_string_to_metric_families(text) for s in f.samples]))
"#;

fn find<'a>(samples: &'a [Value], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Value> {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect()
}

fn number(sample: &Value) -> f64 {
    sample["value"].as_f64().unwrap()
}

#[actix_web::test]
async fn metrics_are_scraped_on_their_own_address_in_prometheus_format() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 5).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = trialops::operations::run(listener, app.state.clone()).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let study = app.study_id(json!({})).await;
    let mut refused = 0;
    for _ in 0..8 {
        let resp = app.admin_get(&format!("/api/v1/studies/{study}")).await;
        if resp.status == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the rate limit refused nothing");
    // Not on the API's address.
    let api = app.send(app.bare("GET", "/metrics")).await;
    assert_eq!(api.status, 404);

    let text = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (ok, out) = run_python(PARSE, &[&json!({ "text": text })], &[]);
    assert!(ok, "{out}");
    let samples: Vec<Value> = serde_json::from_str(out.trim()).unwrap();

    let answered = find(
        &samples,
        "trialops_http_requests_total",
        &[
            ("route", "/api/v1/studies/{id}"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert_eq!(answered.len(), 1, "{text}");
    assert!(number(answered[0]) >= 1.0);
    let limited = find(
        &samples,
        "trialops_http_requests_total",
        &[("route", "/api/v1/studies/{id}"), ("status", "429")],
    );
    assert!(!limited.is_empty(), "{text}");
    let refusals = find(&samples, "trialops_rate_limit_refusals_total", &[]);
    assert!(number(refusals[0]) >= refused as f64, "{text}");

    // A histogram: cumulative buckets up to +Inf, a count and a sum.
    let route = [("route", "/api/v1/studies/{id}"), ("method", "GET")];
    let buckets = find(
        &samples,
        "trialops_http_request_duration_seconds_bucket",
        &route,
    );
    assert!(buckets.len() > 5, "{text}");
    assert!(buckets.iter().any(|b| b["labels"]["le"] == "+Inf"));
    assert!(
        number(
            find(
                &samples,
                "trialops_http_request_duration_seconds_count",
                &route
            )[0]
        ) >= 1.0
    );
    assert_eq!(
        find(
            &samples,
            "trialops_http_request_duration_seconds_sum",
            &route
        )
        .len(),
        1
    );

    for state in ["in_use", "idle"] {
        let pool = [("pool", "primary"), ("state", state)];
        assert_eq!(
            find(&samples, "trialops_db_pool_connections", &pool).len(),
            1
        );
    }
    assert_eq!(find(&samples, "trialops_db_pool_waiting", &[]).len(), 2);
    // The scrape's own connection is on the metrics listener, not the API's: the set-up's
    // client holds at most one there.
    let open = find(&samples, "trialops_http_connections_open", &[]);
    assert!(number(open[0]) <= 1.0, "{text}");
    let bound = find(&samples, "trialops_http_max_connections", &[]);
    assert_eq!(number(bound[0]), 1024.0, "{text}");
    let head = find(&samples, "trialops_change_feed_head", &[]);
    assert!(number(head[0]) >= 1.0, "{text}");
    assert_eq!(
        find(&samples, "trialops_audit_sealing_delay_seconds", &[]).len(),
        1
    );
    for state in ["pending", "failed"] {
        let backlog = find(&samples, "trialops_webhook_deliveries", &[("state", state)]);
        assert_eq!(backlog.len(), 1, "{text}");
    }
    handle.stop(false).await;
}

/// Runs the binary with `env`, no `.env` influence and logs off: stderr is what a person sees.
fn serve(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_remove("RUST_BACKTRACE")
        .env("RUST_LOG", "off")
        .env("TRIALOPS_BIND", "127.0.0.1:0")
        .current_dir(std::env::temp_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[track_caller]
fn one_line(stderr: &str, needles: &[&str]) {
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle} missing: {stderr}");
    }
}

#[actix_web::test]
async fn start_up_failures_say_what_to_change_in_one_line() {
    // PostgreSQL refused (nothing listens on port 1).
    let (code, stderr) = serve(&[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/trialops")]);
    assert_eq!(code, Some(1));
    one_line(&stderr, &["refused", "127.0.0.1:1", "DATABASE_URL"]);
    // With RUST_BACKTRACE the whole chain follows the line.
    let out = Command::new(BIN)
        .arg("serve")
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "off")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/trialops")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).lines().count() > 1);

    // A missing database and a user who may not create it.
    let role = format!("trialops_nocreate_{}", uuid::Uuid::new_v4().simple());
    let mut admin = server().await;
    execute(&mut admin, &format!("CREATE ROLE {role} LOGIN NOCREATEDB")).await;
    let url = format!("postgres://{role}@127.0.0.1:5432/trialops_missing_{role}");
    let (code, stderr) = serve(&[("DATABASE_URL", &url)]);
    execute(&mut admin, &format!("DROP ROLE {role}")).await;
    assert_eq!(code, Some(1));
    one_line(
        &stderr,
        &["does not exist", "may not create it", "DATABASE_URL"],
    );

    // The port already in use (on a database that is ready, with an admin).
    let app = spawn_app_with(|_| {}).await;
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, stderr) = serve(&[
        ("DATABASE_URL", &app.database_url),
        ("TRIALOPS_BIND", &address),
        ("TRIALOPS_WEBHOOK_POLL_MS", "0"),
    ]);
    assert_eq!(code, Some(1));
    one_line(&stderr, &["port already in use", &address, "TRIALOPS_BIND"]);

    // Malformed settings name their variable.
    for (name, value) in [
        ("TRIALOPS_RATE_LIMIT_PER_MINUTE", "lots"),
        ("TRIALOPS_CORS_ORIGINS", "dash.example.com/app"),
        ("TRIALOPS_METRICS_BIND", "everywhere"),
        ("TRIALOPS_WORKERS", "0"),
        ("TRIALOPS_MAX_CONNECTIONS", "-1"),
    ] {
        let (code, stderr) = serve(&[(name, value), ("DATABASE_URL", &app.database_url)]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        one_line(&stderr, &[name, value]);
    }
    let (code, stderr) = serve(&[("DATABASE_URL", "not a url")]);
    assert_eq!(code, Some(1));
    one_line(&stderr, &["DATABASE_URL is malformed"]);
}

/// `TRIALOPS_MAX_IN_FLIGHT`: requests beyond the bound wait in front of the middleware and
/// are answered once a permit is free, none refused or lost; the health checks never wait.
#[actix_web::test]
async fn requests_beyond_the_in_flight_bound_wait_and_are_all_answered_while_probes_pass() {
    let app = spawn_app_with(|s| s.max_in_flight = 1).await;
    let study = app.study_id(json!({})).await;
    let gate = app.state.in_flight.clone().unwrap();

    // Hold the only permit: a read now waits, and the probes still answer.
    let held = gate.clone().acquire_owned().await.unwrap();
    let path = format!("/api/v1/studies/{study}");
    let waiting = {
        let (http, url, token) = (app.http.clone(), app.url(&path), app.admin_token.clone());
        actix_web::rt::spawn(async move { http.get(url).bearer_auth(token).send().await })
    };
    for probe in ["/healthz", "/readyz"] {
        // A probe behind the held permit would never answer: fail instead of hanging.
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            app.bare("GET", probe).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{probe} waited for a permit"))
        .unwrap();
        assert_eq!(answer.status(), 200);
    }
    assert!(
        !waiting.is_finished(),
        "a read went past a bound of one held permit"
    );
    drop(held);
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200);

    // Twenty reads at once through one permit: every one answered.
    let reads = (0..20).map(|_| app.admin_get(&path));
    for read in futures_util::future::join_all(reads).await {
        read.expect(200, "a read through a bound of one");
    }
    assert_eq!(gate.available_permits(), 1);
}

/// One HTTP/1.1 exchange on a raw connection: the answer's head, lower-cased, or `None` when
/// none came within `wait` (the read timed out) or the connection was closed.
fn exchange(stream: &mut std::net::TcpStream, wait: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: trialops\r\n\r\n")
        .ok()?;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).to_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if answer.len() >= end + 4 + length {
                return Some(head);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `TRIALOPS_MAX_CONNECTIONS`: below the bound an answer keeps its connection alive; once the
/// bound is reached every answer closes its connection, a connection beyond the bound waits
/// in the accept queue, unserved, and it is served as soon as a held one goes.
#[actix_web::test]
async fn at_the_connection_bound_answers_close_their_connections_and_the_waiting_get_their_turn() {
    use std::time::{Duration, Instant};
    // The tests' servers have one worker, so the bound is exactly 3.
    let mut app = spawn_app_with(|s| s.max_connections = 3).await;
    let bound = app.state.connections.clone().unwrap();
    assert_eq!(bound.limit(), 3);
    // Let go of the connection the set-up's requests left open: the test holds them all.
    app.http = reqwest::Client::new();
    let address = app.base.trim_start_matches("http://").to_string();
    let ([below, at], premature, late) = actix_web::rt::task::spawn_blocking(move || {
        let held_until = |open: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while bound.open() != open {
                assert!(
                    Instant::now() < deadline,
                    "{} open, not {open}",
                    bound.open()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        held_until(0);
        let connect = || std::net::TcpStream::connect(&address).unwrap();
        let long = Duration::from_secs(30);
        let mut first = connect();
        held_until(1);
        let below = exchange(&mut first, long).expect("an answer below the bound");
        let (_second, mut third) = (connect(), connect());
        held_until(3);
        let at = exchange(&mut third, long).expect("an answer at the bound");
        // The server drops the connection it said it would close.
        assert!(
            exchange(&mut third, long).is_none(),
            "a closed connection answered"
        );
        held_until(2);
        // Fill the bound with an idle connection; one more is not accepted: no answer.
        let _idle = connect();
        held_until(3);
        let mut waiting = connect();
        let premature = exchange(&mut waiting, Duration::from_millis(500));
        drop(first);
        // Its request was sent before: the answer to it comes once it is accepted.
        let late = exchange(&mut waiting, long);
        ([below, at], premature, late)
    })
    .await
    .unwrap();
    assert!(below.starts_with("http/1.1 200"), "{below}");
    assert!(!below.contains("connection: close"), "{below}");
    assert!(at.starts_with("http/1.1 200"), "{at}");
    assert!(at.contains("connection: close"), "{at}");
    assert!(
        premature.is_none(),
        "served beyond the bound: {premature:?}"
    );
    let late = late.expect("the waiting connection was served once room was made");
    assert!(late.starts_with("http/1.1 200"), "{late}");
}
