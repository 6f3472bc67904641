//! Budget lines and expenses: create, read, update, delete, exact money, the amounts a line
//! derives from its expenses, currencies, and who may do what.

use std::collections::BTreeSet;

use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, id_of, spawn_app};

const LINES: &str = "/api/v1/budget-lines";
const EXPENSES: &str = "/api/v1/expenses";

fn line_body(study_id: &str, overrides: Value) -> Value {
    let mut body = json!({
        "study_id": study_id,
        "category": "cro_services",
        "description": "Monitoring visits",
        "planned_amount": "1000.00"
    });
    set_fields(&mut body, overrides);
    body
}

fn expense_body(line_id: &str, overrides: Value) -> Value {
    let mut body = json!({
        "budget_line_id": line_id,
        "amount": "10.00",
        "incurred_on": "2026-04-30"
    });
    set_fields(&mut body, overrides);
    body
}

/// Sets each member of `overrides` on `body`, `null` included (unlike a merge patch, which
/// would remove the member).
fn set_fields(body: &mut Value, overrides: Value) {
    if let Value::Object(members) = overrides {
        for (name, value) in members {
            body[name] = value;
        }
    }
}

/// Creates a budget line (as admin) with `overrides` merged in.
async fn create_line(app: &TestApp, study_id: &str, overrides: Value) -> Value {
    app.post(LINES, &app.admin_token, &line_body(study_id, overrides))
        .await
        .ok(201)
        .clone()
}

/// Creates an expense (as admin) with `overrides` merged in.
async fn create_expense(app: &TestApp, line_id: &str, overrides: Value) -> Value {
    app.post(
        EXPENSES,
        &app.admin_token,
        &expense_body(line_id, overrides),
    )
    .await
    .ok(201)
    .clone()
}

async fn study(app: &TestApp) -> String {
    id_of(&app.create_study(json!({})).await)
}

/// There is no vendor API on this branch: a vendor row, straight into the database.
async fn insert_vendor(app: &TestApp, deleted: bool) -> String {
    let id = Uuid::now_v7();
    let mut conn = app.db().await;
    diesel::sql_query(
        "INSERT INTO vendors (id, name, kind, deleted_at) \
         VALUES ($1, 'Acme CRO', 'cro', CASE WHEN $2 THEN now() END)",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Bool, _>(deleted)
    .execute(&mut conn)
    .await
    .unwrap();
    id.to_string()
}

fn ids(resp: &Resp) -> BTreeSet<String> {
    resp.ok(200)["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(id_of)
        .collect()
}

/// The ids an admin list with this query answers.
async fn listed(app: &TestApp, base: &str, query: String) -> BTreeSet<String> {
    ids(&app.get(&format!("{base}?{query}"), &app.admin_token).await)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The one field a 422 names, and its code.
#[track_caller]
fn refusal(resp: &Resp) -> (String, String) {
    resp.problem(422);
    let errors = resp.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", resp.text);
    (
        errors[0]["field"].as_str().unwrap().to_string(),
        errors[0]["code"].as_str().unwrap().to_string(),
    )
}

#[actix_web::test]
async fn budget_line_lifecycle() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let created = app
        .post(
            LINES,
            &app.admin_token,
            &line_body(
                &study_id,
                json!({"external_id": "FIN-1", "planned_amount": "250000.5"}),
            ),
        )
        .await;
    let line = created.ok(201).clone();
    let id = id_of(&line);
    let path = format!("{LINES}/{id}");
    assert_eq!(created.header("location").as_deref(), Some(path.as_str()));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(line["study_id"], study_id.as_str());
    assert_eq!(line["currency"], "EUR", "the study's currency by default");
    assert_eq!(line["planned_amount"], "250000.50", "always two places");
    assert_eq!(line["committed_amount"], "0.00", "default");
    assert_eq!(line["actual_amount"], "0.00");
    assert_eq!(line["remaining_amount"], "250000.50");
    assert_eq!(line["vendor_id"], Value::Null);
    assert_eq!(line["version"], 1);

    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200), &line);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let patched = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"committed_amount": "1200.00", "category": "lab", "description": "Central lab"}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["committed_amount"], "1200.00");
    assert_eq!(patched["category"], "lab");
    assert_eq!(patched["remaining_amount"], "250000.50");

    // A patch that changes nothing (currency null means "the study's") keeps the version.
    let same = app
        .patch(&path, &app.admin_token, &json!({"currency": null}))
        .await;
    assert_eq!(same.ok(200)["version"], 2);

    let listed = app
        .get(&format!("{LINES}?study_id={study_id}"), &app.admin_token)
        .await;
    assert_eq!(listed.ok(200)["data"][0]["committed_amount"], "1200.00");

    app.delete(&path, &app.admin_token).await.ok(204);
    app.get(&path, &app.admin_token).await.problem(404);
    app.patch(&path, &app.admin_token, &json!({"description": "again"}))
        .await
        .problem(404);
    let listed = app
        .get(&format!("{LINES}?study_id={study_id}"), &app.admin_token)
        .await;
    assert!(ids(&listed).is_empty());
    let with_deleted = app
        .get(
            &format!("{LINES}?study_id={study_id}&include_deleted=true"),
            &app.admin_token,
        )
        .await;
    assert!(with_deleted.ok(200)["data"][0]["deleted_at"].is_string());
    // The external id is free again once its line is deleted.
    create_line(&app, &study_id, json!({"external_id": "FIN-1"})).await;
}

