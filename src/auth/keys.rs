//! The Ed25519 keys that sign access tokens and audit checkpoints, and their public halves
//! as a JWKS.
//!
//! Where a private key lives: in `TRIALOPS_SIGNING_KEY_PEM` (the database then holds only
//! its public half), or in the database sealed under `TRIALOPS_KEY_ENCRYPTION_KEY` (a
//! database reader alone cannot sign), or, without either variable, in the database in
//! plain form (start-up warns, `/readyz` says so).
//!
//! Each instance holds the whole published set in memory and reloads it when PostgreSQL
//! announces a change (`live_keys`). Which key signs is decided by time: the newest key
//! whose `signing_from` has come. A rotation publishes the new key a moment before that,
//! so every instance verifies its tokens before any instance issues one.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::WriteContext;
use crate::auth::encryption::{self, KeyEncryptionKey};
use crate::db::Conn;
use crate::db::keys::{self, NewSigningKey, Rotation, SigningKeyRow};
use crate::error::ApiError;

pub const ALGORITHM: &str = "EdDSA";
pub const PEM_VARIABLE: &str = "TRIALOPS_SIGNING_KEY_PEM";

/// Where the signing key's private half is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStorage {
    /// In `TRIALOPS_SIGNING_KEY_PEM`; the database holds no private key.
    Environment,
    /// In the database, sealed under `TRIALOPS_KEY_ENCRYPTION_KEY`.
    Encrypted,
    /// In the database in plain form: a database reader can sign tokens.
    Plain,
}

impl KeyStorage {
    pub fn describe(self) -> &'static str {
        match self {
            KeyStorage::Environment => "from the environment",
            KeyStorage::Encrypted => "encrypted",
            KeyStorage::Plain => "not encrypted",
        }
    }
}

/// What the key set is built from besides the database: the variables, and the timing
/// of a rotation.
pub struct KeySource {
    pub encryption: Option<KeyEncryptionKey>,
    configured: Option<SigningKey>,
    /// How long a new key is published before it signs.
    pub activation: Duration,
    /// Token lifetime plus the clock-skew allowance: how long a superseded key still
    /// verifies after the new one starts signing.
    pub overlap: Duration,
}

impl KeySource {
    /// From the variables; a bad value is a one-line error naming its variable.
    pub fn new(
        encryption_key: Option<&str>,
        configured_pem: Option<&str>,
        activation: Duration,
        overlap: Duration,
    ) -> anyhow::Result<Self> {
        let encryption = encryption_key
            .map(|text| KeyEncryptionKey::from_base64(text, encryption::VARIABLE))
            .transpose()?;
        let configured = configured_pem
            .map(|pem| {
                SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| anyhow!("{PEM_VARIABLE} is not an Ed25519 PKCS#8 PEM key"))
            })
            .transpose()?;
        Ok(Self {
            encryption,
            configured,
            activation,
            overlap,
        })
    }

    pub fn from_environment(&self) -> bool {
        self.configured.is_some()
    }

    /// A new key's row: its private half sealed if there is an encryption key.
    fn new_row(
        &self,
        key: &SigningKey,
        signing_from: DateTime<Utc>,
    ) -> anyhow::Result<NewSigningKey> {
        let der = key
            .to_pkcs8_der()
            .context("encoding the signing key")?
            .as_bytes()
            .to_vec();
        let public_raw = key.verifying_key().to_bytes().to_vec();
        let kid = kid_for(&public_raw);
        let (private_der, private_enc) = match &self.encryption {
            Some(kek) => (None, Some(kek.seal(&der, kid.as_bytes())?)),
            None => (Some(der), None),
        };
        Ok(NewSigningKey {
            kid,
            algorithm: ALGORITHM.into(),
            private_der,
            private_enc,
            public_raw,
            signing_from: Some(signing_from),
        })
    }

    /// A key's private half in plain PKCS#8, from its row.
    fn open(&self, row: &SigningKeyRow) -> anyhow::Result<Option<Vec<u8>>> {
        match (&row.private_der, &row.private_enc) {
            (Some(der), _) => Ok(Some(der.clone())),
            (None, Some(sealed)) => {
                let Some(kek) = &self.encryption else {
                    return Err(anyhow!(
                        "signing key {} is encrypted: set {}",
                        row.kid,
                        encryption::VARIABLE
                    ));
                };
                kek.open(sealed, row.kid.as_bytes())
                    .map(Some)
                    .ok_or_else(|| {
                        anyhow!(
                            "{} does not decrypt signing key {} (a wrong key?)",
                            encryption::VARIABLE,
                            row.kid
                        )
                    })
            }
            (None, None) => Ok(None),
        }
    }
}

/// A key that may sign, from a moment on.
pub struct Signer {
    pub kid: String,
    pub key: EncodingKey,
    signing_from: DateTime<Utc>,
}

