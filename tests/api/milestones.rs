//! Milestones: create, read, update, delete, their references, the derived slippage and
//! overdue values, the vendor client's narrow write access, and who may do what.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, id_of, spawn_app};

fn ids(resp: &Resp) -> Vec<String> {
    resp.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

async fn list(app: &TestApp, query: &str) -> Vec<String> {
    ids(&app
        .get(&format!("/api/v1/milestones{query}"), &app.admin_token)
        .await)
}

#[actix_web::test]
async fn milestone_lifecycle_with_its_audit_trail() {
    let app = spawn_app().await;
    let study = id_of(&app.create_study(json!({})).await);
    let site = id_of(&app.create_site(&study, json!({})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);
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
    let created = app
        .post("/api/v1/milestones", &app.admin_token, &body)
        .await;
    let milestone = created.ok(201).clone();
    let id = id_of(&milestone);
    let path = format!("/api/v1/milestones/{id}");
    assert_eq!(created.header("location"), Some(path.clone()));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(milestone["status"], "planned", "the default status");
    assert_eq!(milestone["version"], 1);
    assert_eq!(milestone["site_id"], site.as_str());
    assert_eq!(milestone["vendor_id"], vendor.as_str());
    assert_eq!(milestone["slippage_days"], 10);
    assert_eq!(milestone["overdue"], true, "due 2026-03-11, long past");

    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200), &milestone);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let patched = app
        .patch(
            &path,
            &app.admin_token,
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
        .patch(&path, &app.admin_token, &json!({"status": "completed"}))
        .await;
    assert_eq!(same.ok(200)["version"], 2);

    app.delete(&path, &app.admin_token).await.ok(204);
    app.get(&path, &app.admin_token).await.problem(404);
    app.patch(&path, &app.admin_token, &json!({"notes": "x"}))
        .await
        .problem(404);
    app.delete(&path, &app.admin_token).await.problem(404);
    assert!(list(&app, "").await.is_empty());
    let with_deleted = app
        .get("/api/v1/milestones?include_deleted=true", &app.admin_token)
        .await;
    assert_eq!(ids(&with_deleted), vec![id.clone()]);
    assert!(with_deleted.body["data"][0]["deleted_at"].is_string());
    assert_eq!(with_deleted.body["data"][0]["version"], 3);
    assert_eq!(with_deleted.body["data"][0]["slippage_days"], 3);

    // The audit trail keeps the stored record: the derived values change with the
    // calendar, not with writes, so they are in no event.
    let events = app.audit_events(&id).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for event in &events {
        assert_eq!(event["entity_type"], "milestone");
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
    let study = id_of(&app.create_study(json!({})).await);
    let other_study = id_of(&app.create_study(json!({})).await);
    let foreign_site = id_of(&app.create_site(&other_study, json!({})).await);
    let deleted_site = id_of(&app.create_site(&study, json!({})).await);
    app.delete(&format!("/api/v1/sites/{deleted_site}"), &app.admin_token)
        .await
        .ok(204);
    let deleted_vendor = id_of(&app.create_vendor(json!({})).await);
    app.delete(
        &format!("/api/v1/vendors/{deleted_vendor}"),
        &app.admin_token,
    )
    .await
    .ok(204);
    let nowhere = Uuid::now_v7().to_string();

    let before = app.fingerprint().await;
    let cases = [
        (json!({"name": " "}), "name", "blank"),
        (json!({"name": null}), "name", "required"),
        (json!({"kind": "kickoff"}), "kind", "enum"),
        (json!({"status": "done"}), "status", "enum"),
        (
            json!({"baseline_date": "2026-02-30"}),
            "baseline_date",
            "format",
        ),
        (
            json!({"forecast_date": "next week"}),
            "forecast_date",
            "format",
        ),
        (
            json!({"actual_date": "2026-13-01"}),
            "actual_date",
            "format",
        ),
        (
            json!({"slippage_days": 3}),
            "slippage_days",
            "unknown_field",
        ),
        (json!({"overdue": false}), "overdue", "unknown_field"),
        (
            json!({"external_id": "x".repeat(101)}),
            "external_id",
            "length",
        ),
        (json!({"owner": "x".repeat(201)}), "owner", "length"),
        (json!({"study_id": "not-a-uuid"}), "study_id", "format"),
        (json!({"site_id": foreign_site}), "site_id", "reference"),
        (json!({"site_id": deleted_site}), "site_id", "reference"),
        (json!({"site_id": nowhere}), "site_id", "reference"),
        (
            json!({"vendor_id": deleted_vendor}),
            "vendor_id",
            "reference",
        ),
        (json!({"vendor_id": nowhere}), "vendor_id", "reference"),
    ];
    for (overrides, field, code) in cases {
        let mut body = json!({"study_id": study, "name": "M", "kind": "other"});
        json_patch::merge(&mut body, &overrides);
        let resp = app
            .post("/api/v1/milestones", &app.admin_token, &body)
            .await;
        assert_eq!(
            resp.invalid_fields(),
            vec![field.to_string()],
            "{overrides}: {}",
            resp.text
        );
        assert_eq!(resp.body["errors"][0]["code"], code, "{overrides}");
    }
    // A study that does not exist, or is deleted, is a 404.
    let ghost = json!({"study_id": nowhere, "name": "M", "kind": "other"});
    app.post("/api/v1/milestones", &app.admin_token, &ghost)
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);

    // A PATCH runs the same rules, and a milestone stays in its study.
    let own_site = id_of(&app.create_site(&study, json!({})).await);
    let milestone = app
        .create_milestone(&study, json!({"site_id": own_site}))
        .await;
    let path = format!("/api/v1/milestones/{}", id_of(&milestone));
    let before = app.fingerprint().await;
    for (patch, field, code) in [
        (json!({"study_id": other_study}), "study_id", "immutable"),
        (json!({"site_id": foreign_site}), "site_id", "reference"),
        (
            json!({"vendor_id": deleted_vendor}),
            "vendor_id",
            "reference",
        ),
        (json!({"name": null}), "name", "not_nullable"),
        (json!({"status": null}), "status", "not_nullable"),
        (json!({"kind": "kickoff"}), "kind", "enum"),
        (json!({"id": nowhere}), "id", "unknown_field"),
    ] {
        let resp = app.patch(&path, &app.admin_token, &patch).await;
        assert_eq!(resp.invalid_fields(), vec![field.to_string()], "{patch}");
        assert_eq!(resp.body["errors"][0]["code"], code, "{patch}");
    }
    assert_eq!(app.fingerprint().await, before);
    // Moving the study and the site together is still a move.
    let resp = app
        .patch(
            &path,
            &app.admin_token,
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
    let study = id_of(&app.create_study(json!({})).await);
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
            .get(
                &format!("/api/v1/milestones/{}", id_of(&m)),
                &app.admin_token,
            )
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
    let all = app.get("/api/v1/milestones", &app.admin_token).await;
    for m in all.ok(200)["data"].as_array().unwrap() {
        assert_eq!(m["overdue"], overdue.contains(&id_of(m)), "{m}");
    }
    app.get("/api/v1/milestones?overdue=maybe", &app.admin_token)
        .await
        .problem(400);

    // A patch moves the derived values with the dates.
    let m = app
        .create_milestone(&study, json!({"baseline_date": "2000-01-01"}))
        .await;
    let path = format!("/api/v1/milestones/{}", id_of(&m));
    let moved = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"forecast_date": "2999-01-01"}),
        )
        .await;
    assert_eq!(moved.ok(200)["overdue"], false);
    assert_eq!(moved.body["slippage_days"], 364_878);
    let cleared = app
        .patch(&path, &app.admin_token, &json!({"forecast_date": null}))
        .await;
    assert_eq!(cleared.ok(200)["overdue"], true);
    assert!(cleared.body["slippage_days"].is_null());
}

