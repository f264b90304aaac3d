//! The pages beyond the overview: channels, teams and agents, tags,
//! traffic, scripts, experiments (list and result) and staffing.
//!
//! Each page calls the JSON API's own handler in-process with the
//! signed-in key and the view's parameters, and maps the answer onto the
//! `dashboards` crate's data struct:
//!
//! | page | API |
//! |---|---|
//! | `/channels` | `GET /v1/kpis?group_by=channel`; the trend `?group_by=channel,<bucket>` for the busiest six |
//! | `/teams` | `GET /v1/kpis?group_by=team` and `?group_by=team,agent`; the trend as for channels |
//! | `/tags` | `GET /v1/kpis?group_by=tag` and the `pairs` of `GET /v1/analyses/bottlenecks`; the trend as for channels |
//! | `/traffic` | `GET /v1/analyses/traffic` |
//! | `/scripts` | `GET /v1/analyses/scripts` (CSAT and resolution intervals, best and worst) |
//! | `/experiments` | `GET /v1/experiments` and each one's `.../results` |
//! | `/experiments/{key}` | `GET /v1/experiments/{key}/results` (`from`, `to` when the URL has them; else the whole run) |
//! | `/staffing` | `GET /v1/forecast/staffing` with `interval` = the view's bucket (15 or 30 min; actuals: the forecast's own history query over the horizon) |
//!
//! So there is no second copy of any query: a page shows what the API
//! answers for the same `from`, `to` and filters. `format=csv` answers the
//! rows the page's tables show, with raw numbers (seconds, fractions).
//!
//! Each chart's numbers, and which CSV holds them (`format=csv` is the
//! page's; `part=trend` is the trend chart's own, its link next to the
//! chart; the scheme is in the `dashboard_routes` module docs):
//!
//! | page | chart | CSV |
//! |---|---|---|
//! | `/channels`, `/teams`, `/tags` | bars of conversations, mean FRT, mean handling time, CSAT per key | the page's (`conversations`, `frt_mean_s`, `handling_mean_s`, `csat_mean` of the rows; on `/teams` and `/tags` the `section=team` / `tag` rows) |
//! | `/channels`, `/teams`, `/tags` | conversations per bucket of the busiest six keys | `part=trend`: `<dimension>,bucket,conversations` (`GET /v1/kpis?group_by=<dimension>,<bucket>` for those keys) |
//! | `/tags` | co-occurrence bars | the page's (`section=pair` rows) |
//! | `/traffic` | weekday × hour heatmap | the page's (`weekday,hour,conversations`; a cell the API does not list is 0) |
//! | `/scripts` | CSAT and resolution interval bars | the page's (`csat_mean,csat_low,csat_high`, `resolution_rate,resolution_low,resolution_high`) |
//! | `/experiments/{key}` | forest plot of relative lifts | the page's (`relative_lift,relative_low,relative_high` per metric and variant; rows without a relative lift are not drawn) |
//! | `/staffing` | forecast band against actuals; required agents | the page's (`actual,mean,p10,p90`; `agents`) |

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Days, Utc};
use dashboards::{
    AgentRow, BreakdownRow, BreakdownStats, ChannelsData, Controls, CsvPart, DecisionSummary, Dimension,
    ExperimentResultData, ExperimentSummary, ExperimentsData, KeyTrend, Lang, MetricResult, Page, PageContext,
    ScriptKind, ScriptRow, ScriptsData, SrmCheck, StaffingData, StaffingInterval, TagPair, TagsData, TeamsData, Theme,
    TrafficData, VariantComparison, VariantShare, Verdict,
};
use serde_json::Value;

use super::{accept_language, csv_part, csv_response, dashboard_tenant, error_page, html, num, signed_in};
use crate::kpi_routes::{self, csv_field};
use crate::problem::Problem;
use crate::state::AppState;
use model::Kpi;
use services::experiment::store::State as ExpState;
use services::keys::{Principal, require_role};
use services::kpis::answer::param_error;
use services::kpis::answer::{Answer, GroupResult, conversations_of, value_of};
use services::kpis::lake::KpiRow;
use services::kpis::params::parse_bound;
use services::served::experiments::{self as served, ComparisonView, ResultsQuery, ResultsView, WindowView};
use services::served::forecasts::{self, ForecastQuery, StaffingView};
use services::tenant::TenantId;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/channels", get(get_channels))
        .route("/teams", get(get_teams))
        .route("/tags", get(get_tags))
        .route("/traffic", get(get_traffic))
        .route("/scripts", get(get_scripts))
        .route("/experiments", get(get_experiments))
        .route("/experiments/{key}", get(get_experiment))
        .route("/staffing", get(get_staffing))
}

/// Which page a request is for.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Channels,
    Teams,
    Tags,
    Traffic,
    Scripts,
    Experiments,
    Experiment(String),
    Staffing,
}

