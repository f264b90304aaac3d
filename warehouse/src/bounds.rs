//! Bounds on user queries, enforced inside the engine.
//!
//! A [`Bounds`] is installed in a session as a physical optimizer rule,
//! [`BoundRule`], that wraps the root of every physical plan in a
//! [`BoundedExec`]. So every query of that session — over HTTP, over the
//! Postgres wire in the simple or the extended protocol, `EXPLAIN ANALYZE`
//! — is bounded the same way, whatever path planned it:
//!
//! - **time**: the result stream fails with [`BoundError::Timeout`] once the
//!   query has run for `timeout` (a timer wakes the stream, so a query
//!   stuck in a long build phase is stopped too); dropping the stream stops
//!   every task of the query;
//! - **rows**: the result fails with [`BoundError::TooManyRows`] when it
//!   would return more than `max_rows` rows;
//! - **concurrency**: a query that would exceed the tenant's
//!   [`ConcurrencyGate`] fails at once with [`BoundError::Busy`] instead of
//!   queueing behind a runaway query;
//! - **memory**: not here, but in the session's memory pool
//!   ([`Bounds::memory_bytes`]), which draws on the process-wide budget of
//!   all user SQL ([`SqlEngine`]): operators that can spill do (into a
//!   spill space of bounded size), the others fail with DataFusion's
//!   "resources exhausted" error; functions that would build a value of a
//!   size the query names are refused first ([`crate::caps`]).
//!
//! **Where queries run.** Each partition of a bounded plan runs in a task
//! of its own on the [`SqlEngine`]'s runtime (a runtime apart from the one
//! that acknowledges ingest), and its batches reach the caller through a
//! channel. Dropping the result stream (the client went away, the timeout
//! fired) aborts those tasks; [`SqlEngine::shut_down`] stops every query at
//! once. An abort takes effect only where a task yields, so operators that
//! can emit many batches per input batch (joins, `unnest`) get a
//! [`CheckpointExec`] above them, which spends the task's cooperative
//! budget on every batch: a cross join that would spin for hours inside
//! one poll yields every few batches and so can be stopped.
//!
//! Plans that write (`COPY ... TO`, `INSERT`) are refused by the rule as a
//! second line behind the statement check (`sandbox::check_statement`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{Stream, StreamExt};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::passthrough::{PassThroughExec, StreamWrap};

/// Limits of one role's queries.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Wall-clock time a query may run, from its first poll to its last row.
    pub timeout: Duration,
    /// Rows a result may have.
    pub max_rows: usize,
    /// Memory one session may hold for operators (sorts, joins, aggregates).
    pub memory_bytes: usize,
    /// Queries of the same tenant that may run at once.
    pub gate: Arc<ConcurrencyGate>,
    /// Bytes a JSON result (`/v1/sql` without a streaming `Accept`) may
    /// take; streamed formats leave as they are encoded.
    pub max_json_bytes: usize,
    /// Where the queries run and what all of them share.
    pub engine: Arc<SqlEngine>,
}

impl Bounds {
    /// The largest value one call of a function may build (a string, an
    /// array): an eighth of the memory bound, between 1 MiB and 256 MiB. An
    /// operator holds a few batches at once, so a few such values fit.
    pub fn max_value_bytes(&self) -> usize {
        (self.memory_bytes / 8).clamp(1 << 20, 256 << 20)
    }
}

/// The budgets every user query of the process shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Memory all sandboxed sessions together may reserve.
    pub memory_total_bytes: usize,
    /// Bytes all queries together may spill to the temporary directory.
    pub spill_max_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            memory_total_bytes: 4 << 30,
            spill_max_bytes: 10 << 30,
        }
    }
}

/// Where user queries run and what all of them share: the runtime their
/// partitions run on, the memory budget every session's pool draws on, the
/// spill space, and the switch that stops them all at shutdown.
#[derive(Debug)]
pub struct SqlEngine {
    runtime: Option<Handle>,
    memory: Arc<dyn MemoryPool>,
    disk: Arc<DiskManager>,
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
}

impl SqlEngine {
    /// An engine whose queries run on `runtime` (the caller's runtime when
    /// `None`).
    pub fn new(config: &EngineConfig, runtime: Option<Handle>) -> Result<Self> {
        let disk = DiskManagerBuilder::default()
            .with_max_temp_directory_size(config.spill_max_bytes)
            .build()?;
        Ok(Self {
            runtime,
            memory: Arc::new(GreedyMemoryPool::new(config.memory_total_bytes.max(1))),
            disk: Arc::new(disk),
            stopping: AtomicBool::new(false),
            stop: watch::channel(false).0,
        })
    }

