//! Milestones: create, read, update, delete, their references, the derived slippage and
//! overdue values, the vendor client's narrow write access, and who may do what.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, bad, column, id_of, spawn_app};

fn ids(resp: &Resp) -> Vec<String> {
    column(resp.ok(200), "id")
}

async fn list(app: &TestApp, query: &str) -> Vec<String> {
    ids(&app.admin_get(&format!("/api/v1/milestones{query}")).await)
}

#[actix_web::test]
async fn milestone_lifecycle_with_its_audit_trail() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;
    let vendor = app.vendor_id(json!({})).await;
    let body = json!({
        "external_id": "MS-1",
        "study_id": study,
        "site_id": site,
        "vendor_id": vendor,
        "name": "Site activated",
        "kind": "site_activation",
        "baseline_date": "2026-03-01",
        "forecast_date": "2026-03-11",
        "owner": "CRA lead"
    });
    let (milestone, path) = app.create_checked("/api/v1/milestones", &body).await;
    let id = id_of(&milestone);
    assert_eq!(milestone["status"], "planned", "the default status");
    assert_eq!(milestone["site_id"], site.as_str());
    assert_eq!(milestone["vendor_id"], vendor.as_str());
    assert_eq!(milestone["slippage_days"], 10);
    assert_eq!(milestone["overdue"], true, "due 2026-03-11, long past");

    app.assert_reads_back(&path, &milestone).await;

    let patched = app
        .admin_patch(
            &path,
            &json!({"actual_date": "2026-03-04", "status": "completed", "owner": null}),
        )
        .await;
    let patched = patched.ok(200).clone();
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["slippage_days"], 3, "the actual date wins");
    assert_eq!(patched["overdue"], false);
    assert!(patched["owner"].is_null());
    assert_eq!(patched["name"], "Site activated", "absent fields stay");

    // A patch that changes nothing writes nothing.
    let same = app
        .admin_patch(&path, &json!({"status": "completed"}))
        .await;
    assert_eq!(same.ok(200)["version"], 2);

    app.assert_deleted(&path, &json!({"notes": "x"})).await;
    app.admin_delete(&path).await.problem(404);
    assert!(list(&app, "").await.is_empty());
    let with_deleted = app
        .admin_get("/api/v1/milestones?include_deleted=true")
        .await;
    assert_eq!(ids(&with_deleted), vec![id.clone()]);
    assert!(with_deleted.body["data"][0]["deleted_at"].is_string());
    assert_eq!(with_deleted.body["data"][0]["version"], 3);
    assert_eq!(with_deleted.body["data"][0]["slippage_days"], 3);

    // The audit trail keeps the stored record: the derived values change with the
    // calendar, not with writes, so they are in no event.
    let events = app
        .audit_trail(&id, "milestone", &["create", "update", "delete"])
        .await;
    for event in &events {
        assert_eq!(event["study_id"], study.as_str());
        let changes = event["changes"].as_object().unwrap();
        assert!(!changes.contains_key("slippage_days") && !changes.contains_key("overdue"));
        if let Some(data) = event["data"].as_object() {
            assert!(!data.contains_key("slippage_days") && !data.contains_key("overdue"));
        }
    }
    assert_eq!(events[0]["changes"]["kind"]["new"], "site_activation");
    assert_eq!(events[0]["data"]["forecast_date"], "2026-03-11");
    assert_eq!(
        events[1]["changes"],
        json!({
            "actual_date": {"old": null, "new": "2026-03-04"},
            "status": {"old": "planned", "new": "completed"},
            "owner": {"old": "CRA lead", "new": null}
        })
    );
    assert!(events[2]["data"].is_null());
}

