//! The experiment service over HTTP: registry (`/v1/experiments`),
//! assignment, and results with a decision.
//!
//! | route | roles |
//! |---|---|
//! | `GET /v1/experiments`, `GET /v1/experiments/{key}`, `GET .../history` | admin, operations, supervisor, analyst, service |
//! | `POST /v1/experiments`, `PUT`/`PATCH /v1/experiments/{key}`, `POST .../start`, `.../stop`, `.../archive` | admin, operations |
//! | `GET .../assignment?unit=`, `POST .../assignments` | admin, service |
//! | `GET .../results` | admin, supervisor, analyst, operations |
//!
//! Results take `from` / `to` (the window of first exposures; by default
//! the experiment's start to its stop or now; `YYYY-MM-DD` in the tenant's
//! reporting time zone or an RFC 3339 instant), `all_metrics=true` and
//! `winsorize_percentile` (default 99). The answer names its `window` and
//! the CUPED `pre_period` (the window of equal length before it).
//!
//! A key of one tenant works on that tenant's experiments; a platform-wide
//! key (`--tenant '*'`) names the tenant with `?tenant=`.
//!
//! Assignment is stateless: `experiments::assign_variant(seed, unit, weights)`
//! after targeting, the layer bucket and the traffic gate, in that order
//! (all `cxlake-assign-v1`, see `experiments::assignment`). Only the
//! registry lookup is stored state.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::problem::Problem;
use crate::state::AppState;
use services::experiment::store::{
    Action, Experiment, ExperimentDefinition, State as ExpState, StoreError, UnitAttributes, VariantDefinition,
    merge_patch, timestamp,
};
use services::keys::{Principal, Role, TenantScope, require_role};
use services::served::experiments::{self as served, ResultsQuery, flag};
use services::tenant::TenantId;

/// Most units in one batch assignment request.
pub const MAX_BATCH_UNITS: usize = 10_000;

const MANAGE: &[Role] = &[Role::Admin, Role::Operations];
const READ: &[Role] = &[
    Role::Admin,
    Role::Operations,
    Role::Supervisor,
    Role::Analyst,
    Role::Service,
];
const ASSIGN: &[Role] = &[Role::Admin, Role::Service];
const RESULTS: &[Role] = served::READERS;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/experiments", get(list).post(create))
        .route("/v1/experiments/{key}", get(get_one).put(put).patch(patch))
        .route("/v1/experiments/{key}/history", get(history))
        .route("/v1/experiments/{key}/start", post(start))
        .route("/v1/experiments/{key}/stop", post(stop))
        .route("/v1/experiments/{key}/archive", post(archive))
        .route("/v1/experiments/{key}/assignment", get(assignment))
        .route("/v1/experiments/{key}/assignments", post(assignments))
        .route("/v1/experiments/{key}/results", get(results))
}

type Params = Query<HashMap<String, String>>;

/// The tenant a request works on: the key's own, or `?tenant=` for a
/// platform-wide key.
fn tenant_of(p: &Principal, params: &HashMap<String, String>) -> Result<String, Problem> {
    let asked = params.get("tenant").map(String::as_str);
    let tenant = match (&p.tenant, asked) {
        (TenantScope::One(t), None) => t.clone(),
        (TenantScope::One(t), Some(a)) if a == t => t.clone(),
        (TenantScope::One(t), Some(a)) => {
            return Err(Problem::forbidden(format!(
                "this key is for tenant {t}; it cannot reach tenant {a}"
            )));
        }
        (TenantScope::All, Some(a)) => a.to_string(),
        (TenantScope::All, None) => {
            return Err(parameter_problem(
                "tenant",
                "this key is platform-wide: name the tenant with ?tenant=<tenant_id>",
            ));
        }
    };
    if !model::TenantId::is_valid(&tenant) {
        return Err(parameter_problem("tenant", "must match [a-z0-9_-]{1,64}"));
    }
    Ok(tenant)
}

