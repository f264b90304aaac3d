//! Plan nodes that pass their input through unchanged and only wrap its
//! streams ([`PassThroughExec`]), and the one that holds a lake version
//! against vacuum while its query lives ([`pinned`]): from planning (a
//! scan keeps its file list) until the last of its streams is dropped.
//!
//! A pass-through node changes nothing else: it passes rows, order,
//! statistics, limits, projections and filters through, so the optimizer
//! plans the nodes below it as if it were not there.

use std::fmt;
use std::pin::Pin as StdPin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{CardinalityEffect, replace_children_if_necessary};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;
use ingest::readers::Pin;

/// What a [`PassThroughExec`] does to each of its input's streams.
pub trait StreamWrap: fmt::Debug + Clone + Send + Sync + 'static {
    /// The node's name in plans.
    const NAME: &'static str;
    /// The node's line in a displayed plan.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn wrap(&self, input: SendableRecordBatchStream) -> SendableRecordBatchStream;
}

/// `input`, unchanged, each of its streams wrapped by `W`.
#[derive(Debug)]
pub struct PassThroughExec<W: StreamWrap> {
    input: Arc<dyn ExecutionPlan>,
    wrap: W,
}

impl<W: StreamWrap> PassThroughExec<W> {
    pub fn new(input: Arc<dyn ExecutionPlan>, wrap: W) -> Self {
        Self { input, wrap }
    }

    fn over(&self, input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self::new(input, self.wrap.clone()))
    }
}

impl<W: StreamWrap> DisplayAs for PassThroughExec<W> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.wrap.describe(f)
    }
}

impl<W: StreamWrap> ExecutionPlan for PassThroughExec<W> {
    fn name(&self) -> &str {
        W::NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
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
            return Err(DataFusionError::Internal(format!("{} has one child", W::NAME)));
        }
        Ok(self.over(children.swap_remove(0)))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        Ok(self.wrap.wrap(self.input.execute(partition, ctx)?))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(input_stats[0].clone())
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    /// The projection goes below this node, where the optimizer goes on to
    /// push it into the scan.
    fn try_swapping_with_projection(&self, projection: &ProjectionExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let below = replace_children_if_necessary(Arc::new(projection.clone()), vec![self.input.clone()])?;
        Ok(Some(self.over(below)))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

/// Holds a lake version against vacuum.
#[derive(Debug, Clone)]
pub struct Pinning(Arc<Pin>);

impl StreamWrap for Pinning {
    const NAME: &'static str = "PinnedExec";

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinnedExec: lake_version={}", self.0.version())
    }

    fn wrap(&self, input: SendableRecordBatchStream) -> SendableRecordBatchStream {
        Box::pin(PinnedStream {
            schema: input.schema(),
            input,
            _pin: self.0.clone(),
        })
    }
}

/// `input`, with `pin` held as long as the plan or one of its streams is.
pub fn pinned(input: Arc<dyn ExecutionPlan>, pin: Arc<Pin>) -> Arc<dyn ExecutionPlan> {
    Arc::new(PassThroughExec::new(input, Pinning(pin)))
}

struct PinnedStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    _pin: Arc<Pin>,
}

impl Stream for PinnedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: StdPin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.input.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for PinnedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionContext;
    use ingest::decode::{DecodeLimits, decode_events};
    use ingest::metrics::Metrics;
    use ingest::{IngestConfig, Ingestor};

    use crate::events_table::EventsTable;

    /// Five events of one conversation each, ids `<round>-<i>`.
    fn round(round: usize) -> Vec<(usize, ingest::Event)> {
        let at = chrono::Utc::now().to_rfc3339();
        let body: String = (0..5)
            .map(|i| {
                format!(
                    r#"{{"event_id":"{round}-{i}","tenant_id":"acme","type":"conversation.started","occurred_at":"{at}","conversation_id":"c{round}-{i}","channel":"whatsapp"}}"#
                ) + "\n"
            })
            .collect();
        decode_events(body.as_bytes(), &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .events
    }

    fn parquet_files(dir: &std::path::Path) -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                n += parquet_files(&path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
        n
    }

    async fn count(ctx: &SessionContext, plan: std::sync::Arc<dyn super::ExecutionPlan>) -> i64 {
        let batches = collect(plan, ctx.task_ctx()).await.unwrap_or_else(|e| panic!("{e}"));
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap_or_else(|| panic!("a count"))
            .value(0)
    }

    #[tokio::test]
    async fn a_planned_query_keeps_its_files_through_compaction_and_a_zero_retention_vacuum() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = IngestConfig::new(dir.path());
        cfg.compact_min_files = 3;
        cfg.vacuum_retention = Duration::ZERO;
        cfg.flush_max_age = Duration::from_secs(3600);
        let ingestor = Ingestor::open(cfg, std::sync::Arc::new(Metrics::default()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let flush = || async { ingestor.flush().await.unwrap_or_else(|e| panic!("{e}")) };
        ingestor.ingest(round(0)).await.unwrap_or_else(|e| panic!("{e}"));
        flush().await;

        let ctx = SessionContext::new();
        ctx.register_table("events", std::sync::Arc::new(EventsTable::new(ingestor.clone())))
            .unwrap_or_else(|e| panic!("{e}"));
        let planned = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .create_physical_plan()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        };
        let held = planned("SELECT count(*) FROM events WHERE event_id <> 'none'").await;

        // Two more flushes make three files; compaction merges them, and a
        // vacuum a second later (its interval) finds the first one replaced.
        for r in 1..3 {
            ingestor.ingest(round(r)).await.unwrap_or_else(|e| panic!("{e}"));
            flush().await;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        flush().await;
        let lake = dir.path().join("lake");
        assert_eq!(
            parquet_files(&lake),
            2,
            "the merged file, and the first flush's file, which the planned query still reads"
        );
        assert_eq!(count(&ctx, held).await, 5, "the planned query reads its version");

        // Once the plan is gone, its file goes at the next vacuum.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        flush().await;
        assert_eq!(parquet_files(&lake), 1, "only the merged file is left");
        let now = planned("SELECT count(*) FROM events").await;
        assert_eq!(count(&ctx, now).await, 15);
    }

    #[tokio::test]
    async fn the_scan_below_a_pin_still_gets_limits_and_dynamic_filters() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ingestor = Ingestor::open(IngestConfig::new(dir.path()), std::sync::Arc::new(Metrics::default()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ingestor.ingest(round(0)).await.unwrap_or_else(|e| panic!("{e}"));
        ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
        let ctx = SessionContext::new();
        ctx.register_table("events", std::sync::Arc::new(EventsTable::new(ingestor.clone())))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = ctx
            .sql("SELECT event_id FROM events ORDER BY occurred_at DESC LIMIT 2")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .create_physical_plan()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let scan = shown
            .lines()
            .skip_while(|l| !l.contains("PinnedExec"))
            .find(|l| l.contains("DataSourceExec"))
            .unwrap_or_else(|| panic!("a scan below the pin in:\n{shown}"));
        assert!(
            scan.contains("DynamicFilter"),
            "the top-k's filter reaches the scan through the pin:\n{shown}"
        );
    }
}
