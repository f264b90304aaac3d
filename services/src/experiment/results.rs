//! Experiment results: exposures joined with conversation facts in SQL,
//! aggregated per randomization unit, then compared variant against control
//! with `experiments::stats` and judged by `experiments::decision`.
//!
//! # Units and metrics
//!
//! The unit is the exposure's `unit_id` (the customer by default). One SQL
//! query returns one row per unit with the sums of its exposed
//! conversations; everything after that is pure ([`analyze`]), so it is unit
//! tested without a lake.
//!
//! - Per-conversation metrics (conversion, CSAT mean, top-2 box, CSAT
//!   response rate, resolution, transfer, FRT) are ratios of per-unit sums
//!   `Σx / Σy` (e.g. converted conversations / conversations); customers are
//!   randomized, not conversations, so they use the delta method
//!   ([`stats::ratio_delta_test`]). `n` is the number of units with a
//!   non-zero denominator; `denominator` the conversations behind it.
//! - `order_value_per_customer` is a per-unit mean: attributed net order
//!   value of the unit's exposed conversations, winsorized at a pooled
//!   percentile (default 99th) and compared with Welch's t-test.
//!
//! # Window and CUPED
//!
//! A request analyses the units first exposed in `[from, to)` (by default
//! the experiment's start to its stop, or now). Every comparison also
//! carries a `cuped` reading: the same metric of the unit's customer in the
//! pre-period, the window of equal length just before `from`, as covariate
//! (Deng et al. 2013), with `θ` from the pooled covariance of both arms;
//! ratio metrics are linearized by the delta method first
//! ([`stats::cuped_ratio_delta_test`]), order value per customer uses
//! [`stats::cuped_welch_t_test`] on values winsorized like the plain ones.
//! It reports the adjusted lift, intervals, p-value, the always-valid
//! sequential figures and the variance reduction. The decision stays on the
//! plain estimates: CUPED is unbiased only when the pre-period precedes the
//! treatment, which an explicit `from` after the start would break.
//!
//! # Exclusions
//!
//! Units seen in more than one variant (broken assignment or a changed
//! split) and exposures naming a variant the definition does not know are
//! left out and counted in `excluded`; the sample-ratio check then shows
//! whether that hurt the split.
//!
//! # Decision
//!
//! Per treatment variant, [`decide`] gets the primary metric with its
//! always-valid (mSPRT) interval, so looking every day is safe, and the
//! guardrails with Bonferroni-level intervals (`alpha / guardrails`), the
//! interval form of Holm's first step. The experiment's decision is the
//! shipping variant with the largest primary improvement, else the first
//! treatment's verdict.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use chrono::{DateTime, Utc};
use datafusion::scalar::ScalarValue;
use experiments::decision::{Decision, DecisionInput, Direction, MetricReading, Reason, Verdict, decide};
use experiments::stats::{
    self, ArmSummary, BivariateSummary, Comparison, CupedResult, RatioUnit, SequentialResult, StatsError,
};
use serde_json::{Value, json};
use warehouse::statement::Statement;

use crate::experiment::store::{Experiment, Metric};

/// Default pooled percentile at which order values are capped.
pub const DEFAULT_WINSORIZE_PERCENTILE: f64 = 99.0;

/// Power the minimum detectable effect is reported for.
pub const MDE_POWER: f64 = 0.8;

/// The sums of one unit's exposed conversations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitOutcome {
    pub variant: String,
    /// Variants this unit was exposed to (more than one excludes it).
    pub variant_count: u64,
    pub conversations: f64,
    pub converted: f64,
    pub csat_scored: f64,
    pub csat_sum: f64,
    pub csat_top2: f64,
    pub csat_requested: f64,
    pub csat_answered: f64,
    pub resolved: f64,
    pub bot_conversations: f64,
    pub transferred: f64,
    pub frt_count: f64,
    pub frt_sum: f64,
    pub order_value: f64,
    /// The same sums over the unit's customer's conversations in the
    /// pre-period (CUPED covariate); `None` when it had none there.
    pub pre: Option<Box<UnitOutcome>>,
}

