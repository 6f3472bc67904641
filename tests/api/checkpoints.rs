//! Signed audit checkpoints: a compact JWS of the trail's head that an independent JWS
//! library verifies against the JWKS, and that catches a chain rewritten by the database
//! owner (which the plain verify cannot).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use trialops::domain::enums::Role;

use crate::helpers::{TestApp, run_python, spawn_app};

fn decode_part(jws: &str, index: usize) -> Value {
    let part = jws.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn checkpoint(app: &TestApp, token: &str) -> String {
    let resp = app.get("/api/v1/audit-events/checkpoint", token).await;
    resp.ok(200)["checkpoint"].as_str().unwrap().to_string()
}

async fn verify_with(app: &TestApp, checkpoints: &[&str]) -> Value {
    app.admin_post(
        "/api/v1/audit-events/verify",
        &json!({ "checkpoints": checkpoints }),
    )
    .await
    .ok(200)
    .clone()
}

/// PyJWT (an independent JWS library) verifies the checkpoint against the service's JWKS
/// and prints its claims.
const PYJWT_VERIFY: &str = r#"
import json, sys
import jwt
checkpoint = json.load(open(sys.argv[1]))["checkpoint"]
jwks = json.load(open(sys.argv[2]))
header = jwt.get_unverified_header(checkpoint)
assert header["typ"] == "trialops-checkpoint+jwt", header
key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
claims = jwt.decode(checkpoint, key.key, algorithms=["EdDSA"], options={"require": ["seq", "hash", "iat"]})
print(json.dumps(claims))
# A tampered claim set must fail.
head, body, sig = checkpoint.split(".")
forged = dict(claims, seq=claims["seq"] + 1)
import base64
forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
try:
    jwt.decode(".".join([head, forged_body, sig]), key.key, algorithms=["EdDSA"])
    sys.exit("a forged checkpoint verified")
except jwt.InvalidSignatureError:
    pass
"#;

#[actix_web::test]
async fn a_checkpoint_is_a_jws_an_independent_library_verifies_against_the_jwks() {
    let app = spawn_app().await;
    app.studies(3).await;
    let auditor = app.token_for(Role::Auditor, &[], &[], None).await;
    let jws = checkpoint(&app, &auditor).await;

    let header = decode_part(&jws, 0);
    assert_eq!(header["typ"], "trialops-checkpoint+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let claims = decode_part(&jws, 1);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "seq, hash, iat and nothing else: {claims}");
    assert!(claims["iat"].is_i64() && claims.get("aud").is_none());
    // It is the head of the trail.
    let events = app.admin_get("/api/v1/audit-events?limit=1000").await;
    let last = events.ok(200)["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(claims["seq"], last["seq"]);
    assert_eq!(claims["hash"], last["hash"]);

    let jwks = app
        .send(app.bare("GET", "/.well-known/jwks.json"))
        .await
        .ok(200)
        .clone();
    let (ok, output) = run_python(PYJWT_VERIFY, &[&json!({"checkpoint": jws}), &jwks], &[]);
    assert!(ok, "PyJWT refused the checkpoint: {output}");
    let verified: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(verified, claims);

    // It never passes as an access token (no aud), and only admin and auditor sign one.
    app.get("/api/v1/studies", &jws).await.problem(401);
    let sponsor = app.token_for(Role::Sponsor, &[], &[], None).await;
    app.get("/api/v1/audit-events/checkpoint", &sponsor)
        .await
        .problem(403);
    app.post(
        "/api/v1/audit-events/verify",
        &sponsor,
        &json!({"checkpoints": []}),
    )
    .await
    .problem(403);
}

#[actix_web::test]
async fn a_chain_rewritten_by_the_owner_passes_the_plain_check_but_not_an_earlier_checkpoint() {
    let app = spawn_app().await;
    app.studies(4).await;
    let before = checkpoint(&app, &app.admin_token).await;
    let before_seq = decode_part(&before, 1)["seq"].as_i64().unwrap();
    app.create_study(json!({"title": "After the checkpoint"}))
        .await;
    let held = verify_with(&app, &[&before]).await;
    assert_eq!(held["valid"], true, "{held}");
    assert_eq!(held["checkpoints"][0]["extended"], true);
    assert_eq!(held["first_not_extended"], Value::Null);

    // The owner edits an early event and recomputes every hash from it to the head.
    let mut conn = app.db().await;
    conn.batch_execute(
        "SET session_replication_role = replica;
         UPDATE audit_events SET reason = 'rewritten history'
          WHERE id = (SELECT event_id FROM audit_seals WHERE seq = 2);
         DO $$
         DECLARE r record; prev text;
         BEGIN
           SELECT hash INTO prev FROM audit_seals WHERE seq = 1;
           FOR r IN SELECT s.seq, e AS ev FROM audit_seals s JOIN audit_events e ON e.id = s.event_id
                     WHERE s.seq >= 2 ORDER BY s.seq LOOP
             UPDATE audit_seals SET prev_hash = prev, hash = audit_event_hash(r.ev, r.seq, prev)
              WHERE seq = r.seq RETURNING hash INTO prev;
           END LOOP;
           UPDATE audit_chain SET last_hash = prev;
         END $$;
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();

    let plain = app.admin_get("/api/v1/audit-events/verify").await;
    assert_eq!(plain.ok(200)["valid"], true, "the plain check cannot tell");
    let after = checkpoint(&app, &app.admin_token).await;
    let caught = verify_with(&app, &[&after, &before]).await;
    assert_eq!(caught["valid"], false, "{caught}");
    assert_eq!(caught["first_not_extended"], 1);
    assert_eq!(caught["checkpoints"][0]["extended"], true);
    let earlier = &caught["checkpoints"][1];
    assert_eq!(earlier["signature_valid"], true);
    assert_eq!(earlier["extended"], false);
    assert_eq!(earlier["seq"], before_seq);

    // A forged checkpoint (the claims changed, the signature kept) is named as such.
    let parts: Vec<&str> = before.split('.').collect();
    let mut claims = decode_part(&before, 1);
    claims["hash"] = json!(decode_part(&after, 1)["hash"]);
    let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
    let refused = verify_with(&app, &[&forged, "not a jws"]).await;
    assert_eq!(refused["valid"], false);
    assert_eq!(refused["checkpoints"][0]["signature_valid"], false);
    assert_eq!(refused["checkpoints"][1]["signature_valid"], false);
    assert_eq!(refused["first_not_extended"], 0);

    // Bad input is a 4xx problem, never a 500.
    app.admin_post(
        "/api/v1/audit-events/verify",
        &json!({"checkpoints": "nope"}),
    )
    .await
    .expect(
        422,
        "checkpoints not a list (a wrong JSON type: 422 since issue 13)",
    );
}
