//! Leading indicators (issue 11) through HTTP: the worked example of the enrollment
//! forecast to the digit (JSON, CSV, the curve's forecast columns and its SVG), the
//! parameters' 400s and the 422 naming missing data, a fitted prior, who reads it, the
//! new fields of sites and studies, and every signal at its threshold and one step short.

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, spawn_app};

async fn week(app: &TestApp, site: &str, monday: &str, enrolled: i64) {
    let counts = json!({"screened": enrolled, "screen_failed": 0, "enrolled": enrolled,
                        "discontinued": 0, "completed": 0});
    let resp = app.put_week(&app.admin_token, site, monday, &counts).await;
    resp.expect(201, "enrollment week");
}

/// The worked example: target 60; A, B, C enrolling, D planned for 2026-03-30.
/// A also reports the week of t0, which the forecast must not count.
async fn worked_example(app: &TestApp) -> String {
    let study = app
        .study_id(
            json!({"target_enrollment": 60, "planned_start_date": "2025-10-01",
                         "planned_end_date": "2027-03-01", "short_title": "WORKED"}),
        )
        .await;
    let a = app
        .site_id(
            &study,
            json!({"site_number": "A", "status": "enrolling", "activated_on": "2025-10-13"}),
        )
        .await;
    let b = app
        .site_id(
            &study,
            json!({"site_number": "B", "status": "enrolling", "activated_on": "2025-12-22"}),
        )
        .await;
    app.site_id(
        &study,
        json!({"site_number": "C", "status": "enrolling", "activated_on": "2026-01-19"}),
    )
    .await;
    app.site_id(
        &study,
        json!({"site_number": "D", "status": "planned", "planned_activation_on": "2026-03-30"}),
    )
    .await;
    week(app, &a, "2025-10-20", 5).await;
    week(app, &a, "2026-02-23", 7).await;
    week(app, &a, "2026-03-02", 3).await;
    week(app, &b, "2026-01-05", 4).await;
    study
}

const PRIOR: &str = "as_of=2026-03-02&prior_alpha=2&prior_beta=8";

