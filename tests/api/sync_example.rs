//! `examples/sync_feed.rs`, the client `docs/sync.md` describes, run for real against the
//! service: its file holds the feed exactly, after a resume and after a torn last line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

/// The example's binary, built (or found up to date) once per run. `cargo test` builds
/// examples, but `cargo test --test api` does not, and a binary from before an edit would
/// test old code: asking cargo is cheap when nothing changed.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/api-<hash>.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap();
        let mut build = Command::new(env!("CARGO"));
        build
            .args([
                "build",
                "--quiet",
                "--example",
                "sync_feed",
                "--manifest-path",
            ])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let built = build.output().unwrap();
        assert!(
            built.status.success(),
            "building the example: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let binary = profile_dir
            .join("examples")
            .join(format!("sync_feed{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.exists(), "no {}", binary.display());
        binary
    })
}

/// Runs the example to `out` (off the test's thread: the server answers it meanwhile) and
/// returns what it reports on stdout.
async fn sync(app: &TestApp, id: &str, secret: &str, out: &Path, limit: u32) -> Value {
    let mut command = Command::new(example_binary());
    command
        .args(["--base-url", &app.base, "--client-id", id, "--out"])
        .arg(out)
        .args(["--limit", &limit.to_string()])
        .env("TRIALOPS_CLIENT_SECRET", secret);
    let output = actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sync_feed failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("stdout: {stderr}"))
}

/// The whole feed as this client sees it, page by page.
async fn whole_feed(app: &TestApp, token: &str) -> Vec<Value> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let body = app
            .get(&format!("/api/v1/changes?after={after}&limit=3"), token)
            .await
            .ok(200)
            .clone();
        let items = body["data"].as_array().unwrap().clone();
        after = body["next_after"].as_i64().unwrap();
        if items.is_empty() {
            return all;
        }
        all.extend(items);
    }
}

/// The file's lines, each parsed; panics on a line that is not JSON.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "ends with a newline"
    );
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A site created in the study, then the study renamed: three changes and more.
async fn some_writes(app: &TestApp, study_id: &str, title: &str) {
    let site = app.create_site(study_id, json!({})).await;
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": title}),
    )
    .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{}", site["id"].as_str().unwrap()))
        .await;
}

/// Removes the file when the test ends, however it ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[actix_web::test]
async fn the_example_client_copies_the_feed_and_resumes_without_gaps_or_repeats() {
    let app = spawn_app().await;
    // A cro client: it sees its study's changes, not the other study's.
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap().to_string();
    let other_id = app.study_id(json!({})).await;
    let (id, secret) = app
        .register(Role::Cro, vec![study_id.parse().unwrap()], vec![], None)
        .await;
    let token = app.token(&id, &secret).await;
    some_writes(&app, &study_id, "First").await;
    some_writes(&app, &other_id, "Elsewhere").await;

    let file = TempFile(std::env::temp_dir().join(format!("sync_feed_{}.jsonl", Uuid::now_v7())));
    let out = file.0.as_path();

    // First run: from nothing to the head, in pages of 2.
    let report = sync(&app, &id, &secret, out, 2).await;
    let feed = whole_feed(&app, &token).await;
    assert_eq!(feed.len(), 4, "the study's create and 3 changes: {feed:?}");
    assert_eq!(lines(out), feed);
    assert_eq!(report["written"], 4);
    assert!(
        lines(out)
            .iter()
            .all(|i| i["study_id"] == study_id.as_str()),
        "only the client's study"
    );

    // Caught up: a second run writes nothing.
    assert_eq!(sync(&app, &id, &secret, out, 2).await["written"], 0);
    assert_eq!(lines(out), feed);

    // New changes: only they are appended.
    some_writes(&app, &study_id, "Second").await;
    let report = sync(&app, &id, &secret, out, 1000).await;
    let feed = whole_feed(&app, &token).await;
    assert_eq!(feed.len(), 7);
    assert_eq!(report["written"], 3);
    assert_eq!(lines(out), feed);

    // A crash while appending the last line leaves half of it and no newline: the run
    // after cuts it off, fetches that change again, and goes on with the new ones.
    let text = std::fs::read_to_string(out).unwrap();
    let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let torn = &text[..last_start + (text.len() - last_start) / 2];
    std::fs::write(out, torn).unwrap();
    some_writes(&app, &study_id, "Third").await;
    let report = sync(&app, &id, &secret, out, 2).await;
    let feed = whole_feed(&app, &token).await;
    assert_eq!(feed.len(), 10);
    assert_eq!(report["written"], 4, "the torn change and 3 new ones");
    assert_eq!(lines(out), feed);

    // Each (entity, version) once: what a consumer applying the lines relies on.
    let mut keys: Vec<(String, i64)> = feed
        .iter()
        .map(|i| {
            (
                i["entity_id"].as_str().unwrap().to_string(),
                i["version"].as_i64().unwrap(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), feed.len());
}
