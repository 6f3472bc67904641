//! Who may do what (contract section 4), as ONE table: every resource × role, the status
//! of each endpoint on an object inside and an object outside the caller's scope, walked
//! over HTTP with real tokens by one test. Every refused request leaves every table as it
//! was, every successful write changes something, and a list shows exactly the objects a
//! read answers 200 to.
//!
//! The world: everything exists twice, an "in scope" side A and an "out of scope" side B.
//! Study A, its site A1 and vendor VA are the scope of the scoped clients (the `cro` claims
//! study A, the `site` client site A1, the `vendor` client vendor VA); every A-side object
//! hangs off them (milestone and risk in A at A1 naming VA, budget line in A naming VA, its
//! expense, deviation and enrollment week at A1), every B-side object off study B, site B1
//! and vendor VB. So for vendors "in scope" is the vendor client's own vendor.
//!
//! The table is written out by hand rather than derived from the service's rule table
//! (`domain::policy::RULES`): it is the contract the service is held to, so a wrong rule
//! fails here instead of being copied into the expectation.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, id_of, ids, spawn_app, unique};

/// A resource as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Study,
    Site,
    Vendor,
    Milestone,
    BudgetLine,
    Expense,
    Risk,
    Deviation,
    /// Weekly enrollment: a list and a `PUT` of a site's week (its "update"); nothing else.
    Enrollment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    List,
    Read,
    Create,
    Update,
    Delete,
}

const OPS: [Op; 5] = [Op::List, Op::Read, Op::Create, Op::Update, Op::Delete];

/// `[in scope, out of scope]`: the status on the A-side object and on the B-side one. A
/// create names the side's parents (study, site, vendor, budget line) in its body; studies
/// and vendors have none, so both entries agree.
type Pair = [u16; 2];

/// In the list column: the object is listed (`L`) or left out (`H`), as a read answers 200
/// or 404.
const L: u16 = 200;
const H: u16 = 404;
/// No such endpoint (enrollment weeks are only listed and `PUT`).
const NO: Pair = [0, 0];

/// A line of the table: role, then list, read, create, update, delete.
type Line = (Role, Pair, Pair, Pair, Pair, Pair);

