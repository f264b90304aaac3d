//! Materialized KPI facts and hourly rollups: the KPI
//! overview in time proportional to the hours of the window, not to the
//! events behind it.
//!
//! # What is kept, per tenant, in memory
//!
//! - **facts**: one [`Fact`] per conversation, read from the
//!   `conversations`, `messages` and `orders` views (so the definitions stay
//!   the `.sql` files'): dimensions, durations, flags, customer-turn
//!   waits, replying agents, attributed orders per currency;
//! - **cells**: one [`Summary`] per (UTC hour of `started_at`, channel):
//!   counts and exact sums for every rate and mean, and mergeable quantile
//!   sketches ([`sketch`]) for the medians and p90s;
//! - the time-based inputs: orders placed (repurchase), agent online
//!   intervals (labour cost), `cost.incurred` amounts;
//! - **rows**: the `conversations` view's own rows, every column, as
//!   computed with the facts ([`TenantRollup::conversations_table`]); the
//!   server reads `conversations` from them instead of recomputing the
//!   view from events per query.
//!
//! # Building in slices
//!
//! The first build does not run the views over the tenant's whole history
//! at once (memory grows with the events a query holds: 11.5 GiB for a
//! 1M-conversation lake). A first pass reads each conversation's first and
//! last event; then the lake is read in slices of about
//! [`SLICE_CONVERSATIONS`] conversations by first event
//! ([`EventRange`]): each slice holds every event of the conversations
//! that start in it (it ends after the last of their events), the events
//! that credit orders to them ([`CREDIT_TYPES`], up to an attribution
//! window past the slice) and refunds and agent status changes
//! ([`LONG_HORIZON_TYPES`], to the end; few, read from the lake once per
//! build and kept in memory), so each conversation comes out whole, as
//! one query over everything would compute it, and each slice reads only
//! its own days from the lake. Conversations seen in part at a slice's
//! end are recomputed whole by the next slice.
//!
//! # Answering a window
//!
//! A window `[from, to)` (local days in any IANA zone are whole UTC hours
//! except in zones with :30/:45 offsets) is the merge of the cells of its
//! whole hours plus the facts of its partial first and last hour. Filters
//! and groups on `channel` stay on the cells; any other dimension scans
//! the facts of the window (a binary search on `started_at`, then a pass
//! over those conversations; never over events).
//!
//! Rates, counts and means are computed from the same facts as the SQL
//! overview (`sql/kpis/overview.sql`) and equal it (up to floating-point
//! summation order); medians and p90s are within [`sketch::RELATIVE_ERROR`]
//! (1 %) relative, or 1 µs absolute, of the SQL path's exact
//! `percentile_cont` (pinned by tests in `api/src/kpi_routes/`).
//!
//! # Staying current
//!
//! [`TenantRollup::refresh`] compares the lake's files (Delta log) and the
//! not-yet-flushed buffer with what it last saw, and recomputes only what
//! new data can change: the UTC days (lake partitions) touched give a time
//! `lo`; it moves back to the first event of every conversation with an
//! event in those days, to `placed_at − attribution window` for orders
//! without a conversation (they credit an earlier conversation), to the
//! credited conversation of refunded orders, and to the start of open
//! online intervals of agents that changed status; and, since deleted or
//! compacted files count as touched days too (so GDPR erasure reaches the
//! rollups), to the first event of every known conversation with events
//! in a touched day. Every conversation whose first event is at or after
//! `lo` is then recomputed whole from the events since `lo` (so a
//! conversation spanning a flush or a day boundary comes out as if
//! computed at once; older conversations, seen only in part from `lo`,
//! keep their facts), and the cells from `lo`'s hour on are rebuilt from
//! the facts. A change of the tenant's
//! attribution window rebuilds everything; of the SLA target, the cells.
//!
//! Known limits (documented rather than hidden): an agent interval that
//! opened before `lo` and whose agent changed no status in the new data is
//! kept as it was; a repeated `order.placed` of the same order across `lo`
//! keeps the later one until the next full build.

mod kept;
pub mod sketch;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use ingest::ReadView;

use self::kept::KeptRows;
pub use self::kept::KeptSnapshot;
use self::sketch::{Sketch, SketchAcc};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;
/// "No value" in an interned id slot.
const NONE: u32 = u32::MAX;

/// A glossary dimension conversations can be filtered and grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Channel,
    ChannelAccount,
    Queue,
    Team,
    Agent,
    Language,
    Region,
    CustomerTier,
    Tag,
    Variant,
}

impl Dim {
    /// The slot of a single-valued dimension in [`Fact::dims`].
    fn slot(self) -> Option<usize> {
        Some(match self {
            Dim::Channel => 0,
            Dim::ChannelAccount => 1,
            Dim::Queue => 2,
            Dim::Team => 3,
            Dim::Agent => 4,
            Dim::Language => 5,
            Dim::Region => 6,
            Dim::CustomerTier => 7,
            Dim::Tag | Dim::Variant => return None,
        })
    }
}

/// Conversations whose `dim` is one of `values`; `None`: that have none.
#[derive(Debug, Clone, PartialEq)]
pub struct FactFilter {
    pub dim: Dim,
    pub values: Option<Vec<String>>,
}

/// The tenant settings the facts and cells depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantConfig {
    pub sla_target_us: i64,
    pub attribution_window_days: u32,
}

/// An hourly labour rate; `team: None` is every other team's.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyRate {
    pub team: Option<String>,
    pub rate: f64,
    pub currency: String,
}

/// One row of the overview, as `sql/kpis/overview.sql` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewRow {
    pub kpi: String,
    pub measure: String,
    pub segment: String,
    pub value: Option<f64>,
    pub n: i64,
}

#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.intern(s))
    }
}

const RESOLVED: u16 = 1;
const EVER_RESOLVED: u16 = 2;
const REOPENED_7D: u16 = 4;
const BOT_REPLIED: u16 = 8;
const HANDED_OFF: u16 = 16;
const BOT_ONLY: u16 = 32;
const CONVERTED: u16 = 64;
const CSAT_REQUESTED: u16 = 128;
const HUMAN_HANDLED: u16 = 256;

/// Reply sender of a customer turn.
const SEG_BOT: u8 = 0;
const SEG_HUMAN: u8 = 1;
const SEG_OTHER: u8 = 2;

/// A NULL instant of a [`Fact`]; a NULL duration is NaN. A million facts
/// are held at once: `Option`s would cost them 8 bytes a field more.
const NO_US: i64 = i64::MIN;
const NO_SCORE: i32 = i32::MIN;

/// One conversation, as much as the overview needs of it.
#[derive(Debug, Clone)]
struct Fact {
    id: Arc<str>,
    first_event_us: i64,
    last_event_us: i64,
    /// [`NO_US`] when NULL, as the other instants.
    started_us: i64,
    /// Interned channel, channel_account, queue, team, agent, language,
    /// region, customer_tier ([`NONE`] when NULL).
    dims: [u32; 8],
    /// Interned tags, then experiment variants, then replying agents, in
    /// one allocation: [`Fact::tags`], [`Fact::variants`],
    /// [`Fact::replying_agents`].
    ids: Box<[u32]>,
    n_tags: u16,
    n_variants: u16,
    /// frt_s, human_frt_s, handling_s; NaN when NULL.
    durations: [f64; 3],
    first_customer_message_us: i64,
    first_reply_us: i64,
    flags: u16,
    agent_replies: u32,
    copilot_replies: u32,
    /// [`NO_SCORE`] when NULL.
    csat_score: i32,
    /// Customer-turn waits in seconds and who answered.
    turns: Box<[(f64, u8)]>,
    /// Attributed orders per currency: (currency, net amount, orders).
    orders: Box<[(u32, f64, u32)]>,
}

fn opt_us(us: i64) -> Option<i64> {
    (us != NO_US).then_some(us)
}

impl Fact {
    fn tags(&self) -> &[u32] {
        &self.ids[..usize::from(self.n_tags)]
    }

    fn variants(&self) -> &[u32] {
        &self.ids[usize::from(self.n_tags)..usize::from(self.n_tags) + usize::from(self.n_variants)]
    }

    fn replying_agents(&self) -> &[u32] {
        &self.ids[usize::from(self.n_tags) + usize::from(self.n_variants)..]
    }

    fn started(&self) -> Option<i64> {
        opt_us(self.started_us)
    }

    fn csat(&self) -> Option<i32> {
        (self.csat_score != NO_SCORE).then_some(self.csat_score)
    }

    /// Sets the replying agents (they come after the conversation's row).
    fn set_replying_agents(&mut self, agents: &[u32]) {
        let lists = usize::from(self.n_tags) + usize::from(self.n_variants);
        let mut ids = Vec::with_capacity(lists + agents.len());
        ids.extend_from_slice(&self.ids[..lists]);
        ids.extend_from_slice(agents);
        self.ids = ids.into_boxed_slice();
    }

    fn matches(&self, filters: &[(Dim, Option<Vec<u32>>)]) -> bool {
        filters.iter().all(|(dim, values)| {
            let list: &[u32] = match dim {
                Dim::Tag => self.tags(),
                Dim::Variant => self.variants(),
                _ => {
                    let v = self.dims[dim.slot().unwrap_or(0)];
                    return match values {
                        None => v == NONE,
                        Some(vs) => v != NONE && vs.contains(&v),
                    };
                }
            };
            match values {
                None => list.is_empty(),
                Some(vs) => list.iter().any(|t| vs.contains(t)),
            }
        })
    }
}

/// A growable bit set of interned ids (replying agents).
#[derive(Debug, Clone, Default)]
struct IdSet(Vec<u64>);

