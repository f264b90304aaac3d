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
//! supervisor key's team is forced onto the filters ([`services::scope`]), so
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

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::prelude::SessionContext;
use serde_json::{Map, Value, json};

use crate::kpi_routes::{
    KpiFormat, csv_field, internal, param_problem, query_map, require_reader, window_json, windows,
};
use crate::problem::Problem;
use crate::state::AppState;
use services::analyses::{
    ALPHA, Table, add_comparisons, add_csat_intervals, analysis_sql, best_and_worst, full_grid, pairs_table, run_sql,
    traffic_sql,
};
use services::keys::Principal;
use services::kpis::lake::{self, Constraint};
use services::kpis::params::{self, Dimension, ParamError, Window};
use services::tenant::resolve_tenant;

/// Largest accepted `min_count`.
const MAX_MIN_COUNT: i64 = 1_000_000;

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
    tenant: services::tenant::TenantId,
    settings: services::settings::TenantSettings,
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
    let operations_view = principal.role == services::keys::Role::Operations
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
    let filters = services::scope::scoped_filters(principal, filters)?;
    let settings = state.load_settings(&tenant).await?;
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
    let pinned = services::kpis::fast::use_materialized(
        &tctx,
        &state.warehouse,
        tenant,
        settings,
        services::kpis::fast::Rows::Pinned,
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
    Ok(run_sql(&p.ctx, sql, &p.req.window, min_count).await?)
}

type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

// ------------------------------------------------------------- scripts

/// The scripts table of a request, with the CSAT intervals.
async fn scripts_of(p: &Prepared) -> Result<Table, Problem> {
    let mut groups = run(p, analysis_sql("scripts")?, true).await?;
    add_csat_intervals(&mut groups);
    Ok(groups)
}

/// The groups of `GET /v1/analyses/scripts` with `query` and its table,
/// for the pages.
pub(crate) async fn scripts_groups(
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<Table, Problem> {
    let p = prepare(Analysis::Scripts, state, principal, query).await?;
    scripts_of(&p).await
}

pub(crate) async fn get_scripts(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Scripts, &state, &principal, query).await?;
    let groups = scripts_of(&p).await?;
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
/// snapshot; `services/src/kpis/fast/tests.rs` compares both).
async fn pairs_of(state: &AppState, req: &Request) -> Result<Table, Problem> {
    let rollup = services::kpis::fast::rollup(&state.warehouse, &req.tenant, &req.settings)
        .await
        .map_err(internal)?;
    let counts = services::kpis::fast::tag_counts(&rollup, &req.window, &req.filters);
    Ok(pairs_table(&counts, req.min_count.unwrap_or(1)))
}

// ------------------------------------------------------------- traffic

/// The traffic heatmap of a request: every cell of the grid.
async fn traffic_of(p: &Prepared) -> Result<Table, Problem> {
    let sql = traffic_sql(analysis_sql("traffic")?, &p.req.settings.time_zone)?;
    Ok(full_grid(&run(p, &sql, false).await?))
}

/// The cells of `GET /v1/analyses/traffic` with `query`, for the pages.
pub(crate) async fn traffic_cells(
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<Vec<services::analyses::TrafficCell>, Problem> {
    let p = prepare(Analysis::Traffic, state, principal, query).await?;
    Ok(services::analyses::traffic_cells(&traffic_of(&p).await?))
}

pub(crate) async fn get_traffic(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let p = prepare(Analysis::Traffic, &state, &principal, query).await?;
    let cells = traffic_of(&p).await?;
    if p.req.format == KpiFormat::Csv {
        return Ok(csv_response(tables_csv(&[("cells", &cells)])));
    }
    let mut body = p.req.head.clone();
    body.insert("cells".into(), cells.objects());
    Ok(axum::Json(Value::Object(body)).into_response())
}

// ------------------------------------------------------------ channels

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
