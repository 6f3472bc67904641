//! Dashboards and BI: a study built with hand-computed expected figures (dates relative to
//! today, so the expectations hold on any day), the figures of a study without data, the
//! enrollment curve, and who sees what (the portfolio shows a `cro` only its studies; site
//! and vendor clients get 403 on studies they see, 404 on the others).

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, column, spawn_app};

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

fn plus(day: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        day + Days::new(days as u64)
    } else {
        day - Days::new(days.unsigned_abs())
    }
}

fn s(day: NaiveDate) -> String {
    day.to_string()
}

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    app.admin_post(path, &body).await.ok(201).clone()
}

async fn week(app: &TestApp, site: &str, monday: NaiveDate, counts: (i64, i64, i64)) {
    let (enrolled, screened, screen_failed) = counts;
    let counts = json!({"screened": screened, "screen_failed": screen_failed,
                        "enrolled": enrolled, "discontinued": 0, "completed": 0});
    let monday = monday.to_string();
    app.put_week(&app.admin_token, site, &monday, &counts)
        .await
        .ok(201);
}

struct World {
    study: String,
    sites: [String; 3],
    today: NaiveDate,
    monday: NaiveDate,
}

/// The study whose every figure is computed by hand in `every_figure_matches_the_hand_computation`.
async fn build(app: &TestApp) -> World {
    let today = Utc::now().date_naive();
    let monday = monday_of(today);
    let study = app.created(
        "/api/v1/studies",
        &json!({"protocol_number": "MET-1", "title": "Metrics", "phase": "phase3", "currency": "EUR",
               "target_enrollment": 20, "enrollment_buffer_pct": 10,
               "planned_start_date": s(plus(today, -100)), "planned_end_date": s(plus(today, 100))}),
    )
    .await;
    // Activation lags 10 and 20 days; the third site has none.
    let a = app
        .site_id(
            &study,
            json!({"site_number": "A", "status": "enrolling",
            "irb_approved_on": "2026-01-01", "activated_on": "2026-01-11"}),
        )
        .await;
    let b = app
        .site_id(
            &study,
            json!({"site_number": "B", "status": "activated",
            "irb_approved_on": "2026-02-01", "activated_on": "2026-02-21"}),
        )
        .await;
    let c = app
        .site_id(&study, json!({"site_number": "C", "status": "planned"}))
        .await;

    // Enrollment (enrolled, screened, screen_failed). The velocity window is the four
    // weeks from monday-28 to monday-7; monday-35 is before it, this week is not complete.
    week(app, &a, plus(monday, -35), (2, 4, 1)).await;
    week(app, &a, plus(monday, -28), (3, 5, 2)).await;
    week(app, &b, plus(monday, -7), (1, 2, 0)).await;
    week(app, &a, monday, (2, 3, 1)).await;

    // Milestones: on time (-2), late (+5), at risk (+15 by forecast), overdue (no slippage:
    // baseline only), cancelled (left out of slippage, never overdue).
    for body in [
        json!({"status": "completed", "baseline_date": s(plus(today, -30)), "actual_date": s(plus(today, -32))}),
        json!({"status": "completed", "baseline_date": s(plus(today, -20)), "actual_date": s(plus(today, -15))}),
        json!({"status": "at_risk", "baseline_date": s(plus(today, -5)), "forecast_date": s(plus(today, 10))}),
        json!({"status": "planned", "baseline_date": s(plus(today, -3))}),
        json!({"status": "cancelled", "baseline_date": s(plus(today, -50)), "forecast_date": s(plus(today, -40))}),
    ] {
        app.create_milestone(&study, body).await;
    }

    // Budget: planned 1500.50, committed 600.00.
    let line = created(
        app,
        "/api/v1/budget-lines",
        json!({"study_id": study, "category": "cro_services", "description": "Monitoring",
               "planned_amount": "1000.00", "committed_amount": "600.00"}),
    )
    .await["id"]
        .clone();
    created(
        app,
        "/api/v1/budget-lines",
        json!({"study_id": study, "category": "lab", "description": "Lab", "planned_amount": "500.50"}),
    )
    .await;
    // Expenses: two in the burn window (the three full months before this one), one this
    // month, one before the window. Actual 750.25, burn window 300.25.
    let this_month = today.with_day(1).unwrap();
    for (amount, day) in [
        ("100.00", this_month - Months::new(3)),
        ("200.25", plus(this_month, -1)),
        ("50.00", today),
        ("400.00", this_month - Months::new(4)),
    ] {
        created(
            app,
            "/api/v1/expenses",
            json!({"budget_line_id": line, "amount": amount, "incurred_on": s(day)}),
        )
        .await;
    }

    // Risks (likelihood, impact, detectability -> score): 6 low with a passed review, 24
    // medium, 50 high (escalates), 4 closed (not open), 12 accepted (open, low).
    for body in [
        json!({"likelihood": 1, "impact": 2, "detectability": 3, "review_due_on": s(plus(today, -1))}),
        json!({"likelihood": 3, "impact": 4, "detectability": 2}),
        json!({"likelihood": 5, "impact": 5, "detectability": 2}),
        json!({"likelihood": 2, "impact": 2, "detectability": 1, "status": "closed", "review_due_on": s(plus(today, -10))}),
        json!({"likelihood": 3, "impact": 4, "detectability": 1, "status": "accepted"}),
    ] {
        let mut risk = json!({"study_id": study, "title": "A risk", "category": "operational"});
        json_patch::merge(&mut risk, &body);
        created(app, "/api/v1/risks", risk).await;
    }

    // Deviations: one overdue important one, a closed minor one, an important one still
    // inside its 7-day window, an invalidated one (left out), one reported in time.
    for (site, body) in [
        (
            &a,
            json!({"importance": "important", "category": "informed_consent",
            "occurred_on": s(plus(today, -21)), "detected_on": s(plus(today, -20))}),
        ),
        (
            &a,
            json!({"importance": "not_important", "category": "eligibility", "status": "closed",
            "occurred_on": s(plus(today, -21)), "detected_on": s(plus(today, -20))}),
        ),
        (
            &b,
            json!({"importance": "important", "category": "informed_consent", "status": "under_review",
            "occurred_on": s(plus(today, -5)), "detected_on": s(plus(today, -5))}),
        ),
        (
            &b,
            json!({"importance": "important", "category": "privacy", "status": "invalidated",
            "occurred_on": s(plus(today, -30)), "detected_on": s(plus(today, -30))}),
        ),
        (
            &a,
            json!({"importance": "important", "category": "other", "status": "closed",
            "occurred_on": s(plus(today, -20)), "detected_on": s(plus(today, -20)),
            "reported_on": s(plus(today, -18))}),
        ),
    ] {
        let mut deviation = json!({"study_id": study, "site_id": site,
            "description": "A deviation", "participant_ref": "P-1"});
        json_patch::merge(&mut deviation, &body);
        created(app, "/api/v1/deviations", deviation).await;
    }
    World {
        study,
        sites: [a, b, c],
        today,
        monday,
    }
}