#[actix_web::test]
async fn invalid_milestones_are_422_naming_each_field_and_write_nothing() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let other_study = app.study_id(json!({})).await;
    let foreign_site = app.site_id(&other_study, json!({})).await;
    let deleted_site = app.site_id(&study, json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/sites/{deleted_site}"))
        .await;
    let deleted_vendor = app.vendor_id(json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/vendors/{deleted_vendor}"))
        .await;
    let nowhere = Uuid::now_v7().to_string();

    let before = app.fingerprint().await;
    let cases = [
        bad("name", json!(" "), "blank"),
        bad("name", json!(null), "required"),
        bad("kind", json!("kickoff"), "enum"),
        bad("status", json!("done"), "enum"),
        bad("baseline_date", json!("2026-02-30"), "format"),
        bad("forecast_date", json!("next week"), "format"),
        bad("actual_date", json!("2026-13-01"), "format"),
        bad("slippage_days", json!(3), "unknown_field"),
        bad("overdue", json!(false), "unknown_field"),
        bad("external_id", json!("x".repeat(101)), "length"),
        bad("owner", json!("x".repeat(201)), "length"),
        bad("study_id", json!("not-a-uuid"), "format"),
        bad("site_id", json!(foreign_site), "reference"),
        bad("site_id", json!(deleted_site), "reference"),
        bad("site_id", json!(nowhere), "reference"),
        bad("vendor_id", json!(deleted_vendor), "reference"),
        bad("vendor_id", json!(nowhere), "reference"),
    ];
    for (overrides, field, code) in cases {
        let mut body = json!({"study_id": study, "name": "M", "kind": "other"});
        json_patch::merge(&mut body, &overrides);
        let resp = app.admin_post("/api/v1/milestones", &body).await;
        resp.refuses(field, code, &overrides.to_string());
    }
    // A study that does not exist, or is deleted, is a 404.
    let ghost = json!({"study_id": nowhere, "name": "M", "kind": "other"});
    app.admin_post("/api/v1/milestones", &ghost)
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);

    // A PATCH runs the same rules, and a milestone stays in its study.
    let own_site = app.site_id(&study, json!({})).await;
    let milestone = app
        .create_milestone(&study, json!({"site_id": own_site}))
        .await;
    let path = format!("/api/v1/milestones/{}", id_of(&milestone));
    let before = app.fingerprint().await;
    for (patch, field, code) in [
        bad("study_id", json!(other_study), "immutable"),
        bad("site_id", json!(foreign_site), "reference"),
        bad("vendor_id", json!(deleted_vendor), "reference"),
        bad("name", json!(null), "not_nullable"),
        bad("status", json!(null), "not_nullable"),
        bad("kind", json!("kickoff"), "enum"),
        bad("id", json!(nowhere), "unknown_field"),
    ] {
        let resp = app.admin_patch(&path, &patch).await;
        resp.refuses(field, code, &patch.to_string());
    }
    assert_eq!(app.fingerprint().await, before);
    // Moving the study and the site together is still a move.
    let resp = app
        .admin_patch(
            &path,
            &json!({"study_id": other_study, "site_id": foreign_site}),
        )
        .await;
    assert_eq!(resp.invalid_fields(), vec!["study_id".to_string()]);
    assert_eq!(app.fingerprint().await, before);
}