#[actix_web::test]
async fn the_worked_example_to_the_digit() {
    let app = spawn_app().await;
    let study = worked_example(&app).await;
    let f = app
        .admin_json(&format!(
            "/api/v1/studies/{study}/enrollment-forecast?{PRIOR}"
        ))
        .await;
    assert_eq!(f["as_of"], "2026-03-02");
    assert_eq!(f["status"], "forecast");
    assert_eq!(
        (
            f["target"].clone(),
            f["enrolled"].clone(),
            f["remaining"].clone()
        ),
        (json!(60), json!(16), json!(44))
    );
    assert_eq!(
        f["hyperparameters"],
        json!({"alpha": 2.0, "beta": 8.0, "source": "given"})
    );
    let posteriors: Vec<Value> = f["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!([
                s["site_number"],
                s["enrolled"],
                s["exposure_weeks"],
                s["delay_weeks"],
                s["posterior_shape"],
                s["posterior_rate"],
                s["activation_overdue"]
            ])
        })
        .collect();
    assert_eq!(
        posteriors,
        vec![
            json!(["A", 12, 20.0, 0.0, 14.0, 28.0, false]),
            json!(["B", 4, 10.0, 0.0, 6.0, 18.0, false]),
            json!(["C", 0, 6.0, 0.0, 2.0, 14.0, false]),
            json!(["D", 0, 0.0, 4.0, 2.0, 8.0, false]),
        ]
    );
    assert_eq!(f["sites"][0]["mean_weekly_rate"], 0.5);
    assert_eq!(f["excluded_sites"], json!([]));
    assert_eq!(
        f["completion_weeks"],
        json!({"p10": 26.622, "p50": 37.02524, "p90": 52.55575})
    );
    assert_eq!(
        f["completion_date"],
        json!({"p10": "2026-09-05", "p50": "2026-11-17", "p90": "2027-03-05"})
    );
    assert_eq!(f["beyond_horizon"], false);
    assert_eq!(f["planned_end_date"], "2027-03-01");
    assert_eq!(f["probability_by_planned_end"], 0.893231);
    // 16 + m, m = 62.7619.
    assert_eq!(f["expected_enrolled_by_planned_end"], 78.76);

    // CSV: the same figures as rows.
    let csv = app
        .admin_csv(&format!(
            "/api/v1/studies/{study}/enrollment-forecast?{PRIOR}"
        ))
        .await;
    csv.expect(200, "forecast CSV");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    for row in [
        "completion_weeks.p50,37.02524",
        "probability_by_planned_end,0.893231",
        "sites[3].delay_weeks,4.0",
    ] {
        assert!(csv.text.contains(row), "{row} in {}", csv.text);
    }

    // The curve's forecast columns: week x ends x weeks after t0.
    let curve = app
        .admin_json(&format!("/api/v1/studies/{study}/enrollment-curve?{PRIOR}"))
        .await;
    assert_eq!(curve["as_of"], "2026-03-02");
    assert_eq!(curve["hyperparameters"]["source"], "given");
    let row = |week_start: &str| {
        curve["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["week_start"] == week_start)
            .cloned()
            .unwrap()
    };
    let columns = |r: Value| json!([r["forecast_p10"], r["forecast_p50"], r["forecast_p90"]]);
    assert_eq!(columns(row("2026-05-25")), json!([25, 31, 38]), "x = 13");
    assert_eq!(columns(row("2026-08-24")), json!([36, 46, 59]), "x = 26");
    assert_eq!(columns(row("2027-02-22")), json!([59, 78, 100]), "x = 52");
    assert_eq!(
        columns(row("2026-02-23")),
        json!([null, null, null]),
        "before t0"
    );
    // The week of as_of is the curve's last actual week: its report counts there.
    assert_eq!(row("2026-03-02")["cumulative_enrolled"], 19);
    assert_eq!(row("2026-03-09")["cumulative_enrolled"], Value::Null);

    // The chart: an SVG, the same bytes for the same data.
    let svg = || async {
        app.send(
            app.request(
                "GET",
                &format!("/api/v1/studies/{study}/enrollment-curve?{PRIOR}"),
                &app.admin_token,
            )
            .header("accept", "image/svg+xml"),
        )
        .await
    };
    let first = svg().await;
    first.expect(200, "curve SVG");
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("image/svg+xml")
    );
    assert!(
        first
            .text
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    for text in [
        "WORKED",
        "As of 2026-03-02",
        "2026-07",
        "Forecast P10-P90",
        "Planned",
        "Target",
        "forecast P50 completion 2026-11-17",
    ] {
        assert!(first.text.contains(text), "{text}");
    }
    assert!(first.text.len() < 200 * 1024);
    assert_eq!(svg().await.text, first.text);
    // To look at it in a browser: TRIALOPS_SVG_OUT=/tmp/curve.svg cargo test --test api worked
    if let Ok(path) = std::env::var("TRIALOPS_SVG_OUT") {
        std::fs::write(path, &first.text).unwrap();
    }

    // Study metrics and the portfolio carry the headline (fitted or planning prior, today).
    let m = app
        .admin_json(&format!("/api/v1/studies/{study}/metrics"))
        .await;
    assert!(m["probability_by_planned_end"].is_number(), "{m}");
    assert!(
        m["forecast_p50_completion_date"].is_string()
            || m["forecast_p50_completion_date"].is_null()
    );
    assert!(
        m["signals"]["by_kind"]["site_activation_overdue"]
            .as_i64()
            .unwrap()
            >= 1,
        "D is late today"
    );
    let portfolio = app.admin_json("/api/v1/metrics/portfolio").await;
    let row = &portfolio["data"][0];
    assert_eq!(
        row["probability_by_planned_end"],
        m["probability_by_planned_end"]
    );
    assert_eq!(
        row["forecast_p50_completion_date"],
        m["forecast_p50_completion_date"]
    );
    assert_eq!(row["signals"], m["signals"]);
}

