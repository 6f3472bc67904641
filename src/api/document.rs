//! The OpenAPI document: built from the route table (`api::routes`), then completed with
//! what the shared code does for every operation, each by the rule that code follows: the
//! problem answers (their types and titles from `error::ProblemKind`), record and
//! conditional-GET headers, `Idempotency-Key`, merge-patch and batch schemas, the state
//! rules of parameters, and `links` from each create.

use utoipa::openapi::header::Header;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{
    ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::api::{export, extract, headers, routes};
use crate::error::{FieldError, Problem, ProblemKind};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TrialOps API",
        version = "1.0.0",
        description = "The operational backbone of a clinical trial: studies, sites, vendors, milestones, \
budgets, risks, protocol deviations and weekly enrollment.\n\n\
**Getting a token:** press *Authorize*, choose `oauth2` and enter a client id and secret \
(`trialops clients create` prints one). Machine clients POST `grant_type=client_credentials` \
to `/oauth/token` and send the token as `Authorization: Bearer <token>`.\n\n\
**Conventions:** errors are RFC 9457 `application/problem+json`; lists use keyset cursors \
(`limit`, `cursor`, `next_cursor`); `PATCH` is JSON Merge Patch; `GET` answers an `ETag` that \
`PATCH`/`DELETE` accept in `If-Match` and a `GET` in `If-None-Match` (a `304` while it is current; \
records and the computed metrics, curve, forecast, signals and portfolio, each operation saying what its \
validator depends on); `DELETE` is a soft delete; `X-Change-Reason` is kept \
with the audit event; lists answer CSV for BI tools when asked with `Accept: text/csv`; `X-Request-Id` is echoed on every answer.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Tokens and their verification keys"),
        (name = "clients", description = "API clients (admin)"),
        (name = "studies", description = "Clinical studies"),
        (name = "sites", description = "Investigator sites"),
        (name = "enrollment", description = "Weekly enrollment per site"),
        (name = "vendors", description = "CROs, labs and other suppliers (reference data shared by every study)"),
        (name = "milestones", description = "Study milestones and vendor deliverables, with slippage and overdue state"),
        (name = "risks", description = "The risk register: likelihood x impact x detectability, escalated at the study's threshold"),
        (name = "deviations", description = "Protocol deviations: regulated records, never deleted (`invalidated` withdraws one)"),
        (name = "budget-lines", description = "Budget lines: planned, committed, actual and remaining amounts"),
        (name = "expenses", description = "Expenses booked against budget lines"),
        (name = "standards", description = "Exchange standards: a study as HL7 FHIR R5, its deviations as CDISC SDTM DV (Dataset-JSON 1.1), the import of a ClinicalTrials.gov record (mappings in docs/standards.md)"),
        (name = "metrics", description = "Dashboards and BI: a study's figures, its enrollment curve, the portfolio (definitions in docs/metrics.md)"),
        (name = "audit", description = "The append-only, hash-chained audit trail"),
        (name = "sync", description = "The change feed and webhooks, for partner systems that keep their own copy"),
        (name = "operations", description = "Health and readiness"),
    ),
    // EntityType is only named by a query parameter, which does not register its schema.
    components(schemas(Problem, FieldError, crate::domain::enums::EntityType)),
    modifiers(&SecuritySchemes),
    servers((url = "/", description = "This TrialOps instance (the document is served by the API it describes)")),
    security(("bearer" = []), ("oauth2" = [])),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/oauth/token",
                    Scopes::new(),
                ))],
                "OAuth 2.0 client credentials: enter a client id and secret.",
            )),
        );
    }
}