/// The contract. In the delete column, a 204 is the delete of a fresh object made for the
/// row (on the same side, without children); where the shared objects have live children
/// (studies, sites, vendors, budget lines) a role that may delete also gets a 409 for the
/// shared one. Deviations are never deleted: 405 for everyone.
#[rustfmt::skip]
const TABLE: &[(Res, [Line; 7])] = &[
    (Res::Study, [
        //                list    read        create      update      delete
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [403, 403], [200, 404], [403, 404]),
        (Role::Site,    [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Role::Vendor,  [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Site, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Role::Site,    [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Role::Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Vendor, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Vendor,  [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Milestone, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Vendor,  [L, H], [200, 404], [403, 403], [200, 404], [403, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::BudgetLine, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Expense, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Risk, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Role::Site,    [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Role::Vendor,  [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ]),
    (Res::Deviation, [
        (Role::Admin,   [L, L], [200, 200], [201, 201], [200, 200], [405, 405]),
        (Role::Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [405, 405]),
        (Role::Cro,     [L, H], [200, 404], [201, 404], [200, 404], [405, 405]),
        (Role::Site,    [L, H], [200, 404], [201, 404], [200, 404], [405, 405]),
        (Role::Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [405, 405]),
        (Role::Auditor, [L, L], [200, 200], [403, 403], [403, 403], [405, 405]),
        (Role::Analyst, [L, L], [200, 200], [403, 403], [403, 403], [405, 405]),
    ]),
    (Res::Enrollment, [
        (Role::Admin,   [L, L], NO, NO, [200, 200], NO),
        (Role::Sponsor, [L, L], NO, NO, [200, 200], NO),
        (Role::Cro,     [L, H], NO, NO, [200, 404], NO),
        (Role::Site,    [L, H], NO, NO, [200, 404], NO),
        (Role::Vendor,  [H, H], NO, NO, [404, 404], NO),
        (Role::Auditor, [L, L], NO, NO, [403, 403], NO),
        (Role::Analyst, [L, L], NO, NO, [403, 403], NO),
    ]),
];

fn status(line: &Line, op: Op) -> Pair {
    let &(_, list, read, create, update, delete) = line;
    match op {
        Op::List => list,
        Op::Read => read,
        Op::Create => create,
        Op::Update => update,
        Op::Delete => delete,
    }
}

const SIDES: [&str; 2] = ["in scope", "out of scope"];

/// One side's objects, by id.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub study: String,
    pub site: String,
    pub vendor: String,
    pub milestone: String,
    pub budget_line: String,
    pub expense: String,
    pub risk: String,
    pub deviation: String,
    /// The enrollment week reported at `site`.
    pub week: String,
}

/// The two sides and a token for each role (the `cro`, `site` and `vendor` clients scoped
/// to side A). Other tests about scope use it too.
pub struct World {
    pub app: TestApp,
    tokens: Vec<(Role, String)>,
    /// Side A (in scope) and side B (out of scope).
    pub sides: [Objects; 2],
    /// The Monday of the enrollment weeks.
    pub monday: String,
}

impl World {
    pub async fn new() -> Self {
        let app = spawn_app().await;
        let monday = last_monday();
        let a = build_side(&app, &monday).await;
        let b = build_side(&app, &monday).await;
        let mut tokens = vec![(Role::Admin, app.admin_token.clone())];
        for &(role, ..) in &TABLE[0].1[1..] {
            let token = match role {
                Role::Cro => app.token_for(role, &[&a.study], &[], None).await,
                Role::Site => app.token_for(role, &[], &[&a.site], None).await,
                Role::Vendor => app.token_for(role, &[], &[], Some(&a.vendor)).await,
                _ => app.token_for(role, &[], &[], None).await,
            };
            tokens.push((role, token));
        }
        Self {
            app,
            tokens,
            sides: [a, b],
            monday,
        }
    }

    pub fn token(&self, role: Role) -> &str {
        &self
            .tokens
            .iter()
            .find(|(r, _)| *r == role)
            .expect("a token for every role")
            .1
    }

    pub fn a(&self) -> &Objects {
        &self.sides[0]
    }

    pub fn b(&self) -> &Objects {
        &self.sides[1]
    }
}

fn last_monday() -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()) + 7))
        .to_string()
}

fn counts(screened: u16) -> Value {
    json!({"screened": screened, "screen_failed": 0, "enrolled": 1, "discontinued": 0, "completed": 0})
}

async fn build_side(app: &TestApp, monday: &str) -> Objects {
    let mut o = Objects {
        study: app.study_id(json!({})).await,
        vendor: app.vendor_id(json!({"name": unique("V")})).await,
        ..Default::default()
    };
    o.site = app.site_id(&o.study, json!({})).await;
    for res in [
        Res::Milestone,
        Res::BudgetLine,
        Res::Expense,
        Res::Risk,
        Res::Deviation,
    ] {
        let id = app
            .created(collection(res), &create_body(res, &o, "admin"))
            .await;
        match res {
            Res::Milestone => o.milestone = id,
            Res::BudgetLine => o.budget_line = id,
            Res::Expense => o.expense = id,
            Res::Risk => o.risk = id,
            _ => o.deviation = id,
        }
    }
    let week = app
        .put_week(&app.admin_token, &o.site, monday, &counts(2))
        .await;
    o.week = id_of(week.ok(201));
    o
}

fn collection(res: Res) -> &'static str {
    match res {
        Res::Study => "/api/v1/studies",
        Res::Site => "/api/v1/sites",
        Res::Vendor => "/api/v1/vendors",
        Res::Milestone => "/api/v1/milestones",
        Res::BudgetLine => "/api/v1/budget-lines",
        Res::Expense => "/api/v1/expenses",
        Res::Risk => "/api/v1/risks",
        Res::Deviation => "/api/v1/deviations",
        Res::Enrollment => "/api/v1/enrollment",
    }
}

/// The side's object of this resource.
fn object(res: Res, o: &Objects) -> &str {
    match res {
        Res::Study => &o.study,
        Res::Site => &o.site,
        Res::Vendor => &o.vendor,
        Res::Milestone => &o.milestone,
        Res::BudgetLine => &o.budget_line,
        Res::Expense => &o.expense,
        Res::Risk => &o.risk,
        Res::Deviation => &o.deviation,
        Res::Enrollment => &o.week,
    }
}

/// A create naming the side's parents, marked as made by `by`.
fn create_body(res: Res, o: &Objects, by: &str) -> Value {
    let made = format!("made by {by}");
    match res {
        Res::Study => {
            json!({"protocol_number": unique("P"), "title": made, "phase": "phase2", "currency": "EUR", "target_enrollment": 10})
        }
        Res::Site => {
            json!({"study_id": o.study, "site_number": unique("S"), "name": made, "country": "FR"})
        }
        Res::Vendor => json!({"name": made, "kind": "other"}),
        Res::Milestone => {
            json!({"study_id": o.study, "site_id": o.site, "vendor_id": o.vendor, "name": made, "kind": "vendor_deliverable", "baseline_date": "2026-01-15"})
        }
        Res::BudgetLine => {
            json!({"study_id": o.study, "vendor_id": o.vendor, "category": "lab", "description": made, "planned_amount": "1000.00"})
        }
        Res::Expense => {
            json!({"budget_line_id": o.budget_line, "amount": "120.00", "incurred_on": "2026-01-20", "description": made})
        }
        Res::Risk => {
            json!({"study_id": o.study, "site_id": o.site, "vendor_id": o.vendor, "title": made, "category": "vendor", "likelihood": 1, "impact": 1, "detectability": 1})
        }
        Res::Deviation => {
            json!({"study_id": o.study, "site_id": o.site, "category": "visit_schedule", "description": made, "importance": "not_important", "occurred_on": "2026-01-10", "detected_on": "2026-01-12"})
        }
        Res::Enrollment => unreachable!("enrollment weeks are PUT"),
    }
}

/// The field a create answers with the side's parent (or the name it was given).
fn created_field(res: Res, o: &Objects, by: &str) -> (&'static str, String) {
    match res {
        Res::Study => ("title", format!("made by {by}")),
        Res::Vendor => ("name", format!("made by {by}")),
        Res::Deviation => ("site_id", o.site.clone()),
        _ => ("study_id", o.study.clone()),
    }
}

/// The field an update sets (a field a `vendor` client may change, on milestones).
fn updated_field(res: Res) -> &'static str {
    match res {
        Res::Study | Res::Risk => "title",
        Res::Site | Res::Vendor => "name",
        Res::Milestone => "notes",
        Res::BudgetLine | Res::Expense => "description",
        Res::Deviation => "root_cause",
        Res::Enrollment => "screened",
    }
}

