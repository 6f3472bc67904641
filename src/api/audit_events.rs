//! `/api/v1/audit-events`: the audit trail, the check of its hash chain, and signed
//! checkpoints of its head (`auth::checkpoints`).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use crate::api::export::{self, Format};
use crate::api::extract::{self, Body};
use crate::app::AppState;
use crate::auth::{Caller, checkpoints};
use crate::db;
use crate::db::audit_events::{AuditEvent, AuditFilter, ChainCheck};
use crate::domain::cursor::Page;
use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::StudyId;
use crate::domain::validation;
use crate::error::{ApiError, ApiResult};

/// Query of the audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events per page, 1..=1000 (default 50). For CSV (`Accept: text/csv`): the most
    /// events the export sends; without it, every matching event.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<Uuid>,
    pub study_id: Option<StudyId>,
    /// The writer's client id (or `cli`).
    pub actor: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
}

/// List audit events
///
/// The append-only audit trail, oldest first: who (client id, name, role), when, what
/// (action, entity, each changed field's old and new value), why (`X-Change-Reason`), the
/// request id, and the hash chain (`prev_hash`, `hash`). `admin`, `sponsor` and `auditor`.
///
/// An event gets its `seq` and hash when it is sealed, within milliseconds of its commit;
/// this read seals every committed event first, so it lists them all.
#[utoipa::path(
    operation_id = "list_audit_events",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of events", body = Page<AuditEvent>)),
)]
#[get("/audit-events")]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    format: Format,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    caller.require_read(EntityType::AuditEvent)?;
    let query = query.into_inner();
    let page = extract::seq_page(query.limit, query.cursor.as_deref())?;
    if let Some(since) = query.since {
        validation::date_param("since", Some(since.date_naive()))?;
    }
    let filter = AuditFilter {
        entity_type: query.entity_type.map(|t| t.to_string()),
        entity_id: query.entity_id,
        study_id: query.study_id,
        actor: query.actor,
        since: query.since,
    };
    // The trail lists sealed events; seal what is committed so the answer includes it.
    db::seals::seal_committed(&mut *state.db.get().await?).await?;
    export::list(
        format,
        &state.db,
        query.limit,
        page,
        async move |conn, page| {
            let events = db::audit_events::list(conn, &filter, page.after, page.limit).await?;
            Ok(Page::from_seq_overfetch(events, page.limit, |event| {
                event.seq
            }))
        },
    )
    .await
}

/// Verify the audit trail
///
/// Seals every event committed so far, then recomputes the hash of every event and checks
/// each link to its predecessor, oldest first, and that the chain's head is the last
/// event. An event edited or removed behind the service's back breaks the chain:
/// `first_broken_seq` names where. `admin` and `auditor`.
#[utoipa::path(
    operation_id = "verify_audit_events",
    tag = "audit",
    responses((status = 200, description = "The result of the check", body = ChainCheck)),
)]
#[get("/audit-events/verify")]
pub async fn verify(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    require_verifier(&caller, "verify the audit trail")?;
    let mut conn = state.db.get().await?;
    db::seals::seal_committed(&mut conn).await?;
    Ok(HttpResponse::Ok().json(db::audit_events::verify(&mut conn).await?))
}

/// Verifying the trail and signing checkpoints: `admin` and `auditor`.
fn require_verifier(caller: &Caller, what: &str) -> ApiResult<()> {
    if matches!(caller.role, Role::Admin | Role::Auditor) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "role {} may not {what}",
            caller.role
        )))
    }
}

/// The trail's head, signed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"checkpoint": "eyJ0eXAiOiJ0cmlhbG9wcy1jaGVja3BvaW50K2p3dCIsImFsZyI6IkVkRFNBIiwia2lkIjoiM2YxYzBhOWI3ZDJlNGY2YThiMGMxZDJlIn0.eyJzZXEiOjQyLCJoYXNoIjoiN2EzOS4uLiIsImlhdCI6MTc2NDU4MDAwMH0.c2lnbmF0dXJl"}))]
pub struct Checkpoint {
    /// A compact JWS (EdDSA): header `typ: trialops-checkpoint+jwt` and `kid`; claims
    /// `seq`, `hash` and `iat` (no `aud`: it never passes as an access token).
    pub checkpoint: String,
}

/// Sign a checkpoint of the audit trail
///
/// Seals every event committed so far and answers the chain's head (`seq` and `hash` of
/// the last event) as a compact JWS signed with the service's signing key. Keep it outside
/// the database: any JWS library verifies it against `/.well-known/jwks.json` (a key that
/// ever signed a checkpoint stays published), and `POST /api/v1/audit-events/verify` tells
/// whether today's trail still extends it, which a database owner who rewrote the chain
/// cannot fake. `admin` and `auditor`.
#[utoipa::path(
    operation_id = "audit_checkpoint",
    tag = "audit",
    responses((status = 200, description = "The signed head of the trail", body = Checkpoint)),
)]
#[get("/audit-events/checkpoint")]
pub async fn checkpoint(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    require_verifier(&caller, "sign audit checkpoints")?;
    let mut conn = state.db.get().await?;
    db::seals::seal_committed(&mut conn).await?;
    let (seq, hash) = db::audit_events::head(&mut conn).await?;
    let keys = state.tokens.keys();
    let (jws, kid) = checkpoints::sign(&keys, seq, &hash)
        .map_err(|e| ApiError::Internal(e.context("signing a checkpoint")))?;
    // Recorded before the checkpoint leaves: its key then stays published forever.
    if !keys.signed_checkpoint(&kid) {
        db::keys::mark_checkpoint_signer(&mut conn, &kid).await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Checkpoint { checkpoint: jws }))
}

