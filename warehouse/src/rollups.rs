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
//! [`TenantRollup::refresh`] recomputes only what new data can change:
//! everything from an instant `lo` on, and older conversations one by
//! one. Every conversation whose first event is at or after `lo` is
//! recomputed whole from the events since `lo` (so a conversation spanning
//! a flush or a day boundary comes out as if computed at once), and the
//! cells from `lo`'s hour on are rebuilt from the facts. `lo` is the
//! earliest of the changed events, moved back to the first event of each
//! conversation they touch that began less than an hour before it.
//!
//! Older conversations are **refolded by id** instead: each touched one
//! that began earlier; the conversation an order without a conversation
//! credits (the customer's latest started within the attribution window
//! before it, found among the facts); those whose credit a new
//! conversation start may take (the customer's later orders); and the
//! conversation credited with a refunded order. Their events are read
//! with their customers' conversation starts and orders, and refunds,
//! since the first of their first events. These are folded, and their
//! facts, kept rows and hourly cells are replaced. More than 128 of them
//! (a bulk load of history, not live traffic) move `lo` back instead, as
//! they all do when the changed days are compared (below).
//! An agent's status change reads the agent intervals again from the
//! start of the interval it ends, on their own.
//!
//! Which events changed: flushes and compactions move events between the
//! buffer and lake files without changing them, so while no erasure ran
//! (`ingest::Recent::rewrites`) they are exactly the batches acknowledged
//! after the sequence number the rollup reflects
//! ([`ingest::ReadView::batches_after`]). After a start from saved facts,
//! an erasure, or when those batches are no longer held apart, the lake's
//! files (Delta log) and the buffer are compared with what the rollup last
//! saw instead, and every event of each UTC day (partition) touched counts
//! as changed; deleted or compacted files count as touched days too (so
//! GDPR erasure reaches the rollups), with the first event of every known
//! conversation with events in a touched day.
//!
//! A refresh runs in three steps ([`TenantRollup::plan_refresh`],
//! [`TenantRollup::read_planned`], [`TenantRollup::apply_planned`]) so
//! that the lake is read while readers go on; only applying what was read
//! needs the rollup alone (the kept files it drops, re-encodes and merges
//! are worked out while planning). A refresh with another attribution window
//! rebuilds everything (the service builds a new rollup beside the
//! serving one instead: `services::kpis::fast`); with another SLA target,
//! the cells.
//!
//! Known limits (documented rather than hidden): an agent interval that
//! opened before `lo` and whose agent changed no status in the new data is
//! kept as it was; a repeated `order.placed` of the same order across `lo`
//! keeps the later one until the next full build.
//!
//! # Modules
//!
//! This file holds the types callers use ([`TenantRollup`], [`Kept`],
//! [`EventRange`], the filters and rows) and the rollup's accessors;
//! [`fact`] one conversation's fact, [`summary`] the mergeable aggregates,
//! [`held`] orders, online intervals and the lake as last seen, [`range`]
//! the events a session holds, [`build`] building and refreshing from the
//! lake, [`query`] the answers, [`kept`] the kept rows, [`sketch`] the
//! quantile sketches.

mod build;
mod fact;
mod held;
mod kept;
pub mod persist;
mod query;
mod range;
pub mod sketch;
mod summary;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use ingest::ReadView;

use crate::fold::{EVENT_COLUMNS, FoldSettings, FoldedOrder, MessageFacts, Replier, fold_with_messages};

pub use self::build::{PlannedRows, RefreshPlan};
use self::fact::*;
pub use self::held::tenants;
use self::held::*;
use self::kept::KeptRows;
pub use self::kept::KeptSnapshot;
pub use self::range::EventRange;
use self::sketch::{Sketch, SketchAcc};
pub use self::summary::TagCounts;
use self::summary::*;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;
/// "No value" in an interned id slot.
const NONE: u32 = u32::MAX;

pub use model::Dimension;

/// The slot of a single-valued dimension in [`Fact::dims`].
fn slot(d: Dimension) -> Option<usize> {
    Some(match d {
        Dimension::Channel => 0,
        Dimension::ChannelAccount => 1,
        Dimension::Queue => 2,
        Dimension::Team => 3,
        Dimension::Agent => 4,
        Dimension::Language => 5,
        Dimension::Region => 6,
        Dimension::CustomerTier => 7,
        Dimension::Tag | Dimension::Variant => return None,
    })
}

/// Conversations whose `dim` is one of `values`; `None`: that have none.
#[derive(Debug, Clone, PartialEq)]
pub struct FactFilter {
    pub dim: Dimension,
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

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefreshStats {
    /// Recomputed from scratch (first use, or the attribution window changed).
    pub full: bool,
    /// Conversations recomputed from the start instant on.
    pub conversations: usize,
    /// Conversations that began before it, refolded by id.
    pub refolded: usize,
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
    /// See [`TenantRollup::as_of_seq`].
    as_of_seq: Option<u64>,
    /// Identifies the rollup's state: changes with every refresh, restore
    /// and build; unique in the process (a refresh planned on one state
    /// applies to it alone).
    generation: u64,
    /// The erasures the ingest pipeline had made at the last refresh
    /// (`ingest::Recent::rewrites`); `None` after a start from saved facts.
    rewrites: Option<u64>,
    /// Everything from this instant on changed since the last save
    /// ([`persist`]); `i64::MAX`: only the lake mark or the settings.
    unsaved: Option<i64>,
    /// Counts [`TenantRollup::unsaved_from`] calls: a save taken while
    /// the rollup changed leaves its changes marked.
    unsaved_marks: u64,
    /// The `events` table version of the last refresh.
    events_version: Option<u64>,
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
    /// reads (the `exposure_events` view), by `occurred_at`.
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
            as_of_seq: None,
            generation: build::next_generation(),
            rewrites: None,
            unsaved: None,
            unsaved_marks: 0,
            events_version: None,
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
    /// reads (the `exposure_events` view).
    ExposureEvents,
    /// The `script_uses` view's rows, with each conversation's
    /// `first_event_at`.
    ScriptUses,
}

/// The schema of the kept `conversations` rows
/// ([`TenantRollup::snapshot`]): the view's, every field nullable.
pub fn conversations_rows_schema() -> Result<SchemaRef> {
    Ok(build::nullable_schema(crate::fold::conversations_schema()?.as_ref()))
}

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

    /// The ingest sequence number the rollup reflects: every batch
    /// acknowledged with this number or a lower one is in it (`None`
    /// before the first refresh).
    pub fn as_of_seq(&self) -> Option<u64> {
        self.as_of_seq
    }

    /// The settings the facts were built with (`None` before a build).
    pub fn config(&self) -> Option<TenantConfig> {
        self.config
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
}
