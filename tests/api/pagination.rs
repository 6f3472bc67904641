//! Lists (contract section 5): keyset pagination with opaque cursors, `limit`,
//! `updated_since`, `include_deleted` and the per-resource filters.

// Test support code panics on anything unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, column, id_of, spawn_app};

fn ids(page: &Value) -> Vec<String> {
    column(page, "id")
}

/// `path?query` with every value form-encoded.
fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    format!("{path}?{}", serde_urlencoded::to_string(params).unwrap())
}

/// Follows `next_cursor` from the first page to the last; answers every page's ids.
async fn walk(app: &TestApp, path: &str, limit: usize) -> Vec<Vec<String>> {
    let limit = limit.to_string();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit", limit.as_str())];
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let resp = app.admin_get(&with_query(path, &params)).await;
        let page = resp.ok(200);
        pages.push(ids(page));
        assert!(pages.len() <= 1000, "the walk does not end");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                return pages;
            }
        }
    }
}

async fn create_studies(app: &TestApp, n: usize) -> Vec<String> {
    let mut created = Vec::new();
    for _ in 0..n {
        created.push(app.study_id(json!({})).await);
    }
    created
}

#[actix_web::test]
async fn a_walk_returns_every_row_once_in_id_order() {
    let app = spawn_app().await;
    let created = create_studies(&app, 25).await;
    let mut sorted = created.clone();
    sorted.sort();

    let pages = walk(&app, "/api/v1/studies", 7).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7, 7, 4]);
    let seen: Vec<String> = pages.concat();
    assert_eq!(seen, sorted, "every id exactly once, ascending");
    // UUIDv7: id order is creation order.
    assert_eq!(seen, created);

    // When the rows divide evenly the last full page already says there is no more: no
    // empty page at the end.
    let pages = walk(&app, "/api/v1/studies", 5).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [5, 5, 5, 5, 5]);
    assert_eq!(pages.concat(), sorted);

    // One page holds everything.
    let pages = walk(&app, "/api/v1/studies", 1000).await;
    assert_eq!(pages, [sorted.clone()]);
    let default = app.admin_get("/api/v1/studies").await;
    assert_eq!(ids(default.ok(200)), sorted);
    assert!(default.body["next_cursor"].is_null());
}

#[actix_web::test]
async fn a_walk_sees_every_existing_row_once_while_rows_are_inserted() {
    let app = spawn_app().await;
    let existing = create_studies(&app, 20).await;

    let walking = Cell::new(true);
    let inserted_during_walk = Cell::new(0usize);
    let walker = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/api/v1/studies?limit=3".to_string();
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = app.admin_json(&path).await;
            seen.extend(ids(&page));
            // Let the inserter in between every two pages.
            tokio::time::sleep(Duration::from_millis(5)).await;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(seen.len() < 1000, "the walk does not end");
        }
        walking.set(false);
        seen
    };
    let inserter = async {
        let mut inserted = Vec::new();
        while walking.get() && inserted.len() < 40 {
            inserted.push(app.study_id(json!({})).await);
            if walking.get() {
                inserted_during_walk.set(inserted_during_walk.get() + 1);
            }
        }
        inserted
    };
    let (seen, inserted) = tokio::join!(walker, inserter);

    assert!(
        inserted_during_walk.get() > 0,
        "no insert overlapped the walk"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in the walk: {seen:?}");
    for id in &existing {
        assert!(seen.contains(id), "{id} existed before the walk, not seen");
    }
    let known: HashSet<&String> = existing.iter().chain(&inserted).collect();
    for id in &seen {
        assert!(known.contains(id), "{id} is no study of this test");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ascending id order");
}

#[actix_web::test]
async fn bad_limits_and_cursors_are_400() {
    let app = spawn_app().await;
    create_studies(&app, 3).await;
    for path in ["/api/v1/studies", "/api/v1/sites"] {
        for limit in ["0", "1001", "-1", "abc", "", "1.5", "99999999999999999999"] {
            let resp = app.admin_get(&with_query(path, &[("limit", limit)])).await;
            assert_eq!(resp.status, 400, "{path} limit={limit:?}: {}", resp.text);
            resp.problem(400);
        }
        for limit in ["1", "1000"] {
            let resp = app.admin_get(&with_query(path, &[("limit", limit)])).await;
            assert_eq!(resp.status, 200, "{path} limit={limit}: {}", resp.text);
        }

        let valid = URL_SAFE_NO_PAD.encode(format!("k1:{}", Uuid::now_v7()));
        let ok = app
            .admin_get(&with_query(path, &[("cursor", &valid)]))
            .await;
        assert_eq!(ok.status, 200, "{path} a well-formed cursor: {}", ok.text);
        let bad_cursors = [
            "garbage".to_string(),
            "!!!".to_string(),
            String::new(),
            URL_SAFE_NO_PAD.encode("hello world"),
            URL_SAFE_NO_PAD.encode("k1:not-a-uuid"),
            URL_SAFE_NO_PAD.encode(format!("k2:{}", Uuid::now_v7())),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x01]),
            format!("{valid}x"),
        ];
        for cursor in &bad_cursors {
            let resp = app
                .admin_get(&with_query(path, &[("cursor", cursor)]))
                .await;
            assert_eq!(resp.status, 400, "{path} cursor={cursor:?}: {}", resp.text);
            resp.problem(400);
        }
    }
}

