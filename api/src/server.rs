//! The HTTP server: routes, authentication, and the handlers of the
//! foundation (`/healthz`, `/metrics`, `/v1/schema/events`, `/v1/events`,
//! `/v1/sql`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ingest::Ingestor;
use ingest::decode::{self, ContentEncoding, DecodeLimits, Rejection};
use ingest::metrics::WebhookOutcome;
use serde::Deserialize;
use serde_json::json;
use warehouse::Warehouse;

use crate::keys::{KeyStore, Principal, Role};
use crate::problem::Problem;

/// Shared by every handler.
#[derive(Debug)]
pub struct AppState {
    /// The data directory (keys, WAL, lake, and any store a feature keeps).
    pub data_dir: std::path::PathBuf,
    pub ingestor: Arc<Ingestor>,
    pub warehouse: Warehouse,
    pub keys: KeyStore,
    pub limits: DecodeLimits,
    /// The experiment registry (`<data_dir>/experiments/`).
    pub experiments: crate::experiment_store::ExperimentStore,
    /// Analyst SQL sessions and their per-tenant gates (HTTP and Postgres).
    pub sql: crate::sql_service::SqlService,
    /// The tamper-evident audit log (`<data_dir>/audit/`).
    pub audit: crate::audit::AuditLog,
    /// GDPR erasures, as durable jobs (`<data_dir>/erasures/`).
    pub erasures: crate::erasure_jobs::ErasureJobs,
    /// Signed-in dashboard sessions (in memory).
    pub dashboard_sessions: crate::dashboard_routes::Sessions,
}

