//! TrialOps: the operational backbone of a clinical trial (studies, sites, vendors,
//! milestones, budgets, risks, deviations, enrollment) as a REST JSON API.
//!
//! Layout, top to bottom (a module imports only from its own layer or those below;
//! `docs/architecture.md`): `main`, `startup` (assembles the app for `main` and for the
//! tests), `operations` (`/metrics`), `demo` (the demo portfolio, `trialops demo`); `api`,
//! the HTTP edge (one module per resource of thin handlers over the generic bodies in
//! `api::resource`, `api::routes` the route table, `api::document` the OpenAPI document),
//! and `webhooks`, the feed sent to partners; `app` (`AppState`, what every request may
//! need) and `config`; `auth`, the tokens and the `Caller` extractor, and `standards`, the
//! FHIR, CDISC and ClinicalTrials.gov mappings; `db`, the rows, their writable fields and
//! queries (one module per resource, `db::write` the one write path, `db::locks` its
//! locks), and `audit`, the trail every write goes through; `domain`, pure types and rules
//! (the typed ids `StudyId`, `SiteId`, ... and the access policy among them); `error`, the one error type and its problem catalogue;
//! `telemetry`, logs, request ids and request figures.

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