#[actix_web::test]
async fn milestone_filters() {
    let app = spawn_app().await;
    let a = id_of(&app.create_study(json!({})).await);
    let b = id_of(&app.create_study(json!({})).await);
    let site = id_of(&app.create_site(&a, json!({})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);
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
    app.get("/api/v1/milestones?kind=kickoff", &app.admin_token)
        .await
        .problem(400);

    // external_id is unique among live milestones.
    let before = app.fingerprint().await;
    let dup = app
        .post(
            "/api/v1/milestones",
            &app.admin_token,
            &json!({"study_id": b, "name": "Dup", "kind": "other", "external_id": "X-1"}),
        )
        .await;
    dup.problem(409);
    assert_eq!(app.fingerprint().await, before);
}

#[actix_web::test]
async fn if_match_guards_milestone_patch_and_delete() {
    let app = spawn_app().await;
    let study = id_of(&app.create_study(json!({})).await);
    let m = app.create_milestone(&study, json!({})).await;
    let path = format!("/api/v1/milestones/{}", id_of(&m));
    let patch = |etag: &'static str| {
        app.http
            .patch(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(json!({"notes": format!("n {etag}")}).to_string())
    };
    app.send(patch("\"1\"")).await.ok(200);
    let before = app.fingerprint().await;
    let stale = app.send(patch("\"1\"")).await;
    assert!(
        stale.problem(412)["detail"]
            .as_str()
            .unwrap()
            .contains("\"2\"")
    );
    let delete = |etag: &'static str| {
        app.http
            .delete(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("if-match", etag)
    };
    app.send(delete("\"1\"")).await.problem(412);
    assert_eq!(app.fingerprint().await, before);
    app.send(delete("\"2\"")).await.ok(204);
}

/// A study or a site named by a live milestone stays (409) until the milestone goes.
#[actix_web::test]
async fn live_milestones_keep_their_study_and_site() {
    let app = spawn_app().await;
    let study = id_of(&app.create_study(json!({})).await);
    let site = id_of(&app.create_site(&study, json!({})).await);
    let on_site = id_of(&app.create_milestone(&study, json!({"site_id": site})).await);
    let study_level = id_of(&app.create_milestone(&study, json!({})).await);
    let before = app.fingerprint().await;
    let refused = app
        .delete(&format!("/api/v1/sites/{site}"), &app.admin_token)
        .await;
    assert!(
        refused.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("milestone")
    );
    assert_eq!(app.fingerprint().await, before);
    app.patch(
        &format!("/api/v1/milestones/{on_site}"),
        &app.admin_token,
        &json!({"site_id": null}),
    )
    .await
    .ok(200);
    app.delete(&format!("/api/v1/sites/{site}"), &app.admin_token)
        .await
        .ok(204);

    let before = app.fingerprint().await;
    let refused = app
        .delete(&format!("/api/v1/studies/{study}"), &app.admin_token)
        .await;
    assert!(
        refused.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("2 live milestone(s)")
    );
    assert_eq!(app.fingerprint().await, before);
    for m in [&on_site, &study_level] {
        app.delete(&format!("/api/v1/milestones/{m}"), &app.admin_token)
            .await
            .ok(204);
    }
    app.delete(&format!("/api/v1/studies/{study}"), &app.admin_token)
        .await
        .ok(204);
}

/// A `vendor` client updates forecast and actual dates, status and notes of the
/// milestones naming its vendor, and nothing else.
#[actix_web::test]
async fn a_vendor_client_may_change_dates_status_and_notes_only() {
    let app = spawn_app().await;
    let study = id_of(&app.create_study(json!({})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);
    let other_vendor = id_of(&app.create_vendor(json!({})).await);
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
        let detail = resp.problem(403)["detail"].as_str().unwrap().to_string();
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
    let a = id_of(&app.create_study(json!({"title": "A"})).await);
    let b = id_of(&app.create_study(json!({"title": "B"})).await);
    let c = id_of(&app.create_study(json!({"title": "C"})).await);
    let vendor = id_of(&app.create_vendor(json!({})).await);
    let other = id_of(&app.create_vendor(json!({})).await);
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
    app.delete(&format!("/api/v1/milestones/{m_b}"), &app.admin_token)
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

/// `[in scope, out of scope]` statuses of list, read, create, patch and delete, where a
/// list status of 200 means "listed" and 404 "left out".
type RoleRow = (Role, Pair, Pair, Pair, Pair, Pair);
type Pair = [u16; 2];

/// Who may do what with milestones. The world: studies A and B, sites A1 and B1, vendors
/// V1 and V2; milestone MA (study A, site A1, vendor V1) is "in scope" and MB (study B,
/// site B1, vendor V2) "out of scope" for the `cro` (study A), the `site` client (site A1,
/// which still sees no milestones) and the `vendor` client (V1). A POST names study A or B
/// (and the matching vendor) in its body.
#[rustfmt::skip]
const MILESTONE_ROLES: &[RoleRow] = &[
    //                list        read        create      patch       delete
    (Role::Admin,   [200, 200], [200, 200], [201, 201], [200, 200], [204, 204]),
    (Role::Sponsor, [200, 200], [200, 200], [201, 201], [200, 200], [204, 204]),
    (Role::Cro,     [200, 404], [200, 404], [201, 404], [200, 404], [204, 404]),
    (Role::Site,    [404, 404], [404, 404], [403, 403], [404, 404], [404, 404]),
    (Role::Vendor,  [200, 404], [200, 404], [403, 403], [200, 404], [403, 404]),
    (Role::Auditor, [200, 200], [200, 200], [403, 403], [403, 403], [403, 403]),
    (Role::Analyst, [200, 200], [200, 200], [403, 403], [403, 403], [403, 403]),
];

#[actix_web::test]
async fn milestone_endpoints_follow_the_role_table() {
    let app = spawn_app().await;
    let studies = [
        id_of(&app.create_study(json!({"title": "A"})).await),
        id_of(&app.create_study(json!({"title": "B"})).await),
    ];
    let sites = [
        id_of(&app.create_site(&studies[0], json!({})).await),
        id_of(&app.create_site(&studies[1], json!({})).await),
    ];
    let vendors = [
        id_of(&app.create_vendor(json!({"name": "V1"})).await),
        id_of(&app.create_vendor(json!({"name": "V2"})).await),
    ];
    let mut milestones = Vec::new();
    for i in 0..2 {
        let m = app
            .create_milestone(
                &studies[i],
                json!({"site_id": sites[i], "vendor_id": vendors[i]}),
            )
            .await;
        milestones.push(id_of(&m));
    }
    let mut tokens = Vec::new();
    for &(role, ..) in MILESTONE_ROLES {
        let token = match role {
            Role::Admin => app.admin_token.clone(),
            Role::Cro => app.token_for(role, &[&studies[0]], &[], None).await,
            Role::Site => app.token_for(role, &[], &[&sites[0]], None).await,
            Role::Vendor => app.token_for(role, &[], &[], Some(&vendors[0])).await,
            _ => app.token_for(role, &[], &[], None).await,
        };
        tokens.push(token);
    }

    // Lists first, while MA and MB are all there is.
    for (&(role, list, ..), token) in MILESTONE_ROLES.iter().zip(&tokens) {
        let listed: BTreeSet<String> = ids(&app.get("/api/v1/milestones", token).await)
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = milestones
            .iter()
            .zip(list)
            .filter(|(_, status)| *status == 200)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(listed, expected, "{role} lists milestones");
    }

    for (&(role, _, read, create, patch, delete), token) in MILESTONE_ROLES.iter().zip(&tokens) {
        for i in 0..2 {
            let what = |op: &str| format!("{role} {op} {}", ["in scope", "out of scope"][i]);
            let path = format!("/api/v1/milestones/{}", milestones[i]);

            let resp = app.get(&path, token).await;
            assert_eq!(resp.status, read[i], "{}: {}", what("read"), resp.text);
            if read[i] == 200 {
                assert_eq!(resp.body["id"], milestones[i].as_str());
                assert!(resp.body["overdue"].is_boolean());
            } else {
                resp.problem(read[i]);
            }

            let before = app.fingerprint().await;
            let notes = format!("patched by {role}");
            let resp = app.patch(&path, token, &json!({"notes": notes})).await;
            assert_eq!(resp.status, patch[i], "{}: {}", what("patch"), resp.text);
            if patch[i] == 200 {
                assert_eq!(resp.body["notes"], notes.as_str());
                assert_ne!(app.fingerprint().await, before);
            } else {
                resp.problem(patch[i]);
                assert_eq!(app.fingerprint().await, before, "{}", what("patch"));
            }

            let before = app.fingerprint().await;
            let body = json!({
                "study_id": studies[i],
                "vendor_id": vendors[i],
                "name": format!("made by {role}"),
                "kind": "vendor_deliverable"
            });
            let resp = app.post("/api/v1/milestones", token, &body).await;
            assert_eq!(resp.status, create[i], "{}: {}", what("create"), resp.text);
            if create[i] == 201 {
                assert_eq!(resp.body["study_id"], studies[i].as_str());
            } else {
                resp.problem(create[i]);
                assert_eq!(app.fingerprint().await, before, "{}", what("create"));
            }

            // A delete expected to succeed acts on a milestone made for it, in the same
            // study and naming the same vendor, so it is in or out of scope alike.
            let target = if delete[i] == 204 {
                id_of(
                    &app.create_milestone(&studies[i], json!({"vendor_id": vendors[i]}))
                        .await,
                )
            } else {
                milestones[i].clone()
            };
            let path = format!("/api/v1/milestones/{target}");
            let before = app.fingerprint().await;
            let resp = app.delete(&path, token).await;
            assert_eq!(resp.status, delete[i], "{}: {}", what("delete"), resp.text);
            if delete[i] == 204 {
                app.get(&path, &app.admin_token).await.problem(404);
            } else {
                resp.problem(delete[i]);
                assert_eq!(app.fingerprint().await, before, "{}", what("delete"));
            }
        }
    }
}