impl UnitOutcome {
    /// Numerator and denominator of a ratio metric; `None` for per-unit means.
    fn ratio(&self, metric: Metric) -> Option<(f64, f64)> {
        Some(match metric {
            Metric::Conversion => (self.converted, self.conversations),
            Metric::Csat => (self.csat_sum, self.csat_scored),
            Metric::CsatTop2 => (self.csat_top2, self.csat_scored),
            Metric::CsatResponseRate => (self.csat_answered, self.csat_requested),
            Metric::Resolution => (self.resolved, self.conversations),
            Metric::Transfer => (self.transferred, self.bot_conversations),
            Metric::Frt => (self.frt_sum, self.frt_count),
            Metric::OrderValuePerCustomer => return None,
        })
    }
}

/// The analysed window of a results request, `[from, to)` on the
/// exposure's first time; the CUPED pre-period is the window of the same
/// length just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultsWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ResultsWindow {
    /// `[from − (to − from), from)`.
    pub fn pre_period(&self) -> ResultsWindow {
        ResultsWindow {
            from: self.from - (self.to - self.from),
            to: self.from,
        }
    }
}

fn ts_param(t: DateTime<Utc>) -> ScalarValue {
    warehouse::statement::utc_micros(t.timestamp_micros())
}

/// Per-unit sums over the conversation facts `f` of one group, each column
/// named `{prefix}{name}`.
fn sums_sql(prefix: &str) -> String {
    let flag = |cond: &str| format!("CAST(coalesce(sum(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS DOUBLE)");
    let columns = [
        ("conversations", "CAST(count(f.conversation_id) AS DOUBLE)".to_string()),
        ("converted", flag("f.converted")),
        ("csat_scored", "CAST(count(f.csat_score) AS DOUBLE)".into()),
        (
            "csat_sum",
            "CAST(coalesce(sum(CAST(f.csat_score AS DOUBLE)), 0) AS DOUBLE)".into(),
        ),
        ("csat_top2", flag("f.csat_score >= 4")),
        ("csat_requested", flag("f.csat_requested")),
        ("csat_answered", flag("f.csat_requested AND f.csat_score IS NOT NULL")),
        ("resolved", flag("f.is_resolved")),
        ("bot_conversations", flag("f.bot_replies > 0")),
        ("transferred", flag("f.transferred AND f.bot_replies > 0")),
        ("frt_count", "CAST(count(f.frt_s) AS DOUBLE)".into()),
        (
            "frt_sum",
            "CAST(coalesce(sum(CAST(f.frt_s AS DOUBLE)), 0) AS DOUBLE)".into(),
        ),
        (
            "order_value",
            "CAST(coalesce(sum(CAST(f.order_net_amount AS DOUBLE)), 0) AS DOUBLE)".into(),
        ),
    ];
    columns
        .iter()
        .map(|(name, expr)| format!("{expr} AS {prefix}{name}"))
        .collect::<Vec<_>>()
        .join(",\n            ")
}

/// Column names of [`sums_sql`], in [`UnitOutcome`] order.
const SUM_COLUMNS: [&str; 13] = [
    "conversations",
    "converted",
    "csat_scored",
    "csat_sum",
    "csat_top2",
    "csat_requested",
    "csat_answered",
    "resolved",
    "bot_conversations",
    "transferred",
    "frt_count",
    "frt_sum",
    "order_value",
];

/// Name under which the caller registers the result of [`facts_sql`]
/// before running [`units_sql`]: the conversations view is computed once
/// (DataFusion inlines a CTE at every reference, and the query reads the
/// facts twice: exposed conversations and the pre-period).
pub const FACTS_TABLE: &str = "experiment_facts";

