//! Budget lines and expenses: create, read, update, delete, exact money, the amounts a line
//! derives from its expenses, currencies, and who may do what.

use std::collections::BTreeSet;

use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, bad, column, id_of, spawn_app};
use crate::roles::World;

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
    app.admin_post(LINES, &line_body(study_id, overrides))
        .await
        .ok(201)
        .clone()
}

/// Creates an expense (as admin) with `overrides` merged in.
async fn create_expense(app: &TestApp, line_id: &str, overrides: Value) -> Value {
    app.admin_post(EXPENSES, &expense_body(line_id, overrides))
        .await
        .ok(201)
        .clone()
}

/// A new study and a budget line in it: their ids.
async fn study_and_line(app: &TestApp) -> (String, String) {
    let study_id = study(app).await;
    let line = create_line(app, &study_id, json!({})).await;
    (study_id, id_of(&line))
}

async fn study(app: &TestApp) -> String {
    app.study_id(json!({})).await
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
    crate::helpers::ids(resp.ok(200))
}

/// The ids an admin list with this query answers.
async fn listed(app: &TestApp, base: &str, query: String) -> BTreeSet<String> {
    ids(&app.admin_get(&format!("{base}?{query}")).await)
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
    let body = line_body(
        &study_id,
        json!({"external_id": "FIN-1", "planned_amount": "250000.5"}),
    );
    let (line, path) = app.create_checked(LINES, &body).await;
    assert_eq!(line["study_id"], study_id.as_str());
    assert_eq!(line["currency"], "EUR", "the study's currency by default");
    assert_eq!(line["planned_amount"], "250000.50", "always two places");
    assert_eq!(line["committed_amount"], "0.00", "default");
    assert_eq!(line["actual_amount"], "0.00");
    assert_eq!(line["remaining_amount"], "250000.50");
    assert_eq!(line["vendor_id"], Value::Null);
    assert_eq!(line["version"], 1);

    app.assert_reads_back(&path, &line).await;

    let patched = app.admin_patch(&path, &json!({"committed_amount": "1200.00", "category": "lab", "description": "Central lab"}))
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["committed_amount"], "1200.00");
    assert_eq!(patched["category"], "lab");
    assert_eq!(patched["remaining_amount"], "250000.50");

    // A patch that changes nothing (currency null means "the study's") keeps the version.
    let same = app.admin_patch(&path, &json!({"currency": null})).await;
    assert_eq!(same.ok(200)["version"], 2);

    let listed = app.admin_get(&format!("{LINES}?study_id={study_id}")).await;
    assert_eq!(listed.ok(200)["data"][0]["committed_amount"], "1200.00");

    app.assert_deleted(&path, &json!({"description": "again"}))
        .await;
    let listed = app.admin_get(&format!("{LINES}?study_id={study_id}")).await;
    assert!(ids(&listed).is_empty());
    let with_deleted = app
        .admin_get(&format!("{LINES}?study_id={study_id}&include_deleted=true"))
        .await;
    assert!(with_deleted.ok(200)["data"][0]["deleted_at"].is_string());
    // The external id is free again once its line is deleted.
    create_line(&app, &study_id, json!({"external_id": "FIN-1"})).await;
}

