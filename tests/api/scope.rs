//! Who may do what (contract section 4), as a table: every role against every endpoint of
//! studies and sites, on an object inside and an object outside the caller's scope.
//!
//! The world: studies A and B with one site each (A1, B1). The `cro` is scoped to study A,
//! the `site` client to site A1, so A / A1 are "in scope" and B / B1 "out of scope" for
//! them; `admin`, `sponsor`, `auditor` and `analyst` see both, the `vendor` neither.
//! Every refused write must leave the database exactly as it was.

// Test support code panics on anything unexpected, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::json;
use trialops::domain::enums::Role;
use uuid::Uuid;

use crate::helpers::{Resp, TestApp, id_of, spawn_app};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    List,
    Read,
    Create,
    Patch,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Study,
    Site,
}

/// The object a row acts on. For a site POST, `In` / `Out` is the study named in the body;
/// a study POST names no existing object (`New`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    In,
    Out,
    New,
}

/// In a `List` row the status says whether the object is in the list (200) or left out
/// (404): a list shows exactly what a read of each object would answer 200 to.
const LISTED: u16 = 200;
const HIDDEN: u16 = 404;

#[derive(Debug, Clone, Copy)]
struct Rule {
    role: Role,
    op: Op,
    res: Res,
    obj: Obj,
    status: u16,
}

type Pair = [u16; 2];

/// Expands one line per role (`[in scope, out of scope]` for each endpoint) into rows.
fn expand(res: Res, lines: &[(Role, Pair, Pair, Pair, Pair, Pair)]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for &(role, list, read, create, patch, delete) in lines {
        for (op, pair) in [
            (Op::List, list),
            (Op::Read, read),
            (Op::Create, create),
            (Op::Patch, patch),
            (Op::Delete, delete),
        ] {
            if res == Res::Study && op == Op::Create {
                assert_eq!(pair[0], pair[1], "a study POST has no scope to differ by");
                let (obj, status) = (Obj::New, pair[0]);
                rules.push(Rule {
                    role,
                    op,
                    res,
                    obj,
                    status,
                });
                continue;
            }
            for (obj, status) in [(Obj::In, pair[0]), (Obj::Out, pair[1])] {
                rules.push(Rule {
                    role,
                    op,
                    res,
                    obj,
                    status,
                });
            }
        }
    }
    rules
}