#[actix_web::test]
async fn every_figure_matches_the_hand_computation() {
    let app = spawn_app().await;
    let w = build(&app).await;
    let m = app
        .admin_json(&format!("/api/v1/studies/{}/metrics", w.study))
        .await;
    assert_eq!(m["study_id"], w.study);
    assert_eq!(m["today"], s(w.today), "the test ran across midnight UTC");
    assert!(m["as_of"].as_str().unwrap().starts_with(&s(w.today)));

    let sunday = |monday: NaiveDate| s(plus(monday, 6));
    assert_eq!(
        m["enrollment"],
        json!({
            "target": 20, "buffer_pct": 10, "buffered_target": 22,
            "enrolled": 8, "screened": 14, "screen_failed": 4, "discontinued": 0, "completed": 0,
            "screen_fail_rate": 0.2857, "percent_of_target": 40.0, "remaining": 12,
            // 3 + 1 enrolled in the window, / 4.
            "velocity_4w": 1.0,
            "velocity_window_start": s(plus(w.monday, -28)),
            "velocity_window_end": sunday(plus(w.monday, -7)),
            // 12 to go at 1 a week: the 12th week counting this one; 14 for the buffer.
            "projected_completion_date": sunday(plus(w.monday, 77)),
            "projected_completion_date_with_buffer": sunday(plus(w.monday, 91)),
            "planned_end_date": s(plus(w.today, 100)),
            "on_track": true,
            "plan_basis": "linear",
            // Half of the planned span has passed: half of 20.
            "planned_to_date": 10.0
        })
    );
    assert_eq!(
        m["sites"],
        json!({
            "total": 3,
            "by_status": {"planned": 1, "selected": 0, "activated": 1, "enrolling": 1,
                          "closed_to_enrollment": 0, "closed": 0, "terminated": 0},
            "mean_activation_lag_days": 15.0,
            "sites_with_activation_lag": 2
        })
    );
    assert_eq!(
        m["milestones"],
        json!({
            "total": 5, "completed": 2, "overdue": 1, "at_risk": 1,
            "on_time_rate": 0.5, "completed_with_dates": 2,
            // (-2 + 5 + 15) / 3
            "mean_slippage_days": 6.0
        })
    );
    let this_month = w.today.with_day(1).unwrap();
    assert_eq!(
        m["budget"],
        json!({
            "currency": "EUR",
            "planned": "1500.50", "committed": "600.00", "actual": "750.25", "remaining": "750.25",
            // 300.25 / 3
            "monthly_burn": "100.08",
            "burn_window_start": s(this_month - Months::new(3)),
            "burn_window_end": s(this_month),
            // 750.25 + 100.08 x 100 / 30.436875 = 1079.0617
            "estimate_at_completion": "1079.06",
            "variance_at_completion": "421.44",
            "pct_spent": 50.0,
            "pct_time_elapsed": 50.0
        })
    );
    let mut heat_map = vec![vec![0; 5]; 5];
    heat_map[0][1] = 1;
    heat_map[2][3] = 2;
    heat_map[4][4] = 1;
    assert_eq!(
        m["risks"],
        json!({
            "total": 5, "open": 4,
            "open_by_band": {"low": 2, "medium": 1, "high": 1},
            "heat_map": heat_map,
            "escalated": 1, "reviews_overdue": 1
        })
    );
    let [a, b, c] = &w.sites;
    assert_eq!(
        m["deviations"],
        json!({
            "total": 4, "important": 3, "open": 2, "reporting_overdue": 1, "invalidated": 1,
            // 4 per 8 enrolled
            "per_100_enrolled": 50.0,
            "by_category": {"informed_consent": 2, "eligibility": 1, "study_procedure": 0,
                "investigational_product": 0, "safety_reporting": 0, "visit_schedule": 0,
                "data_management": 0, "privacy": 0, "other": 1},
            "by_site": [
                {"site_id": a, "site_number": "A", "deviations": 3, "important": 2, "enrolled": 7, "per_100_enrolled": 42.86},
                {"site_id": b, "site_number": "B", "deviations": 1, "important": 1, "enrolled": 1, "per_100_enrolled": 100.0},
                {"site_id": c, "site_number": "C", "deviations": 0, "important": 0, "enrolled": 0, "per_100_enrolled": null}
            ]
        })
    );

    // The portfolio row says the same.
    let portfolio = app.admin_json("/api/v1/metrics/portfolio").await;
    let rows = portfolio["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    for (field, expected) in [
        ("study_id", json!(w.study)),
        ("protocol_number", json!("MET-1")),
        ("enrolled", json!(8)),
        ("percent_of_target", json!(40.0)),
        ("velocity_4w", json!(1.0)),
        (
            "projected_completion_date_with_buffer",
            json!(sunday(plus(w.monday, 91))),
        ),
        ("on_track", json!(true)),
        ("sites_total", json!(3)),
        ("sites_active", json!(2)),
        ("milestones_overdue", json!(1)),
        ("milestones_at_risk", json!(1)),
        ("currency", json!("EUR")),
        ("budget_planned", json!("1500.50")),
        ("budget_actual", json!("750.25")),
        ("estimate_at_completion", json!("1079.06")),
        ("pct_spent", json!(50.0)),
        ("pct_time_elapsed", json!(50.0)),
        ("risks_open", json!(4)),
        ("risks_open_high", json!(1)),
        ("risks_escalated", json!(1)),
        ("deviations_open", json!(2)),
        ("deviations_important", json!(3)),
        ("deviations_reporting_overdue", json!(1)),
    ] {
        assert_eq!(row[field], expected, "{field}");
    }
    // Flat: scalars only, for CSV; but for the signal counts (issue 11 asks for the
    // `signals {warning, critical, by_kind}` object in each row; CSV has it as JSON text).
    for (field, value) in row.as_object().unwrap() {
        if field == "signals" {
            assert!(value["by_kind"].is_object(), "{value}");
            continue;
        }
        assert!(!value.is_object() && !value.is_array(), "{field}");
    }
}