impl Kind {
    fn path(&self) -> String {
        match self {
            Kind::Channels => "/channels".into(),
            Kind::Teams => "/teams".into(),
            Kind::Tags => "/tags".into(),
            Kind::Traffic => "/traffic".into(),
            Kind::Scripts => "/scripts".into(),
            Kind::Experiments => "/experiments".into(),
            Kind::Experiment(key) => format!("/experiments/{}", dashboards::url_encode(key)),
            Kind::Staffing => "/staffing".into(),
        }
    }

    /// The navigation entry of the page.
    fn page(&self) -> Page {
        match self {
            Kind::Channels => Page::Channels,
            Kind::Teams => Page::TeamsAgents,
            Kind::Tags => Page::Tags,
            Kind::Traffic => Page::Traffic,
            Kind::Scripts => Page::Scripts,
            Kind::Experiments | Kind::Experiment(_) => Page::Experiments,
            Kind::Staffing => Page::Staffing,
        }
    }

    /// The name of the CSV file of the page or of one of its charts.
    fn file_name(&self, part: Option<CsvPart>) -> String {
        let stem = match self {
            Kind::Channels => "channels",
            Kind::Teams => "teams",
            Kind::Tags => "tags",
            Kind::Traffic => "traffic",
            Kind::Scripts => "scripts",
            Kind::Experiments => "experiments",
            Kind::Experiment(_) => "experiment",
            Kind::Staffing => "staffing",
        };
        match part {
            None => format!("{stem}.csv"),
            Some(p) => format!("{stem}-{}.csv", p.name()),
        }
    }

    /// Whether the page has a chart with a CSV of its own of this part.
    fn has_part(&self, part: CsvPart) -> bool {
        match part {
            CsvPart::Trend => matches!(self, Kind::Channels | Kind::Teams | Kind::Tags),
        }
    }
}

type Pairs = Vec<(String, String)>;
type QueryPairs = Result<Query<Pairs>, QueryRejection>;

async fn get_channels(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Channels, s, h, q).await
}
async fn get_teams(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Teams, s, h, q).await
}
async fn get_tags(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Tags, s, h, q).await
}
async fn get_traffic(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Traffic, s, h, q).await
}
async fn get_scripts(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Scripts, s, h, q).await
}
async fn get_experiments(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Experiments, s, h, q).await
}
async fn get_experiment(
    State(s): State<Arc<AppState>>,
    Path(key): Path<String>,
    h: HeaderMap,
    q: QueryPairs,
) -> Response {
    page(Kind::Experiment(key), s, h, q).await
}
async fn get_staffing(State(s): State<Arc<AppState>>, h: HeaderMap, q: QueryPairs) -> Response {
    page(Kind::Staffing, s, h, q).await
}

/// Sign-in check, then the page or an error page in the view's language.
async fn page(kind: Kind, state: Arc<AppState>, headers: HeaderMap, query: QueryPairs) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let last = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let lang = Lang::negotiate(last("lang"), accept_language(&headers));
    let theme = Theme::parse(last("theme"));
    let principal = match signed_in(&state, &headers, &kind.path(), &pairs) {
        Ok(p) => p,
        Err(to_login) => return to_login,
    };
    let started = std::time::Instant::now();
    let result = render(&kind, &state, &principal, &pairs, accept_language(&headers)).await;
    tracing::info!(
        page = %kind.path(),
        key = %principal.key_id,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        ok = result.is_ok(),
        "dashboard page"
    );
    match result {
        Ok(resp) => resp,
        Err(p) => error_page(lang, theme, &p),
    }
}

/// A request's tenant, settings, view and answer format.
struct View {
    state: Arc<AppState>,
    principal: Principal,
    tenant: TenantId,
    ctx: PageContext,
    csv: bool,
    /// With `csv`: one chart's numbers instead of the page's tables.
    part: Option<CsvPart>,
    /// `from` or `to` was in the URL (experiments: the results window;
    /// without, results cover the experiment's whole run, as in the API).
    dates_given: bool,
}

impl View {
    /// `from`, `to` and the filters as the KPI and analysis APIs take them.
    fn api_pairs(&self) -> Pairs {
        let c = &self.ctx.controls;
        let mut pairs = vec![("from".to_string(), c.from.clone()), ("to".to_string(), c.to.clone())];
        for (d, v) in &c.filters {
            if !v.trim().is_empty() {
                pairs.push((d.name().to_string(), v.trim().to_string()));
            }
        }
        pairs
    }

    fn with(&self, extra: &[(&str, &str)]) -> Result<Query<Pairs>, QueryRejection> {
        let mut pairs = self.api_pairs();
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Ok(Query(pairs))
    }
}

