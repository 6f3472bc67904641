//! Authentication and authorisation: API client secrets, token signing keys, access
//! tokens, and the `Caller` extractor, which applies the role and scope rules of contract
//! section 4 (written down as data in `domain::policy`).

pub mod caller;
pub mod checkpoints;
pub mod clients;
pub mod encryption;
pub mod keys;
pub mod live_clients;
pub mod live_keys;
pub mod rate_limit;
pub mod secret_guard;
pub mod secrets;
pub mod tokens;

pub use caller::Caller;
