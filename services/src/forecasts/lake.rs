//! Arrival history and measured handle times from the lake.
//!
//! Queries over the `conversations` view (`sql/views/conversations.sql`):
//! conversations of one tenant *started* in a window, counted per interval,
//! together with additive sums from which the handle time, the human share
//! and the patience are measured. [`history`] reads one queue; [`Cells`]
//! reads every queue of the tenant at once (per interval and combination of
//! queue dimensions), from which any queue's history is summed in memory
//! (the forecast endpoints cache them: `served/forecasts/cache.rs`). Every caller-supplied
//! value reaches SQL as a DataFusion parameter (`$n`), never as text; column
//! names come from the closed [`Dimension`] list.
//!
//! Measured figures (documented in the API docs, echoed in `assumptions`):
//! * **handle time** `aht_s`: mean of `resolved_at − first_human_reply_at`
//!   (= `handling_s` minus the customer's wait for the first human reply)
//!   over human-handled conversations resolved exactly once and never
//!   reopened (a reopen days later would count idle days as work). Measured
//!   at the concurrency the team actually ran, which is what Erlang with
//!   `concurrency` expects.
//! * **human share**: conversations that needed a human (an agent replied,
//!   or it was handed off or assigned, or nobody — bot or agent — answered a
//!   customer message and the bot did not resolve it) / all conversations.
//! * **patience** `patience_s` (exponential patience, maximum likelihood):
//!   total time customers waiting for a human were exposed to abandoning
//!   (until the first human reply, or until their last event when no human
//!   ever replied) / number of those who never got a human reply and whose
//!   conversation went quiet more than an hour before the window end.
//!   Needs at least [`MIN_ABANDONS`] abandons; otherwise none is measured
//!   and Erlang C (no abandonment) is used.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::scalar::ScalarValue;

/// Fewer abandons than this measure no patience.
pub const MIN_ABANDONS: f64 = 10.0;

/// A queue key names [`Dimension::QUEUE`] dimensions; the key name is the
/// `conversations` column.
pub use model::Dimension;

/// Which conversations a forecast counts: every listed column equals its
/// value. Empty = every conversation of the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueKey {
    /// Sorted by dimension, each at most once.
    pub parts: Vec<(Dimension, String)>,
}