/// The error answers shared by every `/api/v1` operation, documented once as reusable
/// responses and attached by method, so the document says what the shared code does:
/// (kind, response name, when). Each kind's status, type and title are the ones its
/// answers carry (`error::ProblemKind`).
const PROBLEMS: &[(ProblemKind, &str, &str)] = &[
    (
        ProblemKind::BAD_REQUEST,
        "BadRequest",
        "Malformed JSON, a body that is not a JSON object, or an unknown or bad query parameter or cursor",
    ),
    (
        ProblemKind::UNAUTHORIZED,
        "Unauthorized",
        "No token, or an invalid, expired or revoked one",
    ),
    (
        ProblemKind::FORBIDDEN,
        "Forbidden",
        "The caller's role may not do this",
    ),
    (
        ProblemKind::NOT_FOUND,
        "NotFound",
        "No such object, or it is outside the caller's scope",
    ),
    (
        ProblemKind::CONFLICT,
        "Conflict",
        "Unique conflict, or a parent that still has live children",
    ),
    (
        ProblemKind::PRECONDITION_FAILED,
        "PreconditionFailed",
        "If-Match does not name the current version",
    ),
    (
        ProblemKind::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        "Body over 1 MiB",
    ),
    (
        ProblemKind::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "Body is not JSON",
    ),
    (
        ProblemKind::VALIDATION_FAILED,
        "ValidationFailed",
        "Invalid field values; `errors` names each field",
    ),
    (
        ProblemKind::RATE_LIMITED,
        "TooManyRequests",
        "The client's requests per minute are used up (or, at `/oauth/token`, too many wrong secrets from this address or for this client); retry after `Retry-After` seconds",
    ),
    (
        ProblemKind::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "Database unreachable; retry after `Retry-After` seconds",
    ),
];

/// An example body for one kind of problem.
fn problem_example(kind: ProblemKind, detail: &str) -> serde_json::Value {
    let mut example = serde_json::json!({
        "type": kind.type_uri(),
        "title": kind.title,
        "status": kind.status.as_u16(),
        "detail": detail,
        "request_id": "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
    });
    if kind == ProblemKind::VALIDATION_FAILED {
        example["detail"] = "1 field is invalid".into();
        example["errors"] = serde_json::json!([{"field": "target_enrollment", "code": "range", "message": "must be 0 or more"}]);
    }
    example
}

fn problems_for(method: &str, has_id: bool) -> Vec<&'static str> {
    let mut codes = vec!["400", "401", "403", "429", "503"];
    if has_id {
        codes.push("404");
    }
    match method {
        "post" => codes.extend(["404", "409", "413", "415", "422"]),
        "patch" => codes.extend(["409", "412", "413", "415", "422"]),
        "delete" => codes.extend(["409", "412"]),
        "put" => codes.extend(["404", "409", "412", "413", "415", "422"]),
        _ => {}
    }
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Whether answers under `path` carry the record's version as their `ETag` (what
/// `api::respond` sets): every `/api/v1` record, but not clients and webhooks (they may
/// carry secrets: `no-store`, no validator) nor the ClinicalTrials.gov import (it answers
/// what it did, not a record).
fn record_etag(path: &str) -> bool {
    path.starts_with("/api/v1/")
        && !headers::carries_secrets(path)
        && path != extract::CTGOV_IMPORT_PATH
}

fn string_header(description: &str) -> Header {
    let mut header = Header::new(Object::with_type(Type::String));
    header.description = Some(description.into());
    header
}

/// The headers `api::respond` sets: `ETag` on every single-record answer (reads, creates,
/// updates), `Location` on creates. Documented here, by the same rule, for every resource.
fn add_record_headers(openapi: &mut OpenApiDoc) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let single_record = [
            (item.get.as_mut(), &["200"][..], path.ends_with('}')),
            (item.patch.as_mut(), &["200"][..], true),
            (item.post.as_mut(), &["201"][..], true),
            (item.put.as_mut(), &["200", "201"][..], true),
        ];
        for (operation, codes, applies) in single_record {
            let Some(operation) = operation else { continue };
            if !applies || path.starts_with("/api/v1/clients") {
                continue;
            }
            for code in codes {
                let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*code) else {
                    continue;
                };
                if record_etag(path) {
                    let etag = string_header(
                        "The record's version, quoted (`\"3\"`); send it back in `If-Match`",
                    );
                    response.headers.insert("ETag".into(), RefOr::T(etag));
                }
                if *code == "201" {
                    let location = string_header("The new record's URL");
                    response
                        .headers
                        .insert("Location".into(), RefOr::T(location));
                }
            }
        }
    }
}