#[actix_web::test]
async fn expense_lifecycle() {
    let app = spawn_app().await;
    let study_id = app.study_id(json!({"currency": "CHF"})).await;
    let line = create_line(&app, &study_id, json!({})).await;
    let line_id = id_of(&line);
    let body = expense_body(
        &line_id,
        json!({"amount": "12.5", "invoice_number": "INV-1", "description": "April", "external_id": "AP-1"}),
    );
    let (expense, path) = app.create_checked(EXPENSES, &body).await;
    assert_eq!(expense["amount"], "12.50");
    assert_eq!(expense["study_id"], study_id.as_str(), "the line's study");
    assert_eq!(expense["currency"], "CHF", "the line's currency");
    assert_eq!(expense["budget_line_id"], line_id.as_str());
    assert_eq!(expense["incurred_on"], "2026-04-30");
    assert_eq!(expense["invoice_number"], "INV-1");
    assert_eq!(expense["version"], 1);

    app.assert_reads_back(&path, &expense).await;

    let patched = app
        .admin_patch(&path, &json!({"amount": "13.00", "invoice_number": null}))
        .await;
    let patched = patched.ok(200);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["amount"], "13.00");
    assert_eq!(patched["invoice_number"], Value::Null);
    assert_eq!(patched["currency"], "CHF");
    let same = app.admin_patch(&path, &json!({"currency": "CHF"})).await;
    assert_eq!(same.ok(200)["version"], 2, "nothing changed");

    app.assert_soft_delete(&path, &format!("{EXPENSES}?budget_line_id={line_id}"))
        .await;
    app.admin_delete(&path).await.problem(404);
}