impl IdSet {
    fn insert(&mut self, id: u32) {
        let (w, b) = ((id / 64) as usize, id % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }
    fn union(&mut self, other: &IdSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The order of groups: by the first dimension's value, then the
/// second's, and so on, values by name and `None` (NULL or empty) last.
fn group_order(a: &[Option<String>], b: &[Option<String>]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => x.cmp(y),
            (x, y) => y.is_some().cmp(&x.is_some()),
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Tag counts of the conversations of a window that have a tag
/// ([`TenantRollup::tag_counts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagCounts {
    /// Conversations with at least one tag.
    pub tagged: u64,
    /// Conversations per tag.
    pub tags: HashMap<String, u64>,
    /// Conversations per ordered pair of two different tags (both orders).
    pub pairs: HashMap<(String, String), u64>,
}

/// Every combination of a fact's values of some dimensions: one for
/// scalar dimensions, one per tag (variant) for the list ones, with
/// [`NONE`] for NULL or an empty list. Its buffers serve fact after fact.
struct Combinations<'a> {
    dims: &'a [Dim],
    values: Vec<Vec<u32>>,
    key: Vec<u32>,
    at: Vec<usize>,
}

impl<'a> Combinations<'a> {
    fn new(dims: &'a [Dim]) -> Self {
        Self {
            dims,
            values: vec![Vec::new(); dims.len()],
            key: vec![NONE; dims.len()],
            at: vec![0; dims.len()],
        }
    }

    /// Calls `visit` with each combination of `f`'s values (the key holds
    /// interned ids, a value per dimension).
    fn each(&mut self, f: &Fact, mut visit: impl FnMut(&[u32])) {
        for (d, v) in self.dims.iter().zip(self.values.iter_mut()) {
            v.clear();
            match d.slot() {
                Some(k) => v.push(f.dims[k]),
                None => {
                    v.extend_from_slice(if *d == Dim::Tag { f.tags() } else { f.variants() });
                    v.sort_unstable();
                    v.dedup();
                    if v.is_empty() {
                        v.push(NONE);
                    }
                }
            }
        }
        self.at.fill(0);
        'combinations: loop {
            for (k, &i) in self.at.iter().enumerate() {
                self.key[k] = self.values[k][i];
            }
            visit(&self.key);
            for k in (0..self.dims.len()).rev() {
                self.at[k] += 1;
                if self.at[k] < self.values[k].len() {
                    continue 'combinations;
                }
                self.at[k] = 0;
            }
            break;
        }
    }
}

/// Something a duration value can be added to.
trait AddValue: Default {
    fn add_value(&mut self, x: f64);
}
impl AddValue for Sketch {
    fn add_value(&mut self, x: f64) {
        self.add(x)
    }
}
impl AddValue for SketchAcc {
    fn add_value(&mut self, x: f64) {
        self.add(x)
    }
}

/// Durations in output order: (kpi, segment).
const DURATION_KEYS: [(&str, &str); 6] = [
    ("frt_s", "all"),
    ("human_frt_s", "all"),
    ("handling_s", "all"),
    ("response_s", "all"),
    ("response_s", "bot"),
    ("response_s", "human"),
];

/// Mergeable aggregates of a set of conversations: a rollup cell
/// (`Summary<Sketch>`) or a query's running total (`Summary<SketchAcc>`).
#[derive(Debug, Clone, Default)]
struct Summary<S> {
    conversations: u64,
    durations: [S; 6],
    /// Conversations behind each duration.
    duration_n: [u64; 6],
    sla_met: u64,
    /// Conversations with a first reply (SLA met or missed whatever the time).
    sla_answered: u64,
    /// First customer message of conversations nobody answered yet: missed
    /// once the target has passed, undecided before.
    unanswered_since: Vec<i64>,
    resolved: u64,
    ever_resolved: u64,
    reopened: u64,
    bot_replied: u64,
    transferred: u64,
    bot_only: u64,
    converted: u64,
    human_handled: u64,
    agent_replies: u64,
    copilot_replies: u64,
    csat_n: u64,
    csat_sum: i64,
    csat_distribution: [u64; 5],
    csat_top2: u64,
    csat_requested: u64,
    csat_answered: u64,
    agents: IdSet,
    /// currency → (net amount, orders, conversations)
    aov: BTreeMap<u32, (f64, u64, u64)>,
}

impl<S: AddValue> Summary<S> {
    fn add_fact(&mut self, f: &Fact, sla_target_us: i64) {
        self.conversations += 1;
        for (i, &d) in f.durations.iter().enumerate() {
            if !d.is_nan() {
                self.durations[i].add_value(d);
                self.duration_n[i] += 1;
            }
        }
        let mut seen = [false; 3];
        for &(wait, seg) in f.turns.iter() {
            self.durations[3].add_value(wait);
            seen[0] = true;
            match seg {
                SEG_BOT => {
                    self.durations[4].add_value(wait);
                    seen[1] = true;
                }
                SEG_HUMAN => {
                    self.durations[5].add_value(wait);
                    seen[2] = true;
                }
                _ => {}
            }
        }
        for (i, s) in seen.iter().enumerate() {
            self.duration_n[3 + i] += u64::from(*s);
        }
        if let Some(fcm) = opt_us(f.first_customer_message_us) {
            match opt_us(f.first_reply_us) {
                Some(reply) => {
                    self.sla_answered += 1;
                    self.sla_met += u64::from(reply - fcm <= sla_target_us);
                }
                None => self.unanswered_since.push(fcm),
            }
        }
        let flag = |bit: u16| u64::from(f.flags & bit != 0);
        self.resolved += flag(RESOLVED);
        self.ever_resolved += flag(EVER_RESOLVED);
        self.reopened += u64::from(f.flags & EVER_RESOLVED != 0 && f.flags & REOPENED_7D != 0);
        self.bot_replied += flag(BOT_REPLIED);
        self.transferred += u64::from(f.flags & BOT_REPLIED != 0 && f.flags & HANDED_OFF != 0);
        self.bot_only += flag(BOT_ONLY);
        self.converted += flag(CONVERTED);
        self.human_handled += flag(HUMAN_HANDLED);
        self.agent_replies += u64::from(f.agent_replies);
        self.copilot_replies += u64::from(f.copilot_replies);
        if let Some(score) = f.csat() {
            self.csat_n += 1;
            self.csat_sum += i64::from(score);
            if (1..=5).contains(&score) {
                self.csat_distribution[(score - 1) as usize] += 1;
            }
            self.csat_top2 += u64::from(score >= 4);
        }
        if f.flags & CSAT_REQUESTED != 0 {
            self.csat_requested += 1;
            self.csat_answered += u64::from(f.csat().is_some());
        }
        for &a in f.replying_agents() {
            self.agents.insert(a);
        }
        for &(cur, net, orders) in f.orders.iter() {
            let e = self.aov.entry(cur).or_insert((0.0, 0, 0));
            e.0 += net;
            e.1 += u64::from(orders);
            e.2 += 1;
        }
    }
}

impl Summary<SketchAcc> {
    fn merge_cell(&mut self, c: &Summary<Sketch>) {
        self.conversations += c.conversations;
        for i in 0..6 {
            self.durations[i].merge(&c.durations[i]);
            self.duration_n[i] += c.duration_n[i];
        }
        self.sla_met += c.sla_met;
        self.sla_answered += c.sla_answered;
        self.unanswered_since.extend_from_slice(&c.unanswered_since);
        self.resolved += c.resolved;
        self.ever_resolved += c.ever_resolved;
        self.reopened += c.reopened;
        self.bot_replied += c.bot_replied;
        self.transferred += c.transferred;
        self.bot_only += c.bot_only;
        self.converted += c.converted;
        self.human_handled += c.human_handled;
        self.agent_replies += c.agent_replies;
        self.copilot_replies += c.copilot_replies;
        self.csat_n += c.csat_n;
        self.csat_sum += c.csat_sum;
        for i in 0..5 {
            self.csat_distribution[i] += c.csat_distribution[i];
        }
        self.csat_top2 += c.csat_top2;
        self.csat_requested += c.csat_requested;
        self.csat_answered += c.csat_answered;
        self.agents.union(&c.agents);
        for (cur, (net, orders, convs)) in &c.aov {
            let e = self.aov.entry(*cur).or_insert((0.0, 0, 0));
            e.0 += net;
            e.1 += orders;
            e.2 += convs;
        }
    }
}

impl Summary<Sketch> {
    fn shrink(&mut self) {
        for d in &mut self.durations {
            d.shrink();
        }
        self.unanswered_since.shrink_to_fit();
    }
}

/// An order placed, for repurchase and for refund look-ups.
#[derive(Debug, Clone)]
struct OrderRec {
    order_id: Arc<str>,
    placed_us: i64,
    /// Interned in [`TenantRollup::customers`]; [`NONE`] without one.
    customer: u32,
    attributed: Option<Arc<str>>,
}

/// An online interval of an agent.
#[derive(Debug, Clone)]
struct OnlineInterval {
    agent: u32,
    team: u32,
    start_us: i64,
    end_us: Option<i64>,
}

/// The lake as a rollup last saw it, for one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
struct LakeMark {
    /// Data file path → its `event_date` partition (`YYYY-MM-DD`).
    files: BTreeMap<String, String>,
    /// Identity of the buffered batches holding the tenant's rows.
    buffer: Vec<(usize, usize)>,
    /// UTC days (since the epoch) of the tenant's buffered rows.
    buffer_days: BTreeSet<i32>,
}

fn lake_mark(view: &ReadView, tenant: &str) -> LakeMark {
    let mut mark = LakeMark::default();
    if let Some(table) = &view.table {
        if let Ok(snapshot) = table.snapshot() {
            for f in snapshot.log_data().iter() {
                let path = f.object_store_path();
                let mut tenant_ok = false;
                let mut date = None;
                for part in path.parts() {
                    let p = part.as_ref();
                    if let Some(t) = p.strip_prefix("tenant_id=") {
                        tenant_ok = t == tenant;
                    } else if let Some(d) = p.strip_prefix("event_date=") {
                        date = Some(d.to_string());
                    }
                }
                if let (true, Some(d)) = (tenant_ok, date) {
                    mark.files.insert(path.to_string(), d);
                }
            }
        }
    }
    for b in &view.buffered {
        let (Some(t), Some(d)) = (b.column_by_name("tenant_id"), b.column_by_name("event_date")) else {
            continue;
        };
        let (Some(t), Some(d)) = (
            t.as_string_opt::<i32>(),
            d.as_primitive_opt::<arrow::datatypes::Date32Type>(),
        ) else {
            continue;
        };
        let mut any = false;
        for r in 0..b.num_rows() {
            if t.is_valid(r) && t.value(r) == tenant {
                any = true;
                if d.is_valid(r) {
                    mark.buffer_days.insert(d.value(r));
                }
            }
        }
        if any {
            mark.buffer.push((t.values().as_ptr() as usize, b.num_rows()));
        }
    }
    mark
}

/// The tenants with rows in the lake or the buffer of `view`.
pub fn tenants(view: &ReadView) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(table) = &view.table {
        if let Ok(snapshot) = table.snapshot() {
            for f in snapshot.log_data().iter() {
                for part in f.object_store_path().parts() {
                    if let Some(t) = part.as_ref().strip_prefix("tenant_id=") {
                        out.insert(t.to_string());
                    }
                }
            }
        }
    }
    for b in &view.buffered {
        if let Some(t) = b.column_by_name("tenant_id").and_then(|t| t.as_string_opt::<i32>()) {
            out.extend(t.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// Days since the epoch of a `YYYY-MM-DD` partition value.
fn partition_day(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days() as i32)
}

fn day_literal(day: i32) -> String {
    let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(day))))
        .unwrap_or_default();
    format!("CAST('{}' AS DATE)", d.format("%Y-%m-%d"))
}

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefreshStats {
    /// Recomputed from scratch (first use, or the attribution window changed).
    pub full: bool,
    /// Conversations recomputed.
    pub conversations: usize,
    /// Recomputed from this instant on (µs since the epoch), when incremental.
    pub since_us: Option<i64>,
    /// Slices a full build read the lake in.
    pub slices: usize,
}

