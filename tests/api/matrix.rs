//! The role x endpoint x scope matrix, generated from the service's own rule table
//! (`trialops::auth::policy::RULES`): for every role, every endpoint of every study-scoped
//! resource, on an object inside and an object outside the caller's scope, the exact
//! status, what lists show, and that every refused write changed nothing.
//!
//! The world: everything exists twice, an "A side" and a "B side". Study A, its site A1 and
//! vendor V are the scope of the scoped clients (the `cro` claims study A, the `site` client
//! site A1, the `vendor` client vendor V); every A-side object hangs off them (milestone and
//! risk in A at A1 naming V, budget line in A naming V, its expense, deviation and
//! enrollment week at A1). So an A-side object is visible to a role exactly when the rule
//! gives it any reach, and a B-side object only when the reach is `All`.

use serde_json::{Value, json};
use trialops::auth::policy::{self, Operation, Reach, Resource};
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, spawn_app};

const ROLES: [Role; 7] = [
    Role::Admin,
    Role::Sponsor,
    Role::Cro,
    Role::Site,
    Role::Vendor,
    Role::Auditor,
    Role::Analyst,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

const SIDES: [Side; 2] = [Side::A, Side::B];

/// One side's objects, by id.
#[derive(Clone, Debug, Default)]
struct Objects {
    study: String,
    site: String,
    vendor: String,
    milestone: String,
    budget_line: String,
    expense: String,
    risk: String,
    deviation: String,
    week: String,
}

struct World {
    a: Objects,
    b: Objects,
    week: String,
}

impl World {
    fn side(&self, side: Side) -> &Objects {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// What the rule table says a role sees of an object on `side`.
fn visible(role: Role, resource: Resource, side: Side) -> bool {
    match policy::reach(role, resource) {
        Reach::All => true,
        Reach::Nothing => false,
        Reach::ClaimedStudies | Reach::OwnSites | Reach::OwnVendor => side == Side::A,
    }
}

fn last_monday() -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7))
        .to_string()
}

async fn created(app: &TestApp, path: &str, body: Value) -> String {
    let resp = app.post(path, &app.admin_token, &body).await;
    assert_eq!(resp.status, 201, "setting up {path}: {}", resp.text);
    resp.id()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..10])
}

fn milestone_body(o: &Objects) -> Value {
    json!({"study_id": o.study, "site_id": o.site, "vendor_id": o.vendor, "name": "Lab kit delivery", "kind": "vendor_deliverable", "baseline_date": "2026-01-15"})
}

fn risk_body(o: &Objects) -> Value {
    json!({"study_id": o.study, "site_id": o.site, "vendor_id": o.vendor, "title": "Slow kit shipping", "category": "vendor", "likelihood": 1, "impact": 1, "detectability": 1})
}

fn deviation_body(o: &Objects) -> Value {
    json!({"study_id": o.study, "site_id": o.site, "category": "visit_schedule", "description": "Visit 3 out of window", "importance": "not_important", "occurred_on": "2026-01-10", "detected_on": "2026-01-12"})
}

fn expense_body(o: &Objects) -> Value {
    json!({"budget_line_id": o.budget_line, "amount": "120.00", "incurred_on": "2026-01-20"})
}

async fn build_side(app: &TestApp, week: &str) -> Objects {
    let mut o = Objects {
        vendor: created(
            app,
            "/api/v1/vendors",
            json!({"name": unique("V"), "kind": "central_lab"}),
        )
        .await,
        ..Default::default()
    };
    o.study = created(app, "/api/v1/studies", json!({"protocol_number": unique("P"), "title": "T", "phase": "phase2", "currency": "EUR", "target_enrollment": 10})).await;
    o.site = created(
        app,
        "/api/v1/sites",
        json!({"study_id": o.study, "site_number": unique("S"), "name": "Site", "country": "DE"}),
    )
    .await;
    o.milestone = created(app, "/api/v1/milestones", milestone_body(&o)).await;
    o.budget_line = created(app, "/api/v1/budget-lines", json!({"study_id": o.study, "vendor_id": o.vendor, "category": "lab", "description": "Central lab", "planned_amount": "1000.00"})).await;
    o.expense = created(app, "/api/v1/expenses", expense_body(&o)).await;
    o.risk = created(app, "/api/v1/risks", risk_body(&o)).await;
    o.deviation = created(app, "/api/v1/deviations", deviation_body(&o)).await;
    let put = app.send(app.http.put(app.url(&format!("/api/v1/sites/{}/enrollment/{week}", o.site))).bearer_auth(&app.admin_token).json(&json!({"screened": 2, "screen_failed": 0, "enrolled": 1, "discontinued": 0, "completed": 0}))).await;
    o.week = put.ok(201)["id"].as_str().unwrap().to_string();
    o
}

