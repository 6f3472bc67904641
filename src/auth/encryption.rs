//! Secrets at rest, sealed with `TRIALOPS_KEY_ENCRYPTION_KEY`: AES-256-GCM from RustCrypto's
//! maintained `aes-gcm` (an AEAD: a ciphertext that was altered does not open).
//!
//! Every sealed value is bound to where it lives (a signing key's `kid`, a webhook's id, an
//! Idempotency-Key's client and key) as associated data: a ciphertext copied into another
//! row does not open there. A sealed value is a fresh random 96-bit nonce followed by the
//! ciphertext and its tag.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use anyhow::anyhow;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::ids::{ClientId, WebhookId};

/// The variable that holds the key encryption key (32 random bytes, base64).
pub const VARIABLE: &str = "TRIALOPS_KEY_ENCRYPTION_KEY";
/// The variable `trialops keys rewrap` reads the new key from.
pub const NEW_VARIABLE: &str = "TRIALOPS_NEW_KEY_ENCRYPTION_KEY";

const NONCE_LEN: usize = 12;

/// The key that seals signing keys and other secrets at rest.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// The key in `text` (base64 of 32 bytes); the error names `variable` and nothing of
    /// the value.
    pub fn from_base64(text: &str, variable: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow!("{variable} is not base64 (expected 32 random bytes, base64)"))?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            anyhow!(
                "{variable} must be 32 bytes (base64 of 32 random bytes), not {}",
                bytes.len()
            )
        })?;
        Ok(Self { cipher })
    }

    /// A new random key, base64 (what an operator puts in the variable).
    pub fn generate_base64() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }

    /// `plaintext` sealed and bound to `bound_to`.
    pub fn seal(&self, plaintext: &[u8], bound_to: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: bound_to,
                },
            )
            .map_err(|_| anyhow!("sealing a secret failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The plaintext of `sealed` if it was sealed with this key and bound to `bound_to`;
    /// `None` otherwise (wrong key, another row's value, or altered).
    pub fn open(&self, sealed: &[u8], bound_to: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: bound_to,
                },
            )
            .ok()
    }
}

/// What a webhook's sealed secret is bound to.
pub fn webhook_binding(id: WebhookId) -> Vec<u8> {
    [&b"webhook:"[..], id.uuid().as_bytes()].concat()
}

/// What an Idempotency-Key's kept answer is bound to.
pub fn idempotency_binding(client: ClientId, key: &str) -> Vec<u8> {
    [
        &b"idempotency:"[..],
        client.uuid().as_bytes(),
        key.as_bytes(),
    ]
    .concat()
}

/// A claimed delivery's signing secret in clear: its plain copy, or its sealed one opened.
/// `None` when it cannot be opened (no key, or another key than it was sealed with).
pub fn webhook_secret(
    kek: Option<&KeyEncryptionKey>,
    delivery: &crate::db::webhooks::Claimed,
) -> Option<String> {
    if let Some(secret) = &delivery.secret {
        return Some(secret.clone());
    }
    let opened = kek?.open(
        delivery.secret_enc.as_deref()?,
        &webhook_binding(delivery.webhook_id),
    )?;
    String::from_utf8(opened).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64(&KeyEncryptionKey::generate_base64(), VARIABLE).unwrap()
    }

    #[test]
    fn opens_only_with_the_same_key_and_binding() {
        let kek = key();
        let sealed = kek.seal(b"secret", b"kid-1").unwrap();
        assert_eq!(kek.open(&sealed, b"kid-1").as_deref(), Some(&b"secret"[..]));
        assert_eq!(kek.open(&sealed, b"kid-2"), None, "moved to another row");
        assert_eq!(key().open(&sealed, b"kid-1"), None, "another key");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(kek.open(&altered, b"kid-1"), None, "altered");
        assert_ne!(
            kek.seal(b"secret", b"kid-1").unwrap(),
            sealed,
            "fresh nonce"
        );
    }

    #[test]
    fn a_bad_variable_is_named_not_shown() {
        let error = KeyEncryptionKey::from_base64("c2hvcnQ=", VARIABLE).unwrap_err();
        assert!(error.to_string().contains(VARIABLE));
        assert!(!error.to_string().contains("c2hvcnQ"));
        assert!(KeyEncryptionKey::from_base64("not base64!", VARIABLE).is_err());
    }
}
