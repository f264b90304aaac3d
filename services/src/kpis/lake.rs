//! The SQL side of the KPI endpoints.
//!
//! Tenant isolation is structural, not a `WHERE` each query must remember:
//! [`tenant_session`] renames the lake's `events` table and puts a view
//! named `events` in its place that holds only the tenant's rows, then
//! builds every view of `sql/views/` again on top of it. Whatever SQL runs
//! in that session can only see the tenant. The same step applies the
//! tenant's settings as rows, not as SQL text: its `tenant_settings` row
//! (attribution window, SLA target, time zone) and its hourly rates
//! replace the default views of those names, and the views that read
//! them are built on top.
//!
//! A KPI request then runs `sql/kpis/overview.sql` once per window and
//! group. To keep that cheap, [`snapshot`] materializes once, in memory,
//! what every run can read: the conversations started in the whole span
//! (previous period included), their messages, their orders and the
//! orders placed in the span, agent sessions, and `cost.incurred` events
//! of the span. Each run then swaps in a `conversations` view over that
//! snapshot filtered to the run's constraints ([`run_overview`]), so a
//! group of `group_by=channel,day` costs a scan of memory, not of the lake.
//!
//! No user string is ever spliced into SQL: tenant ids and instants are
//! validated and formatted by this crate, and filter values are handed
//! over as rows of small in-memory tables (`c.channel IN (SELECT v FROM
//! flt_0)`).

use std::sync::Arc;

#[cfg(test)]
use arrow::array::{Array, AsArray};
use arrow::array::{Float64Array, Int64Array, IntervalMonthDayNanoArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SessionConfig, SessionContext};
use warehouse::Warehouse;
use warehouse::rollups::EventRange;
use warehouse::statement::{self, Binder, Statement};
#[cfg(test)]
use warehouse::views::KPI_OVERVIEW_SQL;
use warehouse::views::VIEWS;

use super::params::{self, Dimension, Window};
use crate::settings::TenantSettings;
use crate::tenant::TenantId;

/// `sla_met` of `sql/views/conversations.sql`, for a `conversations` built
/// on kept rows: met when the first reply came within the target (`target`,
/// an SQL expression: the session's `tenant_settings.sla_target_us`, or a
/// joined column of each row's tenant), missed when it came later or
/// nobody has replied and the target has passed, NULL otherwise. Computed
/// when read, since "the target has passed" depends on now.
pub fn sla_met_sql(target: &str) -> String {
    format!(
        "CASE \
        WHEN first_customer_message_at IS NULL THEN NULL \
        WHEN first_reply_at IS NOT NULL THEN \
            arrow_cast(first_reply_at, 'Int64') - arrow_cast(first_customer_message_at, 'Int64') <= {target} \
        WHEN arrow_cast(arrow_cast(now(), 'Timestamp(Microsecond, Some(\"UTC\"))'), 'Int64') \
            > arrow_cast(first_customer_message_at, 'Int64') + {target} THEN false \
    END"
    )
}

/// The target of a tenant session's [`sla_met_sql`].
pub const SESSION_SLA_TARGET: &str = "(SELECT sla_target_us FROM tenant_settings)";

/// `tenant_settings` of one tenant (see `sql/views/tenant_settings.sql`):
/// the settings the views read, as a row rather than as SQL text.
pub fn settings_table(settings: &TenantSettings) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "attribution_window",
            DataType::Interval(IntervalUnit::MonthDayNano),
            false,
        ),
        Field::new("sla_target_us", DataType::Int64, false),
        Field::new("time_zone", DataType::Utf8, false),
    ]));
    let days = i32::try_from(settings.attribution_window_days)
        .map_err(|_| DataFusionError::Plan("the attribution window is too long".into()))?;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(
                0, days, 0,
            )])),
            Arc::new(Int64Array::from(vec![settings.sla_target_us()])),
            Arc::new(StringArray::from(vec![settings.time_zone.as_str()])),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// `team_hourly_rates` of one tenant (see `sql/views/team_hourly_rates.sql`).
