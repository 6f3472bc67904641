//! The OpenAPI document and Swagger UI.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::{id_of, spawn_app, spawn_app_with};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[actix_web::test]
async fn committed_document_equals_the_served_one() {
    let app = spawn_app().await;
    let served = app.send(app.bare("GET", "/api-docs/openapi.json")).await;
    assert_eq!(served.status, 200);
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(
        served.body, committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(
        trialops::api::document::openapi_json(),
        COMMITTED,
        "regenerate openapi/openapi.json"
    );
    assert_eq!(served.body["openapi"], "3.1.0");
}

#[actix_web::test]
async fn every_operation_is_documented_with_its_errors() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no summary"
            );
            let responses = operation["responses"].as_object().unwrap();
            if path.starts_with("/api/v1/") {
                for code in ["400", "401", "403", "429", "503"] {
                    assert!(
                        responses.contains_key(code),
                        "{name} does not document {code}"
                    );
                }
            }
            if method == "post" || method == "patch" {
                assert!(
                    operation["requestBody"].is_object(),
                    "{name} has no request body"
                );
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        "/oauth/token"
    );
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let redirect = app.send(app.bare("GET", "/swagger-ui")).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location").as_deref(), Some("/swagger-ui/"));
    let page = app.send(app.bare("GET", "/swagger-ui/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("swagger-ui"),
        "{}",
        &page.text[..200.min(page.text.len())]
    );
    let init = app
        .send(app.bare("GET", "/swagger-ui/swagger-initializer.js"))
        .await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains("/api-docs/openapi.json"));
}

#[test]
fn every_reference_in_the_document_resolves() {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{target} points nowhere");
    }
}

/// Every GET that can answer 304 documents it: probed live, each GET of the document with
/// real ids as admin. An answer with an `ETag` must come back 304 to `If-None-Match`, and
/// its operation must document the 304, the `If-None-Match` parameter and the `ETag`,
/// `Cache-Control` and `Vary` headers; an answer without one documents no 304.
#[actix_web::test]
async fn every_get_that_can_answer_304_documents_it() {
    let app = spawn_app_with(|s| s.webhook_allow_private = true).await;
    let token = app.admin_token.clone();
    let study = app
        .study_id(json!({"planned_start_date": "2025-10-01", "planned_end_date": "2027-03-01"}))
        .await;
    let mut site = String::new();
    for (number, monday, enrolled) in [("A", "2025-10-20", 5), ("B", "2026-01-05", 4)] {
        site = app
            .site_id(
                &study,
                json!({"site_number": number, "status": "enrolling", "activated_on": "2025-10-13"}),
            )
            .await;
        let week = app
            .send(
                app.request(
                    "PUT",
                    &format!("/api/v1/sites/{site}/enrollment/{monday}"),
                    &token,
                )
                .json(
                    &json!({"screened": enrolled, "screen_failed": 0, "enrolled": enrolled,
                                  "discontinued": 0, "completed": 0}),
                ),
            )
            .await;
        week.expect(201, "enrollment week");
    }
    let vendor = app.vendor_id(json!({})).await;
    let milestone = id_of(&app.create_milestone(&study, json!({})).await);
    let post = async |path: &str, body: serde_json::Value| app.post(path, &token, &body).await.id();
    let risk = post(
        "/api/v1/risks",
        json!({"study_id": study, "title": "A risk", "category": "other",
               "likelihood": 1, "impact": 1, "detectability": 1}),
    )
    .await;
    let deviation = post(
        "/api/v1/deviations",
        json!({"study_id": study, "site_id": site, "category": "other", "description": "A deviation",
               "importance": "not_important", "occurred_on": "2026-01-05", "detected_on": "2026-01-06"}),
    )
    .await;
    let line = post(
        "/api/v1/budget-lines",
        json!({"study_id": study, "category": "lab", "description": "Lab", "planned_amount": "100.00"}),
    )
    .await;
    let expense = post(
        "/api/v1/expenses",
        json!({"budget_line_id": line, "amount": "10.00", "incurred_on": "2026-01-05"}),
    )
    .await;
    let webhook = post(
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "entity_types": ["study"]}),
    )
    .await;
    let client = app.get("/api/v1/clients", &token).await.ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: HashMap<&str, &str> = HashMap::from([
        ("studies", study.as_str()),
        ("sites", site.as_str()),
        ("vendors", vendor.as_str()),
        ("milestones", milestone.as_str()),
        ("risks", risk.as_str()),
        ("deviations", deviation.as_str()),
        ("budget-lines", line.as_str()),
        ("expenses", expense.as_str()),
        ("webhooks", webhook.as_str()),
        ("clients", client.as_str()),
    ]);

    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let (mut validated, mut plain) = (Vec::new(), 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        let resource = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap_or_default();
        let url = match ids.get(resource) {
            Some(id) => path.replace("{id}", id),
            None => path.clone(),
        };
        assert!(!url.contains('{'), "no id to probe {path}");
        let answer = app.get(&url, &token).await;
        let documented = get["responses"].get("304").is_some();
        let Some(etag) = answer.header("etag") else {
            assert!(
                !documented,
                "GET {path} documents a 304 but answers no ETag"
            );
            plain += 1;
            continue;
        };
        assert_eq!(answer.status, 200, "GET {url}");
        let again = app
            .send(
                app.request("GET", &url, &token)
                    .header("If-None-Match", &etag),
            )
            .await;
        assert_eq!(again.status, 304, "GET {url} with If-None-Match {etag}");
        assert!(
            documented,
            "GET {path} answers 304 but does not document it"
        );
        let parameters = get["parameters"].as_array().unwrap();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "If-None-Match" && p["in"] == "header"),
            "GET {path} does not document If-None-Match"
        );
        for header in ["ETag", "Cache-Control", "Vary"] {
            assert!(
                get["responses"]["200"]["headers"].get(header).is_some(),
                "GET {path}: 200 does not document {header}"
            );
        }
        let target = get["responses"]["304"]["$ref"].as_str().unwrap();
        let rule = doc.pointer(target.trim_start_matches('#')).unwrap().clone();
        let description = rule["description"].as_str().unwrap();
        assert!(description.contains("weak"), "{path}: {description}");
        validated.push(path.clone());
    }
    // Eight record reads and five computed answers.
    assert_eq!(validated.len(), 13, "{validated:?}");
    assert!(plain > 10);
    for computed in trialops::api::document::COMPUTED_ANSWERS {
        assert!(validated.iter().any(|p| p == computed), "{computed}");
    }
}
