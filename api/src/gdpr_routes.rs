//! GDPR rights of one customer, admin keys only (see `docs/gdpr.md`):
//!
//! - `GET /v1/customers/{id}/export[?tenant=T]`: everything held about the
//!   customer as JSON — their events, those of their conversations and
//!   orders, from the lake and from the not-yet-flushed buffer, with
//!   encrypted free text decrypted for the admin;
//! - `DELETE /v1/customers/{id}[?tenant=T]`: erasure from the write-ahead
//!   log, the buffer, the lake files and the lake's history (see
//!   `ingest::pipeline::erase`), run as a durable job
//!   (`crate::erasure_jobs`): `202 Accepted` with the job's URL at once;
//! - `GET /v1/erasures/{job}[?tenant=T]`: the job's state and, once it is
//!   done, its receipt.
//!
//! `{id}` is the customer id as the messaging core knows it; a tenant that
//! pseudonymizes ids at ingest is matched through the same keyed hash.
//! Both acts are audited under a keyed hash of the id, never the id.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ingest::contract::MAX_ID_LEN;
use ingest::privacy::{ENCRYPTED_PREFIX, TenantKey, edit_text_attrs, hex};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::problem::Problem;
use crate::state::AppState;
use services::audit::Entry;
use services::keys::{Principal, Role, TenantScope, require_role};
use services::tenant::{TenantId, resolve_tenant};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/customers/{id}/export", get(export_customer))
        .route("/v1/customers/{id}", axum::routing::delete(erase_customer))
        .route("/v1/erasures/{job}", get(erasure_job))
}

#[derive(Debug, Deserialize)]
struct TenantParam {
    tenant: Option<String>,
}

/// The admin check, the tenant and the checked customer id.
fn authorize(principal: &Principal, tenant: Option<&str>, id: &str, what: &str) -> Result<TenantId, Problem> {
    require_role(principal, &[Role::Admin], what)?;
    let tenant = resolve_tenant(principal, tenant)?;
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Problem::bad_request(
            "invalid-parameter",
            format!("id: a customer id has 1 to {MAX_ID_LEN} bytes"),
        )
        .with_extra(json!({ "parameter": "id" })));
    }
    Ok(tenant)
}

async fn audit(state: &AppState, principal: &Principal, tenant: &TenantId, action: &str, detail: Value) {
    state
        .audit
        .record(Entry::by(principal, action, "/v1/customers", detail).on_tenant(tenant.to_string()))
        .await;
}

fn tenant_key(state: &AppState, tenant: &TenantId) -> Result<Arc<TenantKey>, Problem> {
    state.ingestor.privacy().key(tenant.as_str()).map_err(|e| {
        tracing::error!(error = %e, "tenant key");
        Problem::internal(e.to_string())
    })
}

async fn export_customer(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query<TenantParam>,
) -> Result<Response, Problem> {
    let tenant = authorize(&principal, params.tenant.as_deref(), &id, "a customer export")?;
    let key = tenant_key(&state, &tenant)?;
    let data = state
        .ingestor
        .customer_data(tenant.as_str(), &id)
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    let mut events = Vec::new();
    for batch in &data.batches {
        events.extend(event_objects(batch).map_err(|e| Problem::internal(e.to_string()))?);
    }
    for e in &mut events {
        reveal(e, &key, tenant.as_str());
    }
    audit(
        &state,
        &principal,
        &tenant,
        "customer.export",
        json!({ "customer_hash": hex(&key.customer_hash(&id)), "events": events.len() }),
    )
    .await;
    Ok(axum::Json(json!({
        "tenant": tenant.as_str(),
        "customer_id": id,
        "identifiers": data.forms,
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "conversations": data.conversations,
        "orders": data.orders,
        "event_count": events.len(),
        "events": events,
    }))
    .into_response())
}

/// Rows as JSON objects (absent values left out), oldest first.
fn event_objects(batch: &arrow::array::RecordBatch) -> Result<Vec<Map<String, Value>>, arrow::error::ArrowError> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new().build::<_, arrow::json::writer::JsonArray>(&mut buf);
        writer.write(batch)?;
        writer.finish()?;
    }
    let rows: Vec<Map<String, Value>> =
        serde_json::from_slice(&buf).map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?;
    Ok(rows)
}

/// Decrypts the free text of one exported event and turns `attrs` back
/// into an object.
fn reveal(event: &mut Map<String, Value>, key: &TenantKey, tenant: &str) {
    let open = |text: &str| {
        key.decrypt(tenant, text)
            .unwrap_or_else(|_| "[encrypted value that does not decrypt with this tenant's key]".into())
    };
    if let Some(Value::String(c)) = event.get_mut("comment") {
        *c = open(c);
    }
    if let Some(Value::String(attrs)) = event.get("attrs") {
        let mut attrs = attrs.clone();
        // Only encrypted values need opening; free text may sit at any
        // depth under any spelling of its key, so look for the prefix.
        if attrs.contains(ENCRYPTED_PREFIX) {
            let _ = edit_text_attrs(&mut attrs, |t| Ok(Some(open(t))));
        }
        let parsed = serde_json::from_str::<Value>(&attrs).unwrap_or(Value::String(attrs));
        event.insert("attrs".into(), parsed);
    }
}

async fn erase_customer(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    Query(params): Query<TenantParam>,
) -> Result<Response, Problem> {
    let tenant = authorize(&principal, params.tenant.as_deref(), &id, "erasing a customer")?;
    let key = tenant_key(&state, &tenant)?;
    let customer_hash = hex(&key.customer_hash(&id));
    let by = Entry::by(&principal, "customer.erase_requested", "/v1/customers", Value::Null).actor;
    let job = state
        .erasures
        .submit(tenant.as_str(), &id, customer_hash.clone(), by)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record an erasure job");
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "not-durable",
                "Erasure not recorded",
                format!("the erasure request could not be stored ({e}); nothing was started, send the DELETE again"),
            )
            .with_retry_after(5)
        })?;
    audit(
        &state,
        &principal,
        &tenant,
        "customer.erase_requested",
        json!({ "customer_hash": customer_hash, "job": job.id }),
    )
    .await;
    let mut resp = (axum::http::StatusCode::ACCEPTED, axum::Json(job.public())).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/v1/erasures/{}", job.id)) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn erasure_job(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(job): Path<String>,
    Query(params): Query<TenantParam>,
) -> Result<Response, Problem> {
    require_role(&principal, &[Role::Admin], "reading erasure jobs")?;
    // A tenant key sees its own tenant's jobs; a platform-wide key any
    // tenant's, or the one `tenant=` names.
    let scope = match (&principal.tenant, params.tenant.as_deref()) {
        (TenantScope::All, requested) => requested.map(str::to_string),
        (TenantScope::One(own), _) => Some(own.clone()),
    };
    match state.erasures.get(&job, scope.as_deref()) {
        Some(j) => Ok(axum::Json(j.public()).into_response()),
        None => Err(Problem::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "No such erasure job",
            format!(
                "no erasure job {job} for this tenant; the job URL is in the answer to DELETE /v1/customers/{{id}}"
            ),
        )),
    }
}