/// The tenant's conversation facts the results read.
pub fn facts_sql(tenant: &str) -> Statement {
    Statement {
        sql: "SELECT conversation_id, customer_id, started_at, converted, csat_score, csat_requested, is_resolved,
                transferred, bot_replies, frt_s, order_net_amount
         FROM conversations
         WHERE tenant_id = $1"
            .into(),
        params: vec![ScalarValue::from(tenant)],
    }
}

/// Runs [`facts_sql`] and keeps its rows in memory, to be registered as
/// [`FACTS_TABLE`].
pub async fn facts_table(
    ctx: &datafusion::prelude::SessionContext,
    tenant: &str,
) -> datafusion::error::Result<datafusion::datasource::MemTable> {
    let df = facts_sql(tenant).plan(ctx).await?;
    let planned = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    // The batches may differ from the planned schema in nullability or
    // metadata; the table takes theirs.
    let schema = batches.first().map_or(planned, |b| b.schema());
    datafusion::datasource::MemTable::try_new(schema, vec![batches])
}

/// The statement that yields one row per unit from the exposures view and
/// [`FACTS_TABLE`].
///
/// With a `window`, only units first exposed in it count (each unit's
/// exposed conversations in it), and the `pre_*` columns sum the
/// conversations its customer started in [`ResultsWindow::pre_period`]:
/// the CUPED covariate, the same metric before the experiment.
pub fn units_sql(tenant: &str, key: &str, window: Option<ResultsWindow>) -> Statement {
    let mut params = vec![ScalarValue::from(tenant), ScalarValue::from(key)];
    let filter = window.map_or(String::new(), |w| {
        params.extend([ts_param(w.from), ts_param(w.to)]);
        " AND first_exposed_at >= $3 AND first_exposed_at < $4".to_string()
    });
    let (pre_cte, pre_columns, pre_join) = match window.map(|w| w.pre_period()) {
        None => (String::new(), String::new(), String::new()),
        Some(p) => (
            {
                params.extend([ts_param(p.from), ts_param(p.to)]);
                format!(
                    ",
        pre AS (
            SELECT u.unit_id,
            {sums}
            FROM units u
            JOIN facts f ON f.customer_id = u.customer_id
            WHERE f.started_at >= $5 AND f.started_at < $6
            GROUP BY u.unit_id
        )",
                    sums = sums_sql("pre_"),
                )
            },
            SUM_COLUMNS.iter().map(|c| format!(", pre.pre_{c}")).collect::<String>(),
            "LEFT JOIN pre ON pre.unit_id = post.unit_id".to_string(),
        ),
    };
    let sql = format!(
        "WITH exp AS (
            SELECT variant_key, unit_id, conversation_id, customer_id
            FROM exposures
            WHERE tenant_id = $1 AND experiment_key = $2 AND unit_id IS NOT NULL{filter}
        ),
        units AS (
            SELECT unit_id, min(variant_key) AS variant_key, count(DISTINCT variant_key) AS variant_count,
                   min(customer_id) AS customer_id
            FROM exp GROUP BY unit_id
        ),
        unit_convs AS (
            SELECT DISTINCT unit_id, conversation_id FROM exp WHERE conversation_id IS NOT NULL
        ),
        facts AS (SELECT * FROM {FACTS_TABLE}),
        post AS (
            SELECT u.unit_id, u.variant_key, CAST(u.variant_count AS DOUBLE) AS variant_count,
            {sums}
            FROM units u
            LEFT JOIN unit_convs c ON c.unit_id = u.unit_id
            LEFT JOIN facts f ON f.conversation_id = c.conversation_id
            GROUP BY u.unit_id, u.variant_key, u.variant_count
        ){pre_cte}
        SELECT post.*{pre_columns}
        FROM post {pre_join}",
        sums = sums_sql(""),
    );
    Statement { sql, params }
}

