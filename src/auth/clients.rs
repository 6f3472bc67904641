//! Registering an API client: one use case for the CLI and for `POST /api/v1/clients`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::audit::WriteContext;
use crate::auth::secrets;
use crate::db::clients::{ApiClient, NewClient};
use crate::db::schema::{sites, studies, vendors};
use crate::db::{self, Conn};
use crate::domain::enums::Role;
use crate::domain::ids::{ClientId, SiteId, StudyId, VendorId};
use crate::domain::validation::{field_error, not_blank};
use crate::error::{ApiError, FieldError};

/// A new API client (`POST /api/v1/clients`, `trialops clients create`).
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "scope_fits_role"))]
#[schema(example = json!({"name": "Acme CRO sync", "role": "cro", "studies": ["0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"], "sites": [], "vendor": null}))]
pub struct NewClientRequest {
    /// A name people recognise in the audit trail.
    #[validate(length(min = 1, max = 200), custom(function = "not_blank"))]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    pub role: Role,
    /// For `cro` (required, at least one): the studies it works on.
    #[serde(default)]
    pub studies: Vec<StudyId>,
    /// For `site` (required, at least one): the sites it reports for.
    #[serde(default)]
    pub sites: Vec<SiteId>,
    /// For `vendor` (required): the vendor it speaks for.
    #[serde(default)]
    pub vendor: Option<VendorId>,
}

/// Each scoped role needs its own kind of scope, and no other.
fn scope_fits_role(request: &NewClientRequest) -> Result<(), ValidationError> {
    let (studies, sites, vendor) = (
        !request.studies.is_empty(),
        !request.sites.is_empty(),
        request.vendor.is_some(),
    );
    let required = |field: &'static str| {
        field_error(
            field,
            "required",
            format!("required for role {}", request.role),
        )
    };
    let refused = |field: &'static str| {
        field_error(
            field,
            "not_allowed",
            format!("not used by role {}", request.role),
        )
    };
    match request.role {
        Role::Cro if !studies => Err(required("studies")),
        Role::Site if !sites => Err(required("sites")),
        Role::Vendor if !vendor => Err(required("vendor")),
        role if studies && role != Role::Cro => Err(refused("studies")),
        role if sites && role != Role::Site => Err(refused("sites")),
        role if vendor && role != Role::Vendor => Err(refused("vendor")),
        _ => Ok(()),
    }
}

/// A 422 detail for each id of `asked` (the list `field`) that is not among `live`.
fn unmatched<Id: PartialEq>(field: &str, kind: &str, asked: &[Id], live: &[Id]) -> Vec<FieldError> {
    asked
        .iter()
        .enumerate()
        .filter(|(_, id)| !live.contains(id))
        .map(|(i, _)| {
            FieldError::new(
                format!("{field}[{i}]"),
                "reference",
                format!("names no {kind}"),
            )
        })
        .collect()
}

/// 422 for each scope id that names nothing live.
async fn check_scope_references(
    conn: &mut Conn,
    request: &NewClientRequest,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let live_studies: Vec<StudyId> = studies::table
        .filter(studies::id.eq_any(&request.studies))
        .filter(studies::deleted_at.is_null())
        .select(studies::id)
        .load(conn)
        .await?;
    errors.extend(unmatched(
        "studies",
        "study",
        &request.studies,
        &live_studies,
    ));
    let live_sites: Vec<SiteId> = sites::table
        .filter(sites::id.eq_any(&request.sites))
        .filter(sites::deleted_at.is_null())
        .select(sites::id)
        .load(conn)
        .await?;
    errors.extend(unmatched("sites", "site", &request.sites, &live_sites));
    if let Some(vendor) = request.vendor {
        let found: i64 = vendors::table
            .filter(vendors::id.eq(vendor))
            .filter(vendors::deleted_at.is_null())
            .count()
            .get_result(conn)
            .await?;
        if found == 0 {
            errors.push(FieldError::new("vendor", "reference", "names no vendor"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Creates the client and returns it with its secret, which is not kept anywhere: this is
/// the only time anyone sees it.
pub async fn register(
    conn: &mut Conn,
    ctx: &WriteContext,
    request: NewClientRequest,
) -> Result<(ApiClient, String), ApiError> {
    request.validate()?;
    check_scope_references(conn, &request).await?;
    let secret = secrets::generate_secret();
    let to_hash = secret.clone();
    // Argon2 is slow by design; keep it off the async workers.
    let secret_hash = tokio::task::spawn_blocking(move || secrets::hash_secret(&to_hash))
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("hashing task failed")))??;
    let client = db::clients::create(
        conn,
        ctx,
        NewClient {
            id: ClientId::new_v7(),
            name: request.name.trim().to_string(),
            role: request.role,
            studies: request.studies,
            sites: request.sites,
            vendor_id: request.vendor,
            secret_hash,
        },
    )
    .await?;
    Ok((client, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(role: Role, studies: usize, sites: usize, vendor: bool) -> NewClientRequest {
        NewClientRequest {
            name: "x".into(),
            role,
            studies: (0..studies).map(|_| StudyId::new_v7()).collect(),
            sites: (0..sites).map(|_| SiteId::new_v7()).collect(),
            vendor: vendor.then(VendorId::new_v7),
        }
    }

    #[test]
    fn scoped_roles_need_their_scope_and_only_it() {
        assert!(request(Role::Cro, 1, 0, false).validate().is_ok());
        assert!(request(Role::Cro, 0, 0, false).validate().is_err());
        assert!(request(Role::Site, 0, 1, false).validate().is_ok());
        assert!(request(Role::Site, 1, 1, false).validate().is_err());
        assert!(request(Role::Vendor, 0, 0, true).validate().is_ok());
        assert!(request(Role::Vendor, 0, 0, false).validate().is_err());
        assert!(request(Role::Admin, 0, 0, false).validate().is_ok());
        assert!(request(Role::Admin, 1, 0, false).validate().is_err());
        assert!(request(Role::Auditor, 0, 0, true).validate().is_err());
    }
}
