//! The fast path of `/v1/kpis`: the materialized facts and hourly rollups
//! of [`warehouse::rollups`], one per tenant, refreshed from the lake as
//! events come in (only what the new data can change is recomputed), then
//! asked for each window and group in memory.
//!
//! The SQL path ([`super::lake::run_overview`] over `sql/kpis/overview.sql`)
//! stays the definition: the facts are read from the same views, and the
//! tests in `fast/tests.rs` compare both on generated data.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use warehouse::rollups::{
    EventRange, FactFilter, HourlyRate, Kept, KeptSnapshot, RefreshStats, SessionSource, TagCounts, TenantConfig,
    TenantRollup,
};
use warehouse::{BuildState, Warehouse};

use super::lake::{self, Constraint, KpiRow};
use super::params::{Dimension, Window};
use crate::error::FactsNotReady;
use crate::settings::TenantSettings;
use crate::tenant::TenantId;

struct Source<'a> {
    warehouse: &'a Warehouse,
    tenant: &'a TenantId,
    settings: &'a TenantSettings,
    /// The long-horizon events, read once per refresh (see
    /// [`EventRange::is_bounded`]).
    long: tokio::sync::OnceCell<Arc<MemTable>>,
}

impl SessionSource for Source<'_> {
    async fn session(&self, range: EventRange) -> Result<SessionContext> {
        let long = if range.is_bounded() {
            Some(
                self.long
                    .get_or_try_init(|| lake::long_horizon_events(self.warehouse, self.tenant, self.settings))
                    .await?
                    .clone(),
            )
        } else {
            None
        };
        lake::tenant_session_with(self.warehouse, self.tenant, self.settings, range, long).await
    }
}

/// Whose materialized rows a [`Materialized`] table holds.
#[derive(Debug, Clone)]
enum Whose {
    Tenant(TenantId, TenantSettings),
    /// Every tenant with data, each with its settings read from the data
    /// directory at each scan.
    Every(std::path::PathBuf),
}

impl Whose {
    fn tenants(&self, warehouse: &Warehouse) -> Result<Vec<(TenantId, TenantSettings)>> {
        match self {
            Whose::Tenant(t, s) => Ok(vec![(t.clone(), s.clone())]),
            Whose::Every(data_dir) => warehouse::rollups::tenants(&warehouse.ingestor().read_view())
                .iter()
                .filter_map(|t| TenantId::parse(t))
                .map(|t| {
                    let settings =
                        crate::settings::load(data_dir, &t).map_err(|e| DataFusionError::External(Box::new(e)))?;
                    Ok((t, settings))
                })
                .collect(),
        }
    }
}

/// Materialized rows as a table: each scan first brings each rollup up to
/// date with the lake and the buffer (only what new data can change is
/// recomputed; a tenant not built within [`facts_wait`] fails it with
/// [`FactsNotReady`]), then reads the rows of that moment, of every
/// tenant together for [`Whose::Every`].
#[derive(Debug)]
struct Materialized {
    warehouse: Warehouse,
    whose: Whose,
    kept: Kept,
    schema: SchemaRef,
}

#[async_trait::async_trait]
impl TableProvider for Materialized {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters go on to the snapshot's files (see [`KeptSnapshot`]).
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plans = Vec::new();
        for (tenant, settings) in self.whose.tenants(&self.warehouse)? {
            let (w, kept) = (&self.warehouse, self.kept);
            plans.extend(kept_scan(w, &tenant, &settings, kept, state, projection, filters, limit).await?);
        }
        if plans.is_empty() {
            return empty_scan(&self.schema, state, projection, filters, limit).await;
        }
        datafusion::physical_plan::union::UnionExec::try_new(plans)
    }
}

/// A scan of the rows of `kept` of `tenant`'s rollup, brought up to date
/// first; `None` before the tenant has any.
#[allow(clippy::too_many_arguments)]
async fn kept_scan(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    kept: Kept,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let guard = serving_rollup(warehouse, tenant, settings).await?;
    let snapshot = guard.snapshot(kept);
    drop(guard);
    match snapshot {
        Some(s) => Ok(Some(s.scan(state, projection, filters, limit).await?)),
        None => Ok(None),
    }
}

