//! Garbage in, a clean 4xx out: a deterministic fuzz (a fixed-seed LCG, a few hundred
//! requests) of bodies, query strings and path ids against studies and sites. Never a 5xx,
//! every error a problem+json answer with its request id, and no refused write changes a
//! row.

// Test support code panics on anything unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, spawn_app};

/// Knuth's MMIX linear congruential generator: the same sequence on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// The shape of an answer to garbage: never a 5xx; an error is problem+json whose
/// `request_id` is the answer's `X-Request-Id`.
fn clean(resp: &Resp) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}: {} {}", resp.status, resp.text));
    if resp.status >= 500 {
        return fail("a server error");
    }
    if resp.status < 400 {
        return Ok(());
    }
    if resp.header("content-type").as_deref() != Some("application/problem+json") {
        return fail("not application/problem+json");
    }
    if resp.body["status"] != resp.status {
        return fail("`status` is not the answer's");
    }
    let request_id = resp.body["request_id"].as_str().unwrap_or_default();
    if request_id.is_empty() || Some(request_id) != resp.header("x-request-id").as_deref() {
        return fail("`request_id` missing or not X-Request-Id");
    }
    Ok(())
}

#[track_caller]
fn assert_clean(resp: &Resp, what: &str) {
    if let Err(why) = clean(resp) {
        panic!("{what}: {why}");
    }
}

/// Fails with every collected problem (the first few), not just the first one.
#[track_caller]
fn assert_no_failures(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} requests went wrong:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Shows a body in a failure message without flooding it.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(160).collect();
    if text.chars().count() > 160 {
        out.push_str(&format!("... ({} bytes)", body.len()));
    }
    out
}

const STUDY_FIELDS: &[&str] = &[
    "external_id",
    "protocol_number",
    "title",
    "short_title",
    "phase",
    "status",
    "therapeutic_area",
    "indication",
    "sponsor_name",
    "nct_id",
    "euct_number",
    "ind_number",
    "currency",
    "target_enrollment",
    "enrollment_buffer_pct",
    "planned_start_date",
    "planned_end_date",
    "actual_start_date",
    "actual_end_date",
    "risk_escalation_threshold",
    "deviation_reporting_days",
];

const SITE_FIELDS: &[&str] = &[
    "external_id",
    "study_id",
    "site_number",
    "name",
    "institution",
    "principal_investigator",
    "country",
    "city",
    "status",
    "irb_approved_on",
    "activated_on",
    "target_enrollment",
    "cro_vendor_id",
];

const HUGE_NUMBERS: &[&str] = &[
    "1e999",
    "-1e999",
    "123456789012345678901234567890",
    "-99999999999999999999999",
    "2147483648",
    "-2147483649",
    "1.5",
    "1e2",
    "-0",
    "0.0000000000000000000001",
    "NaN",
    "Infinity",
    "0x10",
    "01",
];

const STRANGE_TEXT: &[&str] = &[
    "\u{1F9EA}\u{1F489} trial \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    "\u{202E}lairt\u{202C}",
    "e\u{301}\u{301}\u{301}\u{301}\u{301}",
    "\u{200B}\u{200B}\u{200B}",
    "\u{FEFF}",
    "日本語のタイトル",
    "\u{10FFFF}",
    "nul\u{0}in the middle",
    "\u{0}",
    "tab\tnew\nline\r",
    "'; DROP TABLE studies; --",
    "<script>alert(1)</script>",
    "%s%n%x",
    "   ",
    "",
];

const WRONG_VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "\"text\"",
    "\"\"",
    "[]",
    "{}",
    "[1,2,3]",
    "{\"a\":1}",
    "[null]",
    "\"2026-02-30\"",
    "\"0000-00-00\"",
    "\"not-a-uuid\"",
    "\"00000000-0000-0000-0000-000000000000\"",
];

/// A JSON string literal that holds raw escapes serde would never produce.
const RAW_STRING_LITERALS: &[&str] = &[
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\x41\"",
    "\"\\\"",
    "\"unterminated",
];

