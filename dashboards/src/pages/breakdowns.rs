//! Pages that break the KPIs down by a dimension: channels, teams and
//! agents, tags (with co-occurrence), scripts (templates and quick replies
//! by CSAT).

use std::fmt::Write as _;

use crate::charts::bar_chart;
use crate::format;
use crate::html::escape;
use crate::i18n::Strings;
use crate::kpi::Unit;
use crate::pages::{Col, empty, numbers, table};
use crate::shell::{self, Page, PageContext};

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

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelsData {
    pub rows: Vec<BreakdownRow>,
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
    /// Conversations with a CSAT score behind `csat`.
    pub csat_n: u64,
    pub resolution_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptsData {
    pub scripts: Vec<ScriptRow>,
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

/// Two bar charts (volume, and mean FRT or CSAT) and the full table.
fn breakdown(out: &mut String, s: &Strings, first: &str, volume_title: &str, rows: &[BreakdownRow]) {
    if rows.is_empty() {
        out.push_str(&empty(s));
        return;
    }
    let volume: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.stats.conversations as f64))
        .collect();
    let frt: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.stats.frt_s.unwrap_or(f64::NAN)))
        .collect();
    let csat: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.stats.csat.unwrap_or(f64::NAN)))
        .collect();
    let _ = write!(
        out,
        r#"<div class="grid2"><section class="card"><h2>{}</h2>{}</section><section class="card"><h2>{}</h2>{}</section><section class="card"><h2>{}</h2>{}</section></div>"#,
        escape(volume_title),
        bar_chart(volume_title, &volume, &Unit::Count),
        escape(s.frt),
        bar_chart(s.frt, &frt, &Unit::Seconds),
        escape(s.csat),
        bar_chart(s.csat, &csat, &Unit::Score),
    );
    let _ = write!(
        out,
        r#"<section class="card"><h2>{}</h2>{}</section>"#,
        escape(first),
        rows_table(s, first, rows)
    );
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
    page(ctx, Page::Channels, &main)
}

/// Teams and agents: the team breakdown, then every agent.
pub fn render_teams(ctx: &PageContext, data: &TeamsData) -> String {
    let s = ctx.strings();
    let mut main = format!("<h2>{}</h2>", escape(s.teams));
    breakdown(&mut main, s, s.team, s.conversations_by_team, &data.teams);
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
        main.push_str(&numbers(
            s,
            &table(
                "",
                &[Col(s.tag, false), Col(s.tag, false), Col(s.together, true)],
                &body,
            ),
        ));
    }
    main.push_str("</section>");
    page(ctx, Page::Tags, &main)
}

/// Scripts: templates and quick replies by the CSAT of the conversations
/// they were used in.
pub fn render_scripts(ctx: &PageContext, data: &ScriptsData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    if data.scripts.is_empty() {
        main.push_str(&empty(s));
        return page(ctx, Page::Scripts, &main);
    }
    let kind = |k: ScriptKind| match k {
        ScriptKind::Template => s.template,
        ScriptKind::QuickReply => s.quick_reply,
    };
    let bars: Vec<(String, f64)> = data
        .scripts
        .iter()
        .map(|r| (r.id.clone(), r.csat.unwrap_or(f64::NAN)))
        .collect();
    let _ = write!(
        main,
        r#"<section class="card"><h2>{}</h2>{}</section>"#,
        escape(s.csat_by_script),
        bar_chart(s.csat_by_script, &bars, &Unit::Score)
    );
    let body: Vec<Vec<String>> = data
        .scripts
        .iter()
        .map(|r| {
            vec![
                escape(&r.id),
                escape(kind(r.kind)),
                escape(&format::value(&Unit::Count, r.conversations as f64)),
                escape(&format::opt_value(&Unit::Score, r.csat)),
                escape(&format::value(&Unit::Count, r.csat_n as f64)),
                escape(&format::opt_value(&Unit::Fraction, r.resolution_rate)),
            ]
        })
        .collect();
    let csat_n = format!("{} n", s.csat);
    let _ = write!(
        main,
        r#"<section class="card">{}</section>"#,
        table(
            "",
            &[
                Col(s.script, false),
                Col(s.kind, false),
                Col(s.conversations, true),
                Col(s.csat, true),
                Col(&csat_n, true),
                Col(s.resolution_rate, true),
            ],
            &body,
        )
    );
    page(ctx, Page::Scripts, &main)
}
