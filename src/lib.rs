//! TrialOps: the operational backbone of a clinical trial (studies, sites, vendors,
//! milestones, budgets, risks, deviations, enrollment) as a REST JSON API.
//!
//! Layout: `api` is the HTTP edge (one module per resource, `api::routes` the route table),
//! `db` holds the rows and queries (one module per resource), `auth` the tokens and the
//! `Caller` extractor, `domain` pure types and rules, `audit` the trail every write goes
//! through, `standards` the FHIR, CDISC and ClinicalTrials.gov mappings, `demo` the demo
//! portfolio (`trialops demo`), `startup` assembles the app for `main` and for the tests.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod demo;
pub mod diagnose;
pub mod domain;
pub mod error;
pub mod operations;
pub mod standards;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