#[actix_web::test]
async fn figures_follow_the_last_write() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({"target_enrollment": 10})).await;
    let site = app.create_site(id, json!({})).await;
    let path = format!("/api/v1/studies/{id}/metrics");
    let before = app.admin_json(&path).await;
    assert_eq!(before["enrollment"]["enrolled"], 0);
    week(
        &app,
        site["id"].as_str().unwrap(),
        monday_of(Utc::now().date_naive()),
        (4, 5, 1),
    )
    .await;
    let after = app.admin_json(&path).await;
    assert_eq!(after["enrollment"]["enrolled"], 4);
    assert_eq!(after["enrollment"]["percent_of_target"], 40.0);
}

#[actix_web::test]
async fn a_study_without_data_has_nulls_not_divisions_by_zero() {
    let app = spawn_app().await;
    let id = &app.study_id(json!({"target_enrollment": 0})).await;
    let m = app
        .admin_json(&format!("/api/v1/studies/{id}/metrics"))
        .await;
    let e = &m["enrollment"];
    for field in [
        "screen_fail_rate",
        "percent_of_target",
        "velocity_4w",
        "projected_completion_date",
        "projected_completion_date_with_buffer",
        "on_track",
        "plan_basis",
        "planned_to_date",
    ] {
        assert!(e[field].is_null(), "enrollment.{field}: {}", e[field]);
    }
    assert_eq!(e["enrolled"], 0);
    assert_eq!(e["remaining"], 0);
    assert_eq!(m["sites"]["total"], 0);
    assert!(m["sites"]["mean_activation_lag_days"].is_null());
    assert!(m["milestones"]["on_time_rate"].is_null());
    assert!(m["milestones"]["mean_slippage_days"].is_null());
    let budget = &m["budget"];
    assert_eq!(budget["planned"], "0.00");
    assert_eq!(budget["actual"], "0.00");
    assert_eq!(budget["remaining"], "0.00");
    for field in [
        "monthly_burn",
        "estimate_at_completion",
        "variance_at_completion",
        "pct_spent",
        "pct_time_elapsed",
    ] {
        assert!(budget[field].is_null(), "budget.{field}");
    }
    assert_eq!(m["risks"]["heat_map"], json!(vec![vec![0; 5]; 5]));
    assert_eq!(m["deviations"]["total"], 0);
    assert!(m["deviations"]["per_100_enrolled"].is_null());
    assert_eq!(m["deviations"]["by_site"], json!([]));
    // No report and no planned start: no curve.
    let curve = app
        .admin_get(&format!("/api/v1/studies/{id}/enrollment-curve"))
        .await;
    assert_eq!(curve.ok(200)["data"], json!([]));
}