#[actix_web::test]
async fn parameters_are_checked_and_missing_data_is_named() {
    let app = spawn_app().await;
    let study = app.study_id(json!({"target_enrollment": 10})).await;
    app.site_id(
        &study,
        json!({"status": "enrolling", "activated_on": "2026-01-05"}),
    )
    .await;
    let path = |query: &str| format!("/api/v1/studies/{study}/enrollment-forecast?{query}");
    for query in [
        "prior_alpha=2",
        "prior_beta=8",
        "prior_alpha=0&prior_beta=8",
        "prior_alpha=2&prior_beta=-1",
        "prior_alpha=NaN&prior_beta=1",
        "prior_alpha=two&prior_beta=1",
        "as_of=2026-13-01",
        "as_of=0001-01-01",
        "horizon=3",
    ] {
        app.admin_get(&path(query)).await.expect(400, query);
        let curve = format!("/api/v1/studies/{study}/enrollment-curve?{query}");
        app.admin_get(&curve).await.expect(400, query);
    }
    app.admin_get(&format!("/api/v1/studies/{study}/signals?as_of=tomorrow"))
        .await
        .expect(400, "signals as_of");
    // No fit (one site) and no planned dates: a 422 naming what the planning prior needs.
    let resp = app.admin_get(&path("")).await;
    assert_eq!(
        resp.invalid_fields(),
        vec!["planned_start_date", "planned_end_date"]
    );
    // The curve still answers, without forecast columns; so do the metrics.
    let curve = app
        .admin_json(&format!("/api/v1/studies/{study}/enrollment-curve"))
        .await;
    assert_eq!(curve["hyperparameters"], Value::Null);
    let m = app
        .admin_json(&format!("/api/v1/studies/{study}/metrics"))
        .await;
    assert_eq!(m["probability_by_planned_end"], Value::Null);
    // With a prior it forecasts.
    let f = app.admin_json(&path("prior_alpha=1&prior_beta=4")).await;
    assert_eq!(f["status"], "forecast");
    assert_eq!(
        f["probability_by_planned_end"],
        Value::Null,
        "no planned end"
    );
}

