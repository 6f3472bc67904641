//! Test harness: each test gets its own database, cloned from a migrated template, and its
//! own running server on a free port; it talks to it over HTTP with real tokens.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

use trialops::app::AppState;
use trialops::audit::WriteContext;
use trialops::auth::clients::{NewClientRequest, register};
use trialops::config::Settings;
use trialops::domain::enums::Role;
use trialops::startup;

pub const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";

fn server_url() -> String {
    std::env::var("TRIALOPS_TEST_PG").unwrap_or_else(|_| SERVER_URL.to_string())
}

/// The template's name carries a hash of the migrations, so a changed migration gets a
/// fresh template instead of a stale one.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    let mut entries: Vec<_> = walk(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations"
    )));
    entries.sort();
    for path in entries {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&path).unwrap_or_default());
    }
    format!("trialops_tpl_{}", &hex::encode(hasher.finalize())[..16])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

/// A connection to the PostgreSQL server's `postgres` database, for creating and dropping
/// databases and roles.
pub async fn server() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{}/postgres", server_url()))
        .await
        .expect("connect to PostgreSQL")
}

/// Runs `sql` (statements without results) on `conn`.
pub async fn execute(conn: &mut AsyncPgConnection, sql: &str) {
    conn.batch_execute(sql).await.unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Creates the migrated template once per process; an advisory lock keeps concurrent test
/// processes from building it twice.
async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut admin = server().await;
            diesel::sql_query("SELECT pg_advisory_lock(7007)")
                .execute(&mut admin)
                .await
                .unwrap();
            let exists =
                diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                    .bind::<Text, _>(&name)
                    .get_result::<Count>(&mut admin)
                    .await
                    .unwrap()
                    .n
                    > 0;
            if !exists {
                let building = format!("{name}_building");
                let drop = format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)");
                execute(&mut admin, &drop).await;
                execute(&mut admin, &format!("CREATE DATABASE {building}")).await;
                trialops::db::run_migrations(&format!("{}/{building}", server_url()))
                    .await
                    .unwrap();
                let rename = format!("ALTER DATABASE {building} RENAME TO {name}");
                execute(&mut admin, &rename).await;
            }
            diesel::sql_query("SELECT pg_advisory_unlock(7007)")
                .execute(&mut admin)
                .await
                .unwrap();
            name
        })
        .await
        .clone()
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status (and, for an error, a problem+json body), naming `what` failed.
    #[track_caller]
    pub fn expect(&self, status: u16, what: &str) {
        assert_eq!(
            self.status, status,
            "{what}: expected {status}, got {}: {}",
            self.status, self.text
        );
        if status >= 400 {
            self.problem(status);
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts a problem+json answer with this status and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected {status}, got {}: {}",
            self.status, self.text
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert_eq!(
            self.body["request_id"].as_str(),
            self.header("x-request-id").as_deref()
        );
        &self.body
    }

    /// The fields named by a 422's `errors[]`.
    #[track_caller]
    pub fn invalid_fields(&self) -> Vec<String> {
        self.problem(422);
        self.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    }

    /// Asserts a 422 whose `errors[]` name exactly `field`, with `code`; `what` labels a
    /// failure.
    #[track_caller]
    pub fn refuses(&self, field: &str, code: &str, what: &str) {
        assert_eq!(self.invalid_fields(), [field], "{what}: {}", self.text);
        assert_eq!(self.body["errors"][0]["code"], code, "{what}");
    }

    /// Asserts a 422 whose `errors[]` all name `field` (one rule or several).
    #[track_caller]
    pub fn refuses_field(&self, field: &str, what: &str) {
        let mut fields = self.invalid_fields();
        fields.dedup();
        assert_eq!(fields, [field], "{what}: {}", self.text);
    }

    /// Asserts a problem+json answer with this status and returns its `detail`.
    #[track_caller]
    pub fn detail(&self, status: u16) -> &str {
        self.problem(status)["detail"].as_str().unwrap()
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected {status}, got {}: {}",
            self.status, self.text
        );
        &self.body
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_string()
    }
}