pub fn router(state: Arc<AppState>) -> Router {
    // The raw body may be compressed; decompression enforces the same
    // limit again on what it inflates to.
    let body_limit = state.limits.max_body_bytes;
    let v1 = Router::new()
        .route("/v1/events", post(post_events))
        .merge(crate::sql_routes::routes())
        .route("/v1/schema/events", get(get_schema))
        .merge(crate::calc_routes::routes())
        .merge(crate::kpi_routes::routes())
        .merge(crate::analysis_routes::routes())
        .merge(crate::forecast_routes::routes())
        .merge(crate::experiment_routes::routes())
        .merge(crate::key_routes::routes())
        .merge(crate::gdpr_routes::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        // Chatwoot cannot send headers, so this route also takes `?key=`
        // and authenticates itself.
        .route("/v1/webhooks/chatwoot", post(post_chatwoot))
        .route("/metrics", get(metrics))
        // Pages authenticate with their own cookie and redirect to /login.
        .merge(crate::dashboard_routes::routes())
        .merge(v1)
        // The client address becomes the `source` of audit records.
        .layer(middleware::from_fn(crate::audit::source_layer))
        .with_state(state)
}

/// Resolves the bearer key into a [`Principal`] request extension.
async fn authenticate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented.and_then(|k| state.keys.authenticate(k)) {
        Some(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        None => Problem::unauthorized().into_response(),
    }
}

fn require_role(p: &Principal, allowed: &[Role], what: &str) -> Result<(), Problem> {
    if allowed.contains(&p.role) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(Problem::forbidden(format!(
            "{what} needs a key with role {}; this key has role {}",
            names.join(" or "),
            p.role
        )))
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let view = state.ingestor.read_view();
    axum::Json(json!({
        "status": "ok",
        "lake_version": view.table.as_ref().and_then(|t| t.version()),
        "buffered_batches": view.buffered.len(),
    }))
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.ingestor.metrics().render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

async fn get_schema() -> Response {
    let mut resp = ingest::EVENT_JSON_SCHEMA.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/schema+json"),
    );
    resp
}

#[derive(Debug, Deserialize)]
struct EventsParams {
    #[serde(default)]
    atomic: bool,
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<EventsParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&principal, &[Role::Admin, Role::Service], "sending events")?;
    let encoding = ContentEncoding::from_header(headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()))
        .map_err(|e| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-encoding",
                "Unsupported encoding",
                e.to_string(),
            )
        })?;
    let limits = state.limits;
    // The event window is centred on the moment the body arrived.
    let now_us = chrono::Utc::now().timestamp_micros();
    // Decompression and JSON parsing are CPU work; keep them off the I/O threads.
    let decoded = tokio::task::spawn_blocking(move || {
        let body = decode::decompress(&body, encoding, limits.max_body_bytes)?;
        decode::decode_events_at(&body, &limits, now_us)
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))?
    .map_err(|e| match e {
        decode::BodyError::TooLarge { .. } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            e.to_string(),
        ),
        other => Problem::bad_request("bad-body", other.to_string()),
    })?;

    let mut rejected = decoded.rejected;
    let mut events = Vec::with_capacity(decoded.events.len());
    for (line, event) in decoded.events {
        if principal.tenant.allows(&event.tenant_id) {
            events.push((line, event));
        } else {
            rejected.push(Rejection {
                line,
                field: "tenant_id".into(),
                reason: format!(
                    "this key is for tenant {}; it cannot send events of tenant {}",
                    principal.tenant, event.tenant_id
                ),
            });
        }
    }
    rejected.sort_by_key(|r| r.line);
    let rejected_lines = {
        let mut l: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        l.dedup();
        l.len()
    };
    state
        .ingestor
        .metrics()
        .events_rejected
        .fetch_add(rejected_lines as u64, std::sync::atomic::Ordering::Relaxed);

    if params.atomic && !rejected.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch-rejected",
            "Batch rejected",
            format!("{rejected_lines} line(s) are invalid and atomic=true was asked, so nothing was accepted; fix them and resend the batch"),
        )
        .with_extra(json!({ "accepted": 0, "duplicates": 0, "rejected": rejected })));
    }
    let had_events = !events.is_empty();
    let outcome = state.ingestor.ingest(events).await.map_err(|e| {
        tracing::error!(error = %e, "ingest failed");
        Problem::not_durable("Events not stored", &e)
    })?;
    let status = if !had_events && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicate_lines.len(),
        // Events of an erased customer or conversation: dropped, not stored.
        "erased": outcome.erased_lines.len(),
        "rejected_lines": rejected_lines,
        "rejected": rejected,
    });
    Ok((status, axum::Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct ChatwootParams {
    tenant: Option<String>,
    key: Option<String>,
    /// The Chatwoot account the webhook is configured in: display ids are
    /// numbered per account, so ids are namespaced by it.
    account: Option<String>,
}

/// `POST /v1/webhooks/chatwoot?tenant=T&account=A[&key=K]`: one Chatwoot
/// webhook, mapped onto the contract (see `ingest::chatwoot`) and ingested
/// durably. Every outcome is counted in `/metrics`: Chatwoot does not retry
/// and shows no delivery errors, so a refused webhook is visible only there.
async fn post_chatwoot(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ChatwootParams>,
    headers: HeaderMap,
    // Read only after the key is checked, and up to the configured body
    // limit (not axum's 2 MiB default): Chatwoot does not retry, so an
    // e-mail with a large HTML body refused here would be lost.
    body: axum::body::Body,
) -> Result<Response, Problem> {
    let (result, outcome) = match chatwoot_webhook(&state, params, headers, body).await {
        Ok((response, outcome)) => (Ok(response), outcome),
        Err((problem, outcome)) => (Err(problem), outcome),
    };
    state.ingestor.metrics().count_chatwoot_webhook(outcome);
    result
}

async fn chatwoot_webhook(
    state: &Arc<AppState>,
    params: ChatwootParams,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(Response, WebhookOutcome), (Problem, WebhookOutcome)> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(params.key.as_deref());
    let principal = presented.and_then(|k| state.keys.authenticate(k)).ok_or_else(|| {
        (
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or invalid API key",
                "Chatwoot sends no Authorization header: put a service key in the webhook URL, \
                 /v1/webhooks/chatwoot?key=<key>&account=<Chatwoot account id>; create one with \
                 `cxlake key create --tenant T --role service`",
            ),
            WebhookOutcome::Unauthorized,
        )
    })?;
    require_role(&principal, &[Role::Admin, Role::Service], "sending events")
        .map_err(|p| (p, WebhookOutcome::Forbidden))?;
    let tenant = match (&principal.tenant, params.tenant) {
        (crate::keys::TenantScope::One(t), None) => t.clone(),
        (scope, Some(t)) if scope.allows(&t) => t,
        (_, Some(t)) => {
            return Err((
                Problem::forbidden(format!("this key cannot send events of tenant {t}")),
                WebhookOutcome::Forbidden,
            ));
        }
        (crate::keys::TenantScope::All, None) => {
            return Err((
                Problem::bad_request("missing-tenant", "a platform-wide key must name the tenant: ?tenant=T"),
                WebhookOutcome::BadBody,
            ));
        }
    };
    let limit = state.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        (
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!(
                    "the webhook body is larger than the configured max_body_bytes ({limit} bytes); raise max_body_bytes (CXLAKE_MAX_BODY_BYTES) to take it"
                ),
            ),
            WebhookOutcome::TooLarge,
        )
    })?;
    let payload: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        (
            Problem::bad_request("bad-body", format!("the body must be a Chatwoot webhook (JSON): {e}")),
            WebhookOutcome::BadBody,
        )
    })?;
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut why = WebhookOutcome::Unmapped;
    let mapped = ingest::chatwoot::map_webhook(&tenant, params.account.as_deref(), &payload).and_then(|m| match m {
        ingest::chatwoot::Mapped::Events(events) => {
            for e in &events {
                state.limits.check_occurred_at(e, now_us).map_err(|outside| {
                    why = WebhookOutcome::OutsideWindow;
                    vec![outside]
                })?;
            }
            Ok(ingest::chatwoot::Mapped::Events(events))
        }
        ignored => Ok(ignored),
    });
    let events = match mapped {
        Ok(ingest::chatwoot::Mapped::Events(events)) => events,
        Ok(ingest::chatwoot::Mapped::Ignored(what)) => {
            let body = json!({ "accepted": 0, "duplicates": 0, "ignored": what });
            return Ok((axum::Json(body).into_response(), WebhookOutcome::Ignored));
        }
        Err(errors) => {
            if errors.iter().any(|e| e.field == "account" || e.field == "account.id") {
                why = WebhookOutcome::Account;
            }
            let rejected: Vec<Rejection> = errors
                .into_iter()
                .map(|e| Rejection {
                    line: 1,
                    field: e.field,
                    reason: e.reason,
                })
                .collect();
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "batch-rejected",
                "Webhook rejected",
                "the webhook could not be mapped onto an event; see rejected",
            )
            .with_extra(json!({ "accepted": 0, "rejected": rejected }));
            return Err((problem, why));
        }
    };
    let outcome = state
        .ingestor
        // One webhook can carry several events; the counts are of events.
        .ingest(events.into_iter().enumerate().map(|(i, e)| (i + 1, e)).collect())
        .await
        .map_err(|e| (Problem::not_durable("Event not stored", &e), WebhookOutcome::NotDurable))?;
    let body = json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicate_lines.len(),
        "erased": outcome.erased_lines.len(),
    });
    Ok((axum::Json(body).into_response(), WebhookOutcome::Accepted))
}
