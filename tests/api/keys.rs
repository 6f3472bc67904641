//! Signing keys out of a database reader's reach: sealed at rest under
//! `TRIALOPS_KEY_ENCRYPTION_KEY`, or given in the environment; rotation without downtime
//! across instances; and retirement once the last token a key signed has expired.

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use trialops::auth::encryption::KeyEncryptionKey;
use trialops::config::Settings;
use trialops::domain::enums::Role;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_trialops");

#[derive(QueryableByName, Debug)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    kid: String,
    #[diesel(sql_type = Bool)]
    plain: bool,
    #[diesel(sql_type = Bool)]
    sealed: bool,
    #[diesel(sql_type = Nullable<Text>)]
    retired_at: Option<String>,
}

async fn key_rows(app: &TestApp) -> Vec<KeyRow> {
    let mut conn = app.db().await;
    diesel::sql_query(
        "SELECT kid, private_der IS NOT NULL AS plain, private_enc IS NOT NULL AS sealed,
                retired_at::text AS retired_at
         FROM signing_keys ORDER BY created_at",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

fn header_kid(token: &str) -> String {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks = app.send(app.bare("GET", "/.well-known/jwks.json")).await;
    let mut kids: Vec<String> = jwks.ok(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

fn trialops(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("TRIALOPS_KEY_ENCRYPTION_KEY")
        .env_remove("TRIALOPS_SIGNING_KEY_PEM");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn readyz(app: &TestApp) -> Value {
    app.send(app.bare("GET", "/readyz")).await.ok(200).clone()
}

#[actix_web::test]
async fn with_an_encryption_key_a_database_reader_holds_no_usable_signing_key() {
    let kek = KeyEncryptionKey::generate_base64();
    let app = spawn_app_with(|s| s.key_encryption_key = Some(kek.clone())).await;
    let rows = key_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].sealed && !rows[0].plain, "{rows:?}");
    assert_eq!(readyz(&app).await["signing_keys"], "encrypted");

    // What a dump holds is no PKCS#8 key.
    let mut conn = app.db().await;
    #[derive(QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        private_enc: Vec<u8>,
    }
    let sealed: Sealed = diesel::sql_query("SELECT private_enc FROM signing_keys")
        .get_result(&mut conn)
        .await
        .unwrap();
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    assert!(ed25519_dalek::SigningKey::from_pkcs8_der(&sealed.private_enc).is_err());

    // An Idempotency-Key replay of a new client keeps its answer, secret included, but
    // not in plain form.
    let create = |key: &'static str| {
        app.request("POST", "/api/v1/clients", &app.admin_token)
            .header("idempotency-key", key)
            .json(&json!({"name": "Replayed", "role": "analyst"}))
    };
    let first = app.send(create("k-1")).await;
    let secret = first.ok(201)["client_secret"].as_str().unwrap().to_string();
    let replay = app.send(create("k-1")).await;
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(replay.ok(201)["client_secret"], secret.as_str());
    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = Bool)]
        plain: bool,
        #[diesel(sql_type = Text)]
        stored: String,
    }
    let kept: Kept = diesel::sql_query(
        "SELECT response_body IS NOT NULL AS plain,
                encode(coalesce(response_body, response_body_enc), 'escape') AS stored
         FROM idempotency_keys WHERE key = 'k-1'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(!kept.plain && !kept.stored.contains(&secret));

    // Another instance with a wrong key refuses to start, in one line naming the variable.
    let wrong = KeyEncryptionKey::generate_base64();
    let mut settings = Settings::for_database(&app.database_url);
    settings.key_encryption_key = Some(wrong.clone());
    let error = match trialops::startup::prepare(&settings).await {
        Ok(_) => panic!("a wrong encryption key started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("TRIALOPS_KEY_ENCRYPTION_KEY") && !error.contains('\n'),
        "{error}"
    );
    let (ok, _, stderr) = trialops(
        &app.database_url,
        &[("TRIALOPS_KEY_ENCRYPTION_KEY", &wrong)],
        &["migrate"],
    );
    assert!(ok, "migrate needs no key: {stderr}");
    let (ok, _, stderr) = trialops(
        &app.database_url,
        &[("TRIALOPS_KEY_ENCRYPTION_KEY", &wrong)],
        &["clients", "list"],
    );
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TRIALOPS_KEY_ENCRYPTION_KEY"), "{stderr}");
    // And without any key, it says the keys are encrypted.
    let (ok, _, stderr) = trialops(&app.database_url, &[], &["clients", "list"]);
    assert!(
        !ok && stderr.contains("TRIALOPS_KEY_ENCRYPTION_KEY"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn plain_keys_are_reported_then_encrypted_and_rewrapped_from_the_command_line() {
    let app = spawn_app().await;
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["signing_keys"], "not encrypted");
    assert!(key_rows(&app).await[0].plain);
    // A kept answer in plain form, to be sealed too.
    app.send(
        app.request("POST", "/api/v1/studies", &app.admin_token)
            .header("idempotency-key", "plain-1")
            .json(&json!({"title": "Kept", "phase": "phase2", "status": "planned"})),
    )
    .await;

    let (ok, _, stderr) = trialops(&app.database_url, &[], &["keys", "encrypt"]);
    assert!(
        !ok && stderr.contains("TRIALOPS_KEY_ENCRYPTION_KEY"),
        "{stderr}"
    );
    let first = KeyEncryptionKey::generate_base64();
    let (ok, _, stderr) = trialops(
        &app.database_url,
        &[("TRIALOPS_KEY_ENCRYPTION_KEY", &first)],
        &["keys", "encrypt"],
    );
    assert!(ok, "{stderr}");
    let rows = key_rows(&app).await;
    assert!(rows.iter().all(|r| r.sealed && !r.plain), "{rows:?}");
    let plain_bodies = app
        .count("SELECT count(*) FROM idempotency_keys WHERE response_body IS NOT NULL")
        .await;
    assert_eq!(plain_bodies, 0);

    // The same key still signs: the first instance's tokens verify on one with the key.
    let sealed = app
        .another_instance(|s| s.key_encryption_key = Some(first.clone()))
        .await;
    assert_eq!(readyz(&sealed).await["signing_keys"], "encrypted");
    sealed
        .get("/api/v1/studies", &app.admin_token)
        .await
        .ok(200);

    let second = KeyEncryptionKey::generate_base64();
    let (ok, _, stderr) = trialops(
        &app.database_url,
        &[
            ("TRIALOPS_KEY_ENCRYPTION_KEY", &first),
            ("TRIALOPS_NEW_KEY_ENCRYPTION_KEY", &second),
        ],
        &["keys", "rewrap"],
    );
    assert!(ok, "{stderr}");
    let rewrapped = app
        .another_instance(|s| s.key_encryption_key = Some(second.clone()))
        .await;
    rewrapped
        .get("/api/v1/studies", &app.admin_token)
        .await
        .ok(200);
    let mut settings = Settings::for_database(&app.database_url);
    settings.key_encryption_key = Some(first.clone());
    assert!(
        trialops::startup::prepare(&settings).await.is_err(),
        "the old key no longer opens them"
    );
}

#[actix_web::test]
async fn a_key_from_the_environment_leaves_no_private_key_in_the_database_and_is_not_rotated() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap()
        .to_string();
    // A database that held a key before the environment gives one.
    let db_keyed = spawn_app_with(short_lived).await;
    let app = db_keyed
        .another_instance(|s| {
            short_lived(s);
            s.signing_key_pem = Some(pem.clone());
        })
        .await;
    let (id, secret) = app.register(Role::Admin, vec![], vec![], None).await;
    let token = app.token(&id, &secret).await;
    let env_kid = header_kid(&token);
    assert_eq!(readyz(&app).await["signing_keys"], "from the environment");
    // The earlier key verifies what it signed, then retires and loses its private half.
    within(Duration::from_secs(6), "the database key retires", || {
        let db_keyed = &db_keyed;
        async move {
            key_rows(db_keyed)
                .await
                .iter()
                .all(|r| !r.plain && !r.sealed)
        }
    })
    .await;
    let rows = key_rows(&app).await;
    assert!(rows.iter().any(|r| r.kid == env_kid), "{rows:?}");
    let token = app.token(&id, &secret).await;
    within(
        Duration::from_secs(1),
        "the JWKS holds the environment's key only",
        || {
            let (app, env_kid) = (&app, &env_kid);
            async move { jwks_kids(app).await == [env_kid.clone()] }
        },
    )
    .await;

    let refused = app.post("/api/v1/keys/rotate", &token, &json!({})).await;
    let problem = refused.problem(409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("TRIALOPS_SIGNING_KEY_PEM"),
        "{problem}"
    );
    let (ok, _, stderr) = trialops(
        &app.database_url,
        &[("TRIALOPS_SIGNING_KEY_PEM", &pem)],
        &["keys", "rotate"],
    );
    assert!(
        !ok && stderr.contains("rotation does not apply"),
        "{stderr}"
    );
}

fn short_lived(settings: &mut Settings) {
    settings.token_ttl_seconds = 2;
    settings.key_skew_seconds = 1;
    settings.key_activation_ms = 800;
}

/// Polls `check` until it holds or `limit` passes; answers how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix_web::test]
async fn rotation_publishes_first_switches_every_instance_and_retires_the_old_key() {
    // Long enough that the steps below fit in the overlap on a loaded machine.
    let settings = |s: &mut Settings| {
        short_lived(s);
        s.token_ttl_seconds = 5;
    };
    let app = spawn_app_with(settings).await;
    let other = app.another_instance(settings).await;
    let (admin_id, admin_secret) = app.register(Role::Admin, vec![], vec![], None).await;
    let old_kid = app.state.tokens.keys().signer().kid.clone();
    let before = app.token(&admin_id, &admin_secret).await;
    assert_eq!(header_kid(&before), old_kid);
    // Remembered as verified on both instances.
    app.get("/api/v1/studies", &before).await.ok(200);
    other.get("/api/v1/studies", &before).await.ok(200);

    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;
    app.post("/api/v1/keys/rotate", &sponsor, &json!({}))
        .await
        .problem(403);
    let rotated = app.post("/api/v1/keys/rotate", &before, &json!({})).await;
    let rotation = rotated.ok(200).clone();
    let new_kid = rotation["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotation["superseded"][0]["kid"], old_kid.as_str());

    // Published on both instances at once, before either signs with it.
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(jwks_kids(&app).await, both);
    within(
        Duration::from_millis(300),
        "the other instance knows the key",
        || {
            let (other, both) = (&other, &both);
            async move { jwks_kids(other).await == *both }
        },
    )
    .await;
    let signing_from: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotation["signing_from"].clone()).unwrap();
    assert!(
        chrono::Utc::now() < signing_from,
        "every instance knew the key before it signs"
    );

    // Within a second, every instance signs with the new key, and each verifies the
    // other's tokens.
    within(
        Duration::from_secs(1),
        "both instances sign with the new key",
        || {
            let (app, other, new_kid) = (&app, &other, &new_kid);
            let (id, secret) = (&admin_id, &admin_secret);
            async move {
                header_kid(&app.token(id, secret).await) == *new_kid
                    && header_kid(&other.token(id, secret).await) == *new_kid
            }
        },
    )
    .await;
    let new_token = other.token(&admin_id, &admin_secret).await;
    app.get("/api/v1/studies", &new_token).await.ok(200);
    // The token signed before the rotation still works (it has not expired).
    app.get("/api/v1/studies", &before).await.ok(200);
    other.get("/api/v1/studies", &before).await.ok(200);
    assert_eq!(
        jwks_kids(&other).await,
        both,
        "both listed during the overlap"
    );

    // Once its last token has expired (5 s) plus the skew (1 s), the old key retires by
    // itself: its tokens are 401 everywhere and it leaves the JWKS.
    within(Duration::from_secs(9), "the old key retires", || {
        let app = &app;
        let old_kid = &old_kid;
        async move {
            key_rows(app)
                .await
                .iter()
                .any(|r| r.kid == *old_kid && r.retired_at.is_some() && !r.plain && !r.sealed)
        }
    })
    .await;
    let refused = app.get("/api/v1/studies", &before).await;
    assert!(refused.detail(401).contains("retired"), "{}", refused.text);
    other.get("/api/v1/studies", &before).await.problem(401);
    within(Duration::from_secs(1), "the JWKS drops the old key", || {
        let (app, other, new_kid) = (&app, &other, &new_kid);
        async move {
            jwks_kids(app).await == [new_kid.clone()] && jwks_kids(other).await == [new_kid.clone()]
        }
    })
    .await;

    // Each step is an audit event of entity type `signing_key`.
    let fresh = app.token(&admin_id, &admin_secret).await;
    let events = app
        .get("/api/v1/audit-events?entity_type=signing_key", &fresh)
        .await;
    let actions: Vec<(String, String)> = events.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let kid = e["changes"]["kid"]["new"]
                .as_str()
                .or(e["changes"]["kid"]["old"].as_str())
                .unwrap_or_else(|| {
                    // Updates list only what changed; the entity id starts with the kid.
                    &e["entity_id"].as_str().unwrap()[..8]
                })
                .to_string();
            (e["action"].as_str().unwrap().to_string(), kid)
        })
        .collect();
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["create", "supersede", "retire"], "{actions:?}");
    assert_eq!(actions[0].1, new_kid);
}