pub fn rates_table(tenant: &TenantId, settings: &TenantSettings) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant_id", DataType::Utf8, true),
        Field::new("team", DataType::Utf8, true),
        Field::new("hourly_rate", DataType::Float64, true),
        Field::new("currency", DataType::Utf8, true),
    ]));
    let rates = &settings.hourly_rates;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some(tenant.as_str()); rates.len()])),
            Arc::new(StringArray::from(
                rates.iter().map(|r| r.team.as_deref()).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(rates.iter().map(|r| r.rate).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                rates.iter().map(|r| Some(r.currency.as_str())).collect::<Vec<_>>(),
            )),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// A session in which `events` and every view hold only `tenant`'s rows,
/// with the tenant's settings applied (see the module docs), in which
/// `conversations` reads the tenant's materialized rows
/// ([`super::fast::use_materialized`]): refreshed from the lake when a
/// query scans them, never recomputed from all events per query.
pub async fn tenant_session(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
) -> Result<SessionContext> {
    let ctx = tenant_session_in(warehouse, tenant, settings, EventRange::default()).await?;
    super::fast::use_materialized(&ctx, warehouse, tenant, settings, super::fast::Rows::Current).await?;
    Ok(ctx)
}

/// [`tenant_session`] whose `events` (and so every view, `conversations`
/// included, computed from events) hold only `range` (a range without an
/// end: bounded ones, the slices of a build, go through
/// [`tenant_session_with`]).
pub async fn tenant_session_in(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    range: EventRange,
) -> Result<SessionContext> {
    tenant_session_with(warehouse, tenant, settings, range, None).await
}

/// The tenant's events of [`warehouse::rollups::LONG_HORIZON_TYPES`], in
/// memory, for the slices of one build ([`tenant_session_with`]).
pub async fn long_horizon_events(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
) -> Result<Arc<MemTable>> {
    let ctx = tenant_session_with(warehouse, tenant, settings, EventRange::default(), None).await?;
    let types = warehouse::rollups::LONG_HORIZON_TYPES;
    let placeholders: Vec<String> = (1..=types.len()).map(|i| format!("${i}")).collect();
    let statement = Statement {
        sql: format!("SELECT * FROM events WHERE type IN ({})", placeholders.join(", ")),
        params: types.iter().map(|t| ScalarValue::from(*t)).collect(),
    };
    Ok(Arc::new(collect_table(&ctx, &statement).await?))
}

/// [`tenant_session_in`] with the long-horizon events of a bounded range
/// given (`long`, from [`long_horizon_events`]), so the slices of one
/// build read them from the lake once.
pub async fn tenant_session_with(
    warehouse: &Warehouse,
    tenant: &TenantId,
    settings: &TenantSettings,
    range: EventRange,
    long: Option<Arc<MemTable>>,
) -> Result<SessionContext> {
    let ctx = tenant_events_session(warehouse, tenant, range, long).await?;
    register_tenant_views(&ctx, tenant, settings).await?;
    Ok(ctx)
}

/// [`tenant_session_with`] without the views of `sql/views/`: only
/// `events`, for callers that define the views they read themselves.
pub async fn tenant_events_session(
    warehouse: &Warehouse,
    tenant: &TenantId,
    range: EventRange,
    long: Option<Arc<MemTable>>,
) -> Result<SessionContext> {
    let ctx = warehouse.events_session().map_err(|e| match e {
        warehouse::WarehouseError::Query(e) => e,
        other => DataFusionError::External(Box::new(other)),
    })?;
    let lake = ctx.table_provider("events").await?;
    ctx.deregister_table("events")?;
    ctx.register_table("lake_events", lake)?;
    if range.until_us.is_some() {
        // A bounded slice also reads a few event types to the end of the
        // lake: filter rows while decoding, so the rest of those files'
        // columns is not decoded for nothing.
        ctx.sql("SET datafusion.execution.parquet.pushdown_filters = true")
            .await?;
        ctx.sql("SET datafusion.execution.parquet.reorder_filters = true")
            .await?;
    }
    let mut b = Binder::default();
    let scope = format!("tenant_id = {}", b.bind(ScalarValue::from(tenant.as_str())));
    let long_part = match (range.long_horizon_predicate(&mut b), long) {
        (Some(condition), Some(table)) => {
            ctx.register_table("long_horizon_events", table)?;
            format!(" UNION ALL SELECT * FROM long_horizon_events WHERE {condition}")
        }
        (Some(_), None) => {
            return Err(DataFusionError::Internal(
                "a bounded event range needs its long-horizon events".into(),
            ));
        }
        _ => String::new(),
    };
    let mut credit = Binder::default();
    let credit_scope = format!("tenant_id = {}", credit.bind(ScalarValue::from(tenant.as_str())));
    if let Some(sql) = range.credit_customers_sql("lake_events", &credit_scope, &mut credit) {
        ctx.register_table(
            warehouse::rollups::CREDIT_CUSTOMERS,
            Arc::new(collect_table(&ctx, &credit.statement(sql)).await?),
        )?;
    }
    let predicate = range.predicate(&mut b);
    let events = b
        .statement(format!(
            "SELECT * FROM lake_events WHERE {scope} AND {predicate}{long_part}"
        ))
        .plan(&ctx)
        .await?;
    ctx.register_table("events", events.into_view())?;
    Ok(ctx)
}

/// Registers every view of `sql/views/` over the session's `events` (which
/// must already hold only `tenant`'s rows), with the tenant's settings
/// applied: its labour rates, attribution window and SLA target. Also used
/// by analyst SQL sessions, so SQL sees the same facts as the KPIs.
pub async fn register_tenant_views(ctx: &SessionContext, tenant: &TenantId, settings: &TenantSettings) -> Result<()> {
    warehouse::views::register_functions(ctx);
    for (name, sql) in VIEWS {
        match name {
            "team_hourly_rates" => {
                ctx.register_table(name, Arc::new(rates_table(tenant, settings)?))?;
            }
            "tenant_settings" => {
                ctx.register_table(name, Arc::new(settings_table(settings)?))?;
            }
            _ => {
                ctx.sql(sql).await?;
            }
        }
    }
    Ok(())
}

/// The bounds of `window` as the parameters `$1` (from) and `$2` (to).
pub fn window_params(window: &Window) -> Vec<ScalarValue> {
    vec![
        statement::utc_micros(window.from.timestamp_micros()),
        statement::utc_micros(window.to.timestamp_micros()),
    ]
}

/// `sql` with `window` bound to `$1` and `$2`.
pub fn in_window(sql: String, window: &Window) -> Statement {
    Statement {
        sql,
        params: window_params(window),
    }
}

async fn collect_table(ctx: &SessionContext, statement: &Statement) -> Result<MemTable> {
    let df = statement.plan(ctx).await?;
    let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    // The batches may differ from the planned schema in nullability or
    // metadata; the table takes theirs.
    let schema = batches.first().map_or(planned, |b| b.schema());
    MemTable::try_new(schema, vec![batches])
}

/// Every table [`snapshot`] can hold besides the conversations.
#[cfg(test)]
pub const SNAPSHOT_TABLES: [&str; 4] = ["messages", "orders", "agent_sessions", "events"];

/// An in-memory session with what every overview run over `span` reads
/// (see the module docs); `conversations` is a view over `conv_all`, the
/// conversations started in `span`. Of [`SNAPSHOT_TABLES`] it holds those
/// in `tables` (the SQL to run names the ones it needs). When `tctx`'s
/// `conversations` are already a snapshot (the pinned materialized rows of
/// [`super::fast::use_materialized`]), `conv_all` reads them in place,
/// only the columns and files a query needs; otherwise they are computed
/// once and held in memory.
pub async fn snapshot(
    tctx: &SessionContext,
    tenant: &TenantId,
    settings: &TenantSettings,
    span: &Window,
    tables: &[&str],
    conversations_pinned: bool,
) -> Result<SessionContext> {
    let kctx =
        SessionContext::new_with_config(SessionConfig::new().with_default_catalog_and_schema("cxlake", "public"));
    let in_span = |source: &str| {
        in_window(
            format!("SELECT * FROM {source} WHERE started_at >= $1 AND started_at < $2"),
            span,
        )
    };
    if conversations_pinned {
        kctx.register_table("conv_pinned", tctx.table_provider("conversations").await?)?;
        kctx.register_table("conv_all", in_span("conv_pinned").plan(&kctx).await?.into_view())?;
    } else {
        kctx.register_table(
            "conv_all",
            Arc::new(collect_table(tctx, &in_span("conversations")).await?),
        )?;
    }
    // The tenant session needs the conversation ids; hand them over.
    tctx.register_table("snapshot_conversations", kctx.table_provider("conv_all").await?)?;
    let ids = "SELECT conversation_id FROM snapshot_conversations";
    let all = [
        (
            "messages",
            format!("SELECT * FROM messages WHERE conversation_id IN ({ids})"),
        ),
        (
            "script_uses",
            format!("SELECT * FROM script_uses WHERE conversation_id IN ({ids})"),
        ),
        (
            "orders",
            format!(
                "SELECT * FROM orders WHERE attributed_conversation_id IN ({ids}) \
                 OR (placed_at >= $1 AND placed_at < $2)"
            ),
        ),
        (
            "agent_sessions",
            "SELECT * FROM agent_sessions WHERE started_at < $2".to_string(),
        ),
        (
            "events",
            format!("SELECT * FROM events WHERE type = 'cost.incurred' AND occurred_at >= $1 AND occurred_at < $2"),
        ),
    ];
    for (name, sql) in all {
        if tables.contains(&name) {
            kctx.register_table(name, Arc::new(collect_table(tctx, &in_window(sql, span)).await?))?;
        }
    }
    kctx.register_table("team_hourly_rates", Arc::new(rates_table(tenant, settings)?))?;
    kctx.register_table("tenant_settings", Arc::new(settings_table(settings)?))?;
    warehouse::views::register_functions(&kctx);
    kctx.sql("CREATE VIEW conversations AS SELECT * FROM conv_all").await?;
    Ok(kctx)
}

/// One condition on conversations: the dimension has one of `values`, or
/// with `None` it is empty (no tag, no variant, no channel account ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub dimension: Dimension,
    pub values: Option<Vec<String>>,
}

