//! `Caller`: the authenticated API client behind a request.
//!
//! An extractor, so a handler that takes a `Caller` cannot run without a valid token, and a
//! handler that writes cannot forget to say who did it.

use actix_web::HttpMessage;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use crate::audit::WriteContext;
use crate::auth::rate_limit::Admission;
use crate::db::changes::FeedScope;
use crate::db::clients::ClientRow;
use crate::db::{self, Conn};
use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::{ClientId, SiteId, StudyId, VendorId};
use crate::domain::policy::{self, CreateScope, Operation, Reach, RowScope, Scope};
use crate::error::ApiError;
// Upward, on purpose (one of two: docs/architecture.md): an actix extractor finds what it
// needs (the token service, the pool, the rate limiter) in the app's state.
use crate::app::AppState;
use crate::telemetry;

#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: ClientId,
    pub name: String,
    pub role: Role,
    pub studies: Vec<StudyId>,
    pub sites: Vec<SiteId>,
    pub vendor: Option<VendorId>,
}

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("no bearer token".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match header.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(ApiError::Unauthorized(
            "Authorization is not a bearer token".into(),
        )),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let request = req.clone();
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let claims = state.tokens.verify(&token?)?;
            // Revocation takes effect at once, not when the client's last token expires
            // (`LiveClients` hears of it from PostgreSQL).
            let name = state
                .live_clients
                .name(&state.db, claims.sub)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("client unknown or revoked".into()))?;
            match state.rate_limiter.admit(&state.db, claims.sub).await? {
                None => {}
                Some(Admission::Allowed(status)) => {
                    request.extensions_mut().insert(status);
                }
                Some(Admission::Refused(status)) => {
                    request.extensions_mut().insert(status);
                    return Err(ApiError::TooManyRequests {
                        retry_after: status.reset_seconds,
                        why: "this client's request limit is used up",
                    });
                }
            }
            Ok(Caller {
                client_id: claims.sub,
                name: name.to_string(),
                role: claims.role,
                studies: claims.studies.clone(),
                sites: claims.sites.clone(),
                vendor: claims.vendor,
            })
        })
    }
}

impl Caller {
    /// A client acting without a request (the webhook dispatcher reads the feed with the
    /// rights its subscription's owner has now).
    pub fn from_client(client: &ClientRow) -> Self {
        Caller {
            client_id: client.id,
            name: client.name.clone(),
            role: client.role,
            studies: client.studies.clone(),
            sites: client.sites.clone(),
            vendor: client.vendor_id,
        }
    }

    /// 403 unless the caller's role may make this kind of change.
    pub fn require(&self, resource: EntityType, operation: Operation) -> Result<(), ApiError> {
        if policy::may_write(self.role, resource, operation) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not do this",
                self.role
            )))
        }
    }

    /// The audit context of a write made by this caller in the current request.
    pub fn write_context(&self, reason: Option<String>) -> WriteContext {
        WriteContext {
            actor: self.client_id.to_string(),
            actor_name: self.name.clone(),
            role: self.role,
            reason,
            request_id: telemetry::current_request_id(),
        }
    }

    /// The studies this caller may read. For `site` and `vendor` callers that takes a
    /// query: the studies of their sites, or of the milestones and risks naming their vendor.
    pub async fn study_scope(&self, conn: &mut Conn) -> Result<Scope, ApiError> {
        Ok(match policy::reach(self.role, EntityType::Study) {
            Reach::All => Scope::All,
            Reach::ClaimedStudies => Scope::Only(self.studies.clone()),
            Reach::OwnSites => Scope::Only(db::sites::study_ids_of(conn, &self.sites).await?),
            Reach::OwnVendor => match self.vendor {
                Some(vendor) => Scope::Only(db::studies::ids_naming_vendor(conn, vendor).await?),
                None => Scope::Only(Vec::new()),
            },
            Reach::Nothing => Scope::Only(Vec::new()),
        })
    }

    /// Which changes of these entity types the change feed shows this caller: for each
    /// type, the rows its reads reach (a type it may not read at all: none).
    pub async fn feed_scope(
        &self,
        conn: &mut Conn,
        types: &[EntityType],
    ) -> Result<FeedScope, ApiError> {
        let mut scope = FeedScope {
            study_ids: self.studies.clone(),
            site_ids: self.sites.clone(),
            vendor_id: self.vendor,
            ..FeedScope::default()
        };
        for &entity in types {
            let name = entity.to_string();
            if entity == EntityType::Study {
                match self.study_scope(conn).await? {
                    Scope::All => scope.all.push(name),
                    Scope::Only(ids) => scope.studies_by_id = ids,
                }
                continue;
            }
            match self.row_scope(entity) {
                RowScope::All => scope.all.push(name),
                RowScope::Studies(_) => scope.by_study.push(name),
                RowScope::Sites(_) => scope.by_site.push(name),
                RowScope::Vendor(_) => scope.by_vendor.push(name),
                RowScope::Nothing => {}
            }
        }
        Ok(scope)
    }

    /// Where this caller may create rows of `resource` (the scope half of a create; the
    /// role half is `require`).
    pub async fn create_scope(
        &self,
        conn: &mut Conn,
        resource: EntityType,
    ) -> Result<CreateScope, ApiError> {
        Ok(CreateScope {
            studies: self.study_scope(conn).await?,
            rows: self.row_scope(resource),
        })
    }

    /// The rows of `resource` (other than studies) this caller may read.
    pub fn row_scope(&self, resource: EntityType) -> RowScope {
        match policy::reach(self.role, resource) {
            Reach::All => RowScope::All,
            Reach::ClaimedStudies => RowScope::Studies(self.studies.clone()),
            Reach::OwnSites => RowScope::Sites(self.sites.clone()),
            Reach::OwnVendor => self.vendor.map_or(RowScope::Nothing, RowScope::Vendor),
            Reach::Nothing => RowScope::Nothing,
        }
    }

    /// 403 unless the caller's role reads the dashboard figures (`policy::reads_metrics`).
    pub fn require_metrics(&self) -> Result<(), ApiError> {
        if policy::reads_metrics(self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not read study-wide metrics",
                self.role
            )))
        }
    }

    /// 403 unless the caller's role reads `resource` at all (for resources that are not
    /// scoped to studies, such as API clients).
    pub fn require_read(&self, resource: EntityType) -> Result<(), ApiError> {
        if policy::reach(self.role, resource) == Reach::Nothing {
            Err(ApiError::Forbidden(format!(
                "role {} may not read this",
                self.role
            )))
        } else {
            Ok(())
        }
    }
}