/// The computed answers whose `ETag` is a `conditional::Validator`, computed before the
/// figures are. The other GETs that answer a validator (and so a 304) are record reads.
pub const COMPUTED_ANSWERS: &[&str] = &[
    "/api/v1/studies/{id}/metrics",
    "/api/v1/studies/{id}/enrollment-curve",
    "/api/v1/studies/{id}/enrollment-forecast",
    "/api/v1/studies/{id}/signals",
    "/api/v1/metrics/portfolio",
];

/// What a GET's validator is made of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validated {
    /// A record's version.
    Version,
    /// A `conditional::Validator` over the data a computed answer reads.
    Computed,
}

/// The validator a GET of `path` answers, if any: exactly the GETs that can answer 304
/// (`headers::answer_headers` answers one for any GET whose `ETag` `If-None-Match` names).
fn validated(path: &str) -> Option<Validated> {
    if COMPUTED_ANSWERS.contains(&path) {
        Some(Validated::Computed)
    } else if record_etag(path) && path.ends_with('}') {
        Some(Validated::Version)
    } else {
        None
    }
}

const VERSION_RULE: &str = "The `ETag` of a record is its `version`, quoted (`\"3\"`): it changes \
with every write to the record and with nothing else. A compressed answer (`Accept-Encoding`) \
carries it weak (`W/\"3\"`), since its bytes differ from the identity answer's.";

const COMPUTED_RULE: &str = "The `ETag` of a computed answer is weak (`W/\"<hash>\"`: the figures, \
not the bytes, are the same, whatever the `Content-Encoding`) and is known before any figure is \
computed. It hashes: the change count of every row the answer reads (the study, its sites, \
milestones, budget lines, expenses, risks, deviations and enrollment weeks, and the vendors), \
which any write changes the moment it commits; today's date (UTC), since figures move at \
midnight without a write; the path and the query string (`as_of`, the prior); the negotiated \
media type (`Accept`: JSON, CSV, SVG); and, for the portfolio, the studies the caller may read.";

const COMPARISON: &str = "`If-None-Match` is compared weakly (RFC 9110 13.1.2): `\"3\"`, \
`W/\"3\"`, a list, or `*`. A match answers `304 Not Modified` with the `ETag`, \
`Cache-Control` and `Vary` headers and no body.";

/// Conditional GET (`If-None-Match`, `304`, `ETag`, `Cache-Control`, `Vary`), documented
/// once for every GET that answers a validator, by the rule its validator follows.
fn add_conditional_get(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    const CACHE_CONTROL: &str = "`private, no-cache`: a browser may keep the answer, and \
revalidates it (`If-None-Match`) before each use";
    const VARY: &str = "`Authorization, Accept, Accept-Encoding, Origin`";
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, rule) in [
        ("NotModifiedRecord", VERSION_RULE),
        ("NotModifiedComputed", COMPUTED_RULE),
    ] {
        let response = ResponseBuilder::new()
            .description(format!(
                "Not Modified: `If-None-Match` names the current `ETag`. {rule} {COMPARISON}"
            ))
            .header("ETag", string_header("The current validator"))
            .header("Cache-Control", string_header(CACHE_CONTROL))
            .header("Vary", string_header(VARY))
            .build();
        components
            .responses
            .insert(name.to_string(), RefOr::T(response));
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let Some(kind) = validated(path) else {
            continue;
        };
        let Some(get) = item.get.as_mut() else {
            continue;
        };
        let (rule, etag, not_modified) = match kind {
            Validated::Version => (
                VERSION_RULE,
                "The record's version, quoted (`\"3\"`; weak, `W/\"3\"`, when compressed): send it \
                 in `If-Match` to write, or in `If-None-Match` to revalidate",
                "NotModifiedRecord",
            ),
            Validated::Computed => (
                COMPUTED_RULE,
                "A weak validator of the figures (`W/\"<hash>\"`): send it in `If-None-Match` \
                 to get a 304, without the figures being computed, while nothing they depend on changed",
                "NotModifiedComputed",
            ),
        };
        let parameter = ParameterBuilder::new()
            .name("If-None-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(format!(
                "The `ETag` of an answer you hold: a 304 while it is still current. {rule} {COMPARISON}"
            )))
            .schema(Some(Object::with_type(Type::String)))
            .build();
        get.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter));
        if let Some(RefOr::T(ok)) = get.responses.responses.get_mut("200") {
            ok.headers
                .insert("ETag".into(), RefOr::T(string_header(etag)));
            ok.headers.insert(
                "Cache-Control".into(),
                RefOr::T(string_header(CACHE_CONTROL)),
            );
            ok.headers
                .insert("Vary".into(), RefOr::T(string_header(VARY)));
        }
        get.responses.responses.insert(
            "304".into(),
            RefOr::Ref(Ref::new(format!("#/components/responses/{not_modified}"))),
        );
    }
}

