//! The optimization analyses as tables: each runs a documented query of
//! `sql/analyses/` (pinned by `sql/tests/analyses_*.slt`) over a tenant
//! snapshot with the window as parameters, then adds what SQL alone does
//! not: t intervals of CSAT means, the best and worst script per kind, the
//! full weekday × hour grid of traffic, and each channel tested against
//! the rest of the tenant. The tag pairs of the bottlenecks are counted
//! from the KPI rollup ([`pairs_table`]), measured as the query does.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use experiments::stats::dist::t_quantile;
use experiments::stats::{ArmSummary, Comparison, two_proportion_z_test, welch_t_test};
use serde_json::{Map, Value, json};

use crate::error::ServiceError;
use crate::kpis::params::Window;

fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    ServiceError::failed("KPI query failed", e)
}

/// Significance level of the channel comparisons.
pub const ALPHA: f64 = 0.05;

/// A query result as columns and rows of JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// From the `{"columns": [{"name"}], "rows": [[...]]}` of
    /// [`warehouse::format::to_json`].
    pub fn from_result_json(v: &Value) -> Table {
        let columns = v["columns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let rows = v["rows"]
            .as_array()
            .map(|rows| rows.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect())
            .unwrap_or_default();
        Table { columns, rows }
    }

    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The value of `column` in `row` (NULL when there is no such column).
    pub fn cell<'a>(&self, row: &'a [Value], column: &str) -> &'a Value {
        static NULL: Value = Value::Null;
        self.index(column).and_then(|i| row.get(i)).unwrap_or(&NULL)
    }

    /// Adds a column right after `after` (at the end when there is none).
    pub fn insert_column(&mut self, after: &str, name: &str, values: Vec<Value>) {
        let at = self.index(after).map_or(self.columns.len(), |i| i + 1);
        self.columns.insert(at, name.to_string());
        for (row, v) in self.rows.iter_mut().zip(values) {
            row.insert(at.min(row.len()), v);
        }
    }

    pub fn push_column(&mut self, name: &str, values: Vec<Value>) {
        self.columns.push(name.to_string());
        for (row, v) in self.rows.iter_mut().zip(values) {
            row.push(v);
        }
    }

    pub fn object(&self, row: &[Value]) -> Value {
        Value::Object(
            self.columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect::<Map<String, Value>>(),
        )
    }

    pub fn objects(&self) -> Value {
        Value::Array(self.rows.iter().map(|r| self.object(r)).collect())
    }
}

/// Runs an analysis query with the window as `$1`, `$2` and `min_count`
/// (if any) as `$3`.
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    window: &Window,
    min_count: Option<i64>,
) -> Result<Table, ServiceError> {
    let mut values = crate::kpis::lake::window_params(window);
    if let Some(n) = min_count {
        values.push(ScalarValue::Int64(Some(n)));
    }
    let df = ctx
        .sql(sql)
        .await
        .map_err(internal)?
        .with_param_values(values)
        .map_err(internal)?;
    let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(internal)?;
    let v = warehouse::format::to_json(&schema, &batches).map_err(internal)?;
    Ok(Table::from_result_json(&v))
}

pub fn analysis_sql(name: &str) -> Result<&'static str, ServiceError> {
    warehouse::views::analysis_sql(name)
        .ok_or_else(|| ServiceError::internal(format!("sql/analyses/{name}.sql is not embedded")))
}

/// The 95 % t interval of a mean from `n` values with sample sd `sd`;
/// `None` below two values.
pub fn t_interval(n: i64, mean: f64, sd: f64) -> Option<(f64, f64)> {
    if n < 2 || !mean.is_finite() || !sd.is_finite() {
        return None;
    }
    let half = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
    half.is_finite().then_some((mean - half, mean + half))
}