/// Hand-picked dates far from today, so the answers cannot depend on the day the test
/// runs; the day-boundary cases (due today, due yesterday) are unit tests of
/// `domain::milestones::schedule`. `?overdue=` must agree with `overdue` row by row.
#[actix_web::test]
async fn slippage_and_overdue_are_derived_from_the_dates() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let cases = [
        // (fields, slippage_days, overdue)
        (
            json!({"baseline_date": "2000-01-10", "forecast_date": "2000-01-20"}),
            json!(10),
            true,
        ),
        (
            json!({"baseline_date": "2000-01-10", "forecast_date": "2000-02-01", "actual_date": "2000-01-05"}),
            json!(-5),
            false,
        ),
        (json!({"baseline_date": "2000-01-01"}), Value::Null, true),
        (json!({"forecast_date": "2999-01-01"}), Value::Null, false),
        (
            json!({"baseline_date": "2000-01-01", "forecast_date": "2999-01-01"}),
            json!(364_878),
            false,
        ),
        (
            json!({"baseline_date": "2999-01-01", "forecast_date": "2000-01-01"}),
            json!(-364_878),
            true,
        ),
        (
            json!({"baseline_date": "2000-01-01", "status": "completed"}),
            Value::Null,
            false,
        ),
        (
            json!({"baseline_date": "2000-01-01", "status": "cancelled"}),
            Value::Null,
            false,
        ),
        (
            json!({"baseline_date": "2000-01-01", "status": "missed"}),
            Value::Null,
            true,
        ),
        (
            json!({"baseline_date": "2000-01-01", "status": "at_risk"}),
            Value::Null,
            true,
        ),
        (
            json!({"baseline_date": "2000-01-01", "actual_date": "2000-01-01"}),
            json!(0),
            false,
        ),
        (json!({"actual_date": "2000-01-01"}), Value::Null, false),
        (json!({}), Value::Null, false),
    ];
    let mut overdue = BTreeSet::new();
    let mut on_time = BTreeSet::new();
    for (fields, slippage, is_overdue) in &cases {
        let m = app.create_milestone(&study, fields.clone()).await;
        assert_eq!(&m["slippage_days"], slippage, "{fields}");
        assert_eq!(m["overdue"], *is_overdue, "{fields}");
        let read = app
            .admin_get(&format!("/api/v1/milestones/{}", id_of(&m)))
            .await;
        assert_eq!(read.ok(200), &m, "reads answer the same values");
        if *is_overdue {
            overdue.insert(id_of(&m));
        } else {
            on_time.insert(id_of(&m));
        }
    }
    let listed = |query: &'static str| {
        let app = &app;
        async move { list(app, query).await.into_iter().collect::<BTreeSet<_>>() }
    };
    assert_eq!(listed("?overdue=true").await, overdue);
    assert_eq!(listed("?overdue=false").await, on_time);
    let all = app.admin_get("/api/v1/milestones").await;
    for m in all.ok(200)["data"].as_array().unwrap() {
        assert_eq!(m["overdue"], overdue.contains(&id_of(m)), "{m}");
    }
    app.admin_get("/api/v1/milestones?overdue=maybe")
        .await
        .problem(400);

    // A patch moves the derived values with the dates.
    let m = app
        .create_milestone(&study, json!({"baseline_date": "2000-01-01"}))
        .await;
    let path = format!("/api/v1/milestones/{}", id_of(&m));
    let moved = app
        .admin_patch(&path, &json!({"forecast_date": "2999-01-01"}))
        .await;
    assert_eq!(moved.ok(200)["overdue"], false);
    assert_eq!(moved.body["slippage_days"], 364_878);
    let cleared = app
        .admin_patch(&path, &json!({"forecast_date": null}))
        .await;
    assert_eq!(cleared.ok(200)["overdue"], true);
    assert!(cleared.body["slippage_days"].is_null());
}