/// A scan of no rows of `schema`.
async fn empty_scan(
    schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    MemTable::try_new(schema.clone(), vec![vec![]])?
        .scan(state, projection, filters, limit)
        .await
}

/// Whether the materialized tables of [`use_materialized`] follow new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Each scan reads the rollup's rows of that moment (brought up to date
    /// first where readers refresh: see [`serving_rollup`]): for sessions
    /// that live on (SQL, Postgres wire).
    Current,
    /// The rows of this moment, for every query of a short-lived session
    /// (one analysis request): its queries agree with each other, and a
    /// query reads only the columns and files it needs.
    Pinned,
}

/// Makes `conversations`, `exposures` and `script_uses` in `ctx` (a
/// [`lake::tenant_session_in`] session of `tenant`, or an analyst session)
/// read the materialized rows instead of computing the views from
/// events (as of each scan or pinned to this moment: see [`Rows`]).
/// `conversations` becomes a view over the rollup's rows that
/// recomputes `sla_met`, which depends on the clock, at query time;
/// `exposures` is its own definition (`sql/views/exposures.sql`) over the
/// kept `experiment.exposed` events; `script_uses` reads the kept rows of
/// that view. The tables are held by the views'
/// plans under no name SQL could use. The answer is the ingest `seq` the
/// rows reflect at this moment ([`TenantRollup::as_of_seq`]); a tenant
/// with no data yet keeps the views over events, and the answer is `None`.
pub async fn use_materialized(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    reads: Rows,
) -> Result<Option<u64>> {
    let guard = serving_rollup(warehouse, tenant, settings).await?;
    let (Some(rows), Some(exposures), Some(script_uses), Some(as_of)) = (
        guard.snapshot(Kept::Conversations),
        guard.snapshot(Kept::ExposureEvents),
        guard.snapshot(Kept::ScriptUses),
        guard.as_of_seq(),
    ) else {
        return Ok(None);
    };
    drop(guard);
    let table = |kept: Kept, snapshot: KeptSnapshot| -> Arc<dyn TableProvider> {
        match reads {
            Rows::Pinned => Arc::new(snapshot),
            Rows::Current => Arc::new(Materialized {
                warehouse: warehouse.clone(),
                whose: Whose::Tenant(tenant.clone(), settings.clone()),
                kept,
                schema: snapshot.schema(),
            }),
        }
    };
    // The views below read the tenant's settings; a session without the
    // views of `sql/views/` has none yet.
    ctx.deregister_table("tenant_settings")?;
    ctx.register_table("tenant_settings", Arc::new(lake::settings_table(settings)?))?;
    ctx.register_table("conversations_rows", table(Kept::Conversations, rows))?;
    ctx.deregister_table("conversations")?;
    ctx.sql(&format!(
        "CREATE VIEW conversations AS SELECT * REPLACE ({} AS sla_met) FROM conversations_rows",
        lake::sla_met_sql(lake::SESSION_SLA_TARGET)
    ))
    .await?;
    // `exposures` is built again on the kept copy of `exposure_events`.
    ctx.deregister_table("exposure_events")?;
    ctx.register_table("exposure_events", table(Kept::ExposureEvents, exposures))?;
    ctx.deregister_table("exposures")?;
    ctx.sql(view_sql("exposures")?).await?;
    ctx.register_table("script_uses_rows", table(Kept::ScriptUses, script_uses))?;
    ctx.deregister_table("script_uses")?;
    ctx.sql("CREATE VIEW script_uses AS SELECT tenant_id, conversation_id, kind, \"key\" FROM script_uses_rows")
        .await?;
    // The views' plans hold the tables themselves; SQL sees only the views.
    for t in ["conversations_rows", "script_uses_rows"] {
        ctx.deregister_table(t)?;
    }
    Ok(Some(as_of))
}