/// Adds `csat_low`, `csat_high` after `csat_sd`.
pub fn add_csat_intervals(t: &mut Table) {
    let intervals: Vec<Option<(f64, f64)>> = t
        .rows
        .iter()
        .map(|r| {
            let n = t.cell(r, "csat_n").as_i64().unwrap_or(0);
            let mean = t.cell(r, "csat_mean").as_f64();
            // One score has no spread: sd NULL, and no interval either.
            let sd = t.cell(r, "csat_sd").as_f64();
            mean.zip(sd).and_then(|(m, s)| t_interval(n, m, s))
        })
        .collect();
    let lows = intervals
        .iter()
        .map(|i| i.map_or(Value::Null, |(l, _)| json!(l)))
        .collect();
    let highs = intervals
        .iter()
        .map(|i| i.map_or(Value::Null, |(_, h)| json!(h)))
        .collect();
    t.insert_column("csat_sd", "csat_high", highs);
    t.insert_column("csat_sd", "csat_low", lows);
}

/// Per kind, the key of the first and the last group (the rows are best
/// first) that has scores and is not flagged small.
pub fn best_and_worst(t: &Table) -> (Map<String, Value>, Map<String, Value>) {
    let mut best = Map::new();
    let mut worst = Map::new();
    for kind in ["quick_reply", "template"] {
        let eligible: Vec<&Vec<Value>> = t
            .rows
            .iter()
            .filter(|r| t.cell(r, "kind") == kind)
            .filter(|r| !t.cell(r, "csat_mean").is_null() && t.cell(r, "small_sample") == &Value::Bool(false))
            .collect();
        best.insert(
            kind.into(),
            eligible.first().map_or(Value::Null, |r| t.cell(r, "key").clone()),
        );
        worst.insert(
            kind.into(),
            eligible.last().map_or(Value::Null, |r| t.cell(r, "key").clone()),
        );
    }
    (best, worst)
}

/// `bottlenecks_pairs.sql`'s rows from its counts: the same columns, the
/// measures computed as the query does (in `DOUBLE`), the same order.
pub fn pairs_table(c: &warehouse::rollups::TagCounts, min_count: i64) -> Table {
    struct Row<'a> {
        tag: &'a str,
        other: &'a str,
        n: u64,
        lhs: u64,
        rhs: u64,
        support: f64,
        confidence: f64,
        lift: f64,
    }
    let tagged = c.tagged as f64;
    let mut rows: Vec<Row> = c
        .pairs
        .iter()
        .filter(|(_, n)| i64::try_from(**n).unwrap_or(i64::MAX) >= min_count)
        .map(|((tag, other), &n)| {
            let lhs = c.tags.get(tag).copied().unwrap_or(0);
            let rhs = c.tags.get(other).copied().unwrap_or(0);
            let (pair_d, lhs_d, rhs_d) = (n as f64, lhs as f64, rhs as f64);
            Row {
                tag,
                other,
                n,
                lhs,
                rhs,
                support: pair_d / tagged,
                confidence: pair_d / lhs_d,
                lift: pair_d * tagged / (lhs_d * rhs_d),
            }
        })
        .collect();
    // ORDER BY lift DESC, conversations DESC, confidence DESC, tag, other_tag
    rows.sort_by(|a, b| {
        b.lift
            .total_cmp(&a.lift)
            .then(b.n.cmp(&a.n))
            .then(b.confidence.total_cmp(&a.confidence))
            .then_with(|| a.tag.cmp(b.tag))
            .then_with(|| a.other.cmp(b.other))
    });
    Table {
        columns: [
            "tag",
            "other_tag",
            "conversations",
            "support",
            "confidence",
            "lift",
            "tag_conversations",
            "other_tag_conversations",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .into_iter()
            .map(|r| {
                vec![
                    json!(r.tag),
                    json!(r.other),
                    json!(r.n),
                    json!(r.support),
                    json!(r.confidence),
                    json!(r.lift),
                    json!(r.lhs),
                    json!(r.rhs),
                ]
            })
            .collect(),
    }
}

/// All 7 × 24 cells, weekday-major; cells without a row have 0
/// conversations and no waiting time.
pub fn full_grid(t: &Table) -> Table {
    let mut out = Table {
        columns: t.columns.clone(),
        rows: Vec::with_capacity(7 * 24),
    };
    for weekday in 1..=7_i64 {
        for hour in 0..24_i64 {
            let found = t
                .rows
                .iter()
                .find(|r| t.cell(r, "weekday").as_i64() == Some(weekday) && t.cell(r, "hour").as_i64() == Some(hour));
            let row = match found {
                Some(r) => r.clone(),
                None => t
                    .columns
                    .iter()
                    .map(|c| match c.as_str() {
                        "weekday" => json!(weekday),
                        "hour" => json!(hour),
                        "conversations" | "wait_n" => json!(0),
                        _ => Value::Null,
                    })
                    .collect(),
            };
            out.rows.push(row);
        }
    }
    out
}

