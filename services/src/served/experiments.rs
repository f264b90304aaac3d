//! Experiment results as the API and the pages serve them: one request's
//! window and options ([`ResultsQuery`]), the answer computed from the
//! tenant's materialized exposures and conversations and kept while the
//! tenant's data keep their version ([`results`]), the background warm-up
//! ([`warm`]), and the typed reading of an answer the pages show
//! ([`ResultsView`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::Services;
use crate::error::ServiceError;
use crate::experiment::results::{self, DEFAULT_WINSORIZE_PERCENTILE, ResultsOptions, ResultsWindow};
use crate::experiment::store::{Experiment, State, timestamp};
use crate::keys::Role;
use crate::kpis::params::{Bound, local_midnight, parse_bound};
use crate::tenant::TenantId;

/// Roles that may read results.
pub const READERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Analyst, Role::Operations];

/// What one results request asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultsQuery {
    /// First exposures from (`YYYY-MM-DD` in the tenant's reporting time
    /// zone, or an RFC 3339 instant); by default the experiment's start.
    pub from: Option<Bound>,
    /// First exposures before; by default the stop, or now.
    pub to: Option<Bound>,
    /// Every metric, not only the primary and the guardrails.
    pub all_metrics: bool,
    /// Pooled percentile that caps order values.
    pub winsorize_percentile: f64,
}

/// A boolean query parameter: absent, `false` or `0` is false; `true`,
/// `1` or empty is true.
pub fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ServiceError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ServiceError::invalid_parameter(
            name,
            format!("must be true or false, got {other:?}"),
        )),
    }
}

impl ResultsQuery {
    /// `from`, `to`, `all_metrics` and `winsorize_percentile` of a query
    /// string; other parameters are not the query's business.
    pub fn from_params(params: &HashMap<String, String>) -> Result<Self, ServiceError> {
        let bound = |name: &str| {
            params
                .get(name)
                .map(|s| parse_bound(name, s).map_err(|e| ServiceError::invalid_parameter(name, e.detail)))
                .transpose()
        };
        let winsorize_percentile = match params.get("winsorize_percentile") {
            None => DEFAULT_WINSORIZE_PERCENTILE,
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|p| (50.0..=100.0).contains(p))
                .ok_or_else(|| {
                    ServiceError::invalid_parameter("winsorize_percentile", "must be a number in [50, 100], e.g. 99")
                })?,
        };
        Ok(Self {
            from: bound("from")?,
            to: bound("to")?,
            all_metrics: flag(params, "all_metrics")?,
            winsorize_percentile,
        })
    }

    /// The whole run with the default options.
    pub fn whole_run() -> Self {
        Self {
            winsorize_percentile: DEFAULT_WINSORIZE_PERCENTILE,
            ..Self::default()
        }
    }
}

/// The results of `experiment` for `query`: the same answer again while
/// the tenant's materialized data keep their version (GrowthBook and
/// Statsig likewise serve results snapshots; `computed_at` says when this
/// one was made).
pub async fn results(
    services: &Services,
    tenant: &TenantId,
    experiment: Experiment,
    query: &ResultsQuery,
) -> Result<Value, ServiceError> {
    let options = ResultsOptions {
        all_metrics: query.all_metrics,
        winsorize_percentile: query.winsorize_percentile,
        planned_duration_reached: experiment.planned_duration_reached(Utc::now()),
    };
    let window = window(services, tenant, &experiment, query).await?;
    let data = services.data_version(tenant).await?;
    let version = data.version;
    // Keyed on the window as asked, not as resolved: a running experiment's
    // window ends now, and would never be asked for twice.
    let asked = |b: Option<Bound>| {
        b.map(|b| match b {
            Bound::Date(d) => d.to_string(),
            Bound::Instant(t) => timestamp(t),
        })
    };
    let cache_key = serde_json::to_string(&json!([
        tenant.as_str(),
        experiment.key,
        experiment.version,
        asked(query.from),
        asked(query.to),
        options.all_metrics,
        options.winsorize_percentile,
        options.planned_duration_reached
    ]))
    .map_err(|e| ServiceError::failed("experiment results", e))?;
    if let Some(v) = version
        && let Some(answer) = services.experiment_results.get(&cache_key, v)
    {
        return Ok(answer);
    }
    let sql = results::units_sql(tenant.as_str(), &experiment.key, window);
    let ctx = services.served_session(tenant.as_str()).await?;
    let batches = async {
        let facts = results::facts_table(&ctx, tenant.as_str()).await?;
        ctx.register_table(results::FACTS_TABLE, std::sync::Arc::new(facts))?;
        sql.plan(&ctx).await?.collect().await
    }
    .await
    .map_err(|e| ServiceError::failed("experiment results query", e))?;
    let units = results::units_from_batches(&batches).map_err(|e| ServiceError::failed("experiment results", e))?;
    let mut out = tokio::task::spawn_blocking(move || results::analyze(&experiment, &units, options))
        .await
        .map_err(|e| ServiceError::failed("experiment results", e))?;
    out["tenant"] = json!(tenant.as_str());
    out["computed_at"] = json!(timestamp(Utc::now()));
    out["window"] = window.map_or(
        Value::Null,
        |w| json!({ "from": timestamp(w.from), "to": timestamp(w.to) }),
    );
    // Every batch acknowledged up to this `seq` is counted (scans read
    // the facts as they stood then or later).
    if let Some(seq) = data.as_of_seq {
        out["data_as_of"] = json!({ "seq": seq });
    }
    out["pre_period"] = window.map_or(Value::Null, |w| {
        let p = w.pre_period();
        json!({ "from": timestamp(p.from), "to": timestamp(p.to) })
    });
    if let Some(v) = version {
        services.experiment_results.insert(cache_key, v, out.clone());
    }
    Ok(out)
}