#[actix_web::test]
async fn a_key_that_signed_a_checkpoint_stays_published_after_it_retires() {
    let app = spawn_app_with(short_lived).await;
    let checkpoint = app
        .admin_get("/api/v1/audit-events/checkpoint")
        .await
        .ok(200)["checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let old_kid = app.state.tokens.keys().signer().kid.clone();
    let (id, secret) = app.register(Role::Admin, vec![], vec![], None).await;
    let token = app.token(&id, &secret).await;
    app.post("/api/v1/keys/rotate", &token, &json!({}))
        .await
        .ok(200);
    within(Duration::from_secs(6), "the old key retires", || {
        let (app, old_kid) = (&app, &old_kid);
        async move {
            key_rows(app)
                .await
                .iter()
                .any(|r| r.kid == *old_kid && r.retired_at.is_some())
        }
    })
    .await;
    let fresh = app.token(&id, &secret).await;
    within(Duration::from_secs(1), "reloaded", || {
        let app = &app;
        async move { jwks_kids(app).await.len() == 2 }
    })
    .await;
    assert!(jwks_kids(&app).await.contains(&old_kid));
    let check = app
        .post(
            "/api/v1/audit-events/verify",
            &fresh,
            &json!({"checkpoints": [checkpoint]}),
        )
        .await;
    assert_eq!(check.ok(200)["checkpoints"][0]["signature_valid"], true);
    assert_eq!(check.body["checkpoints"][0]["kid"], old_kid.as_str());
    // But its tokens are refused.
    app.get("/api/v1/studies", &token).await.problem(401);
}

#[actix_web::test]
async fn only_an_admin_rotates() {
    let app = spawn_app().await;
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    app.post("/api/v1/keys/rotate", &auditor, &json!({}))
        .await
        .problem(403);
}
