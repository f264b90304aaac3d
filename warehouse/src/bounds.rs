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
//!   ([`Bounds::memory_bytes`]): operators that can spill do, the others
//!   fail with DataFusion's "resources exhausted" error.
//!
//! Plans that write (`COPY ... TO`, `INSERT`) are refused by the rule as a
//! second line behind the statement check (`sandbox::check_statement`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;
use tokio::time::{Instant, Sleep};

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
}

impl Bounds {
    /// Generous defaults for an analyst: 30 s, 1M rows, 1 GiB, 4 at once.
    pub fn analyst_default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_rows: 1_000_000,
            memory_bytes: 1 << 30,
            gate: Arc::new(ConcurrencyGate::new(4)),
        }
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
        }
    }
}

impl std::error::Error for BoundError {}

impl BoundError {
    fn into_df(self) -> DataFusionError {
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

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
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
        let deadline = *self.run.deadline.get_or_init(|| Instant::now() + self.bounds.timeout);
        let input = self.input.execute(partition, ctx)?;
        Ok(Box::pin(BoundedStream {
            schema: input.schema(),
            input,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            bounds: self.bounds.clone(),
            run: self.run.clone(),
            _permit: permit,
            done: false,
        }))
    }
}

struct BoundedStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
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
        match self.input.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                let total = self.run.rows.fetch_add(batch.num_rows(), Ordering::Relaxed) + batch.num_rows();
                if total > self.bounds.max_rows {
                    self.done = true;
                    return Poll::Ready(Some(Err(BoundError::TooManyRows(self.bounds.max_rows).into_df())));
                }
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl RecordBatchStream for BoundedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