impl Constraint {
    /// The dimension filters of a request's parameters (`channel=a,b`,
    /// `tag=`, ...), in the order of [`Dimension::ALL`].
    pub fn of_params(q: &std::collections::BTreeMap<String, String>) -> Result<Vec<Constraint>, params::ParamError> {
        let mut filters = Vec::new();
        for d in Dimension::ALL {
            if let Some(s) = q.get(d.name()) {
                filters.push(Constraint {
                    dimension: d,
                    values: Some(params::parse_filter(d, s)?),
                });
            }
        }
        Ok(filters)
    }
}

/// Replaces the snapshot's `conversations` view with `conv_all` restricted
/// to `constraints`.
pub async fn restrict_conversations(kctx: &SessionContext, constraints: &[Constraint]) -> Result<()> {
    let predicate = constraints_predicate(kctx, constraints, "conv_all")?;
    kctx.sql(&format!(
        "CREATE OR REPLACE VIEW conversations AS SELECT * FROM conv_all WHERE {predicate}"
    ))
    .await?;
    Ok(())
}

/// The SQL condition that keeps the rows of `source` (a table or view with
/// the columns of `conversations`) meeting `constraints`. The values are
/// registered in `kctx` as one-column tables `flt_<i>`, so none is spliced
/// into the text.
pub fn constraints_predicate(kctx: &SessionContext, constraints: &[Constraint], source: &str) -> Result<String> {
    let mut predicates = vec!["true".to_string()];
    for (i, c) in constraints.iter().enumerate() {
        let col = c.dimension.column();
        let predicate = match &c.values {
            None if c.dimension.is_list() => format!("({col} IS NULL OR cardinality({col}) = 0)"),
            None => format!("{col} IS NULL"),
            Some(values) => {
                let table = format!("flt_{i}");
                let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, false)]));
                let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values.clone()))])?;
                kctx.deregister_table(&table)?;
                kctx.register_table(&table, Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))?;
                if c.dimension.is_list() {
                    format!(
                        "conversation_id IN (SELECT conversation_id FROM \
                         (SELECT conversation_id, unnest({col}) AS item FROM {source}) \
                         WHERE item IN (SELECT v FROM {table}))"
                    )
                } else {
                    format!("{col} IN (SELECT v FROM {table})")
                }
            }
        };
        predicates.push(predicate);
    }
    Ok(predicates.join(" AND "))
}