/// How the matrix talks to one resource.
struct Endpoint {
    resource: Resource,
    collection: &'static str,
    /// The object of a side this endpoint reads, patches and deletes.
    object: fn(&Objects) -> &String,
    /// A create on a side (its parent objects on that side); None: not scoped by side.
    create: fn(&Objects) -> Value,
    scoped_create: bool,
    patch: Value,
    /// PATCH needs `X-Change-Reason`.
    needs_reason: bool,
    delete: Delete,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delete {
    /// Not offered: 405 for everyone (deviations are never deleted).
    NotAllowed,
    /// The shared object has live children: a permitted delete is a 409.
    HasChildren,
    /// A leaf: a permitted delete of a fresh object on that side is a 204.
    Leaf,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            resource: Resource::Study,
            collection: "/api/v1/studies",
            object: |o| &o.study,
            create: |_| json!({"protocol_number": unique("P"), "title": "T", "phase": "phase1", "currency": "EUR", "target_enrollment": 1}),
            scoped_create: false,
            patch: json!({"title": "Renamed"}),
            needs_reason: false,
            delete: Delete::HasChildren,
        },
        Endpoint {
            resource: Resource::Site,
            collection: "/api/v1/sites",
            object: |o| &o.site,
            create: |o| json!({"study_id": o.study, "site_number": unique("S"), "name": "Site", "country": "FR"}),
            scoped_create: true,
            patch: json!({"name": "Renamed"}),
            needs_reason: false,
            delete: Delete::HasChildren,
        },
        Endpoint {
            resource: Resource::Vendor,
            collection: "/api/v1/vendors",
            object: |o| &o.vendor,
            create: |_| json!({"name": unique("V"), "kind": "imaging"}),
            scoped_create: false,
            patch: json!({"name": "Renamed"}),
            needs_reason: false,
            delete: Delete::HasChildren,
        },
        Endpoint {
            resource: Resource::Milestone,
            collection: "/api/v1/milestones",
            object: |o| &o.milestone,
            create: milestone_body,
            scoped_create: true,
            // A field a vendor client may change too.
            patch: json!({"notes": "Courier booked"}),
            needs_reason: false,
            delete: Delete::Leaf,
        },
        Endpoint {
            resource: Resource::BudgetLine,
            collection: "/api/v1/budget-lines",
            object: |o| &o.budget_line,
            create: |o| json!({"study_id": o.study, "category": "other", "description": "Misc", "planned_amount": "10.00"}),
            scoped_create: true,
            patch: json!({"description": "Renamed"}),
            needs_reason: false,
            delete: Delete::HasChildren,
        },
        Endpoint {
            resource: Resource::Expense,
            collection: "/api/v1/expenses",
            object: |o| &o.expense,
            create: expense_body,
            scoped_create: true,
            patch: json!({"description": "Invoice 7"}),
            needs_reason: false,
            delete: Delete::Leaf,
        },
        Endpoint {
            resource: Resource::Risk,
            collection: "/api/v1/risks",
            object: |o| &o.risk,
            create: risk_body,
            scoped_create: true,
            patch: json!({"owner": "Study manager"}),
            needs_reason: true,
            delete: Delete::Leaf,
        },
        Endpoint {
            resource: Resource::Deviation,
            collection: "/api/v1/deviations",
            object: |o| &o.deviation,
            create: deviation_body,
            scoped_create: true,
            patch: json!({"root_cause": "Scheduling"}),
            needs_reason: true,
            delete: Delete::NotAllowed,
        },
    ]
}

fn may(role: Role, resource: Resource, operation: Operation) -> bool {
    policy::may_write(role, resource, operation)
}

/// Asserts the status; a refused write must leave every table as it was.
async fn check(
    app: &TestApp,
    what: &str,
    expected: u16,
    run: impl std::future::Future<Output = Resp>,
) {
    let before = app.fingerprint().await;
    let resp = run.await;
    assert_eq!(resp.status, expected, "{what}: {}", resp.text);
    if expected >= 400 {
        assert_eq!(
            app.fingerprint().await,
            before,
            "{what}: a refused request changed data"
        );
    }
}

