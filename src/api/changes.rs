//! `/api/v1/changes`: the change feed, for partner systems that keep their own copy.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::extract;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::changes::ChangePage;
use crate::domain::enums::EntityType;
use crate::domain::policy::{self, Reach};
use crate::error::{ApiError, ApiResult};

/// Query of the change feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The `next_after` of the previous answer; 0 (the default) starts at the beginning.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Changes per answer, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only these entity types, comma-separated (`risk,deviation`); default: every type
    /// the caller may read.
    /// The pattern states the names so that a client can check them before sending; a unit
    /// test keeps it equal to the names of `EntityType`.
    // (Those of `EntityType::FEED`, the kinds the feed records.)
    #[param(
        example = "risk,deviation",
        pattern = "^ *(study|site|vendor|milestone|budget_line|expense|risk|deviation|enrollment_report|client|signing_key) *(, *(study|site|vendor|milestone|budget_line|expense|risk|deviation|enrollment_report|client|signing_key) *)*$"
    )]
    pub entity_type: Option<String>,
}

/// The types asked for, or every type; 400 for a name that is not a type, 403 for one the
/// caller's role never reads (an empty feed would hide the mistake).
fn requested_types(caller: &Caller, asked: Option<&str>) -> ApiResult<Vec<EntityType>> {
    let Some(asked) = asked else {
        return Ok(EntityType::FEED.to_vec());
    };
    let mut types = Vec::new();
    for name in asked.split(',').map(str::trim) {
        let entity = EntityType::of_feed(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "entity_type {name:?} is not one of: {}",
                EntityType::FEED
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<&str>>()
                    .join(", ")
            ))
        })?;
        if policy::reach(caller.role, entity) == Reach::Nothing {
            return Err(ApiError::Forbidden(format!(
                "role {} may not read {name} records",
                caller.role
            )));
        }
        if !types.contains(&entity) {
            types.push(entity);
        }
    }
    Ok(types)
}

/// Follow the change feed
///
/// Every create, update and delete the caller may read, in one order (`seq`). Poll with
/// the last `next_after`: a client that does so never misses a change and never sees one
/// twice, however many writers run at once, because `seq` is assigned in commit order.
/// `data` is the record after the change (null for a delete); `(entity_id, version)` is
/// unique. Every role; each sees the rows its reads reach (contract section 4).
#[utoipa::path(
    operation_id = "list_changes",
    tag = "sync",
    params(ChangesQuery),
    responses((status = 200, description = "The next changes", body = ChangePage)),
)]
#[get("/changes")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ChangesQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest("after must be 0 or more".into()));
    }
    let limit = extract::page_limit(query.limit, 100)?;
    let types = requested_types(&caller, query.entity_type.as_deref())?;
    let mut conn = state.db.get().await?;
    let scope = caller.feed_scope(&mut conn, &types).await?;
    let page: ChangePage = db::changes::page(&mut conn, &scope, after, limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use crate::domain::enums::EntityType;

    #[test]
    fn the_documented_pattern_names_every_feed_type() {
        let names = EntityType::FEED
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .join("|");
        let document: serde_json::Value =
            serde_json::from_str(&crate::api::document::openapi_json()).unwrap_or_default();
        let parameters = &document["paths"]["/api/v1/changes"]["get"]["parameters"];
        let entity_type = parameters
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == "entity_type"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            entity_type["schema"]["pattern"],
            format!("^ *({names}) *(, *({names}) *)*$")
        );
    }
}