async fn render(
    kind: &Kind,
    state: &Arc<AppState>,
    principal: &Principal,
    pairs: &Pairs,
    accept_language: Option<&str>,
) -> Result<Response, Problem> {
    let tenant = dashboard_tenant(principal)?;
    let settings = state.load_settings(&tenant).await?;
    let tz = settings.tz();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    // Past pages: the last 7 full local days. Staffing: tomorrow.
    let (from, to) = if *kind == Kind::Staffing {
        let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
        (tomorrow, tomorrow.checked_add_days(Days::new(1)).unwrap_or(tomorrow))
    } else {
        (today.checked_sub_days(Days::new(7)).unwrap_or(today), today)
    };
    let defaults = Controls {
        from: date(from),
        to: date(to),
        time_zone: settings.time_zone.clone(),
        bucket: kind.page().default_bucket(),
        presets: super::date_presets(today, *kind == Kind::Staffing),
        ..Controls::default()
    };
    let mut ctx = PageContext::from_query(tenant.as_str(), pairs, accept_language, &defaults);
    if *kind != Kind::Staffing {
        // KPI windows are local to the tenant's reporting zone, as in the API.
        ctx.controls.time_zone = settings.time_zone.clone();
    }
    let dates_given = pairs
        .iter()
        .any(|(k, v)| (k == "from" || k == "to") && !v.trim().is_empty());
    if *kind == Kind::Experiments && !dates_given {
        // The list shows each experiment's whole run (the API's default):
        // no dates on show, and none carried into the links to results.
        ctx.controls.from.clear();
        ctx.controls.to.clear();
    }
    let csv = pairs.iter().any(|(k, v)| k == "format" && v == "csv");
    let part = if csv { csv_part(pairs)? } else { None };
    if let Some(p) = part.filter(|p| !kind.has_part(*p)) {
        return Err(Problem::bad_request(
            "invalid-parameter",
            format!(
                "part: {} has no {} chart of its own; its charts' numbers are in its CSV: leave `part` out",
                kind.path(),
                p.name()
            ),
        ));
    }
    let view = View {
        state: state.clone(),
        principal: principal.clone(),
        tenant,
        ctx,
        csv,
        part,
        dates_given,
    };
    let (html_body, csv_body) = match kind {
        Kind::Channels => channels(&view).await?,
        Kind::Teams => teams(&view).await?,
        Kind::Tags => tags(&view).await?,
        Kind::Traffic => traffic(&view).await?,
        Kind::Scripts => scripts(&view).await?,
        Kind::Experiments => experiments(&view).await?,
        Kind::Experiment(key) => experiment(&view, key).await?,
        Kind::Staffing => staffing(&view).await?,
    };
    if view.csv {
        return Ok(csv_response(csv_body, &kind.file_name(view.part)));
    }
    Ok(html(StatusCode::OK, html_body))
}

// ------------------------------------------------------------- CSV

/// A CSV document: a header line and rows of already-rendered fields.
fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

const STAT_COLUMNS: [&str; 7] = [
    "conversations",
    "frt_mean_s",
    "response_mean_s",
    "handling_mean_s",
    "csat_mean",
    "resolution_rate",
    "transfer_rate",
];

fn stat_fields(s: &BreakdownStats) -> Vec<String> {
    vec![
        s.conversations.to_string(),
        num(s.frt_s),
        num(s.response_s),
        num(s.handling_s),
        num(s.csat),
        num(s.resolution_rate),
        num(s.transfer_rate),
    ]
}

// ------------------------------------------------------- breakdowns

/// What a breakdown row shows, from a group's KPI rows.
fn stats_of(rows: &[KpiRow]) -> BreakdownStats {
    BreakdownStats {
        conversations: u64::try_from(conversations_of(rows)).unwrap_or(0),
        frt_s: value_of(rows, Kpi::Frt, "mean"),
        response_s: value_of(rows, Kpi::Response, "mean"),
        handling_s: value_of(rows, Kpi::Handling, "mean"),
        csat: value_of(rows, Kpi::Csat, "mean"),
        resolution_rate: value_of(rows, Kpi::ResolutionRate, "value"),
        transfer_rate: value_of(rows, Kpi::TransferRate, "value"),
    }
}

/// The groups' KPIs of `GET /v1/kpis` with `query`, as the API computes
/// them for this key (no totals, no previous period).
async fn groups_of(view: &View, query: Pairs) -> Result<Vec<GroupResult>, Problem> {
    let (request, _) = kpi_routes::kpi_request(&view.state, &view.principal, Ok(Query(query))).await?;
    let answer = services::kpis::answer::answer(&view.state.warehouse, &request, Answer::GroupsOnly).await?;
    Ok(answer.groups)
}

/// The value of `name` in a group's key; `None` for a conversation
/// without one (and for a name the key lacks).
fn key_value<'a>(g: &'a GroupResult, name: &str) -> Option<&'a str> {
    g.key.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
}

/// A dimension value as shown: conversations without one are "(none)".
fn label(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_string(), str::to_string)
}

