//! Signed audit checkpoints: the trail's head (`seq`, `hash`) as a compact JWS an auditor
//! keeps outside the database. A database owner can rewrite the chain and recompute every
//! hash, but cannot sign: a checkpoint taken before the rewrite no longer matches.
//!
//! Its header says `typ: trialops-checkpoint+jwt` and names the `kid`; its claims carry no
//! `aud`, so it never passes as an access token. Any JWS library verifies it against
//! `/.well-known/jwks.json`, where every key that ever signed a checkpoint stays published.

use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::auth::keys::KeySet;

/// The `typ` of a checkpoint's header.
pub const TYPE: &str = "trialops-checkpoint+jwt";

/// What a checkpoint asserts: the trail's head when it was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    /// The position of the last sealed event (0: an empty trail).
    pub seq: i64,
    /// That event's chain hash (64 zeros for an empty trail).
    pub hash: String,
    /// When it was signed (Unix seconds).
    pub iat: i64,
}

/// A checkpoint signed with the key that signs now; answers the JWS and its kid.
pub fn sign(keys: &KeySet, seq: i64, hash: &str) -> anyhow::Result<(String, String)> {
    let signer = keys.signer();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TYPE.into());
    header.kid = Some(signer.kid.clone());
    let claims = CheckpointClaims {
        seq,
        hash: hash.to_string(),
        iat: Utc::now().timestamp(),
    };
    let jws = jsonwebtoken::encode(&header, &claims, &signer.key)?;
    Ok((jws, signer.kid.clone()))
}

/// The claims of a checkpoint whose signature holds under a published key, or why not.
pub fn verify(keys: &KeySet, jws: &str) -> Result<(String, CheckpointClaims), &'static str> {
    let header = jsonwebtoken::decode_header(jws).map_err(|_| "malformed JWS")?;
    if header.alg != Algorithm::EdDSA {
        return Err("algorithm not accepted");
    }
    if header.typ.as_deref() != Some(TYPE) {
        return Err("not a checkpoint (typ)");
    }
    let kid = header.kid.ok_or("names no key")?;
    let key = keys
        .checkpoint_key(&kid)
        .ok_or("signed by an unknown key")?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // A checkpoint never expires and has no audience.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<CheckpointClaims>(jws, key, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                _ => "invalid checkpoint",
            }
        })?;
    Ok((kid, data.claims))
}