/// Computes the default results (the whole run) of every started
/// experiment of `tenant` whose cached answer is out of date, so that the
/// results pages find them ready: called by the background warm-up after
/// it refreshed the tenant's data.
pub async fn warm(services: &Services, tenant: &TenantId) {
    let Ok(experiments) = services.experiments.read(tenant.as_str(), |r| r.experiments.clone()) else {
        return;
    };
    for experiment in experiments {
        if !matches!(experiment.state, State::Running | State::Stopped) {
            continue;
        }
        let key = experiment.key.clone();
        if let Err(e) = results(services, tenant, experiment, &ResultsQuery::whole_run()).await {
            tracing::warn!(tenant = %tenant, experiment = %key, error = %e.detail, "background results failed");
        }
    }
}

/// `[from, to)` of a request: `from` / `to` as given (a date is local
/// midnight in the tenant's reporting time zone), by default the
/// experiment's start and its stop (or now). `None` for an experiment never
/// started and no `from`: every exposure counts and there is no pre-period.
async fn window(
    services: &Services,
    tenant: &TenantId,
    experiment: &Experiment,
    query: &ResultsQuery,
) -> Result<Option<ResultsWindow>, ServiceError> {
    let tz = if matches!(query.from, Some(Bound::Date(_))) || matches!(query.to, Some(Bound::Date(_))) {
        Some(services.load_settings(tenant).await?.tz())
    } else {
        None
    };
    let resolve = |b: Bound| match (b, &tz) {
        (Bound::Instant(t), _) => t,
        (Bound::Date(d), Some(tz)) => local_midnight(d, tz),
        (Bound::Date(d), None) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default(),
    };
    let stamp = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let Some(from) = query.from.map(resolve).or_else(|| stamp(&experiment.started_at)) else {
        return Ok(None);
    };
    // `to` is exclusive: one millisecond past the stop keeps its exposures.
    let to = query.to.map(resolve).unwrap_or_else(|| {
        stamp(&experiment.stopped_at).map_or_else(Utc::now, |t| t + chrono::Duration::milliseconds(1))
    });
    if to <= from {
        return Err(ServiceError::invalid_parameter(
            "to",
            format!("must be after from ({})", timestamp(from)),
        ));
    }
    Ok(Some(ResultsWindow { from, to }))
}

/// The parts of a results answer the pages show, read with their types: a
/// field renamed in [`results::analyze`] fails here (and in its test), it
/// does not show as 0.
#[derive(Debug, Clone, Deserialize)]
pub struct ResultsView {
    pub state: State,
    pub control: String,
    pub variants: Vec<VariantView>,
    #[serde(deserialize_with = "super::present")]
    pub srm: Option<SrmView>,
    pub metrics: Vec<MetricView>,
    #[serde(deserialize_with = "super::present")]
    pub decision: Option<DecisionView>,
    #[serde(deserialize_with = "super::present")]
    pub window: Option<WindowView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VariantView {
    pub key: String,
    pub weight: f64,
    pub units: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SrmView {
    pub chi_square: f64,
    pub p_value: f64,
    pub mismatch: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricView {
    pub metric: String,
    pub role: String,
    pub direction: experiments::decision::Direction,
    pub comparisons: Vec<ComparisonView>,
}

/// One treatment against the control: computed, or why not.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ComparisonView {
    Failed {
        variant: String,
        error: String,
    },
    Done {
        variant: String,
        #[serde(deserialize_with = "super::present")]
        control_mean: Option<f64>,
        #[serde(deserialize_with = "super::present")]
        treatment_mean: Option<f64>,
        #[serde(deserialize_with = "super::present")]
        absolute_lift: Option<f64>,
        #[serde(deserialize_with = "super::present")]
        absolute_ci: Option<[f64; 2]>,
        #[serde(deserialize_with = "super::present")]
        relative_lift: Option<f64>,
        #[serde(deserialize_with = "super::present")]
        relative_ci: Option<[f64; 2]>,
        #[serde(deserialize_with = "super::present")]
        p_value: Option<f64>,
        significant: bool,
        #[serde(deserialize_with = "super::present")]
        bayesian: Option<BayesView>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BayesView {
    #[serde(deserialize_with = "super::present")]
    pub chance_to_beat_control: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DecisionView {
    pub variant: String,
    pub verdict: experiments::decision::Verdict,
    pub explanation: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WindowView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ResultsView {
    /// Reads an answer of [`results`]; an error names what did not match.
    pub fn read(answer: &Value) -> Result<Self, ServiceError> {
        Self::deserialize(answer).map_err(|e| ServiceError::failed("reading experiment results", e))
    }

    /// Units counted across every arm.
    pub fn units(&self) -> u64 {
        self.variants.iter().map(|v| v.units).sum()
    }
}
