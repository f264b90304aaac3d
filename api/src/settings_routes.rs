//! `GET /v1/settings` and `PUT /v1/settings`: the tenant settings of
//! [`services::settings`] over HTTP, admin keys only.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use services::keys::{Principal, Role};
use services::settings::{SettingsError, TenantSettings, load, store};
use services::tenant::resolve_tenant;

use crate::problem::Problem;
use crate::state::AppState;

/// `GET /v1/settings` and `PUT /v1/settings`, admin keys only.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/settings", get(get_settings).put(put_settings))
}

#[derive(Debug, Deserialize)]
struct TenantParam {
    tenant: Option<String>,
}

fn require_admin(principal: &Principal) -> Result<(), Problem> {
    Ok(services::keys::require_role(
        principal,
        &[Role::Admin],
        "reading or changing tenant settings",
    )?)
}

fn settings_problem(e: SettingsError) -> Problem {
    tracing::error!(error = %e, "settings store");
    Problem::internal(e.to_string())
}

async fn get_settings(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<TenantParam>,
) -> Result<Response, Problem> {
    require_admin(&principal)?;
    let tenant = resolve_tenant(&principal, params.tenant.as_deref())?;
    let data_dir = state.data_dir.clone();
    let settings = tokio::task::spawn_blocking(move || load(&data_dir, &tenant))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(settings_problem)?;
    Ok(axum::Json(settings).into_response())
}

async fn put_settings(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<TenantParam>,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&principal)?;
    let tenant = resolve_tenant(&principal, params.tenant.as_deref())?;
    let example = r#"{"time_zone": "Europe/Berlin", "sla_target_s": 120, "attribution_window_days": 7, "hourly_rates": [{"team": "t1", "rate": 20, "currency": "EUR"}, {"rate": 15, "currency": "EUR"}]}"#;
    let settings: TenantSettings = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "bad-body",
            format!("the body must be settings JSON like {example} (absent fields take their defaults): {e}"),
        )
    })?;
    settings.validate().map_err(|e| {
        Problem::bad_request("invalid-setting", format!("{}: {}", e.field, e.reason))
            .with_extra(json!({ "parameter": e.field }))
    })?;
    tracing::info!(tenant = %tenant, key = %principal.key_id, "tenant settings changed");
    state
        .audit
        .record(
            services::audit::Entry::by(&principal, "settings.change", "/v1/settings", settings.for_audit())
                .on_tenant(tenant.to_string()),
        )
        .await;
    let data_dir = state.data_dir.clone();
    let stored = settings.clone();
    tokio::task::spawn_blocking(move || store(&data_dir, &tenant, &stored))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(settings_problem)?;
    Ok((StatusCode::OK, axum::Json(settings)).into_response())
}
