//! The optimization analyses: what managers act on, each a
//! documented query in `sql/analyses/` (pinned by `sql/tests/analyses_*.slt`)
//! served under `/v1/analyses/`.
//!
//! | endpoint | query | answers |
//! |---|---|---|
//! | `GET /v1/analyses/scripts` | `scripts.sql` | CSAT (mean with a t interval, top-2-box with a Wilson interval) and resolution rate (Wilson) per quick reply and per template, best first, small groups flagged |
//! | `GET /v1/analyses/bottlenecks` | `bottlenecks_tags.sql`, `bottlenecks_pairs.sql` (counted from the KPI rollup, see below) | tags by volume, handling time (mean, median, p90) and CSAT; tag co-occurrence with support, confidence and lift |
//! | `GET /v1/analyses/traffic` | `traffic.sql` | weekday × hour heatmap (tenant time zone) of conversations and waiting time |
//! | `GET /v1/analyses/channels` | `channels.sql` | conversion, CSAT, FRT, direct cost per conversation per channel next to the tenant's overall, with p-values |
//!
//! Parameters are those of `/v1/kpis` (see [`crate::kpi_routes`]), parsed by
//! the same functions: `from`, `to` (dates in the tenant's reporting time
//! zone or RFC 3339 instants), `tenant` for platform-wide keys, a filter per
//! glossary dimension (`channel=whatsapp,line`, `tag=complaint`, ...) and
//! `format=json|csv`; plus `min_count` for `scripts` (CSAT scores below
//! which a group is flagged `small_sample`, default 30) and `bottlenecks`
//! (conversations a tag pair needs to be listed, default 5). Anything else
//! is a 400 problem naming the parameter. Readers are the roles of
//! `/v1/kpis`: admin, supervisor, analyst; `operations` also reads
//! `scripts` and `bottlenecks` (quick replies and tags are its domain). A
//! supervisor key's team is forced onto the filters ([`crate::scope`]), so
//! every figure, `channels`' "overall" included, is its team's.
//!
//! The SQL runs exactly as the KPIs do: in a session that holds only the
//! tenant's rows ([`lake::tenant_session`]), over an in-memory snapshot of
//! the window ([`lake::snapshot`]) whose `conversations` are restricted to
//! the filters ([`lake::restrict_conversations`], values passed as rows of
//! tables, never spliced into SQL). The window reaches the queries as
//! parameters `$1`, `$2` and `min_count` as `$3`; the only text put into a
//! query is the tenant's IANA time zone in `traffic`, validated at
//! `PUT /v1/settings` and checked again here. One exception: the tag
//! pairs of `bottlenecks`. Their self-join of every tagged conversation is
//! the slowest query here, so they are counted in one pass over the KPI
//! rollup's facts (the rows the SQL reads) and the measures computed as
//! `bottlenecks_pairs.sql` does; the tests compare both on generated data.
//!
//! # Responses
//!
//! Every JSON answer has `window` (`from`, `to`, `time_zone`, `tenant`) and
//! `filters`, and then rows as flat objects whose keys are the columns of
//! the query (documented at the top of each `.sql` file) plus what this
//! module adds:
//! - `scripts`: `min_count`, `groups` (ordered by kind, then best first),
//!   with `csat_low`, `csat_high` (95 % t interval of the mean, NULL below
//!   two scores) added; `best` and `worst`: per kind, the key of the first
//!   and last group that has scores and is not `small_sample`.
//! - `bottlenecks`: `min_count`, `tags`, `pairs`.
//! - `traffic`: `cells`, all 7 × 24 of them (weekday 1 = Monday, local
//!   hour), empty ones with 0 conversations.
//! - `channels`: `alpha` (0.05), `overall` (the tenant rows) and `channels`
//!   (one row per channel and metric) with `overall_value`, `difference`
//!   (value − overall), `test` (`two_proportion_z` for `conversion_rate`,
//!   `welch_t` for `csat`, `frt_s` and `cost_per_conversation`), `p_value`
//!   and `significant` (p < alpha). The test compares the channel with the
//!   rest of the tenant (see `channels.sql`); it is left out (NULL) where a
//!   side has too few values (a rate needs 1, a mean 2). The FRT flag tests
//!   the mean; the median is shown beside it.
//!
//! With `format=csv` the same rows are CSV with a header line; an answer
//! with two tables (`bottlenecks`) gets a leading `section` column.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use experiments::stats::dist::t_quantile;
use experiments::stats::{ArmSummary, Comparison, two_proportion_z_test, welch_t_test};
use serde_json::{Map, Value, json};