fn parameter_problem(name: &str, detail: impl std::fmt::Display) -> Problem {
    Problem(services::ServiceError::invalid_parameter(name, detail))
}

fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::Invalid { field, reason } => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-experiment",
            "Invalid experiment definition",
            format!("{field}: {reason}"),
        )
        .with_extra(json!({ "field": field })),
        StoreError::NotFound(key) => Problem::new(
            StatusCode::NOT_FOUND,
            "experiment-not-found",
            "No such experiment",
            format!("no experiment {key:?} in this tenant; list them with GET /v1/experiments"),
        ),
        StoreError::Conflict { field, reason } => Problem::new(
            StatusCode::CONFLICT,
            "experiment-conflict",
            "Conflicts with the experiment's state",
            reason,
        )
        .with_extra(json!({ "field": field })),
        StoreError::Io { .. } => {
            tracing::error!(error = %e, "experiment store");
            Problem::internal(e.to_string())
        }
    }
}

/// Runs a registry change off the async threads (it fsyncs).
async fn update<T: Send + 'static>(
    state: &Arc<AppState>,
    tenant: String,
    change: impl FnOnce(&mut services::experiment::store::Registry) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Problem> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.experiments.update(&tenant, change))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(store_problem)
}

pub(crate) fn find(state: &AppState, tenant: &str, key: &str) -> Result<Experiment, Problem> {
    state
        .experiments
        .read(tenant, |r| r.get(key).cloned())
        .map_err(store_problem)?
        .ok_or_else(|| store_problem(StoreError::NotFound(key.to_string())))
}

/// Parses a definition; on a type error, names the field it is about.
fn parse_definition(value: Value) -> Result<ExperimentDefinition, Problem> {
    serde_json::from_value::<ExperimentDefinition>(value.clone()).map_err(|e| {
        let field = locate_type_error(&value).unwrap_or_default();
        let detail = if field.is_empty() {
            e.to_string()
        } else {
            format!("{field}: {e}")
        };
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-experiment",
            "Invalid experiment definition",
            format!(
                "{detail}; expected e.g. {{\"key\": \"greeting_v3\", \"kind\": \"greeting\", \"variants\": [{{\"key\": \"control\", \"weight\": 1, \"payload\": {{\"text\": \"Hi\"}}}}, {{\"key\": \"friendly\", \"weight\": 1, \"payload\": {{\"text\": \"Hey there!\"}}}}], \"primary_metric\": \"conversion\"}}"
            ),
        )
        .with_extra(json!({ "field": field }))
    })
}

/// The first top-level field (or variant) whose value has the wrong type.
fn locate_type_error(value: &Value) -> Option<String> {
    let obj = value.as_object()?;
    if let Some(Value::Array(variants)) = obj.get("variants") {
        for (i, v) in variants.iter().enumerate() {
            if let Err(e) = serde_json::from_value::<VariantDefinition>(v.clone()) {
                let inner = ["key", "weight", "payload"]
                    .into_iter()
                    .find(|f| e.to_string().contains(&format!("`{f}`")) || wrong_type(v.get(*f), f));
                return Some(inner.map_or(format!("variants[{i}]"), |f| format!("variants[{i}].{f}")));
            }
        }
    }
    for (name, v) in obj {
        let ok = match name.as_str() {
            "key" | "kind" | "description" | "primary_metric" => v.is_string(),
            "seed" | "control" => v.is_string() || v.is_null(),
            "variants" | "guardrail_metrics" => v.is_array(),
            "traffic_share" | "alpha" | "minimum_useful_effect" => v.is_number() || v.is_null(),
            "min_sample_per_variant" | "planned_duration_days" => v.is_u64() || v.is_null(),
            "targeting" => serde_json::from_value::<services::experiment::store::Targeting>(v.clone()).is_ok(),
            "layer" => {
                v.is_null() || serde_json::from_value::<services::experiment::store::LayerRequest>(v.clone()).is_ok()
            }
            _ => false,
        };
        if !ok {
            return Some(name.clone());
        }
    }
    ["key", "kind", "variants", "primary_metric"]
        .into_iter()
        .find(|f| !obj.contains_key(*f))
        .map(str::to_string)
}

