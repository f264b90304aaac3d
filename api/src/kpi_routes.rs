//! The KPI API: the glossary KPIs of `../shared/DESIGN.md` over a
//! window, with the previous period, grouping and filters
//! (`GET /v1/kpis`); the one-row-per-conversation export
//! (`GET /v1/conversations`); and tenant settings (`/v1/settings`, in
//! [`services::settings`]).
//!
//! # `GET /v1/kpis`
//!
//! | parameter | meaning |
//! |---|---|
//! | `from`, `to` | required; `from` inclusive, `to` exclusive; `YYYY-MM-DD` (local midnight in the tenant's reporting time zone) or an RFC 3339 instant |
//! | `tenant` | required for platform-wide keys; a tenant key may only name its own |
//! | `group_by` | dimensions (`channel channel_account queue team agent language region customer_tier tag variant`) and at most one bucket (`hour day week month`), comma-separated |
//! | `<dimension>=a,b` | keep conversations whose dimension is one of the values (a tag or variant among theirs for `tag`, `variant`; variants read `experiment_key=variant_key`) |
//! | `format` | `json` (default) or `csv` |
//!
//! The answer: `{"window": {...}, "filters": {...}, "kpis": {<key>: ...},
//! "previous": {...}, "data_as_of": {"seq": n}}` (every ingest batch
//! acknowledged with a `seq` up to `n` is counted) and with `group_by` also `"groups": [{"key": {...},
//! "window": {...}, "kpis": {...}, "previous": {...}}]`. Durations are
//! `{mean, median, p90, n}` in seconds (`response_s` also split `bot` and
//! `human`); rates `{value, n}`; money per currency (`aov`: `{value,
//! orders, net_amount, n}` each `{"EUR": ...}`; `labor_cost`,
//! `cost_per_conversation`: `{"value": {"EUR": ...}, "n"}`); `n` is the
//! number of conversations behind a value (customers for
//! `repurchase_rate`). `previous` is the preceding period of equal length
//! (the same number of local days when `from` and `to` are dates). Groups
//! carry `previous` only when `group_by` has no time bucket: a series of
//! buckets is its own comparison.
//!
//! Cohort rule: conversation KPIs count conversations *started* in the
//! window (or bucket). `repurchase_rate`, `labor_cost`,
//! `cost_per_conversation` and `conversations_per_agent.per_online_hour`
//! also use orders placed, agent time online and costs incurred in the
//! window; none of those belong to a channel, a team's conversation or a
//! tag, so under a dimension filter or a dimension group they are left out
//! (and `notes` says so) rather than shown against the wrong denominator.
//!
//! The maximum window is `CXLAKE_KPI_MAX_DAYS` days (default 400); a
//! request may ask for at most [`MAX_GROUPS`] groups.
//!
//! The numbers come from the tenant's materialized facts and hourly
//! rollups ([`fast`], [`warehouse::rollups`]), brought up to date with the
//! lake and the buffer at the start of each request; they equal what
//! `sql/kpis/overview.sql` over the views answers ([`lake::run_overview`],
//! still the definition, pinned against the fast path by
//! `services/src/kpis/fast/tests.rs`), except that windows of more than
//! [`warehouse::rollups::EXACT_BELOW`] conversations get medians and p90s
//! from mergeable sketches, within 1 % relative.
//!
//! # `GET /v1/conversations`
//!
//! `from`, `to`, `tenant` as above, `format=csv` (default; `tags` and
//! `experiment_variants` joined with `|`), `ndjson` or `parquet`: the rows
//! of the `conversations` view started in the window, ordered by
//! `started_at`, streamed batch by batch.
//!
//! # Scoped keys
//!
//! A supervisor key reads only its team's conversations and an agent key
//! (KPIs only) its own: [`services::scope`] forces `team=` / `agent=` onto the
//! filters of both endpoints, and a request that names another team or
//! agent gets 403. The forced filter shows in `filters` of the answer and,
//! like any filter, leaves out the time-based keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::stream_export::StreamFormat;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::problem::Problem;
use crate::state::AppState;
use services::keys::{Principal, Role};
use services::kpis::answer::{Answer, GroupResult, KpiRequest};
use services::kpis::lake::{Constraint, KpiRow};
use services::kpis::params::{Dimension, GroupBy, ParamError, Window, Windows, window_json};
use services::kpis::{fast, lake, params};
use services::settings::TenantSettings;
use services::tenant::{TenantId, resolve_tenant};

