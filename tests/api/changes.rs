//! The change feed: every change once, in commit order, scoped like reads, even while
//! writers (one of them slow) run at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::{Value, json};
use trialops::audit::{self, Subject, WriteContext};
use trialops::domain::enums::{AuditAction, EntityType, Role};
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, spawn_app, spawn_app_with};

/// One answer of the feed.
async fn feed(app: &TestApp, token: &str, query: &str) -> (Vec<Value>, i64) {
    let resp = app.get(&format!("/api/v1/changes?{query}"), token).await;
    let body = resp.ok(200);
    (
        body["data"].as_array().unwrap().clone(),
        body["next_after"].as_i64().unwrap(),
    )
}

/// Follows the feed from the start to its end in pages of `limit`.
async fn drain(app: &TestApp, token: &str, extra: &str, limit: usize) -> (Vec<Value>, i64) {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let (items, next) = feed(app, token, &format!("after={after}&limit={limit}{extra}")).await;
        assert!(next >= after, "next_after never goes back");
        after = next;
        if items.is_empty() {
            return (all, after);
        }
        all.extend(items);
    }
}

fn entities(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn the_feed_lists_every_change_in_order_and_resumes_where_it_stopped() {
    let app = spawn_app().await;
    let study = app
        .create_study(json!({"risk_escalation_threshold": 8}))
        .await;
    let study_id = id_of(&study);
    let site = app.create_site(&study_id, json!({})).await;
    let site_id = id_of(&site);
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": "Renamed"}),
    )
    .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{site_id}"))
        .await;
    // A score of 8 reaches the threshold: the create and the escalation are two changes.
    let risk = app
        .admin_post(
            "/api/v1/risks",
            &json!({"study_id": study_id, "title": "Lab", "category": "vendor",
                    "likelihood": 2, "impact": 2, "detectability": 2}),
        )
        .await
        .ok(201)
        .clone();

    let (items, head) = drain(&app, &app.admin_token, "", 2).await;
    // The admin's own client registration comes first; then the writes above.
    let ours: Vec<&Value> = items
        .iter()
        .filter(|i| i["entity_type"] != "client")
        .collect();
    let summary: Vec<(String, String, i64)> = ours
        .iter()
        .map(|i| {
            (
                i["entity_type"].as_str().unwrap().to_string(),
                i["action"].as_str().unwrap().to_string(),
                i["version"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("study", "create", 1),
        ("site", "create", 1),
        ("study", "update", 2),
        ("site", "delete", 2),
        ("risk", "create", 1),
        ("risk", "update", 2),
    ]
    .map(|(t, a, v)| (t.to_string(), a.to_string(), v));
    assert_eq!(summary, expected);

    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one order: {seqs:?}");
    assert_eq!(head, *seqs.last().unwrap());
    assert!(ours[3]["data"].is_null(), "a delete carries no row");
    assert_eq!(ours[2]["data"]["title"], "Renamed");
    assert_eq!(ours[2]["study_id"], study_id.as_str());
    assert_eq!(ours[5]["entity_id"], risk["id"]);
    assert_eq!(ours[5]["data"]["status"], "escalated");
    assert!(ours[0]["occurred_at"].is_string());

    // Nothing new: the same position comes back. A new change is the only item next time.
    let (none, same) = feed(&app, &app.admin_token, &format!("after={head}")).await;
    assert!(none.is_empty());
    assert_eq!(same, head);
    app.admin_patch_ok(
        &format!("/api/v1/studies/{study_id}"),
        &json!({"title": "Again"}),
    )
    .await;
    let (next, _) = feed(&app, &app.admin_token, &format!("after={head}")).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["version"], 3);

    // A type filter, of one or several types.
    let (risks, _) = drain(&app, &app.admin_token, "&entity_type=risk", 50).await;
    assert_eq!(risks.len(), 2);
    let (two, _) = drain(&app, &app.admin_token, "&entity_type=site,risk", 50).await;
    assert_eq!(two.len(), 4);
}

#[actix_web::test]
async fn the_feed_shows_each_role_what_its_reads_reach() {
    let app = spawn_app().await;
    let vendor = app.vendor_id(json!({})).await;
    let other_vendor = app.vendor_id(json!({})).await;
    let a = app.study_id(json!({})).await;
    let b = app.study_id(json!({})).await;
    let site_a1 = app.site_id(&a, json!({})).await;
    let site_a2 = app.site_id(&a, json!({})).await;
    let site_b = app.site_id(&b, json!({})).await;
    let milestone_a = id_of(&app.create_milestone(&a, json!({"vendor_id": vendor})).await);
    let milestone_b = id_of(
        &app.create_milestone(&b, json!({"vendor_id": other_vendor}))
            .await,
    );
    let deviation = |site: &str, study: &str| {
        json!({"study_id": study, "site_id": site, "participant_ref": "P-1",
               "category": "visit_schedule", "description": "Late visit",
               "importance": "not_important", "occurred_on": "2026-03-01",
               "detected_on": "2026-03-02"})
    };
    let deviation_a1 = id_of(
        app.admin_post("/api/v1/deviations", &deviation(&site_a1, &a))
            .await
            .ok(201),
    );
    let deviation_a2 = id_of(
        app.admin_post("/api/v1/deviations", &deviation(&site_a2, &a))
            .await
            .ok(201),
    );
    // A deleted site of study A: its delete carries no row, yet reaches its readers.
    let gone = app.site_id(&a, json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/sites/{gone}")).await;

    let cro = app.token_for(Role::Cro, &[&a], &[], None).await;
    let (seen, _) = drain(&app, &cro, "", 1000).await;
    let expected: BTreeSet<String> = [
        &a,
        &site_a1,
        &site_a2,
        &milestone_a,
        &deviation_a1,
        &deviation_a2,
        &gone,
        &vendor,
        &other_vendor,
    ]
    .map(|s| s.to_string())
    .into();
    assert_eq!(
        entities(&seen),
        expected,
        "a cro sees its studies' rows (and all vendors)"
    );
    assert!(
        seen.iter()
            .any(|i| i["entity_id"] == gone.as_str() && i["action"] == "delete"),
        "and their deletes"
    );

    let site_client = app.token_for(Role::Site, &[], &[&site_a1], None).await;
    let (seen, _) = drain(&app, &site_client, "", 1000).await;
    let expected: BTreeSet<String> = [&a, &site_a1, &deviation_a1].map(|s| s.to_string()).into();
    assert_eq!(
        entities(&seen),
        expected,
        "a site sees itself, its study, its deviations"
    );

    let vendor_client = app.token_for(Role::Vendor, &[], &[], Some(&vendor)).await;
    let (seen, _) = drain(&app, &vendor_client, "", 1000).await;
    let expected: BTreeSet<String> = [&vendor, &milestone_a, &a].map(|s| s.to_string()).into();
    assert_eq!(
        entities(&seen),
        expected,
        "a vendor sees itself and what names it"
    );

    let analyst = app.token_for(Role::Analyst, &[], &[], None).await;
    let (seen, _) = drain(&app, &analyst, "", 1000).await;
    assert!(
        seen.iter().all(|i| i["entity_type"] != "client"),
        "clients are admin business"
    );
    assert!(entities(&seen).contains(&site_b) && entities(&seen).contains(&milestone_b));

    // A position past changes the caller may not see: the feed moves on to the head.
    let (admin_items, head) = drain(&app, &app.admin_token, "", 1000).await;
    let (_, site_head) = drain(&app, &site_client, "", 1000).await;
    assert_eq!(site_head, head);
    assert!(admin_items.len() > 3);

    // Mistakes are named.
    app.get("/api/v1/changes?entity_type=vendor", &site_client)
        .await
        .problem(403);
    app.get("/api/v1/changes?entity_type=sites", &cro)
        .await
        .problem(400);
    app.get("/api/v1/changes?after=-1", &cro).await.problem(400);
    app.get("/api/v1/changes?after=x", &cro).await.problem(400);
    app.get("/api/v1/changes?limit=0", &cro).await.problem(400);
    app.get("/api/v1/changes?limit=1001", &cro)
        .await
        .problem(400);
    app.get("/api/v1/changes", "not-a-token").await.problem(401);
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Integer)]
    version: i32,
}

#[derive(QueryableByName)]
struct Change {
    #[diesel(sql_type = SqlUuid)]
    entity_id: Uuid,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// A write that takes its place in the trail and then takes its time to commit, as a
/// long transaction in production would: the study's title and version change and the
/// audit event is written through the service's own `audit::record`, then the transaction
/// sleeps before it commits.
async fn slow_write(app: &TestApp, study_id: Uuid, round: usize) {
    let mut conn = app.db().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let title = format!("Slow {round}");
        let row: Version = diesel::sql_query(
            "UPDATE studies SET title = $1, version = version + 1, updated_at = now()
             WHERE id = $2 RETURNING version",
        )
        .bind::<Text, _>(&title)
        .bind::<SqlUuid, _>(study_id)
        .get_result(conn)
        .await?;
        let subject = Subject {
            entity_type: EntityType::Study,
            entity_id: study_id,
            study_id: Some(study_id.into()),
            version: Some(row.version),
        };
        audit::record(
            conn,
            &WriteContext::command_line("slow writer"),
            AuditAction::Update,
            subject,
            None,
            Some(&json!({"id": study_id, "title": title, "version": row.version})),
        )
        .await
        .map_err(|_| diesel::result::Error::RollbackTransaction)?;
        diesel::sql_query("SELECT pg_sleep(0.4)")
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
    .unwrap();
}

#[actix_web::test]
async fn a_poller_sees_every_change_exactly_once_while_writers_race() {
    // The poller asks as fast as it can: no rate limit here.
    let app = spawn_app_with(|settings| settings.rate_limit_per_minute = 0).await;
    let study = app.create_study(json!({})).await;
    let study_id = id_of(&study);
    let (_, start) = feed(&app, &app.admin_token, "").await;

    // Poller and writers run on this one task, so a `Cell` is all they share.
    let writers_done = std::cell::Cell::new(false);
    let poller = {
        let done = &writers_done;
        let app = &app;
        async move {
            let mut after = start;
            let mut seen: Vec<(String, i64, i64)> = Vec::new();
            loop {
                let finished = done.get();
                let (items, next) =
                    feed(app, &app.admin_token, &format!("after={after}&limit=7")).await;
                for item in &items {
                    seen.push((
                        item["entity_id"].as_str().unwrap().to_string(),
                        item["version"].as_i64().unwrap(),
                        item["seq"].as_i64().unwrap(),
                    ));
                }
                after = next;
                // Stop only after a poll that began once every writer had committed.
                if finished && items.is_empty() {
                    return seen;
                }
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let writers = async {
        let fast = (0..4).map(|writer| {
            let app = &app;
            let study_id = study_id.clone();
            async move {
                for round in 0..6 {
                    let milestone = app.admin_post("/api/v1/milestones", &json!({"study_id": study_id, "name": format!("M {writer}.{round}"), "kind": "other"}))
                        .await
                        .ok(201)
                        .clone();
                    app.admin_patch_ok(&format!("/api/v1/milestones/{}", id_of(&milestone)), &json!({"notes": "moved"})).await;
                }
            }
        });
        let slow = async {
            for round in 0..3 {
                slow_write(&app, study_id.parse().unwrap(), round).await;
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        };
        futures_util::future::join(futures_util::future::join_all(fast), slow).await;
        writers_done.set(true);
    };
    let (seen, ()) = futures_util::future::join(poller, writers).await;

    let mut counts: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for (entity, version, _) in &seen {
        *counts.entry((entity.clone(), *version)).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "seen more than once: {twice:?}");

    let mut conn = app.db().await;
    let committed: Vec<Change> = diesel::sql_query(
        "SELECT entity_id, entity_version::bigint AS version FROM audit_events
         WHERE id NOT IN (SELECT event_id FROM audit_seals WHERE seq <= $1)",
    )
    .bind::<BigInt, _>(start)
    .load(&mut conn)
    .await
    .unwrap();
    let committed: BTreeSet<(String, i64)> = committed
        .into_iter()
        .map(|c| (c.entity_id.to_string(), c.version))
        .collect();
    // 4 writers x 6 rounds x (create + update), and 3 slow updates of the study.
    assert_eq!(committed.len(), 4 * 6 * 2 + 3);
    let seen_set: BTreeSet<(String, i64)> = counts.into_keys().collect();
    let missed: Vec<_> = committed.difference(&seen_set).collect();
    assert!(missed.is_empty(), "missed: {missed:?}");
    assert_eq!(seen_set, committed);
    let seqs: Vec<i64> = seen.iter().map(|s| s.2).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[actix_web::test]
async fn the_site_a_change_concerns_is_covered_by_the_hash_chain() {
    use diesel_async::SimpleAsyncConnection;
    let app = spawn_app().await;
    let study_id = app.study_id(json!({})).await;
    let site_id = app.site_id(&study_id, json!({})).await;
    app.admin_get("/api/v1/audit-events/verify").await.ok(200);
    // Moving an event out of a site's feed behind the service's back breaks the chain.
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
         UPDATE audit_events SET site_id = NULL WHERE entity_id = '{site_id}';
         ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;"
    ))
    .await
    .unwrap();
    let check = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(check.ok(200)["valid"], false);
    assert!(check.body["first_broken_seq"].is_i64());
}

#[actix_web::test]
async fn a_batch_item_that_changes_nothing_is_not_a_change() {
    let app = spawn_app().await;
    let study_id = app.study_id(json!({})).await;
    let batch = json!({"items": [
        {"external_id": "CTMS-S-1", "study_id": study_id, "site_number": "101", "name": "Charité", "country": "DE"},
        {"external_id": "CTMS-S-2", "study_id": study_id, "site_number": "102", "name": "AKH", "country": "AT"}
    ]});
    app.admin_post("/api/v1/sites/batch", &batch).await.ok(200);
    let (_, head) = drain(&app, &app.admin_token, "", 1000).await;

    // Once more, with one site renamed: one change in the feed, not two.
    let mut again = batch.clone();
    again["items"][1]["name"] = json!("AKH Wien");
    let answer = app
        .admin_post("/api/v1/sites/batch", &again)
        .await
        .ok(200)
        .clone();
    assert_eq!(answer["items"][0]["result"], "unchanged");
    assert_eq!(answer["items"][1]["result"], "updated");
    let (items, _) = feed(&app, &app.admin_token, &format!("after={head}")).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["entity_id"], answer["items"][1]["id"]);
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[0]["data"]["name"], "AKH Wien");
}