#[actix_web::test]
async fn expense_lifecycle() {
    let app = spawn_app().await;
    let study_id = id_of(&app.create_study(json!({"currency": "CHF"})).await);
    let line = create_line(&app, &study_id, json!({})).await;
    let line_id = id_of(&line);
    let created = app
        .post(
            EXPENSES,
            &app.admin_token,
            &expense_body(
                &line_id,
                json!({"amount": "12.5", "invoice_number": "INV-1", "description": "April", "external_id": "AP-1"}),
            ),
        )
        .await;
    let expense = created.ok(201).clone();
    let path = format!("{EXPENSES}/{}", id_of(&expense));
    assert_eq!(created.header("location").as_deref(), Some(path.as_str()));
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(expense["amount"], "12.50");
    assert_eq!(expense["study_id"], study_id.as_str(), "the line's study");
    assert_eq!(expense["currency"], "CHF", "the line's currency");
    assert_eq!(expense["budget_line_id"], line_id.as_str());
    assert_eq!(expense["incurred_on"], "2026-04-30");
    assert_eq!(expense["invoice_number"], "INV-1");
    assert_eq!(expense["version"], 1);

    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200), &expense);
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));

    let patched = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"amount": "13.00", "invoice_number": null}),
        )
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["amount"], "13.00");
    assert_eq!(patched["invoice_number"], Value::Null);
    assert_eq!(patched["currency"], "CHF");
    let same = app
        .patch(&path, &app.admin_token, &json!({"currency": "CHF"}))
        .await;
    assert_eq!(same.ok(200)["version"], 2, "nothing changed");

    app.delete(&path, &app.admin_token).await.ok(204);
    app.get(&path, &app.admin_token).await.problem(404);
    app.delete(&path, &app.admin_token).await.problem(404);
    let listed = app
        .get(
            &format!("{EXPENSES}?budget_line_id={line_id}&include_deleted=true"),
            &app.admin_token,
        )
        .await;
    assert!(listed.ok(200)["data"][0]["deleted_at"].is_string());
}

#[actix_web::test]
async fn money_must_be_an_exact_decimal_string() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({})).await;
    let line_id = id_of(&line);
    let line_path = format!("{LINES}/{line_id}");
    let expense = create_expense(&app, &line_id, json!({})).await;
    let expense_path = format!("{EXPENSES}/{}", id_of(&expense));
    let before = app.fingerprint().await;

    // Refused everywhere money is taken.
    let everywhere = [
        // A JSON number is the wrong JSON type for money (issue 13: all 422).
        (json!(1000), "type"),
        (json!(12.5), "type"),
        (json!("1.234"), "format"),
        (json!("1e3"), "format"),
        (json!("1,000.00"), "format"),
        (json!(""), "format"),
        (json!("1234567890123.00"), "format"),
    ];
    let lines: Vec<(&str, Vec<(Value, &str)>)> = vec![
        (
            "planned_amount",
            everywhere
                .iter()
                .cloned()
                .chain([(json!("-5.00"), "range"), (json!("-0.01"), "range")])
                .collect(),
        ),
        (
            "committed_amount",
            everywhere
                .iter()
                .cloned()
                .chain([(json!("-5.00"), "range")])
                .collect(),
        ),
    ];
    for (field, cases) in lines {
        for (value, code) in cases {
            let what = format!("{field} = {value}");
            let post = app
                .post(
                    LINES,
                    &app.admin_token,
                    &line_body(&study_id, json!({ field: value })),
                )
                .await;
            assert_eq!(
                refusal(&post),
                (field.to_string(), code.to_string()),
                "POST {what}"
            );
            let patch = app
                .patch(&line_path, &app.admin_token, &json!({ field: value }))
                .await;
            assert_eq!(
                refusal(&patch),
                (field.to_string(), code.to_string()),
                "PATCH {what}"
            );
        }
    }
    let amounts: Vec<(Value, &str)> = everywhere
        .iter()
        .cloned()
        .chain([
            (json!("0.00"), "range"),
            (json!("0"), "range"),
            (json!("-5.00"), "range"),
        ])
        .collect();
    for (value, code) in amounts {
        let what = format!("amount = {value}");
        let post = app
            .post(
                EXPENSES,
                &app.admin_token,
                &expense_body(&line_id, json!({ "amount": value })),
            )
            .await;
        assert_eq!(
            refusal(&post),
            ("amount".into(), code.to_string()),
            "POST {what}"
        );
        let patch = app
            .patch(&expense_path, &app.admin_token, &json!({ "amount": value }))
            .await;
        assert_eq!(
            refusal(&patch),
            ("amount".into(), code.to_string()),
            "PATCH {what}"
        );
    }
    // The message tells a client how to send money.
    let number = app
        .post(
            EXPENSES,
            &app.admin_token,
            &expense_body(&line_id, json!({"amount": 12.5})),
        )
        .await;
    assert!(number.text.contains("decimal string"), "{}", number.text);
    assert_eq!(app.fingerprint().await, before, "nothing was written");

    // Zero is a plan or a commitment; one cent is an expense; the largest NUMERIC(14,2) fits.
    let zero = create_line(
        &app,
        &study_id,
        json!({"planned_amount": "0", "committed_amount": "0.00"}),
    )
    .await;
    assert_eq!(zero["planned_amount"], "0.00");
    let big = create_line(
        &app,
        &study_id,
        json!({"planned_amount": "999999999999.99"}),
    )
    .await;
    assert_eq!(big["planned_amount"], "999999999999.99");
    let cent = create_expense(&app, &line_id, json!({"amount": "0.01"})).await;
    assert_eq!(cent["amount"], "0.01");
}