pub use services::kpis::answer::MAX_GROUPS;

pub use services::kpis::params::DEFAULT_MAX_DAYS;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/kpis", get(get_kpis))
        .route("/v1/conversations", get(get_conversations))
        .merge(crate::settings_routes::routes())
}

pub(crate) fn require_reader(p: &Principal, what: &str) -> Result<(), Problem> {
    Ok(services::keys::require_role(p, &services::kpis::READERS, what)?)
}

pub(crate) fn param_problem(e: ParamError) -> Problem {
    Problem::from(services::kpis::answer::param_error(e))
}

pub(crate) fn internal(e: impl std::fmt::Display + 'static) -> Problem {
    Problem::from(services::ServiceError::failed("KPI query failed", e))
}

/// The query string as name → value, refusing unknown and repeated names.
pub(crate) fn query_map(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    accepted: &[&str],
) -> Result<BTreeMap<String, String>, Problem> {
    let Query(pairs) = query.map_err(|e| Problem::bad_request("bad-query", e.body_text()))?;
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        if !accepted.contains(&k.as_str()) {
            return Err(param_problem(ParamError::new(
                &k,
                format!("unknown parameter; accepted are {}", accepted.join(", ")),
            )));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(param_problem(ParamError::new(
                &k,
                "given twice; give it once (several values: a,b)",
            )));
        }
    }
    Ok(map)
}

/// `from` and `to` of a request, resolved in the tenant's time zone.
pub(crate) fn windows(q: &BTreeMap<String, String>, settings: &TenantSettings) -> Result<Windows, Problem> {
    params::windows(q, settings).map_err(param_problem)
}

// ---------------------------------------------------------------- /v1/kpis

/// The answer format of the KPI and analysis endpoints (`format=`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum KpiFormat {
    Json,
    Csv,
}

impl KpiFormat {
    /// Parses `format=` (absent means JSON).
    pub(crate) fn parse(value: Option<&str>) -> Result<KpiFormat, Problem> {
        match value {
            None | Some("json") => Ok(KpiFormat::Json),
            Some("csv") => Ok(KpiFormat::Csv),
            Some(other) => Err(param_problem(ParamError::new(
                "format",
                format!("{other:?} is not a format; accepted are json (default) and csv"),
            ))),
        }
    }
}

const TIME_BASED_NOTE: &str = "repurchase_rate, labor_cost, cost_per_conversation and \
    conversations_per_agent.per_online_hour are left out where a dimension filters or groups: orders placed, \
    agent time online and costs incurred are not attributable to a dimension value";

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    obj(m.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new())))
}

fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// The long rows of the overview as the API's `kpis` object.
fn shape_kpis(rows: &[KpiRow]) -> Map<String, Value> {
    let mut out = Map::new();
    child(&mut out, "aov");
    for key in ["value", "orders", "net_amount", "n"] {
        child(child(&mut out, "aov"), key);
    }
    for r in rows {
        let kpi = r.kpi.as_str();
        let m = child(&mut out, kpi);
        if model::Kpi::parse(kpi).is_some_and(|k| k.measure() == model::Measure::Duration) {
            let target = if r.segment == "all" { m } else { child(m, &r.segment) };
            target.insert(r.measure.clone(), num(r.value));
            target.insert("n".into(), json!(r.n));
            continue;
        }
        match (kpi, r.measure.as_str()) {
            ("csat", "mean") => {
                m.insert("mean".into(), num(r.value));
                m.insert("n".into(), json!(r.n));
            }
            ("csat", "response_rate") => {
                m.insert("response_rate".into(), json!({ "value": num(r.value), "n": r.n }));
            }
            ("csat", "share") => {
                child(m, "distribution").insert(r.segment.clone(), json!({ "share": num(r.value), "n": r.n }));
            }
            ("aov", measure) => {
                child(m, measure).insert(r.segment.clone(), num(r.value));
                child(m, "n").insert(r.segment.clone(), json!(r.n));
            }
            ("labor_cost" | "cost_per_conversation", "value") => {
                child(m, "value").insert(r.segment.clone(), num(r.value));
                m.insert("n".into(), json!(r.n));
            }
            (_, "value") => {
                m.insert("value".into(), num(r.value));
                m.insert("n".into(), json!(r.n));
            }
            (_, measure) => {
                m.insert(measure.to_string(), num(r.value));
                m.entry("n").or_insert(json!(r.n));
            }
        }
    }
    for key in ["labor_cost", "cost_per_conversation"] {
        if let Some(Value::Object(m)) = out.get_mut(key) {
            m.entry("value").or_insert_with(|| json!({}));
        }
    }
    out
}

