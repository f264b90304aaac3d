//! Benchmark of the experiment results computation: `--exposures`
//! exposed conversations (default 1,000,000) and 6 metrics.
//!
//! Builds synthetic `exposures` and `conversations` tables in memory with
//! the columns the results query reads (a customer has 1–4 exposed
//! conversations in the window and 0–3 in the CUPED pre-period; variant by
//! `experiments::assign_variant`; conversion +2 points in `friendly`), then
//! times, best of `--runs`:
//!
//! 1. `sql`: the route's two queries, [`experiment_results::facts_sql`]
//!    (collected into memory) and [`experiment_results::units_sql`] (window filter,
//!    exposure → conversation join, per-unit sums, pre-period join) in a
//!    default DataFusion session over in-memory tables split in one
//!    partition per core;
//! 2. `read`: [`experiment_results::units_from_batches`];
//! 3. `analyze`: [`experiment_results::analyze`] (6 metrics: conversion,
//!    CSAT, transfer, FRT, resolution, order value per customer; each with
//!    Welch / delta method, CUPED, mSPRT, Bayesian, Holm / BH, SRM, power).
//!
//! Not measured: building the `exposures` and `conversations` views from raw
//! events and reading Parquet (the lake's part, which the KPI benchmarks
//! cover).
//!
//! ```text
//! cargo run --release -p api --example results_bench -- --exposures 1000000 --runs 3
//! ```

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use services::experiment::results::{self as experiment_results, ResultsOptions, ResultsWindow};
use services::experiment::store::{ExperimentDefinition, Registry};

const TENANT: &str = "bench";
const KEY: &str = "greeting_v3";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Conversations {
    id: Vec<String>,
    customer: Vec<String>,
    started_us: Vec<i64>,
    converted: Vec<bool>,
    csat: Vec<Option<i32>>,
    csat_requested: Vec<bool>,
    resolved: Vec<bool>,
    transferred: Vec<bool>,
    bot_replies: Vec<i64>,
    frt: Vec<Option<f64>>,
    order: Vec<Option<f64>>,
}

impl Conversations {
    /// One conversation of a customer with propensity `p`.
    fn push(&mut self, rng: &mut Rng, customer: &str, at_us: i64, p: f64, lift: f64) -> String {
        let id = format!("conv_{}", self.id.len());
        let converted = rng.next() < p + lift;
        let requested = rng.next() < 0.6;
        let bot = rng.next() < 0.7;
        self.id.push(id.clone());
        self.customer.push(customer.to_string());
        self.started_us.push(at_us);
        self.converted.push(converted);
        self.csat_requested.push(requested);
        self.csat
            .push((requested && rng.next() < 0.4).then(|| 1 + (4.0 * (p + rng.next()) / 1.6).min(4.0) as i32));
        self.resolved.push(rng.next() < 0.5 + p);
        self.bot_replies
            .push(if bot { 1 + (3.0 * rng.next()) as i64 } else { 0 });
        self.transferred.push(bot && rng.next() < 0.3);
        self.frt
            .push((rng.next() < 0.95).then(|| 5.0 + 120.0 * rng.next() * rng.next()));
        self.order
            .push(converted.then(|| 20.0 + 80.0 * p + 300.0 * rng.next().powi(4)));
        id
    }

    fn batch(self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let n = self.id.len();
        let utc: Arc<str> = Arc::from("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("tenant_id", DataType::Utf8, false),
            Field::new("conversation_id", DataType::Utf8, false),
            Field::new("customer_id", DataType::Utf8, true),
            Field::new(
                "started_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
                true,
            ),
            Field::new("converted", DataType::Boolean, true),
            Field::new("csat_score", DataType::Int32, true),
            Field::new("csat_requested", DataType::Boolean, true),
            Field::new("is_resolved", DataType::Boolean, true),
            Field::new("transferred", DataType::Boolean, true),
            Field::new("bot_replies", DataType::Int64, true),
            Field::new("frt_s", DataType::Float64, true),
            Field::new("order_net_amount", DataType::Float64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![TENANT; n])),
            Arc::new(StringArray::from(self.id)),
            Arc::new(StringArray::from(self.customer)),
            Arc::new(TimestampMicrosecondArray::from(self.started_us).with_timezone(utc)),
            Arc::new(BooleanArray::from(self.converted)),
            Arc::new(Int32Array::from(self.csat)),
            Arc::new(BooleanArray::from(self.csat_requested)),
            Arc::new(BooleanArray::from(self.resolved)),
            Arc::new(BooleanArray::from(self.transferred)),
            Arc::new(Int64Array::from(self.bot_replies)),
            Arc::new(Float64Array::from(self.frt)),
            Arc::new(Float64Array::from(self.order)),
        ];
        RecordBatch::try_new(schema, columns)
    }
}

fn exposures_batch(rows: &[(String, String, String, i64)]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let utc: Arc<str> = Arc::from("UTC");
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("experiment_key", DataType::Utf8, false),
        Field::new("variant_key", DataType::Utf8, false),
        Field::new("unit_id", DataType::Utf8, true),
        Field::new("conversation_id", DataType::Utf8, true),
        Field::new("customer_id", DataType::Utf8, true),
        Field::new(
            "first_exposed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
            true,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![TENANT; n])),
        Arc::new(StringArray::from(vec![KEY; n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.3)).with_timezone(utc)),
    ];
    RecordBatch::try_new(schema, columns)
}