/// `object` serialised with `field` set to the raw JSON text `raw` (which may be no JSON).
fn with_raw(object: &Value, field: &str, raw: &str) -> Vec<u8> {
    let mut value = object.clone();
    value[field] = json!("__RAW__");
    value
        .to_string()
        .replacen("\"__RAW__\"", raw, 1)
        .into_bytes()
}

fn long_string(rng: &mut Lcg) -> String {
    let len = *rng.pick(&[101, 501, 4_096, 100_000, 500_000]);
    let unit = *rng.pick(&["a", "é", "\u{1F9EA}", "\\", "\""]);
    unit.repeat(len)
}

/// One garbage body, built around `valid` (a good body for the endpoint) and its fields.
fn garbage_body(rng: &mut Lcg, valid: &Value, fields: &[&str]) -> (String, Vec<u8>) {
    let field = *rng.pick(fields);
    let text_field = *rng.pick(&["title", "name", "protocol_number", "site_number", field]);
    match rng.below(12) {
        0 => {
            let n = rng.below(300);
            ("random bytes".into(), rng.bytes(n))
        }
        1 => {
            let text = valid.to_string();
            let cut = rng.below(text.len());
            ("truncated JSON".into(), text.as_bytes()[..cut].to_vec())
        }
        2 => {
            let depth = 10_000;
            let body = match rng.below(3) {
                0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
                1 => format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
                _ => String::from_utf8(with_raw(
                    valid,
                    field,
                    &format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
                ))
                .unwrap(),
            };
            ("deeply nested".into(), body.into_bytes())
        }
        3 => {
            let number = *rng.pick(HUGE_NUMBERS);
            let target = *rng.pick(&[
                "target_enrollment",
                "enrollment_buffer_pct",
                "risk_escalation_threshold",
                "deviation_reporting_days",
                field,
            ]);
            (
                format!("{target} = {number}"),
                with_raw(valid, target, number),
            )
        }
        4 => {
            let wrong = *rng.pick(WRONG_VALUES);
            (format!("{field} = {wrong}"), with_raw(valid, field, wrong))
        }
        5 => {
            let text = *rng.pick(STRANGE_TEXT);
            let mut body = valid.clone();
            body[text_field] = json!(text);
            (
                format!("{text_field} = {text:?}"),
                body.to_string().into_bytes(),
            )
        }
        6 => {
            let raw = *rng.pick(RAW_STRING_LITERALS);
            (
                format!("{text_field} = {raw}"),
                with_raw(valid, text_field, raw),
            )
        }
        7 => {
            let long = long_string(rng);
            let mut body = valid.clone();
            body[text_field] = json!(long);
            (
                format!("{text_field} = {} chars", long.chars().count()),
                body.to_string().into_bytes(),
            )
        }
        8 => {
            // Raw control and invalid UTF-8 bytes inside a string.
            const BAD: &[&[u8]] = &[b"\x00", b"\xff\xfe", b"\xc3\x28", b"\x1f", b"\xed\xa0\x80"];
            let bad = *rng.pick(BAD);
            let mut body = with_raw(valid, text_field, "\"@@\"");
            let at = body.windows(2).position(|w| w == b"@@").unwrap();
            body.splice(at..at + 2, bad.iter().copied());
            (format!("{text_field} with bytes {bad:?}"), body)
        }
        9 => {
            let top = *rng.pick(&[
                "[]",
                "null",
                "true",
                "1",
                "\"study\"",
                "[{}]",
                "",
                " ",
                "{}{}",
                "{} trailing",
            ]);
            (format!("top level {top:?}"), top.as_bytes().to_vec())
        }
        10 => {
            let mut body = valid.clone();
            let key = match rng.below(4) {
                0 => "id".to_string(),
                1 => "version".to_string(),
                2 => "created_at".to_string(),
                _ => String::from_utf8_lossy(&rng.bytes(8)).into_owned(),
            };
            body[key.as_str()] = json!(1);
            (
                format!("unknown field {key:?}"),
                body.to_string().into_bytes(),
            )
        }
        _ => {
            // The same key twice, the second with a wrong value.
            let mut text = valid.to_string();
            text.pop();
            text.push_str(&format!(",\"{field}\":{}}}", rng.pick(WRONG_VALUES)));
            (format!("duplicate {field}"), text.into_bytes())
        }
    }
}