#[actix_web::test]
async fn a_single_reported_week_and_a_per_site_plan() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let monday = monday_of(today);
    let id = &app
        .study_id(json!({"target_enrollment": 100,
            "planned_start_date": s(plus(monday, -14)), "planned_end_date": s(plus(monday, 56))}))
        .await;
    // A per-site plan: 30 from the planned start (no activation date), 40 from activation.
    let a = app.create_site(id, json!({"target_enrollment": 30})).await;
    app.create_site(
        id,
        json!({"target_enrollment": 40, "irb_approved_on": s(plus(monday, -14)),
               "activated_on": s(plus(monday, -7))}),
    )
    .await;
    // One complete week with 6 enrolled: velocity 6 / 4.
    week(&app, a["id"].as_str().unwrap(), plus(monday, -7), (6, 8, 2)).await;
    let m = app
        .admin_json(&format!("/api/v1/studies/{id}/metrics"))
        .await;
    assert_eq!(m["enrollment"]["velocity_4w"], 1.5);
    assert_eq!(m["enrollment"]["plan_basis"], "per_site");
    // 94 to go at 1.5 a week: ceil(94 x 4 / 6) = 63 weeks, far past the planned end.
    assert_eq!(
        m["enrollment"]["projected_completion_date"],
        s(plus(monday, 62 * 7 + 6))
    );
    assert_eq!(m["enrollment"]["on_track"], false);

    let curve = app
        .admin_json(&format!("/api/v1/studies/{id}/enrollment-curve"))
        .await;
    let rows = curve["data"].as_array().unwrap();
    // From the planned start's week to the planned end's week: 11 weeks.
    assert_eq!(rows.len(), 11);
    let planned = |sunday: i64| {
        // Site 1: 30 over 70 days from monday-14; site 2: 40 over 63 days from monday-7.
        let one = 30.0 * ((sunday + 14).clamp(0, 70) as f64) / 70.0;
        let two = 40.0 * ((sunday + 7).clamp(0, 63) as f64) / 63.0;
        ((one + two) * 100.0).round() / 100.0
    };
    let expected = [
        (-14, Some(0), Some(0)),
        (-7, Some(6), Some(6)),
        (0, Some(0), Some(6)),
        (7, None, None),
    ];
    for (n, (offset, enrolled, cumulative)) in expected.into_iter().enumerate() {
        let row = &rows[n];
        assert_eq!(row["week_start"], s(plus(monday, offset)));
        assert_eq!(row["week_end"], s(plus(monday, offset + 6)));
        assert_eq!(row["enrolled"], json!(enrolled), "{row}");
        assert_eq!(row["cumulative_enrolled"], json!(cumulative), "{row}");
        assert_eq!(
            row["planned_cumulative"],
            json!(planned(offset + 6)),
            "{row}"
        );
        for (field, value) in row.as_object().unwrap() {
            assert!(!value.is_object() && !value.is_array(), "{field}");
        }
    }
    assert_eq!(rows[1]["screened"], 8);
    assert_eq!(rows[1]["screen_failed"], 2);
    assert_eq!(rows[10]["week_start"], s(plus(monday, 56)));
    assert_eq!(rows[10]["planned_cumulative"], 70.0);
}