/// Whether the shared objects have live children, so that a permitted delete is a 409.
fn has_children(res: Res) -> bool {
    matches!(res, Res::Study | Res::Site | Res::Vendor | Res::BudgetLine)
}

/// Runs one request; asserts its status (a problem+json body for an error) and that a
/// refused request changed nothing while a successful write changed something.
async fn checked(
    app: &TestApp,
    what: &str,
    status: u16,
    write: bool,
    run: impl Future<Output = Resp>,
) -> Resp {
    let before = app.fingerprint().await;
    let resp = run.await;
    resp.expect(status, what);
    let after = app.fingerprint().await;
    if status >= 400 {
        assert_eq!(before, after, "{what}: a refused request changed data");
    } else if write {
        assert_ne!(before, after, "{what}: a successful write changed nothing");
    }
    resp
}

/// Every list row: one list per role and resource, showing exactly the objects the table
/// marks as listed. Runs before any write, while the two sides are all there is.
async fn check_lists(world: &World) {
    for &(res, ref lines) in TABLE {
        for line in lines {
            let role = line.0;
            let what = format!("{role} lists {res:?}");
            let resp = world.app.get(collection(res), world.token(role)).await;
            resp.expect(200, &what);
            let expected: BTreeSet<String> = (0..2)
                .filter(|&side| line.1[side] == L)
                .map(|side| object(res, &world.sides[side]).to_string())
                .collect();
            assert_eq!(ids(&resp.body), expected, "{what}");
            assert!(resp.body["next_cursor"].is_null(), "{what}");
        }
    }
}