#[actix_web::test]
async fn actual_and_remaining_are_exact_sums_of_live_expenses() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({"planned_amount": "0.30"})).await;
    let line_id = id_of(&line);
    let other = create_line(&app, &study_id, json!({"planned_amount": "100.00"})).await;
    let other_id = id_of(&other);
    let path = format!("{LINES}/{line_id}");

    let a = create_expense(&app, &line_id, json!({"amount": "0.10"})).await;
    create_expense(&app, &line_id, json!({"amount": "0.20"})).await;
    create_expense(&app, &other_id, json!({"amount": "40.00"})).await;

    // 0.1 + 0.2 in floating point is 0.30000000000000004, and 0.3 minus that is not zero.
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.30");
    assert_eq!(read.body["remaining_amount"], "0.00");
    assert_eq!(read.body["version"], 1, "expenses do not change the line");

    let listed = app
        .get(&format!("{LINES}?study_id={study_id}"), &app.admin_token)
        .await;
    let data = listed.ok(200)["data"].as_array().unwrap().clone();
    let by_id = |id: &str| data.iter().find(|l| l["id"] == id).expect("listed").clone();
    assert_eq!(by_id(&line_id)["actual_amount"], "0.30");
    assert_eq!(by_id(&line_id)["remaining_amount"], "0.00");
    assert_eq!(by_id(&other_id)["actual_amount"], "40.00");
    assert_eq!(by_id(&other_id)["remaining_amount"], "60.00");

    // Overspent: remaining goes negative.
    let big = create_expense(&app, &line_id, json!({"amount": "1.05"})).await;
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200)["actual_amount"], "1.35");
    assert_eq!(read.body["remaining_amount"], "-1.05");

    // A deleted expense no longer counts; a changed one counts with its new amount.
    app.delete(&format!("{EXPENSES}/{}", id_of(&big)), &app.admin_token)
        .await
        .ok(204);
    app.patch(
        &format!("{EXPENSES}/{}", id_of(&a)),
        &app.admin_token,
        &json!({"amount": "0.05"}),
    )
    .await
    .ok(200);
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.25");
    assert_eq!(read.body["remaining_amount"], "0.05");

    // Moving an expense to another line of the study moves its amount.
    app.patch(
        &format!("{EXPENSES}/{}", id_of(&a)),
        &app.admin_token,
        &json!({"budget_line_id": other_id}),
    )
    .await
    .ok(200);
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.20");
    assert_eq!(read.body["remaining_amount"], "0.10");
    let read_other = app
        .get(&format!("{LINES}/{other_id}"), &app.admin_token)
        .await;
    assert_eq!(read_other.ok(200)["actual_amount"], "40.05");
    assert_eq!(read_other.body["remaining_amount"], "59.95");

    // A change to the plan is answered with the remaining amount it leaves.
    let patched = app
        .patch(&path, &app.admin_token, &json!({"planned_amount": "0.10"}))
        .await;
    assert_eq!(patched.ok(200)["actual_amount"], "0.20");
    assert_eq!(patched.body["remaining_amount"], "-0.10");
}

