//! CSV for BI tools (contract section 7): `Accept: text/csv` on every list answers the rows
//! a JSON walk of the same filters and scope would, as RFC 4180 CSV with a header row,
//! streamed however many rows there are. Errors stay problem+json.

// Test support code panics on anything unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, Utc};
use diesel_async::SimpleAsyncConnection;
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, spawn_app};

const CSV: &str = "text/csv";

/// The name every CSV-hostile character is in: a comma, quotes, a line break (CRLF and
/// LF), non-ASCII letters and an emoji.
const HOSTILE: &str = "Müller, \"Labor\" Zürich\r\nZweite Zeile ✓ 🧪";

async fn get_as(app: &TestApp, path: &str, token: &str, accept: &str) -> Resp {
    app.send(app.request("GET", path, token).header("accept", accept))
        .await
}

/// `path` with more query parameters, whether it has some already or not.
fn with_params(path: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap();
    match (query.is_empty(), path.contains('?')) {
        (true, _) => path.to_string(),
        (false, true) => format!("{path}&{query}"),
        (false, false) => format!("{path}?{query}"),
    }
}

/// The header and the records of a CSV answer, parsed by the `csv` crate's reader.
fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records().map(|record| {
        record
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let header = records.next().expect("a header row");
    (header, records.collect())
}

/// The field names of an object in the order the JSON text has them.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(KeysVisitor)
    }
}

#[derive(Deserialize)]
struct PageKeys {
    data: Vec<Keys>,
}

/// A JSON walk: the status of the first refusal (or 200), the field order of the rows,
/// and every row.
async fn json_walk(app: &TestApp, path: &str, token: &str) -> (u16, Vec<String>, Vec<Value>) {
    let mut rows = Vec::new();
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // The curve, the portfolio and the webhooks (one page) are not paged, and refuse
        // parameters they do not take.
        let unpaged = ["/enrollment-curve", "/portfolio", "/webhooks"];
        let mut params = if unpaged.iter().any(|end| path.ends_with(end)) {
            vec![]
        } else {
            vec![("limit", "1000")]
        };
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let resp = app.get(&with_params(path, &params), token).await;
        if resp.status != 200 {
            return (resp.status, keys, rows);
        }
        if let Some(first) = serde_json::from_str::<PageKeys>(&resp.text)
            .unwrap()
            .data
            .into_iter()
            .next()
        {
            keys = first.0;
        }
        rows.extend(resp.body["data"].as_array().unwrap().iter().cloned());
        match resp.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return (200, keys, rows),
        }
    }
}

/// A cell against the JSON value it came from: text as is, numbers and booleans as JSON,
/// null as empty, objects and arrays as JSON text.
#[track_caller]
fn assert_cell(cell: &str, value: Option<&Value>, what: &str) {
    match value {
        None | Some(Value::Null) => assert_eq!(cell, "", "{what}"),
        Some(Value::String(text)) => assert_eq!(cell, text, "{what}"),
        Some(nested @ (Value::Object(_) | Value::Array(_))) => {
            assert_eq!(
                &serde_json::from_str::<Value>(cell).unwrap(),
                nested,
                "{what}"
            )
        }
        Some(other) => assert_eq!(cell, other.to_string(), "{what}"),
    }
}

/// The CSV answer of `path` holds exactly the rows of its JSON walk, in the same order,
/// with the JSON field order as its header; a refused JSON walk is refused alike, as
/// problem+json. Answers the parsed records.
async fn assert_csv_is_the_json_walk(app: &TestApp, path: &str, token: &str) -> Vec<Vec<String>> {
    let (status, keys, rows) = json_walk(app, path, token).await;
    let resp = get_as(app, path, token, CSV).await;
    if status != 200 {
        resp.problem(status);
        return Vec::new();
    }
    assert_eq!(resp.status, 200, "{path}: {}", resp.text);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8"),
        "{path}"
    );
    // Answers with a validator vary on more (Authorization, Accept-Encoding, Origin).
    let vary = resp.header("vary").unwrap_or_default();
    assert!(
        vary.split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("accept")),
        "{path}: {vary}"
    );
    let (header, records) = parse(&resp.text);
    if !rows.is_empty() {
        assert_eq!(header, keys, "{path}: the header is the JSON field order");
    }
    assert_eq!(records.len(), rows.len(), "{path}: {}", resp.text);
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(record.len(), header.len(), "{path}");
        for (column, cell) in header.iter().zip(record) {
            if column == "as_of" {
                continue; // the time of the read: two reads, two times
            }
            assert_cell(cell, row.get(column), &format!("{path} {column}"));
        }
    }
    records
}