#[actix_web::test]
async fn who_reads_metrics() {
    let app = spawn_app().await;
    let a = app.create_study(json!({"protocol_number": "A"})).await;
    let b = app.create_study(json!({"protocol_number": "B"})).await;
    let deleted = app.create_study(json!({"protocol_number": "GONE"})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    app.admin_delete(&format!(
        "/api/v1/studies/{}",
        deleted["id"].as_str().unwrap()
    ))
    .await;
    let site_a = app.create_site(a, json!({})).await;
    let site_a = site_a["id"].as_str().unwrap();
    let vendor = app.create_vendor(json!({})).await;
    let vendor = vendor["id"].as_str().unwrap();
    app.create_milestone(a, json!({"vendor_id": vendor})).await;

    let portfolio_ids = |resp: &Value| column(resp, "study_id");
    let everyone = vec![a.to_string(), b.to_string()];
    for role in [Role::Admin, Role::Sponsor, Role::Auditor, Role::Analyst] {
        let token = app.token_for(role, &[], &[], None).await;
        let resp = app.get("/api/v1/metrics/portfolio", &token).await;
        assert_eq!(portfolio_ids(resp.ok(200)), everyone, "{role}");
        for study in [a, b] {
            app.get(&format!("/api/v1/studies/{study}/metrics"), &token)
                .await
                .ok(200);
            app.get(&format!("/api/v1/studies/{study}/enrollment-curve"), &token)
                .await
                .ok(200);
        }
    }

    // A cro: its studies only; another study does not exist for it.
    let cro = app.token_for(Role::Cro, &[a], &[], None).await;
    let resp = app.get("/api/v1/metrics/portfolio", &cro).await;
    assert_eq!(portfolio_ids(resp.ok(200)), vec![a.to_string()]);
    app.get(&format!("/api/v1/studies/{a}/metrics"), &cro)
        .await
        .ok(200);
    for path in ["metrics", "enrollment-curve"] {
        app.get(&format!("/api/v1/studies/{b}/{path}"), &cro)
            .await
            .problem(404);
    }

    // Site and vendor clients see the study (summary) but not its study-wide figures: 403;
    // a study they do not see stays a 404.
    let site = app.token_for(Role::Site, &[], &[site_a], None).await;
    let vendor = app.token_for(Role::Vendor, &[], &[], Some(vendor)).await;
    for token in [&site, &vendor] {
        app.get(&format!("/api/v1/studies/{a}"), token)
            .await
            .ok(200);
        for path in ["metrics", "enrollment-curve"] {
            app.get(&format!("/api/v1/studies/{a}/{path}"), token)
                .await
                .problem(403);
            app.get(&format!("/api/v1/studies/{b}/{path}"), token)
                .await
                .problem(404);
        }
        app.get("/api/v1/metrics/portfolio", token)
            .await
            .problem(403);
    }

    // Unknown, malformed and deleted studies are 404; no token is 401.
    let gone = deleted["id"].as_str().unwrap();
    for id in [
        uuid::Uuid::now_v7().to_string().as_str(),
        "not-a-uuid",
        gone,
    ] {
        app.admin_get(&format!("/api/v1/studies/{id}/metrics"))
            .await
            .problem(404);
    }
    let anonymous = app.send(app.bare("GET", "/api/v1/metrics/portfolio")).await;
    anonymous.problem(401);
}