#[actix_web::test]
async fn currencies_are_the_studys() {
    let app = spawn_app().await;
    let study_id = study(&app).await; // EUR
    let before = app.fingerprint().await;
    let usd = app
        .post(
            LINES,
            &app.admin_token,
            &line_body(&study_id, json!({"currency": "USD"})),
        )
        .await;
    assert_eq!(refusal(&usd), ("currency".into(), "mismatch".into()));
    assert!(usd.text.contains("EUR"), "{}", usd.text);
    let bad = app
        .post(
            LINES,
            &app.admin_token,
            &line_body(&study_id, json!({"currency": "eur"})),
        )
        .await;
    assert_eq!(refusal(&bad), ("currency".into(), "format".into()));
    assert_eq!(app.fingerprint().await, before);

    let line = create_line(&app, &study_id, json!({"currency": "EUR"})).await;
    assert_eq!(line["currency"], "EUR");
    let line_path = format!("{LINES}/{}", id_of(&line));
    let other_study = study(&app).await;
    let before = app.fingerprint().await;
    let patch = app
        .patch(&line_path, &app.admin_token, &json!({"currency": "USD"}))
        .await;
    assert_eq!(refusal(&patch), ("currency".into(), "mismatch".into()));

    // An expense answers its line's study and currency; it may restate the currency, never
    // another one, and never names a study itself.
    let line_id = id_of(&line);
    let other_currency = app
        .post(
            EXPENSES,
            &app.admin_token,
            &expense_body(&line_id, json!({"currency": "USD"})),
        )
        .await;
    assert_eq!(
        refusal(&other_currency),
        ("currency".into(), "mismatch".into())
    );
    let with_study = app
        .post(
            EXPENSES,
            &app.admin_token,
            &expense_body(&line_id, json!({"study_id": other_study})),
        )
        .await;
    assert_eq!(
        refusal(&with_study),
        ("study_id".into(), "unknown_field".into())
    );
    assert_eq!(app.fingerprint().await, before);

    let expense = create_expense(&app, &line_id, json!({"currency": "EUR"})).await;
    assert_eq!(expense["currency"], "EUR");
    assert_eq!(expense["study_id"], study_id.as_str());
    let expense_path = format!("{EXPENSES}/{}", id_of(&expense));
    let before = app.fingerprint().await;
    let patch = app
        .patch(&expense_path, &app.admin_token, &json!({"currency": "GBP"}))
        .await;
    assert_eq!(refusal(&patch), ("currency".into(), "mismatch".into()));
    let patch = app
        .patch(
            &expense_path,
            &app.admin_token,
            &json!({"study_id": other_study}),
        )
        .await;
    assert_eq!(refusal(&patch), ("study_id".into(), "unknown_field".into()));

    // The study's currency is its budget's: it cannot change while the study has lines.
    let study_path = format!("/api/v1/studies/{study_id}");
    app.patch(&study_path, &app.admin_token, &json!({"currency": "USD"}))
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before);
    app.delete(&expense_path, &app.admin_token).await.ok(204);
    app.delete(&line_path, &app.admin_token).await.ok(204);
    let changed = app
        .patch(&study_path, &app.admin_token, &json!({"currency": "USD"}))
        .await;
    assert_eq!(changed.ok(200)["currency"], "USD");
    let line = create_line(&app, &study_id, json!({})).await;
    assert_eq!(line["currency"], "USD");
}

#[actix_web::test]
async fn a_line_with_live_expenses_cannot_be_deleted() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({})).await;
    let line_id = id_of(&line);
    let line_path = format!("{LINES}/{line_id}");
    let a = create_expense(&app, &line_id, json!({})).await;
    let b = create_expense(&app, &line_id, json!({})).await;

    let before = app.fingerprint().await;
    let refused = app.delete(&line_path, &app.admin_token).await;
    assert!(
        refused.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("2 live expense")
    );
    // Nor can its study, while the line is live.
    app.delete(&format!("/api/v1/studies/{study_id}"), &app.admin_token)
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before, "nothing was deleted");

    app.delete(&format!("{EXPENSES}/{}", id_of(&a)), &app.admin_token)
        .await
        .ok(204);
    app.delete(&line_path, &app.admin_token).await.problem(409);
    app.delete(&format!("{EXPENSES}/{}", id_of(&b)), &app.admin_token)
        .await
        .ok(204);
    app.delete(&line_path, &app.admin_token).await.ok(204);

    // No expense can be booked on a deleted line.
    let before = app.fingerprint().await;
    app.post(
        EXPENSES,
        &app.admin_token,
        &expense_body(&line_id, json!({})),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before);
    app.delete(&format!("/api/v1/studies/{study_id}"), &app.admin_token)
        .await
        .ok(204);
}

