//! `cxlake facts verify`: the served `conversations` rows of a random
//! sample of conversations against the view `sql/views/conversations.sql`
//! evaluated anew from the events.
//!
//! The served rows are folded in Rust (`warehouse::fold`) and maintained
//! incrementally; the view is their definition. This check recomputes the
//! sample's rows the slow way and reports every difference, so a fold or
//! maintenance bug in a real lake shows up as a named conversation and
//! column, not as a KPI that is slightly off.
//!
//! The view runs over the sample's own events plus every conversation
//! start and order event of the tenant: that is all a sampled
//! conversation's row depends on (an order without a conversation goes
//! to the same customer's latest conversation in the attribution window,
//! which may be one outside the sample).

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use rand::seq::IndexedRandom;
use warehouse::Warehouse;
use warehouse::rollups::{EventRange, Kept};

use super::{fast, lake};
use crate::settings::TenantSettings;
use crate::tenant::TenantId;

/// What one verification found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Conversations the tenant has.
    pub conversations: usize,
    /// Conversations recomputed from the events and compared.
    pub sampled: usize,
    /// Every difference, one line each (conversation, column, both values).
    pub differences: Vec<String>,
}

const ROWS_SQL: &str = "SELECT * FROM conversations WHERE conversation_id IN (SELECT id FROM sample) \
                        ORDER BY conversation_id";

/// Compares the served rows of up to `sample` random conversations of
/// `tenant` with the view over the events.
pub async fn verify(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    sample: usize,
) -> Result<Verification> {
    let guard = fast::rollup(warehouse, tenant, settings).await?;
    let Some(rows) = guard.snapshot(Kept::Conversations) else {
        return Ok(Verification {
            conversations: 0,
            sampled: 0,
            differences: vec![],
        });
    };
    drop(guard);
    let ids_ctx = SessionContext::new();
    ids_ctx.register_table("rows", Arc::new(rows))?;
    let mut ids: Vec<String> = Vec::new();
    for b in ids_ctx.sql("SELECT conversation_id FROM rows").await?.collect().await? {
        let c = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        ids.extend(c.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    let conversations = ids.len();
    let chosen: Vec<&str> = ids
        .choose_multiple(&mut rand::rng(), sample.min(conversations))
        .map(String::as_str)
        .collect();
    let sampled = chosen.len();
    let sample_table = {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(chosen))])?;
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?)
    };

    // Served: the kept rows, as every reader of `conversations` sees them.
    let served_ctx = lake::tenant_events_session(warehouse, tenant, EventRange::default(), None).await?;
    fast::use_materialized(&served_ctx, warehouse, tenant, settings, fast::Rows::Pinned).await?;
    served_ctx.register_table("sample", sample_table.clone())?;
    let served = served_ctx.sql(ROWS_SQL).await?.collect().await?;

    // Recomputed: the views over the sample's events and what credits orders.
    let ctx = lake::tenant_events_session(warehouse, tenant, EventRange::default(), None).await?;
    ctx.register_table("sample", sample_table)?;
    let all = ctx.table_provider("events").await?;
    ctx.deregister_table("events")?;
    ctx.register_table("tenant_events", all)?;
    ctx.sql(
        "CREATE VIEW events AS SELECT * FROM tenant_events \
         WHERE conversation_id IN (SELECT id FROM sample) \
            OR type IN ('conversation.started', 'order.placed', 'order.refunded')",
    )
    .await?;
    lake::register_tenant_views(&ctx, tenant, settings).await?;
    let recomputed = ctx.sql(ROWS_SQL).await?.collect().await?;

    let one = |batches: Vec<RecordBatch>| -> Result<RecordBatch> {
        Ok(match batches.first() {
            Some(b) => arrow::compute::concat_batches(&b.schema(), &batches)?,
            None => RecordBatch::new_empty(warehouse::fold::conversations_schema()?),
        })
    };
    let (recomputed, served) = (one(recomputed)?, one(served)?);
    Ok(Verification {
        conversations,
        sampled,
        differences: warehouse::fold::differences(&recomputed, &served),
    })
}