/// `request` with an `X-Change-Reason`, if one is given.
pub fn with_reason(
    request: reqwest::RequestBuilder,
    reason: Option<&str>,
) -> reqwest::RequestBuilder {
    match reason {
        Some(reason) => request.header("x-change-reason", reason),
        None => request,
    }
}

/// The `id` of a record as answered.
pub fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("an id").to_string()
}

/// The ids of a page's `data`.
pub fn ids(page: &Value) -> BTreeSet<String> {
    page["data"]
        .as_array()
        .expect("a page's data")
        .iter()
        .map(id_of)
        .collect()
}

/// The `field` of every record of a page's `data`, in order, as text.
pub fn column(page: &Value, field: &str) -> Vec<String> {
    let records = page["data"].as_array().expect("a page's data");
    records
        .iter()
        .map(|record| record[field].as_str().expect("a text field").to_string())
        .collect()
}

/// The `action` of each audit event, in order.
pub fn actions(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["action"].as_str().expect("an action").to_string())
        .collect()
}

/// A refused case of a validation table: `{field: value}`, refused naming `field` with
/// `code`.
pub fn bad(
    field: &'static str,
    value: Value,
    code: &'static str,
) -> (Value, &'static str, &'static str) {
    (json!({ field: value }), field, code)
}

/// `prefix` and a short random suffix, for fields that must be unique.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..10])
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub database_url: String,
    database_name: String,
    pub state: web::Data<AppState>,
    pub admin_token: String,
    server: actix_web::dev::ServerHandle,
    /// False for a second instance on another app's database: dropping it stops only its
    /// server.
    owns_database: bool,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A test app with some settings changed.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let template = template().await;
    let database_name = format!(
        "trialops_test_{}_{}",
        Uuid::new_v4().simple(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = server().await;
    let create = format!("CREATE DATABASE {database_name} TEMPLATE {template}");
    execute(&mut admin, &create).await;
    let database_url = format!("{}/{database_name}", server_url());
    let (state, base, handle) = start(&database_url, configure).await;
    let mut app = TestApp {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        database_url,
        database_name,
        state,
        admin_token: String::new(),
        server: handle,
        owns_database: true,
    };
    let (id, secret) = app.register(Role::Admin, vec![], vec![], None).await;
    app.admin_token = app.token(&id, &secret).await;
    app
}

/// Starts the service on `database_url` with some settings changed, on a free port:
/// its state, base URL and handle.
async fn start(
    database_url: &str,
    configure: impl FnOnce(&mut Settings),
) -> (web::Data<AppState>, String, actix_web::dev::ServerHandle) {
    let mut settings = Settings::for_database(database_url);
    settings.db_pool_size = 4;
    settings.workers = Some(1);
    configure(&mut settings);
    let state = startup::prepare(&settings).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = startup::run(listener, state.clone()).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (state, format!("http://127.0.0.1:{port}"), handle)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server, then drop the database from a thread of its own (Drop cannot await).
        // `stop` sends the command at once; its future only waits for completion.
        drop(self.server.stop(false));
        if !self.owns_database {
            return;
        }
        let name = self.database_name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) =
                    AsyncPgConnection::establish(&format!("{}/postgres", server_url())).await
                {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

impl TestApp {
    /// Polls `path` with `token` until it answers `status`, for at most `limit`; returns how
    /// long that took. For promises made "within" a time, such as a revocation reaching an
    /// instance through `LISTEN/NOTIFY`.
    pub async fn answers_within(
        &self,
        path: &str,
        token: &str,
        status: u16,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let resp = self.get(path, token).await;
            if resp.status == status {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{path} still answers {} after {limit:?}",
                resp.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Another instance of the service on this app's database (as behind a load balancer),
    /// with some settings changed; it shares nothing with this one but PostgreSQL.
    pub async fn another_instance(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let (state, base, handle) = start(&self.database_url, configure).await;
        TestApp {
            base,
            http: self.http.clone(),
            database_url: self.database_url.clone(),
            database_name: self.database_name.clone(),
            state,
            admin_token: self.admin_token.clone(),
            server: handle,
            owns_database: false,
        }
    }

    /// Registers a client the way the CLI does and returns its credentials.
    pub async fn register(
        &self,
        role: Role,
        studies: Vec<Uuid>,
        sites: Vec<Uuid>,
        vendor: Option<Uuid>,
    ) -> (String, String) {
        let mut conn = self.state.db.get().await.unwrap();
        let request = NewClientRequest {
            name: format!("test {role}"),
            role,
            studies: studies.into_iter().map(Into::into).collect(),
            sites: sites.into_iter().map(Into::into).collect(),
            vendor: vendor.map(Into::into),
        };
        let (client, secret) = register(&mut conn, &WriteContext::command_line("test"), request)
            .await
            .unwrap();
        (client.id.to_string(), secret)
    }

    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let resp = self
            .form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                ],
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.body["access_token"].as_str().unwrap().to_string()
    }

    /// A token for a new client of `role` with the given scope.
    pub async fn token_for(
        &self,
        role: Role,
        studies: &[&str],
        sites: &[&str],
        vendor: Option<&str>,
    ) -> String {
        let parse = |ids: &[&str]| {
            ids.iter()
                .map(|id| id.parse().unwrap())
                .collect::<Vec<Uuid>>()
        };
        let (id, secret) = self
            .register(
                role,
                parse(studies),
                parse(sites),
                vendor.map(|v| v.parse().unwrap()),
            )
            .await;
        self.token(&id, &secret).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.http.post(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.patch_with(path, token, body, None).await
    }

    /// A merge patch with an `X-Change-Reason` (or none).
    pub async fn patch_with(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        reason: Option<&str>,
    ) -> Resp {
        let request = self.request("PATCH", path, token);
        let request = request.header("content-type", "application/merge-patch+json");
        self.send(with_reason(request.body(body.to_string()), reason))
            .await
    }

    /// A JSON `POST` with an `X-Change-Reason` (or none).
    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        reason: Option<&str>,
    ) -> Resp {
        let request = self.request("POST", path, token).json(body);
        self.send(with_reason(request, reason)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    /// `delete` as the admin, asserting a 204.
    pub async fn admin_delete_ok(&self, path: &str) {
        self.admin_delete(path).await.ok(204);
    }

    /// `patch` as the admin, asserting a 200; the record as patched.
    pub async fn admin_patch_ok(&self, path: &str, body: &Value) -> Value {
        self.admin_patch(path, body).await.ok(200).clone()
    }

    /// A `PUT` of a site's enrollment week (`week` is its Monday) with `token`.
    pub async fn put_week(&self, token: &str, site: &str, week: &str, counts: &Value) -> Resp {
        let path = format!("/api/v1/sites/{site}/enrollment/{week}");
        self.send(self.request("PUT", &path, token).json(counts))
            .await
    }

    /// `get` as the admin.
    pub async fn admin_get(&self, path: &str) -> Resp {
        self.get(path, &self.admin_token).await
    }

    /// The body of a `GET` as the admin; asserts a 200.
    pub async fn admin_json(&self, path: &str) -> Value {
        self.admin_get(path).await.ok(200).clone()
    }

    /// The records of a list (`data`) as the admin sees them; asserts a 200.
    pub async fn admin_list(&self, path: &str) -> Vec<Value> {
        let resp = self.admin_get(path).await;
        resp.expect(200, path);
        resp.body["data"].as_array().expect("a page's data").clone()
    }

    /// `post` as the admin.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Resp {
        self.post(path, &self.admin_token, body).await
    }

    /// `patch` (a merge patch) as the admin.
    pub async fn admin_patch(&self, path: &str, body: &Value) -> Resp {
        self.patch(path, &self.admin_token, body).await
    }

    /// A merge patch as the admin, with an `X-Change-Reason` (or none).
    pub async fn admin_patch_with(&self, path: &str, body: &Value, reason: Option<&str>) -> Resp {
        self.patch_with(path, &self.admin_token, body, reason).await
    }

    /// `delete` as the admin.
    pub async fn admin_delete(&self, path: &str) -> Resp {
        self.delete(path, &self.admin_token).await
    }

    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            self.http
                .post(self.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// The id of a record created (as admin) by posting `body` to `collection`.
    pub async fn created(&self, collection: &str, body: &Value) -> String {
        let resp = self.admin_post(collection, body).await;
        resp.expect(201, &format!("setting up {collection}"));
        resp.id()
    }

    /// Creates a record (as admin) by posting `body` with `overrides` merged in.
    async fn create(&self, collection: &str, mut body: Value, overrides: &Value) -> Value {
        json_patch::merge(&mut body, overrides);
        self.admin_post(collection, &body).await.ok(201).clone()
    }

    /// Creates a study (as admin unless a token is given) with `overrides` merged in.
    pub async fn create_study(&self, overrides: Value) -> Value {
        let body = json!({
            "protocol_number": format!("P-{}", Uuid::new_v4().simple()),
            "title": "A study",
            "phase": "phase2",
            "currency": "EUR",
            "target_enrollment": 100
        });
        self.create("/api/v1/studies", body, &overrides).await
    }

    pub async fn create_site(&self, study_id: &str, overrides: Value) -> Value {
        let body = json!({
            "study_id": study_id,
            "site_number": format!("S-{}", &Uuid::new_v4().simple().to_string()[..8]),
            "name": "A site",
            "country": "DE"
        });
        self.create("/api/v1/sites", body, &overrides).await
    }

    /// The id of a new study (as admin) with `overrides` merged in.
    pub async fn study_id(&self, overrides: Value) -> String {
        id_of(&self.create_study(overrides).await)
    }

    /// The id of a new site (as admin) of `study_id` with `overrides` merged in.
    pub async fn site_id(&self, study_id: &str, overrides: Value) -> String {
        id_of(&self.create_site(study_id, overrides).await)
    }

    /// The id of a new vendor (as admin) with `overrides` merged in.
    pub async fn vendor_id(&self, overrides: Value) -> String {
        id_of(&self.create_vendor(overrides).await)
    }

    /// Creates `n` studies (as admin), titled "Study 0", "Study 1", ...
    pub async fn studies(&self, n: usize) {
        for i in 0..n {
            self.create_study(json!({ "title": format!("Study {i}") }))
                .await;
        }
    }

    /// The ids of two new studies (as admin).
    pub async fn two_studies(&self) -> (String, String) {
        (
            self.study_id(json!({})).await,
            self.study_id(json!({})).await,
        )
    }

    /// The ids of a new study and of a new site in it (as admin).
    pub async fn study_and_site(&self) -> (String, String) {
        let study = self.study_id(json!({})).await;
        let site = self.site_id(&study, json!({})).await;
        (study, site)
    }

    /// Creates a vendor (as admin) with `overrides` merged in.
    pub async fn create_vendor(&self, overrides: Value) -> Value {
        let body = json!({"name": "A vendor", "kind": "cro"});
        self.create("/api/v1/vendors", body, &overrides).await
    }

    /// Creates a milestone (as admin) in `study_id` with `overrides` merged in.
    pub async fn create_milestone(&self, study_id: &str, overrides: Value) -> Value {
        let body = json!({"study_id": study_id, "name": "A milestone", "kind": "other"});
        self.create("/api/v1/milestones", body, &overrides).await
    }

    /// Asserts the ids each list query of `base` answers (as the admin), and that each of
    /// `refused` is a 400.
    pub async fn assert_filters(
        &self,
        base: &str,
        cases: impl IntoIterator<Item = (String, BTreeSet<String>)>,
        refused: &[&str],
    ) {
        for (query, expected) in cases {
            let resp = self.admin_get(&format!("{base}?{query}")).await;
            assert_eq!(ids(resp.ok(200)), expected, "{base}?{query}");
        }
        for query in refused {
            let resp = self.admin_get(&format!("{base}?{query}")).await;
            resp.expect(400, query);
        }
    }

    /// Posts `body` to `collection` as the admin and asserts the answer of a create: a 201
    /// with the new record's `Location`, at version 1 (`ETag: "1"`). Returns the record and
    /// its path.
    pub async fn create_checked(&self, collection: &str, body: &Value) -> (Value, String) {
        self.create_checked_with(collection, body, None).await
    }

    /// `create_checked` with an `X-Change-Reason` (or none).
    pub async fn create_checked_with(
        &self,
        collection: &str,
        body: &Value,
        reason: Option<&str>,
    ) -> (Value, String) {
        let created = self
            .post_with(collection, &self.admin_token, body, reason)
            .await;
        let record = created.ok(201).clone();
        let path = format!("{collection}/{}", id_of(&record));
        assert_eq!(created.header("location"), Some(path.clone()));
        assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
        assert_eq!(record["version"], 1, "{path}");
        (record, path)
    }

    /// Asserts that `path` reads back exactly `record`, at version 1 (`ETag: "1"`).
    pub async fn assert_reads_back(&self, path: &str, record: &Value) {
        let read = self.admin_get(path).await;
        assert_eq!(read.ok(200), record, "{path}");
        assert_eq!(read.header("etag").as_deref(), Some("\"1\""), "{path}");
    }

    /// Deletes `path` as the admin (204); then a read of it and a merge patch of `body` are
    /// 404s, as for a record that never existed.
    pub async fn assert_deleted(&self, path: &str, body: &Value) {
        self.admin_delete_ok(path).await;
        self.admin_get(path).await.problem(404);
        self.admin_patch(path, body).await.problem(404);
    }

    /// Deletes `path` as the admin (204); it then reads as a 404, while the list `query`
    /// with `include_deleted=true` still shows it first, marked `deleted_at`.
    pub async fn assert_soft_delete(&self, path: &str, query: &str) {
        self.admin_delete(path).await.ok(204);
        self.admin_get(path).await.problem(404);
        let listed = self
            .admin_list(&format!("{query}&include_deleted=true"))
            .await;
        assert!(listed[0]["deleted_at"].is_string(), "{query}");
    }

    /// Asserts that `If-Match` guards `path` (at version 1): a patch setting `field` with
    /// `"1"` succeeds, a second with the now stale `"1"` is a 412 naming `"2"`, a delete
    /// with `"1"` is a 412 that writes nothing, and a delete with `"2"` succeeds.
    pub async fn assert_if_match_guards(&self, path: &str, field: &str) {
        let patch = |etag: &str| {
            self.request("PATCH", path, &self.admin_token)
                .header("content-type", "application/merge-patch+json")
                .header("if-match", etag)
                .body(json!({ field: format!("n {etag}") }).to_string())
        };
        self.send(patch("\"1\"")).await.ok(200);
        let before = self.fingerprint().await;
        let stale = self.send(patch("\"1\"")).await;
        assert!(stale.detail(412).contains("\"2\""), "{path}");
        let delete = |etag: &str| {
            self.request("DELETE", path, &self.admin_token)
                .header("if-match", etag)
        };
        self.send(delete("\"1\"")).await.problem(412);
        assert_eq!(self.fingerprint().await, before, "{path}");
        self.send(delete("\"2\"")).await.ok(204);
    }

    /// Asserts that a merge patch of `path` without a usable `X-Change-Reason` (none, empty
    /// or blank) is a 422 naming the header, and writes nothing.
    pub async fn assert_reason_required(&self, path: &str, body: &Value) {
        let before = self.fingerprint().await;
        for reason in [None, Some(""), Some("   ")] {
            let resp = self.admin_patch_with(path, body, reason).await;
            let what = format!("{path} with reason {reason:?}");
            resp.refuses("X-Change-Reason", "required", &what);
        }
        assert_eq!(self.fingerprint().await, before, "nothing changed");
    }

    /// A fingerprint of every business table, to prove a refused request changed nothing.
    pub async fn fingerprint(&self) -> String {
        #[derive(QueryableByName)]
        struct Print {
            #[diesel(sql_type = Text)]
            print: String,
        }
        let mut conn = self.db().await;
        let sql = "SELECT concat_ws('|',
            (SELECT md5(coalesce(string_agg(s::text, ',' ORDER BY id), '')) FROM studies s),
            (SELECT md5(coalesce(string_agg(s::text, ',' ORDER BY id), '')) FROM sites s),
            (SELECT md5(coalesce(string_agg(b::text, ',' ORDER BY id), '')) FROM budget_lines b),
            (SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY id), '')) FROM expenses e),
            (SELECT md5(coalesce(string_agg(c::text, ',' ORDER BY id), '')) FROM api_clients c),
            (SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY id), '')) FROM enrollment_reports e),
            (SELECT md5(coalesce(string_agg(v::text, ',' ORDER BY id), '')) FROM vendors v),
            (SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY id), '')) FROM milestones m),
            (SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY id), '')) FROM risks r),
            (SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY id), '')) FROM deviations d),
            (SELECT count(*)::text FROM audit_events)) AS print";
        diesel::sql_query(sql)
            .get_result::<Print>(&mut conn)
            .await
            .unwrap()
            .print
    }

    /// The number `count_sql` (a `SELECT count(*) ...`) answers on this test's database.
    /// Ids go into the text as they are: they are the service's own uuids.
    pub async fn count(&self, count_sql: &str) -> i64 {
        let mut conn = self.db().await;
        diesel::sql_query(format!("SELECT ({count_sql}) AS n"))
            .get_result::<Count>(&mut conn)
            .await
            .unwrap()
            .n
    }

    /// A `method` request to `path` with `token`, to finish with headers or a body and
    /// `send`.
    pub fn request(&self, method: &str, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.bare(method, path).bearer_auth(token)
    }

    /// A `method` request to `path` without a token.
    pub fn bare(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.http.request(method, self.url(path))
    }

    /// A `GET` of `path` as CSV, as the admin.
    pub async fn admin_csv(&self, path: &str) -> Resp {
        let request = self.request("GET", path, &self.admin_token);
        self.send(request.header("accept", "text/csv")).await
    }

    /// A direct connection to this test's database.
    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.database_url)
            .await
            .unwrap()
    }

    /// The audit events of `entity_id` (oldest first), asserting their actions and that
    /// each is about an entity of `entity_type`.
    pub async fn audit_trail(
        &self,
        entity_id: &str,
        entity_type: &str,
        expected: &[&str],
    ) -> Vec<Value> {
        let events = self.audit_events(entity_id).await;
        assert_eq!(actions(&events), expected, "{entity_type} {entity_id}");
        for event in &events {
            assert_eq!(event["entity_type"], entity_type, "{entity_id}");
        }
        events
    }

    /// Audit events of one entity, oldest first, as JSON.
    pub async fn audit_events(&self, entity_id: &str) -> Vec<Value> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            event: String,
        }
        let mut conn = self.db().await;
        diesel::sql_query("SELECT row_to_json(a)::text AS event FROM audit_events a WHERE entity_id = $1::uuid ORDER BY id")
            .bind::<Text, _>(entity_id)
            .load::<Row>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| serde_json::from_str(&row.event).unwrap())
            .collect()
    }
}

/// A fixture of `../shared/fixtures` (outside data, used as it is: see its README).
pub fn fixture_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(relative)
}

/// Runs a Python validator: `script` gets the paths of `documents` (each written to a
/// temporary file) and then of `files` as arguments. Answers whether it exited 0, and its
/// output. The packages it imports are installed by `.ci/run`.
pub fn run_python(
    script: &str,
    documents: &[&Value],
    files: &[&std::path::Path],
) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("trialops-validate-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let path = dir.join(format!("document-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(document).unwrap()).unwrap();
        args.push(path.to_string_lossy().into_owned());
    }
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&args)
        .output()
        .expect("python3 must be installed to run the standards validators");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "a validator package is missing (`.ci/run` installs them: pip install 'fhir.resources>=8,<9' jsonschema): {text}"
    );
    (output.status.success(), text)
}