#[actix_web::test]
async fn invalid_budget_lines_are_refused() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let live_vendor = insert_vendor(&app, false).await;
    let deleted_vendor = insert_vendor(&app, true).await;
    let before = app.fingerprint().await;
    let cases = [
        (json!({"description": " "}), "description", "blank"),
        (json!({"description": null}), "description", "not_nullable"),
        (
            json!({"planned_amount": null}),
            "planned_amount",
            "not_nullable",
        ),
        (json!({"category": "travel"}), "category", "enum"),
        (
            json!({"vendor_id": Uuid::now_v7()}),
            "vendor_id",
            "reference",
        ),
        (
            json!({"vendor_id": deleted_vendor}),
            "vendor_id",
            "reference",
        ),
        (json!({"external_id": ""}), "external_id", "length"),
        (json!({"id": Uuid::now_v7()}), "id", "unknown_field"),
        (
            json!({"actual_amount": "1.00"}),
            "actual_amount",
            "unknown_field",
        ),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .post(
                LINES,
                &app.admin_token,
                &line_body(&study_id, overrides.clone()),
            )
            .await;
        assert_eq!(
            refusal(&resp),
            (field.to_string(), code.to_string()),
            "{overrides}"
        );
    }
    let mut missing = line_body(&study_id, json!({}));
    missing.as_object_mut().unwrap().remove("planned_amount");
    let resp = app.post(LINES, &app.admin_token, &missing).await;
    assert_eq!(refusal(&resp), ("planned_amount".into(), "required".into()));
    // A study that does not exist, or is deleted, is a 404.
    app.post(
        LINES,
        &app.admin_token,
        &line_body(&Uuid::now_v7().to_string(), json!({})),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before, "nothing was written");
    let gone = study(&app).await;
    app.delete(&format!("/api/v1/studies/{gone}"), &app.admin_token)
        .await
        .ok(204);
    let before = app.fingerprint().await;
    app.post(LINES, &app.admin_token, &line_body(&gone, json!({})))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);

    let line = create_line(
        &app,
        &study_id,
        json!({"vendor_id": live_vendor, "external_id": "X-1"}),
    )
    .await;
    assert_eq!(line["vendor_id"], live_vendor.as_str());
    let path = format!("{LINES}/{}", id_of(&line));
    let other = study(&app).await;
    let before_move = app.fingerprint().await;
    // Unique external ids, a line fixed in its study, and a vendor that exists.
    app.post(
        LINES,
        &app.admin_token,
        &line_body(&study_id, json!({"external_id": "X-1"})),
    )
    .await
    .problem(409);
    let moved = app
        .patch(&path, &app.admin_token, &json!({"study_id": other}))
        .await;
    assert_eq!(refusal(&moved), ("study_id".into(), "immutable".into()));
    let vendor = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"vendor_id": deleted_vendor}),
        )
        .await;
    assert_eq!(refusal(&vendor), ("vendor_id".into(), "reference".into()));
    assert_eq!(app.fingerprint().await, before_move);
    let cleared = app
        .patch(&path, &app.admin_token, &json!({"vendor_id": null}))
        .await;
    assert_eq!(cleared.ok(200)["vendor_id"], Value::Null);
}

#[actix_web::test]
async fn invalid_expenses_are_refused() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({})).await;
    let line_id = id_of(&line);
    let before = app.fingerprint().await;
    let cases = [
        (
            json!({"incurred_on": "2026-02-30"}),
            "incurred_on",
            "format",
        ),
        (json!({"incurred_on": null}), "incurred_on", "not_nullable"),
        (
            json!({"invoice_number": "x".repeat(101)}),
            "invoice_number",
            "length",
        ),
        (
            json!({"budget_line_id": "nope"}),
            "budget_line_id",
            "format",
        ),
        (json!({"version": 3}), "version", "unknown_field"),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .post(
                EXPENSES,
                &app.admin_token,
                &expense_body(&line_id, overrides.clone()),
            )
            .await;
        assert_eq!(
            refusal(&resp),
            (field.to_string(), code.to_string()),
            "{overrides}"
        );
    }
    // A line that does not exist is a 404.
    app.post(
        EXPENSES,
        &app.admin_token,
        &expense_body(&Uuid::now_v7().to_string(), json!({})),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before);

    let ok = create_expense(
        &app,
        &line_id,
        json!({"invoice_number": "x".repeat(100), "external_id": "AP-9"}),
    )
    .await;
    let path = format!("{EXPENSES}/{}", id_of(&ok));
    let other_study = study(&app).await;
    let foreign = create_line(&app, &other_study, json!({})).await;
    let before_move = app.fingerprint().await;
    app.post(
        EXPENSES,
        &app.admin_token,
        &expense_body(&line_id, json!({"external_id": "AP-9"})),
    )
    .await
    .problem(409);

    // An expense stays in its study: a line of another study is refused, a line that does
    // not exist is not found.
    let moved = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"budget_line_id": id_of(&foreign)}),
        )
        .await;
    assert_eq!(
        refusal(&moved),
        ("budget_line_id".into(), "other_study".into())
    );
    app.patch(
        &path,
        &app.admin_token,
        &json!({"budget_line_id": Uuid::now_v7()}),
    )
    .await
    .problem(404);
    assert_eq!(app.fingerprint().await, before_move);
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.ok(200)["budget_line_id"], line_id.as_str());
    assert_eq!(read.body["study_id"], study_id.as_str());
}

#[actix_web::test]
async fn if_match_guards_updates_and_deletes() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({})).await;
    let expense = create_expense(&app, &id_of(&line), json!({})).await;
    for (path, field, value) in [
        (
            format!("{LINES}/{}", id_of(&line)),
            "description",
            json!("Changed"),
        ),
        (
            format!("{EXPENSES}/{}", id_of(&expense)),
            "amount",
            json!("11.00"),
        ),
    ] {
        let before = app.fingerprint().await;
        let stale = app
            .send(
                app.http
                    .patch(app.url(&path))
                    .bearer_auth(&app.admin_token)
                    .header("content-type", "application/merge-patch+json")
                    .header("if-match", "\"7\"")
                    .body(json!({ field: value }).to_string()),
            )
            .await;
        stale.problem(412);
        let stale_delete = app
            .send(
                app.http
                    .delete(app.url(&path))
                    .bearer_auth(&app.admin_token)
                    .header("if-match", "\"7\""),
            )
            .await;
        stale_delete.problem(412);
        assert_eq!(app.fingerprint().await, before, "{path}");

        let fresh = app
            .send(
                app.http
                    .patch(app.url(&path))
                    .bearer_auth(&app.admin_token)
                    .header("content-type", "application/merge-patch+json")
                    .header("if-match", "\"1\"")
                    .body(json!({ field: value }).to_string()),
            )
            .await;
        assert_eq!(fresh.ok(200)[field], value, "{path}");
        assert_eq!(fresh.header("etag").as_deref(), Some("\"2\""));
    }
}

