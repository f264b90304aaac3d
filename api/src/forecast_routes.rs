//! Arrival forecasts and staffing plans for the routing core
//! (`/v1/forecast/*`).
//!
//! * `GET /v1/forecast/arrivals` — arrivals per interval of one queue, from
//!   the lake's history in the tenant's time zone, with quantiles, the method
//!   chosen by backtest and every method's backtest scores.
//! * `GET /v1/forecast/staffing` — the same forecast plus the agents each
//!   interval needs (Erlang C, or Erlang A with a patience), with handle
//!   time, human share and patience measured in the lake unless given.
//! * `POST /v1/forecast` — the same from a history the caller sends (what-if
//!   plans, history kept elsewhere); optionally with a staffing template.
//!
//! What they answer, with every parameter, is `services::forecasts::serve`;
//! this module routes and frames.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::problem::Problem;
use crate::state::AppState;
use services::keys::Principal;
use services::served::forecasts::{self as serve, ForecastQuery, require_reader};

pub mod backtest;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/forecast/arrivals", get(get_arrivals))
        .route("/v1/forecast/staffing", get(get_staffing))
        .route("/v1/forecast", post(post_forecast))
}

fn parse_query(query: Result<Query<ForecastQuery>, QueryRejection>) -> Result<ForecastQuery, Problem> {
    let example = "?queue=channel:whatsapp,language:en&tz=Europe/Berlin&from=2026-03-29&to=2026-03-30&interval=30";
    query
        .map(|Query(q)| q)
        .map_err(|e| Problem::bad_request("bad-query", format!("{}; expected e.g. {example}", e.body_text())))
}

async fn get_arrivals(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<ForecastQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    require_reader(&principal)?;
    let q = parse_query(query)?;
    Ok(axum::Json(serve::arrivals(&state, &principal, &q).await?).into_response())
}

async fn get_staffing(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<ForecastQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    require_reader(&principal)?;
    let q = parse_query(query)?;
    Ok(axum::Json(serve::staffing(&state, &principal, &q).await?).into_response())
}

async fn post_forecast(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> Result<Response, Problem> {
    Ok(axum::Json(serve::what_if(&state, &principal, &body).await?).into_response())
}