/// A published public key.
struct Published {
    decoding: DecodingKey,
    raw: Vec<u8>,
    /// `None`: retired (kept published because it signed a checkpoint).
    tokens_until: Option<Option<DateTime<Utc>>>,
    signed_checkpoint: bool,
}

/// The signing keys and every published public key.
pub struct KeySet {
    /// Oldest `signing_from` first.
    signers: Vec<Signer>,
    published: HashMap<String, Published>,
    pub storage: KeyStorage,
}

/// A key id derived from the public key (so the same key always gets the same `kid`).
fn kid_for(public_raw: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_raw)[..12])
}

impl KeySet {
    /// The published keys; creates a signing key first if the database has none (and the
    /// environment gives none).
    pub async fn load(conn: &mut Conn, source: &KeySource) -> anyhow::Result<Self> {
        if let Some(configured) = &source.configured {
            let mut row = source.new_row(configured, Utc::now())?;
            row.private_der = None;
            row.private_enc = None;
            keys::publish_public(conn, &row).await?;
            // Keys the database held before verify what they signed, then retire (and
            // lose their private halves): the database ends up holding none.
            let tokens_until = Utc::now()
                + chrono::Duration::from_std(source.overlap).unwrap_or(chrono::Duration::MAX);
            keys::supersede_all_but(conn, &row.kid, tokens_until)
                .await
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            let now = Utc::now();
            let fresh = SigningKey::generate(&mut rand::rngs::OsRng);
            let row = source.new_row(&fresh, now)?;
            keys::ensure_signer(conn, move || Ok(row)).await?;
        }
        let rows = keys::published(conn).await?;
        Self::from_rows(&rows, source)
    }

    pub fn from_rows(rows: &[SigningKeyRow], source: &KeySource) -> anyhow::Result<Self> {
        let mut signers = Vec::new();
        let mut published = HashMap::new();
        let mut any_plain = false;
        for row in rows {
            let retired = row.retired_at.is_some();
            published.insert(
                row.kid.clone(),
                Published {
                    decoding: DecodingKey::from_ed_der(&row.public_raw),
                    raw: row.public_raw.clone(),
                    tokens_until: (!retired).then_some(row.tokens_until),
                    signed_checkpoint: row.signed_checkpoint,
                },
            );
            any_plain |= row.private_der.is_some();
            if retired || source.configured.is_some() {
                continue;
            }
            if let (Some(der), Some(signing_from)) = (source.open(row)?, row.signing_from) {
                signers.push(Signer {
                    kid: row.kid.clone(),
                    key: EncodingKey::from_ed_der(&der),
                    signing_from,
                });
            }
        }
        if let Some(configured) = &source.configured {
            let der = configured
                .to_pkcs8_der()
                .context("encoding the signing key")?;
            let public_raw = configured.verifying_key().to_bytes().to_vec();
            signers.push(Signer {
                kid: kid_for(&public_raw),
                key: EncodingKey::from_ed_der(der.as_bytes()),
                signing_from: DateTime::<Utc>::MIN_UTC,
            });
        }
        if signers.is_empty() {
            return Err(anyhow!("no signing key can sign"));
        }
        signers.sort_by_key(|signer| signer.signing_from);
        let storage = if source.configured.is_some() {
            KeyStorage::Environment
        } else if any_plain || source.encryption.is_none() {
            KeyStorage::Plain
        } else {
            KeyStorage::Encrypted
        };
        Ok(Self {
            signers,
            published,
            storage,
        })
    }

    /// The key that signs now: the newest whose time has come (the oldest if none has).
    pub fn signer(&self) -> &Signer {
        let now = Utc::now();
        self.signers
            .iter()
            .rev()
            .find(|signer| signer.signing_from <= now)
            .unwrap_or(&self.signers[0])
    }

    /// The key that verifies tokens signed under `kid`, unless that key is unknown or
    /// retired (or its last token has expired, even before the database says so).
    pub fn token_key(&self, kid: &str) -> Option<&DecodingKey> {
        let key = self.published.get(kid)?;
        match key.tokens_until {
            Some(None) => Some(&key.decoding),
            Some(Some(until)) if until > Utc::now() => Some(&key.decoding),
            _ => None,
        }
    }