pub(crate) async fn get_kpis(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    kpis(&state, &principal, query, Answer::Whole).await
}

/// Parses and checks the parameters of `GET /v1/kpis` for `principal`:
/// the request (with the key's scope forced onto the filters) and the
/// answer's format.
pub(crate) async fn kpi_request(
    state: &AppState,
    principal: &Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(KpiRequest, KpiFormat), Problem> {
    // Agents read KPIs too: their own conversations' (see `services::scope`).
    if principal.role != Role::Agent {
        require_reader(principal, "reading KPIs")?;
    }
    let mut accepted = vec!["from", "to", "tenant", "group_by", "format"];
    accepted.extend(Dimension::ALL.iter().map(|d| d.name()));
    let q = query_map(query, &accepted)?;
    let tenant = resolve_tenant(principal, q.get("tenant").map(String::as_str))?;
    let format = KpiFormat::parse(q.get("format").map(String::as_str))?;
    let group_by = match q.get("group_by") {
        Some(s) => params::parse_group_by(s).map_err(param_problem)?,
        None => GroupBy::default(),
    };
    let filters = Constraint::of_params(&q).map_err(param_problem)?;
    let filters = services::scope::scoped_filters(principal, filters)?;
    let settings = state.load_settings(&tenant).await?;
    let windows = windows(&q, &settings)?;
    let request = KpiRequest {
        tenant,
        settings,
        windows,
        filters,
        group_by,
    };
    Ok((request, format))
}

/// The answer of `GET /v1/kpis`, whole or only what `answer` says.
pub(crate) async fn kpis(
    state: &Arc<AppState>,
    principal: &Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    answer: Answer,
) -> Result<Response, Problem> {
    let (req, format) = kpi_request(state, principal, query).await?;
    let a = services::kpis::answer::answer(&state.warehouse, &req, answer).await?;
    let (windows, group_by) = (&req.windows, &req.group_by);
    match format {
        KpiFormat::Csv => {
            let csv = kpis_csv(group_by, windows, &a.current, &a.previous, &a.groups);
            let mut resp = csv.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            Ok(resp)
        }
        KpiFormat::Json => {
            let mut window = window_json(&windows.current);
            window["previous"] = window_json(&windows.previous);
            window["time_zone"] = json!(req.settings.time_zone);
            window["tenant"] = json!(req.tenant.as_str());
            let filters_json: Map<String, Value> = req
                .filters
                .iter()
                .map(|c| (c.dimension.name().to_string(), json!(c.values)))
                .collect();
            let mut body = json!({
                "window": window,
                "filters": filters_json,
                "kpis": shape_kpis(&a.current),
                "previous": shape_kpis(&a.previous),
                "data_as_of": {"seq": a.as_of_seq},
            });
            if a.dimension_scoped {
                body["notes"] = json!([TIME_BASED_NOTE]);
            }
            if !group_by.is_empty() {
                let mut names: Vec<&str> = group_by.dimensions.iter().map(|d| d.name()).collect();
                names.extend(group_by.bucket.map(|b| b.name()));
                body["group_by"] = json!(names);
                body["groups"] = a
                    .groups
                    .iter()
                    .map(|g| {
                        let key: Map<String, Value> = g.key.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                        let mut o = json!({
                            "key": key,
                            "window": window_json(&g.window),
                            "kpis": shape_kpis(&g.current),
                        });
                        if let Some((w, rows)) = &g.previous {
                            o["previous"] = Value::Object(shape_kpis(rows));
                            o["window"]["previous"] = window_json(w);
                        }
                        o
                    })
                    .collect();
            }
            Ok(axum::Json(body).into_response())
        }
    }
}

/// RFC 4180 field: quoted when it holds a comma, quote or line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Long format, one line per (period, group, kpi, measure, segment):
/// `period,from,to,<group columns>,kpi,measure,segment,value,n`. The
/// overall rows have empty group columns.
fn kpis_csv(
    group_by: &GroupBy,
    windows: &Windows,
    current: &[KpiRow],
    previous: &[KpiRow],
    groups: &[GroupResult],
) -> String {
    let mut group_cols: Vec<&str> = group_by.dimensions.iter().map(|d| d.name()).collect();
    group_cols.extend(group_by.bucket.map(|b| b.name()));
    let mut out = String::from("period,from,to,");
    for c in &group_cols {
        out.push_str(c);
        out.push(',');
    }
    out.push_str("kpi,measure,segment,value,n\n");
    let mut emit = |period: &str, w: &Window, key: &[(String, Option<String>)], rows: &[KpiRow]| {
        for r in rows {
            out.push_str(&format!(
                "{period},{},{},",
                params::rfc3339(w.from),
                params::rfc3339(w.to)
            ));
            for c in &group_cols {
                let v = key.iter().find(|(k, _)| k == c).and_then(|(_, v)| v.as_deref());
                out.push_str(&csv_field(v.unwrap_or("")));
                out.push(',');
            }
            let value = r.value.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&r.kpi),
                csv_field(&r.measure),
                csv_field(&r.segment),
                value,
                r.n
            ));
        }
    };
    emit("current", &windows.current, &[], current);
    emit("previous", &windows.previous, &[], previous);
    for g in groups {
        emit("current", &g.window, &g.key, &g.current);
        if let Some((w, rows)) = &g.previous {
            emit("previous", w, &g.key, rows);
        }
    }
    out
}