#[actix_web::test]
async fn milestone_filters() {
    let app = spawn_app().await;
    let a = app.study_id(json!({})).await;
    let b = app.study_id(json!({})).await;
    let site = app.site_id(&a, json!({})).await;
    let vendor = app.vendor_id(json!({})).await;
    let m1 = id_of(
        &app.create_milestone(
            &a,
            json!({"kind": "site_activation", "site_id": site, "external_id": "X-1"}),
        )
        .await,
    );
    let m2 = id_of(
        &app.create_milestone(
            &a,
            json!({"kind": "vendor_deliverable", "vendor_id": vendor, "status": "in_progress"}),
        )
        .await,
    );
    let m3 = id_of(
        &app.create_milestone(
            &b,
            json!({"kind": "database_lock", "status": "in_progress"}),
        )
        .await,
    );
    let (m1, m2, m3) = (m1.as_str(), m2.as_str(), m3.as_str());
    assert_eq!(list(&app, "").await, [m1, m2, m3]);
    assert_eq!(list(&app, &format!("?study_id={a}")).await, [m1, m2]);
    assert_eq!(list(&app, &format!("?study_id={b}")).await, [m3]);
    assert_eq!(list(&app, &format!("?site_id={site}")).await, [m1]);
    assert_eq!(list(&app, &format!("?vendor_id={vendor}")).await, [m2]);
    assert_eq!(list(&app, "?kind=database_lock").await, [m3]);
    assert_eq!(list(&app, "?status=in_progress").await, [m2, m3]);
    assert_eq!(list(&app, "?status=planned").await, [m1]);
    assert_eq!(list(&app, "?external_id=X-1").await, [m1]);
    assert_eq!(
        list(&app, &format!("?study_id={a}&status=in_progress")).await,
        [m2]
    );
    assert!(
        list(&app, &format!("?study_id={b}&vendor_id={vendor}"))
            .await
            .is_empty()
    );
    app.admin_get("/api/v1/milestones?kind=kickoff")
        .await
        .problem(400);

    // external_id is unique among live milestones.
    let before = app.fingerprint().await;
    let dup = app
        .admin_post(
            "/api/v1/milestones",
            &json!({"study_id": b, "name": "Dup", "kind": "other", "external_id": "X-1"}),
        )
        .await;
    dup.problem(409);
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn if_match_guards_milestone_patch_and_delete() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let m = app.create_milestone(&study, json!({})).await;
    let path = format!("/api/v1/milestones/{}", id_of(&m));
    app.assert_if_match_guards(&path, "notes").await;
}

/// A study or a site named by a live milestone stays (409) until the milestone goes.
#[actix_web::test]
async fn live_milestones_keep_their_study_and_site() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;
    let on_site = id_of(&app.create_milestone(&study, json!({"site_id": site})).await);
    let study_level = id_of(&app.create_milestone(&study, json!({})).await);
    let before = app.fingerprint().await;
    let refused = app.admin_delete(&format!("/api/v1/sites/{site}")).await;
    assert!(refused.detail(409).contains("milestone"));
    assert_eq!(app.fingerprint().await, before);
    app.admin_patch_ok(
        &format!("/api/v1/milestones/{on_site}"),
        &json!({"site_id": null}),
    )
    .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{site}")).await;

    let before = app.fingerprint().await;
    let refused = app.admin_delete(&format!("/api/v1/studies/{study}")).await;
    assert!(refused.detail(409).contains("2 live milestone(s)"));
    assert_eq!(app.fingerprint().await, before);
    for m in [&on_site, &study_level] {
        app.admin_delete_ok(&format!("/api/v1/milestones/{m}"))
            .await;
    }
    app.admin_delete_ok(&format!("/api/v1/studies/{study}"))
        .await;
}

