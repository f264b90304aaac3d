//! Tenant isolation below SQL.
//!
//! A tenant's session does not hold the lake's `events` table at all: its
//! `events` is a view whose plan scans the real provider *without a name
//! in the catalog* and filters `tenant_id = <tenant>`. SQL can only name
//! tables of the catalog, so every way of reaching events — the views over
//! it, subqueries, joins, CTEs, `UNION`, window functions — goes through
//! that filter; there is nothing else to name. The filter is pushed down to
//! the Delta scan, where it prunes the `tenant_id` partitions, so isolation
//! costs nothing measurable (see docs/benchmarks.md).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;

/// `provider` restricted to the rows of `tenant`, as a table provider that
/// can be registered under the provider's usual name.
///
/// `name` is the name the scan carries in plans (`EXPLAIN` shows it); it is
/// not registered anywhere.
pub fn tenant_scoped(name: &str, provider: Arc<dyn TableProvider>, tenant: &str) -> Result<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(provider), None)?
        .filter(col("tenant_id").eq(lit(tenant.to_string())))?
        .build()?;
    Ok(Arc::new(Scoped(ViewTable::new(plan, None))))
}

/// The view, presented as the base table it stands for (so catalog tools
/// list `events` among the tables, as analysts expect); the planner still
/// inlines its plan, filter included.
#[derive(Debug)]
struct Scoped(ViewTable);

#[async_trait]
impl TableProvider for Scoped {
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}