#[actix_web::test]
async fn a_fitted_prior_and_the_edge_statuses() {
    let app = spawn_app().await;
    let study = app
        .study_id(json!({"target_enrollment": 40, "planned_start_date": "2026-01-05", "planned_end_date": "2026-12-28"}))
        .await;
    // Three sites with exposure and 9 enrolled: the fit applies.
    for (n, enrolled) in [("A", 5), ("B", 1), ("C", 3)] {
        let site = app
            .site_id(
                &study,
                json!({"site_number": n, "status": "enrolling", "activated_on": "2026-01-05"}),
            )
            .await;
        week(&app, &site, "2026-02-02", enrolled).await;
    }
    // Left out: an active site without date or reports, a closed one without reports.
    app.site_id(&study, json!({"site_number": "X", "status": "activated"}))
        .await;
    app.site_id(&study, json!({"site_number": "Y", "status": "closed"}))
        .await;
    let f = app
        .admin_json(&format!(
            "/api/v1/studies/{study}/enrollment-forecast?as_of=2026-03-04"
        ))
        .await;
    assert_eq!(f["as_of"], "2026-03-02");
    let source = f["hyperparameters"]["source"].as_str().unwrap();
    assert!(source == "fitted" || source == "capped", "{source}");
    assert_eq!(
        f["excluded_sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].clone())
            .collect::<Vec<_>>(),
        vec![
            json!("active_without_date_or_reports"),
            json!("closed_without_reports")
        ]
    );
    // Target reached: probability 1, no completion figures.
    app.admin_patch(
        &format!("/api/v1/studies/{study}"),
        &json!({"target_enrollment": 9}),
    )
    .await
    .ok(200);
    let f = app
        .admin_json(&format!(
            "/api/v1/studies/{study}/enrollment-forecast?as_of=2026-03-04"
        ))
        .await;
    assert_eq!(f["status"], "target_reached");
    assert_eq!(f["probability_by_planned_end"], 1.0);
    assert_eq!(
        f["completion_date"],
        json!({"p10": null, "p50": null, "p90": null})
    );
}

#[actix_web::test]
async fn the_same_readers_as_metrics() {
    let app = spawn_app().await;
    let study = worked_example(&app).await;
    let other = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;
    let analyst = app.token_for(Role::Analyst, &[], &[], None).await;
    let cro = app.token_for(Role::Cro, &[&other], &[], None).await;
    let site_client = app.token_for(Role::Site, &[], &[&site], None).await;
    for path in ["enrollment-forecast?".to_string() + PRIOR, "signals".into()] {
        let url = format!("/api/v1/studies/{study}/{path}");
        app.get(&url, &analyst).await.expect(200, "analyst");
        app.get(&url, &cro)
            .await
            .expect(404, "cro outside its claim");
        app.get(&url, &site_client).await.expect(403, "site client");
        app.get(&url, "not-a-token").await.expect(401, "no token");
    }
}

#[actix_web::test]
async fn sites_plan_their_activation_and_studies_their_confidence() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    assert_eq!(study["forecast_confidence_threshold"], 0.8);
    let id = study["id"].as_str().unwrap().to_string();
    for bad in [0.0, 1.0, -0.5, 1.5] {
        let body = json!({"protocol_number": "P-X", "title": "T", "phase": "phase2", "currency": "EUR",
                          "target_enrollment": 1, "forecast_confidence_threshold": bad});
        let resp = app.admin_post("/api/v1/studies", &body).await;
        assert_eq!(
            resp.invalid_fields(),
            vec!["forecast_confidence_threshold"],
            "{bad}"
        );
        let resp = app
            .admin_patch(
                &format!("/api/v1/studies/{id}"),
                &json!({"forecast_confidence_threshold": bad}),
            )
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec!["forecast_confidence_threshold"],
            "{bad}"
        );
    }
    let patched = app
        .admin_patch_ok(
            &format!("/api/v1/studies/{id}"),
            &json!({"forecast_confidence_threshold": 0.95}),
        )
        .await;
    assert_eq!(patched["forecast_confidence_threshold"], 0.95);

    let site = app
        .create_site(&id, json!({"planned_activation_on": "2026-04-06"}))
        .await;
    assert_eq!(site["planned_activation_on"], "2026-04-06");
    let site_id = site["id"].as_str().unwrap();
    let patched = app
        .admin_patch_ok(
            &format!("/api/v1/sites/{site_id}"),
            &json!({"planned_activation_on": "2026-05-04"}),
        )
        .await;
    assert_eq!(patched["planned_activation_on"], "2026-05-04");
    let resp = app
        .admin_patch(
            &format!("/api/v1/sites/{site_id}"),
            &json!({"planned_activation_on": "3001-01-01"}),
        )
        .await;
    assert_eq!(resp.invalid_fields(), vec!["planned_activation_on"]);
    let batch = app.admin_post("/api/v1/sites/batch", &json!({"items": [{"external_id": "EXT-1", "study_id": id, "site_number": "B-1", "name": "Batch",
                               "country": "DE", "planned_activation_on": "2026-06-01"}]}))
        .await
        .ok(200)
        .clone();
    let batched = batch["items"][0]["id"].as_str().unwrap();
    let read = app.admin_json(&format!("/api/v1/sites/{batched}")).await;
    assert_eq!(read["planned_activation_on"], "2026-06-01");
    // The feed carries it, and the CSV has its column.
    let feed = app.admin_json("/api/v1/changes?entity_type=site").await;
    let last = feed["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["data"]["planned_activation_on"], "2026-06-01");
    let csv = app.admin_csv(&format!("/api/v1/sites?study_id={id}")).await;
    assert!(
        csv.text
            .lines()
            .next()
            .unwrap()
            .contains("planned_activation_on")
    );
    assert!(csv.text.contains("2026-06-01"));
}