/// `/v1/kpis` grouped by `group_by` for the view: each group's key and stats,
/// most conversations first.
async fn grouped(view: &View, group_by: &str) -> Result<Vec<(Vec<String>, BreakdownStats)>, Problem> {
    let mut query = view.api_pairs();
    query.push(("group_by".to_string(), group_by.to_string()));
    let names: Vec<&str> = group_by.split(',').collect();
    let mut rows: Vec<(Vec<String>, BreakdownStats)> = groups_of(view, query)
        .await?
        .iter()
        .map(|g| {
            let key = names.iter().map(|n| label(key_value(g, n))).collect();
            (key, stats_of(&g.current))
        })
        .collect();
    rows.sort_by(|a, b| b.1.conversations.cmp(&a.1.conversations).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

/// Keys a trend draws at most (the busiest).
const TREND_KEYS: usize = 6;

/// A breakdown page's trend chart as `/v1/kpis` answers it: the buckets
/// (their starts, as the API keys them) and, per key, the conversations
/// in each bucket (0 where the API has no group).
struct KeyTrends {
    dimension: Dimension,
    hourly: bool,
    starts: Vec<String>,
    keys: Vec<(String, Vec<f64>)>,
}

impl KeyTrends {
    /// What the chart draws: buckets labelled by date (or date and hour).
    fn for_page(&self) -> Vec<KeyTrend> {
        self.keys
            .iter()
            .map(|(key, counts)| KeyTrend {
                key: key.clone(),
                points: self
                    .starts
                    .iter()
                    .zip(counts)
                    .map(|(start, n)| (super::bucket_label(start, self.hourly), *n))
                    .collect(),
            })
            .collect()
    }

    /// `part=trend`: `<dimension>,bucket,conversations`, key by key (busiest
    /// first), each bucket in order.
    fn csv(&self) -> String {
        csv(
            &[self.dimension.name(), "bucket", "conversations"],
            self.keys.iter().flat_map(|(key, counts)| {
                self.starts
                    .iter()
                    .zip(counts)
                    .map(|(start, n)| vec![key.clone(), start.clone(), num(Some(*n))])
            }),
        )
    }
}

/// Conversations per bucket of the view for the busiest values of
/// `dimension` (`rows` most conversations first): `GET /v1/kpis` grouped by
/// the dimension and the bucket, filtered to those values.
async fn key_trend(view: &View, dimension: Dimension, rows: &[BreakdownRow]) -> Result<KeyTrends, Problem> {
    let bucket = view.ctx.controls.bucket.name();
    let mut trends = KeyTrends {
        dimension,
        hourly: bucket == "hour",
        starts: Vec::new(),
        keys: Vec::new(),
    };
    let keys: Vec<&str> = rows
        .iter()
        .map(|r| r.key.as_str())
        .filter(|k| *k != "(none)" && !k.contains(','))
        .take(TREND_KEYS)
        .collect();
    if keys.is_empty() {
        return Ok(trends);
    }
    let mut pairs: Pairs = view
        .api_pairs()
        .into_iter()
        .filter(|(k, _)| k != dimension.name())
        .collect();
    pairs.push((dimension.name().to_string(), keys.join(",")));
    pairs.push(("group_by".to_string(), format!("{},{bucket}", dimension.name())));
    let answered = groups_of(view, pairs).await?;
    let groups: Vec<(&str, &str, f64)> = answered
        .iter()
        .filter_map(|g| {
            let key = key_value(g, dimension.name())?;
            let start = key_value(g, bucket)?;
            Some((key, start, conversations_of(&g.current) as f64))
        })
        .collect();
    // The buckets in the API's order (each value's groups run through
    // every bucket of the window).
    for (_, start, _) in &groups {
        if !trends.starts.iter().any(|s| s == start) {
            trends.starts.push((*start).to_string());
        }
    }
    trends.keys = keys
        .iter()
        .map(|key| {
            let counts = trends
                .starts
                .iter()
                .map(|start| {
                    groups
                        .iter()
                        .find(|(k, s, _)| k == key && s == start)
                        .map_or(0.0, |g| g.2)
                })
                .collect();
            ((*key).to_string(), counts)
        })
        .collect();
    Ok(trends)
}

fn breakdown_rows(rows: Vec<(Vec<String>, BreakdownStats)>) -> Vec<BreakdownRow> {
    rows.into_iter()
        .map(|(key, stats)| BreakdownRow {
            key: key.into_iter().next().unwrap_or_default(),
            stats,
        })
        .collect()
}

/// The page's trend (for the page, or as the answer to `part=trend`);
/// none for the page's own CSV, which does not hold it.
enum Trend {
    Page(Vec<KeyTrend>),
    Csv(String),
}

async fn trend_of(view: &View, dimension: Dimension, rows: &[BreakdownRow]) -> Result<Trend, Problem> {
    Ok(match (view.csv, view.part) {
        (true, Some(CsvPart::Trend)) => Trend::Csv(key_trend(view, dimension, rows).await?.csv()),
        (true, None) => Trend::Page(Vec::new()),
        (false, _) => Trend::Page(key_trend(view, dimension, rows).await?.for_page()),
    })
}

async fn channels(view: &View) -> Result<(String, String), Problem> {
    let rows = breakdown_rows(grouped(view, "channel").await?);
    let trend = match trend_of(view, Dimension::Channel, &rows).await? {
        Trend::Csv(body) => return Ok((String::new(), body)),
        Trend::Page(t) => t,
    };
    let data = ChannelsData { rows, trend };
    let mut header = vec!["channel"];
    header.extend(STAT_COLUMNS);
    let body = csv(
        &header,
        data.rows.iter().map(|r| {
            let mut f = vec![r.key.clone()];
            f.extend(stat_fields(&r.stats));
            f
        }),
    );
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_channels(&view.ctx, &data)
    };
    Ok((page, body))
}

async fn teams(view: &View) -> Result<(String, String), Problem> {
    let teams = breakdown_rows(grouped(view, "team").await?);
    let trend = match trend_of(view, Dimension::Team, &teams).await? {
        Trend::Csv(body) => return Ok((String::new(), body)),
        Trend::Page(t) => t,
    };
    let agents = grouped(view, "team,agent")
        .await?
        .into_iter()
        .filter(|(key, _)| key.get(1).is_some_and(|a| a != "(none)"))
        .map(|(key, stats)| AgentRow {
            agent: key.get(1).cloned().unwrap_or_default(),
            team: key.first().cloned(),
            stats,
        })
        .collect();
    let data = TeamsData { teams, agents, trend };
    let mut header = vec!["section", "team", "agent"];
    header.extend(STAT_COLUMNS);
    let team_rows = data.teams.iter().map(|r| {
        let mut f = vec!["team".to_string(), r.key.clone(), String::new()];
        f.extend(stat_fields(&r.stats));
        f
    });
    let agent_rows = data.agents.iter().map(|a| {
        let mut f = vec!["agent".to_string(), a.team.clone().unwrap_or_default(), a.agent.clone()];
        f.extend(stat_fields(&a.stats));
        f
    });
    let body = csv(&header, team_rows.chain(agent_rows));
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_teams(&view.ctx, &data)
    };
    Ok((page, body))
}