/// Checkpoints kept by an auditor, to check the trail against.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"checkpoints": ["eyJ0eXAiOiJ0cmlhbG9wcy1jaGVja3BvaW50K2p3dCIsImFsZyI6IkVkRFNBIiwia2lkIjoiM2YxYzBhOWI3ZDJlNGY2YThiMGMxZDJlIn0.eyJzZXEiOjQyLCJoYXNoIjoiN2EzOS4uLiIsImlhdCI6MTc2NDU4MDAwMH0.c2lnbmF0dXJl"]}))]
pub struct VerifyRequest {
    /// Compact JWS checkpoints from `GET /api/v1/audit-events/checkpoint`, at most 1000.
    #[validate(length(max = 1000))]
    #[schema(max_items = 1000)]
    pub checkpoints: Vec<String>,
}

/// One checkpoint's check.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointCheck {
    /// Its position in the request.
    pub index: usize,
    /// Whether its signature holds under a published key.
    pub signature_valid: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub kid: Option<String>,
    pub seq: Option<i64>,
    pub hash: Option<String>,
    /// Whether the current trail still extends it: the event at `seq` still has `hash`
    /// (and the chain from the start through the head holds).
    pub extended: bool,
}

/// The chain's check, and each checkpoint's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"valid": false, "events_checked": 1200, "first_broken_seq": null,
    "checkpoints": [{"index": 0, "signature_valid": true, "kid": "3f1c0a9b7d2e4f6a8b0c1d2e", "seq": 42, "hash": "7a39e5250f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4", "extended": false}],
    "first_not_extended": 0}))]
pub struct CheckpointVerification {
    /// The chain holds and extends every checkpoint.
    pub valid: bool,
    pub events_checked: i64,
    /// The first event whose hash, or link to its predecessor, does not hold.
    pub first_broken_seq: Option<i64>,
    pub checkpoints: Vec<CheckpointCheck>,
    /// The index of the first checkpoint (in request order) the trail no longer extends,
    /// or whose signature does not hold.
    pub first_not_extended: Option<usize>,
}

/// Verify the audit trail against checkpoints
///
/// Everything `GET /api/v1/audit-events/verify` checks, and for each checkpoint: its
/// signature, and whether the current trail still extends it (the event at its `seq`
/// still has its `hash`). A database owner can rewrite the chain from some event on and
/// recompute every hash so that the plain check passes; a checkpoint signed before the
/// rewrite catches it, and `first_not_extended` names the first such checkpoint. `admin`
/// and `auditor`.
#[utoipa::path(
    operation_id = "verify_audit_events_against_checkpoints",
    tag = "audit",
    request_body = VerifyRequest,
    responses((status = 200, description = "The result of the check", body = CheckpointVerification)),
)]
#[post("/audit-events/verify")]
pub async fn verify_checkpoints(
    caller: Caller,
    state: web::Data<AppState>,
    body: Body<VerifyRequest>,
) -> ApiResult<HttpResponse> {
    require_verifier(&caller, "verify the audit trail")?;
    let mut conn = state.db.get().await?;
    db::seals::seal_committed(&mut conn).await?;
    let chain = db::audit_events::verify(&mut conn).await?;
    let keys = state.tokens.keys();
    let mut checks = Vec::with_capacity(body.0.checkpoints.len());
    for (index, jws) in body.0.checkpoints.iter().enumerate() {
        let check = match checkpoints::verify(&keys, jws.trim()) {
            Err(problem) => CheckpointCheck {
                index,
                signature_valid: false,
                problem: Some(problem.into()),
                kid: None,
                seq: None,
                hash: None,
                extended: false,
            },
            Ok((kid, claims)) => {
                let now = db::audit_events::hash_at(&mut conn, claims.seq).await?;
                CheckpointCheck {
                    index,
                    signature_valid: true,
                    problem: None,
                    kid: Some(kid),
                    extended: chain.valid && now.as_deref() == Some(claims.hash.as_str()),
                    seq: Some(claims.seq),
                    hash: Some(claims.hash),
                }
            }
        };
        checks.push(check);
    }
    let first_not_extended = checks.iter().position(|check| !check.extended);
    Ok(HttpResponse::Ok().json(CheckpointVerification {
        valid: chain.valid && first_not_extended.is_none(),
        events_checked: chain.events_checked,
        first_broken_seq: chain.first_broken_seq,
        checkpoints: checks,
        first_not_extended,
    }))
}
