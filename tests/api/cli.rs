//! The `trialops` binary itself: client management on the command line, the first start,
//! and graceful shutdown with a request still in flight.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel_async::AsyncConnection;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

const BIN: &str = env!("CARGO_BIN_EXE_trialops");

fn trialops(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[actix_web::test]
async fn clients_are_managed_from_the_command_line() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();

    let (ok, stdout, stderr) = trialops(
        &app.database_url,
        &[
            "clients", "create", "--name", "Acme CRO", "--role", "cro", "--study", study_id,
        ],
    );
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    let created: Value = serde_json::from_str(lines[0]).unwrap();
    let (id, secret) = (
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    let token = app.token(id, secret).await;
    let visible = app.get("/api/v1/studies", &token).await;
    assert_eq!(visible.ok(200)["data"][0]["id"], study_id);

    let (ok, listed, _) = trialops(&app.database_url, &["clients", "list"]);
    assert!(ok);
    assert!(listed.contains(id) && !listed.contains(secret) && !listed.contains("argon2"));

    let (ok, _, stderr) = trialops(&app.database_url, &["clients", "revoke", id]);
    assert!(ok, "{stderr}");
    let refused = app
        .form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
    assert_eq!(refused.status, 401);
    // The running service hears of the revocation through LISTEN/NOTIFY: at once, but
    // not synchronously with the CLI's exit (the promise is "within a second").
    app.answers_within("/api/v1/studies", &token, 401, Duration::from_secs(1))
        .await;
    let events = app.audit_events(id).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["create", "revoke"]
    );
    assert_eq!(events[0]["actor"], "cli");

    // Bad input is refused with a sentence, and nothing is created.
    let (ok, stdout, stderr) = trialops(
        &app.database_url,
        &["clients", "create", "--name", "x", "--role", "cro"],
    );
    assert!(
        !ok && stdout.is_empty() && stderr.contains("studies"),
        "{stderr}"
    );
    let (ok, _, _) = trialops(
        &app.database_url,
        &["clients", "create", "--name", "x", "--role", "wizard"],
    );
    assert!(!ok);
}

fn wait_for_line(reader: &mut impl BufRead, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains(needle) {
            return line;
        }
    }
    panic!("no line containing {needle:?}");
}

/// Signal handlers are in place once the server answers.
fn wait_until_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on port {port} never answered");
}

#[actix_web::test]
async fn serve_prints_a_first_admin_once_and_shuts_down_gracefully() {
    let app = spawn_app().await;
    // The test database already has an admin; a fresh one next to it has none.
    let fresh = format!("{}_fresh", app.database_url);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = || {
        Command::new(BIN)
            .arg("serve")
            .env("DATABASE_URL", &fresh)
            .env("TRIALOPS_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let mut first = start();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let url_line = wait_for_line(&mut stderr, "Swagger UI:");
    wait_until_serving(port);
    assert!(
        url_line.contains(&format!("http://127.0.0.1:{port}/swagger-ui/")),
        "{url_line}"
    );
    let mut stdout = BufReader::new(first.stdout.take().unwrap());
    let mut admin = String::new();
    stdout.read_line(&mut admin).unwrap();
    let admin: Value = serde_json::from_str(&admin).unwrap();
    assert!(
        admin["client_id"].is_string()
            && admin["client_secret"].as_str().unwrap().starts_with("tos_")
    );

    // A request in flight when SIGTERM arrives still gets its answer.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = "grant_type=client_credentials&client_id=00000000-0000-0000-0000-000000000000&client_secret=x";
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal("-TERM", &first);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "in-flight request answered: {answer}"
    );
    assert!(answer.contains("invalid_client"));
    let status = first.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");

    // Second start on the same database: an admin exists, so none is printed.
    let mut second = start();
    let mut stderr = BufReader::new(second.stderr.take().unwrap());
    wait_for_line(&mut stderr, "Swagger UI:");
    wait_until_serving(port);
    signal("-INT", &second);
    let mut printed = String::new();
    second
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    assert!(second.wait().unwrap().success());
    assert!(printed.is_empty(), "no second admin: {printed}");

    let mut conn = diesel_async::AsyncPgConnection::establish(&format!(
        "{}/postgres",
        crate::helpers::SERVER_URL
    ))
    .await
    .unwrap();
    let name = fresh.rsplit('/').next().unwrap().to_string();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await
    .unwrap();
}

/// Sends `sig` (`-TERM`, `-INT`) to `child`.
fn signal(sig: &str, child: &std::process::Child) {
    let sent = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
    assert!(sent.unwrap().success(), "kill {sig}");
}