/// One cell of the table: `op` by `role` on `res` on one side.
async fn check(world: &World, res: Res, role: Role, op: Op, side: usize, status: u16) {
    let app = &world.app;
    let token = world.token(role);
    let o = &world.sides[side];
    let what = format!("{role} {op:?} {res:?} {}", SIDES[side]);
    let base = collection(res);
    let path = format!("{base}/{}", object(res, o));
    match op {
        Op::List => unreachable!("lists run in check_lists"),
        Op::Read => {
            let resp = checked(app, &what, status, false, app.get(&path, token)).await;
            if status == 200 {
                assert_eq!(resp.body["id"], object(res, o), "{what}");
                if res == Res::Milestone {
                    assert!(resp.body["overdue"].is_boolean(), "{what}");
                }
            }
        }
        Op::Create => {
            let body = create_body(res, o, role.as_ref());
            let resp = checked(app, &what, status, true, app.post(base, token, &body)).await;
            if status == 201 {
                let (field, value) = created_field(res, o, role.as_ref());
                assert_eq!(resp.body[field], value.as_str(), "{what}");
            }
        }
        Op::Update if res == Res::Enrollment => {
            // Distinct counts per role, so that each permitted PUT changes the week.
            let screened = 3 + TABLE[0].1.iter().position(|l| l.0 == role).unwrap() as u16;
            let counts = counts(screened);
            let put = app.put_week(token, &o.site, &world.monday, &counts);
            let resp = checked(app, &what, status, true, put).await;
            if status == 200 {
                assert_eq!(resp.body["id"], o.week.as_str(), "{what}");
                assert_eq!(resp.body["screened"], screened, "{what}");
            }
        }
        Op::Update => {
            let field = updated_field(res);
            let value = format!("patched by {role}");
            let reason = matches!(res, Res::Risk | Res::Deviation).then_some("role table");
            let body = json!({ field: value });
            let patch = app.patch_with(&path, token, &body, reason);
            let resp = checked(app, &what, status, true, patch).await;
            if status == 200 {
                assert_eq!(resp.body["id"], object(res, o), "{what}");
                assert_eq!(resp.body[field], value.as_str(), "{what}");
            }
        }
        Op::Delete if status == 405 => {
            let resp = checked(app, &what, status, true, app.delete(&path, token)).await;
            assert_eq!(
                resp.header("allow").as_deref(),
                Some("GET, PATCH"),
                "{what}"
            );
        }
        Op::Delete if status == 204 => {
            if has_children(res) {
                let shared = app.delete(&path, token);
                checked(
                    app,
                    &format!("{what} with live children"),
                    409,
                    true,
                    shared,
                )
                .await;
            }
            // A fresh object on the same side (a budget line without expenses, a site
            // without children), so one row's success cannot change the next row's answer.
            let fresh = app.created(base, &create_body(res, o, "admin")).await;
            let fresh = format!("{base}/{fresh}");
            checked(app, &what, status, true, app.delete(&fresh, token)).await;
            let gone = app.admin_get(&fresh).await;
            gone.expect(404, &format!("{what}: read after delete"));
        }
        Op::Delete => {
            checked(app, &what, status, true, app.delete(&path, token)).await;
        }
    }
}

#[test]
fn the_table_covers_every_resource_role_and_endpoint_once() {
    let resources: Vec<Res> = TABLE.iter().map(|(res, _)| *res).collect();
    assert_eq!(
        resources,
        [
            Res::Study,
            Res::Site,
            Res::Vendor,
            Res::Milestone,
            Res::BudgetLine,
            Res::Expense,
            Res::Risk,
            Res::Deviation,
            Res::Enrollment
        ]
    );
    let roles = [
        Role::Admin,
        Role::Sponsor,
        Role::Cro,
        Role::Site,
        Role::Vendor,
        Role::Auditor,
        Role::Analyst,
    ];
    for (res, lines) in TABLE {
        let listed: Vec<Role> = lines.iter().map(|line| line.0).collect();
        assert_eq!(listed, roles, "{res:?}");
        for line in lines {
            // A list shows exactly what a read answers 200 to.
            if line.2 != NO {
                assert_eq!(line.1, line.2, "{res:?} {}: list and read", line.0);
            }
            // Studies and vendors have no parent to be in or out of scope by.
            if matches!(res, Res::Study | Res::Vendor) {
                assert_eq!(line.3[0], line.3[1], "{res:?} {}: create", line.0);
            }
        }
    }
}

/// The one role test: every cell of `TABLE`, over HTTP.
#[actix_web::test]
async fn every_role_on_every_resource_follows_the_table() {
    let world = World::new().await;
    check_lists(&world).await;
    for &(res, ref lines) in TABLE {
        for line in lines {
            for op in OPS.into_iter().skip(1) {
                for (side, status) in status(line, op).into_iter().enumerate() {
                    if status != 0 {
                        check(&world, res, line.0, op, side, status).await;
                    }
                }
            }
        }
    }
}
