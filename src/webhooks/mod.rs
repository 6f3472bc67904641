//! Webhooks: the change feed pushed to partner systems, beside the pull feed.
//!
//! Subscriptions and deliveries are rows (`db::webhooks`); the dispatcher turns new feed
//! items into deliveries and sends them, signed, with retries. Everything it needs is in
//! PostgreSQL, so any number of instances can run it.

pub mod address;
pub mod dispatcher;
pub mod signature;
