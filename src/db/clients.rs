//! API clients: rows and queries. The secret hash never leaves this module except to the
//! token endpoint's check.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Subject, WriteContext};
use crate::db::schema::api_clients;
use crate::db::{Conn, keyset_page};
use crate::domain::cursor::{Page, PageRequest};
use crate::domain::enums::{AuditAction, EntityType, Role};
use crate::domain::ids::{ClientId, SiteId, StudyId, VendorId};
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: String,
    pub role: Role,
    pub studies: Vec<StudyId>,
    pub sites: Vec<SiteId>,
    pub vendor_id: Option<VendorId>,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub version: i32,
}

/// An API client as lists and reads show it: never its secret or the secret's hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0e6-1111-7aaa-8bbb-123456789abc", "name": "Acme CRO sync", "role": "cro",
    "studies": ["0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"], "sites": [], "vendor": null,
    "created_at": "2026-02-01T09:00:00Z", "updated_at": "2026-02-01T09:00:00Z", "revoked_at": null, "version": 1
}))]
pub struct ApiClient {
    /// The OAuth `client_id`.
    pub id: ClientId,
    #[schema(example = "Acme CRO sync")]
    pub name: String,
    pub role: Role,
    /// Studies a `cro` client may work on.
    pub studies: Vec<StudyId>,
    /// Sites a `site` client reports for.
    pub sites: Vec<SiteId>,
    /// The vendor a `vendor` client speaks for.
    pub vendor: Option<VendorId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set once the client is revoked; a revoked client gets no tokens and its tokens stop
    /// working.
    pub revoked_at: Option<DateTime<Utc>>,
    pub version: i32,
}

impl From<ClientRow> for ApiClient {
    fn from(row: ClientRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            role: row.role,
            studies: row.studies,
            sites: row.sites,
            vendor: row.vendor_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revoked_at: row.revoked_at,
            version: row.version,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_clients, treat_none_as_default_value = false)]
pub struct NewClient {
    pub id: ClientId,
    pub name: String,
    pub role: Role,
    pub studies: Vec<StudyId>,
    pub sites: Vec<SiteId>,
    pub vendor_id: Option<VendorId>,
    pub secret_hash: String,
}

pub async fn find(conn: &mut Conn, id: ClientId) -> QueryResult<Option<ClientRow>> {
    api_clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The name of the client with this id, if it exists and is not revoked.
pub async fn live_name(conn: &mut Conn, id: ClientId) -> QueryResult<Option<String>> {
    api_clients::table
        .find(id)
        .filter(api_clients::revoked_at.is_null())
        .select(api_clients::name)
        .first(conn)
        .await
        .optional()
}

pub async fn count_active_admins(conn: &mut Conn) -> QueryResult<i64> {
    api_clients::table
        .filter(api_clients::role.eq(Role::Admin))
        .filter(api_clients::revoked_at.is_null())
        .count()
        .get_result(conn)
        .await
}

pub async fn list(conn: &mut Conn, page: &PageRequest) -> QueryResult<Page<ApiClient>> {
    let query = api_clients::table
        .select(ClientRow::as_select())
        .into_boxed();
    let rows = keyset_page!(query, api_clients, revoked_at, page)
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, |row| row.id).map(ApiClient::from))
}

fn subject(client: &ApiClient) -> Subject {
    Subject {
        entity_type: EntityType::Client,
        entity_id: client.id.into(),
        study_id: None,
        version: Some(client.version),
    }
}

/// Inserts a client and its audit event in one transaction.
pub async fn create(
    conn: &mut Conn,
    ctx: &WriteContext,
    new: NewClient,
) -> Result<ApiClient, ApiError> {
    conn.transaction::<_, ApiError, _>(async |conn| {
        let row = diesel::insert_into(api_clients::table)
            .values(&new)
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await?;
        let client = ApiClient::from(row);
        audit::record(
            conn,
            ctx,
            AuditAction::Create,
            subject(&client),
            None,
            Some(&client),
        )
        .await?;
        Ok(client)
    })
    .await
}

/// Revokes a live client (its audit action is `revoke`). Revoking twice is a 404: the
/// client is no longer there to revoke.
pub async fn revoke(
    conn: &mut Conn,
    ctx: &WriteContext,
    id: ClientId,
) -> Result<ApiClient, ApiError> {
    conn.transaction::<_, ApiError, _>(async |conn| {
        let before = api_clients::table
            .find(id)
            .filter(api_clients::revoked_at.is_null())
            .select(ClientRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(ApiError::NotFound)?;
        let after = diesel::update(api_clients::table.find(id))
            .set((
                api_clients::revoked_at.eq(diesel::dsl::now),
                api_clients::updated_at.eq(diesel::dsl::now),
                api_clients::version.eq(api_clients::version + 1),
            ))
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await?;
        let (before, after) = (ApiClient::from(before), ApiClient::from(after));
        audit::record(
            conn,
            ctx,
            AuditAction::Revoke,
            subject(&after),
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(after)
    })
    .await
}
