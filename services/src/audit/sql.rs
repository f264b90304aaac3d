//! The audit log as the SQL table `audit_log`, in admin sessions only.
//!
//! The table is read when a query scans it (not when the session opens:
//! every HTTP query opens a session, few of them read the log). A tenant
//! admin's table holds its tenant's records; a platform admin's all.
//! Columns: `seq`, `time` (UTC timestamp, ms), `tenant`, `actor_key_id`,
//! `actor_tenant`, `actor_role`, `action`, `target`, `detail` (JSON text),
//! `source`, `prev_hash`, `hash`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use warehouse::sandbox::Scope;

use super::{Filter, Record, read_records};

/// The name admins query.
pub const TABLE: &str = "audit_log";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        text("tenant", false),
        text("actor_key_id", true),
        text("actor_tenant", false),
        text("actor_role", true),
        text("action", false),
        text("target", false),
        text("detail", false),
        text("source", true),
        text("prev_hash", false),
        text("hash", false),
    ]))
});

/// Registers `audit_log` in `ctx` for an admin session over `scope`.
pub fn register(ctx: &SessionContext, data_dir: &Path, scope: &Scope) -> Result<()> {
    let tenant = match scope {
        Scope::Tenant(t) => Some(t.clone()),
        Scope::Platform => None,
    };
    ctx.register_table(
        TABLE,
        Arc::new(AuditTable {
            dir: data_dir.join("audit"),
            tenant,
        }),
    )?;
    Ok(())
}

#[derive(Debug)]
struct AuditTable {
    dir: PathBuf,
    tenant: Option<String>,
}

fn batch(records: &[Record]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&Record) -> Option<&str>| -> ArrayRef {
        Arc::new(records.iter().map(|r| f(r)).collect::<StringArray>())
    };
    let time: TimestampMillisecondArray = records
        .iter()
        .map(|r| {
            chrono::DateTime::parse_from_rfc3339(&r.time)
                .map(|t| t.timestamp_millis())
                .unwrap_or(0)
        })
        .collect::<Vec<i64>>()
        .into();
    let details: Vec<String> = records.iter().map(|r| r.detail.to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(records.iter().map(|r| r.seq).collect::<UInt64Array>()),
        Arc::new(time.with_timezone("UTC")),
        text(&|r| Some(r.tenant.as_str())),
        text(&|r| r.actor.key_id.as_deref()),
        text(&|r| Some(r.actor.tenant.as_str())),
        text(&|r| r.actor.role.as_deref()),
        text(&|r| Some(r.action.as_str())),
        text(&|r| Some(r.target.as_str())),
        Arc::new(details.iter().map(|d| Some(d.as_str())).collect::<StringArray>()),
        text(&|r| r.source.as_deref()),
        text(&|r| Some(r.prev_hash.as_str())),
        text(&|r| Some(r.hash.as_str())),
    ];
    Ok(RecordBatch::try_new(SCHEMA.clone(), columns)?)
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
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
        let dir = self.dir.clone();
        let filter = Filter {
            tenant: self.tenant.clone(),
            from: None,
            to: None,
            action: None,
            limit: usize::MAX,
        };
        let records = tokio::task::spawn_blocking(move || read_records(&dir, &filter))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let table = MemTable::try_new(SCHEMA.clone(), vec![vec![batch(&records)?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
