//! The OpenAPI document and Swagger UI.

use crate::helpers::spawn_app;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[actix_web::test]
async fn committed_document_equals_the_served_one() {
    let app = spawn_app().await;
    let served = app
        .send(app.http.get(app.url("/api-docs/openapi.json")))
        .await;
    assert_eq!(served.status, 200);
    let committed: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(
        served.body, committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(
        trialops::api::openapi_json(),
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
    let redirect = app.send(app.http.get(app.url("/swagger-ui"))).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location").as_deref(), Some("/swagger-ui/"));
    let page = app.send(app.http.get(app.url("/swagger-ui/"))).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("swagger-ui"),
        "{}",
        &page.text[..200.min(page.text.len())]
    );
    let init = app
        .send(app.http.get(app.url("/swagger-ui/swagger-initializer.js")))
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