fn time_of(value: &Value, field: &str) -> DateTime<Utc> {
    serde_json::from_value(value[field].clone()).expect("an RFC 3339 time")
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[actix_web::test]
async fn updated_since_lists_only_rows_changed_since() {
    let app = spawn_app().await;
    let created: Vec<Value> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(app.create_study(json!({})).await);
        }
        out
    };
    let last_created = created
        .iter()
        .map(|s| time_of(s, "updated_at"))
        .max()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let target = id_of(&created[1]);
    let patched = app
        .admin_patch_ok(
            &format!("/api/v1/studies/{target}"),
            &json!({"title": "changed"}),
        )
        .await;
    let changed_at = time_of(&patched, "updated_at");
    assert!(changed_at > last_created);
    let between = last_created + (changed_at - last_created) / 2;

    let list = |since: String| {
        let app = &app;
        async move {
            let resp = app
                .admin_get(&with_query("/api/v1/studies", &[("updated_since", &since)]))
                .await;
            assert_eq!(resp.status, 200, "updated_since={since}: {}", resp.text);
            ids(&resp.body)
        }
    };
    let formatted = rfc3339(between);
    assert!(formatted.ends_with('Z'), "{formatted}");
    assert_eq!(list(formatted).await, std::slice::from_ref(&target));
    // The same instant with an offset (its `+` URL-encoded).
    let offset = between
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Micros, false);
    assert!(offset.ends_with("+02:00"), "{offset}");
    assert_eq!(list(offset).await, std::slice::from_ref(&target));
    // "Since" includes the instant itself.
    assert_eq!(
        list(rfc3339(changed_at)).await,
        std::slice::from_ref(&target)
    );
    // Before everything: all of them.
    let all: BTreeSet<String> = created.iter().map(id_of).collect();
    let since_start: BTreeSet<String> = list(rfc3339(time_of(&created[0], "created_at")))
        .await
        .into_iter()
        .collect();
    assert_eq!(since_start, all);
    // In the future: none.
    assert!(
        list(rfc3339(Utc::now() + chrono::Duration::days(1)))
            .await
            .is_empty()
    );

    for bad in [
        "yesterday",
        "2026-03-01",
        "2026-13-01T00:00:00Z",
        "2026-03-01T09:30:00",
        "1740000000",
        "",
    ] {
        let resp = app
            .admin_get(&with_query("/api/v1/studies", &[("updated_since", bad)]))
            .await;
        assert_eq!(resp.status, 400, "updated_since={bad:?}: {}", resp.text);
        resp.problem(400);
    }
    // A raw `+` in a query string is a space: not a time.
    let raw = app
        .admin_get("/api/v1/studies?updated_since=2026-03-01T09:30:00+00:00")
        .await;
    raw.problem(400);
}