struct Target {
    method: reqwest::Method,
    path: String,
    valid: Value,
    fields: &'static [&'static str],
}

async fn send_body(app: &TestApp, target: &Target, content_type: &str, body: Vec<u8>) -> Resp {
    app.send(
        app.http
            .request(target.method.clone(), app.url(&target.path))
            .bearer_auth(&app.admin_token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

#[actix_web::test]
async fn garbage_bodies_get_clean_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let study_id = app.study_id(json!({})).await;
    let site = app.create_site(&study_id, json!({})).await;
    let site_id = site["id"].as_str().unwrap().to_string();

    let valid_study = json!({
        "protocol_number": "FUZZ-1",
        "title": "Fuzz",
        "phase": "phase2",
        "currency": "EUR",
        "target_enrollment": 10
    });
    let valid_site = json!({
        "study_id": study_id,
        "site_number": "FZ-1",
        "name": "Fuzz site",
        "country": "DE"
    });
    let targets = [
        Target {
            method: reqwest::Method::POST,
            path: "/api/v1/studies".into(),
            valid: valid_study.clone(),
            fields: STUDY_FIELDS,
        },
        Target {
            method: reqwest::Method::PATCH,
            path: format!("/api/v1/studies/{study_id}"),
            valid: valid_study,
            fields: STUDY_FIELDS,
        },
        Target {
            method: reqwest::Method::POST,
            path: "/api/v1/sites".into(),
            valid: valid_site.clone(),
            fields: SITE_FIELDS,
        },
        Target {
            method: reqwest::Method::PATCH,
            path: format!("/api/v1/sites/{site_id}"),
            valid: valid_site,
            fields: SITE_FIELDS,
        },
    ];

    let mut rng = Lcg(0x7472_6961_6c6f_7073);
    const ROUNDS: usize = 240;
    let mut refused = 0;
    let mut failures = Vec::new();
    let mut print = app.fingerprint().await;
    for round in 0..ROUNDS {
        let target = &targets[round % targets.len()];
        let (kind, body) = garbage_body(&mut rng, &target.valid, target.fields);
        let content_type = match (&target.method, rng.below(3)) {
            (&reqwest::Method::PATCH, 0) => "application/merge-patch+json",
            (_, 1) => "application/json; charset=utf-8",
            _ => "application/json",
        };
        let what = format!(
            "#{round} {} {} [{kind}] {}",
            target.method,
            target.path,
            preview(&body)
        );
        let resp = send_body(&app, target, content_type, body).await;
        if let Err(why) = clean(&resp) {
            failures.push(format!("{what}: {why}"));
        }
        let after = app.fingerprint().await;
        if (400..500).contains(&resp.status) {
            refused += 1;
            if print != after {
                failures.push(format!("{what}: refused with {}, yet wrote", resp.status));
            }
        }
        print = after;
    }
    assert_no_failures(&failures, ROUNDS);
    assert!(
        refused > ROUNDS * 3 / 4,
        "only {refused} of {ROUNDS} garbage bodies were refused"
    );
}

#[actix_web::test]
async fn garbage_query_strings_get_200_or_400() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    app.create_site(study["id"].as_str().unwrap(), json!({}))
        .await;

    const KEYS: &[&str] = &[
        "limit",
        "cursor",
        "updated_since",
        "include_deleted",
        "status",
        "phase",
        "study_id",
        "country",
        "cro_vendor_id",
        "external_id",
        "protocol_number",
        "",
        "%",
        "a[b]",
        "limit%00",
        "\u{1F9EA}",
        "%E2%82%AC",
    ];
    const VALUES: &[&str] = &[
        "",
        "1",
        "0",
        "-1",
        "1000",
        "1001",
        "true",
        "false",
        "null",
        "%",
        "%Z",
        "%ZZ",
        "%00",
        "%C3%28",
        "%FF%FE",
        "%2B",
        "+",
        "==",
        "phase3",
        "activated",
        "recruiting",
        "DE",
        "2026-03-01T09:30:00Z",
        "2026-03-01T09:30:00%2B01:00",
        "00000000-0000-0000-0000-000000000000",
        "azE6MDE5M2YwZTQtN2IxYS03YzRlLTlhNTUtM2Y0ZDJiMWMwYTk5",
        "%E2%80%AE",
        "\u{0301}\u{0301}",
        "[]",
        "{}",
    ];

    const ROUNDS: usize = 200;
    let mut rng = Lcg(42);
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let path = if round % 2 == 0 {
            "/api/v1/studies"
        } else {
            "/api/v1/sites"
        };
        let mut parts = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let key = if rng.chance(5) {
                String::from_utf8_lossy(&rng.bytes(4)).replace(['#', '&', '='], "")
            } else {
                rng.pick(KEYS).to_string()
            };
            let value = match rng.below(5) {
                0 => rng
                    .bytes(6)
                    .iter()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>(),
                // A sane value with junk in it.
                1 => format!(
                    "{}{}",
                    rng.pick(VALUES),
                    rng.pick(&["%00", "%FF", "%", "%0", "%25", "+", "%0A", "%E2%80%8B"])
                ),
                _ => rng.pick(VALUES).to_string(),
            };
            let part = match rng.below(6) {
                0 => key,
                1 => format!("{key}={value}={value}"),
                _ => format!("{key}={value}"),
            };
            // Sometimes the same parameter twice.
            if rng.chance(6) {
                parts.push(part.clone());
            }
            parts.push(part);
        }
        let separator = *rng.pick(&["&", "&", "&", "&&", ";"]);
        let query = parts.join(separator);
        let what = format!("GET {path}?{query}");
        let resp = app.admin_get(&format!("{path}?{query}")).await;
        if let Err(why) = clean(&resp) {
            failures.push(format!("{what}: {why}"));
        } else if resp.status != 400 && !(resp.status == 200 && resp.body["data"].is_array()) {
            failures.push(format!("{what}: {} {}", resp.status, resp.text));
        }
    }

    // And systematically: every parameter alone with every kind of junk.
    let long = "a".repeat(20_000);
    let junk = [
        "",
        "%00",
        "x%00y",
        "%FF%FE",
        "%C3%28",
        "%",
        "%ZZ",
        "+",
        "%0A",
        "%E2%80%AE",
        &long,
    ];
    let mut total = ROUNDS;
    for path in ["/api/v1/studies", "/api/v1/sites"] {
        for key in KEYS {
            for value in junk {
                total += 1;
                let query = format!("{path}?{key}={value}");
                let what = format!("GET {}", preview(query.as_bytes()));
                let resp = app.admin_get(&query).await;
                if let Err(why) = clean(&resp) {
                    failures.push(format!("{what}: {why}"));
                } else if resp.status != 400
                    && !(resp.status == 200 && resp.body["data"].is_array())
                {
                    failures.push(format!("{what}: {} {}", resp.status, resp.text));
                }
            }
        }
    }
    assert_no_failures(&failures, total);
}