/// Reads the rows of [`units_sql`].
pub fn units_from_batches(batches: &[RecordBatch]) -> Result<Vec<UnitOutcome>, String> {
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| -> Result<std::sync::Arc<dyn Array>, String> {
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| format!("results query lacks column {name}"))?;
            arrow::compute::cast(array, &DataType::Float64).map_err(|e| e.to_string())
        };
        let variants = batch
            .column_by_name("variant_key")
            .ok_or("results query lacks column variant_key")?;
        let variants = arrow::compute::cast(variants, &DataType::Utf8).map_err(|e| e.to_string())?;
        let variants = variants.as_string::<i32>();
        let mut names = vec!["variant_count".to_string()];
        names.extend(SUM_COLUMNS.iter().map(|c| c.to_string()));
        let has_pre = batch.column_by_name("pre_conversations").is_some();
        if has_pre {
            names.extend(SUM_COLUMNS.iter().map(|c| format!("pre_{c}")));
        }
        let columns = names.iter().map(|n| column(n)).collect::<Result<Vec<_>, _>>()?;
        let floats: Vec<_> = columns.iter().map(|c| c.as_primitive::<Float64Type>()).collect();
        for row in 0..batch.num_rows() {
            let v = |i: usize| {
                if floats[i].is_null(row) {
                    0.0
                } else {
                    floats[i].value(row)
                }
            };
            let sums = |at: usize| UnitOutcome {
                conversations: v(at),
                converted: v(at + 1),
                csat_scored: v(at + 2),
                csat_sum: v(at + 3),
                csat_top2: v(at + 4),
                csat_requested: v(at + 5),
                csat_answered: v(at + 6),
                resolved: v(at + 7),
                bot_conversations: v(at + 8),
                transferred: v(at + 9),
                frt_count: v(at + 10),
                frt_sum: v(at + 11),
                order_value: v(at + 12),
                ..UnitOutcome::default()
            };
            let pre = (has_pre && v(14) > 0.0).then(|| Box::new(sums(14)));
            out.push(UnitOutcome {
                variant: if variants.is_null(row) {
                    String::new()
                } else {
                    variants.value(row).to_string()
                },
                variant_count: v(0) as u64,
                pre,
                ..sums(1)
            });
        }
    }
    Ok(out)
}

/// Options of one results request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultsOptions {
    /// Report every metric, not only the primary and guardrails (the extra
    /// ones join the Holm / BH family).
    pub all_metrics: bool,
    /// Pooled percentile for capping order values.
    pub winsorize_percentile: f64,
    /// Whether the planned duration has elapsed.
    pub planned_duration_reached: bool,
}

/// One arm's data for one metric.
#[derive(Debug, Clone)]
enum ArmData {
    Ratio(BivariateSummary),
    Mean(ArmSummary),
}

impl ArmData {
    fn n(&self) -> u64 {
        match self {
            ArmData::Ratio(s) => s.n,
            ArmData::Mean(s) => s.n,
        }
    }
}

fn compare_arms(control: &ArmData, treatment: &ArmData, alpha: f64) -> Result<Comparison, StatsError> {
    match (control, treatment) {
        (ArmData::Ratio(c), ArmData::Ratio(t)) => stats::ratio_delta_test(c, t, alpha),
        (ArmData::Mean(c), ArmData::Mean(t)) => stats::welch_t_test(c, t, alpha),
        _ => Err(StatsError::InvalidInput {
            field: "metric",
            reason: "arms of different kinds".into(),
        }),
    }
}

/// Everything computed for one metric.
#[derive(Debug)]
struct MetricData {
    metric: Metric,
    role: &'static str,
    arms: Vec<ArmData>,
    /// Per arm: n, Σ denominator (conversations, or units for means), mean.
    arm_json: Vec<Value>,
    /// Winsorizing cap (order value only).
    cap: Option<f64>,
    /// Per arm: the CUPED data (metric with its pre-period value).
    cuped: Vec<CupedArm>,
    /// Per arm: units with pre-period conversations.
    pre_units: Vec<u64>,
}