#[actix_web::test]
async fn include_deleted_shows_soft_deleted_rows() {
    let app = spawn_app().await;
    let kept = app.study_id(json!({})).await;
    let doomed = app.study_id(json!({})).await;
    let site_study = app.study_id(json!({})).await;
    let kept_site = app.site_id(&site_study, json!({})).await;
    let doomed_site = app.site_id(&site_study, json!({})).await;
    app.admin_delete_ok(&format!("/api/v1/studies/{doomed}"))
        .await;
    app.admin_delete_ok(&format!("/api/v1/sites/{doomed_site}"))
        .await;

    for (collection, kept, doomed) in [
        ("/api/v1/studies", &kept, &doomed),
        ("/api/v1/sites", &kept_site, &doomed_site),
    ] {
        for path in [
            collection.to_string(),
            format!("{collection}?include_deleted=false"),
        ] {
            let list = app.admin_get(&path).await;
            let listed = ids(list.ok(200));
            assert!(listed.contains(kept), "{path}");
            assert!(!listed.contains(doomed), "{path} shows a deleted row");
        }

        let list = app
            .admin_get(&format!("{collection}?include_deleted=true"))
            .await;
        let rows = list.ok(200)["data"].as_array().unwrap();
        let row = |id: &str| {
            rows.iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("{collection}: {id} missing with include_deleted"))
        };
        let deleted_at = time_of(row(doomed), "deleted_at");
        assert!(deleted_at <= Utc::now() + chrono::Duration::minutes(1));
        assert!(row(kept)["deleted_at"].is_null());

        app.admin_get(&format!("{collection}/{doomed}"))
            .await
            .problem(404);
        for bad in ["maybe", "yes please"] {
            let resp = app
                .admin_get(&with_query(collection, &[("include_deleted", bad)]))
                .await;
            assert_eq!(resp.status, 400, "include_deleted={bad:?}: {}", resp.text);
            resp.problem(400);
        }
    }
}

#[actix_web::test]
async fn filters_narrow_lists_and_bad_values_are_400() {
    let app = spawn_app().await;
    let x = id_of(
        &app.create_study(json!({"phase": "phase3", "status": "recruiting"}))
            .await,
    );
    let y = app.study_id(json!({"phase": "phase1"})).await;
    let z = app.study_id(json!({"phase": "phase3"})).await;
    let x_active = app.site_id(&x, json!({"status": "activated"})).await;
    let x_planned = app.site_id(&x, json!({})).await;
    let y_active = app.site_id(&y, json!({"status": "activated"})).await;

    let listed = |query: String| {
        let app = &app;
        async move {
            let resp = app.admin_get(&query).await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text);
            ids(&resp.body).into_iter().collect::<BTreeSet<String>>()
        }
    };
    let set = |items: &[&String]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    assert_eq!(
        listed(format!("/api/v1/sites?study_id={x}")).await,
        set(&[&x_active, &x_planned])
    );
    assert_eq!(
        listed("/api/v1/sites?status=activated".into()).await,
        set(&[&x_active, &y_active])
    );
    assert_eq!(
        listed(format!("/api/v1/sites?study_id={x}&status=activated")).await,
        set(&[&x_active])
    );
    assert_eq!(
        listed(format!("/api/v1/sites?study_id={z}")).await,
        set(&[])
    );
    assert_eq!(
        listed("/api/v1/studies?phase=phase3".into()).await,
        set(&[&x, &z])
    );
    assert_eq!(
        listed("/api/v1/studies?phase=phase3&status=recruiting".into()).await,
        set(&[&x])
    );
    assert_eq!(
        listed("/api/v1/studies?phase=phase4".into()).await,
        set(&[])
    );
    // Filters and pagination together.
    let first = app.admin_get("/api/v1/studies?phase=phase3&limit=1").await;
    assert_eq!(ids(first.ok(200)), std::slice::from_ref(&x));
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .admin_get(&format!(
            "/api/v1/studies?phase=phase3&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(second.ok(200)), std::slice::from_ref(&z));
    assert!(second.body["next_cursor"].is_null());

    for bad in [
        "/api/v1/sites?status=open",
        "/api/v1/sites?status=Activated",
        "/api/v1/sites?status=",
        "/api/v1/sites?study_id=not-a-uuid",
        "/api/v1/studies?phase=phase9",
        "/api/v1/studies?phase=PHASE3",
        "/api/v1/studies?status=active",
        "/api/v1/studies?phase=phase3&phase=phase1",
    ] {
        let resp = app.admin_get(bad).await;
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text);
        resp.problem(400);
    }
}
