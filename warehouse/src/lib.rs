//! # warehouse — SQL over the lake and the buffer
//!
//! Owns the DataFusion side of cxlake: the `events` table (the Delta table
//! in the lake unioned with acknowledged events not yet flushed, see
//! [`events_table`]), read-only SQL sessions, and result encoding.
//!
//! Invariants:
//! - user SQL is read-only: no DDL, DML, `COPY` or `SET` reaches the
//!   engine ([`Warehouse::query`] plans with those disabled);
//! - user SQL reaches only registered tables: no URL tables, no file
//!   table functions;
//! - the warehouse never sees an unauthenticated request: the `api` crate
//!   authorizes before it calls in.

pub mod bounds;
pub mod caps;
pub mod events_table;
pub mod fold;
pub mod format;
pub mod local_time;
pub mod passthrough;
pub mod pinned;
pub mod rollups;
pub mod sandbox;
pub mod scoped;
pub mod statement;
pub mod views;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use ingest::Ingestor;

pub use events_table::EventsTable;

/// Errors of the warehouse.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The statement is not a read-only query.
    #[error("only read-only queries are allowed: {0}")]
    NotReadOnly(String),
    /// Planning or execution failed (bad SQL, unknown column, ...).
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
}

pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// A query's result, fully materialized.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// The rollup of one tenant: read by any number of readers at once,
/// written only while a refresh applies what it read from the lake.
pub type RollupSlot = Arc<tokio::sync::RwLock<rollups::TenantRollup>>;

/// Held by whoever refreshes, rebuilds or restores one tenant's rollup:
/// one at a time, so that a refresh planned under a read lock applies to
/// the state it was planned from.
pub type RefreshGate = Arc<tokio::sync::Mutex<()>>;

/// Where a tenant's first rollup build stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BuildState {
    /// Nothing asked for it yet.
    #[default]
    NotStarted,
    /// A first build runs.
    Building,
    /// Built once; refreshes keep it current.
    Built,
    /// The last first build failed, with this error; the next request
    /// starts another.
    Failed(String),
}

/// The [`BuildState`] of one tenant, which callers can wait on.
pub type BuildSignal = Arc<tokio::sync::watch::Sender<BuildState>>;

/// A rebuild of one tenant's rollup running beside the one that serves
/// (after a setting that changes the facts): the attribution window it
/// builds for, `None` when none runs.
pub type RebuildSignal = Arc<tokio::sync::watch::Sender<Option<u32>>>;

/// Entry point for SQL over the lake. Clones share the ingestor and the
/// tenants' rollups.
#[derive(Debug, Clone)]
pub struct Warehouse {
    ingestor: Arc<Ingestor>,
    rollups: Arc<std::sync::Mutex<std::collections::HashMap<String, RollupSlot>>>,
    builds: Arc<std::sync::Mutex<std::collections::HashMap<String, BuildSignal>>>,
    rebuilds: Arc<std::sync::Mutex<std::collections::HashMap<String, RebuildSignal>>>,
    gates: Arc<std::sync::Mutex<std::collections::HashMap<String, RefreshGate>>>,
    /// Readers answer from the rollup as it stands, never refreshing it
    /// first ([`Warehouse::serve_snapshots`]).
    snapshots: Arc<std::sync::atomic::AtomicBool>,
    /// Where the rollups' facts are saved (`None`: a lake facts cannot be
    /// saved next to).
    facts: Option<Arc<rollups::persist::FactStore>>,
}

impl Warehouse {
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        let facts = match rollups::persist::FactStore::beside(ingestor.lake_url(), Default::default()) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                tracing::warn!(error = %e, "facts will not be saved; every start builds them from events");
                None
            }
        };
        Self {
            ingestor,
            rollups: Arc::default(),
            builds: Arc::default(),
            rebuilds: Arc::default(),
            gates: Arc::default(),
            snapshots: Arc::default(),
            facts,
        }
    }

    /// Where the rollups' facts are saved, if they can be.
    pub fn facts(&self) -> Option<&Arc<rollups::persist::FactStore>> {
        self.facts.as_ref()
    }

    /// Every tenant rollup this warehouse holds.
    pub fn rollup_slots(&self) -> Vec<(String, RollupSlot)> {
        let all = self.rollups.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|(t, s)| (t.clone(), s.clone())).collect()
    }

    /// The KPI rollup of `tenant` (empty until first refreshed): one per
    /// tenant for as long as this warehouse and its clones live.
    pub fn rollup_slot(&self, tenant: &str) -> RollupSlot {
        let mut all = self.rollups.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(tenant.to_string()).or_default().clone()
    }

    /// Where the first build of `tenant`'s rollup stands: one signal per
    /// tenant for as long as this warehouse and its clones live.
    pub fn build_signal(&self, tenant: &str) -> BuildSignal {
        let mut all = self.builds.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::watch::Sender::new(BuildState::NotStarted)))
            .clone()
    }

    /// The gate of `tenant`'s rollup (see [`RefreshGate`]).
    pub fn refresh_gate(&self, tenant: &str) -> RefreshGate {
        let mut all = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(tenant.to_string()).or_default().clone()
    }

    /// From now on readers of this warehouse and its clones answer from
    /// the rollups as they stand, saying what they reflect, while a task
    /// that follows ingest keeps them current (the server); otherwise
    /// (commands, tests) each reader brings the rollup up to date first.
    pub fn serve_snapshots(&self) {
        self.snapshots.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// See [`Warehouse::serve_snapshots`].
    pub fn serves_snapshots(&self) -> bool {
        self.snapshots.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The rebuild of `tenant`'s rollup running in the background, if any.
    pub fn rebuild_signal(&self, tenant: &str) -> RebuildSignal {
        let mut all = self.rebuilds.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::watch::Sender::new(None)))
            .clone()
    }

    /// The ingestor whose lake and buffer this warehouse reads.
    pub fn ingestor(&self) -> &Arc<Ingestor> {
        &self.ingestor
    }

    /// A fresh session with every lake table registered. Sessions are cheap;
    /// one per request keeps requests from seeing each other's state.
    pub fn session(&self) -> Result<SessionContext> {
        let ctx = self.events_session()?;
        views::register_views(&ctx)?;
        Ok(ctx)
    }

    /// [`Warehouse::session`] without the views: only `events`, for
    /// callers that define views of their own (planning every view takes
    /// longer than many queries).
    pub fn events_session(&self) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("cxlake", "public");
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table("events", Arc::new(EventsTable::new(self.ingestor.clone())))?;
        Ok(ctx)
    }

    /// Runs one read-only statement and collects its result.
    pub async fn query(&self, sql: &str) -> Result<QueryResult> {
        let ctx = self.session()?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await.map_err(|e| match e {
            datafusion::error::DataFusionError::Plan(msg)
                if msg.contains("not supported")
                    && (msg.contains("DDL") || msg.contains("DML") || msg.contains("Statement")) =>
            {
                WarehouseError::NotReadOnly(msg)
            }
            other => WarehouseError::Query(other),
        })?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok(QueryResult { schema, batches })
    }
}
