//! Strict input (issue 13): unknown query parameters are a 400 naming them on every
//! endpoint, a body's invalid fields all come back in one 422 in the API's own words, and
//! dates and timestamps are exactly `YYYY-MM-DD` and RFC 3339.

use serde_json::json;

use trialops::domain::enums::Role;

use crate::helpers::{Resp, spawn_app};

/// `(field, code)` of every entry of a 422's `errors[]`.
#[track_caller]
fn errors(resp: &Resp) -> Vec<(String, String)> {
    resp.problem(422);
    resp.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that `resp` is a 422 with exactly one error, on `field` with `code`.
#[track_caller]
fn assert_one_error(resp: &Resp, field: &str, code: &str, what: &str) {
    let expected = vec![(field.to_string(), code.to_string())];
    assert_eq!(errors(resp), expected, "{what}");
}

/// Asserts that `resp` is a 422 naming exactly these `(field, code)` errors, in any order,
/// in the API's words.
#[track_caller]
fn assert_errors(resp: &Resp, expected: &[(&str, &str)]) {
    let mut got = errors(resp);
    got.sort();
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(field, code)| (field.to_string(), code.to_string()))
        .collect();
    assert_eq!(got, expected, "{}", resp.text);
    in_api_words(resp);
}

/// No message names a Rust type or serde's words for one.
#[track_caller]
fn in_api_words(resp: &Resp) {
    for word in [
        "struct",
        "i32",
        "i64",
        "u32",
        "f64",
        "usize",
        "expected",
        "variant",
        "NaiveDate",
        "Uuid",
        "Fields",
        "sequence",
        "a map",
    ] {
        assert!(!resp.text.contains(word), "{word:?} in {}", resp.text);
    }
}