use crate::keys::Principal;
use crate::kpi_routes::lake::{self, Constraint};
use crate::kpi_routes::params::{self, Dimension, ParamError, Window};
use crate::kpi_routes::{
    KpiFormat, csv_field, internal, load_settings, param_problem, query_map, require_reader, window_json, windows,
};
use crate::problem::Problem;
use crate::server::AppState;
use crate::tenant::resolve_tenant;

/// Significance level of the channel comparisons.
pub const ALPHA: f64 = 0.05;

/// Largest accepted `min_count`.
const MAX_MIN_COUNT: i64 = 1_000_000;

/// The text in `sql/analyses/traffic.sql` that names the time zone.
const TRAFFIC_TIME_ZONE_SQL: &str = "AT TIME ZONE 'UTC'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/analyses/scripts", get(get_scripts))
        .route("/v1/analyses/bottlenecks", get(get_bottlenecks))
        .route("/v1/analyses/traffic", get(get_traffic))
        .route("/v1/analyses/channels", get(get_channels))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Analysis {
    Scripts,
    Bottlenecks,
    Traffic,
    Channels,
}

impl Analysis {
    /// What its SQL reads besides `conversations` (see [`lake::snapshot`]).
    fn tables(self) -> &'static [&'static str] {
        match self {
            Analysis::Scripts => &["script_uses"],
            Analysis::Channels => &["events"],
            Analysis::Bottlenecks | Analysis::Traffic => &[],
        }
    }

    /// The default `min_count`, for the analyses that take one.
    fn default_min_count(self) -> Option<i64> {
        match self {
            Analysis::Scripts => Some(30),
            Analysis::Bottlenecks => Some(5),
            Analysis::Traffic | Analysis::Channels => None,
        }
    }
}

/// A validated request.
#[derive(Debug)]
struct Request {
    format: KpiFormat,
    window: Window,
    min_count: Option<i64>,
    /// `window` and `filters` of the JSON answer.
    head: Map<String, Value>,
    tenant: crate::tenant::TenantId,
    settings: crate::settings::TenantSettings,
    /// The dimension filters, the key's scope applied.
    filters: Vec<Constraint>,
}

/// A validated request with the session its SQL runs in.
struct Prepared {
    req: Request,
    ctx: SessionContext,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("req", &self.req).finish()
    }
}

fn parse_min_count(s: &str) -> Result<i64, Problem> {
    match s.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_MIN_COUNT).contains(&n) => Ok(n),
        _ => Err(param_problem(ParamError::new(
            "min_count",
            format!("{s:?} is not a whole number from 1 to {MAX_MIN_COUNT}"),
        ))),
    }
}