async fn tags(view: &View) -> Result<(String, String), Problem> {
    let tags: Vec<BreakdownRow> = breakdown_rows(grouped(view, "tag").await?)
        .into_iter()
        .filter(|r| r.key != "(none)")
        .collect();
    let trend = match trend_of(view, Dimension::Tag, &tags).await? {
        Trend::Csv(body) => return Ok((String::new(), body)),
        Trend::Page(t) => t,
    };
    let pairs = crate::analysis_routes::bottleneck_pairs(&view.state, &view.principal, view.with(&[])).await?;
    // The API lists each pair in both directions; the page lists it once.
    let mut co_occurrence: Vec<TagPair> = services::analyses::tag_pairs(&pairs)
        .into_iter()
        .filter(|p| p.tag < p.other_tag)
        .map(|p| TagPair {
            a: p.tag,
            b: p.other_tag,
            conversations: p.conversations,
        })
        .collect();
    // Most frequent pairs first.
    co_occurrence.sort_by(|x, y| {
        y.conversations
            .cmp(&x.conversations)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    let data = TagsData {
        tags,
        co_occurrence,
        trend,
    };
    let mut header = vec!["section", "tag", "other_tag"];
    header.extend(STAT_COLUMNS);
    let tag_rows = data.tags.iter().map(|r| {
        let mut f = vec!["tag".to_string(), r.key.clone(), String::new()];
        f.extend(stat_fields(&r.stats));
        f
    });
    let pair_rows = data.co_occurrence.iter().map(|p| {
        let mut f = vec![
            "pair".to_string(),
            p.a.clone(),
            p.b.clone(),
            p.conversations.to_string(),
        ];
        f.extend(std::iter::repeat_n(String::new(), STAT_COLUMNS.len() - 1));
        f
    });
    let csv_body = csv(&header, tag_rows.chain(pair_rows));
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_tags(&view.ctx, &data)
    };
    Ok((page, csv_body))
}

// ----------------------------------------------------------- traffic

async fn traffic(view: &View) -> Result<(String, String), Problem> {
    let cells = crate::analysis_routes::traffic_cells(&view.state, &view.principal, view.with(&[])).await?;
    let mut data = TrafficData::default();
    let mut rows = Vec::new();
    for cell in cells {
        if let Some(slot) = data.conversations[usize::from(cell.weekday) - 1].get_mut(usize::from(cell.hour)) {
            *slot = cell.conversations;
        }
        rows.push(vec![
            cell.weekday.to_string(),
            cell.hour.to_string(),
            cell.conversations.to_string(),
            num(cell.wait_mean_s),
            num(cell.wait_median_s),
            num(cell.wait_p90_s),
        ]);
    }
    let csv_body = csv(
        &[
            "weekday",
            "hour",
            "conversations",
            "wait_mean_s",
            "wait_median_s",
            "wait_p90_s",
        ],
        rows,
    );
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_traffic(&view.ctx, &data)
    };
    Ok((page, csv_body))
}

// ----------------------------------------------------------- scripts

