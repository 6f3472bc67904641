//! Authentication: the OAuth token endpoint (RFC 6749 client credentials), revocation,
//! the JWKS, and every way a forged, tampered or stale token must be refused.
// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use diesel::QueryableByName;
use diesel::sql_types::{Bytea, Text};
use diesel_async::RunQueryDsl;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use uuid::Uuid;

use trialops::domain::enums::Role;

use crate::helpers::{Resp, TestApp, column, spawn_app};

const TOKEN_PATH: &str = "/oauth/token";
const PROBE: &str = "/api/v1/studies";

/// The decoded JSON of one base64url part of a JWT (0 = header, 1 = payload).
fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token request with HTTP Basic credentials and the given form body.
async fn basic_token_request(app: &TestApp, id: &str, secret: &str, form: &str) -> Resp {
    app.send(
        app.bare("POST", TOKEN_PATH)
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string()),
    )
    .await
}

/// A client-credentials token request with the credentials in the form.
async fn form_token(app: &TestApp, id: &str, secret: &str) -> Resp {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    app.form(TOKEN_PATH, &form).await
}

/// Asserts an RFC 6749 §5.2 error answer (JSON `{"error": ...}`, not problem+json).
#[track_caller]
fn assert_oauth_error(resp: &Resp, status: u16, error: &str) {
    assert_eq!(
        resp.status, status,
        "expected {status} {error}, got {}: {}",
        resp.status, resp.text
    );
    assert_eq!(resp.body["error"], error, "{}", resp.text);
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "OAuth errors are plain JSON, got {content_type}"
    );
    assert!(
        !resp.text.contains("access_token"),
        "an error must not carry a token: {}",
        resp.text
    );
}

/// `GET /api/v1/studies` with this Authorization header (or none).
async fn probe(app: &TestApp, authorization: Option<&str>) -> Resp {
    let mut request = app.bare("GET", PROBE);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    app.send(request).await
}

/// Asserts that this Authorization header is refused with 401 problem+json and a Bearer
/// `invalid_token` challenge.
/// `assert_refused` for `Authorization: Bearer {token}`.
async fn assert_bearer_refused(app: &TestApp, token: &str, what: &str) {
    assert_refused(app, Some(&format!("Bearer {token}")), what).await;
}

async fn assert_refused(app: &TestApp, authorization: Option<&str>, what: &str) {
    let resp = probe(app, authorization).await;
    assert_eq!(resp.status, 401, "{what}: expected 401, got {}", resp.text);
    resp.problem(401);
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("Bearer") && challenge.contains("invalid_token"),
        "{what}: WWW-Authenticate was {challenge:?}"
    );
    assert!(
        resp.body.get("data").is_none(),
        "{what}: refused request leaked data: {}",
        resp.text
    );
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    kid: String,
    #[diesel(sql_type = Bytea)]
    private_der: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    public_raw: Vec<u8>,
}