/// Checks the parameters (in the order `/v1/kpis` does) and builds the
/// tenant's snapshot of the window with the filters applied.
async fn prepare(
    analysis: Analysis,
    state: &AppState,
    principal: &Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Prepared, Problem> {
    let req = request(analysis, state, principal, query).await?;
    let ctx = session(analysis, state, &req).await?;
    Ok(Prepared { req, ctx })
}

/// Checks the parameters (in the order `/v1/kpis` does).
async fn request(
    analysis: Analysis,
    state: &AppState,
    principal: &Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Request, Problem> {
    // DESIGN.md: operations owns tags and quick replies; these two are
    // aggregates over them (no conversation content, no customer ids).
    let operations_view = principal.role == crate::keys::Role::Operations
        && matches!(analysis, Analysis::Scripts | Analysis::Bottlenecks);
    if !operations_view {
        require_reader(principal, "reading analyses")?;
    }
    let mut accepted = vec!["from", "to", "tenant", "format"];
    if analysis.default_min_count().is_some() {
        accepted.push("min_count");
    }
    accepted.extend(Dimension::ALL.iter().map(|d| d.name()));
    let q = query_map(query, &accepted)?;
    let tenant = resolve_tenant(principal, q.get("tenant").map(String::as_str))?;
    let format = KpiFormat::parse(q.get("format").map(String::as_str))?;
    let min_count = match (analysis.default_min_count(), q.get("min_count")) {
        (Some(_), Some(s)) => Some(parse_min_count(s)?),
        (default, _) => default,
    };
    let mut filters: Vec<Constraint> = Vec::new();
    for d in Dimension::ALL {
        if let Some(s) = q.get(d.name()) {
            filters.push(Constraint {
                dimension: d,
                values: Some(params::parse_filter(d, s).map_err(param_problem)?),
            });
        }
    }
    let filters = crate::scope::scoped_filters(principal, filters)?;
    let settings = load_settings(state, &tenant).await?;
    let window = windows(&q, &settings)?.current;
    let mut window_head = window_json(&window);
    window_head["time_zone"] = json!(settings.time_zone);
    window_head["tenant"] = json!(tenant.as_str());
    let filters_json: Map<String, Value> = filters
        .iter()
        .map(|c| (c.dimension.name().to_string(), json!(c.values)))
        .collect();
    let mut head = Map::new();
    head.insert("window".into(), window_head);
    head.insert("filters".into(), Value::Object(filters_json));
    if let Some(n) = min_count {
        head.insert("min_count".into(), json!(n));
    }
    Ok(Request {
        format,
        window,
        min_count,
        head,
        tenant,
        settings,
        filters,
    })
}

/// The tenant's snapshot of the request's window, the filters applied.
async fn session(analysis: Analysis, state: &AppState, req: &Request) -> Result<SessionContext, Problem> {
    let (tenant, settings, window) = (&req.tenant, &req.settings, &req.window);
    // Conversations come materialized; what else the analysis reads is
    // computed from the events since the window's start (the conversations
    // it counts started there, so all their events are in).
    let range = warehouse::rollups::EventRange {
        since_us: Some(window.from.timestamp_micros()),
        ..Default::default()
    };
    // Only `events` and the materialized tables: the analyses read no other
    // view, and planning them all would take longer than the query.
    let tctx = lake::tenant_events_session(&state.warehouse, tenant, range, None)
        .await
        .map_err(internal)?;
    let pinned = crate::kpi_routes::fast::use_materialized(
        &tctx,
        &state.warehouse,
        tenant,
        settings,
        crate::kpi_routes::fast::Rows::Pinned,
    )
    .await
    .map_err(internal)?;
    if !pinned {
        lake::register_tenant_views(&tctx, tenant, settings)
            .await
            .map_err(internal)?;
    }
    let ctx = lake::snapshot(&tctx, tenant, settings, window, analysis.tables(), pinned)
        .await
        .map_err(internal)?;
    lake::restrict_conversations(&ctx, &req.filters)
        .await
        .map_err(internal)?;
    Ok(ctx)
}

/// A query result as columns and rows of JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Table {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Vec<Value>>,
}

impl Table {
    /// From the `{"columns": [{"name"}], "rows": [[...]]}` of
    /// [`warehouse::format::to_json`].
    fn from_result_json(v: &Value) -> Table {
        let columns = v["columns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let rows = v["rows"]
            .as_array()
            .map(|rows| rows.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect())
            .unwrap_or_default();
        Table { columns, rows }
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The value of `column` in `row` (NULL when there is no such column).
    pub(crate) fn cell<'a>(&self, row: &'a [Value], column: &str) -> &'a Value {
        static NULL: Value = Value::Null;
        self.index(column).and_then(|i| row.get(i)).unwrap_or(&NULL)
    }

    /// Adds a column right after `after` (at the end when there is none).
    fn insert_column(&mut self, after: &str, name: &str, values: Vec<Value>) {
        let at = self.index(after).map_or(self.columns.len(), |i| i + 1);
        self.columns.insert(at, name.to_string());
        for (row, v) in self.rows.iter_mut().zip(values) {
            row.insert(at.min(row.len()), v);
        }
    }

    fn push_column(&mut self, name: &str, values: Vec<Value>) {
        self.columns.push(name.to_string());
        for (row, v) in self.rows.iter_mut().zip(values) {
            row.push(v);
        }
    }

    fn object(&self, row: &[Value]) -> Value {
        Value::Object(
            self.columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect::<Map<String, Value>>(),
        )
    }

    fn objects(&self) -> Value {
        Value::Array(self.rows.iter().map(|r| self.object(r)).collect())
    }
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => csv_field(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => csv_field(&other.to_string()),
    }
}

/// RFC 4180 CSV of one table, or of several with a leading `section`
/// column and the union of their columns.
pub(crate) fn tables_csv(tables: &[(&str, &Table)]) -> String {
    let sectioned = tables.len() > 1;
    let mut columns: Vec<&str> = Vec::new();
    for (_, t) in tables {
        for c in &t.columns {
            if !columns.contains(&c.as_str()) {
                columns.push(c);
            }
        }
    }
    let mut header: Vec<String> = Vec::new();
    if sectioned {
        header.push("section".into());
    }
    header.extend(columns.iter().map(|c| csv_field(c)));
    let mut out = header.join(",");
    out.push('\n');
    for (name, t) in tables {
        for row in &t.rows {
            let mut line: Vec<String> = Vec::new();
            if sectioned {
                line.push(csv_field(name));
            }
            line.extend(columns.iter().map(|c| csv_value(t.cell(row, c))));
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    out
}

fn csv_response(body: String) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    resp
}

/// Runs one analysis query over the prepared snapshot.
async fn run(p: &Prepared, sql: &str, with_min_count: bool) -> Result<Table, Problem> {
    let min_count = with_min_count.then_some(p.req.min_count).flatten();
    run_sql(&p.ctx, sql, &p.req.window, min_count).await
}

/// Runs an analysis query with the window as `$1`, `$2` and `min_count`
/// (if any) as `$3`.
pub(crate) async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    window: &Window,
    min_count: Option<i64>,
) -> Result<Table, Problem> {
    let ts = |t: chrono::DateTime<chrono::Utc>| {
        ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
    };
    let mut values = vec![ts(window.from), ts(window.to)];
    if let Some(n) = min_count {
        values.push(ScalarValue::Int64(Some(n)));
    }
    let df = ctx
        .sql(sql)
        .await
        .map_err(internal)?
        .with_param_values(values)
        .map_err(internal)?;
    let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(internal)?;
    let v = warehouse::format::to_json(&schema, &batches).map_err(internal)?;
    Ok(Table::from_result_json(&v))
}

fn analysis_sql(name: &str) -> Result<&'static str, Problem> {
    warehouse::views::analysis_sql(name)
        .ok_or_else(|| Problem::internal(format!("sql/analyses/{name}.sql is not embedded")))
}

