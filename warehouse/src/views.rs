//! The KPI views of `sql/views/`, registered on a session.
//!
//! Each view is one `CREATE VIEW` in its own `.sql` file, embedded here with
//! `include_str!` so the binary needs no files at run time. The `.sql` files
//! are the source of truth (analysts read them; `sql/tests/*.slt` pins
//! their results); this module only knows their dependency order.
//!
//! The KPI overview query (`sql/kpis/overview.sql`) is embedded too, as
//! [`KPI_OVERVIEW_SQL`]: a query with two parameters, `$1` (window start,
//! inclusive) and `$2` (window end, exclusive), both UTC instants.
//!
//! The optimization analyses of `sql/analyses/` are
//! embedded as [`ANALYSES`], with the same two leading parameters.

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// The views in dependency order: a view comes after every view it reads.
pub const VIEWS: [(&str, &str); 9] = [
    // the session's settings, read by the views below
    ("tenant_settings", include_str!("../../sql/views/tenant_settings.sql")),
    ("messages", include_str!("../../sql/views/messages.sql")),
    // reads messages
    ("script_uses", include_str!("../../sql/views/script_uses.sql")),
    ("orders", include_str!("../../sql/views/orders.sql")),
    ("exposure_events", include_str!("../../sql/views/exposure_events.sql")),
    // reads exposure_events
    ("exposures", include_str!("../../sql/views/exposures.sql")),
    ("agent_sessions", include_str!("../../sql/views/agent_sessions.sql")),
    (
        "team_hourly_rates",
        include_str!("../../sql/views/team_hourly_rates.sql"),
    ),
    // reads messages, orders, exposures
    ("conversations", include_str!("../../sql/views/conversations.sql")),
];

/// Every glossary KPI over conversations started in `[$1, $2)`, one row per
/// (kpi, measure, segment); see the header of `sql/kpis/overview.sql`.
pub const KPI_OVERVIEW_SQL: &str = include_str!("../../sql/kpis/overview.sql");

/// The optimization analyses: name, query (`sql/analyses/<name>.sql`) and
/// the SQL types of its parameters (`PREPARE analysis_<name>(<types>)`).
/// `$1`, `$2` are the window as in [`KPI_OVERVIEW_SQL`]; a third `BIGINT`
/// is the analysis' minimum count (see the header of each file).
pub const ANALYSES: [(&str, &str, &str); 5] = [
    (
        "scripts",
        include_str!("../../sql/analyses/scripts.sql"),
        "TIMESTAMP, TIMESTAMP, BIGINT",
    ),
    (
        "bottlenecks_tags",
        include_str!("../../sql/analyses/bottlenecks_tags.sql"),
        "TIMESTAMP, TIMESTAMP",
    ),
    (
        "bottlenecks_pairs",
        include_str!("../../sql/analyses/bottlenecks_pairs.sql"),
        "TIMESTAMP, TIMESTAMP, BIGINT",
    ),
    (
        "traffic",
        include_str!("../../sql/analyses/traffic.sql"),
        "TIMESTAMP, TIMESTAMP",
    ),
    (
        "channels",
        include_str!("../../sql/analyses/channels.sql"),
        "TIMESTAMP, TIMESTAMP",
    ),
];

/// The query of one analysis of [`ANALYSES`] by name.
pub fn analysis_sql(name: &str) -> Option<&'static str> {
    ANALYSES.iter().find(|(n, _, _)| *n == name).map(|(_, sql, _)| *sql)
}

/// Registers the functions the views and analyses call that DataFusion
/// lacks ([`crate::local_time`]).
pub fn register_functions(ctx: &SessionContext) {
    crate::local_time::register(ctx);
}

/// Registers every view of `sql/views/` on `ctx`, in dependency order,
/// and the functions they call. `ctx` must already have the `events` table.
///
/// Synchronous so that `Warehouse::session` can stay synchronous: creating
/// a view only plans it (it resolves table names, which for in-memory
/// catalogs completes without waiting on anything), so the future is
/// driven to completion on the calling thread.
/// The schema of the view `name` of `sql/views/`: the views planned once
/// over an empty `events` table, each schema kept for the process.
pub fn view_schema(name: &str) -> Result<arrow::datatypes::SchemaRef> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    static SCHEMAS: Mutex<BTreeMap<String, arrow::datatypes::SchemaRef>> = Mutex::new(BTreeMap::new());
    if let Some(s) = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
        return Ok(s.clone());
    }
    let ctx = SessionContext::new();
    ctx.register_table(
        "events",
        Arc::new(datafusion::datasource::MemTable::try_new(
            ingest::schema::events_schema(),
            vec![vec![]],
        )?),
    )?;
    register_views(&ctx)?;
    let schema = futures::executor::block_on(async {
        let df = ctx.table(name).await?;
        Ok::<_, datafusion::error::DataFusionError>(Arc::new(df.schema().as_arrow().clone()))
    })?;
    SCHEMAS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_string(), schema.clone());
    Ok(schema)
}

pub fn register_views(ctx: &SessionContext) -> Result<()> {
    register_functions(ctx);
    futures::executor::block_on(async {
        for (name, sql) in VIEWS {
            ctx.sql(sql)
                .await
                .map_err(|e| e.context(format!("creating view {name}")))?;
        }
        Ok(())
    })
}