/// The materialized facts and rollups of one tenant.
#[derive(Debug)]
pub struct TenantRollup {
    config: Option<TenantConfig>,
    mark: LakeMark,
    names: Interner,
    customers: Interner,
    facts: Vec<Option<Fact>>,
    free: Vec<usize>,
    by_id: HashMap<Arc<str>, usize>,
    by_start: BTreeSet<(i64, usize)>,
    by_first_event: BTreeSet<(i64, usize)>,
    /// (hour start µs, channel) → summary of the conversations started then.
    cells: BTreeMap<(i64, u32), Summary<Sketch>>,
    /// Sorted by `placed_us`.
    orders: Vec<OrderRec>,
    order_index: HashMap<Arc<str>, usize>,
    /// Sorted by `start_us`.
    online: Vec<OnlineInterval>,
    /// `cost.incurred`: (occurred µs, currency, amount), sorted by time.
    costs: Vec<(i64, u32, f64)>,
    /// Windows with at most this many conversations are answered from the
    /// facts with exact quantiles, not from the cells' sketches.
    exact_below: Option<u64>,
    /// A full build reads the lake in slices of about this many conversations.
    slice_conversations: Option<u64>,
    /// The `conversations` view's rows, as computed when their facts were
    /// (all columns; every field nullable), kept as compressed Parquet
    /// ([`Kept::Conversations`]).
    rows: KeptRows,
    /// The `experiment.exposed` events, the columns the `exposures` view
    /// reads ([`EXPOSURE_COLUMNS`]), by `occurred_at`.
    exposure_events: KeptRows,
    /// The `script_uses` view's rows of the materialized conversations,
    /// with each conversation's `first_event_at` (what they are dropped by).
    script_uses: KeptRows,
}

impl Default for TenantRollup {
    fn default() -> Self {
        Self {
            config: None,
            mark: LakeMark::default(),
            names: Interner::default(),
            customers: Interner::default(),
            facts: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            by_start: BTreeSet::new(),
            by_first_event: BTreeSet::new(),
            cells: BTreeMap::new(),
            orders: Vec::new(),
            order_index: HashMap::new(),
            online: Vec::new(),
            costs: Vec::new(),
            exact_below: None,
            slice_conversations: None,
            rows: KeptRows::new("first_event_at"),
            exposure_events: KeptRows::new("occurred_at"),
            script_uses: KeptRows::new("first_event_at"),
        }
    }
}

/// The tables a rollup keeps, each readable as a [`KeptSnapshot`]
/// ([`TenantRollup::snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The `conversations` view's rows (every column, all nullable).
    Conversations,
    /// The `experiment.exposed` events, the columns the `exposures` view
    /// reads ([`EXPOSURE_COLUMNS`]).
    ExposureEvents,
    /// The `script_uses` view's rows, with each conversation's
    /// `first_event_at`.
    ScriptUses,
}

/// The columns of `events` the `exposures` view reads: what a rollup keeps
/// of each `experiment.exposed` event ([`Kept::ExposureEvents`]).
pub const EXPOSURE_COLUMNS: &str =
    "tenant_id, type, experiment_key, variant_key, unit_id, conversation_id, customer_id, occurred_at, event_id";

/// Default of [`TenantRollup::set_exact_below`].
pub const EXACT_BELOW: u64 = 20_000;

/// Default of [`TenantRollup::set_slice_conversations`].
pub const SLICE_CONVERSATIONS: u64 = 25_000;

/// Event types a bounded slice reads up to [`EventRange::credit_until_us`]:
/// what credits an order to a conversation (conversation starts and the
/// orders placed), a small share of the events. Of the starts, only those
/// of [`CREDIT_CUSTOMERS`]: a later conversation matters to a slice only
/// when it takes the credit of an order from one of the slice's.
pub const CREDIT_TYPES: [&str; 2] = ["conversation.started", "order.placed"];

/// The table a bounded slice's session holds with the `customer_id`s
/// that started a conversation in the slice and placed an order after it,
/// up to [`EventRange::credit_until_us`]
/// ([`EventRange::credit_customers_sql`]).
pub const CREDIT_CUSTOMERS: &str = "credit_customers";

/// Event types a bounded slice reads to the end: refunds of orders
/// credited to its conversations and agent status changes that close its
/// online intervals, which may come any time later (few events).
pub const LONG_HORIZON_TYPES: [&str; 2] = ["order.refunded", "agent.status_changed"];

/// The events a rollup session holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRange {
    /// Events at or after this instant (µs since the epoch); `None`: all.
    pub since_us: Option<i64>,
    /// Events before this instant, except those of [`CREDIT_TYPES`] (read
    /// up to `credit_until_us`) and [`LONG_HORIZON_TYPES`] (read to the
    /// end); `None`: no bound.
    pub until_us: Option<i64>,
    /// With `until_us`: where [`CREDIT_TYPES`] end (at least `until_us`).
    pub credit_until_us: Option<i64>,
}

/// `occurred_at` at or after `us` (µs since the epoch), with the
/// `event_date` term that lets the lake prune partitions.
fn at_or_after(us: i64) -> String {
    format!(
        "event_date >= {} AND occurred_at >= {}",
        day_literal(us.div_euclid(DAY_US) as i32),
        instant_literal(us)
    )
}

/// `occurred_at` before `us`, with its `event_date` term.
fn before(us: i64) -> String {
    format!(
        "event_date <= {} AND occurred_at < {}",
        day_literal(us.div_euclid(DAY_US) as i32),
        instant_literal(us)
    )
}

fn instant_literal(us: i64) -> String {
    format!("arrow_cast(arrow_cast({us}, 'Int64'), 'Timestamp(Microsecond, Some(\"UTC\"))')")
}

impl EventRange {
    /// The events of [`LONG_HORIZON_TYPES`] a bounded range needs beyond
    /// [`Self::predicate`]: the condition over them (they are read once per
    /// build and kept in memory, not re-read from the lake per slice).
    pub fn long_horizon_predicate(&self) -> Option<String> {
        let until = self.until_us?;
        let types: Vec<String> = LONG_HORIZON_TYPES.iter().map(|t| format!("'{t}'")).collect();
        Some(format!(
            "occurred_at >= {} AND type IN ({})",
            instant_literal(until),
            types.join(", ")
        ))
    }

    /// Where [`CREDIT_TYPES`] end: `credit_until_us`, at least `until_us`.
    fn credit_until(&self, until: i64) -> i64 {
        self.credit_until_us.unwrap_or(until).max(until)
    }

    /// The condition over the columns of `events` that selects the range
    /// from the lake (`TRUE` when unbounded), apart from the events of
    /// [`Self::long_horizon_predicate`]. Bounds are whole numbers this
    /// crate formats, never user input; `event_date` terms let the lake
    /// prune partitions.
    pub fn predicate(&self) -> String {
        let mut terms = Vec::new();
        if let Some(since) = self.since_us {
            terms.push(at_or_after(since));
        }
        if let Some(until) = self.until_us {
            let [start, placed] = CREDIT_TYPES;
            terms.push(format!(
                "(({}) OR ({} AND (type = '{placed}' OR (type = '{start}' AND customer_id IN (SELECT customer_id FROM {CREDIT_CUSTOMERS})))))",
                before(until),
                before(self.credit_until(until)),
            ));
        }
        if terms.is_empty() {
            "TRUE".to_string()
        } else {
            terms.join(" AND ")
        }
    }

