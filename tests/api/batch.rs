//! Batch upsert: created / updated / unchanged in one transaction, all or nothing, errors
//! naming the item, the same role and scope rules as single writes, body limits, concurrent
//! batches, and risk escalation.

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, actions, spawn_app};

async fn batch(
    app: &TestApp,
    resource: &str,
    token: &str,
    body: &Value,
    reason: Option<&str>,
) -> Resp {
    app.post_with(&format!("/api/v1/{resource}/batch"), token, body, reason)
        .await
}

/// A batch of `items` with `token`.
async fn batch_items(
    app: &TestApp,
    resource: &str,
    token: &str,
    items: Value,
    reason: Option<&str>,
) -> Resp {
    batch(app, resource, token, &json!({ "items": items }), reason).await
}

/// A batch of `items` as the admin.
async fn admin_batch(app: &TestApp, resource: &str, items: Value, reason: Option<&str>) -> Resp {
    batch_items(app, resource, &app.admin_token, items, reason).await
}

fn milestone(study: &str, external_id: &str, overrides: Value) -> Value {
    let mut item = json!({
        "external_id": external_id,
        "study_id": study,
        "name": format!("Milestone {external_id}"),
        "kind": "other",
        "baseline_date": "2026-06-01"
    });
    json_patch::merge(&mut item, &overrides);
    item
}

fn risk(study: &str, external_id: &str, overrides: Value) -> Value {
    let mut item = json!({
        "external_id": external_id,
        "study_id": study,
        "title": format!("Risk {external_id}"),
        "category": "recruitment",
        "likelihood": 2,
        "impact": 2,
        "detectability": 2
    });
    json_patch::merge(&mut item, &overrides);
    item
}

fn results(answer: &Value) -> Vec<(u64, String, String)> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["index"].as_u64().unwrap(),
                item["external_id"].as_str().unwrap().to_string(),
                item["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// How many live rows of `table` have an external id starting with `prefix`.
async fn count_external_id(app: &TestApp, table: &str, prefix: &str) -> i64 {
    let live = "deleted_at IS NULL";
    let sql = format!("SELECT count(*) FROM {table} WHERE external_id LIKE '{prefix}%' AND {live}");
    app.count(&sql).await
}

#[actix_web::test]
async fn one_batch_creates_updates_and_leaves_unchanged_items() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let first = admin_batch(
        &app,
        "milestones",
        json!([
            milestone(&study, "MS-A", json!({})),
            milestone(&study, "MS-B", json!({}))
        ]),
        Some("initial sync"),
    )
    .await;
    let first = first.ok(200).clone();
    assert_eq!(
        results(&first),
        [
            (0, "MS-A".into(), "created".into()),
            (1, "MS-B".into(), "created".into())
        ]
    );
    let id_a = first["items"][0]["id"].as_str().unwrap().to_string();
    let id_b = first["items"][1]["id"].as_str().unwrap().to_string();

    // A changes (and leaves `owner` out, which it had: a full replacement clears it), B is
    // sent exactly as stored, C is new.
    let before_b = app.admin_get(&format!("/api/v1/milestones/{id_b}")).await;
    let weekly = json!([
        milestone(&study, "MS-C", json!({"kind": "database_lock"})),
        milestone(
            &study,
            "MS-A",
            json!({"forecast_date": "2026-06-20", "status": "at_risk"})
        ),
        milestone(&study, "MS-B", json!({})),
    ]);
    let second = admin_batch(&app, "milestones", weekly.clone(), Some("weekly sync")).await;
    let second = second.ok(200).clone();
    assert_eq!(
        results(&second),
        [
            (0, "MS-C".into(), "created".into()),
            (1, "MS-A".into(), "updated".into()),
            (2, "MS-B".into(), "unchanged".into())
        ]
    );
    assert_eq!(second["items"][1]["id"], id_a.as_str());
    assert_eq!(second["items"][2]["id"], id_b.as_str());
    let id_c = second["items"][0]["id"].as_str().unwrap().to_string();

    let a = app.admin_get(&format!("/api/v1/milestones/{id_a}")).await;
    let a = a.ok(200);
    assert_eq!(a["version"], 2);
    assert_eq!(a["forecast_date"], "2026-06-20");
    assert_eq!(a["status"], "at_risk");
    let b = app.admin_get(&format!("/api/v1/milestones/{id_b}")).await;
    assert_eq!(
        b.ok(200),
        before_b.ok(200),
        "unchanged: same version and row"
    );
    assert_eq!(b.body["version"], 1);

    let events_a = app.audit_events(&id_a).await;
    assert_eq!(actions(&events_a), ["create", "update"]);
    assert_eq!(events_a[1]["reason"], "weekly sync");
    assert_eq!(
        events_a[1]["changes"]["forecast_date"],
        json!({"old": null, "new": "2026-06-20"})
    );
    assert_eq!(events_a[1]["entity_version"], 2);
    assert_eq!(
        actions(&app.audit_events(&id_b).await),
        ["create"],
        "an unchanged item writes no audit event"
    );
    let events_c = app.audit_events(&id_c).await;
    assert_eq!(actions(&events_c), ["create"]);
    assert_eq!(events_c[0]["reason"], "weekly sync");
    assert_eq!(events_c[0]["role"], "admin");

    // The same batch again changes nothing at all.
    let print = app.fingerprint().await;
    let again = admin_batch(&app, "milestones", weekly, None).await;
    assert!(
        results(again.ok(200))
            .iter()
            .all(|(_, _, result)| result == "unchanged")
    );
    assert_eq!(app.fingerprint().await, print);
}