fn wrong_type(v: Option<&Value>, field: &str) -> bool {
    match (field, v) {
        ("key", Some(v)) => !v.is_string(),
        ("weight", Some(v)) => !v.is_number(),
        (_, None) => field != "payload",
        _ => false,
    }
}

fn body_json(body: &Bytes) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-experiment",
            "Invalid experiment definition",
            format!("the body must be a JSON object: {e}"),
        )
    })
}

fn experiment_response(status: StatusCode, e: &Experiment) -> Response {
    let mut resp = (status, axum::Json(e.summary())).into_response();
    if let Ok(v) = format!("\"{}\"", e.version).parse() {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Params,
) -> Result<Response, Problem> {
    require_role(&principal, READ, "reading experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let wanted = params.get("state").cloned();
    let experiments = state
        .experiments
        .read(&tenant, |r| {
            r.experiments
                .iter()
                .filter(|e| wanted.as_deref().is_none_or(|s| e.state.as_str() == s))
                .map(Experiment::summary)
                .collect::<Vec<_>>()
        })
        .map_err(store_problem)?;
    Ok(axum::Json(json!({ "tenant": tenant, "experiments": experiments })).into_response())
}

async fn create(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&principal, MANAGE, "defining experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let definition = parse_definition(body_json(&body)?)?;
    let by = principal.key_id.clone();
    let now = timestamp(Utc::now());
    let created = update(&state, tenant, move |r| r.create(definition, &by, &now).cloned()).await?;
    state
        .audit
        .record(
            services::audit::Entry::by(
                &principal,
                "experiment.create",
                created.key.clone(),
                json!({ "version": created.version, "state": created.state, "definition": created.definition }),
            )
            .on_tenant(tenant_of(&principal, &params)?),
        )
        .await;
    let mut resp = experiment_response(StatusCode::CREATED, &created);
    if let Ok(v) = format!("/v1/experiments/{}", created.key).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    require_role(&principal, READ, "reading experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    Ok(experiment_response(StatusCode::OK, &find(&state, &tenant, &key)?))
}

async fn history(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    require_role(&principal, READ, "reading experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let e = find(&state, &tenant, &key)?;
    Ok(axum::Json(json!({ "experiment": e.key, "version": e.version, "history": e.history })).into_response())
}

async fn put(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&principal, MANAGE, "editing experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let mut value = body_json(&body)?;
    // The key is in the URL; the body may leave it out.
    if let Value::Object(o) = &mut value {
        o.entry("key").or_insert_with(|| Value::String(key.clone()));
    }
    let definition = parse_definition(value)?;
    save_edit(&state, &principal, tenant, key, definition).await
}

/// Stores a new draft version of `key` (PUT and PATCH), audits it and
/// answers it.
async fn save_edit(
    state: &Arc<AppState>,
    principal: &Principal,
    tenant: String,
    key: String,
    definition: ExperimentDefinition,
) -> Result<Response, Problem> {
    let by = principal.key_id.clone();
    let now = timestamp(Utc::now());
    let audit_tenant = tenant.clone();
    let edited = update(state, tenant, move |r| r.edit(&key, definition, &by, &now).cloned()).await?;
    state
        .audit
        .record(
            services::audit::Entry::by(
                principal,
                "experiment.edit",
                edited.key.clone(),
                json!({ "version": edited.version, "state": edited.state, "definition": edited.definition }),
            )
            .on_tenant(audit_tenant),
        )
        .await;
    Ok(experiment_response(StatusCode::OK, &edited))
}

async fn patch(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&principal, MANAGE, "editing experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let patch = body_json(&body)?;
    if !patch.is_object() {
        return Err(Problem::bad_request(
            "invalid-experiment",
            "a PATCH body is a JSON merge patch (RFC 7396): an object with the fields to change",
        ));
    }
    let current = find(&state, &tenant, &key)?;
    let mut value = serde_json::to_value(&current.definition).map_err(|e| Problem::internal(e.to_string()))?;
    merge_patch(&mut value, &patch);
    let definition = parse_definition(value)?;
    save_edit(&state, &principal, tenant, key, definition).await
}

async fn transition(
    state: Arc<AppState>,
    principal: Principal,
    key: String,
    params: HashMap<String, String>,
    action: Action,
) -> Result<Response, Problem> {
    require_role(&principal, MANAGE, "starting, stopping or archiving experiments")?;
    let tenant = tenant_of(&principal, &params)?;
    let by = principal.key_id.clone();
    let now = timestamp(Utc::now());
    let changed = update(&state, tenant, move |r| r.transition(&key, action, &by, &now).cloned()).await?;
    state.audit.record(services::audit::Entry::by(&principal, "experiment.transition", changed.key.clone(), json!({ "action": format!("{action:?}").to_lowercase(), "version": changed.version, "state": changed.state })).on_tenant(tenant_of(&principal, &params)?)).await;
    Ok(experiment_response(StatusCode::OK, &changed))
}

async fn start(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    transition(state, principal, key, params, Action::Start).await
}

async fn stop(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    transition(state, principal, key, params, Action::Stop).await
}

async fn archive(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    transition(state, principal, key, params, Action::Archive).await
}

/// Why a unit is or is not in the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// In the experiment, seeing this variant (index into the variants).
    Assigned(usize),
    /// The experiment is not running (draft, stopped, archived).
    NotRunning,
    /// A targeting dimension excludes the unit (`channel`, `language`, ...).
    NotTargeted(&'static str),
    /// The unit's layer bucket belongs to another experiment (or none).
    OtherLayerSlot,
    /// Outside the traffic share.
    NotInTraffic,
}

/// The stateless assignment of one unit: running, targeting, layer bucket,
/// traffic gate, then the variant split (`cxlake-assign-v1`).
pub fn eligibility(experiment: &Experiment, unit: &str, attrs: &UnitAttributes) -> Eligibility {
    let def = &experiment.definition;
    if experiment.state != ExpState::Running {
        return Eligibility::NotRunning;
    }
    if let Err(dimension) = def.targeting.admits(attrs) {
        return Eligibility::NotTargeted(dimension);
    }
    if let (Some(layer), Some(slot)) = (&def.layer, &experiment.layer_slot) {
        let bucket = experiments::layer_bucket(&layer.key, unit);
        if !(slot.first_bucket..slot.end_bucket).contains(&bucket) {
            return Eligibility::OtherLayerSlot;
        }
    }
    if !experiments::in_traffic(def.seed(), unit, def.traffic_share) {
        return Eligibility::NotInTraffic;
    }
    Eligibility::Assigned(experiments::assign_variant(def.seed(), unit, &def.weights()))
}

/// One unit to assign, with its targeting attributes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitRequest {
    unit: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    customer_tier: Option<String>,
    /// Needed with `log`: the conversation the exposure belongs to.
    #[serde(default)]
    conversation_id: Option<String>,
    /// Defaults to the unit.
    #[serde(default)]
    customer_id: Option<String>,
}

impl UnitRequest {
    fn attributes(&self) -> UnitAttributes {
        UnitAttributes {
            channel: self.channel.clone(),
            language: self.language.clone(),
            region: self.region.clone(),
            customer_tier: self.customer_tier.clone(),
        }
    }

    /// Fills attributes the unit does not carry from the batch defaults.
    fn with_defaults(mut self, d: &UnitRequest) -> Self {
        let fill = |own: &mut Option<String>, default: &Option<String>| {
            if own.is_none() {
                own.clone_from(default);
            }
        };
        fill(&mut self.channel, &d.channel);
        fill(&mut self.language, &d.language);
        fill(&mut self.region, &d.region);
        fill(&mut self.customer_tier, &d.customer_tier);
        self
    }
}

fn check_unit(field: &str, unit: &str) -> Result<(), Problem> {
    if unit.is_empty() || unit.len() > 256 {
        return Err(parameter_problem(field, "the unit id must be 1 to 256 characters"));
    }
    Ok(())
}

/// The answer for one unit, and the exposure event to log if asked.
fn assign_one(
    experiment: &Experiment,
    tenant: &str,
    req: &UnitRequest,
    log: bool,
    field: &str,
) -> Result<(Value, Option<Value>), Problem> {
    check_unit(field, &req.unit)?;
    let outcome = eligibility(experiment, &req.unit, &req.attributes());
    let def = &experiment.definition;
    let (reason, variant) = match outcome {
        Eligibility::Assigned(i) => ("assigned", def.variants.get(i)),
        Eligibility::NotRunning => ("not_running", None),
        Eligibility::NotTargeted(dim) => (
            match dim {
                "channel" => "not_targeted_channel",
                "language" => "not_targeted_language",
                "region" => "not_targeted_region",
                _ => "not_targeted_customer_tier",
            },
            None,
        ),
        Eligibility::OtherLayerSlot => ("layer_taken", None),
        Eligibility::NotInTraffic => ("not_in_traffic", None),
    };
    let answer = json!({
        "unit": req.unit,
        "in_experiment": variant.is_some(),
        "variant": variant.map(|v| v.key.as_str()),
        "payload": variant.map(|v| &v.payload),
        "reason": reason,
    });
    let event = match (log, variant) {
        (true, Some(v)) => {
            let conversation = req.conversation_id.as_deref().ok_or_else(|| {
                parameter_problem(
                    "conversation_id",
                    "is required with log=true: an experiment.exposed event belongs to a conversation",
                )
            })?;
            let id_hash = Sha256::digest(format!("{}\u{1f}{}\u{1f}{conversation}", experiment.key, req.unit));
            let event_id: String = id_hash[..16].iter().map(|b| format!("{b:02x}")).collect();
            let mut e = json!({
                "event_id": format!("exp-{event_id}"),
                "tenant_id": tenant,
                "type": "experiment.exposed",
                "occurred_at": timestamp(Utc::now()),
                "conversation_id": conversation,
                "customer_id": req.customer_id.as_deref().unwrap_or(&req.unit),
                "experiment_key": experiment.key,
                "variant_key": v.key,
                "unit_id": req.unit,
            });
            if let Some(c) = &req.channel {
                e["channel"] = json!(c);
            }
            Some(e)
        }
        _ => None,
    };
    Ok((answer, event))
}

/// Logs exposures through the durable ingest path (WAL, fsync).
/// Stores exposure events as ingest does: how many were taken and the
/// `seq` they were acknowledged with (as `/v1/events` answers it), none
/// when there were none.
async fn log_exposures(state: &AppState, events: Vec<Value>) -> Result<(usize, Option<u64>), Problem> {
    let mut parsed = Vec::with_capacity(events.len());
    for (i, value) in events.iter().enumerate() {
        let event = ingest::Event::from_json(value).map_err(|errors| {
            let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
            let field = errors.first().map(|e| e.field.clone()).unwrap_or_default();
            parameter_problem(&field, format!("cannot log the exposure: {first}"))
        })?;
        parsed.push((i + 1, event));
    }
    if parsed.is_empty() {
        return Ok((0, None));
    }
    let outcome = state
        .ingestor
        .ingest(parsed)
        .await
        .map_err(|e| Problem::not_durable("Exposure not stored", &e))?;
    Ok((outcome.accepted, Some(outcome.seq)))
}

async fn assignment(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    require_role(&principal, ASSIGN, "asking for assignments")?;
    let tenant = tenant_of(&principal, &params)?;
    let log = flag(&params, "log")?;
    let unit = params
        .get("unit")
        .cloned()
        .ok_or_else(|| parameter_problem("unit", "is required, e.g. ?unit=cus_42 (the customer id)"))?;
    let experiment = find(&state, &tenant, &key)?;
    let req = UnitRequest {
        unit,
        channel: params.get("channel").cloned(),
        language: params.get("language").cloned(),
        region: params.get("region").cloned(),
        customer_tier: params.get("customer_tier").cloned(),
        conversation_id: params.get("conversation_id").cloned(),
        customer_id: params.get("customer_id").cloned(),
    };
    let (mut answer, event) = assign_one(&experiment, &tenant, &req, log, "unit")?;
    answer["experiment"] = json!(experiment.key);
    answer["version"] = json!(experiment.version);
    answer["algorithm"] = json!(experiments::ALGORITHM_VERSION);
    if log {
        // A repeated log of the same unit and conversation is deduplicated
        // by its event id; it still counts as logged.
        let logged = event.is_some();
        let (_, seq) = log_exposures(&state, event.into_iter().collect()).await?;
        answer["logged"] = json!(logged);
        if let Some(seq) = seq {
            answer["seq"] = json!(seq);
        }
    }
    Ok(axum::Json(answer).into_response())
}

/// A unit in a batch: a bare id or an object with attributes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BatchUnit {
    Id(String),
    Full(UnitRequest),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    units: Vec<BatchUnit>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    customer_tier: Option<String>,
    #[serde(default)]
    log: bool,
}

async fn assignments(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&principal, ASSIGN, "asking for assignments")?;
    let tenant = tenant_of(&principal, &params)?;
    let batch: BatchRequest = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "bad-body",
            format!(
                "the body must be JSON like {{\"units\": [\"cus_1\", {{\"unit\": \"cus_2\", \"channel\": \"whatsapp\"}}], \"language\": \"en\"}}: {e}"
            ),
        )
    })?;
    if batch.units.len() > MAX_BATCH_UNITS {
        return Err(parameter_problem(
            "units",
            format!("at most {MAX_BATCH_UNITS} units per request, got {}", batch.units.len()),
        ));
    }
    let experiment = find(&state, &tenant, &key)?;
    let defaults = UnitRequest {
        channel: batch.channel.clone(),
        language: batch.language.clone(),
        region: batch.region.clone(),
        customer_tier: batch.customer_tier.clone(),
        ..UnitRequest::default()
    };
    let mut answers = Vec::with_capacity(batch.units.len());
    let mut events = Vec::new();
    for (i, unit) in batch.units.into_iter().enumerate() {
        let req = match unit {
            BatchUnit::Id(unit) => UnitRequest {
                unit,
                ..defaults.clone()
            },
            BatchUnit::Full(req) => req.with_defaults(&defaults),
        };
        let (answer, event) = assign_one(&experiment, &tenant, &req, batch.log, &format!("units[{i}]"))?;
        answers.push(answer);
        events.extend(event);
    }
    let (logged, seq) = if batch.log {
        let (n, seq) = log_exposures(&state, events).await?;
        (Some(n), seq)
    } else {
        (None, None)
    };
    let mut body = json!({
        "experiment": experiment.key,
        "version": experiment.version,
        "algorithm": experiments::ALGORITHM_VERSION,
        "assignments": answers,
        "logged_events": logged,
    });
    if let Some(seq) = seq {
        body["seq"] = json!(seq);
    }
    Ok(axum::Json(body).into_response())
}

async fn results(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(key): Path<String>,
    Query(params): Params,
) -> Result<Response, Problem> {
    require_role(&principal, RESULTS, "reading experiment results")?;
    let tenant = tenant_of(&principal, &params)?;
    let experiment = find(&state, &tenant, &key)?;
    let query = ResultsQuery::from_params(&params)?;
    let id = TenantId::parse(&tenant).ok_or_else(|| parameter_problem("tenant", "is not valid"))?;
    Ok(axum::Json(served::results(&state, &id, experiment, &query).await?).into_response())
}