/// Each tenant's SLA target, read when scanned: what `sla_met` of the
/// platform-wide `conversations` compares with.
#[derive(Debug)]
struct PlatformTargets {
    warehouse: Warehouse,
    whose: Whose,
}

#[async_trait::async_trait]
impl TableProvider for PlatformTargets {
    fn schema(&self) -> SchemaRef {
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("tenant_id", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("sla_target_us", arrow::datatypes::DataType::Int64, false),
        ]))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let tenants = self.whose.tenants(&self.warehouse)?;
        let batch = arrow::array::RecordBatch::try_new(
            self.schema(),
            vec![
                Arc::new(arrow::array::StringArray::from_iter_values(
                    tenants.iter().map(|(t, _)| t.as_str()),
                )),
                Arc::new(arrow::array::Int64Array::from_iter_values(
                    tenants.iter().map(|(_, s)| s.sla_target_us()),
                )),
            ],
        )?;
        MemTable::try_new(self.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Makes `conversations` in a platform-wide session (`ctx`, with the views
/// of `sql/views/` over every tenant's events) read every tenant's
/// materialized rows, current as of each scan, with `sla_met` against
/// each tenant's own target, instead of computing the view from events.
pub async fn use_platform_materialized(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    data_dir: &std::path::Path,
) -> Result<()> {
    let schema = warehouse::rollups::conversations_rows_schema()?;
    let whose = Whose::Every(data_dir.to_path_buf());
    let rows = Materialized {
        warehouse: warehouse.clone(),
        whose: whose.clone(),
        kept: Kept::Conversations,
        schema: schema.clone(),
    };
    let targets = PlatformTargets {
        warehouse: warehouse.clone(),
        whose,
    };
    ctx.register_table("conversations_rows", Arc::new(rows))?;
    ctx.register_table("tenant_sla_targets", Arc::new(targets))?;
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "sla_met" => format!("{} AS sla_met", lake::sla_met_sql("s.sla_target_us")),
            name => format!("c.\"{name}\""),
        })
        .collect();
    ctx.deregister_table("conversations")?;
    ctx.sql(&format!(
        "CREATE VIEW conversations AS SELECT {} FROM conversations_rows c \
         LEFT JOIN tenant_sla_targets s ON c.tenant_id = s.tenant_id",
        columns.join(", ")
    ))
    .await?;
    // The view's plan holds the tables; SQL sees only the view.
    for t in ["conversations_rows", "tenant_sla_targets"] {
        ctx.deregister_table(t)?;
    }
    Ok(())
}

/// The `CREATE VIEW` of `sql/views/<name>.sql`.
fn view_sql(name: &str) -> Result<&'static str> {
    warehouse::views::VIEWS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, sql)| *sql)
        .ok_or_else(|| DataFusionError::Internal(format!("no view {name}")))
}

/// How long a task following ingest waits at most between two rounds of
/// refreshes when no event arrives (settings and flushes are followed too).
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the server's background warming looks for new data.
pub const WARM_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// Conversations per slice of a first build: `CXLAKE_ROLLUP_SLICE`
/// (default [`warehouse::rollups::SLICE_CONVERSATIONS`]). Smaller slices
/// hold less memory at once and take longer in all.
fn slice_conversations() -> u64 {
    static N: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        env_number(
            "CXLAKE_ROLLUP_SLICE",
            warehouse::rollups::SLICE_CONVERSATIONS,
            |n| n > 0,
            "a positive whole number",
        )
    })
}

pub fn config(settings: &TenantSettings) -> TenantConfig {
    TenantConfig {
        sla_target_us: settings.sla_target_us(),
        attribution_window_days: settings.attribution_window_days,
    }
}

/// How long a request waits for a tenant's first build before it is
/// answered 503 with `Retry-After` ([`FactsNotReady`]):
/// `CXLAKE_FACTS_WAIT_MS`, default 1000 ms.
pub fn facts_wait() -> std::time::Duration {
    static WAIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    std::time::Duration::from_millis(
        *WAIT.get_or_init(|| env_number("CXLAKE_FACTS_WAIT_MS", 1000, |_| true, "a whole number of milliseconds")),
    )
}