fn monday(weeks_ago: i64) -> String {
    let today = Utc::now().date_naive();
    let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (this_monday - Duration::weeks(weeks_ago)).to_string()
}

/// Two studies (A and B), each with a vendor, a site, a milestone, a budget line and an
/// expense, a risk, a deviation and an enrollment week, with hostile text wherever text
/// goes.
struct World {
    studies: [String; 2],
    sites: [String; 2],
    vendors: [String; 2],
}

async fn world(app: &TestApp) -> World {
    let mut studies = Vec::new();
    let mut sites = Vec::new();
    let mut vendors = Vec::new();
    for (i, letter) in ["A", "B"].iter().enumerate() {
        let study = app
            .create_study(
                json!({"title": format!("{letter}: {HOSTILE}"), "therapeutic_area": HOSTILE}),
            )
            .await;
        let study_id = study["id"].as_str().unwrap().to_string();
        let vendor = app
            .create_vendor(
                json!({"name": format!("{letter} {HOSTILE}"), "contact_email": "lab@example.com"}),
            )
            .await;
        let vendor_id = vendor["id"].as_str().unwrap().to_string();
        let site = app
            .create_site(
                &study_id,
                json!({"name": HOSTILE, "principal_investigator": "Dr. Łukasz \"Luke\" Nowak"}),
            )
            .await;
        let site_id = site["id"].as_str().unwrap().to_string();
        app.create_milestone(
            &study_id,
            json!({"vendor_id": vendor_id, "notes": HOSTILE, "baseline_date": "2026-01-10", "forecast_date": "2026-01-20"}),
        )
        .await;
        let line = app.admin_post("/api/v1/budget-lines", &json!({"study_id": study_id, "vendor_id": vendor_id, "category": "lab", "description": HOSTILE, "planned_amount": "1234.50"}))
            .await;
        app.admin_post("/api/v1/expenses", &json!({"budget_line_id": line.ok(201)["id"], "amount": "10.05", "incurred_on": "2026-01-05", "description": HOSTILE}))
        .await
        .ok(201);
        app.admin_post("/api/v1/risks", &json!({"study_id": study_id, "site_id": site_id, "vendor_id": vendor_id, "title": HOSTILE,
                    "category": "vendor", "likelihood": 4, "impact": 4, "detectability": 3}))
        .await
        .ok(201);
        app.admin_post("/api/v1/deviations", &json!({"study_id": study_id, "site_id": site_id, "participant_ref": format!("DE-00{i}-0042"),
                    "category": "visit_schedule", "description": HOSTILE, "importance": "important",
                    "occurred_on": "2026-03-01", "detected_on": "2026-03-02"}))
        .await
        .ok(201);
        app.send(
            app.request("PUT", &format!("/api/v1/sites/{site_id}/enrollment/{}", monday(1)), &app.admin_token)
                .json(&json!({"screened": 5, "screen_failed": 1, "enrolled": 4, "discontinued": 0, "completed": 0})),
        )
        .await
        .ok(201);
        studies.push(study_id);
        sites.push(site_id);
        vendors.push(vendor_id);
    }
    World {
        studies: studies.try_into().unwrap(),
        sites: sites.try_into().unwrap(),
        vendors: vendors.try_into().unwrap(),
    }
}

/// Every collection path whose list the served OpenAPI document says answers CSV.
async fn csv_lists(app: &TestApp) -> BTreeSet<String> {
    let doc = app.admin_get("/api-docs/openapi.json").await;
    let mut paths = BTreeSet::new();
    for (path, item) in doc.ok(200)["paths"].as_object().unwrap() {
        if item["get"]["responses"]["200"]["content"]["text/csv"].is_object() {
            paths.insert(path.clone());
        }
    }
    paths
}