/// One arm's CUPED data for one metric.
#[derive(Debug, Clone)]
enum CupedArm {
    Ratio(Vec<RatioUnit>),
    Mean(BivariateSummary),
}

fn cuped_arms(control: &CupedArm, treatment: &CupedArm, alpha: f64) -> Result<CupedResult, StatsError> {
    match (control, treatment) {
        (CupedArm::Ratio(c), CupedArm::Ratio(t)) => stats::cuped_ratio_delta_test(c, t, alpha),
        (CupedArm::Mean(c), CupedArm::Mean(t)) => stats::cuped_welch_t_test(c, t, alpha),
        _ => Err(StatsError::InvalidInput {
            field: "metric",
            reason: "arms of different kinds".into(),
        }),
    }
}

/// The CUPED reading reported next to the plain one.
fn cuped_json(d: &MetricData, control: usize, t: usize, alpha: f64) -> Value {
    let pre_units = json!({ "control": d.pre_units[control], "treatment": d.pre_units[t] });
    match cuped_arms(&d.cuped[control], &d.cuped[t], alpha) {
        Ok(r) => {
            let mut v = serde_json::to_value(r.comparison).unwrap_or(Value::Null);
            v["theta"] = json!(r.theta);
            v["variance_reduction"] = json!(r.variance_reduction);
            v["units_with_pre_period"] = pre_units;
            v["sequential"] = stats::msprt_from_comparison(&r.comparison, None)
                .ok()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or(Value::Null);
            v["significant"] = json!(r.comparison.p_value < alpha);
            v
        }
        Err(e) => json!({ "error": e.to_string(), "units_with_pre_period": pre_units }),
    }
}