#[actix_web::test]
async fn every_write_is_audited_with_the_study() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let line = create_line(&app, &study_id, json!({"planned_amount": "5.00"})).await;
    let line_id = id_of(&line);
    let expense = create_expense(&app, &line_id, json!({"amount": "2.50"})).await;
    let expense_id = id_of(&expense);
    let reason = |request: reqwest::RequestBuilder| {
        request
            .bearer_auth(&app.admin_token)
            .header("x-change-reason", "invoice corrected")
    };
    app.send(
        reason(app.http.patch(app.url(&format!("{EXPENSES}/{expense_id}"))))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"amount": "2.75"}).to_string()),
    )
    .await
    .ok(200);
    app.send(reason(
        app.http
            .delete(app.url(&format!("{EXPENSES}/{expense_id}"))),
    ))
    .await
    .ok(204);
    app.patch(
        &format!("{LINES}/{line_id}"),
        &app.admin_token,
        &json!({"planned_amount": "6.00"}),
    )
    .await
    .ok(200);
    app.delete(&format!("{LINES}/{line_id}"), &app.admin_token)
        .await
        .ok(204);

    let events = app.audit_events(&expense_id).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for event in &events {
        assert_eq!(event["entity_type"], "expense");
        assert_eq!(event["study_id"], study_id.as_str());
    }
    assert_eq!(
        events[0]["changes"]["amount"],
        json!({"old": null, "new": "2.50"})
    );
    assert_eq!(events[0]["changes"]["currency"]["new"], "EUR");
    assert_eq!(
        events[1]["changes"],
        json!({"amount": {"old": "2.50", "new": "2.75"}})
    );
    assert_eq!(events[1]["reason"], "invoice corrected");
    assert_eq!(events[1]["data"]["amount"], "2.75");
    assert!(events[2]["data"].is_null());

    let events = app.audit_events(&line_id).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for event in &events {
        assert_eq!(event["entity_type"], "budget_line");
        assert_eq!(event["study_id"], study_id.as_str());
    }
    assert_eq!(events[0]["changes"]["planned_amount"]["new"], "5.00");
    // The derived amounts are recorded as they stood when the line itself changed.
    assert_eq!(
        events[1]["changes"],
        json!({
            "planned_amount": {"old": "5.00", "new": "6.00"},
            "remaining_amount": {"old": "5.00", "new": "6.00"}
        })
    );
    assert_eq!(events[1]["data"]["actual_amount"], "0.00");
    assert!(events[2]["changes"]["deleted_at"]["new"].is_string());
}

#[actix_web::test]
async fn lists_filter_by_their_fields() {
    let app = spawn_app().await;
    let (a, b) = (study(&app).await, study(&app).await);
    let vendor = insert_vendor(&app, false).await;
    let la = id_of(&create_line(&app, &a, json!({"vendor_id": vendor, "external_id": "LA"})).await);
    let la2 = id_of(&create_line(&app, &a, json!({"category": "lab"})).await);
    let lb = id_of(&create_line(&app, &b, json!({"category": "lab"})).await);
    let token = &app.admin_token;
    let lines = |query: String| listed(&app, LINES, query);
    assert_eq!(lines(format!("study_id={a}")).await, set(&[&la, &la2]));
    assert_eq!(lines(format!("vendor_id={vendor}")).await, set(&[&la]));
    assert_eq!(lines("category=lab".into()).await, set(&[&la2, &lb]));
    assert_eq!(
        lines(format!("category=lab&study_id={b}")).await,
        set(&[&lb])
    );
    assert_eq!(lines("external_id=LA".into()).await, set(&[&la]));
    assert!(lines("external_id=none".into()).await.is_empty());
    app.get(&format!("{LINES}?category=travel"), token)
        .await
        .problem(400);

    let e1 = id_of(
        &create_expense(
            &app,
            &la,
            json!({"incurred_on": "2026-03-01", "external_id": "E1"}),
        )
        .await,
    );
    let e2 = id_of(&create_expense(&app, &la2, json!({"incurred_on": "2026-03-15"})).await);
    let e3 = id_of(&create_expense(&app, &lb, json!({"incurred_on": "2026-03-31"})).await);
    let expenses = |query: String| listed(&app, EXPENSES, query);
    assert_eq!(expenses(format!("study_id={a}")).await, set(&[&e1, &e2]));
    assert_eq!(expenses(format!("study_id={b}")).await, set(&[&e3]));
    assert_eq!(expenses(format!("budget_line_id={la2}")).await, set(&[&e2]));
    assert_eq!(expenses("external_id=E1".into()).await, set(&[&e1]));
    // Both ends of the date range are inclusive.
    assert_eq!(
        expenses("incurred_from=2026-03-15".into()).await,
        set(&[&e2, &e3])
    );
    assert_eq!(
        expenses("incurred_to=2026-03-15".into()).await,
        set(&[&e1, &e2])
    );
    assert_eq!(
        expenses("incurred_from=2026-03-01&incurred_to=2026-03-01".into()).await,
        set(&[&e1])
    );
    assert_eq!(
        expenses(format!("incurred_from=2026-03-02&study_id={a}")).await,
        set(&[&e2])
    );
    app.get(&format!("{EXPENSES}?incurred_from=2026-02-30"), token)
        .await
        .problem(400);

    // Pages: every line exactly once.
    let first = app.get(&format!("{LINES}?limit=2"), token).await;
    let cursor = first.ok(200)["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(&format!("{LINES}?limit=2&cursor={cursor}"), token)
        .await;
    assert!(second.ok(200)["next_cursor"].is_null());
    let mut all = ids(&first);
    all.extend(ids(&second));
    assert_eq!(all, set(&[&la, &la2, &lb]));
}

// --- Who may do what -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Line,
    Expense,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Create,
    Patch,
    Delete,
}