/// Every POST honours `Idempotency-Key` (the `api::idempotency` middleware): documented
/// here for all of them by the same rule.
fn add_idempotency_key(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    for (path, item) in openapi.paths.paths.iter_mut() {
        let Some(operation) = item.post.as_mut().filter(|_| path.starts_with("/api/v1/")) else {
            continue;
        };
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Up to 255 characters, kept 24 h per client. The same key with the same request replays \
                 the first answer (with `Idempotent-Replayed: true`); with another request it is a 422; \
                 while the first is still running, a 409.",
            ))
            .schema(Some(Object::with_type(Type::String)))
            .build();
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter));
    }
}

fn add_problem_responses(openapi: &mut OpenApiDoc) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for (kind, name, description) in PROBLEMS {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(Some(problem_example(*kind, description)))
            .build();
        let response = ResponseBuilder::new()
            .description(*description)
            .content("application/problem+json", content)
            .build();
        components
            .responses
            .insert((*name).to_string(), RefOr::T(response));
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let has_id = path.contains('{');
        let operations = [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("patch", item.patch.as_mut()),
            ("delete", item.delete.as_mut()),
            ("put", item.put.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            for code in problems_for(method, has_id) {
                let Some((_, name, _)) = PROBLEMS
                    .iter()
                    .find(|(kind, ..)| kind.status.as_str() == code)
                else {
                    continue;
                };
                operation
                    .responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| {
                        RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                    });
            }
        }
    }
}

/// A PATCH body is a merge patch of the create body: the same fields, none required. Each
/// `X` schema used by a PATCH gets an `XPatch` twin without `required`, so Swagger UI and
/// generated clients do not demand every field.
fn add_merge_patch_schemas(openapi: &mut OpenApiDoc) {
    let mut twins = Vec::new();
    for item in openapi.paths.paths.values_mut() {
        let Some(RefOr::T(body)) = item.patch.as_mut().and_then(|op| op.request_body.as_mut())
        else {
            continue;
        };
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            let Some(RefOr::Ref(reference)) = content.schema.as_ref() else {
                continue;
            };
            let Some(name) = reference
                .ref_location
                .strip_prefix("#/components/schemas/")
                .map(str::to_string)
            else {
                continue;
            };
            let twin = format!("{name}Patch");
            content.schema = Some(RefOr::Ref(Ref::from_schema_name(&twin)));
            twins.push((name, twin));
        }
    }
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, twin) in twins {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(&name) {
            let mut object = object.clone();
            object.required.clear();
            object.description = Some(format!(
                "A JSON Merge Patch (RFC 7396) of {name}: absent fields stay as they are, `null` clears a nullable field."
            ));
            object.example = None;
            components
                .schemas
                .insert(twin, RefOr::T(Schema::Object(object)));
        }
    }
}