    /// The pool of one session: at most `session_bytes` of its own (shared
    /// fairly among its spilling operators), and never more than the
    /// process-wide budget leaves.
    pub fn session_pool(&self, session_bytes: usize) -> Arc<dyn MemoryPool> {
        Arc::new(BudgetedPool {
            local: datafusion::execution::memory_pool::FairSpillPool::new(session_bytes),
            global: self.memory.clone(),
        })
    }

    /// The runtime user queries run on (`None`: the caller's).
    pub fn runtime(&self) -> Option<Handle> {
        self.runtime.clone()
    }

    /// The spill space shared by every session.
    pub fn disk_manager(&self) -> Arc<DiskManager> {
        self.disk.clone()
    }

    /// Bytes reserved by all user queries now.
    pub fn memory_reserved(&self) -> usize {
        self.memory.reserved()
    }

    /// Stops every running query (each fails with a shutdown error) and
    /// refuses new ones. For a graceful shutdown: in-flight requests answer
    /// at once instead of holding the server up until their timeouts.
    pub fn shut_down(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn handle(&self) -> Result<Handle> {
        match &self.runtime {
            Some(h) => Ok(h.clone()),
            None => Handle::try_current()
                .map_err(|e| DataFusionError::Execution(format!("no async runtime for the query: {e}"))),
        }
    }

    /// Runs `work` (planning a statement, collecting a result) on the
    /// engine's runtime. Dropping the returned future aborts the work, so a
    /// request whose client went away stops its query.
    pub async fn run<F>(&self, work: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_stopping() {
            return Err(BoundError::ShuttingDown.into_df());
        }
        let task = AbortOnDrop(self.handle()?.spawn(work));
        let mut stop = self.stop.subscribe();
        tokio::select! {
            done = task => done,
            _ = stopped(&mut stop) => Err(BoundError::ShuttingDown.into_df()),
        }
    }
}

/// Resolves once the engine is shutting down (never if it is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A task that is aborted when its handle is dropped.
#[derive(Debug)]
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map_err(|e| DataFusionError::Execution(format!("the query task ended: {e}")))
    }
}

/// A session's own bound in front of the process-wide budget: a
/// reservation succeeds only when both have room.
#[derive(Debug)]
struct BudgetedPool {
    local: datafusion::execution::memory_pool::FairSpillPool,
    global: Arc<dyn MemoryPool>,
}

impl fmt::Display for BudgetedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} within {}", self.local, self.global)
    }
}

impl MemoryPool for BudgetedPool {
    fn name(&self) -> &str {
        "cxlake_budgeted"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.local.register(consumer);
        self.global.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.local.unregister(consumer);
        self.global.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.local.grow(reservation, additional);
        self.global.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.local.shrink(reservation, shrink);
        self.global.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.local.try_grow(reservation, additional)?;
        if let Err(e) = self.global.try_grow(reservation, additional) {
            self.local.shrink(reservation, additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "all SQL queries of this server together reached their memory budget \
                 ({}); retry later or make the query lighter",
                e.strip_backtrace()
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.local.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.local.memory_limit()
    }
}

/// Why a bounded query was stopped. Carried inside a
/// [`DataFusionError::External`]; [`BoundError::find`] digs it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundError {
    Timeout(Duration),
    TooManyRows(usize),
    Busy(usize),
    ReadOnly(String),
    /// A function call would build a value of about `estimate` bytes.
    ValueTooLarge {
        function: String,
        estimate: u128,
        limit: usize,
    },
    /// The encoded result would pass `limit` bytes.
    ResultTooLarge(usize),
    /// The server is shutting down.
    ShuttingDown,
}

fn mib(bytes: u128) -> String {
    let m = bytes as f64 / f64::from(1u32 << 20);
    if m >= 10.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

impl fmt::Display for BoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundError::Timeout(d) => write!(
                f,
                "query cancelled: it ran longer than the {} s limit of this role; narrow the time range or aggregate more",
                d.as_secs_f64()
            ),
            BoundError::TooManyRows(n) => write!(
                f,
                "query cancelled: the result has more than {n} rows, the limit of this role; add LIMIT or aggregate"
            ),
            BoundError::Busy(n) => write!(
                f,
                "too many queries: this tenant already runs {n} queries at once, the limit; retry when one has finished"
            ),
            BoundError::ReadOnly(what) => write!(f, "cxlake is read-only: {what} is not allowed"),
            BoundError::ValueTooLarge {
                function,
                estimate,
                limit,
            } => write!(
                f,
                "query refused: {function} would build about {} at once, more than the {} one function call may build for this role; ask for smaller values",
                mib(*estimate),
                mib(*limit as u128)
            ),
            BoundError::ResultTooLarge(limit) => write!(
                f,
                "query cancelled: the JSON result would be larger than {}, the limit of this role; add LIMIT, aggregate, or ask for a streamed format (Accept: text/csv, application/x-ndjson, application/vnd.apache.arrow.stream)",
                mib(*limit as u128)
            ),
            BoundError::ShuttingDown => write!(f, "query cancelled: the server is shutting down; retry in a moment"),
        }
    }
}