/// One row of the overview: `kpi, measure, segment, value, n`.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow {
    pub kpi: String,
    pub measure: String,
    pub segment: String,
    pub value: Option<f64>,
    pub n: i64,
}

#[cfg(test)]
fn string_column(batch: &RecordBatch, i: usize) -> Result<Arc<dyn Array>> {
    Ok(arrow::compute::cast(batch.column(i), &DataType::Utf8)?)
}

/// Runs `sql/kpis/overview.sql` over `window` for the conversations that
/// meet `constraints`: the definition the served figures (the rollups of
/// [`super::fast`]) are tested against.
#[cfg(test)]
pub async fn run_overview(kctx: &SessionContext, window: &Window, constraints: &[Constraint]) -> Result<Vec<KpiRow>> {
    restrict_conversations(kctx, constraints).await?;
    let batches = in_window(KPI_OVERVIEW_SQL.to_string(), window)
        .plan(kctx)
        .await?
        .collect()
        .await?;
    let mut rows = Vec::new();
    for batch in &batches {
        if batch.num_columns() < 5 {
            return Err(DataFusionError::Internal(
                "sql/kpis/overview.sql must return kpi, measure, segment, value, n".into(),
            ));
        }
        let (kpi, measure, segment) = (
            string_column(batch, 0)?,
            string_column(batch, 1)?,
            string_column(batch, 2)?,
        );
        let value = arrow::compute::cast(batch.column(3), &DataType::Float64)?;
        let n = arrow::compute::cast(batch.column(4), &DataType::Int64)?;
        let (kpi, measure, segment) = (
            kpi.as_string::<i32>(),
            measure.as_string::<i32>(),
            segment.as_string::<i32>(),
        );
        let value = value.as_primitive::<arrow::datatypes::Float64Type>();
        let n = n.as_primitive::<arrow::datatypes::Int64Type>();
        for r in 0..batch.num_rows() {
            rows.push(KpiRow {
                kpi: kpi.value(r).to_string(),
                measure: measure.value(r).to_string(),
                segment: segment.value(r).to_string(),
                value: value.is_valid(r).then(|| value.value(r)).filter(|v| v.is_finite()),
                n: if n.is_valid(r) { n.value(r) } else { 0 },
            });
        }
    }
    Ok(rows)
}

