//! Pages that break the KPIs down by a dimension: channels, teams and
//! agents, tags (with co-occurrence), scripts (templates and quick replies
//! by CSAT).

use std::fmt::Write as _;

use crate::charts::{ChartSize, Tone, bar_chart, interval_bar, line_chart};
use crate::format;
use crate::html::escape;
use crate::i18n::Strings;
use crate::kpi::Unit;
use crate::pages::experiments::interval;
use crate::pages::{Col, empty, numbers, table};
use crate::shell::{self, CsvPart, Page, PageContext, chart_csv_link};

/// The KPIs shown per row of a breakdown (`None`: no value, e.g. no
/// conversation with a CSAT score).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BreakdownStats {
    pub conversations: u64,
    /// Mean first response time, seconds.
    pub frt_s: Option<f64>,
    /// Mean average response time, seconds.
    pub response_s: Option<f64>,
    /// Mean handling duration, seconds.
    pub handling_s: Option<f64>,
    pub csat: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub transfer_rate: Option<f64>,
}

/// One value of a dimension (a channel, a team, a tag) and its KPIs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BreakdownRow {
    pub key: String,
    pub stats: BreakdownStats,
}

/// One dimension value's conversations per time bucket of the view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyTrend {
    pub key: String,
    /// Bucket label (a local date, or date and hour) → conversations.
    pub points: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelsData {
    pub rows: Vec<BreakdownRow>,
    /// Conversations per bucket of the busiest channels.
    pub trend: Vec<KeyTrend>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentRow {
    pub agent: String,
    pub team: Option<String>,
    pub stats: BreakdownStats,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TeamsData {
    pub teams: Vec<BreakdownRow>,
    pub agents: Vec<AgentRow>,
    /// Conversations per bucket of the busiest teams.
    pub trend: Vec<KeyTrend>,
}

/// Two tags on the same conversations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagPair {
    pub a: String,
    pub b: String,
    pub conversations: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagsData {
    pub tags: Vec<BreakdownRow>,
    pub co_occurrence: Vec<TagPair>,
    /// Conversations per bucket of the most frequent tags.
    pub trend: Vec<KeyTrend>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    Template,
    QuickReply,
}

/// A message template or quick reply and the outcomes of the conversations
/// it was used in.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptRow {
    pub kind: ScriptKind,
    /// `template_id` / `quick_reply_id`.
    pub id: String,
    pub conversations: u64,
    pub csat: Option<f64>,
    /// 95 % interval of the mean CSAT (`None` below two scores).
    pub csat_ci: Option<(f64, f64)>,
    /// Conversations with a CSAT score behind `csat`.
    pub csat_n: u64,
    pub resolution_rate: Option<f64>,
    /// 95 % Wilson interval of the resolution rate.
    pub resolution_ci: Option<(f64, f64)>,
    /// Too few scores to read the CSAT as more than an anecdote.
    pub small_sample: bool,
}

/// Scripts best first within each kind (as `GET /v1/analyses/scripts`
/// orders them), with the API's best and worst per kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptsData {
    pub scripts: Vec<ScriptRow>,
    /// Per kind, the id of the best and the worst script that has enough scores.
    pub best: Vec<(ScriptKind, String)>,
    pub worst: Vec<(ScriptKind, String)>,
}

fn stat_cols<'a>(s: &'a Strings, first: &'a str) -> Vec<Col<'a>> {
    vec![
        Col(first, false),
        Col(s.conversations, true),
        Col(s.frt, true),
        Col(s.response, true),
        Col(s.handling, true),
        Col(s.csat, true),
        Col(s.resolution_rate, true),
        Col(s.transfer_rate, true),
    ]
}

fn stat_cells(st: &BreakdownStats) -> Vec<String> {
    vec![
        format::value(&Unit::Count, st.conversations as f64),
        format::opt_value(&Unit::Seconds, st.frt_s),
        format::opt_value(&Unit::Seconds, st.response_s),
        format::opt_value(&Unit::Seconds, st.handling_s),
        format::opt_value(&Unit::Score, st.csat),
        format::opt_value(&Unit::Fraction, st.resolution_rate),
        format::opt_value(&Unit::Fraction, st.transfer_rate),
    ]
    .into_iter()
    .map(|c| escape(&c))
    .collect()
}