/// The service's real signing key, read from `signing_keys`.
async fn real_key(app: &TestApp) -> KeyRow {
    let mut conn = app.db().await;
    let key = diesel::sql_query(
        "SELECT kid, private_der, public_raw FROM signing_keys \
         WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .get_result::<KeyRow>(&mut conn)
    .await
    .unwrap();
    assert_eq!(key.kid, app.state.tokens.keys().signer().kid);
    key
}

/// Claims like the service's, for client `sub`, as admin, with `overrides` merged in.
fn claims(sub: &str, overrides: Value) -> Value {
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": "trialops",
        "aud": "trialops-api",
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": Uuid::new_v4(),
        "role": "admin",
    });
    json_patch::merge(&mut claims, &overrides);
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A test app, its real signing key, a live admin client (for hand-made tokens' `sub`) and
/// a token signed with the real key and good claims. The app accepts it: a control, so
/// that each refusal of a hand-made token is down to the one thing changed.
async fn app_with_key() -> (TestApp, KeyRow, String, String) {
    let app = spawn_app().await;
    let key = real_key(&app).await;
    let admin = admin_client(&app).await;
    let real = EncodingKey::from_ed_der(&key.private_der);
    let good = sign(
        Algorithm::EdDSA,
        Some(&key.kid),
        &claims(&admin, json!({})),
        &real,
    );
    app.get(PROBE, &good).await.ok(200);
    (app, key, admin, good)
}

/// A live admin client id to put in hand-made tokens' `sub`.
async fn admin_client(app: &TestApp) -> String {
    app.register(Role::Admin, vec![], vec![], None).await.0
}

#[actix_web::test]
async fn token_via_form_and_via_basic_works_on_the_api() {
    let app = spawn_app().await;
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();
    let (id, secret) = app
        .register(Role::Cro, vec![study_id.parse().unwrap()], vec![], None)
        .await;

    let by_form = form_token(&app, &id, &secret).await;
    let by_basic = basic_token_request(&app, &id, &secret, "grant_type=client_credentials").await;

    for (how, resp) in [("form", &by_form), ("basic", &by_basic)] {
        let body = resp.ok(200);
        assert!(
            resp.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "{how}"
        );
        assert_eq!(body["token_type"], "Bearer", "{how}");
        assert_eq!(body["expires_in"], 900, "{how}");
        let scope = body["scope"].as_str().unwrap();
        assert!(scope.starts_with("role:"), "{how}: {scope}");
        assert_eq!(scope, format!("role:cro study:{study_id}"), "{how}");
        assert!(
            resp.header("cache-control")
                .unwrap_or_default()
                .contains("no-store"),
            "{how}: Cache-Control {:?}",
            resp.header("cache-control")
        );
        let token = body["access_token"].as_str().unwrap();

        // The token is a JWT with the contract's header and claims.
        let header = jwt_part(token, 0);
        assert_eq!(header["alg"], "EdDSA", "{how}");
        assert_eq!(header["kid"], app.state.tokens.keys().signer().kid, "{how}");
        let claims = jwt_part(token, 1);
        assert_eq!(claims["iss"], "trialops", "{how}");
        assert_eq!(claims["aud"], "trialops-api", "{how}");
        assert_eq!(claims["sub"], id, "{how}");
        assert_eq!(claims["role"], "cro", "{how}");
        assert_eq!(claims["studies"], json!([study_id]), "{how}");
        assert!(claims["jti"].is_string(), "{how}");
        let (iat, nbf, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["nbf"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 900, "{how}");
        assert!(nbf <= iat + 1, "{how}");
        assert!((iat - Utc::now().timestamp()).abs() < 60, "{how}");

        // And it works: the CRO sees its study.
        let list = app.get(PROBE, token).await;
        let ids = column(list.ok(200), "id");
        assert_eq!(ids, vec![study_id], "{how}");
    }
    // Each token is its own (distinct jti).
    assert_ne!(
        jwt_part(by_form.body["access_token"].as_str().unwrap(), 1)["jti"],
        jwt_part(by_basic.body["access_token"].as_str().unwrap(), 1)["jti"]
    );
}

#[actix_web::test]
async fn token_endpoint_speaks_rfc6749_errors() {
    let app = spawn_app().await;
    let (id, secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let grant = ("grant_type", "client_credentials");

    // Wrong secret, in the form and as Basic.
    let wrong = form_token(&app, &id, "not-the-secret").await;
    assert_oauth_error(&wrong, 401, "invalid_client");
    assert!(
        wrong.header("www-authenticate").is_none(),
        "no Basic challenge to a client that did not use Basic"
    );
    let wrong_basic =
        basic_token_request(&app, &id, "not-the-secret", "grant_type=client_credentials").await;
    assert_oauth_error(&wrong_basic, 401, "invalid_client");
    assert_eq!(
        wrong_basic.header("www-authenticate").as_deref(),
        Some("Basic realm=\"trialops\""),
        "RFC 6749 5.2: a client that used Basic gets the challenge"
    );
    // ...except a browser script (Swagger UI), where the challenge would open the
    // browser's own sign-in prompt instead of letting the page show the error.
    let from_script = app
        .send(
            app.bare("POST", TOKEN_PATH)
                .basic_auth(&id, Some("not-the-secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-requested-with", "XMLHttpRequest")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_oauth_error(&from_script, 401, "invalid_client");
    assert!(from_script.header("www-authenticate").is_none());

    // The right secret of another client is still wrong.
    let (_, other_secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let swapped = form_token(&app, &id, &other_secret).await;
    assert_oauth_error(&swapped, 401, "invalid_client");

    // Unknown client (a well-formed uuid naming nothing), and a client id that is no uuid.
    let unknown = Uuid::now_v7().to_string();
    let resp = form_token(&app, &unknown, &secret).await;
    assert_oauth_error(&resp, 401, "invalid_client");
    for bad_id in ["not-a-uuid", "", "'; DROP TABLE api_clients; --"] {
        let resp = form_token(&app, bad_id, &secret).await;
        assert_oauth_error(&resp, 401, "invalid_client");
    }
    let resp =
        basic_token_request(&app, "not-a-uuid", &secret, "grant_type=client_credentials").await;
    assert_oauth_error(&resp, 401, "invalid_client");

    // No credentials at all.
    let resp = app.form(TOKEN_PATH, &[grant]).await;
    assert_oauth_error(&resp, 401, "invalid_client");

    // Missing grant_type.
    let resp = app
        .form(
            TOKEN_PATH,
            &[("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    assert_oauth_error(&resp, 400, "invalid_request");

    // Another grant type.
    for grant_type in ["password", "authorization_code", "refresh_token"] {
        let resp = app
            .form(
                TOKEN_PATH,
                &[
                    ("grant_type", grant_type),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("username", "x"),
                    ("password", "y"),
                ],
            )
            .await;
        assert_oauth_error(&resp, 400, "unsupported_grant_type");
    }

    // Only half of the credentials in the form.
    let resp = app.form(TOKEN_PATH, &[grant, ("client_id", &id)]).await;
    assert_oauth_error(&resp, 400, "invalid_request");

    // Credentials both as Basic and in the body.
    let both = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={}",
        url_encode(&secret)
    );
    let resp = basic_token_request(&app, &id, &secret, &both).await;
    assert_oauth_error(&resp, 400, "invalid_request");

    // JSON instead of a form.
    let resp = app
        .send(app.bare("POST", TOKEN_PATH).json(&json!({
            "grant_type": "client_credentials",
            "client_id": id,
            "client_secret": secret,
        })))
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    assert_eq!(resp.body["error"], "invalid_request", "{}", resp.text);

    // After all of that, the right credentials still work.
    assert!(!app.token(&id, &secret).await.is_empty());
}

fn url_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_string()
}

#[actix_web::test]
async fn revoked_client_gets_no_token_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let (id, secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let token = app.token(&id, &secret).await;
    app.get(PROBE, &token).await.ok(200);

    let revoke = app.admin_delete(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(revoke.status, 204, "{}", revoke.text);

    let resp = form_token(&app, &id, &secret).await;
    assert_oauth_error(&resp, 401, "invalid_client");
    let resp = basic_token_request(&app, &id, &secret, "grant_type=client_credentials").await;
    assert_oauth_error(&resp, 401, "invalid_client");

    // The token issued before revocation, still within its lifetime, is dead at once.
    assert_bearer_refused(&app, &token, "token of a revoked client").await;
    // Other clients are unaffected.
    app.admin_get(PROBE).await.ok(200);
}

#[actix_web::test]
async fn missing_or_malformed_authorization_is_refused() {
    let app = spawn_app().await;
    let (id, secret) = app.register(Role::Sponsor, vec![], vec![], None).await;
    let token = app.token(&id, &secret).await;
    // Control: the same request with the real token is accepted.
    app.get(PROBE, &token).await.ok(200);

    assert_refused(&app, None, "no Authorization header").await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    assert_refused(&app, Some(&basic), "Basic scheme with valid credentials").await;
    assert_refused(&app, Some(&format!("Token {token}")), "unknown scheme").await;
    assert_refused(&app, Some(&token), "token without a scheme").await;
    assert_refused(&app, Some("Bearer"), "Bearer without a token").await;
    assert_refused(&app, Some("Bearer "), "Bearer with an empty token").await;
    assert_refused(&app, Some("Bearer garbage"), "garbage token").await;
    assert_refused(&app, Some("Bearer a.b.c"), "three garbage parts").await;
    assert_refused(
        &app,
        Some(&format!("Bearer {token}x")),
        "token with a byte appended",
    )
    .await;
    let truncated: Vec<&str> = token.split('.').collect();
    assert_refused(
        &app,
        Some(&format!("Bearer {}.{}.", truncated[0], truncated[1])),
        "token with its signature stripped",
    )
    .await;
}

#[actix_web::test]
async fn forged_and_tampered_tokens_are_refused() {
    let (app, key, admin, good) = app_with_key().await;
    let kid = key.kid.as_str();

    // alg: none, with admin role, empty signature.
    let payload = b64(&claims(&admin, json!({})));
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "JWT", "kid": kid}));
        assert_refused(
            &app,
            Some(&format!("Bearer {header}.{payload}.")),
            &format!("alg {alg}"),
        )
        .await;
    }

    // A real CRO token with its payload edited to admin, signature kept.
    let study = app.create_study(json!({})).await;
    let study_id = study["id"].as_str().unwrap();
    let cro = app.token_for(Role::Cro, &[study_id], &[], None).await;
    app.get(PROBE, &cro).await.ok(200);
    let parts: Vec<&str> = cro.split('.').collect();
    let mut edited = jwt_part(&cro, 1);
    edited["role"] = json!("admin");
    edited.as_object_mut().unwrap().remove("studies");
    let tampered = format!("{}.{}.{}", parts[0], b64(&edited), parts[2]);
    assert_bearer_refused(&app, &tampered, "payload edited to admin").await;
    // Also: same claims, only the `exp` pushed out.
    let mut extended = jwt_part(&cro, 1);
    extended["exp"] = json!(extended["exp"].as_i64().unwrap() + 86_400);
    let tampered = format!("{}.{}.{}", parts[0], b64(&extended), parts[2]);
    assert_bearer_refused(&app, &tampered, "exp extended").await;
    // And a real header and payload with another token's signature.
    let other: Vec<&str> = good.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], parts[1], other[2]);
    assert_bearer_refused(&app, &spliced, "signature of another token").await;

    // Signed by another Ed25519 key, claiming the real kid.
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    let stranger_der = stranger.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let forged = sign(
        Algorithm::EdDSA,
        Some(kid),
        &claims(&admin, json!({})),
        &EncodingKey::from_ed_der(&stranger_der),
    );
    assert_bearer_refused(&app, &forged, "signed by another key").await;

    // HS256 keyed with the public key (the classic algorithm confusion), as raw bytes and
    // as the JWKS `x` string.
    let x = URL_SAFE_NO_PAD.encode(&key.public_raw);
    for (what, secret) in [
        ("raw public key", key.public_raw.clone()),
        ("JWKS x", x.into_bytes()),
    ] {
        let forged = sign(
            Algorithm::HS256,
            Some(kid),
            &claims(&admin, json!({})),
            &EncodingKey::from_secret(&secret),
        );
        assert_bearer_refused(&app, &forged, &format!("HS256 with the {what}")).await;
    }

    // Nothing of the above wrote anything: still only the study and the clients.
    app.get(PROBE, &good).await.ok(200);
}

#[actix_web::test]
async fn tokens_with_bad_claims_or_keys_are_refused() {
    let (app, key, admin, _) = app_with_key().await;
    let kid = key.kid.as_str();
    let real = EncodingKey::from_ed_der(&key.private_der);
    let now = Utc::now().timestamp();

    let cases = [
        (
            "expired (beyond leeway)",
            json!({"iat": now - 1_000, "nbf": now - 1_000, "exp": now - 120}),
        ),
        (
            "expired long ago",
            json!({"iat": now - 100_000, "nbf": now - 100_000, "exp": now - 99_100}),
        ),
        (
            "nbf in the future (beyond leeway)",
            json!({"nbf": now + 300}),
        ),
        ("wrong aud", json!({"aud": "someone-else"})),
        ("wrong iss", json!({"iss": "https://evil.example"})),
        ("no exp", json!({"exp": null})),
        ("no aud", json!({"aud": null})),
        ("no iss", json!({"iss": null})),
        ("no sub", json!({"sub": null})),
        ("sub names no client", json!({"sub": Uuid::now_v7()})),
    ];
    for (what, overrides) in cases {
        let token = sign(
            Algorithm::EdDSA,
            Some(kid),
            &claims(&admin, overrides),
            &real,
        );
        assert_bearer_refused(&app, &token, what).await;
    }

    // Right key, but a kid the service does not know, or none at all.
    let unknown_kid = sign(
        Algorithm::EdDSA,
        Some("0123456789abcdef01234567"),
        &claims(&admin, json!({})),
        &real,
    );
    assert_bearer_refused(&app, &unknown_kid, "unknown kid").await;
    let no_kid = sign(Algorithm::EdDSA, None, &claims(&admin, json!({})), &real);
    assert_bearer_refused(&app, &no_kid, "no kid").await;
}

#[actix_web::test]
async fn jwks_publishes_the_verifying_key() {
    let app = spawn_app().await;
    let resp = app.send(app.bare("GET", "/.well-known/jwks.json")).await;
    let jwks = resp.ok(200).clone();
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert!(jwk["x"].is_string());
    // The public half only: never the private key.
    assert!(
        jwk.get("d").is_none(),
        "the JWKS leaks the private key: {jwk}"
    );
    let key = real_key(&app).await;
    assert!(
        !resp
            .text
            .contains(&URL_SAFE_NO_PAD.encode(&key.private_der))
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        key.public_raw
    );

    let (id, secret) = app.register(Role::Auditor, vec![], vec![], None).await;
    let token = app.token(&id, &secret).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());

    // An integrator verifies the token with nothing but the JWKS.
    let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["trialops-api"]);
    validation.set_issuer(&["trialops"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    for decoding in [
        DecodingKey::from_jwk(&parsed).unwrap(),
        DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap(),
    ] {
        let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], id);
        assert_eq!(data.claims["role"], "auditor");
    }

    // The same JWKS key does not verify a token signed by another key.
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = stranger.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let forged = sign(
        Algorithm::EdDSA,
        jwk["kid"].as_str(),
        &claims(&id, json!({})),
        &EncodingKey::from_ed_der(&der),
    );
    assert!(
        jsonwebtoken::decode::<Value>(
            &forged,
            &DecodingKey::from_jwk(&parsed).unwrap(),
            &validation
        )
        .is_err()
    );

    // No token needed for the JWKS, and a junk token does not break it either.
    let resp = app
        .send(app.request("GET", "/.well-known/jwks.json", "garbage"))
        .await;
    assert_eq!(resp.ok(200), &jwks);
}
