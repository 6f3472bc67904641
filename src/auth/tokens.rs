//! Access tokens: short-lived JWTs signed with the service's Ed25519 key.
//!
//! Verification pins the algorithm to EdDSA (an `alg: none` or HS256 token signed with the
//! public key is refused before any signature check), finds the key by `kid`, and checks
//! `exp`, `nbf`, `iss` and `aud`.
//!
//! A token that verified is remembered, keyed by the whole token, until its `exp` (a
//! bounded cache): a client's next requests skip the signature check. A token that failed
//! is never remembered. A remembered token still counts only while its key verifies
//! tokens (a retired key's tokens are refused at once), and the whole cache is forgotten
//! whenever the key set changes.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::keys::{KeySet, KeySource};
use crate::domain::enums::Role;
use crate::domain::ids::{ClientId, SiteId, StudyId, VendorId};
use crate::error::ApiError;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The API client id.
    pub sub: ClientId,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub role: Role,
    /// Studies a `cro` client may work on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub studies: Vec<StudyId>,
    /// Sites a `site` client reports for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteId>,
    /// The vendor a `vendor` client speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorId>,
}

pub struct TokenService {
    keys: RwLock<Arc<KeySet>>,
    /// What the key set is reloaded from (with the database).
    pub source: KeySource,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    /// Token -> the kid that signed it, and its claims.
    verified: moka::sync::Cache<Box<str>, Verified>,
}

/// A token that verified: the key that signed it, and its claims.
#[derive(Clone)]
struct Verified {
    kid: Arc<str>,
    claims: Arc<Claims>,
}

/// Verified tokens remembered at most (about 0.5 KiB each).
const VERIFIED_CAPACITY: u64 = 10_000;

/// Each remembered token is forgotten at its own `exp`.
struct UntilExpiry;

impl moka::Expiry<Box<str>, Verified> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &Box<str>,
        verified: &Verified,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = verified.claims.exp - Utc::now().timestamp();
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// What a client is told about the token it got.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// The OAuth `scope` string for a client: its role, then one entry per scoped object.
pub fn scope_string(
    role: Role,
    studies: &[StudyId],
    sites: &[SiteId],
    vendor: Option<VendorId>,
) -> String {
    let mut parts = vec![format!("role:{role}")];
    parts.extend(studies.iter().map(|id| format!("study:{id}")));
    parts.extend(sites.iter().map(|id| format!("site:{id}")));
    parts.extend(vendor.iter().map(|id| format!("vendor:{id}")));
    parts.join(" ")
}

impl TokenService {
    pub fn new(
        keys: KeySet,
        source: KeySource,
        issuer: String,
        audience: String,
        ttl_seconds: i64,
    ) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            source,
            issuer,
            audience,
            ttl_seconds,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    /// The key set as it is now.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key set (after a change in the database), and forgets every
    /// remembered token: each is checked against the new set on its next use.
    pub fn replace_keys(&self, keys: KeySet) {
        match self.keys.write() {
            Ok(mut current) => *current = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        self.verified.invalidate_all();
    }

    pub fn issue(
        &self,
        client_id: ClientId,
        role: Role,
        studies: Vec<StudyId>,
        sites: Vec<SiteId>,
        vendor: Option<VendorId>,
    ) -> Result<IssuedToken, ApiError> {
        let now = Utc::now().timestamp();
        let scope = scope_string(role, &studies, &sites, vendor);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client_id,
            iat: now,
            nbf: now,
            exp: now + self.ttl_seconds,
            jti: Uuid::now_v7(),
            role,
            studies,
            sites,
            vendor,
        };
        let keys = self.keys();
        let signer = keys.signer();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signer.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &signer.key)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("signing a token")))?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.ttl_seconds,
            scope,
        })
    }

    /// The claims of a valid token: remembered if it verified before and has not expired,
    /// else checked in full (and remembered if it passes).
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, ApiError> {
        let keys = self.keys();
        if let Some(known) = self.verified.get(token)
            && known.claims.exp > Utc::now().timestamp()
            && keys.token_key(&known.kid).is_some()
        {
            return Ok(known.claims);
        }
        let (kid, claims) = self.check(&keys, token)?;
        let claims = Arc::new(claims);
        self.verified.insert(
            token.into(),
            Verified {
                kid: kid.into(),
                claims: claims.clone(),
            },
        );
        Ok(claims)
    }

    /// The full check: header, algorithm, key, signature and claims.
    fn check(&self, keys: &KeySet, token: &str) -> Result<(String, Claims), ApiError> {
        let invalid = |why: &str| ApiError::Unauthorized(why.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("token algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| invalid("token names no key"))?;
        let key = keys
            .token_key(&kid)
            .ok_or_else(|| invalid("token signed by an unknown or retired key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| (kid, data.claims))
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => invalid("token expired"),
                    ErrorKind::ImmatureSignature => invalid("token not valid yet"),
                    ErrorKind::InvalidIssuer => invalid("wrong token issuer"),
                    ErrorKind::InvalidAudience => invalid("wrong token audience"),
                    ErrorKind::InvalidSignature => invalid("bad token signature"),
                    _ => invalid("invalid token"),
                }
            })
    }
}