/// PostgreSQL text cannot hold U+0000, so a NUL in a string must be refused as an invalid
/// value (422 in a body), never reach the database as a 500.
#[actix_web::test]
async fn nul_characters_are_refused_not_a_500() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap().to_string();
    let site = app.create_site(&study_id, json!({})).await;
    let site_id = site["id"].as_str().unwrap().to_string();
    let print = app.fingerprint().await;
    let token = &app.admin_token;

    let mut failures = Vec::new();
    let mut total = 0;
    let mut expect_422 = |what: String, resp: Resp, field: &str| {
        total += 1;
        if resp.status != 422 {
            failures.push(format!(
                "{what}: expected 422, got {} {}",
                resp.status, resp.text
            ));
        } else if !resp.invalid_fields().iter().any(|f| f == field) {
            failures.push(format!("{what}: 422 does not name {field}: {}", resp.text));
        }
    };
    for (field, text) in [
        ("title", "nul\u{0}inside"),
        ("therapeutic_area", "\u{0}"),
        ("protocol_number", "P\u{0}1"),
    ] {
        let body = json!({
            "protocol_number": "NUL-1", "title": "t", "phase": "phase2",
            "currency": "EUR", "target_enrollment": 1, field: text
        });
        let resp = app.post("/api/v1/studies", token, &body).await;
        expect_422(format!("POST study {field}"), resp, field);
        let path = format!("/api/v1/studies/{study_id}");
        let resp = app.patch(&path, token, &json!({ field: text })).await;
        expect_422(format!("PATCH study {field}"), resp, field);
    }
    for (field, text) in [("name", "nul\u{0}inside"), ("site_number", "\u{0}")] {
        let body = json!({
            "study_id": study_id, "site_number": "N-1", "name": "n", "country": "DE",
            field: text
        });
        let resp = app.post("/api/v1/sites", token, &body).await;
        expect_422(format!("POST site {field}"), resp, field);
        let path = format!("/api/v1/sites/{site_id}");
        let resp = app.patch(&path, token, &json!({ field: text })).await;
        expect_422(format!("PATCH site {field}"), resp, field);
    }
    // In a list filter: a bad query parameter (400), or a value nothing matches.
    for query in [
        "/api/v1/studies?external_id=%00",
        "/api/v1/studies?protocol_number=a%00b",
        "/api/v1/sites?country=D%00",
        "/api/v1/sites?external_id=x%00",
    ] {
        total += 1;
        let resp = app.get(query, token).await;
        let fine = match resp.status {
            400 => clean(&resp).is_ok(),
            200 => resp.body["data"].as_array().is_some_and(Vec::is_empty),
            _ => false,
        };
        if !fine {
            failures.push(format!("GET {query}: {} {}", resp.status, resp.text));
        }
    }
    assert_no_failures(&failures, total);
    assert_eq!(print, app.fingerprint().await, "a refused NUL wrote");
}

