#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! One integration test binary: every test starts the real service on its own database
//! (cloned from a migrated template) and talks to it over HTTP with real tokens.

mod helpers;

mod audit;
mod auth;
mod batch;
mod browsers;
mod budgets;
mod changes;
mod checkpoints;
mod cli;
mod clients;
mod conventions;
mod csv_export;
mod ctgov;
mod demo;
mod deviations;
mod enrollment;
mod fhir;
mod forecast;
mod garbage;
mod idempotency;
mod instances;
mod keys;
mod metrics;
mod milestones;
mod openapi;
mod operations;
mod pagination;
mod risks;
mod roles;
mod scope;
mod sdtm;
mod sites;
mod strict_input;
mod studies;
mod sync_example;
mod vendors;
mod webhooks;