impl QueueKey {
    /// Parses the `queue` parameter:
    /// * absent, empty or `*`: every conversation of the tenant;
    /// * `channel:whatsapp,language:en,team:billing`: any combination of
    ///   `channel language team queue channel_account region customer_tier`;
    /// * a bare name without `:` (`billing`): the `queue` column.
    ///
    /// Values are 1–128 characters of letters, digits and `_ - . @ +`;
    /// `channel` must be a contract-v1 channel.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "*" {
            return Ok(Self::default());
        }
        // Keyed by the place in `Dimension::QUEUE`, the order of the canonical form.
        let mut parts: BTreeMap<usize, (Dimension, String)> = BTreeMap::new();
        if !text.contains(':') {
            let queue = Dimension::Queue;
            parts.insert(queue.queue_rank().unwrap_or(0), (queue, check_value(text)?));
        } else {
            for part in text.split(',') {
                let (name, value) = part.split_once(':').ok_or_else(|| {
                    format!("{part:?} is not NAME:VALUE; write e.g. channel:whatsapp,language:en,team:billing")
                })?;
                let (rank, dim) = Dimension::parse_queue(name.trim())
                    .and_then(|d| Some((d.queue_rank()?, d)))
                    .ok_or_else(|| {
                        let names: Vec<&str> = Dimension::QUEUE.iter().map(|d| d.column()).collect();
                        format!("unknown queue dimension {name:?}; one of {}", names.join(", "))
                    })?;
                let value = check_value(value.trim())?;
                if dim == Dimension::Channel && ingest::contract::Channel::parse(&value).is_none() {
                    return Err(format!(
                        "channel {value:?} is not one of {}",
                        ingest::contract::Channel::expected()
                    ));
                }
                if parts.insert(rank, (dim, value)).is_some() {
                    return Err(format!("{} is given twice", dim.column()));
                }
            }
        }
        Ok(Self {
            parts: parts.into_values().collect(),
        })
    }

    /// Canonical text form (`*` for everything).
    pub fn canonical(&self) -> String {
        if self.parts.is_empty() {
            return "*".into();
        }
        self.parts
            .iter()
            .map(|(d, v)| format!("{}:{v}", d.column()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The key as a JSON object `{"channel": "whatsapp", ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.parts
                .iter()
                .map(|(d, v)| (d.column().to_string(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

fn check_value(v: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("queue value {v:?} must be 1–128 letters, digits or _ - . @ +"))
    }
}

/// Additive per-interval facts of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    pub conversations: f64,
    pub needs_human: f64,
    pub hold_s_sum: f64,
    pub hold_n: f64,
    pub exposure_s_sum: f64,
    pub abandons: f64,
}

impl Measured {
    fn add(&mut self, o: &Measured) {
        self.conversations += o.conversations;
        self.needs_human += o.needs_human;
        self.hold_s_sum += o.hold_s_sum;
        self.hold_n += o.hold_n;
        self.exposure_s_sum += o.exposure_s_sum;
        self.abandons += o.abandons;
    }

    /// Mean handle time, seconds, when any was measured.
    pub fn aht_s(&self) -> Option<f64> {
        (self.hold_n > 0.0 && self.hold_s_sum > 0.0).then(|| self.hold_s_sum / self.hold_n)
    }

    /// Share of conversations that needed a human.
    pub fn human_share(&self) -> Option<f64> {
        (self.conversations > 0.0).then(|| self.needs_human / self.conversations)
    }

    /// Mean patience, seconds (see module docs).
    pub fn patience_s(&self) -> Option<f64> {
        (self.abandons >= MIN_ABANDONS && self.exposure_s_sum > 0.0).then(|| self.exposure_s_sum / self.abandons)
    }
}

/// Per-interval history of one tenant over `[from_us, to_us)`.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Conversations of the queue per interval.
    pub counts: Vec<f64>,
    /// Conversations of the whole tenant per interval (where its data is).
    pub tenant_counts: Vec<f64>,
    /// Queue facts per interval.
    pub measured: Vec<Measured>,
}

impl History {
    /// Sum of the measured facts over `range`.
    pub fn measured_over(&self, range: std::ops::Range<usize>) -> Measured {
        let mut m = Measured::default();
        for x in &self.measured[range] {
            m.add(x);
        }
        m
    }
}

fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

#[cfg(test)]
/// The queue condition as SQL over `conversations`, with parameters from
/// `$first` on.
fn queue_predicate(key: &QueueKey, first: usize, params: &mut Vec<ScalarValue>) -> String {
    if key.parts.is_empty() {
        return "true".into();
    }
    let mut terms = Vec::new();
    for (i, (d, v)) in key.parts.iter().enumerate() {
        terms.push(format!("{} = ${}", d.column(), first + i));
        params.push(ScalarValue::Utf8(Some(v.clone())));
    }
    format!("coalesce({}, false)", terms.join(" AND "))
}

/// The tenant's conversations started in `[$2, $3)` as `c`: interval
/// index `bucket` (of `$4` µs from `$2`), the queue dimensions, `in_queue`
/// (the condition `in_queue`), and the per-conversation measures the module
/// docs define. `$1` is the tenant.
fn measured_conversations_cte(in_queue: &str) -> String {
    let dims: Vec<&str> = Dimension::QUEUE.iter().map(|d| d.column()).collect();
    format!(
        "WITH c AS (
            SELECT
                (arrow_cast(started_at, 'Int64') - $2) / $4 AS bucket,
                {dims},
                {in_queue} AS in_queue,
                agent_replies > 0 OR handoffs > 0 OR assignments > 0
                    OR (bot_replies = 0 AND customer_messages > 0 AND NOT bot_only) AS needs_human,
                CASE WHEN agent_replies > 0 AND is_resolved AND resolves = 1 AND reopens = 0
                          AND resolved_at > first_human_reply_at
                     THEN (arrow_cast(resolved_at, 'Int64') - arrow_cast(first_human_reply_at, 'Int64')) / 1000000.0
                END AS hold_s,
                CASE WHEN first_human_reply_at IS NOT NULL THEN human_frt_s
                     WHEN arrow_cast(last_event_at, 'Int64') < $3 - 3600000000
                     THEN (arrow_cast(last_event_at, 'Int64')
                           - arrow_cast(coalesce(handoff_at, first_customer_message_at), 'Int64')) / 1000000.0
                END AS exposure_s,
                first_human_reply_at IS NULL AND arrow_cast(last_event_at, 'Int64') < $3 - 3600000000 AS quiet
            FROM conversations
            WHERE tenant_id = $1 AND started_at IS NOT NULL
                AND arrow_cast(started_at, 'Int64') >= $2 AND arrow_cast(started_at, 'Int64') < $3
        )",
        dims = dims.join(", ")
    )
}

fn window_params(tenant: &str, from_us: i64, to_us: i64, interval_us: i64) -> Vec<ScalarValue> {
    vec![
        ScalarValue::Utf8(Some(tenant.to_string())),
        ScalarValue::Int64(Some(from_us)),
        ScalarValue::Int64(Some(to_us)),
        ScalarValue::Int64(Some(interval_us)),
    ]
}

/// Intervals of `interval_us` in `[from_us, to_us)` (a partial last one is
/// left out).
fn interval_count(from_us: i64, to_us: i64, interval_us: i64) -> usize {
    usize::try_from((to_us - from_us).max(0) / interval_us.max(1)).unwrap_or(0)
}

#[cfg(test)]
/// Counts and measured facts of `key` in tenant `tenant`, per interval of
/// `interval_us` from `from_us` (inclusive) to `to_us` (exclusive): one
/// query for one queue. The definition [`Cells`] is checked against (the
/// forecast endpoints answer from [`Cells`], one query for every queue).
pub async fn history(
    ctx: &SessionContext,
    tenant: &str,
    key: &QueueKey,
    from_us: i64,
    to_us: i64,
    interval_us: i64,
) -> datafusion::error::Result<History> {
    let mut params = window_params(tenant, from_us, to_us, interval_us);
    let in_queue = queue_predicate(key, 5, &mut params);
    let sql = format!(
        "{}
        SELECT
            bucket,
            count(*) AS tenant_n,
            count(*) FILTER (WHERE in_queue) AS n,
            count(*) FILTER (WHERE in_queue AND needs_human) AS needs_human,
            sum(hold_s) FILTER (WHERE in_queue) AS hold_s_sum,
            count(hold_s) FILTER (WHERE in_queue) AS hold_n,
            sum(exposure_s) FILTER (WHERE in_queue AND needs_human AND exposure_s >= 0) AS exposure_s_sum,
            count(*) FILTER (WHERE in_queue AND needs_human AND quiet) AS abandons
        FROM c
        GROUP BY bucket",
        measured_conversations_cte(&in_queue)
    );
    let df = ctx
        .sql_with_options(&sql, read_only())
        .await?
        .with_param_values(params)?;
    let batches = df.collect().await?;
    let n = interval_count(from_us, to_us, interval_us);
    let mut out = History {
        counts: vec![0.0; n],
        tenant_counts: vec![0.0; n],
        measured: vec![Measured::default(); n],
    };
    for b in &batches {
        let col = |name: &str| f64_column(b, name);
        let (bucket, tenant_n, qn) = (col("bucket")?, col("tenant_n")?, col("n")?);
        let measured = measured_columns(b, "n")?;
        for i in 0..b.num_rows() {
            let Some(idx) = usize::try_from(bucket[i] as i64).ok().filter(|i| *i < n) else {
                continue;
            };
            out.tenant_counts[idx] = tenant_n[i];
            out.counts[idx] = qn[i];
            out.measured[idx] = measured[i];
        }
    }
    Ok(out)
}

#[cfg(test)]
/// The [`Measured`] columns of a result (`conversations` named `count`).
fn measured_columns(b: &RecordBatch, count: &str) -> datafusion::error::Result<Vec<Measured>> {
    let col = |name: &str| f64_column(b, name);
    let (n, human, hold_sum, hold_n, exp_sum, abandons) = (
        col(count)?,
        col("needs_human")?,
        col("hold_s_sum")?,
        col("hold_n")?,
        col("exposure_s_sum")?,
        col("abandons")?,
    );
    Ok((0..b.num_rows())
        .map(|i| Measured {
            conversations: n[i],
            needs_human: human[i],
            hold_s_sum: hold_sum[i],
            hold_n: hold_n[i],
            exposure_s_sum: exp_sum[i],
            abandons: abandons[i],
        })
        .collect())
}

/// Id of a null dimension value in [`Cells`]: no key value maps to it.
const NULL_VALUE: u32 = u32::MAX;

/// The additive facts of every queue of one tenant over one window, at the
/// finest grain a [`QueueKey`] can ask for: one cell per interval and
/// combination of the [`Dimension`] values that occurs. Any queue's
/// [`History`] is the sum of the cells its key matches ([`Cells::history`]),
/// so one scan of the tenant's conversations answers every queue.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    intervals: usize,
    /// Per dimension (in [`Dimension::QUEUE`] order): value → id.
    ids: [std::collections::HashMap<String, u32>; 7],
    /// Per cell: its interval, its value id per dimension
    /// ([`NULL_VALUE`] for null) and its facts.
    bucket: Vec<u32>,
    values: Vec<[u32; 7]>,
    measured: Vec<Measured>,
    /// Conversations of the tenant per interval.
    tenant_counts: Vec<f64>,
}

impl Cells {
    /// One query: the cells of tenant `tenant` per interval of
    /// `interval_us` from `from_us` (inclusive) to `to_us` (exclusive).
    /// The conversations' measures come from SQL (the definition shared
    /// with [`history`]); they are summed into cells here, which costs a
    /// fraction of a `GROUP BY` over eight columns.
    pub async fn read(
        ctx: &SessionContext,
        tenant: &str,
        from_us: i64,
        to_us: i64,
        interval_us: i64,
    ) -> datafusion::error::Result<Cells> {
        let dims: Vec<&str> = Dimension::QUEUE.iter().map(|d| d.column()).collect();
        let sql = format!(
            "{}
            SELECT bucket, {dims}, needs_human, hold_s, exposure_s, quiet FROM c",
            measured_conversations_cte("true"),
            dims = dims.join(", ")
        );
        let df = ctx
            .sql_with_options(&sql, read_only())
            .await?
            .with_param_values(window_params(tenant, from_us, to_us, interval_us))?;
        let intervals = interval_count(from_us, to_us, interval_us);
        let mut cells = Cells {
            intervals,
            tenant_counts: vec![0.0; intervals],
            ..Cells::default()
        };
        let mut index: std::collections::HashMap<(u32, [u32; 7]), usize> = std::collections::HashMap::new();
        for b in df.collect().await? {
            let bucket = f64_column(&b, "bucket")?;
            let columns = dims
                .iter()
                .map(|d| Ok(arrow::compute::cast(column(&b, d)?, &DataType::Utf8)?))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let flag = |name: &str| -> datafusion::error::Result<Vec<bool>> {
                let a = arrow::compute::cast(column(&b, name)?, &DataType::Boolean)?;
                let a = a.as_boolean();
                // A null condition is not met (as in `FILTER (WHERE ...)`).
                Ok((0..a.len()).map(|i| a.is_valid(i) && a.value(i)).collect())
            };
            let seconds = |name: &str| -> datafusion::error::Result<Vec<Option<f64>>> {
                let a = arrow::compute::cast(column(&b, name)?, &DataType::Float64)?;
                Ok(a.as_primitive::<arrow::datatypes::Float64Type>().iter().collect())
            };
            let (needs_human, quiet) = (flag("needs_human")?, flag("quiet")?);
            let (hold_s, exposure_s) = (seconds("hold_s")?, seconds("exposure_s")?);
            for i in 0..b.num_rows() {
                let Some(idx) = usize::try_from(bucket[i] as i64).ok().filter(|i| *i < intervals) else {
                    continue;
                };
                let mut values = [NULL_VALUE; 7];
                for (d, column) in columns.iter().enumerate() {
                    let column = column.as_string::<i32>();
                    if column.is_valid(i) {
                        let v = column.value(i);
                        values[d] = match cells.ids[d].get(v) {
                            Some(id) => *id,
                            None => {
                                let id = cells.ids[d].len() as u32;
                                cells.ids[d].insert(v.to_string(), id);
                                id
                            }
                        };
                    }
                }
                let exposure = exposure_s[i].filter(|e| needs_human[i] && *e >= 0.0);
                let m = Measured {
                    conversations: 1.0,
                    needs_human: f64::from(u8::from(needs_human[i])),
                    hold_s_sum: hold_s[i].unwrap_or(0.0),
                    hold_n: f64::from(u8::from(hold_s[i].is_some())),
                    exposure_s_sum: exposure.unwrap_or(0.0),
                    abandons: f64::from(u8::from(needs_human[i] && quiet[i])),
                };
                cells.tenant_counts[idx] += 1.0;
                let at = *index.entry((idx as u32, values)).or_insert_with(|| {
                    cells.bucket.push(idx as u32);
                    cells.values.push(values);
                    cells.measured.push(Measured::default());
                    cells.measured.len() - 1
                });
                cells.measured[at].add(&m);
            }
        }
        Ok(cells)
    }

    /// Cells held (a measure of the entry's size).
    pub fn len(&self) -> usize {
        self.bucket.len()
    }

    /// The history of `key`: what [`history`] computes for it. A key part
    /// matches a cell when the cell's value equals it; a null value never
    /// matches (as `coalesce(column = value, false)` in SQL).
    pub fn history(&self, key: &QueueKey) -> History {
        let mut out = History {
            counts: vec![0.0; self.intervals],
            tenant_counts: self.tenant_counts.clone(),
            measured: vec![Measured::default(); self.intervals],
        };
        let mut wanted = Vec::with_capacity(key.parts.len());
        for (d, v) in &key.parts {
            let Some(slot) = d.queue_rank() else {
                return out;
            };
            let Some(id) = self.ids[slot].get(v) else {
                // A value absent from the data: no conversation matches.
                return out;
            };
            wanted.push((slot, *id));
        }
        for ((bucket, values), m) in self.bucket.iter().zip(&self.values).zip(&self.measured) {
            if wanted.iter().all(|(slot, id)| values[*slot] == *id) {
                let idx = *bucket as usize;
                out.counts[idx] += m.conversations;
                out.measured[idx].add(m);
            }
        }
        out
    }
}

/// One queue's counts per interval, for the backtest report.
#[derive(Debug, Clone)]
pub struct QueueCounts {
    pub tenant: String,
    pub key: QueueKey,
    pub counts: Vec<f64>,
}

/// First and last conversation start (UTC microseconds) per tenant.
pub async fn tenant_ranges(
    ctx: &SessionContext,
    tenant: Option<&str>,
) -> datafusion::error::Result<Vec<(String, i64, i64)>> {
    let (filter, params) = match tenant {
        Some(t) => ("AND tenant_id = $1", vec![ScalarValue::Utf8(Some(t.to_string()))]),
        None => ("", Vec::new()),
    };
    let sql = format!(
        "SELECT tenant_id, min(arrow_cast(started_at, 'Int64')) AS first_us, max(arrow_cast(started_at, 'Int64')) AS last_us
         FROM conversations WHERE started_at IS NOT NULL {filter}
         GROUP BY tenant_id ORDER BY tenant_id"
    );
    let mut df = ctx.sql_with_options(&sql, read_only()).await?;
    if !params.is_empty() {
        df = df.with_param_values(params)?;
    }
    let mut out = Vec::new();
    for b in df.collect().await? {
        let tenants = string_column(&b, "tenant_id")?;
        let (first, last) = (f64_column(&b, "first_us")?, f64_column(&b, "last_us")?);
        for i in 0..b.num_rows() {
            out.push((tenants[i].clone(), first[i] as i64, last[i] as i64));
        }
    }
    Ok(out)
}

/// Counts per `channel × language × team` queue of one tenant (conversations
/// with all three known), per interval from `from_us` to `to_us`, and the
/// tenant's total per interval (every conversation, known queue or not).
pub async fn queue_counts(
    ctx: &SessionContext,
    tenant: &str,
    from_us: i64,
    to_us: i64,
    interval_us: i64,
) -> datafusion::error::Result<(Vec<QueueCounts>, Vec<f64>)> {
    let sql = "SELECT channel, language, team,
            channel IS NOT NULL AND language IS NOT NULL AND team IS NOT NULL AS keyed,
            (arrow_cast(started_at, 'Int64') - $2) / $4 AS bucket, count(*) AS n
        FROM conversations
        WHERE tenant_id = $1 AND started_at IS NOT NULL
            AND arrow_cast(started_at, 'Int64') >= $2 AND arrow_cast(started_at, 'Int64') < $3
        GROUP BY 1, 2, 3, 4, 5";
    let df = ctx
        .sql_with_options(sql, read_only())
        .await?
        .with_param_values(window_params(tenant, from_us, to_us, interval_us))?;
    let n = interval_count(from_us, to_us, interval_us);
    let mut queues: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut totals = vec![0.0; n];
    for b in df.collect().await? {
        let (ch, lang, team) = (
            string_column(&b, "channel")?,
            string_column(&b, "language")?,
            string_column(&b, "team")?,
        );
        let keyed = f64_column(&b, "keyed")?;
        let (bucket, count) = (f64_column(&b, "bucket")?, f64_column(&b, "n")?);
        for i in 0..b.num_rows() {
            let Some(k) = usize::try_from(bucket[i] as i64).ok().filter(|k| *k < n) else {
                continue;
            };
            totals[k] += count[i];
            if keyed[i] > 0.0 {
                let counts = queues
                    .entry((ch[i].clone(), lang[i].clone(), team[i].clone()))
                    .or_insert_with(|| vec![0.0; n]);
                counts[k] += count[i];
            }
        }
    }
    let queues = queues
        .into_iter()
        .map(|((channel, language, team), counts)| QueueCounts {
            tenant: tenant.to_string(),
            key: QueueKey {
                parts: vec![
                    (Dimension::Channel, channel),
                    (Dimension::Language, language),
                    (Dimension::Team, team),
                ],
            },
            counts,
        })
        .collect();
    Ok((queues, totals))
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> datafusion::error::Result<&'a arrow::array::ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| datafusion::error::DataFusionError::Internal(format!("result has no column {name}")))
}

/// A numeric column as `f64`, nulls as 0.
fn f64_column(b: &RecordBatch, name: &str) -> datafusion::error::Result<Vec<f64>> {
    let cast = arrow::compute::cast(column(b, name)?, &DataType::Float64)?;
    let a = cast.as_primitive::<arrow::datatypes::Float64Type>();
    Ok((0..a.len())
        .map(|i| if a.is_null(i) { 0.0 } else { a.value(i) })
        .collect())
}

/// A string column, nulls as "".
fn string_column(b: &RecordBatch, name: &str) -> datafusion::error::Result<Vec<String>> {
    let cast = arrow::compute::cast(column(b, name)?, &DataType::Utf8)?;
    let a = cast.as_string::<i32>();
    Ok((0..a.len())
        .map(|i| {
            if a.is_null(i) {
                String::new()
            } else {
                a.value(i).to_string()
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_parse_to_a_canonical_form() {
        let k = QueueKey::parse("team:dach, channel:whatsapp,language:de").unwrap_or_default();
        assert_eq!(k.canonical(), "channel:whatsapp,language:de,team:dach");
        assert_eq!(
            QueueKey::parse("billing").map(|k| k.canonical()),
            Ok("queue:billing".into())
        );
        assert_eq!(QueueKey::parse("*").map(|k| k.canonical()), Ok("*".into()));
        assert_eq!(QueueKey::parse("").map(|k| k.parts.len()), Ok(0));
        assert!(QueueKey::parse("channel:pigeon").is_err());
        assert!(QueueKey::parse("colour:red").is_err());
        assert!(QueueKey::parse("channel:sms,channel:email").is_err());
        assert!(QueueKey::parse("team:x' OR 1=1 --").is_err());
        assert!(QueueKey::parse("team:").is_err());
    }

    /// A `conversations` table of `n` pseudo-random conversations of two
    /// tenants (every measure column and every dimension sometimes null).
    fn conversations(n: usize) -> SessionContext {
        use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
        use arrow::datatypes::{Field, Schema};
        use std::sync::Arc;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        const HOUR: i64 = 3_600_000_000;
        let (mut ints, mut bools, mut times, mut floats, mut texts) = (
            vec![Vec::new(); 7],
            vec![Vec::new(); 2],
            vec![Vec::new(); 6],
            Vec::new(),
            vec![Vec::new(); 8],
        );
        let dims: [&[&str]; 7] = [
            &["whatsapp", "email", "webchat"],
            &["en", "de"],
            &["billing", "returns", "dach"],
            &["q1", "q2"],
            &["acc1", "acc2", "acc3"],
            &["eu", "us"],
            &["regular", "vip"],
        ];
        for _ in 0..n {
            texts[0].push(Some(if next(5) == 0 { "globex" } else { "acme" }.to_string()));
            for (d, values) in dims.iter().enumerate() {
                let v = next(values.len() as u64 + 1) as usize;
                texts[d + 1].push(values.get(v).map(|v| v.to_string()));
            }
            let started = next(30 * 24) as i64 * HOUR / 4 + next(HOUR as u64) as i64;
            for x in ints.iter_mut() {
                x.push((next(8) != 0).then(|| next(3) as i64));
            }
            for x in bools.iter_mut() {
                x.push((next(8) != 0).then(|| next(2) == 0));
            }
            for (k, x) in times.iter_mut().enumerate() {
                let at = started + next(6 * HOUR as u64) as i64;
                x.push(match (k, next(6)) {
                    (0, 0) => None,
                    (0, _) => Some(started),
                    (_, 0) => None,
                    _ => Some(at),
                });
            }
            floats.push((next(6) != 0).then(|| next(900_000) as f64 / 1000.0));
        }
        let ts = |v: &Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v.clone()).with_timezone("UTC"))
        };
        let int = |v: &Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v.clone())) };
        let boolean = |v: &Vec<Option<bool>>| -> ArrayRef { Arc::new(BooleanArray::from(v.clone())) };
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        let mut add = |name: &str, column: ArrayRef| {
            fields.push(Field::new(name, column.data_type().clone(), true));
            columns.push(column);
        };
        add("tenant_id", Arc::new(StringArray::from(texts[0].clone())));
        for (d, dim) in Dimension::QUEUE.iter().enumerate() {
            add(dim.column(), Arc::new(StringArray::from(texts[d + 1].clone())));
        }
        let int_names = [
            "agent_replies",
            "handoffs",
            "assignments",
            "bot_replies",
            "customer_messages",
            "resolves",
            "reopens",
        ];
        for (name, v) in int_names.iter().zip(&ints) {
            add(name, int(v));
        }
        add("bot_only", boolean(&bools[0]));
        add("is_resolved", boolean(&bools[1]));
        let time_names = [
            "started_at",
            "resolved_at",
            "first_human_reply_at",
            "last_event_at",
            "handoff_at",
            "first_customer_message_at",
        ];
        for (name, v) in time_names.iter().zip(&times) {
            add(name, ts(v));
        }
        add("human_frt_s", Arc::new(Float64Array::from(floats)));
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("{e}"));
        // Two batches in two partitions: sums are merged as in the service.
        let (a, b) = (batch.slice(0, n / 2), batch.slice(n / 2, n - n / 2));
        let table =
            datafusion::datasource::MemTable::try_new(schema, vec![vec![a], vec![b]]).unwrap_or_else(|e| panic!("{e}"));
        let ctx = SessionContext::new();
        ctx.register_table("conversations", Arc::new(table))
            .unwrap_or_else(|e| panic!("{e}"));
        ctx
    }

    fn same(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// The cells summed for a key are what the per-queue query computes:
    /// every key shape, a value absent from the data, null dimensions
    /// (never matching), another tenant's rows and rows outside the window.
    #[tokio::test]
    async fn cells_answer_every_queue_as_its_own_query_does() {
        let ctx = conversations(6000);
        const HOUR: i64 = 3_600_000_000;
        let (from, to, step) = (2 * 24 * HOUR, 20 * 24 * HOUR + HOUR / 2, HOUR / 2);
        let cells = Cells::read(&ctx, "acme", from, to, step)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let keys = [
            "*",
            "q1",
            "team:returns",
            "channel:whatsapp,language:en",
            "channel:email,language:de,team:dach",
            "channel_account:acc2,region:eu,customer_tier:vip,queue:q2",
            "channel:webchat,language:en,team:billing,queue:q1,channel_account:acc1,region:us,customer_tier:regular",
            "team:nobody",
            "channel:sms",
        ];
        let mut matched = 0.0;
        for text in keys {
            let key = QueueKey::parse(text).unwrap_or_else(|e| panic!("{e}"));
            let want = history(&ctx, "acme", &key, from, to, step)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let got = cells.history(&key);
            assert_eq!(got.counts, want.counts, "{text}");
            assert_eq!(got.tenant_counts, want.tenant_counts, "{text}");
            assert_eq!(got.measured.len(), want.measured.len(), "{text}");
            for (i, (g, w)) in got.measured.iter().zip(&want.measured).enumerate() {
                let pairs = [
                    (g.conversations, w.conversations),
                    (g.needs_human, w.needs_human),
                    (g.hold_s_sum, w.hold_s_sum),
                    (g.hold_n, w.hold_n),
                    (g.exposure_s_sum, w.exposure_s_sum),
                    (g.abandons, w.abandons),
                ];
                assert!(
                    pairs.iter().all(|(g, w)| same(*g, *w)),
                    "{text} interval {i}: {g:?} vs {w:?}"
                );
            }
            let m = want.measured_over(0..want.measured.len());
            if text != "*" {
                matched += m.conversations;
            }
            match text {
                "team:nobody" | "channel:sms" => assert_eq!(m.conversations, 0.0, "{text}"),
                // Seven values at once: rare in this data.
                _ if key.parts.len() > 3 => {}
                "*" => assert!(m.hold_n > 0.0 && m.abandons > 0.0 && m.exposure_s_sum > 0.0, "{m:?}"),
                _ => assert!(m.conversations > 0.0, "{text}: {m:?}"),
            }
        }
        assert!(matched > 0.0);
        // The other tenant and the rows outside the window are not counted.
        let all = cells.history(&QueueKey::default());
        let total: f64 = all.tenant_counts.iter().sum();
        assert!(total > 2000.0 && total < 4800.0, "{total}");
    }
}