/// A batch item is the resource's create body with `external_id` required: each
/// `BatchRequest_X` (whose items utoipa inlines) gets items of `X` plus that requirement.
/// A batch answers 422 on an item's reference, never 404, so that response goes.
fn refine_batch_schemas(openapi: &mut OpenApiDoc) {
    use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder};
    for (path, item) in openapi.paths.paths.iter_mut() {
        if let Some(post) = item.post.as_mut().filter(|_| path.ends_with("/batch")) {
            post.responses.responses.remove("404");
        }
    }
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for (name, schema) in components.schemas.iter_mut() {
        let Some(fields) = name.strip_prefix("BatchRequest_") else {
            continue;
        };
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        let item = AllOfBuilder::new()
            .item(Ref::from_schema_name(fields))
            .item(ObjectBuilder::new().required("external_id"));
        let items = ArrayBuilder::new()
            .items(item)
            .min_items(Some(1))
            .max_items(Some(extract::BATCH_MAX_ITEMS))
            .description(Some(
                "1 to 1,000 items, each a full create body with a distinct `external_id`",
            ))
            .build();
        object
            .properties
            .insert("items".into(), RefOr::T(items.into()));
    }
}

/// The OpenAPI document the server serves, built from the same route table.
pub fn openapi() -> OpenApiDoc {
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    add_problem_responses(&mut api);
    add_record_headers(&mut api);
    add_conditional_get(&mut api);
    add_idempotency_key(&mut api);
    add_merge_patch_schemas(&mut api);
    refine_batch_schemas(&mut api);
    export::document_csv(&mut api);
    state_rules_and_links(api)
}