/// One metric row of `channels.sql`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSummary {
    pub n: i64,
    pub successes: Option<i64>,
    pub value: Option<f64>,
    pub sd: Option<f64>,
}

impl MetricSummary {
    fn of(t: &Table, row: &[Value]) -> MetricSummary {
        MetricSummary {
            n: t.cell(row, "n").as_i64().unwrap_or(0),
            successes: t.cell(row, "successes").as_i64(),
            value: t.cell(row, "value").as_f64(),
            sd: t.cell(row, "sd").as_f64(),
        }
    }

    /// `(Σy, Σy²)` from n, mean and sample sd (no sd: one value, no spread).
    fn sums(&self) -> Option<(f64, f64)> {
        let n = self.n as f64;
        let mean = self.value?;
        let sd = self.sd.unwrap_or(0.0);
        Some((n * mean, (n - 1.0).max(0.0) * sd * sd + n * mean * mean))
    }
}

/// The channel against the rest of the tenant (tenant minus channel): a
/// two-proportion z-test for a rate (`successes` given), Welch's t-test for
/// a mean. `None` when a side is too small for the test.
pub fn compare_with_rest(channel: &MetricSummary, tenant: &MetricSummary) -> Option<Comparison> {
    let rest_n = tenant.n - channel.n;
    match (channel.successes, tenant.successes) {
        (Some(cs), Some(ts)) => {
            if channel.n < 1 || rest_n < 1 {
                return None;
            }
            let rest = ArmSummary::rate(u64::try_from(rest_n).ok()?, u64::try_from(ts - cs).ok()?);
            let treated = ArmSummary::rate(u64::try_from(channel.n).ok()?, u64::try_from(cs).ok()?);
            two_proportion_z_test(&rest, &treated, ALPHA).ok()
        }
        _ => {
            if channel.n < 2 || rest_n < 2 {
                return None;
            }
            let (c_sum, c_sq) = channel.sums()?;
            let (t_sum, t_sq) = tenant.sums()?;
            let rest = ArmSummary {
                n: u64::try_from(rest_n).ok()?,
                sum: t_sum - c_sum,
                sum_squares: Some((t_sq - c_sq).max(0.0)),
            };
            let treated = ArmSummary {
                n: u64::try_from(channel.n).ok()?,
                sum: c_sum,
                sum_squares: Some(c_sq),
            };
            welch_t_test(&rest, &treated, ALPHA).ok()
        }
    }
}

/// What pairs a channel row with its tenant row.
fn metric_key(t: &Table, row: &[Value]) -> (Value, Value) {
    (t.cell(row, "metric").clone(), t.cell(row, "currency").clone())
}

/// Adds `overall_value`, `difference`, `test`, `p_value`, `significant` to
/// the rows of `channels.sql` (NULL on the tenant rows).
pub fn add_comparisons(t: &mut Table) {
    let tenant_rows: Vec<(Value, Value, MetricSummary)> = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "scope") == "tenant")
        .map(|r| {
            let (m, c) = metric_key(t, r);
            (m, c, MetricSummary::of(t, r))
        })
        .collect();
    let mut columns: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for row in &t.rows {
        let mut cells = [Value::Null, Value::Null, Value::Null, Value::Null, Value::Null];
        if t.cell(row, "scope") == "channel" {
            let (metric, currency) = metric_key(t, row);
            let channel = MetricSummary::of(t, row);
            if let Some((_, _, tenant)) = tenant_rows.iter().find(|(m, c, _)| *m == metric && *c == currency) {
                cells[0] = tenant.value.map_or(Value::Null, |v| json!(v));
                if let (Some(v), Some(o)) = (channel.value, tenant.value) {
                    cells[1] = json!(v - o);
                }
                cells[2] = json!(if channel.successes.is_some() {
                    "two_proportion_z"
                } else {
                    "welch_t"
                });
                if let Some(c) = compare_with_rest(&channel, tenant).filter(|c| c.p_value.is_finite()) {
                    cells[3] = json!(c.p_value);
                    cells[4] = json!(c.p_value < ALPHA);
                }
            }
        }
        for (name, v) in ["overall_value", "difference", "test", "p_value", "significant"]
            .into_iter()
            .zip(cells)
        {
            columns.entry(name).or_default().push(v);
        }
    }
    for name in ["overall_value", "difference", "test", "p_value", "significant"] {
        let values = columns.remove(name).unwrap_or_else(|| vec![Value::Null; t.rows.len()]);
        t.push_column(name, values);
    }
}

