//! Stateless calculators over HTTP: experiment statistics on summary
//! statistics (`/v1/stats/*`) and a single Erlang staffing calculation
//! (`/v1/staffing/erlang`). They read no lake data, so any authenticated
//! role may use them; the numbers come straight from the `experiments` and
//! `staffing` crates, whose tests pin them to scipy, statsmodels and
//! pyworkforce.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use experiments::stats::{self, ArmSummary, MinimumEffect};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::problem::Problem;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/stats/compare", post(compare))
        .route("/v1/stats/sample-size", post(sample_size))
        .route("/v1/staffing/erlang", get(erlang))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, example: &str) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request("bad-body", format!("the body must be JSON like {example}: {e}")))
}

fn stats_problem(e: stats::StatsError) -> Problem {
    match e {
        stats::StatsError::InvalidInput { field, reason } => {
            Problem::bad_request("invalid-parameter", format!("{field}: {reason}"))
                .with_extra(json!({ "parameter": field }))
        }
        #[allow(unreachable_patterns)]
        other => Problem::bad_request("invalid-parameter", other.to_string()),
    }
}

fn default_alpha() -> f64 {
    0.05
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareRequest {
    control: ArmSummary,
    treatment: ArmSummary,
    #[serde(default = "default_alpha")]
    alpha: f64,
    /// Also return the always-valid (mSPRT) p-value and interval.
    #[serde(default)]
    sequential: bool,
    /// Mixing variance for mSPRT; default `(0.1 × control mean)²`.
    #[serde(default)]
    tau_squared: Option<f64>,
    /// Also return the Bayesian chance to beat control and expected loss.
    #[serde(default)]
    bayesian: bool,
    /// Direction for the Bayesian figures.
    #[serde(default = "yes")]
    higher_is_better: bool,
}

fn yes() -> bool {
    true
}

async fn compare(body: Bytes) -> Result<Response, Problem> {
    let req: CompareRequest = json_body(
        &body,
        r#"{"control": {"n": 1000, "sum": 120}, "treatment": {"n": 1000, "sum": 145}, "alpha": 0.05}"#,
    )?;
    let cmp = stats::compare(&req.control, &req.treatment, req.alpha).map_err(stats_problem)?;
    let mut out = serde_json::to_value(cmp).map_err(|e| Problem::internal(e.to_string()))?;
    if req.sequential {
        let seq = stats::msprt_from_comparison(&cmp, req.tau_squared).map_err(stats_problem)?;
        out["sequential"] = serde_json::to_value(seq).map_err(|e| Problem::internal(e.to_string()))?;
    }
    if req.bayesian {
        let b = stats::bayesian_from_comparison(&cmp, req.higher_is_better).map_err(stats_problem)?;
        out["bayesian"] = serde_json::to_value(b).map_err(|e| Problem::internal(e.to_string()))?;
    }
    Ok(axum::Json(out).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleSizeRequest {
    /// Baseline rate (a fraction) or, with `std_dev`, baseline mean.
    baseline: f64,
    /// Smallest effect worth detecting.
    minimum_effect: f64,
    /// `minimum_effect` is relative to the baseline (0.05 = +5 %).
    #[serde(default)]
    relative: bool,
    /// Per-unit standard deviation: given → a mean metric, absent → a rate.
    #[serde(default)]
    std_dev: Option<f64>,
    #[serde(default = "default_alpha")]
    alpha: f64,
    #[serde(default = "default_power")]
    power: f64,
    /// Units entering the experiment per day (all arms), for the duration.
    #[serde(default)]
    daily_units: Option<f64>,
    /// Number of arms including control.
    #[serde(default = "two")]
    arms: u32,
}

fn default_power() -> f64 {
    0.8
}

fn two() -> u32 {
    2
}

async fn sample_size(body: Bytes) -> Result<Response, Problem> {
    let req: SampleSizeRequest = json_body(
        &body,
        r#"{"baseline": 0.12, "minimum_effect": 0.01, "alpha": 0.05, "power": 0.8, "daily_units": 3000}"#,
    )?;
    let effect = if req.relative {
        MinimumEffect::Relative(req.minimum_effect)
    } else {
        MinimumEffect::Absolute(req.minimum_effect)
    };
    let result = match req.std_dev {
        Some(sd) => stats::sample_size_means(req.baseline, sd, effect, req.alpha, req.power),
        None => stats::sample_size_proportions(req.baseline, effect, req.alpha, req.power),
    }
    .map_err(stats_problem)?;
    if req.arms < 2 {
        return Err(
            Problem::bad_request("invalid-parameter", "arms: an experiment needs at least 2 arms")
                .with_extra(json!({ "parameter": "arms" })),
        );
    }
    let mut out = serde_json::to_value(result).map_err(|e| Problem::internal(e.to_string()))?;
    out["arms"] = json!(req.arms);
    out["total_units"] = json!(result.units_per_arm * u64::from(req.arms));
    if let Some(daily) = req.daily_units {
        if !(daily > 0.0 && daily.is_finite()) {
            return Err(
                Problem::bad_request("invalid-parameter", "daily_units: must be a positive number")
                    .with_extra(json!({ "parameter": "daily_units" })),
            );
        }
        let days = (result.units_per_arm * u64::from(req.arms)) as f64 / daily;
        out["days"] = json!(days.ceil());
        out["days_exact"] = json!(days);
    }
    Ok(axum::Json(out).into_response())
}

/// Query-string form of [`staffing::erlang::StaffingRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErlangQuery {
    arrivals: Option<f64>,
    interval_s: Option<f64>,
    aht_s: Option<f64>,
    target_s: Option<f64>,
    service_level: Option<f64>,
    patience_s: Option<f64>,
    shrinkage: Option<f64>,
    max_occupancy: Option<f64>,
    concurrency: Option<u32>,
}

async fn erlang(query: Result<Query<ErlangQuery>, QueryRejection>) -> Result<Response, Problem> {
    let example = "?arrivals=120&interval_s=1800&aht_s=240&target_s=20&service_level=0.8";
    let Query(q) =
        query.map_err(|e| Problem::bad_request("bad-query", format!("{}; expected e.g. {example}", e.body_text())))?;
    let need = |name: &'static str, v: Option<f64>| {
        v.ok_or_else(|| {
            Problem::bad_request("invalid-parameter", format!("{name} is required, e.g. {example}"))
                .with_extra(json!({ "parameter": name }))
        })
    };
    let req = staffing::erlang::StaffingRequest {
        arrivals: need("arrivals", q.arrivals)?,
        interval_s: q.interval_s.unwrap_or(1800.0),
        aht_s: need("aht_s", q.aht_s)?,
        target_s: need("target_s", q.target_s)?,
        service_level: need("service_level", q.service_level)?,
        patience_s: q.patience_s,
        shrinkage: q.shrinkage.unwrap_or(0.0),
        max_occupancy: q.max_occupancy,
        concurrency: q.concurrency.unwrap_or(1),
    };
    let result = staffing::erlang::staff(&req).map_err(|e| {
        Problem::bad_request("invalid-parameter", e.to_string()).with_extra(json!({ "parameter": e.param() }))
    })?;
    let mut out: Value = serde_json::to_value(result).map_err(|e| Problem::internal(e.to_string()))?;
    out["request"] = serde_json::to_value(&req).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(axum::Json(out).into_response())
}