#[actix_web::test]
async fn unknown_query_parameters_are_a_400_naming_them_everywhere() {
    let app = spawn_app().await;
    let token = &app.admin_token;
    let study = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;

    // A filter sites do not have: before, every site came back.
    let resp = app
        .get(&format!("/api/v1/sites?site_id={site}"), token)
        .await;
    let detail = resp.detail(400).to_string();
    assert!(detail.contains("site_id"), "{detail}");

    // Two unknown ones are both named; known ones still work.
    let resp = app
        .get(
            "/api/v1/studies?limt=5&sattus=recruiting&phase=phase2",
            token,
        )
        .await;
    let detail = resp.detail(400).to_string();
    assert!(
        detail.contains("limt") && detail.contains("sattus"),
        "{detail}"
    );
    assert!(
        !detail.contains("phase,") || detail.contains("takes"),
        "{detail}"
    );
    app.get("/api/v1/studies?limit=5&phase=phase2", token)
        .await
        .ok(200);

    // Endpoints that take no query at all, metrics and exports included.
    for path in [
        format!("/api/v1/studies/{study}"),
        format!("/api/v1/studies/{study}/metrics"),
        format!("/api/v1/studies/{study}/fhir"),
        "/api/v1/metrics/portfolio".to_string(),
        "/api/v1/audit-events/verify".to_string(),
        "/healthz".to_string(),
        "/.well-known/jwks.json".to_string(),
    ] {
        let resp = app.get(&format!("{path}?foo=1"), token).await;
        let detail = resp.detail(400).to_string();
        assert!(detail.contains("foo"), "{path}: {detail}");
    }
    // A CSV export with an unknown parameter is refused before any row is sent.
    let resp = app
        .send(
            app.request("GET", "/api/v1/sites?format=csv", token)
                .header("accept", "text/csv"),
        )
        .await;
    resp.problem(400);
    // Writes too.
    let resp = app
        .post(
            "/api/v1/vendors?dry_run=true",
            token,
            &json!({"name": "V", "kind": "cro"}),
        )
        .await;
    resp.problem(400);

    // The token endpoint ignores unknown form fields (RFC 6749 §3.2), and Swagger UI's
    // assets are not ours to judge.
    let (id, secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let resp = app
        .form(
            "/oauth/token?x=1",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("unknown", "ignored"),
            ],
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let resp = app
        .send(app.bare("GET", "/swagger-ui/index.html?x=1"))
        .await;
    assert_eq!(resp.status, 200);
}

#[actix_web::test]
async fn every_invalid_field_comes_back_in_one_422() {
    let app = spawn_app().await;
    let token = &app.admin_token;

    // A bad enum, a negative count, a wrong JSON type, a bad date, an unknown field and a
    // missing one: all named at once.
    let resp = app
        .post(
            "/api/v1/studies",
            token,
            &json!({
                "protocol_number": "P-1",
                "phase": "phase9",
                "currency": "EUR",
                "target_enrollment": -1,
                "enrollment_buffer_pct": "ten",
                "planned_start_date": "2026-1-5",
                "risk_escalation_threshold": 126,
                "colour": "blue"
            }),
        )
        .await;
    let mut got = errors(&resp);
    got.sort();
    let expected: Vec<(String, String)> = [
        ("colour", "unknown_field"),
        ("enrollment_buffer_pct", "type"),
        ("phase", "enum"),
        ("planned_start_date", "format"),
        ("risk_escalation_threshold", "range"),
        ("target_enrollment", "range"),
        ("title", "required"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, expected, "{}", resp.text);
    in_api_words(&resp);
    assert_eq!(resp.body["detail"], "7 fields are invalid");

    // The messages say what is allowed in JSON's words.
    let message = |field: &str| {
        resp.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .map(|e| e["message"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(message("enrollment_buffer_pct"), "must be an integer");
    assert!(message("phase").contains("phase3"), "{}", message("phase"));
    assert_eq!(message("target_enrollment"), "must be 0 or more");

    // A wrong JSON type is a 422 now (the body is well-formed), in every shape of body.
    let resp = app
        .post(
            "/api/v1/sites",
            token,
            &json!({"study_id": 7, "site_number": ["x"], "name": {}, "country": "XX"}),
        )
        .await;
    assert_errors(
        &resp,
        &[
            ("country", "format"),
            ("name", "type"),
            ("site_number", "type"),
            ("study_id", "type"),
        ],
    );

    // 400 stays for malformed JSON and for a body that is not a JSON object.
    for body in ["{\"title\": ", "[]", "\"a study\"", "42", "null"] {
        let resp = app
            .send(
                app.request("POST", "/api/v1/studies", token)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        resp.problem(400);
    }

    // A merge patch: every invalid field too.
    let study = app.study_id(json!({})).await;
    let resp = app
        .patch(
            &format!("/api/v1/studies/{study}"),
            token,
            &json!({"phase": 3, "target_enrollment": "many", "nct_id": "NCT1"}),
        )
        .await;
    assert_errors(
        &resp,
        &[
            ("nct_id", "format"),
            ("phase", "type"),
            ("target_enrollment", "type"),
        ],
    );

    // A batch: every invalid field of every item, named by item.
    let resp = app
        .post(
            "/api/v1/sites/batch",
            token,
            &json!({"items": [
                {"external_id": "a", "study_id": study, "site_number": "1", "name": "A", "country": "DE", "target_enrollment": "x"},
                {"external_id": "b", "study_id": study, "site_number": "2", "name": "", "country": "de"},
                "not an object"
            ]}),
        )
        .await;
    assert_errors(
        &resp,
        &[
            ("items[0].target_enrollment", "type"),
            ("items[1].country", "format"),
            ("items[1].name", "blank"),
            ("items[1].name", "length"),
            ("items[2]", "type"),
        ],
    );
}

#[actix_web::test]
async fn integral_numbers_written_with_a_fraction_are_integers() {
    let app = spawn_app().await;
    let study = app
        .create_study(json!({"target_enrollment": 480.0, "enrollment_buffer_pct": 1e1}))
        .await;
    assert_eq!(study["target_enrollment"], 480);
    assert_eq!(study["enrollment_buffer_pct"], 10);
    let resp = app.admin_post("/api/v1/studies", &json!({"protocol_number": "P-2", "title": "T", "phase": "phase2", "currency": "EUR", "target_enrollment": 2.5}))
        .await;
    assert_eq!(
        errors(&resp),
        vec![("target_enrollment".to_string(), "type".to_string())]
    );
}

#[actix_web::test]
async fn dates_and_timestamps_are_exact_everywhere() {
    let app = spawn_app().await;
    let token = &app.admin_token;
    let study = app.study_id(json!({})).await;
    let site = app.site_id(&study, json!({})).await;

    // Bodies.
    for bad in [
        "2026-1-5",
        " 2026-01-05",
        "2026-01-05 ",
        "2026-01-05T00:00:00Z",
        "20260105",
    ] {
        let resp = app
            .patch(
                &format!("/api/v1/studies/{study}"),
                token,
                &json!({"planned_start_date": bad}),
            )
            .await;
        assert_one_error(&resp, "planned_start_date", "format", &format!("{bad:?}"));
    }
    let resp = app
        .patch(
            &format!("/api/v1/studies/{study}"),
            token,
            &json!({"planned_start_date": "1899-12-31"}),
        )
        .await;
    assert_eq!(
        errors(&resp),
        vec![("planned_start_date".to_string(), "range".to_string())]
    );
    app.patch(
        &format!("/api/v1/studies/{study}"),
        token,
        &json!({"planned_start_date": "2026-01-05"}),
    )
    .await
    .ok(200);

    // Query parameters: dates and timestamps.
    let queries = [
        ("/api/v1/enrollment?from=", "2026-1-5", 400),
        ("/api/v1/enrollment?from=", "%202026-01-05", 400),
        ("/api/v1/enrollment?from=", "2026-01-05%20", 400),
        ("/api/v1/enrollment?from=", "2026-01-05", 200),
        ("/api/v1/studies?updated_since=", "2026-03-01T09:30:00", 400),
        (
            "/api/v1/studies?updated_since=",
            "2026-03-01%2009:30:00Z",
            400,
        ),
        (
            "/api/v1/studies?updated_since=",
            "%202026-03-01T09:30:00Z",
            400,
        ),
        ("/api/v1/studies?updated_since=", "2026-3-1T09:30:00Z", 400),
        (
            "/api/v1/studies?updated_since=",
            "2026-03-01T09:30:00Z",
            200,
        ),
    ];
    for (query, value, status) in queries {
        let resp = app.get(&format!("{query}{value}"), token).await;
        resp.expect(status, &format!("{query}{value}"));
    }

    // A path date.
    let counts = json!({"screened": 1, "screen_failed": 0, "enrolled": 1, "discontinued": 0, "completed": 0});
    for bad in ["2026-1-5", "%202026-01-05"] {
        let resp = app.put_week(token, &site, bad, &counts).await;
        assert_one_error(&resp, "week_start", "format", bad);
    }

    // Batch items.
    let resp = app
        .post(
            "/api/v1/milestones/batch",
            token,
            &json!({"items": [{"external_id": "m1", "study_id": study, "name": "M", "kind": "other", "baseline_date": "2026-01-5"}]}),
        )
        .await;
    assert_eq!(
        errors(&resp),
        vec![("items[0].baseline_date".to_string(), "format".to_string())]
    );
}