/// A `vendor` client updates forecast and actual dates, status and notes of the
/// milestones naming its vendor, and nothing else.
#[actix_web::test]
async fn a_vendor_client_may_change_dates_status_and_notes_only() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let vendor = app.vendor_id(json!({})).await;
    let other_vendor = app.vendor_id(json!({})).await;
    let token = app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await;
    let m = app
        .create_milestone(
            &study,
            json!({"vendor_id": vendor, "kind": "vendor_deliverable", "baseline_date": "2026-04-01"}),
        )
        .await;
    let path = format!("/api/v1/milestones/{}", id_of(&m));

    let refused_patches = [
        (json!({"name": "Renamed"}), vec!["name"]),
        (
            json!({"baseline_date": "2026-05-01"}),
            vec!["baseline_date"],
        ),
        // The way out of the vendor's own scope.
        (json!({"vendor_id": other_vendor}), vec!["vendor_id"]),
        (json!({"vendor_id": null}), vec!["vendor_id"]),
        // Allowed fields do not carry refused ones through: nothing changes.
        (
            json!({"notes": "shipped", "owner": "Vendor PM", "site_id": null}),
            vec!["owner", "site_id"],
        ),
        // Naming a field with its current value is still naming it.
        (json!({"kind": "vendor_deliverable"}), vec!["kind"]),
        (json!({"study_id": study}), vec!["study_id"]),
        (json!({"external_id": "V-1"}), vec!["external_id"]),
    ];
    for (patch, refused) in refused_patches {
        let before = app.fingerprint().await;
        let resp = app.patch(&path, &token, &patch).await;
        let detail = resp.detail(403).to_string();
        let named = detail.split("refused: ").nth(1).unwrap_or_default();
        let named: BTreeSet<&str> = named.split(", ").collect();
        assert_eq!(
            named,
            refused.into_iter().collect::<BTreeSet<_>>(),
            "{patch}: {detail}"
        );
        assert_eq!(app.fingerprint().await, before, "{patch}: nothing written");
    }
    // What is no field at all is a 422 for everyone.
    let resp = app.patch(&path, &token, &json!({"colour": "red"})).await;
    assert_eq!(resp.invalid_fields(), vec!["colour".to_string()]);

    let resp = app
        .patch(
            &path,
            &token,
            &json!({"forecast_date": "2026-04-08", "status": "at_risk", "notes": "customs delay"}),
        )
        .await;
    let updated = resp.ok(200);
    assert_eq!(updated["forecast_date"], "2026-04-08");
    assert_eq!(updated["status"], "at_risk");
    assert_eq!(updated["notes"], "customs delay");
    assert_eq!(updated["slippage_days"], 7);
    let resp = app
        .patch(
            &path,
            &token,
            &json!({"actual_date": "2026-04-09", "status": "completed", "notes": null}),
        )
        .await;
    assert_eq!(resp.ok(200)["version"], 3);
    assert!(resp.body["notes"].is_null());
    let events = app.audit_events(&id_of(&m)).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["role"], "vendor");
}

/// A vendor client reads the studies its vendor's milestones belong to (as the studies
/// endpoints show them), and no other.
#[actix_web::test]
async fn a_vendor_client_sees_the_studies_of_its_milestones() {
    let app = spawn_app().await;
    let a = app.study_id(json!({"title": "A"})).await;
    let b = app.study_id(json!({"title": "B"})).await;
    let c = app.study_id(json!({"title": "C"})).await;
    let vendor = app.vendor_id(json!({})).await;
    let other = app.vendor_id(json!({})).await;
    let token = app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await;
    let studies = |token: String| {
        let app = &app;
        async move { ids(&app.get("/api/v1/studies", &token).await) }
    };
    assert!(studies(token.clone()).await.is_empty(), "no milestone yet");

    app.create_milestone(&a, json!({"vendor_id": vendor})).await;
    app.create_milestone(&a, json!({"vendor_id": vendor})).await;
    let m_b = id_of(&app.create_milestone(&b, json!({"vendor_id": vendor})).await);
    app.create_milestone(&c, json!({"vendor_id": other})).await;
    app.create_milestone(&c, json!({})).await;

    assert_eq!(studies(token.clone()).await, [a.as_str(), b.as_str()]);
    app.get(&format!("/api/v1/studies/{a}"), &token)
        .await
        .ok(200);
    app.get(&format!("/api/v1/studies/{c}"), &token)
        .await
        .problem(404);
    let milestones = ids(&app.get("/api/v1/milestones", &token).await);
    assert_eq!(milestones.len(), 3, "only those naming its vendor");

    // A deleted milestone no longer opens its study.
    app.admin_delete(&format!("/api/v1/milestones/{m_b}"))
        .await
        .ok(204);
    assert_eq!(studies(token.clone()).await, [a.as_str()]);
    app.get(&format!("/api/v1/studies/{b}"), &token)
        .await
        .problem(404);
    // Reading is all: the study's own endpoints stay closed to writes.
    app.patch(
        &format!("/api/v1/studies/{a}"),
        &token,
        &json!({"title": "x"}),
    )
    .await
    .problem(403);
}