#[actix_web::test]
async fn money_must_be_an_exact_decimal_string() {
    let app = spawn_app().await;
    let (study_id, line_id) = study_and_line(&app).await;
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
                .admin_post(LINES, &line_body(&study_id, json!({ field: value })))
                .await;
            assert_eq!(
                refusal(&post),
                (field.to_string(), code.to_string()),
                "POST {what}"
            );
            let patch = app.admin_patch(&line_path, &json!({ field: value })).await;
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
            .admin_post(
                EXPENSES,
                &expense_body(&line_id, json!({ "amount": value })),
            )
            .await;
        assert_eq!(
            refusal(&post),
            ("amount".into(), code.to_string()),
            "POST {what}"
        );
        let patch = app
            .admin_patch(&expense_path, &json!({ "amount": value }))
            .await;
        assert_eq!(
            refusal(&patch),
            ("amount".into(), code.to_string()),
            "PATCH {what}"
        );
    }
    // The message tells a client how to send money.
    let number = app
        .admin_post(EXPENSES, &expense_body(&line_id, json!({"amount": 12.5})))
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
    let read = app.admin_get(&path).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.30");
    assert_eq!(read.body["remaining_amount"], "0.00");
    assert_eq!(read.body["version"], 1, "expenses do not change the line");

    let listed = app.admin_get(&format!("{LINES}?study_id={study_id}")).await;
    let data = listed.ok(200)["data"].as_array().unwrap().clone();
    let by_id = |id: &str| data.iter().find(|l| l["id"] == id).expect("listed").clone();
    assert_eq!(by_id(&line_id)["actual_amount"], "0.30");
    assert_eq!(by_id(&line_id)["remaining_amount"], "0.00");
    assert_eq!(by_id(&other_id)["actual_amount"], "40.00");
    assert_eq!(by_id(&other_id)["remaining_amount"], "60.00");

    // Overspent: remaining goes negative.
    let big = create_expense(&app, &line_id, json!({"amount": "1.05"})).await;
    let read = app.admin_get(&path).await;
    assert_eq!(read.ok(200)["actual_amount"], "1.35");
    assert_eq!(read.body["remaining_amount"], "-1.05");

    // A deleted expense no longer counts; a changed one counts with its new amount.
    app.admin_delete(&format!("{EXPENSES}/{}", id_of(&big)))
        .await
        .ok(204);
    app.admin_patch_ok(
        &format!("{EXPENSES}/{}", id_of(&a)),
        &json!({"amount": "0.05"}),
    )
    .await;
    let read = app.admin_get(&path).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.25");
    assert_eq!(read.body["remaining_amount"], "0.05");

    // Moving an expense to another line of the study moves its amount.
    app.admin_patch(
        &format!("{EXPENSES}/{}", id_of(&a)),
        &json!({"budget_line_id": other_id}),
    )
    .await
    .ok(200);
    let read = app.admin_get(&path).await;
    assert_eq!(read.ok(200)["actual_amount"], "0.20");
    assert_eq!(read.body["remaining_amount"], "0.10");
    let read_other = app.admin_get(&format!("{LINES}/{other_id}")).await;
    assert_eq!(read_other.ok(200)["actual_amount"], "40.05");
    assert_eq!(read_other.body["remaining_amount"], "59.95");

    // A change to the plan is answered with the remaining amount it leaves.
    let patched = app
        .admin_patch(&path, &json!({"planned_amount": "0.10"}))
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
        .admin_post(LINES, &line_body(&study_id, json!({"currency": "USD"})))
        .await;
    assert_eq!(refusal(&usd), ("currency".into(), "mismatch".into()));
    assert!(usd.text.contains("EUR"), "{}", usd.text);
    let bad = app
        .admin_post(LINES, &line_body(&study_id, json!({"currency": "eur"})))
        .await;
    assert_eq!(refusal(&bad), ("currency".into(), "format".into()));
    assert_eq!(app.fingerprint().await, before);

    let line = create_line(&app, &study_id, json!({"currency": "EUR"})).await;
    assert_eq!(line["currency"], "EUR");
    let line_path = format!("{LINES}/{}", id_of(&line));
    let other_study = study(&app).await;
    let before = app.fingerprint().await;
    let patch = app
        .admin_patch(&line_path, &json!({"currency": "USD"}))
        .await;
    assert_eq!(refusal(&patch), ("currency".into(), "mismatch".into()));

    // An expense answers its line's study and currency; it may restate the currency, never
    // another one, and never names a study itself.
    let line_id = id_of(&line);
    let other_currency = app
        .admin_post(
            EXPENSES,
            &expense_body(&line_id, json!({"currency": "USD"})),
        )
        .await;
    assert_eq!(
        refusal(&other_currency),
        ("currency".into(), "mismatch".into())
    );
    let with_study = app
        .admin_post(
            EXPENSES,
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
        .admin_patch(&expense_path, &json!({"currency": "GBP"}))
        .await;
    assert_eq!(refusal(&patch), ("currency".into(), "mismatch".into()));
    let patch = app
        .admin_patch(&expense_path, &json!({"study_id": other_study}))
        .await;
    assert_eq!(refusal(&patch), ("study_id".into(), "unknown_field".into()));

    // The study's currency is its budget's: it cannot change while the study has lines.
    let study_path = format!("/api/v1/studies/{study_id}");
    app.admin_patch(&study_path, &json!({"currency": "USD"}))
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before);
    app.admin_delete_ok(&expense_path).await;
    app.admin_delete_ok(&line_path).await;
    let changed = app
        .admin_patch(&study_path, &json!({"currency": "USD"}))
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
    let refused = app.admin_delete(&line_path).await;
    assert!(refused.detail(409).contains("2 live expense"));
    // Nor can its study, while the line is live.
    app.admin_delete(&format!("/api/v1/studies/{study_id}"))
        .await
        .problem(409);
    assert_eq!(app.fingerprint().await, before, "nothing was deleted");

    app.admin_delete_ok(&format!("{EXPENSES}/{}", id_of(&a)))
        .await;
    app.admin_delete(&line_path).await.problem(409);
    app.admin_delete_ok(&format!("{EXPENSES}/{}", id_of(&b)))
        .await;
    app.admin_delete_ok(&line_path).await;

    // No expense can be booked on a deleted line.
    let before = app.fingerprint().await;
    app.admin_post(EXPENSES, &expense_body(&line_id, json!({})))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before);
    app.admin_delete_ok(&format!("/api/v1/studies/{study_id}"))
        .await;
}

