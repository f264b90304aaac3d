//! `events`: the lake's Delta table and the not-yet-flushed buffer as one
//! DataFusion table.
//!
//! Each scan takes one [`ReadView`] from the ingest pipeline — a lake
//! version plus exactly the buffered batches that version lacks — so a
//! query racing a flush sees every acknowledged event once.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use deltalake::DeltaTable;
use ingest::Ingestor;
use ingest::schema::events_schema;

use crate::pinned::pinned;

/// The `events` table provider.
#[derive(Debug)]
pub struct EventsTable {
    ingestor: Arc<Ingestor>,
    schema: SchemaRef,
    /// The Delta provider of the last table version seen, reused until a
    /// flush commits a new version.
    cached: Mutex<Option<(u64, Arc<dyn TableProvider>)>>,
}

impl EventsTable {
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        Self {
            ingestor,
            schema: events_schema(),
            cached: Mutex::new(None),
        }
    }

    async fn delta_provider(&self, table: &DeltaTable, session: &dyn Session) -> Result<Arc<dyn TableProvider>> {
        let version = table.version().unwrap_or(u64::MAX);
        if let Some((v, p)) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if *v == version {
                return Ok(p.clone());
            }
        }
        table
            .update_datafusion_session(session)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, provider.clone()));
        Ok(provider)
    }
}

/// Reorders and casts `plan`'s columns to `target` (by name), so the lake's
/// physical types (e.g. `Utf8View`, dictionary-encoded partition values)
/// and the buffer's line up for the union.
fn conform(plan: Arc<dyn ExecutionPlan>, target: &Schema) -> Result<Arc<dyn ExecutionPlan>> {
    let input = plan.schema();
    if input.fields().len() == target.fields().len()
        && input
            .fields()
            .iter()
            .zip(target.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
    {
        return Ok(plan);
    }
    let mut exprs = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        let idx = input.index_of(f.name())?;
        let col: Arc<dyn datafusion::physical_expr::PhysicalExpr> = Arc::new(Column::new(f.name(), idx));
        let expr: Arc<dyn datafusion::physical_expr::PhysicalExpr> = if input.field(idx).data_type() == f.data_type() {
            col
        } else {
            Arc::new(CastExpr::new(col, f.data_type().clone(), None))
        };
        exprs.push((expr, f.name().clone()));
    }
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // The lake prunes partitions and files with them; the buffer does
        // not filter, so DataFusion must apply every filter again.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let view = self.ingestor.read_view();
        let projected = Arc::new(match projection {
            Some(p) => self.schema.project(p)?,
            None => self.schema.as_ref().clone(),
        });
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if let Some(table) = &view.table {
            let provider = self.delta_provider(table, state).await?;
            let lake_schema = provider.schema();
            let lake_projection = projected
                .fields()
                .iter()
                .map(|f| lake_schema.index_of(f.name()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut plan = conform(
                provider.scan(state, Some(&lake_projection), filters, limit).await?,
                &projected,
            )?;
            if let Some(pin) = &view.pin {
                // The plan reads this version's files until it is dropped.
                plan = pinned(plan, pin.clone());
            }
            inputs.push(plan);
        }
        if !view.buffered.is_empty() {
            let partitions = split_round_robin(view.buffered, state.config().target_partitions().max(1));
            inputs.push(MemorySourceConfig::try_new_exec(
                &partitions,
                self.schema.clone(),
                projection.cloned(),
            )?);
        }
        Ok(match inputs.len() {
            0 => Arc::new(EmptyExec::new(projected)),
            1 => inputs.remove(0),
            _ => UnionExec::try_new(inputs)?,
        })
    }
}

fn split_round_robin(batches: Vec<RecordBatch>, n: usize) -> Vec<Vec<RecordBatch>> {
    let mut parts: Vec<Vec<RecordBatch>> = (0..n.min(batches.len())).map(|_| Vec::new()).collect();
    let len = parts.len();
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % len].push(b);
    }
    parts
}