#[actix_web::test]
async fn hostile_text_is_quoted_per_rfc_4180_and_comes_back_intact() {
    let app = spawn_app().await;
    let vendor = app.create_vendor(json!({"name": HOSTILE})).await;

    let resp = get_as(&app, "/api/v1/vendors", &app.admin_token, CSV).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    // Quoted because of the comma, quotes doubled, the line break kept inside the quotes;
    // every record ends in CRLF, the text is UTF-8.
    let quoted = "\"Müller, \"\"Labor\"\" Zürich\r\nZweite Zeile ✓ 🧪\"";
    assert!(resp.text.contains(quoted), "{}", resp.text);
    assert!(resp.text.starts_with("id,external_id,name,kind,status,"));
    assert!(resp.text.ends_with("\r\n"));
    assert_eq!(
        resp.text.matches("\r\n").count(),
        3,
        "header, row (and the one inside the name)"
    );
    let (header, records) = parse(&resp.text);
    let name = header.iter().position(|c| c == "name").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0][0], vendor["id"].as_str().unwrap());
    assert_eq!(records[0][name], HOSTILE);
    let deleted_at = header.iter().position(|c| c == "deleted_at").unwrap();
    assert_eq!(records[0][deleted_at], "", "null is an empty cell");

    // A nested value (the audit event's `changes`) is one cell of compact JSON.
    let path = format!(
        "/api/v1/audit-events?entity_id={}",
        vendor["id"].as_str().unwrap()
    );
    let records = assert_csv_is_the_json_walk(&app, &path, &app.admin_token).await;
    assert_eq!(records.len(), 1);
    let resp = get_as(&app, &path, &app.admin_token, CSV).await;
    let (header, records) = parse(&resp.text);
    let changes = header.iter().position(|c| c == "changes").unwrap();
    let changes: Value = serde_json::from_str(&records[0][changes]).unwrap();
    assert_eq!(changes["name"]["new"], HOSTILE);
    assert!(!resp.text.contains("\": "), "compact JSON: {}", resp.text);
}

#[actix_web::test]
async fn every_list_answers_csv_with_the_rows_of_its_json_walk() {
    let app = spawn_app().await;
    let world = world(&app).await;
    let a = &world.studies[0];

    let lists = csv_lists(&app).await;
    let expected: BTreeSet<String> = [
        "studies",
        "sites",
        "vendors",
        "milestones",
        "budget-lines",
        "expenses",
        "risks",
        "deviations",
        "enrollment",
        "audit-events",
        "clients",
    ]
    .iter()
    .map(|name| format!("/api/v1/{name}"))
    .collect();
    assert!(
        expected.is_subset(&lists),
        "lists without CSV: {:?}",
        expected.difference(&lists).collect::<Vec<_>>()
    );

    // Collections (paths with an `{id}` are tested with their own).
    for path in lists.iter().filter(|path| !path.contains('{')) {
        let records = assert_csv_is_the_json_walk(&app, path, &app.admin_token).await;
        if expected.contains(path) {
            assert!(!records.is_empty(), "{path} has rows in this world");
        }
    }
    // With filters: the same filter gives the same rows.
    for path in [
        format!("/api/v1/sites?study_id={a}"),
        format!(
            "/api/v1/milestones?study_id={a}&vendor_id={}",
            world.vendors[0]
        ),
        format!("/api/v1/budget-lines?study_id={a}"),
        format!("/api/v1/expenses?study_id={a}&currency=EUR"),
        format!("/api/v1/risks?study_id={a}&min_score=10"),
        format!("/api/v1/deviations?site_id={}", world.sites[0]),
        format!("/api/v1/enrollment?study_id={a}&from={}", monday(4)),
        format!("/api/v1/audit-events?study_id={a}&entity_type=risk"),
        "/api/v1/studies?phase=phase2".to_string(),
        "/api/v1/vendors?kind=cro&include_deleted=true".to_string(),
        "/api/v1/clients?include_deleted=true".to_string(),
    ] {
        let records = assert_csv_is_the_json_walk(&app, &path, &app.admin_token).await;
        assert!(!records.is_empty(), "{path} has rows in this world");
    }
}

#[actix_web::test]
async fn a_scoped_client_gets_only_its_own_rows_as_csv() {
    let app = spawn_app().await;
    let world = world(&app).await;
    let [a, b] = &world.studies;
    let [a1, b1] = &world.sites;
    let tokens = [
        ("cro of A", app.token_for(Role::Cro, &[a], &[], None).await),
        ("site A1", app.token_for(Role::Site, &[], &[a1], None).await),
        (
            "vendor of A",
            app.token_for(Role::Vendor, &[], &[], Some(&world.vendors[0]))
                .await,
        ),
        (
            "analyst",
            app.token_for(Role::Analyst, &[], &[], None).await,
        ),
    ];
    let lists = csv_lists(&app).await;
    for (who, token) in &tokens {
        for path in lists.iter().filter(|path| !path.contains('{')) {
            // Refused (audit events, clients) alike, or the same rows as the JSON walk.
            let records = assert_csv_is_the_json_walk(&app, path, token).await;
            if *who == "analyst" {
                continue;
            }
            // Nothing of study B's world in any cell of a scoped client's export (vendors
            // are reference data: only a vendor client is limited to its own).
            let mut foreign = vec![b, b1];
            if *who == "vendor of A" {
                foreign.push(&world.vendors[1]);
            }
            for record in &records {
                for foreign in &foreign {
                    assert!(
                        !record.iter().any(|cell| cell == *foreign),
                        "{who} {path}: {record:?}"
                    );
                }
            }
        }
    }
    // Spelled out for the site client: its own site and its own rows only.
    let site_token = &tokens[1].1;
    let resp = get_as(&app, "/api/v1/sites", site_token, CSV).await;
    let (_, records) = parse(&resp.text);
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][0], a1);
    let resp = get_as(&app, "/api/v1/deviations", site_token, CSV).await;
    let (header, records) = parse(&resp.text);
    let site = header.iter().position(|c| c == "site_id").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][site], a1);
}

