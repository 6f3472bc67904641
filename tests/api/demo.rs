//! `trialops demo`: a realistic portfolio loaded through the binary and the normal write
//! path, read back through the API as a new user would, and never loaded twice.

use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::helpers::spawn_app;

const BIN: &str = env!("CARGO_BIN_EXE_trialops");

/// Runs `trialops demo`: success, stdout as JSON, stderr, seconds.
fn demo(database_url: &str) -> (bool, Value, String, f64) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .arg("demo")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let outcome = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        outcome,
        stderr,
        started.elapsed().as_secs_f64(),
    )
}

#[actix_web::test]
async fn the_demo_loads_a_portfolio_through_the_write_path_once() {
    let app = spawn_app().await;
    let (ok, outcome, stderr, seconds) = demo(&app.database_url);
    assert!(ok, "{stderr}");
    assert_eq!(outcome["outcome"], "loaded", "{outcome}");
    assert!(stderr.contains("Demo portfolio loaded"), "{stderr}");
    eprintln!("trialops demo took {seconds:.1} s: {stderr}");

    // Every record has its create event, by the demo actor, with a reason; risks that
    // reached the threshold have their escalation event too.
    let records = app
        .count(
            "SELECT ((SELECT count(*) FROM studies) + (SELECT count(*) FROM sites)
          + (SELECT count(*) FROM vendors) + (SELECT count(*) FROM milestones)
          + (SELECT count(*) FROM budget_lines) + (SELECT count(*) FROM expenses)
          + (SELECT count(*) FROM risks) + (SELECT count(*) FROM deviations)
          + (SELECT count(*) FROM enrollment_reports))::int8 AS n",
        )
        .await;
    let creates = app
        .count(
            "SELECT count(*) AS n FROM audit_events WHERE actor = 'demo' AND action = 'create'
           AND reason = 'demo portfolio loaded with trialops demo'",
        )
        .await;
    assert_eq!(creates, records);
    let escalations = app
        .count(
            "SELECT count(*) AS n FROM audit_events WHERE actor = 'demo' AND action = 'escalate'",
        )
        .await;
    assert_eq!(escalations, outcome["escalated_risks"].as_i64().unwrap());
    assert!(escalations >= 2);
    assert!(records > 3000, "two years of weekly reports: {records}");

    let token = &app.admin_token;
    let studies = app.admin_list("/api/v1/studies").await;
    assert_eq!(studies.len(), 3);
    assert_eq!(distinct(&studies, "phase").len(), 3);
    assert!(studies.iter().any(|s| s["nct_id"] == "NCT06008288"));

    let sites = app.admin_list("/api/v1/sites?limit=1000").await;
    assert!((55..=65).contains(&sites.len()), "{}", sites.len());
    let countries = distinct(&sites, "country");
    assert!(countries.len() >= 5, "{countries:?}");

    let mut signal_kinds = Vec::new();
    for study in &studies {
        let id = study["id"].as_str().unwrap();
        let metrics = app
            .get(&format!("/api/v1/studies/{id}/metrics"), token)
            .await
            .ok(200)
            .clone();
        assert!(metrics["enrollment"]["enrolled"].as_i64().unwrap() > 0);
        if study["status"] == "recruiting" {
            assert!(
                metrics["enrollment"]["velocity_4w"].as_f64().unwrap() > 0.0,
                "{}",
                metrics["enrollment"]
            );
            let forecast = app
                .get(&format!("/api/v1/studies/{id}/enrollment-forecast"), token)
                .await
                .ok(200)
                .clone();
            assert!(forecast["completion_date"]["p50"].is_string(), "{forecast}");
            assert!(forecast["probability_by_planned_end"].is_number());
        }
        let curve = app
            .get(&format!("/api/v1/studies/{id}/enrollment-curve"), token)
            .await
            .ok(200)
            .clone();
        assert!(
            curve["data"].as_array().unwrap().len() > 90,
            "two years of weeks"
        );
        let signals = app
            .get(&format!("/api/v1/studies/{id}/signals"), token)
            .await
            .ok(200)
            .clone();
        for signal in signals["data"].as_array().unwrap() {
            signal_kinds.push(signal["kind"].as_str().unwrap().to_string());
        }
    }
    for kind in [
        "budget_overburn",
        "deviation_reporting_overdue",
        "milestone_slipping",
        "site_not_enrolling",
        "site_activation_overdue",
    ] {
        assert!(
            signal_kinds.iter().any(|k| k == kind),
            "{kind}: {signal_kinds:?}"
        );
    }

    // The exports BI tools pull.
    let csv = |path: &'static str| {
        let request = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .header("Accept", "text/csv");
        app.send(request)
    };
    let portfolio = csv("/api/v1/metrics/portfolio").await;
    assert_eq!(portfolio.status, 200);
    assert_eq!(portfolio.text.lines().count(), 4, "{}", portfolio.text);
    let enrollment = csv("/api/v1/enrollment?limit=1000").await;
    assert_eq!(enrollment.status, 200);
    assert!(enrollment.text.lines().count() > 1000);

    // A second run finds the studies and adds nothing: no row, no audit event.
    let before = app.fingerprint().await;
    let (ok, again, stderr, _) = demo(&app.database_url);
    assert!(ok, "{stderr}");
    assert_eq!(again["outcome"], "already_loaded", "{again}");
    assert_eq!(again["studies"].as_array().unwrap().len(), 3);
    assert!(stderr.contains("already loaded"), "{stderr}");
    assert_eq!(app.fingerprint().await, before);
}

/// The distinct values of a text `field` of `records`.
fn distinct<'a>(records: &'a [Value], field: &str) -> std::collections::BTreeSet<&'a str> {
    records.iter().map(|r| r[field].as_str().unwrap()).collect()
}
