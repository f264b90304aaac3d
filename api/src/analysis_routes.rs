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
use serde_json::{Value, json};

use crate::kpi_routes::{KpiFormat, csv_field, query_map};
use crate::problem::Problem;
use crate::state::AppState;
use services::analyses::{ALPHA, Table, best_and_worst};
use services::keys::Principal;
use services::served::analyses::{self as served, Analysis, Prepared};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/analyses/scripts", get(get_scripts))
        .route("/v1/analyses/bottlenecks", get(get_bottlenecks))
        .route("/v1/analyses/traffic", get(get_traffic))
        .route("/v1/analyses/channels", get(get_channels))
}

type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The parameters of `analysis` by name, and the answer's format.
fn parameters(
    analysis: Analysis,
    query: QueryParams,
) -> Result<(std::collections::BTreeMap<String, String>, KpiFormat), Problem> {
    let q = query_map(query, &analysis.parameters())?;
    let format = KpiFormat::parse(q.get("format").map(String::as_str))?;
    Ok((q, format))
}

/// Checks the parameters and builds the tenant's snapshot of the window.
async fn prepare(
    analysis: Analysis,
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<(Prepared, KpiFormat), Problem> {
    let (q, format) = parameters(analysis, query)?;
    Ok((served::prepare(analysis, state, principal, &q).await?, format))
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

// ------------------------------------------------------------- scripts

/// The groups of `GET /v1/analyses/scripts` with `query`, for the pages.
pub(crate) async fn scripts_groups(
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<Table, Problem> {
    Ok(prepare(Analysis::Scripts, state, principal, query)
        .await?
        .0
        .scripts()
        .await?)
}

async fn get_scripts(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let (p, format) = prepare(Analysis::Scripts, &state, &principal, query).await?;
    let groups = p.scripts().await?;
    if format == KpiFormat::Csv {
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

async fn get_bottlenecks(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let (p, format) = prepare(Analysis::Bottlenecks, &state, &principal, query).await?;
    let tags = p.bottleneck_tags().await?;
    let pairs = served::pairs(&state, &p.req).await?;
    if format == KpiFormat::Csv {
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
    let (q, _) = parameters(Analysis::Bottlenecks, query)?;
    let req = served::request(Analysis::Bottlenecks, state, principal, &q).await?;
    Ok(served::pairs(state, &req).await?)
}

// ------------------------------------------------------------- traffic

/// The cells of `GET /v1/analyses/traffic` with `query`, for the pages.
pub(crate) async fn traffic_cells(
    state: &AppState,
    principal: &Principal,
    query: QueryParams,
) -> Result<Vec<services::analyses::TrafficCell>, Problem> {
    let (p, _) = prepare(Analysis::Traffic, state, principal, query).await?;
    Ok(services::analyses::traffic_cells(&p.traffic().await?))
}

async fn get_traffic(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: QueryParams,
) -> Result<Response, Problem> {
    let (p, format) = prepare(Analysis::Traffic, &state, &principal, query).await?;
    let cells = p.traffic().await?;
    if format == KpiFormat::Csv {
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
    let (p, format) = prepare(Analysis::Channels, &state, &principal, query).await?;
    let rows = p.channels().await?;
    if format == KpiFormat::Csv {
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
