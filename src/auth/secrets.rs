//! Client secrets: random, shown once, stored only as Argon2id PHC strings.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// Prefix that makes a leaked secret recognisable to secret scanners.
const SECRET_PREFIX: &str = "tos_";

/// 256 random bits, URL-safe.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Argon2id with the crate's defaults (OWASP's minimum: 19 MiB, 2 passes). Slow on
/// purpose: call it off the async workers (`web::block` / `spawn_blocking`).
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a client secret: {e}"))
}

/// Checks a presented secret against a stored hash; the hash's own parameters are used,
/// so stronger defaults later do not lock out existing clients.
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_secret() {
        let secret = generate_secret();
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() > 40);
        let hash = hash_secret(&secret).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret(&secret, &hash));
        assert!(!verify_secret("tos_wrong", &hash));
        assert!(!verify_secret(&secret, "not a hash"));
    }
}