type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

// ------------------------------------------------------------- scripts

/// The 95 % t interval of a mean from `n` values with sample sd `sd`;
/// `None` below two values.
pub(crate) fn t_interval(n: i64, mean: f64, sd: f64) -> Option<(f64, f64)> {
    if n < 2 || !mean.is_finite() || !sd.is_finite() {
        return None;
    }
    let half = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
    half.is_finite().then_some((mean - half, mean + half))
}

/// Adds `csat_low`, `csat_high` after `csat_sd`.
pub(crate) fn add_csat_intervals(t: &mut Table) {
    let intervals: Vec<Option<(f64, f64)>> = t
        .rows
        .iter()
        .map(|r| {
            let n = t.cell(r, "csat_n").as_i64().unwrap_or(0);
            let mean = t.cell(r, "csat_mean").as_f64();
            // One score has no spread: sd NULL, and no interval either.
            let sd = t.cell(r, "csat_sd").as_f64();
            mean.zip(sd).and_then(|(m, s)| t_interval(n, m, s))
        })
        .collect();
    let lows = intervals
        .iter()
        .map(|i| i.map_or(Value::Null, |(l, _)| json!(l)))
        .collect();
    let highs = intervals
        .iter()
        .map(|i| i.map_or(Value::Null, |(_, h)| json!(h)))
        .collect();
    t.insert_column("csat_sd", "csat_high", highs);
    t.insert_column("csat_sd", "csat_low", lows);
}

/// Per kind, the key of the first and the last group (the rows are best
/// first) that has scores and is not flagged small.
pub(crate) fn best_and_worst(t: &Table) -> (Map<String, Value>, Map<String, Value>) {
    let mut best = Map::new();
    let mut worst = Map::new();
    for kind in ["quick_reply", "template"] {
        let eligible: Vec<&Vec<Value>> = t
            .rows
            .iter()
            .filter(|r| t.cell(r, "kind") == kind)
            .filter(|r| !t.cell(r, "csat_mean").is_null() && t.cell(r, "small_sample") == &Value::Bool(false))
            .collect();
        best.insert(
            kind.into(),
            eligible.first().map_or(Value::Null, |r| t.cell(r, "key").clone()),
        );
        worst.insert(
            kind.into(),
            eligible.last().map_or(Value::Null, |r| t.cell(r, "key").clone()),
        );
    }
    (best, worst)
}