/// `[in scope, out of scope]`: the object is in study A (the `cro`'s, the `site`'s) or B.
type Pair = [u16; 2];

/// In a `List` column, whether the object is listed (200) or left out (404).
const L: u16 = 200;
const H: u16 = 404;

/// One line per role, the same for both resources: budgets are study data that `admin`
/// and `sponsor` manage everywhere, a `cro` within its studies, `auditor` and `analyst`
/// read, and `site` and `vendor` clients do not see at all (not even a line that names the
/// vendor). A create names the study (line) or line (expense) in its body.
#[rustfmt::skip]
const TABLE: [(Role, Pair, Pair, Pair, Pair, Pair); 7] = [
    //                list    read        create      patch       delete
    (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
    (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
    (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
    (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
    (Role::Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
    (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
];

struct World {
    app: TestApp,
    tokens: Vec<(Role, String)>,
    /// Study A and B.
    studies: [String; 2],
    /// A line in each study (the one in A names the vendor client's vendor).
    lines: [String; 2],
    /// An expense on each line.
    expenses: [String; 2],
}

impl World {
    async fn new() -> Self {
        let app = spawn_app().await;
        let studies = [study(&app).await, study(&app).await];
        let site_a = id_of(&app.create_site(&studies[0], json!({})).await);
        let vendor = insert_vendor(&app, false).await;
        let lines = [
            id_of(&create_line(&app, &studies[0], json!({"vendor_id": vendor})).await),
            id_of(&create_line(&app, &studies[1], json!({})).await),
        ];
        let expenses = [
            id_of(&create_expense(&app, &lines[0], json!({})).await),
            id_of(&create_expense(&app, &lines[1], json!({})).await),
        ];
        let mut tokens = vec![(Role::Admin, app.admin_token.clone())];
        for (role, ..) in TABLE.iter().skip(1) {
            let token = match role {
                Role::Cro => app.token_for(*role, &[&studies[0]], &[], None).await,
                Role::Site => app.token_for(*role, &[], &[&site_a], None).await,
                Role::Vendor => app.token_for(*role, &[], &[], Some(&vendor)).await,
                _ => app.token_for(*role, &[], &[], None).await,
            };
            tokens.push((*role, token));
        }
        Self {
            app,
            tokens,
            studies,
            lines,
            expenses,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn object(&self, res: Res, scope: usize) -> &str {
        match res {
            Res::Line => &self.lines[scope],
            Res::Expense => &self.expenses[scope],
        }
    }

    /// A delete expected to succeed acts on an object made for it (a line without
    /// expenses, a new expense on the same line), in the same study as the original.
    async fn target(&self, res: Res, op: Op, scope: usize, status: u16) -> String {
        if op != Op::Delete || status != 204 {
            return self.object(res, scope).to_string();
        }
        match res {
            Res::Line => id_of(&create_line(&self.app, &self.studies[scope], json!({})).await),
            Res::Expense => id_of(&create_expense(&self.app, &self.lines[scope], json!({})).await),
        }
    }

    fn create_body(&self, res: Res, scope: usize, role: Role) -> Value {
        let description = format!("made by {role}");
        match res {
            Res::Line => line_body(&self.studies[scope], json!({ "description": description })),
            Res::Expense => expense_body(&self.lines[scope], json!({ "description": description })),
        }
    }
}

fn collection(res: Res) -> &'static str {
    match res {
        Res::Line => LINES,
        Res::Expense => EXPENSES,
    }
}

async fn run_table(world: &World, res: Res) {
    let app = &world.app;
    let base = collection(res);
    // Lists first, while the two objects are all there is.
    for (role, list, ..) in TABLE {
        let listed = ids(&app.get(base, world.token(role)).await);
        let expected: BTreeSet<String> = (0..2)
            .filter(|&scope| list[scope] == L)
            .map(|scope| world.object(res, scope).to_string())
            .collect();
        assert_eq!(listed, expected, "{role} lists {res:?}");
    }
    for op in [Op::Read, Op::Patch, Op::Create, Op::Delete] {
        for (role, _, read, create, patch, delete) in TABLE {
            let pair = match op {
                Op::Read => read,
                Op::Create => create,
                Op::Patch => patch,
                Op::Delete => delete,
            };
            for (scope, status) in pair.into_iter().enumerate() {
                let what = format!(
                    "{role} {op:?} {res:?} {}",
                    ["in scope", "out of scope"][scope]
                );
                let token = world.token(role);
                let target = world.target(res, op, scope, status).await;
                let path = format!("{base}/{target}");
                let description = format!("patched by {role}");
                let before = app.fingerprint().await;
                let resp = match op {
                    Op::Read => app.get(&path, token).await,
                    Op::Create => {
                        app.post(base, token, &world.create_body(res, scope, role))
                            .await
                    }
                    Op::Patch => {
                        app.patch(&path, token, &json!({ "description": description }))
                            .await
                    }
                    Op::Delete => app.delete(&path, token).await,
                };
                assert_eq!(resp.status, status, "{what}: {}", resp.text);
                let after = app.fingerprint().await;
                if status >= 400 {
                    resp.problem(status);
                    assert_eq!(
                        before, after,
                        "{what}: a refused request changed the database"
                    );
                } else if op != Op::Read {
                    assert_ne!(before, after, "{what}: a successful write changed nothing");
                }
                match (op, status) {
                    (Op::Read, 200) => assert_eq!(resp.body["id"], target.as_str(), "{what}"),
                    (Op::Patch, 200) => {
                        assert_eq!(resp.body["description"], description.as_str(), "{what}")
                    }
                    (Op::Create, 201) => {
                        assert_eq!(
                            resp.body["study_id"],
                            world.studies[scope].as_str(),
                            "{what}"
                        )
                    }
                    (Op::Delete, 204) => {
                        app.get(&path, &app.admin_token).await.problem(404);
                    }
                    _ => {}
                }
            }
        }
    }
}

#[actix_web::test]
async fn budget_line_endpoints_follow_the_role_table() {
    let world = World::new().await;
    run_table(&world, Res::Line).await;
}

#[actix_web::test]
async fn expense_endpoints_follow_the_role_table() {
    let world = World::new().await;
    run_table(&world, Res::Expense).await;
}

#[actix_web::test]
async fn a_cro_cannot_reach_into_another_study_through_a_reference() {
    let world = World::new().await;
    let app = &world.app;
    let cro = world.token(Role::Cro);
    let before = app.fingerprint().await;
    // An expense on a line of study B, or moved there: not found, like a line that does
    // not exist, and nothing written.
    let outside = app
        .post(EXPENSES, cro, &expense_body(&world.lines[1], json!({})))
        .await;
    outside.problem(404);
    let missing = app
        .post(
            EXPENSES,
            cro,
            &expense_body(&Uuid::now_v7().to_string(), json!({})),
        )
        .await;
    missing.problem(404);
    assert_eq!(outside.body["detail"], missing.body["detail"]);
    let moved = app
        .patch(
            &format!("{EXPENSES}/{}", world.expenses[0]),
            cro,
            &json!({"budget_line_id": world.lines[1]}),
        )
        .await;
    moved.problem(404);
    // A read-only role that sees both lines is refused the move for its role (403).
    let auditor = world.token(Role::Auditor);
    app.patch(
        &format!("{EXPENSES}/{}", world.expenses[0]),
        auditor,
        &json!({"budget_line_id": world.lines[1]}),
    )
    .await
    .problem(403);
    assert_eq!(app.fingerprint().await, before);
    // Its own study is fine.
    let inside = app
        .post(EXPENSES, cro, &expense_body(&world.lines[0], json!({})))
        .await;
    assert_eq!(inside.ok(201)["study_id"], world.studies[0].as_str());
}

#[actix_web::test]
async fn expenses_filter_by_their_lines_currency() {
    let app = spawn_app().await;
    let mut expense_of = std::collections::BTreeMap::new();
    for currency in ["EUR", "USD"] {
        let study = app.create_study(json!({"currency": currency})).await;
        let line = app
            .post("/api/v1/budget-lines", &app.admin_token, &json!({"study_id": study["id"], "category": "lab", "description": "Lab", "planned_amount": "100.00"}))
            .await;
        let expense = app
            .post("/api/v1/expenses", &app.admin_token, &json!({"budget_line_id": line.ok(201)["id"], "amount": "10.00", "incurred_on": "2026-01-05"}))
            .await;
        assert_eq!(expense.ok(201)["currency"], currency);
        expense_of.insert(currency, expense.id());
    }
    let usd = app
        .get("/api/v1/expenses?currency=USD", &app.admin_token)
        .await;
    let ids: Vec<&str> = usd.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![expense_of["USD"].as_str()]);
}