/// The full results document.
pub fn analyze(experiment: &Experiment, units: &[UnitOutcome], options: ResultsOptions) -> Value {
    let def = &experiment.definition;
    let alpha = def.alpha;
    let index: HashMap<&str, usize> = def
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| (v.key.as_str(), i))
        .collect();
    let control = index.get(def.control_key()).copied().unwrap_or(0);
    let treatments: Vec<usize> = (0..def.variants.len()).filter(|&i| i != control).collect();

    // Units per arm, after exclusions.
    let mut per_arm: Vec<Vec<&UnitOutcome>> = vec![Vec::new(); def.variants.len()];
    let (mut several, mut unknown) = (0u64, 0u64);
    for unit in units {
        if unit.variant_count > 1 {
            several += 1;
        } else if let Some(&i) = index.get(unit.variant.as_str()) {
            per_arm[i].push(unit);
        } else {
            unknown += 1;
        }
    }
    let observed: Vec<u64> = per_arm.iter().map(|a| a.len() as u64).collect();
    let srm = stats::sample_ratio_mismatch(&observed, &def.weights()).ok();

    // Metrics: primary, guardrails, then (optionally) the rest.
    let Some(primary) = def.primary() else {
        return json!({ "error": "the definition has no valid primary metric" });
    };
    let guardrails = def.guardrails();
    let mut metrics: Vec<(Metric, &'static str)> = vec![(primary, "primary")];
    metrics.extend(guardrails.iter().map(|&m| (m, "guardrail")));
    if options.all_metrics {
        metrics.extend(
            Metric::ALL
                .into_iter()
                .filter(|m| *m != primary && !guardrails.contains(m))
                .map(|m| (m, "secondary")),
        );
    }
    let data: Vec<MetricData> = metrics
        .iter()
        .map(|&(metric, role)| metric_data(metric, role, &per_arm, options.winsorize_percentile))
        .collect();

    // Fixed-horizon comparisons of every (metric, treatment), then the
    // multiple-testing family over all of them.
    let comparisons: Vec<Vec<Result<Comparison, StatsError>>> = data
        .iter()
        .map(|d| {
            treatments
                .iter()
                .map(|&t| compare_arms(&d.arms[control], &d.arms[t], alpha))
                .collect()
        })
        .collect();
    let family: Vec<f64> = comparisons
        .iter()
        .flatten()
        .filter_map(|c| c.as_ref().ok().map(|c| c.p_value))
        .collect();
    let holm = stats::holm(&family).unwrap_or_default();
    let bh = stats::benjamini_hochberg(&family).unwrap_or_default();
    let mut family_at = 0;

    let control_mean =
        |d: &MetricData| -> f64 { d.arm_json[control].get("mean").and_then(Value::as_f64).unwrap_or(0.0) };
    let mut metrics_json = Vec::new();
    for (d, row) in data.iter().zip(&comparisons) {
        let higher = d.metric.direction() == Direction::HigherIsBetter;
        let useful = minimum_useful_effect(experiment, d.metric, control_mean(d));
        let mut cmp_json = Vec::new();
        for (&t, result) in treatments.iter().zip(row) {
            let variant = &def.variants[t].key;
            match result {
                Ok(c) => {
                    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                    v["variant"] = json!(variant);
                    v["sequential"] = stats::msprt_from_comparison(c, None)
                        .ok()
                        .and_then(|s| serde_json::to_value(s).ok())
                        .unwrap_or(Value::Null);
                    v["bayesian"] = stats::bayesian_from_comparison(c, higher)
                        .ok()
                        .and_then(|b| serde_json::to_value(b).ok())
                        .unwrap_or(Value::Null);
                    v["p_value_holm"] = json!(holm.get(family_at));
                    v["p_value_bh"] = json!(bh.get(family_at));
                    family_at += 1;
                    v["minimum_useful_effect"] = json!(useful);
                    v["power_at_minimum_useful_effect"] =
                        json!(stats::power_from_standard_error(useful, c.standard_error, alpha).ok());
                    v["mde"] = json!(mde(c.standard_error, alpha));
                    v["significant"] = json!(c.p_value < alpha);
                    v["cuped"] = cuped_json(d, control, t, alpha);
                    cmp_json.push(v);
                }
                Err(e) => cmp_json.push(json!({ "variant": variant, "error": e.to_string() })),
            }
        }
        let mut m = json!({
            "metric": d.metric.as_str(),
            "role": d.role,
            "direction": d.metric.direction(),
            "method": if matches!(d.arms.first(), Some(ArmData::Mean(_))) { "welch_t" } else { "delta_ratio" },
            "variants": d.arm_json,
            "comparisons": cmp_json,
        });
        if let Some(cap) = d.cap {
            m["winsorized"] = json!({ "percentile": options.winsorize_percentile, "cap": cap });
        }
        metrics_json.push(m);
    }

    // Decisions per treatment, then the experiment's.
    let srm_p = srm.map_or(f64::NAN, |s| s.p_value);
    let g = guardrails.len().max(1) as f64;
    let mut decisions: Vec<(usize, Decision, f64)> = Vec::new();
    for (pos, &t) in treatments.iter().enumerate() {
        let variant = def.variants[t].key.clone();
        let primary_data = &data[0];
        let decision = match &comparisons[0][pos] {
            Err(e) => (
                Decision {
                    verdict: Verdict::KeepRunning,
                    reason: Reason::BelowMinimumSample,
                    explanation: format!(
                        "Keep running: {variant} has {} and control {} units with data for {}, too few to compare ({e}); {} per variant are needed before deciding.",
                        primary_data.arms[t].n(),
                        primary_data.arms[control].n(),
                        primary.as_str(),
                        def.min_sample_per_variant
                    ),
                },
                0.0,
            ),
            Ok(c) => {
                let reading = |d: &MetricData, cmp: Comparison, sequential: Option<SequentialResult>, useful: f64| {
                    MetricReading {
                        name: d.metric.as_str().replace('_', " "),
                        scale: d.metric.scale(),
                        direction: d.metric.direction(),
                        comparison: cmp,
                        sequential,
                        minimum_useful_effect: useful,
                    }
                };
                let useful = minimum_useful_effect(experiment, primary, control_mean(primary_data));
                let primary_reading = reading(primary_data, *c, stats::msprt_from_comparison(c, None).ok(), useful);
                let guardrail_readings = data[1..=guardrails.len()]
                    .iter()
                    .filter_map(|d| {
                        let cmp = compare_arms(&d.arms[control], &d.arms[t], alpha / g).ok()?;
                        let seq = stats::msprt_from_comparison(&cmp, None).ok();
                        Some(reading(d, cmp, seq, 1.0))
                    })
                    .collect();
                let input = DecisionInput {
                    variant: variant.clone(),
                    primary: primary_reading,
                    guardrails: guardrail_readings,
                    srm_p_value: srm_p,
                    min_sample_per_variant: def.min_sample_per_variant,
                    planned_duration_reached: options.planned_duration_reached,
                };
                let good_lift = if primary.direction() == Direction::HigherIsBetter {
                    c.absolute_lift
                } else {
                    -c.absolute_lift
                };
                (decide(&input), good_lift)
            }
        };
        decisions.push((t, decision.0, decision.1));
    }
    let overall = decisions
        .iter()
        .filter(|(_, d, _)| d.verdict == Verdict::Ship)
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .or_else(|| decisions.first());

    let decision_json = |(t, d, _): &(usize, Decision, f64)| {
        json!({
            "variant": def.variants[*t].key,
            "verdict": d.verdict,
            "reason": d.reason,
            "explanation": d.explanation,
        })
    };
    json!({
        "experiment": experiment.key,
        "version": experiment.version,
        "state": experiment.state,
        "control": def.variants[control].key,
        "alpha": alpha,
        "min_sample_per_variant": def.min_sample_per_variant,
        "assignment_algorithm": experiments::ALGORITHM_VERSION,
        "variants": def.variants.iter().enumerate().map(|(i, v)| json!({
            "key": v.key,
            "weight": v.weight,
            "units": observed[i],
            "conversations": per_arm[i].iter().map(|u| u.conversations).sum::<f64>(),
        })).collect::<Vec<_>>(),
        "excluded": { "units_in_several_variants": several, "units_in_unknown_variants": unknown },
        "srm": srm,
        "metrics": metrics_json,
        "decision": overall.map(decision_json),
        "decisions": decisions.iter().map(decision_json).collect::<Vec<_>>(),
        "decision_rules": {
            "primary": "always-valid mSPRT interval at alpha",
            "guardrails": format!("mSPRT intervals at alpha / {} guardrail(s) (Bonferroni)", guardrails.len()),
            "srm_blocks_below": stats::SRM_P_THRESHOLD,
        },
    })
}