/// How long every first build waits before it starts:
/// `CXLAKE_FACTS_BUILD_DELAY_MS`, default 0. Fault injection for tests of
/// what readers meet while a tenant's facts are being built (a large
/// tenant's build takes minutes; a test's takes milliseconds).
fn build_delay() -> std::time::Duration {
    static DELAY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    std::time::Duration::from_millis(*DELAY.get_or_init(|| {
        env_number(
            "CXLAKE_FACTS_BUILD_DELAY_MS",
            0,
            |_| true,
            "a whole number of milliseconds",
        )
    }))
}

/// The whole number in the environment variable `name` that `valid`
/// accepts, else `default` (with a warning when it was set but not so).
fn env_number(name: &str, default: u64, valid: impl Fn(u64) -> bool, what: &str) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().ok().filter(|n| valid(*n)).unwrap_or_else(|| {
            tracing::warn!(value = %v, "{name} is not {what}; using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// A reader's hold on a tenant's rollup: other readers go on meanwhile;
/// a refresh applies its changes after the last such hold is let go.
pub type RollupRead = tokio::sync::OwnedRwLockReadGuard<TenantRollup>;

/// The tenant's rollup, brought up to date with the lake and the buffer.
/// A tenant never built before is built first, however long that takes:
/// for the background warming, commands and tests. Requests use
/// [`serving_rollup`].
pub async fn rollup(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) -> Result<RollupRead> {
    rollup_within(warehouse, tenant, settings, None, true).await
}

/// Starts `tenant`'s first build in a task of its own unless it is built
/// or being built; does not wait for it. First builds of several tenants
/// so started run at once (a full build from events still one at a time).
pub async fn start_first_build(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) {
    if *warehouse.build_signal(tenant.as_str()).borrow() == BuildState::NotStarted {
        // Not waiting at all: the answer is "not ready", which is known.
        let _ = rollup_within(warehouse, tenant, settings, Some(std::time::Duration::ZERO), false).await;
    }
}

/// [`rollup`] for a request: when the tenant's first build has not
/// finished within [`facts_wait`], the error is [`FactsNotReady`] (503)
/// and the build goes on in the background. A warehouse that serves
/// snapshots ([`Warehouse::serve_snapshots`]) answers from the rollup as
/// it stands (a task following ingest keeps it current, and the answer
/// says what it reflects: [`TenantRollup::as_of_seq`]), unless the
/// request's settings are not those the facts were built with: a new SLA
/// target or attribution window applies at once.
pub async fn serving_rollup(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) -> Result<RollupRead> {
    let refresh_first = !warehouse.serves_snapshots();
    rollup_within(warehouse, tenant, settings, Some(facts_wait()), refresh_first).await
}

async fn rollup_within(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    wait: Option<std::time::Duration>,
    refresh_first: bool,
) -> Result<RollupRead> {
    let signal = warehouse.build_signal(tenant.as_str());
    if *signal.borrow() != BuildState::Built {
        // The first build runs in a task of its own, so that it goes on
        // when the request that started it gives up waiting.
        let started = signal.send_if_modified(|s| match s {
            BuildState::NotStarted | BuildState::Failed(_) => {
                *s = BuildState::Building;
                true
            }
            BuildState::Building | BuildState::Built => false,
        });
        if started {
            let (w, t, st, signal) = (warehouse.clone(), tenant.clone(), settings.clone(), signal.clone());
            tokio::spawn(async move {
                let state = match first_build(&w, &t, &st).await {
                    Ok(()) => BuildState::Built,
                    Err(e) => {
                        tracing::warn!(tenant = %t, error = %e, "first KPI rollup build failed");
                        BuildState::Failed(e.to_string())
                    }
                };
                signal.send_replace(state);
            });
        }
        let mut rx = signal.subscribe();
        let done = rx.wait_for(|s| matches!(s, BuildState::Built | BuildState::Failed(_)));
        let outcome = match wait {
            None => done.await.map(|s| s.clone()),
            Some(d) => match tokio::time::timeout(d, done).await {
                Ok(r) => r.map(|s| s.clone()),
                Err(_) => {
                    return Err(FactsNotReady {
                        tenant: tenant.to_string(),
                    }
                    .into_query_error());
                }
            },
        };
        match outcome {
            Ok(BuildState::Failed(e)) => {
                return Err(DataFusionError::Execution(format!(
                    "building the facts of tenant {tenant} failed: {e}"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(DataFusionError::External(Box::new(e))),
        }
    }
    let slot = warehouse.rollup_slot(tenant.as_str());
    // Settings the facts were built with, or are being rebuilt for.
    let built = slot.read().await.config();
    let wanted = config(settings);
    let settled = built.is_some_and(|c| {
        c.sla_target_us == wanted.sla_target_us
            && (c.attribution_window_days == wanted.attribution_window_days
                || *warehouse.rebuild_signal(tenant.as_str()).borrow() == Some(wanted.attribution_window_days))
    });
    if refresh_first || !settled {
        refresh_now(warehouse, tenant, settings).await?;
    }
    Ok(slot.read_owned().await)
}

/// One full build at a time in the process (first builds and rebuilds):
/// each is bounded by its slice, not by the number of tenants building.
static FULL_BUILDS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Starts, unless one runs, a build of `tenant`'s rollup with `settings`
/// beside the serving one, which it replaces when done.
fn rebuild_beside(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) {
    let signal = warehouse.rebuild_signal(tenant.as_str());
    let window = settings.attribution_window_days;
    if !signal.send_if_modified(|s| s.is_none().then(|| *s = Some(window)).is_some()) {
        return;
    }
    let (w, t, st) = (warehouse.clone(), tenant.clone(), settings.clone());
    tokio::spawn(async move {
        let built = async {
            let _permit = FULL_BUILDS
                .acquire()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut fresh = TenantRollup::new();
            fresh.set_slice_conversations(slice_conversations());
            let view = w.ingestor().read_view();
            let source = Source {
                warehouse: &w,
                tenant: &t,
                settings: &st,
                long: Default::default(),
            };
            fresh.refresh(&view, t.as_str(), config(&st), &source).await?;
            Ok::<_, DataFusionError>(fresh)
        }
        .await;
        match built {
            Ok(fresh) => {
                // What came in meanwhile, the next refresh adds.
                let gate = w.refresh_gate(t.as_str());
                let _one = gate.lock().await;
                *w.rollup_slot(t.as_str()).write().await = fresh;
                tracing::info!(tenant = %t, attribution_window_days = window, "KPI rollup rebuilt for new settings");
            }
            Err(e) => tracing::warn!(tenant = %t, error = %e, "KPI rollup rebuild for new settings failed"),
        }
        signal.send_replace(None);
    });
}

/// Builds the tenant's rollup for the first time: read back from its
/// saved facts when there are, from events otherwise; then brought up to
/// date. Holds the rollup alone throughout (no reader is served before).
async fn first_build(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) -> Result<()> {
    tokio::time::sleep(build_delay()).await;
    let gate = warehouse.refresh_gate(tenant.as_str());
    let _one = gate.lock().await;
    let mut guard = warehouse.rollup_slot(tenant.as_str()).write_owned().await;
    if !guard.is_built() {
        guard.set_slice_conversations(slice_conversations());
        if let Err(e) = restore_saved(warehouse, &mut guard, tenant).await {
            tracing::warn!(tenant = %tenant, error = %e, "saved facts could not be read; building them from events");
        }
    }
    let _permit = if guard.is_built() {
        None
    } else {
        Some(
            FULL_BUILDS
                .acquire()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
        )
    };
    let started = std::time::Instant::now();
    let view = warehouse.ingestor().read_view();
    let source = Source {
        warehouse,
        tenant,
        settings,
        long: Default::default(),
    };
    let stats = guard.refresh(&view, tenant.as_str(), config(settings), &source).await?;
    log_refresh(tenant, &stats, &guard, started);
    Ok(())
}

/// Brings the tenant's built rollup up to date with the lake and the
/// buffer. The lake is read under a shared hold (readers go on); the
/// rollup is held alone only while the result is applied.
pub async fn refresh_now(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) -> Result<RefreshStats> {
    let gate = warehouse.refresh_gate(tenant.as_str());
    let held = gate.lock().await;
    let slot = warehouse.rollup_slot(tenant.as_str());
    let started = std::time::Instant::now();
    let rollup = slot.read().await;
    // A new attribution window changes every fact: the facts are rebuilt
    // for it beside these, which keep serving (and following new data)
    // with the window they were built with until the rebuild replaces them.
    let mut settings = std::borrow::Cow::Borrowed(settings);
    if let Some(built) = rollup
        .config()
        .filter(|c| c.attribution_window_days != settings.attribution_window_days)
    {
        rebuild_beside(warehouse, tenant, &settings);
        settings.to_mut().attribution_window_days = built.attribution_window_days;
    }
    let source = Source {
        warehouse,
        tenant,
        settings: &settings,
        long: Default::default(),
    };
    let view = warehouse.ingestor().read_view();
    let plan = rollup
        .plan_refresh(&view, tenant.as_str(), config(&settings), &source)
        .await?;
    drop((rollup, view));
    let plan_ms = started.elapsed().as_millis() as u64;
    if plan.is_full() {
        // Not built (a reader got here before the first build): built now.
        drop(held);
        return first_build(warehouse, tenant, &settings)
            .await
            .map(|()| RefreshStats::default());
    }
    let rows = TenantRollup::read_planned(&plan, &source).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    let mut rollup = slot.write().await;
    let applying = std::time::Instant::now();
    let stats = rollup.apply_planned(plan, rows).await?.unwrap_or_default();
    if stats != RefreshStats::default() {
        let apply_ms = applying.elapsed().as_millis() as u64;
        tracing::debug!(tenant = %tenant, plan_ms, read_ms, apply_ms, "KPI rollup read");
    }
    log_refresh(tenant, &stats, &rollup, started);
    Ok(stats)
}

fn log_refresh(tenant: &TenantId, stats: &RefreshStats, rollup: &TenantRollup, started: std::time::Instant) {
    if *stats != RefreshStats::default() {
        tracing::info!(
            tenant = %tenant,
            full = stats.full,
            conversations = stats.conversations,
            refolded = stats.refolded,
            since_us = ?stats.since_us,
            rows = rollup.rows_held().0,
            rows_bytes = rollup.rows_held().1,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "KPI rollup refreshed"
        );
    }
}

/// Reads the tenant's saved facts into `rollup` (see
/// [`warehouse::rollups::persist`]); false when none were saved.
async fn restore_saved(warehouse: &Warehouse, rollup: &mut TenantRollup, tenant: &TenantId) -> Result<bool> {
    let Some(store) = warehouse.facts() else {
        return Ok(false);
    };
    let Some(manifest) = store.manifest(tenant.as_str()).await? else {
        return Ok(false);
    };
    let started = std::time::Instant::now();
    let (tables, ahead) = store.read(&manifest).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    rollup.restore(&manifest, tables).await?;
    if ahead {
        // A save cut short left rows of a later state in some tables.
        rollup.unsaved_from(i64::MIN);
    }
    tracing::info!(
        tenant = %tenant,
        conversations = rollup.conversations(),
        events_version = ?manifest.events_version,
        read_ms,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "KPI facts read from the lake"
    );
    Ok(true)
}

/// How often changed facts are saved to the lake: `CXLAKE_FACTS_SAVE_MS`,
/// default 1000 ms.
pub fn save_every() -> std::time::Duration {
    static EVERY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    std::time::Duration::from_millis(*EVERY.get_or_init(|| {
        env_number(
            "CXLAKE_FACTS_SAVE_MS",
            1000,
            |n| n > 0,
            "a positive number of milliseconds",
        )
    }))
}

/// Saves the facts of every tenant whose rollup changed since its last
/// save; returns how many were saved. The rollup is locked only while
/// its changes are taken, not while they are written.
pub async fn save_changed(warehouse: &Warehouse) -> Result<usize> {
    let Some(store) = warehouse.facts() else {
        return Ok(0);
    };
    let mut saved = 0;
    for (tenant, slot) in warehouse.rollup_slots() {
        let export = {
            let rollup = slot.read().await;
            if !rollup.is_built() {
                continue;
            }
            rollup.export(&tenant)?
        };
        let Some(export) = export else { continue };
        slot.write().await.exported(&export);
        let unsaved = export.unsaved();
        let started = std::time::Instant::now();
        match store.save(&tenant, export).await {
            Ok(m) => {
                saved += 1;
                tracing::debug!(
                    tenant,
                    events_version = ?m.events_version,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "KPI facts saved"
                );
            }
            Err(e) => {
                slot.write().await.unsaved_from(unsaved);
                return Err(e);
            }
        }
    }
    Ok(saved)
}

/// After an erasure of the tenant's events: recomputes what the erased
/// events changed, saves it, and leaves no older version of the fact
/// tables on storage ([`warehouse::rollups::persist::FactStore::purge_history`]);
/// tenants whose saved facts that could not vouch for are saved whole at
/// the next round.
pub async fn forget_erased(warehouse: &Warehouse, tenant: &TenantId, settings: &TenantSettings) -> Result<()> {
    drop(rollup(warehouse, tenant, settings).await?);
    save_changed(warehouse).await?;
    let Some(store) = warehouse.facts() else {
        return Ok(());
    };
    for other in store.purge_history().await? {
        let slot = warehouse.rollup_slot(&other);
        let mut rollup = slot.write().await;
        if rollup.is_built() {
            rollup.unsaved_from(i64::MIN);
        }
    }
    Ok(())
}

/// After a save round the next waits this many times as long as it took
/// (at least [`save_every`]): saving takes at most a quarter of one core,
/// whatever a round rewrites.
const SAVE_PAUSE_FACTOR: u32 = 3;

/// Saves changed facts every [`save_every`] (or, after a long round, up
/// to [`SAVE_PAUSE_FACTOR`] times its length later), for as long as the
/// process runs.
pub fn save_in_background(warehouse: Warehouse) {
    tokio::spawn(async move {
        let mut pause = save_every();
        loop {
            tokio::time::sleep(pause).await;
            let started = std::time::Instant::now();
            if let Err(e) = save_changed(&warehouse).await {
                tracing::warn!(error = %e, "saving KPI facts failed; retrying");
            }
            pause = save_every().max(started.elapsed() * SAVE_PAUSE_FACTOR);
        }
    });
}

pub fn filters(constraints: &[Constraint]) -> Vec<FactFilter> {
    constraints
        .iter()
        .map(|c| FactFilter {
            dim: c.dimension,
            values: c.values.clone(),
        })
        .collect()
}

fn rates(settings: &TenantSettings) -> Vec<HourlyRate> {
    settings
        .hourly_rates
        .iter()
        .map(|r| HourlyRate {
            team: r.team.clone(),
            rate: r.rate,
            currency: r.currency.clone(),
        })
        .collect()
}

/// The overview rows of one window and set of constraints, as
/// [`lake::run_overview`] would return them.
pub fn run_overview(
    rollup: &TenantRollup,
    settings: &TenantSettings,
    window: &Window,
    constraints: &[Constraint],
    time_based: bool,
    now_us: i64,
) -> Vec<KpiRow> {
    rollup
        .overview(
            window.from.timestamp_micros(),
            window.to.timestamp_micros(),
            &filters(constraints),
            time_based,
            &rates(settings),
            now_us,
        )
        .into_iter()
        .map(kpi_row)
        .collect()
}

/// The rows of each group of `dims` (a value per dimension, `None` for
/// NULL or empty) among the conversations started in `window` that meet
/// `constraints`, in one pass over the facts
/// ([`TenantRollup::overview_groups`]): what [`run_overview`] answers for
/// `constraints` plus the group's values, without the time-based keys.
/// `None` when every dimension is the channel: those runs read the hourly
/// cells, one per group.
pub fn run_groups(
    rollup: &TenantRollup,
    window: &Window,
    constraints: &[Constraint],
    dims: &[Dimension],
    groups: &[Vec<Option<String>>],
    now_us: i64,
) -> Option<Vec<Vec<KpiRow>>> {
    if dims.iter().all(|d| *d == Dimension::Channel) {
        return None;
    }
    let answers = rollup.overview_groups(
        window.from.timestamp_micros(),
        window.to.timestamp_micros(),
        &filters(constraints),
        dims,
        groups,
        now_us,
    );
    Some(
        answers
            .into_iter()
            .map(|rows| rows.into_iter().map(kpi_row).collect())
            .collect(),
    )
}

fn kpi_row(r: warehouse::rollups::OverviewRow) -> KpiRow {
    KpiRow {
        kpi: r.kpi,
        measure: r.measure,
        segment: r.segment,
        value: r.value,
        n: r.n,
    }
}

/// [`lake::dimension_values`] from the facts.
#[cfg(test)]
pub fn dimension_values(
    rollup: &TenantRollup,
    window: &Window,
    constraints: &[Constraint],
    d: Dimension,
) -> (Vec<String>, bool) {
    rollup.dimension_values(
        window.from.timestamp_micros(),
        window.to.timestamp_micros(),
        &filters(constraints),
        d,
    )
}

/// [`run_groups`] of every group of `dims` that occurs in each of
/// `windows` (a window's buckets, contiguous), in one pass
/// ([`TenantRollup::overview_occurring`]): `(group, rows per window)`;
/// `None` when more than `limit` groups occur.
pub fn run_occurring(
    rollup: &TenantRollup,
    windows: &[Window],
    constraints: &[Constraint],
    dims: &[Dimension],
    limit: usize,
    now_us: i64,
) -> Option<Vec<(Vec<Option<String>>, Vec<Vec<KpiRow>>)>> {
    let spans: Vec<(i64, i64)> = windows
        .iter()
        .map(|w| (w.from.timestamp_micros(), w.to.timestamp_micros()))
        .collect();
    let all = rollup.overview_occurring(&spans, &filters(constraints), dims, limit, now_us)?;
    Some(
        all.into_iter()
            .map(|(group, per_window)| {
                let rows = per_window
                    .into_iter()
                    .map(|rows| rows.into_iter().map(kpi_row).collect())
                    .collect();
                (group, rows)
            })
            .collect(),
    )
}

/// The combinations of values of `dims` that occur among the
/// conversations started in `window` that meet `constraints`
/// ([`TenantRollup::occurring_groups`]); `None` when more than `limit`.
pub fn occurring_groups(
    rollup: &TenantRollup,
    window: &Window,
    constraints: &[Constraint],
    dims: &[Dimension],
    limit: usize,
) -> Option<Vec<Vec<Option<String>>>> {
    rollup.occurring_groups(
        window.from.timestamp_micros(),
        window.to.timestamp_micros(),
        &filters(constraints),
        dims,
        limit,
    )
}

/// The tag counts behind `bottlenecks_pairs.sql` of the conversations
/// started in `window` that meet `constraints`
/// ([`TenantRollup::tag_counts`]).
pub fn tag_counts(rollup: &TenantRollup, window: &Window, constraints: &[Constraint]) -> TagCounts {
    rollup.tag_counts(
        window.from.timestamp_micros(),
        window.to.timestamp_micros(),
        &filters(constraints),
    )
}

#[cfg(test)]
mod tests;
