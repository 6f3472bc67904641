//! Weekly enrollment: the idempotent upsert, its rules, its audit trail, the list, and who
//! may report for which site.

use chrono::{Datelike, Duration, Utc};
use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, spawn_app};

/// The Monday `weeks_ago` weeks before this week's.
fn monday(weeks_ago: i64) -> String {
    let today = Utc::now().date_naive();
    let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (this_monday - Duration::weeks(weeks_ago)).to_string()
}

fn counts(screened: i32, failed: i32, enrolled: i32) -> Value {
    json!({"screened": screened, "screen_failed": failed, "enrolled": enrolled, "discontinued": 0, "completed": 0})
}

async fn put(
    app: &TestApp,
    token: &str,
    site: &str,
    week: &str,
    body: &Value,
) -> crate::helpers::Resp {
    app.send(
        app.http
            .put(app.url(&format!("/api/v1/sites/{site}/enrollment/{week}")))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

#[actix_web::test]
async fn a_week_is_created_then_updated_idempotently_and_audited() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap();
    let week = monday(1);

    let first = put(&app, &app.admin_token, site_id, &week, &counts(10, 2, 7)).await;
    let report = first.ok(201).clone();
    assert_eq!(report["week_start"], week);
    assert_eq!(report["study_id"], study["id"]);
    assert_eq!(report["site_id"], site_id);
    assert_eq!(report["version"], 1);
    assert_eq!(first.header("etag").as_deref(), Some("\"1\""));

    // Same counts again: same report, same version, no new audit event.
    let again = put(&app, &app.admin_token, site_id, &week, &counts(10, 2, 7)).await;
    assert_eq!(again.ok(200)["id"], report["id"]);
    assert_eq!(again.body["version"], 1);

    let changed = put(&app, &app.admin_token, site_id, &week, &counts(12, 2, 8)).await;
    assert_eq!(changed.ok(200)["version"], 2);

    let events = app.audit_events(report["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["action"], "create");
    assert_eq!(events[0]["entity_type"], "enrollment_report");
    assert_eq!(events[1]["action"], "update");
    assert_eq!(
        events[1]["changes"],
        json!({"screened": {"old": 10, "new": 12}, "enrolled": {"old": 7, "new": 8}})
    );

    let list = app
        .get(
            &format!("/api/v1/enrollment?site_id={site_id}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(list.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn bad_weeks_and_counts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap();
    let before = app.fingerprint().await;
    let tuesday = (chrono::NaiveDate::parse_from_str(&monday(1), "%Y-%m-%d").unwrap()
        + Duration::days(1))
    .to_string();
    for (week, field) in [
        (tuesday.as_str(), "week_start"),
        (&monday(-1), "week_start"),
        ("2026-02-30", "week_start"),
        ("soon", "week_start"),
    ] {
        let resp = put(&app, &app.admin_token, site_id, week, &counts(1, 0, 1)).await;
        assert_eq!(resp.invalid_fields(), vec![field.to_string()], "{week}");
    }
    let week = monday(2);
    let cases = [
        (counts(1, 2, 0), "screen_failed"),
        (counts(-1, 0, 0), "screened"),
        (counts(1, 0, -3), "enrolled"),
        (
            json!({"screened": 1, "screen_failed": 0, "enrolled": 0, "discontinued": 0}),
            "completed",
        ),
        (
            json!({"screened": 1, "screen_failed": 0, "enrolled": 0, "discontinued": 0, "completed": 0, "week": 1}),
            "week",
        ),
    ];
    for (body, field) in cases {
        let resp = put(&app, &app.admin_token, site_id, &week, &body).await;
        let mut fields = resp.invalid_fields();
        fields.dedup();
        assert_eq!(fields, vec![field.to_string()], "{body}");
    }
    // A deleted or unknown site has no weeks.
    let ghost = uuid::Uuid::now_v7();
    put(
        &app,
        &app.admin_token,
        &ghost.to_string(),
        &week,
        &counts(1, 0, 1),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before);
    // The current week may be reported while it runs.
    put(
        &app,
        &app.admin_token,
        site_id,
        &monday(0),
        &counts(1, 0, 1),
    )
    .await
    .ok(201);
}

#[actix_web::test]
async fn if_match_guards_the_upsert() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let url = app.url(&format!(
        "/api/v1/sites/{}/enrollment/{}",
        site["id"].as_str().unwrap(),
        monday(3)
    ));
    let with = |tag: &str, body: Value| {
        app.http
            .put(&url)
            .bearer_auth(&app.admin_token)
            .header("if-match", tag)
            .json(&body)
    };
    app.send(with("*", counts(1, 0, 1))).await.problem(412);
    app.send(
        app.http
            .put(&url)
            .bearer_auth(&app.admin_token)
            .json(&counts(1, 0, 1)),
    )
    .await
    .ok(201);
    app.send(with("\"2\"", counts(2, 0, 1))).await.problem(412);
    app.send(with("\"1\"", counts(2, 0, 1))).await.ok(200);
}

#[actix_web::test]
async fn concurrent_first_reports_of_a_week_make_one_row() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap().to_string();
    let week = monday(4);
    let requests = (0..6).map(|i| {
        let (app, site_id, week) = (&app, site_id.clone(), week.clone());
        async move {
            put(
                app,
                &app.admin_token,
                &site_id,
                &week,
                &counts(10 + i, 0, 1),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    let list = app
        .get(
            &format!("/api/v1/enrollment?site_id={site_id}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(list.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn who_reports_and_reads_which_weeks() {
    let app = spawn_app().await;
    let a = app.create_study(json!({})).await;
    let b = app.create_study(json!({})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let a1 = app.create_site(a_id, json!({})).await;
    let b1 = app.create_site(b_id, json!({})).await;
    let (a1, b1) = (a1["id"].as_str().unwrap(), b1["id"].as_str().unwrap());
    let week = monday(1);
    put(&app, &app.admin_token, a1, &week, &counts(5, 1, 3))
        .await
        .ok(201);
    put(&app, &app.admin_token, b1, &week, &counts(6, 1, 4))
        .await
        .ok(201);

    let cro = app.token_for(Role::Cro, &[a_id], &[], None).await;
    let site = app.token_for(Role::Site, &[], &[a1], None).await;
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    let analyst = app.token_for(Role::Analyst, &[], &[], None).await;
    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;

    // (token, site, expected PUT status)
    let writes = [
        (&sponsor, b1, 200),
        (&cro, a1, 200),
        (&cro, b1, 404),
        (&site, a1, 200),
        (&site, b1, 404),
        (&auditor, a1, 403),
        (&analyst, a1, 403),
    ];
    for (token, site_id, status) in writes {
        let before = app.fingerprint().await;
        let resp = put(&app, token, site_id, &week, &counts(9, 1, 7)).await;
        assert_eq!(resp.status, status, "{site_id}: {}", resp.text);
        if status >= 400 {
            assert_eq!(
                app.fingerprint().await,
                before,
                "a refused write changed something"
            );
        }
    }
    // What each one lists.
    let listed = |resp: &crate::helpers::Resp| {
        resp.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["site_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&app.get("/api/v1/enrollment", &cro).await),
        vec![a1.to_string()]
    );
    assert_eq!(
        listed(&app.get("/api/v1/enrollment", &site).await),
        vec![a1.to_string()]
    );
    assert_eq!(
        listed(&app.get("/api/v1/enrollment", &auditor).await).len(),
        2
    );
    assert_eq!(
        listed(&app.get("/api/v1/enrollment", &analyst).await).len(),
        2
    );
    assert_eq!(
        listed(
            &app.get(&format!("/api/v1/enrollment?study_id={b_id}"), &cro)
                .await
        )
        .len(),
        0
    );
}

#[actix_web::test]
async fn the_list_filters_by_study_site_and_weeks() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap();
    for weeks_ago in 1..=4 {
        put(
            &app,
            &app.admin_token,
            site_id,
            &monday(weeks_ago),
            &counts(3, 0, 2),
        )
        .await
        .ok(201);
    }
    let between = app
        .get(
            &format!("/api/v1/enrollment?from={}&to={}", monday(3), monday(2)),
            &app.admin_token,
        )
        .await;
    let weeks: Vec<&str> = between.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["week_start"].as_str().unwrap())
        .collect();
    assert_eq!(weeks.len(), 2);
    assert!(weeks.contains(&monday(3).as_str()) && weeks.contains(&monday(2).as_str()));
    let by_study = app
        .get(
            &format!(
                "/api/v1/enrollment?study_id={}&limit=3",
                study["id"].as_str().unwrap()
            ),
            &app.admin_token,
        )
        .await;
    assert_eq!(by_study.ok(200)["data"].as_array().unwrap().len(), 3);
    assert!(by_study.body["next_cursor"].is_string());
    app.get(
        &format!("/api/v1/enrollment?from={}&to={}", monday(1), monday(3)),
        &app.admin_token,
    )
    .await
    .problem(400);
    app.get("/api/v1/enrollment?from=yesterday", &app.admin_token)
        .await
        .problem(400);
}

#[actix_web::test]
async fn a_site_with_enrollment_weeks_cannot_be_deleted() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap();
    put(
        &app,
        &app.admin_token,
        site_id,
        &monday(1),
        &counts(1, 0, 1),
    )
    .await
    .ok(201);
    let before = app.fingerprint().await;
    let resp = app
        .delete(&format!("/api/v1/sites/{site_id}"), &app.admin_token)
        .await;
    assert!(
        resp.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("enrollment")
    );
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn a_new_week_answers_its_location() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let site = app
        .create_site(study["id"].as_str().unwrap(), json!({}))
        .await;
    let site_id = site["id"].as_str().unwrap();
    let week = monday(1);
    let created = put(&app, &app.admin_token, site_id, &week, &counts(1, 0, 1)).await;
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/sites/{site_id}/enrollment/{week}"))
    );
}