pub(crate) async fn get_scripts(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Scripts, &state, &principal, query).await?;
    let mut groups = run(&p, analysis_sql("scripts")?, true).await?;
    add_csat_intervals(&mut groups);
    if p.req.format == KpiFormat::Csv {
        return Ok(csv_response(tables_csv(&[("groups", &groups)])));
    }
    let (best, worst) = best_and_worst(&groups);
    let mut body = p.req.head.clone();
    body.insert("groups".into(), groups.objects());
    body.insert("best".into(), Value::Object(best));
    body.insert("worst".into(), Value::Object(worst));
    Ok(axum::Json(Value::Object(body)).into_response())
}

// --------------------------------------------------------- bottlenecks

pub(crate) async fn get_bottlenecks(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Bottlenecks, &state, &principal, query).await?;
    let tags = run(&p, analysis_sql("bottlenecks_tags")?, false).await?;
    let pairs = pairs_of(&state, &p.req).await?;
    if p.req.format == KpiFormat::Csv {
        return Ok(csv_response(tables_csv(&[("tags", &tags), ("pairs", &pairs)])));
    }
    let mut body = p.req.head.clone();
    body.insert("tags".into(), tags.objects());
    body.insert("pairs".into(), pairs.objects());
    Ok(axum::Json(Value::Object(body)).into_response())
}