// ------------------------------------------------------- /v1/conversations

#[derive(Debug, Clone, Copy, PartialEq)]
enum ExportFormat {
    Csv,
    Ndjson,
    Parquet,
}

async fn get_conversations(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    require_reader(&principal, "exporting conversations")?;
    let q = query_map(query, &["from", "to", "tenant", "format"])?;
    let tenant = resolve_tenant(&principal, q.get("tenant").map(String::as_str))?;
    let scope = services::scope::scoped_filters(&principal, Vec::new())?;
    let format = match q.get("format").map(String::as_str) {
        None | Some("csv") => ExportFormat::Csv,
        Some("ndjson") => ExportFormat::Ndjson,
        Some("parquet") => ExportFormat::Parquet,
        Some(other) => {
            return Err(param_problem(ParamError::new(
                "format",
                format!("{other:?} is not a format; accepted are csv (default), ndjson and parquet"),
            )));
        }
    };
    let settings = state.load_settings(&tenant).await?;
    let windows = windows(&q, &settings)?;
    let ctx = lake::tenant_session(&state.warehouse, &tenant, &settings)
        .await
        .map_err(internal)?;
    // CSV has no lists: join them.
    let columns = if format == ExportFormat::Csv {
        "* REPLACE (array_to_string(tags, '|') AS tags, array_to_string(experiment_variants, '|') AS experiment_variants)"
    } else {
        "*"
    };
    let scoped = lake::constraints_predicate(&ctx, &scope, "conversations").map_err(internal)?;
    let sql = format!(
        "SELECT {columns} FROM conversations WHERE started_at >= $1 AND started_at < $2 AND {scoped} \
         ORDER BY started_at, conversation_id"
    );
    let df = lake::in_window(sql, &windows.current)
        .plan(&ctx)
        .await
        .map_err(internal)?;
    let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(internal)?;
    tracing::info!(
        tenant = %tenant,
        key = %principal.key_id,
        from = %params::rfc3339(windows.current.from),
        to = %params::rfc3339(windows.current.to),
        "conversation export"
    );
    state
        .audit
        .record(
            services::audit::Entry::by(
                &principal,
                "export.conversations",
                "/v1/conversations",
                json!({
                    "from": params::rfc3339(windows.current.from),
                    "to": params::rfc3339(windows.current.to),
                    "format": q.get("format"),
                    "filters": scope.iter().map(|c| (c.dimension.name().to_string(), json!(c.values))).collect::<Map<String, Value>>(),
                }),
            )
            .on_tenant(tenant.as_str()),
        )
        .await;
    let stream_format = match format {
        ExportFormat::Csv => StreamFormat::Csv,
        ExportFormat::Ndjson => StreamFormat::Ndjson,
        ExportFormat::Parquet => StreamFormat::Parquet,
    };
    let body = crate::stream_export::body(
        stream_format,
        schema,
        stream,
        "conversation export",
        state.sql.engine().runtime(),
    )
    .map_err(internal)?;
    let (content_type, ext) = (stream_format.content_type(), stream_format.extension());
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"conversations-{}.{ext}\"",
        tenant.as_str()
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Follows ingest: as soon as events arrive (or an erasure ran), and at
/// least every [`fast::FOLLOW_EVERY`], brings every built tenant's rollup
/// up to date and starts the first build of a tenant new to the lake.
/// Requests meanwhile answer from the rollups as they stand
/// ([`warehouse::Warehouse::serve_snapshots`]) and say what they reflect.
///
/// During a bulk load (more than [`BULK_EVENTS`] events accepted since the
/// previous round) each round is followed by a pause of
/// [`BULK_PAUSE_FACTOR`] times its length, so that the load keeps most of
/// the cores; the facts then follow it every few seconds.
fn follow_ingest(state: Arc<AppState>) {
    use std::sync::atomic::Ordering::Relaxed;
    state.warehouse.serve_snapshots();
    tokio::spawn(async move {
        let mut arrivals = state.ingestor.arrivals();
        let accepted = || state.ingestor.metrics().events_accepted.load(Relaxed);
        let mut last_accepted = accepted();
        loop {
            match tokio::time::timeout(fast::FOLLOW_EVERY, arrivals.changed()).await {
                Ok(Err(_)) => tokio::time::sleep(fast::FOLLOW_EVERY).await,
                Ok(Ok(())) | Err(_) => {}
            }
            let now_accepted = accepted();
            let bulk = now_accepted.saturating_sub(last_accepted) > BULK_EVENTS;
            last_accepted = now_accepted;
            let started = std::time::Instant::now();
            for t in warehouse::rollups::tenants(&state.ingestor.read_view()) {
                let Some(tenant) = TenantId::parse(&t) else { continue };
                let Ok(settings) = state.load_settings(&tenant).await else {
                    continue;
                };
                if *state.warehouse.build_signal(&t).borrow() != warehouse::BuildState::Built {
                    fast::start_first_build(&state.warehouse, &tenant, &settings).await;
                } else if let Err(e) = fast::refresh_now(&state.warehouse, &tenant, &settings).await {
                    tracing::warn!(tenant = %tenant, error = %e, "KPI rollup refresh failed");
                }
            }
            if bulk {
                tokio::time::sleep(started.elapsed() * BULK_PAUSE_FACTOR).await;
            }
        }
    });
}

/// Events accepted between two rounds of [`follow_ingest`] above which
/// ingest is a bulk load (live traffic of 1,000 events/s brings about
/// 1,000 a round).
const BULK_EVENTS: u64 = 20_000;

/// See [`follow_ingest`].
const BULK_PAUSE_FACTOR: u32 = 6;

/// Keeps every tenant's rollup built and current in the background: at
/// start (so the first dashboard or KPI call does not pay for the build)
/// and then every [`fast::WARM_EVERY`] (a no-op for a tenant whose data did not
/// change), so requests after a flush find little to recompute; then the
/// default results of the tenant's started experiments, when their data
/// changed. A tenant's settings are read afresh each round.
pub(crate) fn warm(state: Arc<AppState>) {
    fast::save_in_background(state.warehouse.clone());
    follow_ingest(state.clone());
    tokio::spawn(async move {
        loop {
            let tenants = warehouse::rollups::tenants(&state.ingestor.read_view());
            // Tenants never built start together (reading saved facts
            // uses every core); each is then awaited in turn.
            for t in &tenants {
                let Some(tenant) = TenantId::parse(t) else { continue };
                if let Ok(settings) = state.load_settings(&tenant).await {
                    fast::start_first_build(&state.warehouse, &tenant, &settings).await;
                }
            }
            for t in tenants {
                let Some(tenant) = TenantId::parse(&t) else { continue };
                let Ok(settings) = state.load_settings(&tenant).await else {
                    continue;
                };
                if let Err(e) = fast::rollup(&state.warehouse, &tenant, &settings).await {
                    tracing::warn!(tenant = %tenant, error = %e, "background KPI rollup refresh failed");
                    continue;
                }
                services::served::experiments::warm(&state, &tenant).await;
            }
            tokio::time::sleep(fast::WARM_EVERY).await;
        }
    });
}

#[cfg(test)]
mod tests;