    /// With `until_us`: the query over `source` (all events, restricted by
    /// `scope`, a condition on its columns) of the [`CREDIT_CUSTOMERS`]
    /// the [`Self::predicate`] reads, to be held in the session under
    /// that name: customers who started a conversation in the range and
    /// placed an order between its end and `credit_until_us`.
    pub fn credit_customers_sql(&self, source: &str, scope: &str) -> Option<String> {
        let until = self.until_us?;
        let since = self
            .since_us
            .map_or(String::new(), |s| format!(" AND {}", at_or_after(s)));
        let [start, placed] = CREDIT_TYPES;
        Some(format!(
            "SELECT DISTINCT customer_id FROM {source} \
             WHERE {scope} AND type = '{placed}' AND customer_id IS NOT NULL AND {} AND {} \
             AND customer_id IN (SELECT customer_id FROM {source} WHERE {scope} AND type = '{start}'{since} AND {})",
            at_or_after(until),
            before(self.credit_until(until)),
            before(until),
        ))
    }
}

/// Gives sessions whose `events` hold only the tenant's rows in a range,
/// with every view of `sql/views/` built on them.
pub trait SessionSource {
    fn session(&self, range: EventRange) -> impl Future<Output = Result<SessionContext>> + Send;
}

impl TenantRollup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Windows with at most `n` conversations get exact medians and p90s
    /// (from the facts); larger ones the sketches' (default [`EXACT_BELOW`]).
    pub fn set_exact_below(&mut self, n: u64) {
        self.exact_below = Some(n);
    }

    /// A full build reads the lake in slices of about `n` conversations
    /// each (by first event), so its memory is bounded by the slice, not by
    /// the tenant's history (default [`SLICE_CONVERSATIONS`]).
    pub fn set_slice_conversations(&mut self, n: u64) {
        self.slice_conversations = Some(n.max(1));
    }

    /// Whether a first build has run (until then a refresh is a full build).
    pub fn is_built(&self) -> bool {
        self.config.is_some()
    }

    /// Conversations materialized.
    pub fn conversations(&self) -> usize {
        self.by_id.len()
    }

    /// The materialized rows of the `conversations` view (every column, as
    /// the view computed them when the conversation's facts were last
    /// recomputed) and their schema, in which every field is nullable;
    /// `None` before the first refresh. `sla_met` depends on the clock for
    /// unanswered conversations: readers recompute it at query time.
    ///
    /// Decodes every row: for tests and small tables; scans read
    /// [`Self::snapshot`]. `None` also if the rows cannot be
    /// decoded (they were encoded by this process: not expected).
    pub fn conversations_table(&self) -> Option<(SchemaRef, Vec<RecordBatch>)> {
        let schema = self.rows.schema()?;
        match self.rows.batches() {
            Ok(b) => Some((schema, b)),
            Err(e) => {
                tracing::error!(error = %e, "materialized conversations do not decode");
                None
            }
        }
    }

    /// The rows of one materialized table at this moment, for a scan;
    /// `None` before the first refresh.
    pub fn snapshot(&self, kept: Kept) -> Option<KeptSnapshot> {
        match kept {
            Kept::Conversations => &self.rows,
            Kept::ExposureEvents => &self.exposure_events,
            Kept::ScriptUses => &self.script_uses,
        }
        .snapshot()
    }

    fn kept_tables(&self) -> [&KeptRows; 3] {
        [&self.rows, &self.exposure_events, &self.script_uses]
    }

    /// Changes whenever anything materialized does (the conversations'
    /// rows and facts, the exposure events, the script uses); unique in
    /// the process; `None` before the first refresh. Caches of answers
    /// computed from them key on it.
    pub fn data_version(&self) -> Option<u64> {
        self.rows
            .schema()
            .map(|_| self.kept_tables().iter().map(|k| k.version()).sum())
    }

    /// Rows of the materialized tables and their encoded size in bytes.
    pub fn rows_held(&self) -> (usize, usize) {
        let kept = self.kept_tables();
        (
            kept.iter().map(|k| k.rows()).sum(),
            kept.iter().map(|k| k.bytes()).sum(),
        )
    }

    /// Brings the rollup up to date with `view` (see the module docs).
    /// `source` gives sessions over the tenant's events only.
    pub async fn refresh(
        &mut self,
        view: &ReadView,
        tenant: &str,
        config: TenantConfig,
        source: &impl SessionSource,
    ) -> Result<RefreshStats> {
        let mark = lake_mark(view, tenant);
        let full = self
            .config
            .is_none_or(|c| c.attribution_window_days != config.attribution_window_days);
        if full {
            *self = TenantRollup {
                exact_below: self.exact_below,
                slice_conversations: self.slice_conversations,
                ..TenantRollup::default()
            };
            self.config = Some(config);
            let slices = self.slices(source).await?;
            for (i, range) in slices.iter().enumerate() {
                let ctx = source.session(*range).await?;
                // What starts at the next slice's start is that slice's.
                let hi = slices.get(i + 1).and_then(|r| r.since_us);
                self.load(&ctx, range.since_us.unwrap_or(i64::MIN), hi).await?;
            }
            let n = self.by_id.len();
            self.rebuild_cells(i64::MIN);
            self.mark = mark;
            return Ok(RefreshStats {
                full: true,
                conversations: n,
                since_us: None,
                slices: slices.len(),
            });
        }
        if self.config.is_some_and(|c| c.sla_target_us != config.sla_target_us) {
            self.config = Some(config);
            self.rebuild_cells(i64::MIN);
        }
        if mark == self.mark {
            return Ok(RefreshStats::default());
        }
        let mut days: BTreeSet<i32> = BTreeSet::new();
        for (path, date) in &mark.files {
            if !self.mark.files.contains_key(path) {
                days.extend(partition_day(date));
            }
        }
        for (path, date) in &self.mark.files {
            if !mark.files.contains_key(path) {
                days.extend(partition_day(date));
            }
        }
        if mark.buffer != self.mark.buffer {
            days.extend(mark.buffer_days.iter().copied());
            days.extend(self.mark.buffer_days.iter().copied());
        }
        let Some(&first_day) = days.first() else {
            self.mark = mark;
            return Ok(RefreshStats::default());
        };
        let ctx = source.session(EventRange::default()).await?;
        let mut lo = i64::from(first_day) * DAY_US;
        let aw_us = i64::from(config.attribution_window_days) * DAY_US;
        let placeholders: Vec<String> = (1..=days.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT conversation_id, type, arrow_cast(occurred_at, 'Int64') AS at, order_id, agent_id \
             FROM events WHERE event_date IN ({})",
            placeholders.join(", ")
        );
        let day_params: Vec<ScalarValue> = days.iter().map(|d| ScalarValue::Date32(Some(*d))).collect();
        let mut stream = ctx
            .sql(&sql)
            .await?
            .with_param_values(day_params)?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (conv, typ, at, order, agent) = (
                strings(&b, "conversation_id")?,
                strings(&b, "type")?,
                int64s(&b, "at")?,
                strings(&b, "order_id")?,
                strings(&b, "agent_id")?,
            );
            let (conv, typ, order, agent) = (
                conv.as_string::<i32>(),
                typ.as_string::<i32>(),
                order.as_string::<i32>(),
                agent.as_string::<i32>(),
            );
            let at = at.as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                let t = at.value(r);
                lo = lo.min(t);
                if conv.is_valid(r) {
                    if let Some(f) = self.by_id.get(conv.value(r)).and_then(|&i| self.facts[i].as_ref()) {
                        lo = lo.min(f.first_event_us);
                    }
                }
                match typ.value(r) {
                    "order.placed" if conv.is_null(r) => lo = lo.min(t - aw_us),
                    "order.refunded" if order.is_valid(r) => {
                        if let Some(o) = self.order_index.get(order.value(r)).map(|&i| &self.orders[i]) {
                            lo = lo.min(o.placed_us - aw_us);
                            if let Some(f) = o
                                .attributed
                                .as_ref()
                                .and_then(|c| self.by_id.get(c))
                                .and_then(|&i| self.facts[i].as_ref())
                            {
                                lo = lo.min(f.first_event_us);
                            }
                        }
                    }
                    "agent.status_changed" if agent.is_valid(r) => {
                        if let Some(id) = self.names.get(agent.value(r)) {
                            for s in self.online.iter().filter(|s| s.agent == id && s.end_us.is_none()) {
                                lo = lo.min(s.start_us);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        // Conversations with events in a touched day whose events are gone
        // (erased, or rewritten by compaction) are recomputed whole too.
        let touched: Vec<(i64, i64)> = days
            .iter()
            .map(|d| (i64::from(*d) * DAY_US, (i64::from(*d) + 1) * DAY_US))
            .collect();
        for f in self.facts.iter().flatten() {
            if f.first_event_us < lo
                && touched
                    .iter()
                    .any(|(start, end)| f.first_event_us < *end && f.last_event_us >= *start)
            {
                lo = f.first_event_us;
            }
        }
        let ctx = source
            .session(EventRange {
                since_us: Some(lo),
                ..EventRange::default()
            })
            .await?;
        let n = self.load(&ctx, lo, None).await?;
        self.rebuild_cells(lo);
        self.mark = mark;
        Ok(RefreshStats {
            full: false,
            conversations: n,
            since_us: Some(lo),
            slices: 0,
        })
    }

    /// The ranges a full build reads, in order: each holds the whole of
    /// the conversations whose first event falls in it (up to about
    /// [`SLICE_CONVERSATIONS`] of them), its events end after the last of
    /// those conversations' events, and the order, start and agent events
    /// run on to the end ([`LONG_HORIZON_TYPES`]) so that orders placed
    /// later are credited as a whole build would. Conversations that start
    /// before a slice's end and are seen only in part are loaded again,
    /// whole, by the next slice ([`Self::load`] replaces everything from
    /// its `lo` on).
    async fn slices(&self, source: &impl SessionSource) -> Result<Vec<EventRange>> {
        let budget = self.slice_conversations.unwrap_or(SLICE_CONVERSATIONS);
        let ctx = source.session(EventRange::default()).await?;
        let sql = "SELECT arrow_cast(min(occurred_at), 'Int64') AS f, arrow_cast(max(occurred_at), 'Int64') AS l \
                   FROM events WHERE conversation_id IS NOT NULL GROUP BY conversation_id";
        // first-event day → (conversations, latest event of any of them)
        let mut days: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
        let mut stream = ctx.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (f, l) = (int64s(&b, "f")?, int64s(&b, "l")?);
            let (f, l) = (f.as_primitive::<Int64Type>(), l.as_primitive::<Int64Type>());
            for r in 0..b.num_rows() {
                if f.is_valid(r) && l.is_valid(r) {
                    let e = days.entry(f.value(r).div_euclid(DAY_US)).or_insert((0, i64::MIN));
                    e.0 += 1;
                    e.1 = e.1.max(l.value(r));
                }
            }
        }
        // An order placed before `hi + window` may credit a conversation
        // of the slice (one that started before `hi`); later ones cannot.
        let window_us = i64::from(self.config.map_or(7, |c| c.attribution_window_days)) * DAY_US;
        let mut ranges = Vec::new();
        let (mut since, mut count, mut last) = (None, 0u64, i64::MIN);
        for (day, (n, day_last)) in days {
            if count > 0 && count + n > budget {
                let hi = day * DAY_US;
                let until = hi.max(last.saturating_add(1));
                ranges.push(EventRange {
                    since_us: since,
                    until_us: Some(until),
                    credit_until_us: Some(until.max(hi.saturating_add(window_us).saturating_add(DAY_US))),
                });
                (since, count, last) = (Some(hi), 0, i64::MIN);
            }
            count += n;
            last = last.max(day_last);
        }
        ranges.push(EventRange {
            since_us: since,
            until_us: None,
            credit_until_us: None,
        });
        Ok(ranges)
    }

    /// Replaces everything from `lo` on with what `ctx` computes (its
    /// events start at `lo`); returns the conversations loaded. With `hi`
    /// (a slice of a full build), conversations whose first event is at or
    /// after `hi` and exposure events from `hi` on are not kept: the next
    /// slice, which starts there, loads them whole (a slice also sees the
    /// starts of an attribution window past its end, for the credit of
    /// orders; keeping their partial conversations only to drop them
    /// again cost memory and time).
    async fn load(&mut self, ctx: &SessionContext, lo: i64, hi: Option<i64>) -> Result<usize> {
        let below = |column: &str| hi.map_or(String::new(), |hi| format!(" AND arrow_cast({column}, 'Int64') < {hi}"));
        // facts with first_event >= lo go
        let gone: Vec<(i64, usize)> = self.by_first_event.range((lo, 0)..).copied().collect();
        for (_, i) in gone {
            if let Some(f) = self.facts[i].take() {
                self.by_id.remove(&f.id);
                self.by_first_event.remove(&(f.first_event_us, i));
                if let Some(s) = f.started() {
                    self.by_start.remove(&(s, i));
                }
                self.free.push(i);
            }
        }
        self.drop_rows_from(lo).await?;
        self.load_exposure_events(ctx, lo, &below("occurred_at")).await?;
        // The view is computed once; its rows are kept and the facts read
        // from them.
        let new_rows = ctx
            .sql(&format!(
                "SELECT * FROM conversations WHERE arrow_cast(first_event_at, 'Int64') >= {lo}{}",
                below("first_event_at")
            ))
            .await?
            .collect()
            .await?;
        let rows_ctx = SessionContext::new();
        if let Some(first) = new_rows.first() {
            rows_ctx.register_table(
                "conversations",
                Arc::new(MemTable::try_new(first.schema(), vec![new_rows.clone()])?),
            )?;
        }
        let mut loaded: HashMap<Arc<str>, Fact> = HashMap::new();
        let conv_sql = format!(
            "SELECT conversation_id, arrow_cast(first_event_at, 'Int64') AS first_event_us, \
                arrow_cast(last_event_at, 'Int64') AS last_event_us, arrow_cast(started_at, 'Int64') AS started_us, \
                channel, channel_account, queue, team, agent_id, language, region, \
                customer_tier, tags, experiment_variants, frt_s, human_frt_s, handling_s, \
                arrow_cast(first_customer_message_at, 'Int64') AS first_customer_message_us, \
                arrow_cast(first_reply_at, 'Int64') AS first_reply_us, \
                is_resolved, resolves, reopened_within_7d, bot_replies, handoffs, bot_only, attributed_orders, \
                agent_replies, copilot_replies, csat_score, csat_requested \
             FROM conversations WHERE arrow_cast(first_event_at, 'Int64') >= {lo}"
        );
        if !new_rows.is_empty() {
            for b in rows_ctx.sql(&conv_sql).await?.collect().await? {
                self.read_conversations(&b, &mut loaded)?;
            }
        }
        // A conversation that began before `lo` is seen only in part from
        // here; no new event touched it (else `lo` would be before its
        // first), so it keeps its fact.
        loaded.retain(|id, _| !self.by_id.contains_key(id));
        self.keep_rows(new_rows, &loaded).await?;
        self.load_script_uses(ctx, &loaded).await?;
        let turns_sql = "SELECT conversation_id, turn_response_s, turn_reply_sender FROM messages \
                         WHERE turn_response_s IS NOT NULL";
        let mut turns: HashMap<Arc<str>, Vec<(f64, u8)>> = HashMap::new();
        let mut stream = ctx.sql(turns_sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (c, w, s) = (
                strings(&b, "conversation_id")?,
                float64s(&b, "turn_response_s")?,
                strings(&b, "turn_reply_sender")?,
            );
            let (c, w, s) = (
                c.as_string::<i32>(),
                w.as_primitive::<Float64Type>(),
                s.as_string::<i32>(),
            );
            for r in 0..b.num_rows() {
                if c.is_null(r) || w.is_null(r) {
                    continue;
                }
                if let Some((k, _)) = loaded.get_key_value(c.value(r)) {
                    let seg = match s.is_valid(r).then(|| s.value(r)) {
                        Some("bot") => SEG_BOT,
                        Some("agent") => SEG_HUMAN,
                        _ => SEG_OTHER,
                    };
                    turns.entry(k.clone()).or_default().push((w.value(r), seg));
                }
            }
        }
        let agents_sql = "SELECT conversation_id, agent_id FROM messages \
                          WHERE is_reply AND sender = 'agent' AND agent_id IS NOT NULL \
                          GROUP BY conversation_id, agent_id";
        let mut agents: HashMap<Arc<str>, Vec<u32>> = HashMap::new();
        let mut stream = ctx.sql(agents_sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (c, a) = (strings(&b, "conversation_id")?, strings(&b, "agent_id")?);
            let (c, a) = (c.as_string::<i32>(), a.as_string::<i32>());
            for r in 0..b.num_rows() {
                if c.is_null(r) || a.is_null(r) {
                    continue;
                }
                if let Some((k, _)) = loaded.get_key_value(c.value(r)) {
                    let id = self.names.intern(a.value(r));
                    agents.entry(k.clone()).or_default().push(id);
                }
            }
        }
        // orders: placed since lo are recomputed; attributed ones feed facts
        let old_attribution: HashMap<Arc<str>, Arc<str>> = self
            .orders
            .iter()
            .filter(|o| o.placed_us >= lo)
            .filter_map(|o| o.attributed.clone().map(|a| (o.order_id.clone(), a)))
            .collect();
        let keep = self.orders.partition_point(|o| o.placed_us < lo);
        self.orders.truncate(keep);
        let orders_sql = "SELECT order_id, arrow_cast(placed_at, 'Int64') AS placed_us, customer_id, \
                          attributed_conversation_id, currency, CAST(net_amount AS DOUBLE) AS net_amount FROM orders";
        let mut conv_orders: HashMap<Arc<str>, Vec<(u32, f64, u32)>> = HashMap::new();
        let mut new_orders = Vec::new();
        let mut stream = ctx.sql(orders_sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (id, placed, cust, attr, cur, net) = (
                strings(&b, "order_id")?,
                int64s(&b, "placed_us")?,
                strings(&b, "customer_id")?,
                strings(&b, "attributed_conversation_id")?,
                strings(&b, "currency")?,
                float64s(&b, "net_amount")?,
            );
            let (id, placed, cust, attr, cur, net) = (
                id.as_string::<i32>(),
                placed.as_primitive::<Int64Type>(),
                cust.as_string::<i32>(),
                attr.as_string::<i32>(),
                cur.as_string::<i32>(),
                net.as_primitive::<Float64Type>(),
            );
            for r in 0..b.num_rows() {
                if id.is_null(r) || placed.is_null(r) || placed.value(r) < lo {
                    continue;
                }
                let order_id: Arc<str> = Arc::from(id.value(r));
                let mut attributed: Option<Arc<str>> = attr.is_valid(r).then(|| Arc::from(attr.value(r)));
                if let Some((k, _)) = attributed.as_ref().and_then(|a| loaded.get_key_value(a.as_ref())) {
                    let currency = self.names.opt(cur.is_valid(r).then(|| cur.value(r)));
                    let amount = if net.is_valid(r) { net.value(r) } else { f64::NAN };
                    let list = conv_orders.entry(k.clone()).or_default();
                    match list.iter_mut().find(|(c, _, _)| *c == currency) {
                        Some(e) => {
                            e.1 += amount;
                            e.2 += 1;
                        }
                        None => list.push((currency, amount, 1)),
                    }
                } else if attributed.is_none() {
                    // credited to a conversation older than `lo`: keep what was known
                    attributed = old_attribution.get(&order_id).cloned();
                }
                new_orders.push(OrderRec {
                    order_id,
                    placed_us: placed.value(r),
                    customer: if cust.is_valid(r) {
                        self.customers.intern(cust.value(r))
                    } else {
                        NONE
                    },
                    attributed,
                });
            }
        }
        new_orders.sort_by_key(|o| o.placed_us);
        self.orders.extend(new_orders);
        self.order_index = self
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.order_id.clone(), i))
            .collect();

        let keep = self.online.partition_point(|s| s.start_us < lo);
        self.online.truncate(keep);
        let sessions_sql = "SELECT agent_id, team, arrow_cast(started_at, 'Int64') AS started_us, \
                            arrow_cast(ended_at, 'Int64') AS ended_us FROM agent_sessions";
        let mut new_online = Vec::new();
        let mut stream = ctx.sql(sessions_sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (a, t, s, e) = (
                strings(&b, "agent_id")?,
                strings(&b, "team")?,
                int64s(&b, "started_us")?,
                int64s(&b, "ended_us")?,
            );
            let (a, t, s, e) = (
                a.as_string::<i32>(),
                t.as_string::<i32>(),
                s.as_primitive::<Int64Type>(),
                e.as_primitive::<Int64Type>(),
            );
            for r in 0..b.num_rows() {
                if s.is_null(r) || s.value(r) < lo {
                    continue;
                }
                new_online.push(OnlineInterval {
                    agent: self.names.opt(a.is_valid(r).then(|| a.value(r))),
                    team: self.names.opt(t.is_valid(r).then(|| t.value(r))),
                    start_us: s.value(r),
                    end_us: e.is_valid(r).then(|| e.value(r)),
                });
            }
        }
        new_online.sort_by_key(|s| s.start_us);
        self.online.extend(new_online);

        let keep = self.costs.partition_point(|c| c.0 < lo);
        self.costs.truncate(keep);
        let costs_sql = "SELECT arrow_cast(occurred_at, 'Int64') AS at, currency, CAST(amount AS DOUBLE) AS amount \
                         FROM events WHERE type = 'cost.incurred'";
        let mut new_costs = Vec::new();
        let mut stream = ctx.sql(costs_sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (at, cur, amount) = (int64s(&b, "at")?, strings(&b, "currency")?, float64s(&b, "amount")?);
            let (at, cur, amount) = (
                at.as_primitive::<Int64Type>(),
                cur.as_string::<i32>(),
                amount.as_primitive::<Float64Type>(),
            );
            for r in 0..b.num_rows() {
                if at.is_null(r) || at.value(r) < lo || amount.is_null(r) {
                    continue;
                }
                let c = self.names.opt(cur.is_valid(r).then(|| cur.value(r)));
                new_costs.push((at.value(r), c, amount.value(r)));
            }
        }
        new_costs.sort_by_key(|c| c.0);
        self.costs.extend(new_costs);

        let n = loaded.len();
        for (id, mut f) in loaded {
            if let Some(t) = turns.remove(&id) {
                f.turns = t.into_boxed_slice();
            }
            if let Some(a) = agents.remove(&id) {
                f.set_replying_agents(&a);
            }
            if let Some(o) = conv_orders.remove(&id) {
                f.orders = o.into_boxed_slice();
            }
            self.insert_fact(f);
        }
        Ok(n)
    }

    /// Replaces the kept exposure events from `lo` on with those of `ctx`.
    async fn load_exposure_events(&mut self, ctx: &SessionContext, lo: i64, below: &str) -> Result<()> {
        self.exposure_events.drop_from(lo).await?;
        let df = ctx
            .sql(&format!(
                "SELECT {EXPOSURE_COLUMNS} FROM events \
                 WHERE type = 'experiment.exposed' AND arrow_cast(occurred_at, 'Int64') >= {lo}{below}"
            ))
            .await?;
        self.exposure_events.set_schema(nullable_schema(df.schema().as_arrow()));
        let batches = df.collect().await?;
        self.exposure_events.push(&batches).await
    }

    /// Drops the materialized rows of conversations whose first event is
    /// at or after `lo`.
    async fn drop_rows_from(&mut self, lo: i64) -> Result<()> {
        self.rows.drop_from(lo).await?;
        self.script_uses.drop_from(lo).await
    }

    /// Keeps the `script_uses` rows of the conversations in `loaded`, each
    /// with its conversation's first event.
    async fn load_script_uses(&mut self, ctx: &SessionContext, loaded: &HashMap<Arc<str>, Fact>) -> Result<()> {
        let df = ctx
            .sql("SELECT tenant_id, conversation_id, kind, \"key\" FROM script_uses")
            .await?;
        let mut fields: Vec<Field> = df
            .schema()
            .as_arrow()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new(
            "first_event_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ));
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        self.script_uses.set_schema(schema.clone());
        let mut keep = Vec::new();
        for b in df.collect().await? {
            let ids = strings(&b, "conversation_id")?;
            let ids = ids.as_string::<i32>();
            let first = TimestampMicrosecondArray::from(
                (0..b.num_rows())
                    .map(|r| {
                        ids.is_valid(r)
                            .then(|| loaded.get(ids.value(r)).map(|f| f.first_event_us))
                            .flatten()
                    })
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC");
            let mask: BooleanArray = first.iter().map(|v| Some(v.is_some())).collect();
            let mut columns = b.columns().to_vec();
            columns.push(Arc::new(first));
            keep.push(filter_record_batch(
                &RecordBatch::try_new(schema.clone(), columns)?,
                &mask,
            )?);
        }
        self.script_uses.push(&keep).await
    }

    /// Keeps the rows of `batches` whose conversation is in `loaded`, under
    /// the all-nullable schema.
    async fn keep_rows(&mut self, batches: Vec<RecordBatch>, loaded: &HashMap<Arc<str>, Fact>) -> Result<()> {
        if let Some(first) = batches.first() {
            self.rows.set_schema(nullable_schema(&first.schema()));
        }
        let mut keep = Vec::with_capacity(batches.len());
        for b in batches {
            let Some(ids) = b
                .column_by_name("conversation_id")
                .and_then(|c| c.as_string_opt::<i32>())
            else {
                continue;
            };
            let mask: BooleanArray = ids
                .iter()
                .map(|id| Some(id.is_some_and(|id| loaded.contains_key(id))))
                .collect();
            keep.push(filter_record_batch(&b, &mask)?);
        }
        self.rows.push(&keep).await
    }

    fn insert_fact(&mut self, f: Fact) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.facts.push(None);
                self.facts.len() - 1
            }
        };
        self.by_id.insert(f.id.clone(), i);
        self.by_first_event.insert((f.first_event_us, i));
        if let Some(s) = f.started() {
            self.by_start.insert((s, i));
        }
        self.facts[i] = Some(f);
    }

    fn read_conversations(&mut self, b: &RecordBatch, out: &mut HashMap<Arc<str>, Fact>) -> Result<()> {
        let id = strings(b, "conversation_id")?;
        let (first, last, started) = (
            int64s(b, "first_event_us")?,
            int64s(b, "last_event_us")?,
            int64s(b, "started_us")?,
        );
        // In the order of `Fact::dims`.
        let dims: Vec<_> = [
            "channel",
            "channel_account",
            "queue",
            "team",
            "agent_id",
            "language",
            "region",
            "customer_tier",
        ]
        .iter()
        .map(|c| strings(b, c))
        .collect::<Result<_>>()?;
        let (tags, variants) = (string_lists(b, "tags")?, string_lists(b, "experiment_variants")?);
        let (frt, human, handling) = (
            float64s(b, "frt_s")?,
            float64s(b, "human_frt_s")?,
            float64s(b, "handling_s")?,
        );
        let (fcm, reply) = (int64s(b, "first_customer_message_us")?, int64s(b, "first_reply_us")?);
        let bools: Vec<_> = ["is_resolved", "reopened_within_7d", "bot_only", "csat_requested"]
            .iter()
            .map(|c| booleans(b, c))
            .collect::<Result<_>>()?;
        let ints: Vec<_> = [
            "resolves",
            "bot_replies",
            "handoffs",
            "attributed_orders",
            "agent_replies",
            "copilot_replies",
            "csat_score",
        ]
        .iter()
        .map(|c| int64s(b, c))
        .collect::<Result<_>>()?;
        let id = id.as_string::<i32>();
        let (first, last, started) = (
            first.as_primitive::<Int64Type>(),
            last.as_primitive::<Int64Type>(),
            started.as_primitive::<Int64Type>(),
        );
        let dims: Vec<_> = dims.iter().map(|d| d.as_string::<i32>()).collect();
        let (frt, human, handling) = (
            frt.as_primitive::<Float64Type>(),
            human.as_primitive::<Float64Type>(),
            handling.as_primitive::<Float64Type>(),
        );
        let (fcm, reply) = (fcm.as_primitive::<Int64Type>(), reply.as_primitive::<Int64Type>());
        let bools: Vec<_> = bools.iter().map(|a| a.as_boolean()).collect();
        let ints: Vec<_> = ints.iter().map(|a| a.as_primitive::<Int64Type>()).collect();
        let int = |k: usize, r: usize| if ints[k].is_valid(r) { ints[k].value(r) } else { 0 };
        let boolean = |k: usize, r: usize| bools[k].is_valid(r) && bools[k].value(r);
        let opt_f = |a: &arrow::array::Float64Array, r: usize| if a.is_valid(r) { a.value(r) } else { f64::NAN };
        let opt_i = |a: &arrow::array::Int64Array, r: usize| if a.is_valid(r) { a.value(r) } else { NO_US };
        for r in 0..b.num_rows() {
            if id.is_null(r) || first.is_null(r) {
                continue;
            }
            let mut d = [NONE; 8];
            for (k, col) in dims.iter().enumerate() {
                d[k] = self.names.opt(col.is_valid(r).then(|| col.value(r)));
            }
            let mut ids = Vec::new();
            let mut list = |lists: &arrow::array::ListArray, names: &mut Interner| -> u16 {
                if lists.is_null(r) {
                    return 0;
                }
                let v = lists.value(r);
                let v = v.as_string::<i32>();
                let before = ids.len();
                ids.extend(
                    (0..v.len())
                        .filter(|&i| v.is_valid(i))
                        .map(|i| names.intern(v.value(i)))
                        .take(usize::from(u16::MAX)),
                );
                (ids.len() - before) as u16
            };
            let n_tags = list(tags.as_list::<i32>(), &mut self.names);
            let n_variants = list(variants.as_list::<i32>(), &mut self.names);
            // resolves 0, bot_replies 1, handoffs 2, attributed_orders 3,
            // agent_replies 4, copilot_replies 5, csat_score 6
            let mut flags = 0u16;
            let mut set = |bit: u16, on: bool| {
                if on {
                    flags |= bit;
                }
            };
            set(RESOLVED, boolean(0, r));
            set(EVER_RESOLVED, int(0, r) > 0);
            set(REOPENED_7D, boolean(1, r));
            set(BOT_REPLIED, int(1, r) > 0);
            set(HANDED_OFF, int(2, r) > 0);
            set(BOT_ONLY, boolean(2, r));
            set(CONVERTED, int(3, r) > 0);
            set(CSAT_REQUESTED, boolean(3, r));
            set(HUMAN_HANDLED, int(4, r) > 0);
            let fact = Fact {
                id: Arc::from(id.value(r)),
                first_event_us: first.value(r),
                last_event_us: if last.is_valid(r) {
                    last.value(r)
                } else {
                    first.value(r)
                },
                started_us: opt_i(started, r),
                dims: d,
                ids: ids.into_boxed_slice(),
                n_tags,
                n_variants,
                durations: [opt_f(frt, r), opt_f(human, r), opt_f(handling, r)],
                first_customer_message_us: opt_i(fcm, r),
                first_reply_us: opt_i(reply, r),
                flags,
                agent_replies: int(4, r).max(0) as u32,
                copilot_replies: int(5, r).max(0) as u32,
                csat_score: if ints[6].is_valid(r) {
                    ints[6].value(r) as i32
                } else {
                    NO_SCORE
                },
                turns: Box::new([]),
                orders: Box::new([]),
            };
            out.insert(fact.id.clone(), fact);
        }
        Ok(())
    }

    /// Rebuilds the cells of the hours from `lo`'s on.
    fn rebuild_cells(&mut self, lo: i64) {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let h0 = if lo == i64::MIN {
            i64::MIN
        } else {
            lo.div_euclid(HOUR_US) * HOUR_US
        };
        self.cells.split_off(&(h0, 0));
        let mut cells: BTreeMap<(i64, u32), Summary<Sketch>> = BTreeMap::new();
        for &(start, i) in self.by_start.range((h0, 0)..) {
            let Some(f) = self.facts[i].as_ref() else { continue };
            let key = (start.div_euclid(HOUR_US) * HOUR_US, f.dims[0]);
            cells.entry(key).or_default().add_fact(f, target);
        }
        for (k, mut c) in cells {
            c.shrink();
            self.cells.insert(k, c);
        }
    }

    fn resolve_filters(&self, filters: &[FactFilter]) -> Vec<(Dim, Option<Vec<u32>>)> {
        filters
            .iter()
            .map(|f| {
                (
                    f.dim,
                    f.values
                        .as_ref()
                        .map(|vs| vs.iter().filter_map(|v| self.names.get(v)).collect()),
                )
            })
            .collect()
    }

    fn facts_in(&self, from_us: i64, to_us: i64) -> impl Iterator<Item = &Fact> {
        let range = if from_us < to_us {
            self.by_start.range((from_us, 0)..(to_us, 0))
        } else {
            self.by_start.range((0, 0)..(0, 0))
        };
        range.filter_map(|&(_, i)| self.facts[i].as_ref())
    }

    /// The summary of the conversations started in `[from, to)` that pass
    /// `filters`: cells for whole hours when only `channel` filters.
    fn summarize(&self, from_us: i64, to_us: i64, filters: &[FactFilter]) -> Summary<SketchAcc> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        let mut sum = Summary::<SketchAcc>::default();
        let cells_ok = resolved.iter().all(|(d, _)| *d == Dim::Channel);
        let h0 = from_us.div_euclid(HOUR_US) * HOUR_US + if from_us.rem_euclid(HOUR_US) == 0 { 0 } else { HOUR_US };
        let h1 = to_us.div_euclid(HOUR_US) * HOUR_US;
        let exact_below = self.exact_below.unwrap_or(EXACT_BELOW);
        let small = || {
            let mut n = 0u64;
            for c in self.cells.range((h0, 0)..(h1, 0)).map(|(_, c)| c) {
                n += c.conversations;
                if n > exact_below {
                    return false;
                }
            }
            true
        };
        if cells_ok && h0 < h1 && !small() {
            let channel_ok = |c: u32| {
                resolved.iter().all(|(_, values)| match values {
                    None => c == NONE,
                    Some(vs) => c != NONE && vs.contains(&c),
                })
            };
            for ((_, channel), cell) in self.cells.range((h0, 0)..(h1, 0)) {
                if channel_ok(*channel) {
                    sum.merge_cell(cell);
                }
            }
            for f in self.facts_in(from_us, h0).chain(self.facts_in(h1, to_us)) {
                if f.matches(&resolved) {
                    sum.add_fact(f, target);
                }
            }
        } else {
            for f in self.facts_in(from_us, to_us) {
                if f.matches(&resolved) {
                    sum.add_fact(f, target);
                }
            }
        }
        sum
    }

    /// The values `dim` takes among conversations started in `[from, to)`
    /// that pass `filters`, sorted, and whether some have none.
    pub fn dimension_values(&self, from_us: i64, to_us: i64, filters: &[FactFilter], dim: Dim) -> (Vec<String>, bool) {
        let groups = self
            .occurring_groups(from_us, to_us, filters, &[dim], usize::MAX)
            .unwrap_or_default();
        let none = groups.iter().any(|g| g[0].is_none());
        (groups.into_iter().filter_map(|mut g| g.pop().flatten()).collect(), none)
    }

    /// What `sql/analyses/bottlenecks_pairs.sql` counts among the
    /// conversations started in `[from, to)` that pass `filters` and have a
    /// tag, in one pass over the facts.
    pub fn tag_counts(&self, from_us: i64, to_us: i64, filters: &[FactFilter]) -> TagCounts {
        let resolved = self.resolve_filters(filters);
        let mut tagged = 0u64;
        let mut tags: HashMap<u32, u64> = HashMap::new();
        let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
        let mut list: Vec<u32> = Vec::new();
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            list.clear();
            list.extend(f.tags().iter().copied().filter(|&t| t != NONE));
            list.sort_unstable();
            list.dedup();
            if list.is_empty() {
                continue;
            }
            tagged += 1;
            for &a in &list {
                *tags.entry(a).or_default() += 1;
                for &b in &list {
                    if a != b {
                        *pairs.entry((a, b)).or_default() += 1;
                    }
                }
            }
        }
        let name = |i: u32| self.names.name(i).to_string();
        TagCounts {
            tagged,
            tags: tags.into_iter().map(|(t, n)| (name(t), n)).collect(),
            pairs: pairs.into_iter().map(|((a, b), n)| ((name(a), name(b)), n)).collect(),
        }
    }

    /// The combinations of values of `dims` (`None` for NULL or empty)
    /// that occur among the conversations started in `[from, to)` that
    /// pass `filters`, in one pass: ordered by the first dimension's value,
    /// then the second's, and so on, values by name and `None` last (so
    /// teams × agents lists each team's agents, not every pair). `None`
    /// when there are more than `limit`.
    pub fn occurring_groups(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        dims: &[Dim],
        limit: usize,
    ) -> Option<Vec<Vec<Option<String>>>> {
        let resolved = self.resolve_filters(filters);
        let mut seen: std::collections::HashSet<Vec<u32>> = std::collections::HashSet::new();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            let mut over = false;
            combinations.each(f, |key| {
                if !seen.contains(key) {
                    seen.insert(key.to_vec());
                    over |= seen.len() > limit;
                }
            });
            if over {
                return None;
            }
        }
        let mut groups: Vec<Vec<Option<String>>> = seen.iter().map(|key| self.group_names(key)).collect();
        groups.sort_by(|a, b| group_order(a, b));
        Some(groups)
    }

    /// Every row of `sql/kpis/overview.sql` for conversations started in
    /// `[from, to)` that pass `filters`; the time-based keys (repurchase,
    /// labour, costs, per online hour) only with `time_based`.
    pub fn overview(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        time_based: bool,
        rates: &[HourlyRate],
        now_us: i64,
    ) -> Vec<OverviewRow> {
        let mut s = self.summarize(from_us, to_us, filters);
        self.rows_of(&mut s, from_us, to_us, time_based, rates, now_us)
    }

    /// [`Self::overview_groups`] of every group of `dims` that occurs
    /// ([`Self::occurring_groups`]) in each of `windows` (contiguous, in
    /// order: a window's buckets), all in one pass over the facts of their
    /// span: `(group, rows per window)` in the order of
    /// [`Self::occurring_groups`] over the span; a group has rows for every
    /// window, those without conversations too. `None` when more than
    /// `limit` groups occur.
    pub fn overview_occurring(
        &self,
        windows: &[(i64, i64)],
        filters: &[FactFilter],
        dims: &[Dim],
        limit: usize,
        now_us: i64,
    ) -> Option<Vec<(Vec<Option<String>>, Vec<Vec<OverviewRow>>)>> {
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Some(Vec::new());
        };
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut sums: Vec<Vec<Summary<SketchAcc>>> = Vec::new();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(first.0, last.1).filter(|f| f.matches(&resolved)) {
            let at = f.started().unwrap_or(first.0);
            // the window the fact started in (the last one starting at or before it)
            let w = windows.partition_point(|(from, _)| *from <= at).saturating_sub(1);
            let mut over = false;
            combinations.each(f, |key| {
                let g = match index.get(key) {
                    Some(&g) => g,
                    None => {
                        index.insert(key.to_vec(), sums.len());
                        sums.push(windows.iter().map(|_| Summary::default()).collect());
                        over |= sums.len() > limit;
                        sums.len() - 1
                    }
                };
                sums[g][w].add_fact(f, target);
            });
            if over {
                return None;
            }
        }
        let mut groups: Vec<(Vec<Option<String>>, Vec<Summary<SketchAcc>>)> = index
            .into_iter()
            .map(|(key, g)| (self.group_names(&key), std::mem::take(&mut sums[g])))
            .collect();
        groups.sort_by(|a, b| group_order(&a.0, &b.0));
        Some(
            groups
                .into_iter()
                .map(|(key, mut sums)| {
                    let rows = sums
                        .iter_mut()
                        .zip(windows)
                        .map(|(s, (from, to))| self.rows_of(s, *from, *to, false, &[], now_us))
                        .collect();
                    (key, rows)
                })
                .collect(),
        )
    }

    /// A group's values by name (`None` for NULL or empty).
    fn group_names(&self, key: &[u32]) -> Vec<Option<String>> {
        key.iter()
            .map(|&v| (v != NONE).then(|| self.names.name(v).to_string()))
            .collect()
    }

    /// [`Self::overview`] (without the time-based keys) of each group of
    /// `dims` in `groups` (a value per dimension, `None` for NULL or
    /// empty), among the conversations that pass `filters`: one pass over
    /// the window's facts instead of one per group. The numbers are those
    /// of `overview` with `filters` and the group's values as filters, so
    /// long as those filters do not let it use the hourly cells (a
    /// dimension other than the channel among `dims`).
    pub fn overview_groups(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        dims: &[Dim],
        groups: &[Vec<Option<String>>],
        now_us: i64,
    ) -> Vec<Vec<OverviewRow>> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        // A value no fact has was never interned: its group stays empty.
        let index: HashMap<Vec<u32>, usize> = groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let key: Option<Vec<u32>> = g
                    .iter()
                    .map(|v| v.as_deref().map_or(Some(NONE), |v| self.names.get(v)))
                    .collect();
                Some((key?, i))
            })
            .collect();
        let mut sums: Vec<Summary<SketchAcc>> = groups.iter().map(|_| Summary::default()).collect();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            combinations.each(f, |key| {
                if let Some(&g) = index.get(key) {
                    sums[g].add_fact(f, target);
                }
            });
        }
        sums.iter_mut()
            .map(|s| self.rows_of(s, from_us, to_us, false, &[], now_us))
            .collect()
    }

    /// The rows of [`Self::overview`] from a summary of its conversations.
    fn rows_of(
        &self,
        s: &mut Summary<SketchAcc>,
        from_us: i64,
        to_us: i64,
        time_based: bool,
        rates: &[HourlyRate],
        now_us: i64,
    ) -> Vec<OverviewRow> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let mut rows = Vec::new();
        let mut row = |kpi: &str, measure: &str, segment: &str, value: Option<f64>, n: u64| {
            rows.push(OverviewRow {
                kpi: kpi.to_string(),
                measure: measure.to_string(),
                segment: segment.to_string(),
                value: value.filter(|v| v.is_finite()),
                n: n as i64,
            });
        };
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let conversations = s.conversations;
        row(
            "conversations",
            "value",
            "all",
            Some(conversations as f64),
            conversations,
        );
        for (i, (kpi, segment)) in DURATION_KEYS.iter().enumerate() {
            let d = &mut s.durations[i];
            let n = s.duration_n[i];
            row(kpi, "mean", segment, d.mean(), n);
            row(kpi, "median", segment, d.quantile(0.5), n);
            row(kpi, "p90", segment, d.quantile(0.9), n);
        }
        let missed_by_now = s
            .unanswered_since
            .iter()
            .filter(|&&fcm| now_us > fcm.saturating_add(target))
            .count() as u64;
        let sla_n = s.sla_answered + missed_by_now;
        row("sla_attainment", "value", "all", ratio(s.sla_met, sla_n), sla_n);
        row(
            "csat",
            "mean",
            "all",
            (s.csat_n > 0).then(|| s.csat_sum as f64 / s.csat_n as f64),
            s.csat_n,
        );
        row("csat", "top2_share", "all", ratio(s.csat_top2, s.csat_n), s.csat_n);
        row(
            "csat",
            "response_rate",
            "all",
            ratio(s.csat_answered, s.csat_requested),
            s.csat_requested,
        );
        for (k, n) in s.csat_distribution.iter().enumerate() {
            row("csat", "share", &(k + 1).to_string(), ratio(*n, s.csat_n), *n);
        }
        row(
            "resolution_rate",
            "value",
            "all",
            ratio(s.resolved, conversations),
            conversations,
        );
        row(
            "reopen_rate",
            "value",
            "all",
            ratio(s.reopened, s.ever_resolved),
            s.ever_resolved,
        );
        row(
            "transfer_rate",
            "value",
            "all",
            ratio(s.transferred, s.bot_replied),
            s.bot_replied,
        );
        row(
            "automation_rate",
            "value",
            "all",
            ratio(s.bot_only, conversations),
            conversations,
        );
        row(
            "conversion_rate",
            "value",
            "all",
            ratio(s.converted, conversations),
            conversations,
        );
        for (cur, (net, orders, convs)) in &s.aov {
            let c = self.names.name(*cur);
            row("aov", "value", c, (*orders > 0).then(|| net / *orders as f64), *convs);
            row("aov", "orders", c, Some(*orders as f64), *convs);
            row("aov", "net_amount", c, Some(*net), *convs);
        }
        row(
            "conversations_per_agent",
            "value",
            "all",
            ratio(s.human_handled, s.agents.len()),
            s.human_handled,
        );
        row(
            "copilot_adoption",
            "value",
            "all",
            ratio(s.copilot_replies, s.agent_replies),
            s.human_handled,
        );
        if time_based {
            let (customers, repeat) = self.repurchase(from_us, to_us);
            row("repurchase_rate", "value", "all", ratio(repeat, customers), customers);
            let (hours, unrated, labor) = self.labor(from_us, to_us, rates, now_us);
            row(
                "conversations_per_agent",
                "per_online_hour",
                "all",
                (hours != 0.0).then(|| s.human_handled as f64 / hours),
                s.human_handled,
            );
            row("labor_cost", "online_hours", "all", Some(hours), conversations);
            row("labor_cost", "unrated_hours", "all", Some(unrated), conversations);
            let mut total: BTreeMap<String, f64> = BTreeMap::new();
            for (cur, cost) in &labor {
                row("labor_cost", "value", cur, Some(*cost), conversations);
                *total.entry(cur.clone()).or_default() += cost;
            }
            let lo = self.costs.partition_point(|c| c.0 < from_us);
            let hi = self.costs.partition_point(|c| c.0 < to_us);
            let mut other: BTreeMap<u32, f64> = BTreeMap::new();
            for &(_, cur, amount) in &self.costs[lo..hi.max(lo)] {
                *other.entry(cur).or_default() += amount;
            }
            for (cur, cost) in other {
                *total.entry(self.names.name(cur).to_string()).or_default() += cost;
            }
            for (cur, cost) in total {
                row(
                    "cost_per_conversation",
                    "value",
                    &cur,
                    (conversations > 0).then(|| cost / conversations as f64),
                    conversations,
                );
            }
        }
        rows
    }

    /// Customers with an order placed in `[from, to)`, and those with two or more.
    fn repurchase(&self, from_us: i64, to_us: i64) -> (u64, u64) {
        let lo = self.orders.partition_point(|o| o.placed_us < from_us);
        let hi = self.orders.partition_point(|o| o.placed_us < to_us);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for o in &self.orders[lo..hi.max(lo)] {
            if o.customer != NONE {
                *counts.entry(o.customer).or_default() += 1;
            }
        }
        let repeat = counts.values().filter(|&&n| n >= 2).count() as u64;
        (counts.len() as u64, repeat)
    }

    /// Online hours in `[from, to)` (an open interval counts up to now),
    /// hours without a rate, and labour cost per currency.
    fn labor(&self, from_us: i64, to_us: i64, rates: &[HourlyRate], now_us: i64) -> (f64, f64, BTreeMap<String, f64>) {
        let mut per_team: BTreeMap<u32, i64> = BTreeMap::new();
        let hi = self.online.partition_point(|s| s.start_us < to_us);
        for s in &self.online[..hi] {
            let end = s.end_us.unwrap_or(now_us).min(to_us);
            if end > from_us {
                *per_team.entry(s.team).or_default() += end - s.start_us.max(from_us);
            }
        }
        let default = rates.iter().find(|r| r.team.is_none());
        let (mut hours, mut unrated) = (0.0, 0.0);
        let mut cost: BTreeMap<String, f64> = BTreeMap::new();
        for (team, us) in per_team {
            let h = us as f64 / 3_600_000_000.0;
            hours += h;
            let team_name = (team != NONE).then(|| self.names.name(team));
            let rate = team_name
                .and_then(|t| rates.iter().find(|r| r.team.as_deref() == Some(t)))
                .or(default);
            match rate {
                Some(r) => *cost.entry(r.currency.clone()).or_default() += h * r.rate,
                None => unrated += h,
            }
        }
        (hours, unrated, cost)
    }
}

/// `schema` with every top-level field nullable.
fn nullable_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
    ))
}

/// The column `name` of a rollup query's result, cast to `t`. Columns are
/// read by name, so a query can change its column order, and one that
/// loses a column fails here rather than reading another.
fn cast(b: &RecordBatch, name: &str, t: &DataType) -> Result<Arc<dyn Array>> {
    let column = b
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("rollup query lacks column {name}")))?;
    Ok(arrow::compute::cast(column, t)?)
}
fn strings(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Utf8)
}
fn int64s(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Int64)
}
fn float64s(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Float64)
}
fn booleans(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Boolean)
}
fn string_lists(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(
        b,
        name,
        &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    )
}
