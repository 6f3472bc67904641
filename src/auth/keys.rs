//! The Ed25519 key pair that signs access tokens, and its public half as a JWKS.

use std::collections::HashMap;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::db::keys::{self, SigningKeyRow};
use crate::db::{self, Conn};

pub const ALGORITHM: &str = "EdDSA";

/// The signing key and every public key that verifies.
pub struct KeySet {
    pub signing_kid: String,
    pub signing: EncodingKey,
    verifying: HashMap<String, (DecodingKey, Vec<u8>)>,
}

/// A key id derived from the public key (so the same key always gets the same `kid`).
fn kid_for(public_raw: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_raw)[..12])
}

fn row_for(key: &SigningKey) -> anyhow::Result<SigningKeyRow> {
    let private_der = key
        .to_pkcs8_der()
        .context("encoding the signing key")?
        .as_bytes()
        .to_vec();
    let public_raw = key.verifying_key().to_bytes().to_vec();
    Ok(SigningKeyRow {
        kid: kid_for(&public_raw),
        algorithm: ALGORITHM.into(),
        private_der,
        public_raw,
    })
}

impl KeySet {
    /// The configured key if there is one, else the database's (created on first start).
    pub async fn load(conn: &mut Conn, configured_pem: Option<&str>) -> anyhow::Result<Self> {
        let stored = keys::active_or_create(conn, || {
            row_for(&SigningKey::generate(&mut rand::rngs::OsRng))
        })
        .await?;
        let mut verifying: HashMap<String, (DecodingKey, Vec<u8>)> =
            db::keys::verification_keys(conn)
                .await?
                .into_iter()
                .map(|row| {
                    (
                        row.kid,
                        (DecodingKey::from_ed_der(&row.public_raw), row.public_raw),
                    )
                })
                .collect();
        let signing_row = match configured_pem {
            Some(pem) => {
                let key = SigningKey::from_pkcs8_pem(pem)
                    .context("TRIALOPS_SIGNING_KEY_PEM is not an Ed25519 PKCS#8 PEM key")?;
                let row = row_for(&key)?;
                verifying.insert(
                    row.kid.clone(),
                    (
                        DecodingKey::from_ed_der(&row.public_raw),
                        row.public_raw.clone(),
                    ),
                );
                row
            }
            None => stored,
        };
        Ok(Self {
            signing_kid: signing_row.kid.clone(),
            signing: EncodingKey::from_ed_der(&signing_row.private_der),
            verifying,
        })
    }

    pub fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid).map(|(key, _)| key)
    }

    /// RFC 7517 key set with RFC 8037 OKP keys.
    pub fn jwks(&self) -> Value {
        let mut kids: Vec<&String> = self.verifying.keys().collect();
        kids.sort();
        let keys: Vec<Value> = kids
            .into_iter()
            .map(|kid| {
                let (_, public_raw) = &self.verifying[kid];
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": ALGORITHM,
                    "use": "sig",
                    "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(public_raw),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}