async fn scripts(view: &View) -> Result<(String, String), Problem> {
    let table = crate::analysis_routes::scripts_groups(&view.state, &view.principal, view.with(&[])).await?;
    let mut data = ScriptsData::default();
    let mut rows = Vec::new();
    for g in services::analyses::script_groups(&table) {
        let kind = match g.kind.as_str() {
            "template" => ScriptKind::Template,
            "quick_reply" => ScriptKind::QuickReply,
            _ => continue,
        };
        let row = ScriptRow {
            kind,
            id: label(g.key.as_deref()),
            conversations: g.conversations,
            csat: g.csat_mean,
            csat_ci: g.csat_ci,
            csat_n: g.csat_n,
            resolution_rate: g.resolution_rate,
            resolution_ci: g.resolution_ci,
            small_sample: g.small_sample,
        };
        let (cl, ch) = (row.csat_ci.map(|c| c.0), row.csat_ci.map(|c| c.1));
        let (rl, rh) = (row.resolution_ci.map(|c| c.0), row.resolution_ci.map(|c| c.1));
        rows.push(vec![
            row.id.clone(),
            g.kind.clone(),
            row.conversations.to_string(),
            num(row.csat),
            row.csat_n.to_string(),
            num(cl),
            num(ch),
            num(row.resolution_rate),
            num(rl),
            num(rh),
            row.small_sample.to_string(),
        ]);
        data.scripts.push(row);
    }
    let (best, worst) = services::analyses::best_and_worst(&table);
    for (kind, name) in [
        (ScriptKind::QuickReply, "quick_reply"),
        (ScriptKind::Template, "template"),
    ] {
        if let Some(id) = best.get(name).and_then(Value::as_str) {
            data.best.push((kind, id.to_string()));
        }
        if let Some(id) = worst.get(name).and_then(Value::as_str) {
            data.worst.push((kind, id.to_string()));
        }
    }
    let csv_body = csv(
        &[
            "script",
            "kind",
            "conversations",
            "csat_mean",
            "csat_n",
            "csat_low",
            "csat_high",
            "resolution_rate",
            "resolution_low",
            "resolution_high",
            "small_sample",
        ],
        rows,
    );
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_scripts(&view.ctx, &data)
    };
    Ok((page, csv_body))
}

// ------------------------------------------------------- experiments

fn verdict(v: experiments::decision::Verdict) -> Verdict {
    use experiments::decision::Verdict as V;
    match v {
        V::Ship => Verdict::Ship,
        V::KeepRunning => Verdict::KeepRunning,
        V::Stop => Verdict::Stop,
    }
}

fn verdict_name(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Ship) => "ship",
        Some(Verdict::KeepRunning) => "keep_running",
        Some(Verdict::Stop) => "stop",
        None => "",
    }
}

/// The results of experiment `key` for the view's dates (without dates in
/// the URL: its whole run, as in the API).
async fn results(view: &View, key: &str) -> Result<ResultsView, Problem> {
    let experiment = crate::experiment_routes::find(&view.state, view.tenant.as_str(), key)?;
    let mut query = ResultsQuery::whole_run();
    if view.dates_given {
        let bound = |name: &str, s: &str| parse_bound(name, s).map_err(|e| Problem::from(param_error(e)));
        query.from = Some(bound("from", &view.ctx.controls.from)?);
        query.to = Some(bound("to", &view.ctx.controls.to)?);
    }
    let answer = served::results(&view.state, &view.tenant, experiment, &query).await?;
    Ok(ResultsView::read(&answer)?)
}

/// Experiments that have run show their units and verdict; drafts have none.
const MAX_LISTED_RESULTS: usize = 20;

async fn experiments(view: &View) -> Result<(String, String), Problem> {
    require_role(&view.principal, served::READERS, "reading experiment results")?;
    let listed = view
        .state
        .experiments
        .read(view.tenant.as_str(), |r| r.experiments.clone())
        .map_err(kpi_routes::internal)?;
    let mut data = ExperimentsData::default();
    for (i, e) in listed.into_iter().enumerate() {
        let (mut units, mut decided) = (0, None);
        if e.state != ExpState::Draft && i < MAX_LISTED_RESULTS {
            let r = results(view, &e.key).await?;
            units = r.units();
            decided = r.decision.map(|d| verdict(d.verdict));
        }
        data.experiments.push(ExperimentSummary {
            key: e.key,
            kind: e.definition.kind,
            state: e.state.as_str().to_string(),
            primary_metric: e.definition.primary_metric,
            units,
            verdict: decided,
        });
    }
    let csv_body = csv(
        &["experiment", "kind", "state", "primary_metric", "units", "decision"],
        data.experiments.iter().map(|e| {
            vec![
                e.key.clone(),
                e.kind.clone(),
                e.state.clone(),
                e.primary_metric.clone(),
                e.units.to_string(),
                verdict_name(e.verdict).to_string(),
            ]
        }),
    );
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_experiments(&view.ctx, &data)
    };
    Ok((page, csv_body))
}