/// What the shared code enforces on every operation, stated in the document by the same
/// rules: `X-Change-Reason` (up to 500 characters; required and not blank where
/// `ChangeReason::required` is called) on every write, `Idempotency-Key` (1 to 255
/// characters), dates in queries and paths within 1900..=2999, and `links` from each
/// create to the reads and writes of what it created, so a client (or a stateful test)
/// can chain them.
fn state_rules_and_links(api: OpenApiDoc) -> OpenApiDoc {
    use crate::domain::validation::{DATE_PATTERN, NOT_BLANK_PATTERN};
    const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";
    use serde_json::{Value, json};
    let Ok(mut doc) = serde_json::to_value(&api) else {
        return api;
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return api;
    };
    let operation_ids: std::collections::HashMap<(String, String), String> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter_map(move |(method, op)| {
                    let id = op.get("operationId")?.as_str()?.to_string();
                    Some(((path.clone(), method.clone()), id))
                })
        })
        .collect();
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            // Every operation but the token endpoint refuses unknown query parameters
            // (`api::strict_query`): a 400 it may answer.
            if path != "/oauth/token"
                && let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut)
            {
                responses
                    .entry("400")
                    .or_insert_with(|| json!({"$ref": "#/components/responses/BadRequest"}));
            }
            let write = matches!(method.as_str(), "post" | "patch" | "put" | "delete");
            // Checking checkpoints writes nothing, so it takes no reason.
            let takes_reason = op["operationId"] != "verify_audit_events_against_checkpoints";
            let states_reason = write && takes_reason && path.starts_with("/api/v1/");
            // A reason over 500 characters is a 422 on every write that takes one (a
            // delete included, which has no body to be invalid otherwise).
            if states_reason
                && let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut)
            {
                responses
                    .entry("422")
                    .or_insert_with(|| json!({"$ref": "#/components/responses/ValidationFailed"}));
            }
            let parameters = op
                .as_object_mut()
                .map(|op| op.entry("parameters").or_insert_with(|| json!([])));
            let Some(Value::Array(parameters)) = parameters else {
                continue;
            };
            if states_reason {
                let declared = parameters
                    .iter()
                    .any(|p| p["name"] == "X-Change-Reason" && p["in"] == "header");
                if !declared {
                    parameters.push(json!({
                        "name": "X-Change-Reason",
                        "in": "header",
                        "required": false,
                        "description": "Why the change is made, kept with its audit event (up to 500 characters)",
                        "schema": {"type": "string"},
                    }));
                }
            }
            for parameter in parameters.iter_mut() {
                let name = parameter["name"].as_str().unwrap_or_default().to_string();
                let required = parameter["required"] == true;
                let in_query = parameter["in"] == "query";
                let schema = &mut parameter["schema"];
                match name.as_str() {
                    "X-Change-Reason" => {
                        schema["maxLength"] = json!(500);
                        if required {
                            schema["minLength"] = json!(1);
                            schema["pattern"] = json!(NOT_BLANK_PATTERN);
                        }
                    }
                    "Idempotency-Key" => {
                        schema["minLength"] = json!(1);
                        schema["maxLength"] = json!(255);
                    }
                    "week_start" => {
                        schema["format"] = json!("date");
                        schema["pattern"] = json!(DATE_PATTERN);
                    }
                    _ if schema["format"] == "date" => schema["pattern"] = json!(DATE_PATTERN),
                    // `strict_query` refuses U+0000 in any query value (PostgreSQL text
                    // cannot hold it); a pattern is how the document says so.
                    _ if in_query
                        && schema["type"] == "string"
                        && schema.get("pattern").is_none()
                        && schema.get("enum").is_none() =>
                    {
                        schema["pattern"] = json!(NO_NUL_PATTERN)
                    }
                    _ => {}
                }
            }
            if parameters.is_empty()
                && let Some(op) = op.as_object_mut()
            {
                op.remove("parameters");
            }
        }
        // A create links to what can be done with the record it made.
        let Some(created) = item
            .get_mut("post")
            .and_then(|op| op.pointer_mut("/responses/201"))
        else {
            continue;
        };
        let record = format!("{path}/{{id}}");
        let mut links = serde_json::Map::new();
        for (method, verb) in [("get", "Read"), ("patch", "Update"), ("delete", "Delete")] {
            if let Some(id) = operation_ids.get(&(record.clone(), method.to_string())) {
                links.insert(
                    format!("{verb}Created"),
                    json!({
                        "operationId": id,
                        "parameters": {"id": "$response.body#/id"},
                        "description": format!("{verb} the record this call created"),
                    }),
                );
            }
        }
        for sub in [
            "metrics",
            "enrollment-curve",
            "enrollment-forecast",
            "signals",
            "fhir",
            "sdtm/dv",
            "deliveries",
        ] {
            if let Some(id) = operation_ids.get(&(format!("{record}/{sub}"), "get".to_string())) {
                links.insert(
                    format!(
                        "Read{}",
                        id.trim_start_matches("read_").trim_start_matches("list_")
                    ),
                    json!({"operationId": id, "parameters": {"id": "$response.body#/id"}}),
                );
            }
        }
        if !links.is_empty()
            && let Some(created) = created.as_object_mut()
        {
            created.insert("links".into(), Value::Object(links));
        }
    }
    // utoipa drops the `null` of a generic `Option<T>` field: the quantiles of a forecast
    // are null when there is no forecast.
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (_, schema) in schemas
            .iter_mut()
            .filter(|(name, _)| name.starts_with("Quantiles_"))
        {
            for property in schema
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|properties| properties.values_mut())
            {
                if let Some(kind) = property
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                {
                    property["type"] = json!([kind, "null"]);
                }
            }
        }
    }
    serde_json::from_value(doc).unwrap_or(api)
}

/// The document as committed in `openapi/openapi.json` (pretty, with a final newline).
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn patch_bodies_use_schemas_without_required_fields() {
        let api = super::openapi();
        let schemas = &api.components.as_ref().unwrap().schemas;
        for name in [
            "StudyFieldsPatch",
            "SiteFieldsPatch",
            "RiskFieldsPatch",
            "DeviationFieldsPatch",
            "BudgetLineFieldsPatch",
            "ExpenseFieldsPatch",
        ] {
            match schemas.get(name) {
                Some(super::RefOr::T(super::Schema::Object(object))) => {
                    assert!(object.required.is_empty(), "{name}")
                }
                _ => panic!("{name} missing"),
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }
}