/// Inserts `n` vendors in one statement; every third is `active`.
async fn insert_vendors(app: &TestApp, n: usize) {
    let mut conn = app.db().await;
    conn.batch_execute(&format!(
        "INSERT INTO vendors (id, name, kind, status, country)
         SELECT md5('vendor ' || g)::uuid, 'Vendor ' || g || ', \"bulk\"', 'central_lab',
                CASE WHEN g % 3 = 0 THEN 'active' ELSE 'onboarding' END, 'DE'
         FROM generate_series(1, {n}) AS g"
    ))
    .await
    .unwrap();
}

#[actix_web::test]
async fn an_export_of_more_rows_than_one_page_arrives_complete_and_in_order() {
    let app = spawn_app().await;
    insert_vendors(&app, 2500).await;

    let (_, _, rows) = json_walk(&app, "/api/v1/vendors", &app.admin_token).await;
    let walked: Vec<&str> = rows.iter().map(|row| row["id"].as_str().unwrap()).collect();
    assert_eq!(walked.len(), 2500);

    let resp = get_as(&app, "/api/v1/vendors", &app.admin_token, CSV).await;
    assert_eq!(resp.status, 200);
    // Streamed: chunked, no length known up front.
    assert_eq!(resp.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(resp.header("content-length"), None);
    let (_, records) = parse(&resp.text);
    let ids: Vec<&str> = records.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, walked, "every row once, in id order");
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(BTreeSet::from_iter(&ids).len(), 2500);

    // `limit` caps the whole export, across internal pages.
    let resp = get_as(&app, "/api/v1/vendors?limit=1000", &app.admin_token, CSV).await;
    assert_eq!(parse(&resp.text).1.len(), 1000);
    // `cursor` starts the export after a JSON page; without `limit` it runs to the end.
    let first = app.admin_get("/api/v1/vendors?limit=700").await;
    let cursor = first.ok(200)["next_cursor"].as_str().unwrap().to_string();
    let path = with_params("/api/v1/vendors", &[("cursor", &cursor)]);
    let resp = get_as(&app, &path, &app.admin_token, CSV).await;
    let (_, records) = parse(&resp.text);
    let rest: Vec<&str> = records.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rest, walked[700..]);
    let path = with_params("/api/v1/vendors", &[("cursor", &cursor), ("limit", "999")]);
    let resp = get_as(&app, &path, &app.admin_token, CSV).await;
    let (_, records) = parse(&resp.text);
    let some: Vec<&str> = records.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(some, walked[700..1699]);
    // A filter holds on every internal page.
    let records =
        assert_csv_is_the_json_walk(&app, "/api/v1/vendors?status=active", &app.admin_token).await;
    assert_eq!(records.len(), 833);
}

#[actix_web::test]
async fn errors_stay_problem_json_when_csv_is_asked_for() {
    let app = spawn_app().await;
    let analyst = app.token_for(Role::Analyst, &[], &[], None).await;
    for (path, token, status) in [
        ("/api/v1/risks?status=bogus", app.admin_token.as_str(), 400),
        ("/api/v1/studies?limit=0", &app.admin_token, 400),
        ("/api/v1/sites?limit=1001", &app.admin_token, 400),
        ("/api/v1/vendors?cursor=nope", &app.admin_token, 400),
        ("/api/v1/audit-events?cursor=nope", &app.admin_token, 400),
        (
            "/api/v1/expenses?incurred_from=20260101",
            &app.admin_token,
            400,
        ),
        (
            "/api/v1/enrollment?from=2026-02-02&to=2026-01-05",
            &app.admin_token,
            400,
        ),
        ("/api/v1/deviations", "not-a-token", 401),
        ("/api/v1/audit-events", &analyst, 403),
        ("/api/v1/clients", &analyst, 403),
    ] {
        let resp = get_as(&app, path, token, CSV).await;
        resp.problem(status);
    }
}