#[actix_web::test]
async fn a_bad_item_fails_the_whole_batch_and_names_its_index() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let other_study = app.study_id(json!({})).await;
    let other_site = app.site_id(&other_study, json!({})).await;
    admin_batch(
        &app,
        "risks",
        json!([risk(&study, "R-1", json!({}))]),
        Some("sync"),
    )
    .await
    .ok(200);
    let print = app.fingerprint().await;
    let good = |n: usize| risk(&study, &format!("R-{n}"), json!({}));

    // A value the validator refuses, at index 3, after an update and two creates.
    let mut items = vec![good(1), good(2), good(3)];
    items[0]["likelihood"] = json!(3);
    items.push(risk(&study, "R-4", json!({"likelihood": 9})));
    items.push(good(5));
    let resp = admin_batch(&app, "risks", json!(items), Some("sync")).await;
    assert_eq!(resp.invalid_fields(), ["items[3].likelihood"]);
    assert_eq!(resp.body["errors"][0]["code"], "range");
    assert_eq!(app.fingerprint().await, print, "nothing written");

    // Errors of several items are all named.
    let items = json!([
        good(1),
        risk(&study, "R-2", json!({"title": "", "category": "weather"}))
    ]);
    let resp = admin_batch(&app, "risks", json!(items), Some("x")).await;
    // Every invalid field of every item, in one answer (issue 13; serde used to stop at
    // the first); an empty title breaks two rules, blank and length.
    assert_eq!(
        resp.invalid_fields(),
        ["items[1].category", "items[1].title", "items[1].title"],
        "{}",
        resp.text
    );
    assert_eq!(resp.body["errors"][0]["code"], "enum", "{}", resp.text);
    let items = json!([
        risk(&study, "R-2", json!({"title": "  "})),
        good(3),
        risk(&study, "R-4", json!({"impact": 0}))
    ]);
    let resp = admin_batch(&app, "risks", json!(items), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[0].title", "items[2].impact"]);

    // Shape errors name the item's path: a missing field, an unknown one and a wrong JSON
    // type (all 422).
    let mut missing = good(2);
    missing.as_object_mut().unwrap().remove("title");
    let resp = admin_batch(&app, "risks", json!([good(1), missing]), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].title"]);
    let resp = admin_batch(
        &app,
        "risks",
        json!([good(1), good(2), risk(&study, "R-3", json!({"score": 8}))]),
        Some("x"),
    )
    .await;
    assert_eq!(resp.invalid_fields(), ["items[2].score"]);
    let resp = admin_batch(
        &app,
        "risks",
        json!([
            good(1),
            good(2),
            good(3),
            risk(&study, "R-4", json!({"likelihood": "high"}))
        ]),
        Some("x"),
    )
    .await;
    assert_eq!(resp.invalid_fields(), ["items[3].likelihood"]);
    assert_eq!(resp.body["errors"][0]["code"], "type");

    // `external_id` is required in every item, and unique within the batch (the later
    // index is named).
    let mut anonymous = good(2);
    anonymous["external_id"] = Value::Null;
    let resp = admin_batch(&app, "risks", json!([good(1), anonymous]), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].external_id"]);
    assert_eq!(resp.body["errors"][0]["code"], "required");
    let resp = admin_batch(&app, "risks", json!([good(1), good(2), good(1)]), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[2].external_id"]);
    assert_eq!(resp.body["errors"][0]["code"], "duplicate");

    // A rule only the database can check, found after earlier items were written: the
    // whole transaction is rolled back.
    let items = json!([
        good(1),
        good(2),
        risk(&study, "R-3", json!({"site_id": other_site}))
    ]);
    let resp = admin_batch(&app, "risks", json!(items), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[2].site_id"]);
    // A study that does not exist, and an update that would move a risk to another study.
    let items = json!([
        good(2),
        risk(&uuid::Uuid::now_v7().to_string(), "R-3", json!({}))
    ]);
    let resp = admin_batch(&app, "risks", json!(items), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].study_id"]);
    let items = json!([good(2), risk(&other_study, "R-1", json!({}))]);
    let resp = admin_batch(&app, "risks", json!(items), Some("x")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].study_id"]);
    assert_eq!(resp.body["errors"][0]["code"], "immutable");
    assert_eq!(app.fingerprint().await, print, "nothing written");
}

#[actix_web::test]
async fn item_counts_and_body_limits() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let print = app.fingerprint().await;
    let resp = admin_batch(&app, "milestones", json!([]), None).await;
    assert_eq!(resp.invalid_fields(), ["items"]);
    let items: Vec<Value> = (0..1001)
        .map(|n| milestone(&study, &format!("M-{n}"), json!({})))
        .collect();
    let resp = admin_batch(&app, "milestones", json!(items), None).await;
    assert_eq!(resp.invalid_fields(), ["items"]);
    assert_eq!(resp.body["errors"][0]["code"], "length");
    let resp = admin_batch(&app, "milestones", json!({}), None).await;
    assert_eq!(resp.invalid_fields(), ["items"]);
    assert_eq!(resp.body["errors"][0]["code"], "type");
    let resp = batch(
        &app,
        "milestones",
        &app.admin_token,
        &json!({"things": []}),
        None,
    )
    .await;
    assert_eq!(resp.invalid_fields(), ["things", "items"]);
    assert_eq!(app.fingerprint().await, print);

    // 1,000 items of ~3 KiB: over the 1 MiB of other routes, within the 10 MiB of batches,
    // also through the Idempotency-Key middleware, which reads the body first.
    let notes = "n".repeat(3000);
    let items: Vec<Value> = (0..1000)
        .map(|n| milestone(&study, &format!("BIG-{n:04}"), json!({"notes": notes})))
        .collect();
    let body = json!({"items": items});
    assert!(body.to_string().len() > 2 * 1024 * 1024);
    let resp = app
        .send(
            app.request("POST", "/api/v1/milestones/batch", &app.admin_token)
                .header("idempotency-key", "big-batch-1")
                .json(&body),
        )
        .await;
    let answer = resp.ok(200);
    assert_eq!(answer["items"].as_array().unwrap().len(), 1000);
    assert_eq!(answer["items"][999]["index"], 999);
    assert_eq!(answer["items"][999]["external_id"], "BIG-0999");
    assert_eq!(count_external_id(&app, "milestones", "BIG-").await, 1000);
    let replay = app
        .send(
            app.request("POST", "/api/v1/milestones/batch", &app.admin_token)
                .header("idempotency-key", "big-batch-1")
                .json(&body),
        )
        .await;
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(replay.body, resp.body);

    // A single POST still stops at 1 MiB; a batch at 10 MiB, with or without a key.
    let big = milestone(&study, "ONE", json!({"notes": "n".repeat(1024 * 1024)}));
    app.admin_post("/api/v1/milestones", &big)
        .await
        .problem(413);
    let huge = json!({"items": [milestone(&study, "HUGE", json!({"notes": "n".repeat(10 * 1024 * 1024)}))]});
    batch(&app, "milestones", &app.admin_token, &huge, None)
        .await
        .problem(413);
    let resp = app
        .send(
            app.request("POST", "/api/v1/milestones/batch", &app.admin_token)
                .header("idempotency-key", "huge")
                .json(&huge),
        )
        .await;
    resp.problem(413);
    assert_eq!(count_external_id(&app, "milestones", "HUGE").await, 0);
}

#[actix_web::test]
async fn roles_and_scope_apply_item_by_item() {
    let app = spawn_app().await;
    let mine = app.study_id(json!({})).await;
    let theirs = app.study_id(json!({})).await;
    let my_site = app.site_id(&mine, json!({})).await;
    let their_site = app.site_id(&theirs, json!({})).await;
    // A site of theirs with a partner id, made by the sponsor.
    admin_batch(&app, "sites", json!([{"external_id": "SITE-THEIRS", "study_id": theirs, "site_number": "X-1", "name": "Theirs", "country": "FR"}]), None)
    .await
    .ok(200);
    let cro = app.token_for(Role::Cro, &[&mine], &[], None).await;
    let print = app.fingerprint().await;

    let site = |ext: &str, study: &str, number: &str| json!({"external_id": ext, "study_id": study, "site_number": number, "name": "A site", "country": "DE"});
    // A study outside the claim: 422 on the item's study_id, like one that does not exist.
    let items = json!([site("S-1", &mine, "DE-1"), site("S-2", &theirs, "DE-2")]);
    let resp = batch_items(&app, "sites", &cro, items, None).await;
    assert_eq!(resp.invalid_fields(), ["items[1].study_id"]);
    assert_eq!(resp.body["errors"][0]["code"], "reference");
    // An external id held by a site the cro cannot see: the 409 a POST would get.
    let items = json!([
        site("S-1", &mine, "DE-1"),
        site("SITE-THEIRS", &mine, "DE-2")
    ]);
    let resp = batch_items(&app, "sites", &cro, items, None).await;
    resp.problem(409);
    assert!(
        resp.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("items[1]: "),
        "{}",
        resp.text
    );
    // Roles that may not write: 403 before anything.
    for role in [Role::Analyst, Role::Auditor] {
        let token = app.token_for(role, &[], &[], None).await;
        let items = json!([site("S-1", &mine, "DE-1")]);
        batch_items(&app, "sites", &token, items, None)
            .await
            .problem(403);
    }
    // A site client writes deviations of its own sites only.
    let site_client = app.token_for(Role::Site, &[], &[&my_site], None).await;
    let deviation = |ext: &str, study: &str, site: &str| {
        json!({"external_id": ext, "study_id": study, "site_id": site, "category": "eligibility",
               "importance": "not_important", "description": "Lab value 2 % outside the range",
               "occurred_on": "2026-03-01", "detected_on": "2026-03-02"})
    };
    let items = json!([
        deviation("D-1", &mine, &my_site),
        deviation("D-2", &theirs, &their_site)
    ]);
    let resp = batch_items(&app, "deviations", &site_client, items, Some("sync")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].study_id"]);
    let other_site_of_mine = app.site_id(&mine, json!({})).await;
    let print = {
        assert_ne!(app.fingerprint().await, print);
        app.fingerprint().await
    };
    let items = json!([
        deviation("D-1", &mine, &my_site),
        deviation("D-2", &mine, &other_site_of_mine)
    ]);
    let resp = batch_items(&app, "deviations", &site_client, items, Some("sync")).await;
    assert_eq!(resp.invalid_fields(), ["items[1].site_id"]);
    // A site client may not write sites at all.
    let items = json!([site("S-1", &mine, "DE-1")]);
    batch_items(&app, "sites", &site_client, items, None)
        .await
        .problem(403);
    assert_eq!(app.fingerprint().await, print, "nothing written");

    // Within scope, both work.
    let items = json!([site("S-1", &mine, "DE-1")]);
    let resp = batch_items(&app, "sites", &cro, items, None).await;
    assert_eq!(results(resp.ok(200)), [(0, "S-1".into(), "created".into())]);
    let items = json!([deviation("D-1", &mine, &my_site)]);
    let resp = batch_items(&app, "deviations", &site_client, items, Some("sync")).await;
    let id = resp.ok(200)["items"][0]["id"].as_str().unwrap().to_string();
    let events = app.audit_events(&id).await;
    assert_eq!(events[0]["role"], "site");
    // Deviations and risks need a change reason.
    let print = app.fingerprint().await;
    let items = json!([deviation("D-1", &mine, &my_site)]);
    let resp = batch_items(&app, "deviations", &site_client, items, None).await;
    assert_eq!(resp.invalid_fields(), ["X-Change-Reason"]);
    assert_eq!(app.fingerprint().await, print);
}

#[actix_web::test]
async fn a_vendor_client_updates_only_its_four_milestone_fields() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let vendor = app.vendor_id(json!({})).await;
    let other_vendor = app.vendor_id(json!({})).await;
    let ours = milestone(
        &study,
        "V-1",
        json!({"vendor_id": vendor, "kind": "vendor_deliverable"}),
    );
    let not_ours = milestone(
        &study,
        "V-2",
        json!({"vendor_id": other_vendor, "kind": "vendor_deliverable"}),
    );
    admin_batch(&app, "milestones", json!([ours, not_ours]), None)
        .await
        .ok(200);
    let token = app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await;
    let print = app.fingerprint().await;

    let mut moved = ours.clone();
    moved["forecast_date"] = json!("2026-07-01");
    moved["notes"] = json!("courier delayed");
    let mut renamed = moved.clone();
    renamed["name"] = json!("Something else");
    let resp = batch_items(&app, "milestones", &token, json!([renamed]), None).await;
    resp.problem(403);
    assert!(resp.detail(403).contains("items[0]"));
    assert!(resp.detail(403).contains("name"));
    let items = json!([
        moved,
        milestone(&study, "V-3", json!({"vendor_id": vendor}))
    ]);
    let resp = batch_items(&app, "milestones", &token, items, None).await;
    resp.problem(403);
    assert!(resp.detail(403).starts_with("items[1]: "));
    let resp = batch_items(&app, "milestones", &token, json!([not_ours]), None).await;
    resp.problem(409);
    assert_eq!(app.fingerprint().await, print);

    let resp = batch_items(&app, "milestones", &token, json!([moved]), None).await;
    assert_eq!(results(resp.ok(200)), [(0, "V-1".into(), "updated".into())]);
    let id = resp.body["items"][0]["id"].as_str().unwrap().to_string();
    let row = app.get(&format!("/api/v1/milestones/{id}"), &token).await;
    assert_eq!(row.ok(200)["forecast_date"], "2026-07-01");
    assert_eq!(row.body["notes"], "courier delayed");
    assert_eq!(actions(&app.audit_events(&id).await), ["create", "update"]);
}