/// Splits a batch into `parts` slices so DataFusion can scan in parallel.
fn table(batch: RecordBatch, parts: usize) -> Result<MemTable, datafusion::error::DataFusionError> {
    let rows = batch.num_rows();
    let step = rows.div_ceil(parts.max(1)).max(1);
    let slices = (0..rows)
        .step_by(step)
        .map(|at| vec![batch.slice(at, step.min(rows - at))])
        .collect();
    MemTable::try_new(batch.schema(), slices)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut exposures = 1_000_000usize;
    let mut runs = 3usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--exposures" => exposures = value.parse()?,
            "--runs" => runs = value.parse()?,
            other => return Err(format!("unknown flag {other}; use --exposures N --runs N").into()),
        }
    }

    // Window: 14 days from 2026-03-15; pre-period: the 14 days before.
    let from: chrono::DateTime<chrono::Utc> = "2026-03-15T00:00:00Z".parse()?;
    let to: chrono::DateTime<chrono::Utc> = "2026-03-29T00:00:00Z".parse()?;
    let window = ResultsWindow { from, to };
    let (from_us, span_us) = (from.timestamp_micros(), (to - from).num_microseconds().unwrap_or(1));

    let t = Instant::now();
    let mut rng = Rng(42);
    let mut convs = Conversations::default();
    let mut exp_rows: Vec<(String, String, String, i64)> = Vec::with_capacity(exposures);
    let mut customer = 0usize;
    while exp_rows.len() < exposures {
        let id = format!("cus_{customer}");
        customer += 1;
        let variant = experiments::assign_variant(KEY, &id, &[0.5, 0.5]);
        let p = 0.05 + 0.25 * rng.next();
        let lift = if variant == 1 { 0.02 } else { 0.0 };
        for _ in 0..(4.0 * rng.next()) as usize {
            let at = from_us - span_us + (span_us as f64 * rng.next()) as i64;
            convs.push(&mut rng, &id, at, p, 0.0);
        }
        for _ in 0..1 + (4.0 * rng.next()) as usize {
            if exp_rows.len() == exposures {
                break;
            }
            let at = from_us + (span_us as f64 * rng.next()) as i64;
            let conv = convs.push(&mut rng, &id, at, p, lift);
            exp_rows.push((["control", "friendly"][variant].to_string(), id.clone(), conv, at));
        }
    }
    let conversations = convs.id.len();
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    ctx.register_table("exposures", Arc::new(table(exposures_batch(&exp_rows)?, parts)?))?;
    ctx.register_table("conversations", Arc::new(table(convs.batch()?, parts)?))?;
    drop(exp_rows);
    eprintln!(
        "generated {exposures} exposures of {customer} customers, {conversations} conversations in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let definition: ExperimentDefinition = serde_json::from_value(serde_json::json!({
        "key": KEY,
        "kind": "greeting",
        "variants": [{"key": "control", "weight": 1}, {"key": "friendly", "weight": 1}],
        "primary_metric": "conversion",
        "guardrail_metrics": ["csat", "transfer", "frt", "resolution", "order_value_per_customer"]
    }))?;
    let mut registry = Registry::default();
    let experiment = registry
        .create(definition, "bench", "2026-03-15T00:00:00Z")
        .map_err(|e| e.to_string())?
        .clone();
    let options = ResultsOptions {
        all_metrics: false,
        winsorize_percentile: experiment_results::DEFAULT_WINSORIZE_PERCENTILE,
        planned_duration_reached: false,
    };
    let sql = experiment_results::units_sql(TENANT, KEY, Some(window));
    let mut best = [f64::INFINITY; 4];
    let mut last = serde_json::Value::Null;
    let mut units_n = 0;
    for run in 1..=runs {
        let t0 = Instant::now();
        // As the route: the facts once into memory, then the units query.
        let facts = experiment_results::facts_table(&ctx, TENANT).await?;
        ctx.deregister_table(experiment_results::FACTS_TABLE)?;
        ctx.register_table(experiment_results::FACTS_TABLE, Arc::new(facts))?;
        let batches = sql.plan(&ctx).await?.collect().await?;
        let t1 = Instant::now();
        let units = experiment_results::units_from_batches(&batches)?;
        let t2 = Instant::now();
        let out = experiment_results::analyze(&experiment, &units, options);
        let t3 = Instant::now();
        let times = [t1 - t0, t2 - t1, t3 - t2, t3 - t0].map(|d| d.as_secs_f64());
        eprintln!(
            "run {run}: sql {:.3} s, read {:.3} s, analyze {:.3} s, total {:.3} s ({} units)",
            times[0],
            times[1],
            times[2],
            times[3],
            units.len()
        );
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
        units_n = units.len();
        last = out;
    }
    let metrics = last["metrics"].as_array().map_or(0, Vec::len);
    println!(
        "{}",
        serde_json::json!({
            "exposures": exposures,
            "units": units_n,
            "conversations_in_tables": conversations,
            "metrics": metrics,
            "threads": parts,
            "runs": runs,
            "best_sql_s": best[0],
            "best_read_s": best[1],
            "best_analyze_s": best[2],
            "best_total_s": best[3],
            "decision": last["decision"]["explanation"],
            "conversion_cuped_variance_reduction": last["metrics"][0]["comparisons"][0]["cuped"]["variance_reduction"],
        })
    );
    Ok(())
}