/// One group of `scripts.sql` (a quick reply or a template) with the
/// intervals [`add_csat_intervals`] adds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptGroup {
    /// `quick_reply` or `template`.
    pub kind: String,
    pub key: Option<String>,
    pub conversations: u64,
    pub csat_mean: Option<f64>,
    pub csat_n: u64,
    /// The 95 % t interval of the CSAT mean.
    pub csat_ci: Option<(f64, f64)>,
    pub resolution_rate: Option<f64>,
    /// The 95 % Wilson interval of the resolution rate.
    pub resolution_ci: Option<(f64, f64)>,
    /// Fewer CSAT scores than `min_count` (a group without the column is small).
    pub small_sample: bool,
}

/// The groups of a scripts table, in its order (best first per kind).
pub fn script_groups(t: &Table) -> Vec<ScriptGroup> {
    t.rows
        .iter()
        .map(|r| {
            let f = |c: &str| t.cell(r, c).as_f64();
            let ci = |low: &str, high: &str| f(low).zip(f(high));
            ScriptGroup {
                kind: t.cell(r, "kind").as_str().unwrap_or_default().to_string(),
                key: t.cell(r, "key").as_str().map(str::to_string),
                conversations: t.cell(r, "conversations").as_u64().unwrap_or(0),
                csat_mean: f("csat_mean"),
                csat_n: t.cell(r, "csat_n").as_u64().unwrap_or(0),
                csat_ci: ci("csat_low", "csat_high"),
                resolution_rate: f("resolution_rate"),
                resolution_ci: ci("resolution_low", "resolution_high"),
                small_sample: t.cell(r, "small_sample").as_bool().unwrap_or(true),
            }
        })
        .collect()
}

/// Two tags on the same conversations: a row of [`pairs_table`].
#[derive(Debug, Clone, PartialEq)]
pub struct TagPair {
    pub tag: String,
    pub other_tag: String,
    /// Conversations with both.
    pub conversations: u64,
}

/// The pairs of [`pairs_table`]'s table, in its order (each pair in both
/// directions, as the API lists them).
pub fn tag_pairs(t: &Table) -> Vec<TagPair> {
    t.rows
        .iter()
        .filter_map(|r| {
            Some(TagPair {
                tag: t.cell(r, "tag").as_str()?.to_string(),
                other_tag: t.cell(r, "other_tag").as_str()?.to_string(),
                conversations: t.cell(r, "conversations").as_u64()?,
            })
        })
        .collect()
}

/// One cell of the traffic heatmap: the conversations started in one
/// local weekday and hour of the window, and their waiting times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficCell {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// 0–23, local.
    pub hour: u8,
    pub conversations: u64,
    pub wait_mean_s: Option<f64>,
    pub wait_median_s: Option<f64>,
    pub wait_p90_s: Option<f64>,
}

/// The cells of [`full_grid`]'s table (the columns of `traffic.sql`), in
/// its order; a row without a valid weekday and hour is no cell.
pub fn traffic_cells(t: &Table) -> Vec<TrafficCell> {
    t.rows
        .iter()
        .filter_map(|r| {
            let weekday = u8::try_from(t.cell(r, "weekday").as_u64()?)
                .ok()
                .filter(|d| (1..=7).contains(d))?;
            let hour = u8::try_from(t.cell(r, "hour").as_u64()?).ok().filter(|h| *h < 24)?;
            Some(TrafficCell {
                weekday,
                hour,
                conversations: t.cell(r, "conversations").as_u64().unwrap_or(0),
                wait_mean_s: t.cell(r, "wait_mean_s").as_f64(),
                wait_median_s: t.cell(r, "wait_median_s").as_f64(),
                wait_p90_s: t.cell(r, "wait_p90_s").as_f64(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