/// The study rules, one line per role. A study POST names no object, so its two entries
/// agree and it runs once. A study with live sites cannot be deleted (409), so a delete
/// the table expects to succeed acts on a fresh empty study (see `World::target`).
#[rustfmt::skip]
fn study_rules() -> Vec<Rule> {
    use Role::*;
    const L: u16 = LISTED;
    const H: u16 = HIDDEN;
    expand(Res::Study, &[
        //          list    read        create      patch       delete
        (Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Cro,     [L, H], [200, 404], [403, 403], [200, 404], [403, 404]),
        (Site,    [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ])
}

/// The site rules, one line per role. Create names study A (in scope) or study B (out of
/// scope) in its body.
#[rustfmt::skip]
fn site_rules() -> Vec<Rule> {
    use Role::*;
    const L: u16 = LISTED;
    const H: u16 = HIDDEN;
    expand(Res::Site, &[
        //          list    read        create      patch       delete
        (Admin,   [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Sponsor, [L, L], [200, 200], [201, 201], [200, 200], [204, 204]),
        (Cro,     [L, H], [200, 404], [201, 404], [200, 404], [204, 404]),
        (Site,    [L, H], [200, 404], [403, 403], [403, 404], [403, 404]),
        (Vendor,  [H, H], [404, 404], [403, 403], [404, 404], [404, 404]),
        (Auditor, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
        (Analyst, [L, L], [200, 200], [403, 403], [403, 403], [403, 403]),
    ])
}

const ROLES: [Role; 7] = [
    Role::Admin,
    Role::Sponsor,
    Role::Cro,
    Role::Site,
    Role::Vendor,
    Role::Auditor,
    Role::Analyst,
];

struct World {
    app: TestApp,
    tokens: Vec<(Role, String)>,
    study_a: String,
    study_b: String,
    site_a: String,
    site_b: String,
}

impl World {
    async fn new() -> Self {
        let app = spawn_app().await;
        let study_a = id_of(&app.create_study(json!({"title": "Study A"})).await);
        let study_b = id_of(&app.create_study(json!({"title": "Study B"})).await);
        let site_a = id_of(&app.create_site(&study_a, json!({"name": "Site A1"})).await);
        let site_b = id_of(&app.create_site(&study_b, json!({"name": "Site B1"})).await);
        let vendor = insert_vendor(&app).await;
        let mut tokens = vec![(Role::Admin, app.admin_token.clone())];
        for role in ROLES.into_iter().skip(1) {
            let token = match role {
                Role::Cro => app.token_for(role, &[&study_a], &[], None).await,
                Role::Site => app.token_for(role, &[], &[&site_a], None).await,
                Role::Vendor => app.token_for(role, &[], &[], Some(&vendor)).await,
                _ => app.token_for(role, &[], &[], None).await,
            };
            tokens.push((role, token));
        }
        Self {
            app,
            tokens,
            study_a,
            study_b,
            site_a,
            site_b,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self
            .tokens
            .iter()
            .find(|(r, _)| *r == role)
            .expect("a token for every role")
            .1
    }

    /// The existing object a row names: study A / B, site A1 / B1.
    fn object(&self, res: Res, obj: Obj) -> &str {
        match (res, obj) {
            (Res::Study, Obj::In) => &self.study_a,
            (Res::Study, Obj::Out) => &self.study_b,
            (Res::Site, Obj::In) => &self.site_a,
            (Res::Site, Obj::Out) => &self.site_b,
            (_, Obj::New) => unreachable!("a POST names no existing object"),
        }
    }

    /// The study an `In` / `Out` row's site lives in (or is created in).
    fn study_of(&self, obj: Obj) -> &str {
        match obj {
            Obj::In => &self.study_a,
            _ => &self.study_b,
        }
    }

    /// What a row acts on. A delete the table expects to succeed gets an object made for
    /// it (an empty study, or a new site in the same study as A1 / B1), so that one row's
    /// success cannot change the answer of the next; every role that may delete is scoped
    /// by study, so the fresh object is in or out of its scope exactly like the original.
    async fn target(&self, rule: &Rule) -> String {
        if rule.op != Op::Delete || rule.status != 204 {
            return self.object(rule.res, rule.obj).to_string();
        }
        match rule.res {
            Res::Study => id_of(&self.app.create_study(json!({})).await),
            Res::Site => id_of(
                &self
                    .app
                    .create_site(self.study_of(rule.obj), json!({}))
                    .await,
            ),
        }
    }
}

/// There is no vendor API yet: a vendor row, straight into the database.
async fn insert_vendor(app: &TestApp) -> String {
    let id = Uuid::now_v7().to_string();
    let mut conn = app.db().await;
    diesel::sql_query("INSERT INTO vendors (id, name, kind) VALUES ($1::uuid, 'V', 'cro')")
        .bind::<Text, _>(&id)
        .execute(&mut conn)
        .await
        .unwrap();
    id
}

fn collection(res: Res) -> &'static str {
    match res {
        Res::Study => "/api/v1/studies",
        Res::Site => "/api/v1/sites",
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..12])
}

#[track_caller]
fn expect_status(resp: &Resp, status: u16, what: &str) {
    assert_eq!(
        resp.status, status,
        "{what}: expected {status}, got {}: {}",
        resp.status, resp.text
    );
    if status >= 400 {
        resp.problem(status);
    }
}

/// Runs every list row of `rules`: one list request per role, which must show exactly the
/// objects the table marks as listed. Runs before any write, so A / B and A1 / B1 are all
/// the rows there are.
async fn check_lists(world: &World, res: Res, rules: &[Rule]) {
    for role in ROLES {
        let what = format!("{role} lists {res:?}");
        let resp = world.app.get(collection(res), world.token(role)).await;
        expect_status(&resp, 200, &what);
        let listed: BTreeSet<String> = resp.body["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(id_of)
            .collect();
        let mut expected = BTreeSet::new();
        for rule in rules.iter().filter(|r| r.role == role && r.op == Op::List) {
            let id = world.object(res, rule.obj).to_string();
            match rule.status {
                LISTED => assert!(listed.contains(&id), "{what}: {:?} missing", rule.obj),
                _ => assert!(!listed.contains(&id), "{what}: {:?} leaked", rule.obj),
            }
            if rule.status == LISTED {
                expected.insert(id);
            }
        }
        assert_eq!(listed, expected, "{what}: only in-scope rows");
        assert!(resp.body["next_cursor"].is_null(), "{what}");
    }
}

/// Runs one non-list row and checks its status; a refused write must change nothing, a
/// successful one must have happened.
async fn check(world: &World, rule: &Rule) {
    let app = &world.app;
    let token = world.token(rule.role);
    let what = format!("{} {:?} {:?} {:?}", rule.role, rule.op, rule.res, rule.obj);
    let base = collection(rule.res);
    let field = match rule.res {
        Res::Study => "title",
        Res::Site => "name",
    };
    let target = match rule.op {
        Op::Create => String::new(),
        _ => world.target(rule).await,
    };
    let path = format!("{base}/{target}");
    let before = app.fingerprint().await;
    let resp = match rule.op {
        Op::List => unreachable!("lists run in check_lists"),
        Op::Read => app.get(&path, token).await,
        Op::Create => {
            let body = match rule.res {
                Res::Study => json!({
                    "protocol_number": unique("P"),
                    "title": format!("made by {}", rule.role),
                    "phase": "phase2",
                    "currency": "EUR",
                    "target_enrollment": 10
                }),
                Res::Site => json!({
                    "study_id": world.study_of(rule.obj),
                    "site_number": unique("S"),
                    "name": format!("made by {}", rule.role),
                    "country": "FR"
                }),
            };
            app.post(base, token, &body).await
        }
        Op::Patch => {
            let body = json!({ field: format!("patched by {}", rule.role) });
            app.patch(&path, token, &body).await
        }
        Op::Delete => app.delete(&path, token).await,
    };
    expect_status(&resp, rule.status, &what);
    let after = app.fingerprint().await;
    let write = rule.op != Op::Read;
    if write && resp.status >= 400 {
        assert_eq!(
            before, after,
            "{what}: a refused write changed the database"
        );
    }
    if write && resp.status < 300 {
        assert_ne!(before, after, "{what}: a successful write changed nothing");
    }
    match (rule.op, rule.status) {
        (Op::Read, 200) => assert_eq!(resp.body["id"], target.as_str(), "{what}"),
        (Op::Patch, 200) => {
            assert_eq!(resp.body["id"], target.as_str(), "{what}");
            assert_eq!(
                resp.body[field],
                format!("patched by {}", rule.role),
                "{what}"
            );
        }
        (Op::Create, 201) if rule.res == Res::Site => {
            assert_eq!(resp.body["study_id"], world.study_of(rule.obj), "{what}");
        }
        (Op::Delete, 204) => {
            let gone = app.get(&path, &app.admin_token).await;
            expect_status(&gone, 404, &format!("{what}: read after delete"));
        }
        _ => {}
    }
}

async fn run_table(world: &World, res: Res, rules: &[Rule]) {
    check_lists(world, res, rules).await;
    for op in [Op::Read, Op::Patch, Op::Create, Op::Delete] {
        for rule in rules.iter().filter(|r| r.op == op) {
            check(world, rule).await;
        }
    }
}

#[test]
fn the_tables_cover_every_role_endpoint_and_object() {
    for (res, rules) in [(Res::Study, study_rules()), (Res::Site, site_rules())] {
        for role in ROLES {
            for op in [Op::List, Op::Read, Op::Create, Op::Patch, Op::Delete] {
                let objects: Vec<Obj> = rules
                    .iter()
                    .filter(|r| r.role == role && r.op == op && r.res == res)
                    .map(|r| r.obj)
                    .collect();
                let wanted = if res == Res::Study && op == Op::Create {
                    vec![Obj::New]
                } else {
                    vec![Obj::In, Obj::Out]
                };
                assert_eq!(objects, wanted, "{role} {op:?} {res:?}");
            }
        }
        // A list shows exactly what a read answers 200 to.
        for rule in rules.iter().filter(|r| r.op == Op::List) {
            let read = rules
                .iter()
                .find(|r| r.role == rule.role && r.op == Op::Read && r.obj == rule.obj)
                .expect("a read row");
            assert_eq!(rule.status, read.status, "{rule:?}");
        }
    }
}

#[actix_web::test]
async fn study_endpoints_follow_the_role_table() {
    let world = World::new().await;
    run_table(&world, Res::Study, &study_rules()).await;

    // The roles that may delete a study still cannot delete one with live sites (409).
    for role in [Role::Admin, Role::Sponsor] {
        for study in [&world.study_a, &world.study_b] {
            let what = format!("{role} deletes a study with a live site");
            let before = world.app.fingerprint().await;
            let resp = world
                .app
                .delete(&format!("/api/v1/studies/{study}"), world.token(role))
                .await;
            expect_status(&resp, 409, &what);
            assert_eq!(before, world.app.fingerprint().await, "{what}");
        }
    }
}

#[actix_web::test]
async fn site_endpoints_follow_the_role_table() {
    let world = World::new().await;
    run_table(&world, Res::Site, &site_rules()).await;
}

#[actix_web::test]
async fn cro_cannot_create_a_site_in_a_study_outside_its_claim() {
    let world = World::new().await;
    let app = &world.app;
    let cro = world.token(Role::Cro);
    let body = |study: &str| {
        json!({
            "study_id": study,
            "site_number": "CRO-1",
            "name": "Smuggled site",
            "country": "DE"
        })
    };

    let before = app.fingerprint().await;
    let outside = app.post("/api/v1/sites", cro, &body(&world.study_b)).await;
    outside.problem(404);
    // Existence is not leaked: a study that does not exist answers the same.
    let missing = app
        .post("/api/v1/sites", cro, &body(&Uuid::now_v7().to_string()))
        .await;
    missing.problem(404);
    assert_eq!(outside.body["type"], missing.body["type"]);
    assert_eq!(outside.body["detail"], missing.body["detail"]);
    assert_eq!(before, app.fingerprint().await, "nothing written");

    let sites = app
        .get(
            &format!("/api/v1/sites?study_id={}", world.study_b),
            &app.admin_token,
        )
        .await;
    let ids: Vec<String> = sites.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![world.site_b.clone()]);

    // The same body in its own study is fine.
    let inside = app.post("/api/v1/sites", cro, &body(&world.study_a)).await;
    assert_eq!(inside.ok(201)["study_id"], world.study_a.as_str());
}