    /// The key that verifies checkpoints signed under `kid`: any published key.
    pub fn checkpoint_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.published.get(kid).map(|key| &key.decoding)
    }

    /// Whether `kid` is already recorded as a checkpoint signer.
    pub fn signed_checkpoint(&self, kid: &str) -> bool {
        self.published
            .get(kid)
            .is_some_and(|key| key.signed_checkpoint)
    }

    /// Whether a key's last token has expired but it is not retired yet.
    pub fn retirement_due(&self) -> bool {
        let now = Utc::now();
        self.published
            .values()
            .any(|key| matches!(key.tokens_until, Some(Some(until)) if until <= now))
    }

    /// RFC 7517 key set with RFC 8037 OKP keys: every key that verifies tokens now, and
    /// every key that ever signed an audit checkpoint.
    pub fn jwks(&self) -> Value {
        let mut kids: Vec<&String> = self
            .published
            .iter()
            .filter(|(kid, key)| key.signed_checkpoint || self.token_key(kid).is_some())
            .map(|(kid, _)| kid)
            .collect();
        kids.sort();
        let keys: Vec<Value> = kids
            .into_iter()
            .map(|kid| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": ALGORITHM,
                    "use": "sig",
                    "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&self.published[kid].raw),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

/// Publishes a new signing key that signs from `activation` after now; the current keys
/// verify tokens until the last one they can sign has expired. Refused when the key comes
/// from the environment.
pub async fn rotate(
    conn: &mut Conn,
    ctx: &WriteContext,
    source: &KeySource,
) -> Result<Rotation, ApiError> {
    if source.from_environment() {
        return Err(ApiError::Conflict(format!(
            "rotation does not apply: the signing key comes from {PEM_VARIABLE}; to rotate, \
             deploy a new key in that variable"
        )));
    }
    let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let signing_from = Utc::now() + to_chrono(source.activation);
    let tokens_until = signing_from + to_chrono(source.overlap);
    let fresh = SigningKey::generate(&mut rand::rngs::OsRng);
    let row = source.new_row(&fresh, signing_from)?;
    keys::rotate(conn, ctx, row, tokens_until).await
}

/// `trialops keys encrypt`: seals every secret stored in plain form (signing keys,
/// webhook secrets, kept Idempotency-Key answers), in one transaction. Answers how many.
pub async fn encrypt_plain(conn: &mut Conn, kek: &KeyEncryptionKey) -> anyhow::Result<usize> {
    reseal(conn, None, kek).await
}

/// `trialops keys rewrap`: opens every sealed secret with `old` and seals it with `new`
/// (plain ones too), in one transaction. Answers how many.
pub async fn rewrap(
    conn: &mut Conn,
    old: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> anyhow::Result<usize> {
    reseal(conn, Some(old), new).await
}

/// Seals every secret under `new`: the plain ones, and (with `old`) the sealed ones.
async fn reseal(
    conn: &mut Conn,
    old: Option<&KeyEncryptionKey>,
    new: &KeyEncryptionKey,
) -> anyhow::Result<usize> {
    use diesel_async::AsyncConnection;
    let (old, new) = (old.cloned(), new.clone());
    conn.transaction::<_, anyhow::Error, _>(async move |conn| {
        // Opens a sealed value with the old key, or answers `None` when there is no old key
        // (`encrypt` leaves sealed values as they are).
        let open =
            |sealed: &[u8], bound_to: &[u8], what: &str| -> anyhow::Result<Option<Vec<u8>>> {
                match &old {
                    None => Ok(None),
                    Some(old) => old.open(sealed, bound_to).map(Some).ok_or_else(|| {
                        anyhow!(
                            "{} does not decrypt {what} (a wrong key?)",
                            encryption::VARIABLE
                        )
                    }),
                }
            };
        let mut count = 0;
        for row in keys::with_private(conn).await? {
            let bound_to = row.kid.as_bytes();
            let der = match (&row.private_der, &row.private_enc) {
                (Some(der), _) => Some(der.clone()),
                (None, Some(sealed)) => {
                    open(sealed, bound_to, &format!("signing key {}", row.kid))?
                }
                (None, None) => None,
            };
            if let Some(der) = der {
                keys::set_sealed(conn, &row.kid, new.seal(&der, bound_to)?).await?;
                count += 1;
            }
        }
        for (id, plain, sealed) in crate::db::webhooks::stored_secrets(conn).await? {
            let bound_to = encryption::webhook_binding(id);
            let secret = match (plain, sealed) {
                (Some(plain), _) => Some(plain.into_bytes()),
                (None, Some(sealed)) => {
                    open(&sealed, &bound_to, &format!("webhook {id}'s secret"))?
                }
                (None, None) => None,
            };
            if let Some(secret) = secret {
                let sealed = new.seal(&secret, &bound_to)?;
                crate::db::webhooks::set_sealed_secret(conn, id, sealed).await?;
                count += 1;
            }
        }
        for (client, key, plain, sealed) in crate::db::idempotency::stored_bodies(conn).await? {
            let bound_to = encryption::idempotency_binding(client, &key);
            let body = match (plain, sealed) {
                (Some(plain), _) => Some(plain),
                (None, Some(sealed)) => open(&sealed, &bound_to, "a kept Idempotency-Key answer")?,
                (None, None) => None,
            };
            if let Some(body) = body {
                let sealed = new.seal(&body, &bound_to)?;
                crate::db::idempotency::set_sealed_body(conn, client, &key, sealed).await?;
                count += 1;
            }
        }
        Ok(count)
    })
    .await
}