#[actix_web::test]
async fn an_empty_collection_is_just_the_header_row() {
    let app = spawn_app().await;
    let doc = app.admin_get("/api-docs/openapi.json").await;
    for name in ["risks", "deviations", "milestones", "expenses"] {
        let path = format!("/api/v1/{name}");
        let resp = get_as(&app, &path, &app.admin_token, CSV).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        // Exactly the header the OpenAPI document shows as the example.
        let example =
            &doc.body["paths"][&path]["get"]["responses"]["200"]["content"]["text/csv"]["example"];
        assert_eq!(resp.text, example.as_str().unwrap(), "{path}");
        assert_eq!(resp.text.matches("\r\n").count(), 1);
        assert!(resp.text.starts_with("id,"));
    }
}

#[actix_web::test]
async fn csv_only_when_the_client_prefers_it() {
    let app = spawn_app().await;
    app.create_study(json!({})).await;
    for (accept, csv) in [
        ("text/csv", true),
        ("text/csv; charset=utf-8", true),
        ("application/json;q=0.5, text/csv", true),
        ("text/csv, */*;q=0.8", true),
        ("*/*", false),
        ("application/json", false),
        ("application/json, text/csv", false),
        ("text/csv;q=0.5, application/json", false),
        ("text/csv;q=0", false),
    ] {
        let resp = get_as(&app, "/api/v1/studies", &app.admin_token, accept).await;
        assert_eq!(resp.status, 200, "{accept}");
        assert_eq!(resp.header("vary").as_deref(), Some("Accept"));
        let content_type = resp.header("content-type").unwrap();
        if csv {
            assert_eq!(content_type, "text/csv; charset=utf-8", "{accept}");
            assert_eq!(parse(&resp.text).1.len(), 1, "{accept}");
        } else {
            assert_eq!(content_type, "application/json", "{accept}");
            assert_eq!(resp.body["data"].as_array().unwrap().len(), 1, "{accept}");
        }
    }
}

#[actix_web::test]
async fn the_portfolio_and_the_enrollment_curve_answer_csv_too() {
    let app = spawn_app().await;
    let world = world(&app).await;
    let lists = csv_lists(&app).await;
    assert!(lists.contains("/api/v1/metrics/portfolio"), "{lists:?}");
    assert!(
        lists.contains("/api/v1/studies/{id}/enrollment-curve"),
        "{lists:?}"
    );

    let rows =
        assert_csv_is_the_json_walk(&app, "/api/v1/metrics/portfolio", &app.admin_token).await;
    assert_eq!(rows.len(), world.studies.len());
    let study = &world.studies[0];
    let cro = app.token_for(Role::Cro, &[study.as_str()], &[], None).await;
    let rows = assert_csv_is_the_json_walk(&app, "/api/v1/metrics/portfolio", &cro).await;
    assert_eq!(rows.len(), 1, "a cro's portfolio is its studies");
    let curve = format!("/api/v1/studies/{study}/enrollment-curve");
    let rows = assert_csv_is_the_json_walk(&app, &curve, &app.admin_token).await;
    assert!(!rows.is_empty());

    // A study's metrics: one `figure,value` row per figure, by its JSON path.
    let path = format!("/api/v1/studies/{study}/metrics");
    let json = app.admin_json(&path).await;
    let resp = get_as(&app, &path, &app.admin_token, CSV).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let (header, records) = parse(&resp.text);
    assert_eq!(header, ["figure", "value"]);
    assert!(records.len() > 30, "{}", resp.text);
    for record in &records {
        let (figure, cell) = (&record[0], &record[1]);
        if figure == "as_of" {
            continue;
        }
        // Follow the path through the JSON answer: `a.b[2][3]`.
        let mut value = &json;
        for part in figure.split('.') {
            let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
            value = &value[key];
            for index in indexes.split('[').filter(|i| !i.is_empty()) {
                value = &value[index.trim_end_matches(']').parse::<usize>().unwrap()];
            }
        }
        assert_cell(cell, Some(value), figure);
    }
    assert!(
        records
            .iter()
            .any(|r| r[0] == "enrollment.target_enrollment" || r[0].starts_with("enrollment."))
    );
    get_as(
        &app,
        "/api/v1/studies/00000000-0000-0000-0000-000000000000/metrics",
        &app.admin_token,
        CSV,
    )
    .await
    .problem(404);
}