fn rows_table(s: &Strings, first: &str, rows: &[BreakdownRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![escape(&r.key)];
            cells.extend(stat_cells(&r.stats));
            cells
        })
        .collect();
    table("", &stat_cols(s, first), &body)
}

/// Bar charts of volume, mean FRT, mean handling time and CSAT, and the
/// full table.
fn breakdown(out: &mut String, s: &Strings, first: &str, volume_title: &str, rows: &[BreakdownRow]) {
    if rows.is_empty() {
        out.push_str(&empty(s));
        return;
    }
    let volume: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.stats.conversations as f64))
        .collect();
    let metric = |f: fn(&BreakdownStats) -> Option<f64>| -> Vec<(String, f64)> {
        rows.iter()
            .map(|r| (r.key.clone(), f(&r.stats).unwrap_or(f64::NAN)))
            .collect()
    };
    // Two by two on a laptop, one column on a phone.
    out.push_str(r#"<div class="grid2">"#);
    for (title, bars, unit) in [
        (volume_title, volume, Unit::Count),
        (s.frt, metric(|st| st.frt_s), Unit::Seconds),
        (s.handling, metric(|st| st.handling_s), Unit::Seconds),
        (s.csat, metric(|st| st.csat), Unit::Score),
    ] {
        let _ = write!(
            out,
            r#"<section class="card"><h2>{}</h2>{}</section>"#,
            escape(title),
            bar_chart(title, &bars, &unit)
        );
    }
    out.push_str("</div>");
    let _ = write!(
        out,
        r#"<section class="card"><h2>{}</h2>{}</section>"#,
        escape(first),
        rows_table(s, first, rows)
    );
}

/// Small multiples: one conversations line per key over the view's
/// buckets, their numbers (buckets × keys), and a link to their CSV
/// (`part=trend`; the page's CSV holds the breakdown table, not these).
fn trend(out: &mut String, ctx: &PageContext, page: Page, first: &str, trends: &[KeyTrend]) {
    let s = ctx.strings();
    if trends.iter().all(|t| t.points.is_empty()) {
        return;
    }
    let _ = write!(
        out,
        r#"<section class="card trend"><div class="ctitle"><h2>{}</h2>{}</div><div class="tiles">"#,
        escape(s.conversations_over_time),
        chart_csv_link(ctx, page.path(), CsvPart::Trend, &[])
    );
    for t in trends {
        let _ = write!(
            out,
            r#"<div class="mini"><h3>{}</h3>{}</div>"#,
            escape(&t.key),
            line_chart(
                &format!("{} · {}", s.conversations_over_time, t.key),
                &t.points,
                &Unit::Count,
                ChartSize {
                    width: 320.0,
                    height: 110.0
                }
            )
        );
    }
    out.push_str("</div>");
    let mut cols = vec![Col(s.date, false)];
    cols.extend(trends.iter().map(|t| Col(t.key.as_str(), true)));
    let labels: Vec<&String> = trends
        .iter()
        .max_by_key(|t| t.points.len())
        .map(|t| t.points.iter().map(|(l, _)| l).collect())
        .unwrap_or_default();
    let body: Vec<Vec<String>> = labels
        .iter()
        .map(|label| {
            let mut cells = vec![escape(label)];
            cells.extend(trends.iter().map(|t| {
                let v = t.points.iter().find(|(l, _)| l == *label).map(|(_, v)| *v);
                escape(&format::opt_value(&Unit::Count, v.filter(|v| v.is_finite())))
            }));
            cells
        })
        .collect();
    out.push_str(&numbers(s, &table(first, &cols, &body)));
    out.push_str("</section>");
}

fn page(ctx: &PageContext, page: Page, main: &str) -> String {
    let s = ctx.strings();
    shell::render(
        &shell::Frame {
            ctx,
            page,
            path: page.path(),
            heading: page.title(s),
            controls: true,
        },
        main,
    )
}