fn empty_id(id: &str) -> bool {
    id.is_empty() || id == "/"
}

/// `/studies/` with no id names no item (404), but may also be taken for the collection
/// itself (its own answer, or a 405 for a method the collection does not take). A 405 whose
/// `Allow` lists the very method used contradicts itself.
fn collection_like(resp: &Resp, method: &reqwest::Method) -> bool {
    let allow = resp.header("allow").unwrap_or_default();
    resp.status != 405 || !allow.split(',').any(|m| m.trim() == method.as_str())
}

#[actix_web::test]
async fn garbage_path_ids_are_404() {
    let app = spawn_app().await;
    let study_id = app.study_id(json!({})).await;
    app.create_site(&study_id, json!({})).await;
    let print = app.fingerprint().await;

    let mut rng = Lcg(7);
    let mut ids: Vec<String> = [
        // No id at all, or an empty segment: names nothing either.
        "",
        "/",
        "0",
        "-1",
        "null",
        "undefined",
        "%00",
        "%2F",
        "%2e%2e",
        "..%2F..%2Fetc%2Fpasswd",
        "%F0%9F%A7%AA",
        "%FF%FE",
        "'%20OR%201=1",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "01a213d3-833d-72ea-ac1e-b76d019dfb8",
        "01a213d3-833d-72ea-ac1e-b76d019dfb877",
        "01a213d3-833d-72ea-ac1e-b76d019dfbzz",
        "%7B01a213d3-833d-72ea-ac1e-b76d019dfb87%7D",
        "1e999",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.push("a".repeat(5000));
    for _ in 0..12 {
        let n = 1 + rng.below(40);
        ids.push(rng.bytes(n).iter().map(|b| format!("%{b:02X}")).collect());
    }
    let methods = [
        reqwest::Method::GET,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::POST,
    ];
    let (mut total, mut failures) = (0, Vec::new());
    for collection in ["/api/v1/studies", "/api/v1/sites"] {
        for id in &ids {
            // POST to `/x/{id}` is a 405 (the item takes no POST); only without an id
            // could it mean the collection.
            let methods = if empty_id(id) {
                &methods[..]
            } else {
                &methods[..3]
            };
            for method in methods {
                let path = format!("{collection}/{id}");
                let what = format!("{method} {}", preview(path.as_bytes()));
                let mut request = app
                    .http
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(&app.admin_token);
                if method != reqwest::Method::GET {
                    request = request
                        .header("content-type", "application/merge-patch+json")
                        .body(r#"{"title": "x", "name": "x"}"#);
                }
                let resp = app.send(request).await;
                total += 1;
                if let Err(why) = clean(&resp) {
                    failures.push(format!("{what}: {why}"));
                } else if resp.status != 404 && !(empty_id(id) && collection_like(&resp, method)) {
                    let allow = resp.header("allow").unwrap_or_default();
                    failures.push(format!(
                        "{what}: expected 404, got {} (Allow: {allow}) {}",
                        resp.status, resp.text
                    ));
                }
            }
        }
    }
    assert_no_failures(&failures, total);
    assert_eq!(print, app.fingerprint().await, "a garbage id wrote");
}

#[actix_web::test]
async fn oversized_and_non_json_bodies_are_413_and_415() {
    let app = spawn_app().await;
    let study_id = app.study_id(json!({})).await;
    let print = app.fingerprint().await;
    const MIB: usize = 1024 * 1024;

    // A JSON object of exactly `len` bytes whose title makes up the rest.
    let sized = |len: usize| {
        let head = r#"{"protocol_number":"BIG-1","phase":"phase2","currency":"EUR","target_enrollment":1,"title":""#;
        let tail = r#""}"#;
        let mut body = String::from(head);
        body.push_str(&"a".repeat(len - head.len() - tail.len()));
        body.push_str(tail);
        assert_eq!(body.len(), len);
        body
    };
    let targets = [
        (reqwest::Method::POST, "/api/v1/studies".to_string()),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/studies/{study_id}"),
        ),
        (reqwest::Method::POST, "/api/v1/sites".to_string()),
    ];
    for (method, path) in &targets {
        let send = |body: String, content_type: Option<&str>| {
            let mut request = app
                .http
                .request(method.clone(), app.url(path))
                .bearer_auth(&app.admin_token)
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            app.send(request)
        };
        let what = format!("{method} {path}");

        let over = send(sized(MIB + 1), Some("application/json")).await;
        assert_eq!(over.status, 413, "{what} 1 MiB + 1: {}", over.text);
        over.problem(413);
        // Exactly at the limit the body is read (and refused for what it says, not its size).
        let at = send(sized(MIB), Some("application/json")).await;
        assert_clean(&at, &what);
        assert_ne!(at.status, 413, "{what} exactly 1 MiB");
        assert!(at.status >= 400, "{what}: {}", at.text);

        let json_text = json!({"title": "x", "name": "x"}).to_string();
        for content_type in [
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
            Some("multipart/form-data; boundary=x"),
            Some("garbage"),
            None,
        ] {
            let resp = send(json_text.clone(), content_type).await;
            assert_eq!(
                resp.status, 415,
                "{what} as {content_type:?}: {}",
                resp.text
            );
            resp.problem(415);
        }
    }
    assert_eq!(print, app.fingerprint().await, "a refused body wrote");
}