/// The `pairs` of `GET /v1/analyses/bottlenecks` alone (the `/tags` page
/// has its tags from `/v1/kpis`): the same checks, the same rows.
pub(crate) async fn bottleneck_pairs(
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<Table, Problem> {
    let req = request(Analysis::Bottlenecks, state, principal, query).await?;
    pairs_of(state, &req).await
}

/// The rows of `bottlenecks_pairs.sql` for the request, counted in one
/// pass over the KPI rollup's facts (what the SQL would read from the
/// snapshot; `kpi_routes/fast/tests.rs` compares both).
async fn pairs_of(state: &AppState, req: &Request) -> Result<Table, Problem> {
    let rollup = crate::kpi_routes::fast::rollup(&state.ingestor, &state.warehouse, &req.tenant, &req.settings)
        .await
        .map_err(internal)?;
    let counts = crate::kpi_routes::fast::tag_counts(&rollup, &req.window, &req.filters);
    Ok(pairs_table(&counts, req.min_count.unwrap_or(1)))
}

/// `bottlenecks_pairs.sql`'s rows from its counts: the same columns, the
/// measures computed as the query does (in `DOUBLE`), the same order.
pub(crate) fn pairs_table(c: &warehouse::rollups::TagCounts, min_count: i64) -> Table {
    struct Row<'a> {
        tag: &'a str,
        other: &'a str,
        n: u64,
        lhs: u64,
        rhs: u64,
        support: f64,
        confidence: f64,
        lift: f64,
    }
    let tagged = c.tagged as f64;
    let mut rows: Vec<Row> = c
        .pairs
        .iter()
        .filter(|(_, n)| i64::try_from(**n).unwrap_or(i64::MAX) >= min_count)
        .map(|((tag, other), &n)| {
            let lhs = c.tags.get(tag).copied().unwrap_or(0);
            let rhs = c.tags.get(other).copied().unwrap_or(0);
            let (pair_d, lhs_d, rhs_d) = (n as f64, lhs as f64, rhs as f64);
            Row {
                tag,
                other,
                n,
                lhs,
                rhs,
                support: pair_d / tagged,
                confidence: pair_d / lhs_d,
                lift: pair_d * tagged / (lhs_d * rhs_d),
            }
        })
        .collect();
    // ORDER BY lift DESC, conversations DESC, confidence DESC, tag, other_tag
    rows.sort_by(|a, b| {
        b.lift
            .total_cmp(&a.lift)
            .then(b.n.cmp(&a.n))
            .then(b.confidence.total_cmp(&a.confidence))
            .then_with(|| a.tag.cmp(b.tag))
            .then_with(|| a.other.cmp(b.other))
    });
    Table {
        columns: [
            "tag",
            "other_tag",
            "conversations",
            "support",
            "confidence",
            "lift",
            "tag_conversations",
            "other_tag_conversations",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .into_iter()
            .map(|r| {
                vec![
                    json!(r.tag),
                    json!(r.other),
                    json!(r.n),
                    json!(r.support),
                    json!(r.confidence),
                    json!(r.lift),
                    json!(r.lhs),
                    json!(r.rhs),
                ]
            })
            .collect(),
    }
}

// ------------------------------------------------------------- traffic

/// `traffic.sql` with the tenant's IANA zone in place of its UTC.
pub(crate) fn traffic_sql(sql: &str, time_zone: &str) -> Result<String, Problem> {
    if sql.matches(TRAFFIC_TIME_ZONE_SQL).count() != 1 {
        return Err(Problem::internal(format!(
            "sql/analyses/traffic.sql no longer names its time zone as exactly one {TRAFFIC_TIME_ZONE_SQL}; \
             update api/src/analysis_routes.rs"
        )));
    }
    // Settings accept only IANA names; this keeps the literal a literal
    // even if a settings file was edited by hand.
    let plain = !time_zone.is_empty()
        && time_zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !plain {
        return Err(Problem::internal(format!(
            "the tenant's time zone {time_zone:?} is not an IANA name; fix it with PUT /v1/settings"
        )));
    }
    Ok(sql.replace(TRAFFIC_TIME_ZONE_SQL, &format!("AT TIME ZONE '{time_zone}'")))
}

/// All 7 × 24 cells, weekday-major; cells without a row have 0
/// conversations and no waiting time.
pub(crate) fn full_grid(t: &Table) -> Table {
    let mut out = Table {
        columns: t.columns.clone(),
        rows: Vec::with_capacity(7 * 24),
    };
    for weekday in 1..=7_i64 {
        for hour in 0..24_i64 {
            let found = t
                .rows
                .iter()
                .find(|r| t.cell(r, "weekday").as_i64() == Some(weekday) && t.cell(r, "hour").as_i64() == Some(hour));
            let row = match found {
                Some(r) => r.clone(),
                None => t
                    .columns
                    .iter()
                    .map(|c| match c.as_str() {
                        "weekday" => json!(weekday),
                        "hour" => json!(hour),
                        "conversations" | "wait_n" => json!(0),
                        _ => Value::Null,
                    })
                    .collect(),
            };
            out.rows.push(row);
        }
    }
    out
}

pub(crate) async fn get_traffic(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Traffic, &state, &principal, query).await?;
    let sql = traffic_sql(analysis_sql("traffic")?, &p.req.settings.time_zone)?;
    let cells = full_grid(&run(&p, &sql, false).await?);
    if p.req.format == KpiFormat::Csv {
        return Ok(csv_response(tables_csv(&[("cells", &cells)])));
    }
    let mut body = p.req.head.clone();
    body.insert("cells".into(), cells.objects());
    Ok(axum::Json(Value::Object(body)).into_response())
}

// ------------------------------------------------------------ channels

/// One metric row of `channels.sql`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MetricSummary {
    pub(crate) n: i64,
    pub(crate) successes: Option<i64>,
    pub(crate) value: Option<f64>,
    pub(crate) sd: Option<f64>,
}

impl MetricSummary {
    fn of(t: &Table, row: &[Value]) -> MetricSummary {
        MetricSummary {
            n: t.cell(row, "n").as_i64().unwrap_or(0),
            successes: t.cell(row, "successes").as_i64(),
            value: t.cell(row, "value").as_f64(),
            sd: t.cell(row, "sd").as_f64(),
        }
    }

    /// `(Σy, Σy²)` from n, mean and sample sd (no sd: one value, no spread).
    fn sums(&self) -> Option<(f64, f64)> {
        let n = self.n as f64;
        let mean = self.value?;
        let sd = self.sd.unwrap_or(0.0);
        Some((n * mean, (n - 1.0).max(0.0) * sd * sd + n * mean * mean))
    }
}