/// Channels: volume, FRT and CSAT per channel.
pub fn render_channels(ctx: &PageContext, data: &ChannelsData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    breakdown(&mut main, s, s.channel, s.conversations_by_channel, &data.rows);
    trend(&mut main, ctx, Page::Channels, s.channel, &data.trend);
    page(ctx, Page::Channels, &main)
}

/// Teams and agents: the team breakdown, then every agent.
pub fn render_teams(ctx: &PageContext, data: &TeamsData) -> String {
    let s = ctx.strings();
    let mut main = format!("<h2>{}</h2>", escape(s.teams));
    breakdown(&mut main, s, s.team, s.conversations_by_team, &data.teams);
    trend(&mut main, ctx, Page::TeamsAgents, s.team, &data.trend);
    let _ = write!(main, r#"<section class="card"><h2>{}</h2>"#, escape(s.agents));
    if data.agents.is_empty() {
        main.push_str(&empty(s));
    } else {
        let mut cols = vec![Col(s.agent, false), Col(s.team, false)];
        cols.extend(stat_cols(s, "").into_iter().skip(1));
        let body: Vec<Vec<String>> = data
            .agents
            .iter()
            .map(|a| {
                let mut cells = vec![escape(&a.agent), escape(a.team.as_deref().unwrap_or("–"))];
                cells.extend(stat_cells(&a.stats));
                cells
            })
            .collect();
        main.push_str(&table("", &cols, &body));
    }
    main.push_str("</section>");
    page(ctx, Page::TeamsAgents, &main)
}

/// Tags: volume, handling time and CSAT per tag, and which tags come together.
pub fn render_tags(ctx: &PageContext, data: &TagsData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    breakdown(&mut main, s, s.tag, s.conversations_by_tag, &data.tags);
    trend(&mut main, ctx, Page::Tags, s.tag, &data.trend);
    let _ = write!(main, r#"<section class="card"><h2>{}</h2>"#, escape(s.co_occurrence));
    if data.co_occurrence.is_empty() {
        main.push_str(&empty(s));
    } else {
        let bars: Vec<(String, f64)> = data
            .co_occurrence
            .iter()
            .map(|p| (format!("{} + {}", p.a, p.b), p.conversations as f64))
            .collect();
        main.push_str(&bar_chart(s.co_occurrence, &bars, &Unit::Count));
        let body: Vec<Vec<String>> = data
            .co_occurrence
            .iter()
            .map(|p| {
                vec![
                    escape(&p.a),
                    escape(&p.b),
                    escape(&format::value(&Unit::Count, p.conversations as f64)),
                ]
            })
            .collect();
        // Shown open: pair names are too long for the chart's labels.
        main.push_str(&table(
            "",
            &[Col(s.tag, false), Col(s.tag, false), Col(s.together, true)],
            &body,
        ));
    }
    main.push_str("</section>");
    page(ctx, Page::Tags, &main)
}

/// Scripts: templates and quick replies by the CSAT of the conversations
/// they were used in, each with its confidence intervals, best first; the
/// best and the worst with enough scores named on top.
pub fn render_scripts(ctx: &PageContext, data: &ScriptsData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    if data.scripts.is_empty() {
        main.push_str(&empty(s));
        return page(ctx, Page::Scripts, &main);
    }
    for (kind, title) in [
        (ScriptKind::QuickReply, s.quick_replies),
        (ScriptKind::Template, s.templates),
    ] {
        let rows: Vec<&ScriptRow> = data.scripts.iter().filter(|r| r.kind == kind).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(main, r#"<section class="card scripts"><h2>{}</h2>"#, escape(title));
        let named = |list: &[(ScriptKind, String)]| {
            list.iter()
                .find(|(k, _)| *k == kind)
                .and_then(|(_, id)| rows.iter().find(|r| &r.id == id).copied())
        };
        let best = named(&data.best);
        let worst = named(&data.worst);
        if best.is_some() || worst.is_some() {
            main.push_str(r#"<p class="extremes">"#);
            for (word, class, row) in [(s.best, "b-excellent", best), (s.worst, "b-needs-work", worst)] {
                if let Some(r) = row {
                    let _ = write!(
                        main,
                        r#"<span><span class="badge {class}">{}</span> <b>{}</b> {} {}</span> "#,
                        escape(word),
                        escape(&r.id),
                        escape(&format::opt_value(&Unit::Score, r.csat)),
                        escape(&interval(&Unit::Score, r.csat_ci))
                    );
                }
            }
            main.push_str("</p>");
        }
        // One axis per column, around the intervals shown, so that
        // neighbouring scripts separate by eye.
        let csat_axis = axis(rows.iter().filter_map(|r| r.csat_ci), (1.0, 5.0), 0.5);
        let resolution_axis = axis(rows.iter().filter_map(|r| r.resolution_ci), (0.0, 1.0), 0.1);
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let is = |x: Option<&ScriptRow>| x.is_some_and(|x| std::ptr::eq(*r, x));
                let (tone, mark) = if is(best) {
                    (
                        Tone::Better,
                        format!(r#" <span class="badge b-excellent">{}</span>"#, escape(s.best)),
                    )
                } else if is(worst) {
                    (
                        Tone::Worse,
                        format!(r#" <span class="badge b-needs-work">{}</span>"#, escape(s.worst)),
                    )
                } else if r.small_sample {
                    (
                        Tone::Neutral,
                        format!(r#" <span class="few">{}</span>"#, escape(s.small_sample)),
                    )
                } else {
                    (Tone::Plain, String::new())
                };
                let bar = |metric: &str, unit: &Unit, v: Option<f64>, ci: Option<(f64, f64)>, domain: (f64, f64)| {
                    interval_bar(
                        &format!(
                            "{} {metric}: {} {}",
                            r.id,
                            format::opt_value(unit, v),
                            interval(unit, ci)
                        ),
                        v,
                        ci,
                        domain,
                        None,
                        tone,
                    )
                };
                vec![
                    format!("{}{mark}", escape(&r.id)),
                    escape(&format::opt_value(&Unit::Score, r.csat)),
                    bar(s.csat, &Unit::Score, r.csat, r.csat_ci, csat_axis),
                    escape(&interval(&Unit::Score, r.csat_ci)),
                    escape(&format::value(&Unit::Count, r.csat_n as f64)),
                    escape(&format::opt_value(&Unit::Fraction, r.resolution_rate)),
                    bar(
                        s.resolution_rate,
                        &Unit::Fraction,
                        r.resolution_rate,
                        r.resolution_ci,
                        resolution_axis,
                    ),
                    escape(&interval(&Unit::Fraction, r.resolution_ci)),
                    escape(&format::value(&Unit::Count, r.conversations as f64)),
                ]
            })
            .collect();
        let csat_n = format!("{} n", s.csat);
        main.push_str(&table(
            "",
            &[
                Col(s.script, false),
                Col(s.csat, true),
                Col("", false),
                Col(s.confidence_interval, true),
                Col(&csat_n, true),
                Col(s.resolution_rate, true),
                Col("", false),
                Col(s.confidence_interval, true),
                Col(s.conversations, true),
            ],
            &body,
        ));
        main.push_str("</section>");
    }
    let _ = write!(main, r#"<p class="notes">{}</p>"#, escape(s.scripts_note));
    page(ctx, Page::Scripts, &main)
}

/// The axis of an interval column: the intervals' extent widened to
/// multiples of `step`, within `bounds` (the whole scale when there is none).
fn axis(intervals: impl Iterator<Item = (f64, f64)>, bounds: (f64, f64), step: f64) -> (f64, f64) {
    let (lo, hi) = intervals
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
            (lo.min(a), hi.max(b))
        });
    if lo > hi {
        return bounds;
    }
    let lo = ((lo / step).floor() * step).max(bounds.0);
    let hi = ((hi / step).ceil() * step).min(bounds.1);
    if hi - lo < step { bounds } else { (lo, hi) }
}
