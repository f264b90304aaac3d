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
use ingest::decode::{self, ContentEncoding, Rejection};
use serde::Deserialize;
use serde_json::json;

use crate::problem::Problem;
use crate::state::AppState;
use services::keys::{Principal, Role, require_role};

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
        .route("/readyz", get(readyz))
        // Chatwoot sends no Authorization header: the webhook route
        // authenticates by signature or `?key=` itself.
        .merge(crate::chatwoot_routes::routes())
        .route("/metrics", get(metrics))
        // Pages authenticate with their own cookie and redirect to /login.
        .merge(crate::dashboard_routes::routes())
        .merge(v1)
        // The client address becomes the `source` of audit records.
        .layer(middleware::from_fn(audit_source_layer))
        .with_state(state)
}

/// The key of an `Authorization: Bearer <key>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Resolves the bearer key into a [`Principal`] request extension.
async fn authenticate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    match bearer(req.headers()).and_then(|k| state.keys.authenticate(k)) {
        Some(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        None => Problem::unauthorized().into_response(),
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

/// Readiness, as against `/healthz` (liveness): 200 once every tenant in
/// the lake has its facts built, 503 while any is still building after a
/// start. Without a key it gives counts only; with one, also the state of
/// each tenant the key may see (`ready`, `building`, `waiting`, `failed`)
/// and the ingest sequence number its facts reflect.
async fn readyz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let principal = bearer(&headers).and_then(|k| state.keys.authenticate(k));
    let tenants = warehouse::rollups::tenants(&state.ingestor.read_view());
    let mut counts: std::collections::BTreeMap<&str, usize> = ["ready", "building", "waiting", "failed"]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
    let (mut shown, mut as_of) = (serde_json::Map::new(), serde_json::Map::new());
    for t in &tenants {
        let name = match &*state.warehouse.build_signal(t).borrow() {
            warehouse::BuildState::Built => "ready",
            warehouse::BuildState::Building => "building",
            warehouse::BuildState::NotStarted => "waiting",
            warehouse::BuildState::Failed(_) => "failed",
        };
        *counts.entry(name).or_default() += 1;
        if principal.as_ref().is_some_and(|p| p.tenant.allows(t)) {
            shown.insert(t.clone(), json!(name));
            if let Some(seq) = state.warehouse.rollup_slot(t).read().await.as_of_seq() {
                as_of.insert(t.clone(), json!(seq));
            }
        }
    }
    let ready = counts["ready"] == tenants.len();
    let mut body = json!({
        "status": if ready { "ready" } else { "starting" },
        "acknowledged_seq": state.ingestor.read_view().through_seq,
        "tenants": tenants.len(),
        "facts": counts,
    });
    if principal.is_some() {
        body["tenant_facts"] = serde_json::Value::Object(shown);
        // Answers from a tenant's facts include every batch acknowledged
        // with this sequence number or a lower one.
        body["facts_as_of_seq"] = serde_json::Value::Object(as_of);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if !ready {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1u32));
    }
    resp
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
        // The batch's ingest sequence number (0: nothing new was stored);
        // an answer whose `data_as_of.seq` is at least this counts it.
        "seq": outcome.seq,
        "duplicates": outcome.duplicate_lines.len(),
        // Events of an erased customer or conversation: dropped, not stored.
        "erased": outcome.erased_lines.len(),
        "rejected_lines": rejected_lines,
        "rejected": rejected,
    });
    Ok((status, axum::Json(body)).into_response())
}

/// Middleware: makes the client address (and any `X-Forwarded-For` a
/// proxy added) the `source` of audit records made while serving the
/// request. Needs the server to run with connect info.
async fn audit_source_layer(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let source = match (peer, forwarded) {
        (Some(p), Some(f)) => Some(format!("{f} via {p}")),
        (p, f) => p.or(f),
    };
    services::audit::with_source(source, next.run(req)).await
}