fn comparison(c: ComparisonView) -> VariantComparison {
    match c {
        ComparisonView::Failed { variant, error } => VariantComparison {
            variant,
            control_mean: None,
            treatment_mean: None,
            absolute_lift: None,
            absolute_ci: None,
            relative_lift: None,
            relative_ci: None,
            p_value: None,
            significant: false,
            chance_to_win: None,
            error: Some(error),
        },
        ComparisonView::Done {
            variant,
            control_mean,
            treatment_mean,
            absolute_lift,
            absolute_ci,
            relative_lift,
            relative_ci,
            p_value,
            significant,
            bayesian,
        } => VariantComparison {
            variant,
            control_mean,
            treatment_mean,
            absolute_lift,
            absolute_ci: absolute_ci.map(|[l, h]| (l, h)),
            relative_lift,
            relative_ci: relative_ci.map(|[l, h]| (l, h)),
            p_value,
            significant,
            chance_to_win: bayesian.and_then(|b| b.chance_to_beat_control),
            error: None,
        },
    }
}

async fn experiment(view: &View, key: &str) -> Result<(String, String), Problem> {
    require_role(&view.principal, served::READERS, "reading experiment results")?;
    let r = results(view, key).await?;
    let window = r.window.clone();
    let data = ExperimentResultData {
        key: key.to_string(),
        state: r.state.as_str().to_string(),
        control: r.control,
        variants: r
            .variants
            .into_iter()
            .map(|v| VariantShare {
                key: v.key,
                weight: v.weight,
                units: v.units,
            })
            .collect(),
        srm: r.srm.map(|s| SrmCheck {
            chi_square: s.chi_square,
            p_value: s.p_value,
            mismatch: s.mismatch,
        }),
        metrics: r
            .metrics
            .into_iter()
            .map(|m| MetricResult {
                metric: m.metric,
                role: m.role,
                higher_is_better: m.direction == experiments::decision::Direction::HigherIsBetter,
                comparisons: m.comparisons.into_iter().map(comparison).collect(),
            })
            .collect(),
        decision: r.decision.map(|d| DecisionSummary {
            variant: d.variant,
            verdict: verdict(d.verdict),
            explanation: d.explanation,
        }),
    };
    let mut rows = Vec::new();
    for m in &data.metrics {
        for c in &m.comparisons {
            let (al, ah) = c.absolute_ci.map_or((None, None), |(l, h)| (Some(l), Some(h)));
            let (rl, rh) = c.relative_ci.map_or((None, None), |(l, h)| (Some(l), Some(h)));
            rows.push(vec![
                m.metric.clone(),
                m.role.clone(),
                c.variant.clone(),
                num(c.control_mean),
                num(c.treatment_mean),
                num(c.absolute_lift),
                num(al),
                num(ah),
                num(c.relative_lift),
                num(rl),
                num(rh),
                num(c.p_value),
                c.significant.to_string(),
                num(c.chance_to_win),
            ]);
        }
    }
    let csv_body = csv(
        &[
            "metric",
            "role",
            "variant",
            "control_mean",
            "treatment_mean",
            "absolute_lift",
            "absolute_low",
            "absolute_high",
            "relative_lift",
            "relative_low",
            "relative_high",
            "p_value",
            "significant",
            "chance_to_beat_control",
        ],
        rows,
    );
    // Without dates in the URL the results cover the whole run: show that
    // window in the controls rather than the default week.
    let mut ctx = view.ctx.clone();
    if !view.dates_given {
        if let Some(WindowView { from, to }) = window {
            ctx.controls.from = from.date_naive().format("%Y-%m-%d").to_string();
            let end = to
                .date_naive()
                .checked_add_days(Days::new(1))
                .unwrap_or(to.date_naive());
            ctx.controls.to = end.format("%Y-%m-%d").to_string();
        }
    }
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_experiment_result(&ctx, &data)
    };
    Ok((page, csv_body))
}

// ---------------------------------------------------------- staffing

/// The forecast queue of the view's filters (`channel:whatsapp,team:billing`):
/// one value per dimension the forecast knows; anything else is a 400 that
/// says so.
fn queue_of(ctx: &PageContext) -> Result<String, Problem> {
    let mut parts = Vec::new();
    for (d, v) in &ctx.controls.filters {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let known = matches!(
            d,
            Dimension::Channel
                | Dimension::Language
                | Dimension::Team
                | Dimension::Queue
                | Dimension::ChannelAccount
                | Dimension::Region
                | Dimension::CustomerTier
        );
        if !known || v.contains(',') {
            return Err(Problem::bad_request(
                "invalid-parameter",
                format!(
                    "{}: a staffing forecast is for one queue: filter by one value each of channel, language, team, \
                     queue, channel_account, region or customer_tier",
                    d.name()
                ),
            ));
        }
        parts.push(format!("{}:{v}", d.name()));
    }
    Ok(parts.join(","))
}

fn micros(rfc3339: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_micros())
}