/// The values `dimension` takes among the snapshot's conversations started
/// in `window` (restricted by `constraints`), and whether some have none.
/// (The SQL reference the fast path is tested against.)
#[cfg(test)]
pub async fn dimension_values(
    kctx: &SessionContext,
    window: &Window,
    constraints: &[Constraint],
    dimension: Dimension,
) -> Result<(Vec<String>, bool)> {
    restrict_conversations(kctx, constraints).await?;
    let col = dimension.column();
    let in_window_sql = "started_at >= $1 AND started_at < $2";
    let (values_sql, none_sql) = if dimension.is_list() {
        (
            format!(
                "SELECT DISTINCT v FROM (SELECT unnest({col}) AS v FROM conversations WHERE {in_window_sql}) \
                 WHERE v IS NOT NULL ORDER BY v"
            ),
            format!(
                "SELECT count(*) FROM conversations WHERE {in_window_sql} AND ({col} IS NULL OR cardinality({col}) = 0)"
            ),
        )
    } else {
        (
            format!(
                "SELECT DISTINCT {col} AS v FROM conversations WHERE {in_window_sql} AND {col} IS NOT NULL ORDER BY v"
            ),
            format!("SELECT count(*) FROM conversations WHERE {in_window_sql} AND {col} IS NULL"),
        )
    };
    let mut values = Vec::new();
    for batch in in_window(values_sql, window).plan(kctx).await?.collect().await? {
        let col = string_column(&batch, 0)?;
        let col = col.as_string::<i32>();
        values.extend(
            (0..batch.num_rows())
                .filter(|&r| col.is_valid(r))
                .map(|r| col.value(r).to_string()),
        );
    }
    let mut has_none = false;
    for batch in in_window(none_sql, window).plan(kctx).await?.collect().await? {
        let n = arrow::compute::cast(batch.column(0), &DataType::Int64)?;
        let n = n.as_primitive::<arrow::datatypes::Int64Type>();
        has_none |= (0..batch.num_rows()).any(|r| n.is_valid(r) && n.value(r) > 0);
    }
    Ok((values, has_none))
}

/// The KPI rows about time, not about conversations: orders placed,
/// agent time online and costs incurred, which no dimension value can be
/// credited with, so they are left out where a dimension filters or groups.
pub fn is_time_based(row: &KpiRow) -> bool {
    matches!(
        row.kpi.as_str(),
        "repurchase_rate" | "labor_cost" | "cost_per_conversation"
    ) || (row.kpi == "conversations_per_agent" && row.measure == "per_online_hour")
}