#[actix_web::test]
async fn invalid_budget_lines_are_refused() {
    let app = spawn_app().await;
    let study_id = study(&app).await;
    let live_vendor = insert_vendor(&app, false).await;
    let deleted_vendor = insert_vendor(&app, true).await;
    let before = app.fingerprint().await;
    let cases = [
        bad("description", json!(" "), "blank"),
        bad("description", json!(null), "not_nullable"),
        bad("planned_amount", json!(null), "not_nullable"),
        bad("category", json!("travel"), "enum"),
        bad("vendor_id", json!(Uuid::now_v7()), "reference"),
        bad("vendor_id", json!(deleted_vendor), "reference"),
        bad("external_id", json!(""), "length"),
        bad("id", json!(Uuid::now_v7()), "unknown_field"),
        bad("actual_amount", json!("1.00"), "unknown_field"),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .admin_post(LINES, &line_body(&study_id, overrides.clone()))
            .await;
        assert_eq!(
            refusal(&resp),
            (field.to_string(), code.to_string()),
            "{overrides}"
        );
    }
    let mut missing = line_body(&study_id, json!({}));
    missing.as_object_mut().unwrap().remove("planned_amount");
    let resp = app.admin_post(LINES, &missing).await;
    assert_eq!(refusal(&resp), ("planned_amount".into(), "required".into()));
    // A study that does not exist, or is deleted, is a 404.
    app.admin_post(LINES, &line_body(&Uuid::now_v7().to_string(), json!({})))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before, "nothing was written");
    let gone = study(&app).await;
    app.admin_delete_ok(&format!("/api/v1/studies/{gone}"))
        .await;
    let before = app.fingerprint().await;
    app.admin_post(LINES, &line_body(&gone, json!({})))
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
    app.admin_post(LINES, &line_body(&study_id, json!({"external_id": "X-1"})))
        .await
        .problem(409);
    let moved = app.admin_patch(&path, &json!({"study_id": other})).await;
    assert_eq!(refusal(&moved), ("study_id".into(), "immutable".into()));
    let vendor = app
        .admin_patch(&path, &json!({"vendor_id": deleted_vendor}))
        .await;
    assert_eq!(refusal(&vendor), ("vendor_id".into(), "reference".into()));
    assert_eq!(app.fingerprint().await, before_move);
    let cleared = app.admin_patch(&path, &json!({"vendor_id": null})).await;
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
        bad("incurred_on", json!("2026-02-30"), "format"),
        bad("incurred_on", json!(null), "not_nullable"),
        bad("invoice_number", json!("x".repeat(101)), "length"),
        bad("budget_line_id", json!("nope"), "format"),
        bad("version", json!(3), "unknown_field"),
    ];
    for (overrides, field, code) in cases {
        let resp = app
            .admin_post(EXPENSES, &expense_body(&line_id, overrides.clone()))
            .await;
        assert_eq!(
            refusal(&resp),
            (field.to_string(), code.to_string()),
            "{overrides}"
        );
    }
    // A line that does not exist is a 404.
    app.admin_post(
        EXPENSES,
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
    app.admin_post(
        EXPENSES,
        &expense_body(&line_id, json!({"external_id": "AP-9"})),
    )
    .await
    .problem(409);

    // An expense stays in its study: a line of another study is refused, a line that does
    // not exist is not found.
    let moved = app
        .admin_patch(&path, &json!({"budget_line_id": id_of(&foreign)}))
        .await;
    assert_eq!(
        refusal(&moved),
        ("budget_line_id".into(), "other_study".into())
    );
    app.admin_patch(&path, &json!({"budget_line_id": Uuid::now_v7()}))
        .await
        .problem(404);
    assert_eq!(app.fingerprint().await, before_move);
    let read = app.admin_get(&path).await;
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
                app.request("PATCH", &path, &app.admin_token)
                    .header("content-type", "application/merge-patch+json")
                    .header("if-match", "\"7\"")
                    .body(json!({ field: value }).to_string()),
            )
            .await;
        stale.problem(412);
        let stale_delete = app
            .send(
                app.request("DELETE", &path, &app.admin_token)
                    .header("if-match", "\"7\""),
            )
            .await;
        stale_delete.problem(412);
        assert_eq!(app.fingerprint().await, before, "{path}");

        let fresh = app
            .send(
                app.request("PATCH", &path, &app.admin_token)
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
        reason(app.bare("PATCH", &format!("{EXPENSES}/{expense_id}")))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"amount": "2.75"}).to_string()),
    )
    .await
    .ok(200);
    app.send(reason(
        app.bare("DELETE", &format!("{EXPENSES}/{expense_id}")),
    ))
    .await
    .ok(204);
    app.admin_patch_ok(
        &format!("{LINES}/{line_id}"),
        &json!({"planned_amount": "6.00"}),
    )
    .await;
    app.admin_delete_ok(&format!("{LINES}/{line_id}")).await;

    let events = app
        .audit_trail(&expense_id, "expense", &["create", "update", "delete"])
        .await;
    for event in &events {
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

    let events = app
        .audit_trail(&line_id, "budget_line", &["create", "update", "delete"])
        .await;
    for event in &events {
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
    // Both ends of the date range are inclusive.
    let cases = [
        (format!("study_id={a}"), set(&[&e1, &e2])),
        (format!("study_id={b}"), set(&[&e3])),
        (format!("budget_line_id={la2}"), set(&[&e2])),
        ("external_id=E1".into(), set(&[&e1])),
        ("incurred_from=2026-03-15".into(), set(&[&e2, &e3])),
        ("incurred_to=2026-03-15".into(), set(&[&e1, &e2])),
        (
            "incurred_from=2026-03-01&incurred_to=2026-03-01".into(),
            set(&[&e1]),
        ),
        (
            format!("incurred_from=2026-03-02&study_id={a}"),
            set(&[&e2]),
        ),
    ];
    let refused = ["incurred_from=2026-02-30"];
    app.assert_filters(EXPENSES, cases, &refused).await;

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

#[actix_web::test]
async fn a_cro_cannot_reach_into_another_study_through_a_reference() {
    let world = World::new().await;
    let app = &world.app;
    let (a, b) = (world.a(), world.b());
    let cro = world.token(Role::Cro);
    let before = app.fingerprint().await;
    // An expense on a line of study B, or moved there: not found, like a line that does
    // not exist, and nothing written.
    let outside = app
        .post(EXPENSES, cro, &expense_body(&b.budget_line, json!({})))
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
            &format!("{EXPENSES}/{}", a.expense),
            cro,
            &json!({"budget_line_id": b.budget_line}),
        )
        .await;
    moved.problem(404);
    // A read-only role that sees both lines is refused the move for its role (403).
    let auditor = world.token(Role::Auditor);
    app.patch(
        &format!("{EXPENSES}/{}", a.expense),
        auditor,
        &json!({"budget_line_id": b.budget_line}),
    )
    .await
    .problem(403);
    assert_eq!(app.fingerprint().await, before);
    // Its own study is fine.
    let inside = app
        .post(EXPENSES, cro, &expense_body(&a.budget_line, json!({})))
        .await;
    assert_eq!(inside.ok(201)["study_id"], a.study.as_str());
}

#[actix_web::test]
async fn expenses_filter_by_their_lines_currency() {
    let app = spawn_app().await;
    let mut expense_of = std::collections::BTreeMap::new();
    for currency in ["EUR", "USD"] {
        let study = app.create_study(json!({"currency": currency})).await;
        let line = app.admin_post("/api/v1/budget-lines", &json!({"study_id": study["id"], "category": "lab", "description": "Lab", "planned_amount": "100.00"}))
            .await;
        let expense = app.admin_post("/api/v1/expenses", &json!({"budget_line_id": line.ok(201)["id"], "amount": "10.00", "incurred_on": "2026-01-05"}))
            .await;
        assert_eq!(expense.ok(201)["currency"], currency);
        expense_of.insert(currency, expense.id());
    }
    let usd = app.admin_get("/api/v1/expenses?currency=USD").await;
    let ids = column(usd.ok(200), "id");
    assert_eq!(ids, vec![expense_of["USD"].as_str()]);
}