#[actix_web::test]
async fn concurrent_batches_with_the_same_external_ids_make_each_row_once() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    for round in 0..3 {
        let items: Vec<Value> = (0..100)
            .map(|n| milestone(&study, &format!("C{round}-{n:03}"), json!({})))
            .collect();
        let mut reversed = items.clone();
        reversed.reverse();
        // The second batch changes every item, so whichever runs second updates them all.
        for item in &mut reversed {
            item["status"] = json!("in_progress");
        }
        let single = milestone(&study, &format!("C{round}-050"), json!({"name": "single"}));
        let (first, second) = (json!({"items": items}), json!({"items": reversed}));
        let (a, b, c) = tokio::join!(
            batch(&app, "milestones", &app.admin_token, &first, None),
            batch(&app, "milestones", &app.admin_token, &second, None),
            app.admin_post("/api/v1/milestones", &single),
        );
        a.ok(200);
        b.ok(200);
        assert!(
            c.status == 201 || c.status == 409,
            "{}: {}",
            c.status,
            c.text
        );
        assert_eq!(
            count_external_id(&app, "milestones", &format!("C{round}-")).await,
            100
        );
        let created = |resp: &Resp| {
            results(&resp.body)
                .iter()
                .filter(|(_, _, result)| result == "created")
                .count()
        };
        let single_created = usize::from(c.status == 201);
        assert_eq!(created(&a) + created(&b) + single_created, 100);
    }
}