/// (kind, severity, subject id) of the study's signals at `as_of`.
async fn signals_at(app: &TestApp, study: &str, as_of: &str) -> Vec<(String, String, String)> {
    let body = app
        .admin_json(&format!("/api/v1/studies/{study}/signals?as_of={as_of}"))
        .await;
    let mut out: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["figures"].is_object() && s["detail"].is_string());
            (
                s["kind"].as_str().unwrap().to_string(),
                s["severity"].as_str().unwrap().to_string(),
                s["subject_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn sig(kind: &str, severity: &str, id: &str) -> (String, String, String) {
    (kind.into(), severity.into(), id.into())
}

/// Each rule with its situation and its near miss, one day (or one cent) apart, on one
/// study evaluated at 2026-06-15.
#[actix_web::test]
async fn every_signal_at_its_threshold_and_one_step_short() {
    const AS_OF: &str = "2026-06-15";
    let app = spawn_app().await;
    // Planned duration 100 days, 50 elapsed at AS_OF: a line may spend 55% (warning above)
    // and 62.5% (critical above) of its planned amount.
    let study = app
        .study_id(
            json!({"target_enrollment": 2, "planned_start_date": "2026-04-26",
                         "planned_end_date": "2026-08-04", "deviation_reporting_days": 7}),
        )
        .await;
    let site = |n: &str, status: &str, date_field: &str, date: &str| {
        let body = json!({"site_number": n, "status": status, date_field: date});
        let app = &app;
        let study = study.clone();
        async move { app.site_id(&study, body).await }
    };
    // site_not_enrolling: 55 days (no), 56 (warning), 111 (warning), 112 (critical), and
    // 112 days with one enrolled (no).
    let s55 = site("N55", "enrolling", "activated_on", "2026-04-21").await;
    let s56 = site("N56", "enrolling", "activated_on", "2026-04-20").await;
    let s111 = site("N111", "activated", "activated_on", "2026-02-24").await;
    let s112 = site("N112", "enrolling", "activated_on", "2026-02-23").await;
    let s112e = site("N112E", "enrolling", "activated_on", "2026-02-23").await;
    week(&app, &s112e, "2026-06-15", 1).await;
    // site_activation_overdue: planned today (no), yesterday (warning), 28 days ago
    // (warning), 29 (critical).
    site("A0", "planned", "planned_activation_on", "2026-06-15").await;
    let a1 = site("A1", "selected", "planned_activation_on", "2026-06-14").await;
    let a28 = site("A28", "planned", "planned_activation_on", "2026-05-18").await;
    let a29 = site("A29", "planned", "planned_activation_on", "2026-05-17").await;
    // milestone_slipping: forecast 14 days late (no) / 15 (warning); baseline today (no) /
    // yesterday (critical); completed (no).
    let milestone = |body: Value| {
        let app = &app;
        let study = study.clone();
        async move {
            app.create_milestone(&study, body).await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    milestone(json!({"baseline_date": "2026-07-01", "forecast_date": "2026-07-15"})).await;
    let m15 =
        milestone(json!({"baseline_date": "2026-07-01", "forecast_date": "2026-07-16"})).await;
    milestone(json!({"baseline_date": "2026-06-15", "status": "in_progress"})).await;
    let m_passed = milestone(json!({"baseline_date": "2026-06-14", "status": "in_progress"})).await;
    milestone(
        json!({"baseline_date": "2026-06-01", "status": "completed", "actual_date": "2026-06-10"}),
    )
    .await;
    // budget_overburn: planned 1000.00 each; spent 550.00 (no), 550.01 (warning), 625.00
    // (warning), 625.01 (critical); an expense after AS_OF does not count.
    let mut lines = Vec::new();
    for (n, spent) in ["550.00", "550.01", "625.00", "625.01"].iter().enumerate() {
        let line = app.admin_post("/api/v1/budget-lines", &json!({"study_id": study, "category": "other", "description": format!("Line {n}"), "planned_amount": "1000.00"}))
            .await
            .ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (amount, on) in [(*spent, "2026-06-01"), ("999.00", "2026-06-16")] {
            app.admin_post(
                "/api/v1/expenses",
                &json!({"budget_line_id": line, "amount": amount, "incurred_on": on}),
            )
            .await
            .ok(201);
        }
        lines.push(line);
    }
    // deviation_reporting_overdue: detected 7 days ago, unreported (no: the window's last
    // day); 8 days ago (critical); not important (no).
    let deviation = |detected: &str, importance: &str| {
        let app = &app;
        let body = json!({"study_id": study, "site_id": s55, "description": "A deviation",
                          "participant_ref": "P-1", "category": "other", "importance": importance,
                          "occurred_on": detected, "detected_on": detected});
        async move {
            app.admin_post("/api/v1/deviations", &body).await.ok(201)["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    deviation("2026-06-08", "important").await;
    let d8 = deviation("2026-06-07", "important").await;
    deviation("2026-05-01", "not_important").await;

    let mut expected = vec![
        sig("site_not_enrolling", "warning", &s56),
        sig("site_not_enrolling", "warning", &s111),
        sig("site_not_enrolling", "critical", &s112),
        sig("site_activation_overdue", "warning", &a1),
        sig("site_activation_overdue", "warning", &a28),
        sig("site_activation_overdue", "critical", &a29),
        sig("milestone_slipping", "warning", &m15),
        sig("milestone_slipping", "critical", &m_passed),
        sig("budget_overburn", "warning", &lines[1]),
        sig("budget_overburn", "warning", &lines[2]),
        sig("budget_overburn", "critical", &lines[3]),
        sig("deviation_reporting_overdue", "critical", &d8),
    ];
    // completion_at_risk: nobody enrolled before t0 of a target of 2, with the planning
    // prior. Whatever the probability p is, a threshold of exactly p is quiet and one a
    // hair above it warns.
    let forecast = app
        .admin_json(&format!(
            "/api/v1/studies/{study}/enrollment-forecast?as_of={AS_OF}"
        ))
        .await;
    let p = forecast["probability_by_planned_end"].as_f64().unwrap();
    assert!(p > 0.0 && p < 0.99, "{forecast}");
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study}"),
        &json!({"forecast_confidence_threshold": p}),
    )
    .await;
    expected.sort();
    assert_eq!(signals_at(&app, &study, AS_OF).await, expected);
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study}"),
        &json!({"forecast_confidence_threshold": p + 1e-6}),
    )
    .await;
    let mut with_risk = expected.clone();
    with_risk.push(sig("completion_at_risk", "warning", &study));
    with_risk.sort();
    assert_eq!(signals_at(&app, &study, AS_OF).await, with_risk);
    // Below half the threshold: critical. Exactly half: still a warning.
    let half = (2.0 * p).min(0.999999);
    if 2.0 * p < 0.999999 {
        app.admin_patch_ok(
            &format!("/api/v1/studies/{study}"),
            &json!({"forecast_confidence_threshold": half}),
        )
        .await;
        assert!(signals_at(&app, &study, AS_OF).await.contains(&sig(
            "completion_at_risk",
            "warning",
            &study
        )));
        app.admin_patch_ok(
            &format!("/api/v1/studies/{study}"),
            &json!({"forecast_confidence_threshold": half + 1e-6}),
        )
        .await;
        assert!(signals_at(&app, &study, AS_OF).await.contains(&sig(
            "completion_at_risk",
            "critical",
            &study
        )));
    }

    // The CSV: one row per signal, figures as JSON text.
    let csv = app
        .admin_csv(&format!("/api/v1/studies/{study}/signals?as_of={AS_OF}"))
        .await;
    csv.expect(200, "signals CSV");
    assert_eq!(
        csv.text.lines().next().unwrap(),
        "kind,severity,subject_type,subject_id,detail,figures"
    );
    assert_eq!(csv.text.lines().count(), 1 + expected.len() + 1);
    assert!(
        csv.text.contains("\"\"critical_above\"\":\"\"625.00\"\""),
        "{}",
        csv.text
    );
}