/// The channel against the rest of the tenant (tenant minus channel): a
/// two-proportion z-test for a rate (`successes` given), Welch's t-test for
/// a mean. `None` when a side is too small for the test.
pub(crate) fn compare_with_rest(channel: &MetricSummary, tenant: &MetricSummary) -> Option<Comparison> {
    let rest_n = tenant.n - channel.n;
    match (channel.successes, tenant.successes) {
        (Some(cs), Some(ts)) => {
            if channel.n < 1 || rest_n < 1 {
                return None;
            }
            let rest = ArmSummary::rate(u64::try_from(rest_n).ok()?, u64::try_from(ts - cs).ok()?);
            let treated = ArmSummary::rate(u64::try_from(channel.n).ok()?, u64::try_from(cs).ok()?);
            two_proportion_z_test(&rest, &treated, ALPHA).ok()
        }
        _ => {
            if channel.n < 2 || rest_n < 2 {
                return None;
            }
            let (c_sum, c_sq) = channel.sums()?;
            let (t_sum, t_sq) = tenant.sums()?;
            let rest = ArmSummary {
                n: u64::try_from(rest_n).ok()?,
                sum: t_sum - c_sum,
                sum_squares: Some((t_sq - c_sq).max(0.0)),
            };
            let treated = ArmSummary {
                n: u64::try_from(channel.n).ok()?,
                sum: c_sum,
                sum_squares: Some(c_sq),
            };
            welch_t_test(&rest, &treated, ALPHA).ok()
        }
    }
}

/// What pairs a channel row with its tenant row.
fn metric_key(t: &Table, row: &[Value]) -> (Value, Value) {
    (t.cell(row, "metric").clone(), t.cell(row, "currency").clone())
}

/// Adds `overall_value`, `difference`, `test`, `p_value`, `significant` to
/// the rows of `channels.sql` (NULL on the tenant rows).
pub(crate) fn add_comparisons(t: &mut Table) {
    let tenant_rows: Vec<(Value, Value, MetricSummary)> = t
        .rows
        .iter()
        .filter(|r| t.cell(r, "scope") == "tenant")
        .map(|r| {
            let (m, c) = metric_key(t, r);
            (m, c, MetricSummary::of(t, r))
        })
        .collect();
    let mut columns: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for row in &t.rows {
        let mut cells = [Value::Null, Value::Null, Value::Null, Value::Null, Value::Null];
        if t.cell(row, "scope") == "channel" {
            let (metric, currency) = metric_key(t, row);
            let channel = MetricSummary::of(t, row);
            if let Some((_, _, tenant)) = tenant_rows.iter().find(|(m, c, _)| *m == metric && *c == currency) {
                cells[0] = tenant.value.map_or(Value::Null, |v| json!(v));
                if let (Some(v), Some(o)) = (channel.value, tenant.value) {
                    cells[1] = json!(v - o);
                }
                cells[2] = json!(if channel.successes.is_some() {
                    "two_proportion_z"
                } else {
                    "welch_t"
                });
                if let Some(c) = compare_with_rest(&channel, tenant).filter(|c| c.p_value.is_finite()) {
                    cells[3] = json!(c.p_value);
                    cells[4] = json!(c.p_value < ALPHA);
                }
            }
        }
        for (name, v) in ["overall_value", "difference", "test", "p_value", "significant"]
            .into_iter()
            .zip(cells)
        {
            columns.entry(name).or_default().push(v);
        }
    }
    for name in ["overall_value", "difference", "test", "p_value", "significant"] {
        let values = columns.remove(name).unwrap_or_else(|| vec![Value::Null; t.rows.len()]);
        t.push_column(name, values);
    }
}

async fn get_channels(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Channels, &state, &principal, query).await?;
    let mut rows = run(&p, analysis_sql("channels")?, false).await?;
    add_comparisons(&mut rows);
    if p.req.format == KpiFormat::Csv {
        return Ok(csv_response(tables_csv(&[("channels", &rows)])));
    }
    let of_scope = |scope: &str| -> Value {
        Value::Array(
            rows.rows
                .iter()
                .filter(|r| rows.cell(r, "scope") == scope)
                .map(|r| rows.object(r))
                .collect(),
        )
    };
    let mut body = p.req.head.clone();
    body.insert("alpha".into(), json!(ALPHA));
    body.insert("overall".into(), of_scope("tenant"));
    body.insert("channels".into(), of_scope("channel"));
    Ok(axum::Json(Value::Object(body)).into_response())
}

#[cfg(test)]
mod tests;