#[actix_web::test]
async fn every_role_every_endpoint_in_and_out_of_scope() {
    let app = spawn_app().await;
    let week = last_monday();
    let a = build_side(&app, &week).await;
    let b = build_side(&app, &week).await;
    let world = World { a, b, week };

    for role in ROLES {
        let token = match role {
            Role::Admin => app.admin_token.clone(),
            Role::Cro => app.token_for(role, &[&world.a.study], &[], None).await,
            Role::Site => app.token_for(role, &[], &[&world.a.site], None).await,
            Role::Vendor => app.token_for(role, &[], &[], Some(&world.a.vendor)).await,
            _ => app.token_for(role, &[], &[], None).await,
        };
        for endpoint in endpoints() {
            let resource = endpoint.resource;
            let name = |op: &str, side: Option<Side>| {
                format!("{role} {op} {} {side:?}", endpoint.collection)
            };

            // List: exactly the visible objects of both sides.
            let list = app
                .get(&format!("{}?limit=1000", endpoint.collection), &token)
                .await;
            assert_eq!(list.status, 200, "{}: {}", name("list", None), list.text);
            let ids: Vec<&str> = list.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            for side in SIDES {
                let id = (endpoint.object)(world.side(side));
                assert_eq!(
                    ids.contains(&id.as_str()),
                    visible(role, resource, side),
                    "{}",
                    name("list", Some(side))
                );
            }

            for side in SIDES {
                let objects = world.side(side);
                let id = (endpoint.object)(objects);
                let path = format!("{}/{id}", endpoint.collection);
                let seen = visible(role, resource, side);

                // Read.
                let expected = if seen { 200 } else { 404 };
                check(
                    &app,
                    &name("read", Some(side)),
                    expected,
                    app.get(&path, &token),
                )
                .await;

                // Create, naming this side's parents.
                if endpoint.scoped_create || side == Side::A {
                    let expected = match (
                        may(role, resource, Operation::Create),
                        !endpoint.scoped_create || seen,
                    ) {
                        (false, _) => 403,
                        (true, true) => 201,
                        (true, false) => 404,
                    };
                    let body = (endpoint.create)(objects);
                    check(
                        &app,
                        &name("create", Some(side)),
                        expected,
                        app.post(endpoint.collection, &token, &body),
                    )
                    .await;
                }

                // Update.
                let expected = match (seen, may(role, resource, Operation::Update)) {
                    (false, _) => 404,
                    (true, false) => 403,
                    (true, true) => 200,
                };
                let mut patch = app
                    .http
                    .patch(app.url(&path))
                    .bearer_auth(&token)
                    .header("content-type", "application/merge-patch+json")
                    .body(endpoint.patch.to_string());
                if endpoint.needs_reason {
                    patch = patch.header("x-change-reason", "matrix test");
                }
                check(&app, &name("patch", Some(side)), expected, app.send(patch)).await;

                // Delete.
                let (target, expected) = match endpoint.delete {
                    Delete::NotAllowed => (id.clone(), 405),
                    _ if !seen => (id.clone(), 404),
                    _ if !may(role, resource, Operation::Delete) => (id.clone(), 403),
                    Delete::HasChildren => (id.clone(), 409),
                    Delete::Leaf => (
                        created(&app, endpoint.collection, (endpoint.create)(objects)).await,
                        204,
                    ),
                };
                let target = format!("{}/{target}", endpoint.collection);
                check(
                    &app,
                    &name("delete", Some(side)),
                    expected,
                    app.delete(&target, &token),
                )
                .await;
            }
        }

        // Enrollment: PUT a week (create, then update) and the list.
        let reports = app.get("/api/v1/enrollment?limit=1000", &token).await;
        let ids: Vec<&str> = reports.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for side in SIDES {
            let objects = world.side(side);
            let seen = visible(role, Resource::EnrollmentReport, side);
            assert_eq!(
                ids.contains(&objects.week.as_str()),
                seen,
                "{role} enrollment list {side:?}"
            );
            let may_write = may(role, Resource::EnrollmentReport, Operation::Update);
            let expected = match (seen, may_write) {
                (false, _) => 404,
                (true, false) => 403,
                (true, true) => 200,
            };
            let counts = json!({"screened": 3, "screen_failed": 1, "enrolled": 1, "discontinued": 0, "completed": 0});
            let url = app.url(&format!(
                "/api/v1/sites/{}/enrollment/{}",
                objects.site, world.week
            ));
            check(
                &app,
                &format!("{role} enrollment put {side:?}"),
                expected,
                app.send(app.http.put(&url).bearer_auth(&token).json(&counts)),
            )
            .await;
        }
    }
}