async fn staffing(view: &View) -> Result<(String, String), Problem> {
    let c = &view.ctx.controls;
    let queue = queue_of(&view.ctx)?;
    let query = ForecastQuery {
        from: Some(c.from.clone()),
        to: Some(c.to.clone()),
        tz: Some(c.time_zone.clone()),
        interval: Some(c.bucket.interval_minutes().unwrap_or(30).to_string()),
        queue: (!queue.is_empty()).then(|| queue.clone()),
        ..ForecastQuery::default()
    };
    let answer = forecasts::staffing(&view.state, &view.principal, &query).await?;
    let plan = StaffingView::read(&answer)?;
    let step_us = i64::from(plan.interval_minutes) * 60_000_000;

    // Actual arrivals of the horizon's past intervals, from the same history
    // query the forecast is fitted on.
    let from_us = micros(&plan.from);
    let to_us = micros(&plan.to);
    let now_us = Utc::now().timestamp_micros();
    let mut actual: Vec<f64> = Vec::new();
    if let (Some(from_us), Some(to_us)) = (from_us, to_us)
        && from_us < now_us
    {
        let key = services::forecasts::lake::QueueKey::parse(&queue)
            .map_err(|e| Problem::bad_request("invalid-parameter", format!("queue: {e}")))?;
        let past_to = to_us.min(now_us - now_us.rem_euclid(step_us));
        if past_to > from_us {
            let (history, _) =
                forecasts::cache::history(&view.state, view.tenant.as_str(), &key, from_us, past_to, step_us).await?;
            actual = history.counts;
        }
    }
    let one_day = plan.intervals.len() as i64 * step_us <= 86_400_000_000;
    let data = StaffingData {
        queue: plan.queue.clone(),
        interval_minutes: plan.interval_minutes,
        method: match &plan.method {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        service_level: plan.assumptions.service_level.zip(plan.assumptions.target_s),
        intervals: plan
            .intervals
            .iter()
            .enumerate()
            .map(|(i, iv)| {
                let start = iv.start.as_str();
                // `2026-11-22T18:30:00+08:00` → `18:30` or `11-22 18:30`.
                let label = if one_day { start.get(11..16) } else { start.get(5..16) }
                    .map_or_else(|| start.to_string(), |s| s.replace('T', " "));
                StaffingInterval {
                    label,
                    actual: actual.get(i).copied(),
                    mean: iv.mean.unwrap_or(f64::NAN),
                    p10: iv.p10.unwrap_or(f64::NAN),
                    p90: iv.p90.unwrap_or(f64::NAN),
                    agents: iv.agents,
                }
            })
            .collect(),
    };
    let csv_body = csv(
        &["start", "actual", "mean", "p10", "p50", "p90", "agents"],
        plan.intervals.iter().zip(&data.intervals).map(|(iv, s)| {
            vec![
                iv.start.clone(),
                num(s.actual),
                num(Some(s.mean)),
                num(Some(s.p10)),
                num(iv.p50),
                num(Some(s.p90)),
                num(s.agents),
            ]
        }),
    );
    let page = if view.csv {
        String::new()
    } else {
        dashboards::render_staffing(&view.ctx, &data)
    };
    Ok((page, csv_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let out = csv(&["a", "b"], vec![vec!["x,y".to_string(), "1.5".to_string()]]);
        assert_eq!(out, "a,b\n\"x,y\",1.5\n");
        assert_eq!(num(Some(f64::NAN)), "");
        assert_eq!(num(None), "");
    }

    #[test]
    fn breakdown_stats_come_from_the_kpi_rows_of_the_group() {
        use super::super::tests::row;
        let k = vec![
            row("conversations", "value", "all", 12.0, 12),
            row("frt_s", "mean", "all", 30.5, 10),
            row("frt_s", "median", "all", 20.0, 10),
            row("frt_s", "mean", "bot", 99.0, 3),
            row("csat", "mean", "all", 4.25, 4),
            row("resolution_rate", "value", "all", 0.75, 12),
        ];
        let s = stats_of(&k);
        assert_eq!(s.conversations, 12);
        assert_eq!(s.frt_s, Some(30.5));
        assert_eq!(s.csat, Some(4.25));
        assert_eq!(s.resolution_rate, Some(0.75));
        assert_eq!(s.transfer_rate, None);
        assert_eq!(label(None), "(none)");
    }

    #[test]
    fn a_staffing_queue_takes_one_value_of_the_forecast_dimensions() {
        let mut ctx = PageContext::default();
        ctx.controls.filters = vec![
            (Dimension::Channel, "whatsapp".into()),
            (Dimension::Team, "billing".into()),
        ];
        assert_eq!(queue_of(&ctx).ok().as_deref(), Some("channel:whatsapp,team:billing"));
        ctx.controls.filters = vec![(Dimension::Channel, "whatsapp,line".into())];
        assert!(queue_of(&ctx).is_err());
        ctx.controls.filters = vec![(Dimension::Tag, "refund".into())];
        assert!(queue_of(&ctx).is_err());
    }
}