fn minimum_useful_effect(experiment: &Experiment, metric: Metric, control_mean: f64) -> f64 {
    match experiment.definition.minimum_useful_effect {
        Some(m) if Some(metric) == experiment.definition.primary() => m,
        _ => metric.default_minimum_useful_effect(control_mean),
    }
}

/// Minimum detectable effect at [`MDE_POWER`] for an estimate with this
/// standard error: `(z_{1−α/2} + z_{power}) · SE`.
fn mde(standard_error: f64, alpha: f64) -> Option<f64> {
    let z = stats::dist::normal_quantile(1.0 - alpha / 2.0) + stats::dist::normal_quantile(MDE_POWER);
    (standard_error.is_finite() && standard_error > 0.0).then_some(z * standard_error)
}

fn metric_data(metric: Metric, role: &'static str, per_arm: &[Vec<&UnitOutcome>], percentile: f64) -> MetricData {
    if metric == Metric::OrderValuePerCustomer {
        let mut values: Vec<Vec<f64>> = per_arm
            .iter()
            .map(|arm| arm.iter().map(|u| u.order_value).collect())
            .collect();
        let slices: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let cap = stats::pooled_cap(&slices, percentile).ok();
        if let Some(cap) = cap {
            for arm in &mut values {
                stats::winsorize(arm, cap);
            }
        }
        // The covariate: the same per-customer value in the pre-period (0
        // without pre-period conversations), capped at its own pooled
        // percentile.
        let mut pre_values: Vec<Vec<f64>> = per_arm
            .iter()
            .map(|arm| {
                arm.iter()
                    .map(|u| u.pre.as_ref().map_or(0.0, |p| p.order_value))
                    .collect()
            })
            .collect();
        let pre_slices: Vec<&[f64]> = pre_values.iter().map(Vec::as_slice).collect();
        if let Ok(pre_cap) = stats::pooled_cap(&pre_slices, percentile) {
            for arm in &mut pre_values {
                stats::winsorize(arm, pre_cap);
            }
        }
        let cuped = values
            .iter()
            .zip(&pre_values)
            .map(|(y, x)| {
                let pairs: Vec<(f64, f64)> = x.iter().copied().zip(y.iter().copied()).collect();
                CupedArm::Mean(BivariateSummary::from_pairs(&pairs))
            })
            .collect();
        let pre_units = per_arm
            .iter()
            .map(|arm| arm.iter().filter(|u| u.pre.is_some()).count() as u64)
            .collect();
        let arms: Vec<ArmData> = values
            .iter()
            .map(|v| ArmData::Mean(ArmSummary::from_values(v)))
            .collect();
        let arm_json = arms
            .iter()
            .map(|a| match a {
                ArmData::Mean(s) => json!({ "n": s.n, "denominator": s.n, "mean": (s.n > 0).then(|| s.mean()) }),
                ArmData::Ratio(_) => Value::Null,
            })
            .collect();
        return MetricData {
            metric,
            role,
            arms,
            arm_json,
            cap,
            cuped,
            pre_units,
        };
    }
    // Units with a non-zero denominator, with their pre-period ratio parts
    // (0 / 0 without pre-period data: a zero linearized covariate).
    let ratio_units: Vec<Vec<RatioUnit>> = per_arm
        .iter()
        .map(|arm| {
            arm.iter()
                .filter_map(|u| {
                    let (x, y) = u.ratio(metric)?;
                    let (px, py) = u.pre.as_ref().and_then(|p| p.ratio(metric)).unwrap_or((0.0, 0.0));
                    (y > 0.0).then_some(RatioUnit {
                        numerator: x,
                        denominator: y,
                        pre_numerator: px,
                        pre_denominator: py,
                    })
                })
                .collect()
        })
        .collect();
    let arms: Vec<ArmData> = ratio_units
        .iter()
        .map(|units| {
            let mut s = BivariateSummary {
                n: units.len() as u64,
                sum_x: 0.0,
                sum_y: 0.0,
                sum_x2: 0.0,
                sum_y2: 0.0,
                sum_xy: 0.0,
            };
            for u in units {
                let (x, y) = (u.numerator, u.denominator);
                s.sum_x += x;
                s.sum_y += y;
                s.sum_x2 += x * x;
                s.sum_y2 += y * y;
                s.sum_xy += x * y;
            }
            ArmData::Ratio(s)
        })
        .collect();
    let pre_units = ratio_units
        .iter()
        .map(|units| units.iter().filter(|u| u.pre_denominator > 0.0).count() as u64)
        .collect();
    let arm_json = arms
        .iter()
        .map(|a| match a {
            ArmData::Ratio(s) => json!({
                "n": s.n,
                "denominator": s.sum_y,
                "mean": (s.sum_y > 0.0).then(|| s.sum_x / s.sum_y),
            }),
            ArmData::Mean(_) => Value::Null,
        })
        .collect();
    MetricData {
        metric,
        role,
        arms,
        arm_json,
        cap: None,
        cuped: ratio_units.into_iter().map(CupedArm::Ratio).collect(),
        pre_units,
    }
}

#[cfg(test)]
mod tests;
