//! Weekly enrollment: the idempotent upsert, its rules, its audit trail, the list, and who
//! may report for which site.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, Utc};
use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, column, ids, spawn_app};
use crate::roles::World;

const LIST: &str = "/api/v1/enrollment";

/// The Monday `weeks_ago` weeks before this week's.
fn monday(weeks_ago: i64) -> String {
    let today = Utc::now().date_naive();
    let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (this_monday - Duration::weeks(weeks_ago)).to_string()
}

fn counts(screened: i32, failed: i32, enrolled: i32) -> Value {
    json!({"screened": screened, "screen_failed": failed, "enrolled": enrolled, "discontinued": 0, "completed": 0})
}

/// `put` as the admin.
async fn admin_put(app: &TestApp, site: &str, week: &str, body: &Value) -> Resp {
    put(app, &app.admin_token, site, week, body).await
}

async fn put(app: &TestApp, token: &str, site: &str, week: &str, body: &Value) -> Resp {
    app.send(
        app.request(
            "PUT",
            &format!("/api/v1/sites/{site}/enrollment/{week}"),
            token,
        )
        .json(body),
    )
    .await
}

#[actix_web::test]
async fn a_week_is_created_then_updated_idempotently_and_audited() {
    let app = spawn_app().await;
    let (study_id, site_id) = app.study_and_site().await;
    let week = monday(1);

    let first = admin_put(&app, &site_id, &week, &counts(10, 2, 7)).await;
    let report = first.ok(201).clone();
    assert_eq!(report["week_start"], week);
    assert_eq!(report["study_id"], study_id.as_str());
    assert_eq!(report["site_id"], site_id);
    assert_eq!(report["version"], 1);
    assert_eq!(first.header("etag").as_deref(), Some("\"1\""));

    // Same counts again: same report, same version, no new audit event.
    let again = admin_put(&app, &site_id, &week, &counts(10, 2, 7)).await;
    assert_eq!(again.ok(200)["id"], report["id"]);
    assert_eq!(again.body["version"], 1);

    let changed = admin_put(&app, &site_id, &week, &counts(12, 2, 8)).await;
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

    let weeks = app.admin_list(&format!("{LIST}?site_id={site_id}")).await;
    assert_eq!(weeks.len(), 1);
}

#[actix_web::test]
async fn bad_weeks_and_counts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (_, site_id) = app.study_and_site().await;
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
        let resp = admin_put(&app, &site_id, week, &counts(1, 0, 1)).await;
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
        let resp = admin_put(&app, &site_id, &week, &body).await;
        let mut fields = resp.invalid_fields();
        fields.dedup();
        assert_eq!(fields, vec![field.to_string()], "{body}");
    }
    // A deleted or unknown site has no weeks.
    let ghost = uuid::Uuid::now_v7();
    admin_put(&app, &ghost.to_string(), &week, &counts(1, 0, 1))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);
    // The current week may be reported while it runs.
    admin_put(&app, &site_id, &monday(0), &counts(1, 0, 1))
        .await
        .ok(201);
}

#[actix_web::test]
async fn if_match_guards_the_upsert() {
    let app = spawn_app().await;
    let (_, site_id) = app.study_and_site().await;
    let url = app.url(&format!("/api/v1/sites/{site_id}/enrollment/{}", monday(3)));
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
    let (_, site_id) = app.study_and_site().await;
    let week = monday(4);
    let requests = (0..6).map(|i| {
        let (app, site_id, week) = (&app, site_id.clone(), week.clone());
        async move {
            admin_put(app, &site_id, &week, &counts(10 + i, 0, 1))
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
    let weeks = app.admin_list(&format!("{LIST}?site_id={site_id}")).await;
    assert_eq!(weeks.len(), 1);
}

/// Who reports and reads which weeks is in the role table (`roles.rs`); a filter cannot
/// widen a scoped client's list either.
#[actix_web::test]
async fn a_cro_filtering_by_a_study_outside_its_claim_lists_nothing() {
    let world = World::new().await;
    let cro = world.token(Role::Cro);
    let path = |study: &str| format!("{LIST}?study_id={study}");
    let outside = world.app.get(&path(&world.b().study), cro).await;
    assert!(ids(outside.ok(200)).is_empty());
    let inside = world.app.get(&path(&world.a().study), cro).await;
    assert_eq!(
        ids(inside.ok(200)),
        BTreeSet::from([world.a().week.clone()])
    );
}

#[actix_web::test]
async fn the_list_filters_by_study_site_and_weeks() {
    let app = spawn_app().await;
    let (study_id, site_id) = app.study_and_site().await;
    for weeks_ago in 1..=4 {
        admin_put(&app, &site_id, &monday(weeks_ago), &counts(3, 0, 2))
            .await
            .ok(201);
    }
    let between = format!("{LIST}?from={}&to={}", monday(3), monday(2));
    let weeks = column(app.admin_get(&between).await.ok(200), "week_start");
    assert_eq!(weeks.len(), 2);
    assert!(weeks.contains(&monday(3)) && weeks.contains(&monday(2)));
    let by_study = app
        .admin_get(&format!("{LIST}?study_id={study_id}&limit=3"))
        .await;
    assert_eq!(by_study.ok(200)["data"].as_array().unwrap().len(), 3);
    assert!(by_study.body["next_cursor"].is_string());
    let backwards = format!("from={}&to={}", monday(1), monday(3));
    for query in [backwards.as_str(), "from=yesterday"] {
        let resp = app.admin_get(&format!("{LIST}?{query}")).await;
        resp.expect(400, query);
    }
}

#[actix_web::test]
async fn a_site_with_enrollment_weeks_cannot_be_deleted() {
    let app = spawn_app().await;
    let (_, site_id) = app.study_and_site().await;
    admin_put(&app, &site_id, &monday(1), &counts(1, 0, 1))
        .await
        .ok(201);
    let before = app.fingerprint().await;
    let resp = app.admin_delete(&format!("/api/v1/sites/{site_id}")).await;
    assert!(resp.detail(409).contains("enrollment"));
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn a_new_week_answers_its_location() {
    let app = spawn_app().await;
    let (_, site_id) = app.study_and_site().await;
    let week = monday(1);
    let created = admin_put(&app, &site_id, &week, &counts(1, 0, 1)).await;
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/sites/{site_id}/enrollment/{week}"))
    );
}