#[actix_web::test]
async fn risks_escalate_through_a_batch_as_through_single_writes() {
    let app = spawn_app().await;
    let study = app.study_id(json!({})).await;
    let high = risk(
        &study,
        "E-1",
        json!({"likelihood": 3, "impact": 4, "detectability": 4}),
    );
    let low = risk(&study, "E-2", json!({}));
    let print = app.fingerprint().await;
    let resp = admin_batch(&app, "risks", json!([high, low]), None).await;
    assert_eq!(resp.invalid_fields(), ["X-Change-Reason"]);
    assert_eq!(app.fingerprint().await, print);

    let resp = admin_batch(&app, "risks", json!([high, low]), Some("RBQM sync")).await;
    let answer = resp.ok(200).clone();
    let high_id = answer["items"][0]["id"].as_str().unwrap().to_string();
    let low_id = answer["items"][1]["id"].as_str().unwrap().to_string();
    let row = app.admin_get(&format!("/api/v1/risks/{high_id}")).await;
    assert_eq!(row.ok(200)["score"], 48);
    assert_eq!(row.body["status"], "escalated");
    assert_eq!(row.body["version"], 2);
    let events = app.audit_events(&high_id).await;
    assert_eq!(actions(&events), ["create", "escalate"]);
    assert_eq!(events[0]["reason"], "RBQM sync");
    assert_eq!(events[1]["reason"], "score 48 reached threshold 45");

    // The escalated risk sent as it now is: unchanged. The low one raised to the
    // threshold: updated, then escalated.
    let mut high_now = high.clone();
    high_now["status"] = json!("escalated");
    let mut raised = low.clone();
    raised["likelihood"] = json!(4);
    raised["impact"] = json!(4);
    raised["detectability"] = json!(3);
    let resp = admin_batch(
        &app,
        "risks",
        json!([high_now, raised]),
        Some("monitoring visit"),
    )
    .await;
    assert_eq!(
        results(resp.ok(200)),
        [
            (0, "E-1".into(), "unchanged".into()),
            (1, "E-2".into(), "updated".into())
        ]
    );
    let row = app.admin_get(&format!("/api/v1/risks/{low_id}")).await;
    assert_eq!(row.ok(200)["status"], "escalated");
    assert_eq!(row.body["version"], 3);
    let events = app.audit_events(&low_id).await;
    assert_eq!(actions(&events), ["create", "update", "escalate"]);
    assert_eq!(events[1]["reason"], "monitoring visit");
    assert_eq!(events[2]["reason"], "score 48 reached threshold 45");
    assert_eq!(actions(&app.audit_events(&high_id).await).len(), 2);

    // The item is the whole risk: sent without `status`, it is `open` again, and a score
    // that stays at the threshold does not escalate it again (as with PATCH).
    let resp = admin_batch(&app, "risks", json!([high]), Some("partner reset")).await;
    assert_eq!(results(resp.ok(200)), [(0, "E-1".into(), "updated".into())]);
    let row = app.admin_get(&format!("/api/v1/risks/{high_id}")).await;
    assert_eq!(row.ok(200)["status"], "open");
    assert_eq!(row.body["version"], 3);
}
