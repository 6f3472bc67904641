//! The HTTP edge: the route table. Handlers live in one module per resource; the OpenAPI
//! document built from this table is `document`, the fallback for unknown routes `fallback`.

pub mod admission;
pub mod audit_events;
pub mod batch;
pub mod budget_lines;
pub mod changes;
pub mod chart;
pub mod clients;
pub mod conditional;
pub mod deviations;
pub mod document;
pub mod edge;
pub mod enrollment;
pub mod expenses;
pub mod export;
pub mod extract;
pub mod fallback;
pub mod forecast;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod metrics;
pub mod milestones;
pub mod oauth;
pub mod resource;
pub mod respond;
pub mod risks;
mod schema_rules;
pub mod sites;
pub mod standards;
pub mod strict_query;
pub mod studies;
pub mod vendors;
pub mod webhooks;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every route, top to bottom. A handler is registered with `.service(...)` so that its
/// `#[utoipa::path]` lands in the OpenAPI document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(oauth::token)
        .service(oauth::jwks)
        .service(
            scope::scope("/api/v1")
                .service(clients::list)
                .service(clients::create)
                .service(clients::read)
                .service(clients::revoke)
                .service(keys::rotate)
                .service(audit_events::verify)
                .service(audit_events::verify_checkpoints)
                .service(audit_events::checkpoint)
                .service(audit_events::list)
                .service(changes::list)
                .service(webhooks::list)
                .service(webhooks::create)
                .service(webhooks::read)
                .service(webhooks::delete)
                .service(webhooks::deliveries)
                .service(standards::import_ctgov)
                .service(studies::list)
                .service(studies::create)
                .service(studies::read)
                .service(studies::update)
                .service(studies::delete)
                .service(sites::batch_upsert)
                .service(metrics::study)
                .service(metrics::enrollment_curve)
                .service(metrics::portfolio)
                .service(forecast::enrollment_forecast)
                .service(forecast::signals)
                .service(standards::read_fhir)
                .service(standards::read_sdtm_dv)
                .service(sites::list)
                .service(sites::create)
                .service(sites::read)
                .service(sites::update)
                .service(sites::delete)
                .service(enrollment::put_week)
                .service(enrollment::list)
                .service(vendors::list)
                .service(vendors::create)
                .service(vendors::read)
                .service(vendors::update)
                .service(vendors::delete)
                .service(milestones::batch_upsert)
                .service(milestones::list)
                .service(milestones::create)
                .service(milestones::read)
                .service(milestones::update)
                .service(milestones::delete)
                .service(risks::batch_upsert)
                .service(risks::list)
                .service(risks::create)
                .service(risks::read)
                .service(risks::update)
                .service(risks::delete)
                // No DELETE: deviations are never deleted (the fallback answers 405).
                .service(deviations::batch_upsert)
                .service(deviations::list)
                .service(deviations::create)
                .service(deviations::read)
                .service(deviations::update)
                .service(budget_lines::list)
                .service(budget_lines::create)
                .service(budget_lines::read)
                .service(budget_lines::update)
                .service(budget_lines::delete)
                .service(expenses::list)
                .service(expenses::create)
                .service(expenses::read)
                .service(expenses::update)
                .service(expenses::delete),
        );
}
