//! A plan node that holds a lake version against vacuum while its query
//! lives: from planning (a scan keeps its file list) until the last of its
//! streams is dropped ([`pinned`], a [`PassThroughExec`]).

use std::fmt;
use std::pin::Pin as StdPin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::physical_plan::ExecutionPlan;
use futures::Stream;
use ingest::readers::Pin;

use crate::passthrough::{PassThroughExec, StreamWrap};

/// Holds something a plan reads (a lake version against vacuum, kept
/// files against deletion) while the plan or one of its streams lives.
#[derive(Clone)]
pub struct Pinning {
    held: Arc<dyn std::any::Any + Send + Sync>,
    what: String,
}

impl fmt::Debug for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pinning({})", self.what)
    }
}

impl StreamWrap for Pinning {
    const NAME: &'static str = "PinnedExec";

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinnedExec: {}", self.what)
    }

    fn wrap(&self, input: SendableRecordBatchStream) -> SendableRecordBatchStream {
        Box::pin(PinnedStream {
            schema: input.schema(),
            input,
            _held: self.held.clone(),
        })
    }
}

/// `input`, with `pin` held as long as the plan or one of its streams is.
pub fn pinned(input: Arc<dyn ExecutionPlan>, pin: Arc<Pin>) -> Arc<dyn ExecutionPlan> {
    let what = format!("lake_version={}", pin.version());
    holding(input, pin, what)
}

/// `input`, with `held` (described as `what` in plans) held as long as
/// the plan or one of its streams is.
pub fn holding(
    input: Arc<dyn ExecutionPlan>,
    held: Arc<dyn std::any::Any + Send + Sync>,
    what: String,
) -> Arc<dyn ExecutionPlan> {
    Arc::new(PassThroughExec::new(input, Pinning { held, what }))
}

struct PinnedStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    _held: Arc<dyn std::any::Any + Send + Sync>,
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