impl std::error::Error for BoundError {}

impl BoundError {
    pub fn into_df(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    /// The bound a DataFusion error reports, if it is one of ours.
    pub fn find(err: &DataFusionError) -> Option<&BoundError> {
        match err {
            DataFusionError::External(e) => e.downcast_ref::<BoundError>(),
            DataFusionError::Context(_, inner) => BoundError::find(inner),
            DataFusionError::Shared(inner) => BoundError::find(inner),
            _ => None,
        }
    }
}

/// Counts the running queries of one tenant.
#[derive(Debug)]
pub struct ConcurrencyGate {
    max: usize,
    active: AtomicUsize,
}

impl ConcurrencyGate {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            active: AtomicUsize::new(0),
        }
    }

    fn try_enter(self: &Arc<Self>) -> Result<Permit, BoundError> {
        let mut cur = self.active.load(Ordering::Relaxed);
        loop {
            if cur >= self.max {
                return Err(BoundError::Busy(self.max));
            }
            match self
                .active
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(Permit(self.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// Queries running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Permit(Arc<ConcurrencyGate>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wraps the root of every physical plan in a [`BoundedExec`].
#[derive(Debug)]
pub struct BoundRule {
    bounds: Bounds,
}

impl BoundRule {
    pub fn new(bounds: Bounds) -> Self {
        Self { bounds }
    }
}

impl PhysicalOptimizerRule for BoundRule {
    fn name(&self) -> &str {
        "cxlake_bounds"
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        crate::caps::check_aggregates(&plan, self.bounds.max_value_bytes(), config.execution.batch_size.into())?;
        let mut writes = None;
        plan.apply(|node| {
            let name = node.name();
            if name.contains("DataSink") || name.contains("Insert") || name.contains("Copy") {
                writes = Some(name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if let Some(name) = writes {
            return Err(BoundError::ReadOnly(format!("a plan that writes ({name})")).into_df());
        }
        if plan.name() == "BoundedExec" {
            return Ok(plan);
        }
        let plan = plan
            .transform_up(|node| {
                if multiplies_rows(node.as_ref()) {
                    Ok(Transformed::yes(
                        Arc::new(CheckpointExec::new(node, Checkpoint)) as Arc<dyn ExecutionPlan>
                    ))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        Ok(Arc::new(BoundedExec::new(plan, self.bounds.clone())))
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The root of a bounded plan; see the module docs.
#[derive(Debug)]
pub struct BoundedExec {
    input: Arc<dyn ExecutionPlan>,
    bounds: Bounds,
    /// Shared by the partitions of one execution.
    run: Arc<Run>,
}

#[derive(Debug, Default)]
struct Run {
    deadline: OnceLock<Instant>,
    /// Held by the partition streams only, so the permit is returned when
    /// the last of them is dropped, however long the plan lives.
    permit: Mutex<Weak<Permit>>,
    rows: AtomicUsize,
}

impl BoundedExec {
    fn new(input: Arc<dyn ExecutionPlan>, bounds: Bounds) -> Self {
        Self {
            input,
            bounds,
            run: Arc::new(Run::default()),
        }
    }
}

impl DisplayAs for BoundedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BoundedExec: timeout={}s, max_rows={}",
            self.bounds.timeout.as_secs_f64(),
            self.bounds.max_rows
        )
    }
}

impl ExecutionPlan for BoundedExec {
    fn name(&self) -> &str {
        "BoundedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal("BoundedExec has one child".into()));
        }
        Ok(Arc::new(BoundedExec::new(children.swap_remove(0), self.bounds.clone())))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let permit = {
            let mut held = self.run.permit.lock().unwrap_or_else(|p| p.into_inner());
            match held.upgrade() {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.bounds.gate.try_enter().map_err(BoundError::into_df)?);
                    *held = Arc::downgrade(&p);
                    p
                }
            }
        };
        let engine = &self.bounds.engine;
        if engine.is_stopping() {
            return Err(BoundError::ShuttingDown.into_df());
        }
        let deadline = *self.run.deadline.get_or_init(|| Instant::now() + self.bounds.timeout);
        // Two batches in flight: enough to overlap producing and sending.
        let (tx, rx) = mpsc::channel(2);
        let task = engine.handle()?.spawn(run_partition(
            self.input.clone(),
            partition,
            ctx,
            tx,
            deadline,
            self.bounds.timeout,
            engine.stop.subscribe(),
        ));
        Ok(Box::pin(BoundedStream {
            schema: self.input.schema(),
            input: rx,
            task: AbortOnDrop(task),
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            bounds: self.bounds.clone(),
            run: self.run.clone(),
            _permit: permit,
            done: false,
        }))
    }
}

/// One partition of a bounded plan, on the engine's runtime: its batches go
/// to `tx` until the input ends, fails, runs past `deadline`, the engine
/// stops, or the receiver is gone.
async fn run_partition(
    plan: Arc<dyn ExecutionPlan>,
    partition: usize,
    ctx: Arc<TaskContext>,
    tx: mpsc::Sender<Result<RecordBatch>>,
    deadline: Instant,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut input = match plan.execute(partition, ctx) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        let item = tokio::select! {
            biased;
            _ = stopped(&mut stop) => Some(Err(BoundError::ShuttingDown.into_df())),
            _ = &mut sleep => Some(Err(BoundError::Timeout(timeout).into_df())),
            _ = tx.closed() => return,
            item = input.next() => item,
        };
        let Some(item) = item else { return };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// Operators whose output is not bounded by their input: one input batch
/// can make them emit batches for a long time without polling anything.
fn multiplies_rows(node: &dyn ExecutionPlan) -> bool {
    let name = node.name();
    name.contains("Join") || name == "UnnestExec"
}

/// Spends the task's cooperative budget on each batch passing through, so
/// the task yields every few batches: there a timeout can fire and an
/// abort take effect. See the module docs.
#[derive(Debug, Clone)]
pub struct Checkpoint;

/// A node over an operator that multiplies rows, with [`Checkpoint`]
/// streams.
pub type CheckpointExec = PassThroughExec<Checkpoint>;

impl StreamWrap for Checkpoint {
    const NAME: &'static str = "CheckpointExec";

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointExec")
    }

    fn wrap(&self, input: SendableRecordBatchStream) -> SendableRecordBatchStream {
        Box::pin(CheckpointStream {
            schema: input.schema(),
            input,
        })
    }
}

struct CheckpointStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
}

impl Stream for CheckpointStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let polled = self.input.as_mut().poll_next(cx);
        if polled.is_ready() {
            coop.made_progress();
        }
        polled
    }
}

impl RecordBatchStream for CheckpointStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

struct BoundedStream {
    schema: SchemaRef,
    input: mpsc::Receiver<Result<RecordBatch>>,
    /// Dropping the stream aborts the partition's task.
    task: AbortOnDrop<()>,
    sleep: Pin<Box<Sleep>>,
    bounds: Bounds,
    run: Arc<Run>,
    _permit: Arc<Permit>,
    done: bool,
}

impl Stream for BoundedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(BoundError::Timeout(self.bounds.timeout).into_df())));
        }
        match self.input.poll_recv(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                let total = self.run.rows.fetch_add(batch.num_rows(), Ordering::Relaxed) + batch.num_rows();
                if total > self.bounds.max_rows {
                    self.done = true;
                    return Poll::Ready(Some(Err(BoundError::TooManyRows(self.bounds.max_rows).into_df())));
                }
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                // The channel closes when the task ends; a task that
                // panicked must not pass for a complete result.
                let ended = std::task::ready!(Pin::new(&mut self.task).poll(cx));
                self.done = true;
                match ended {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl RecordBatchStream for BoundedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests;
