//! The frame every page shares: header (tenant, language and theme
//! switches), navigation, the controls form, the CSV link, the stylesheet.
//!
//! State lives in the URL. The controls are a plain `GET` form, the
//! language and theme switches are links that keep every other parameter,
//! and "Download CSV" is the page's own URL with `format=csv`, so a view
//! can be bookmarked or sent and opens the same for the recipient (in the
//! recipient's language unless `lang=` was chosen explicitly). No script
//! runs on any page.
//!
//! A chart whose numbers are not the page's CSV has a small "CSV" link of
//! its own next to it: the same URL with `format=csv&part=<part>` (a
//! [`CsvPart`]) and, for one overview tile, `kpi=<key>`; every other
//! parameter of the view (dates, bucket, filters, language, theme) stays.

use std::fmt::Write as _;

use crate::html::{escape, href};
use crate::i18n::{Lang, Strings};

pub use model::{Bucket, Dimension};

fn dimension_label(d: Dimension, s: &Strings) -> &'static str {
    s.dimensions[d as usize]
}

/// Whether `a` and `b` are choices of the same control (a trend bucket for
/// a trend bucket, an interval for an interval).
fn same_kind(a: Bucket, b: Bucket) -> bool {
    a.interval_minutes().is_some() == b.interval_minutes().is_some()
}

fn bucket_label(b: Bucket, s: &Strings) -> &'static str {
    match b {
        Bucket::Minutes15 => s.minutes_15,
        Bucket::Minutes30 => s.minutes_30,
        Bucket::Hour => s.hour,
        Bucket::Day => s.day,
        Bucket::Week => s.week,
        Bucket::Month => s.month,
    }
}

/// Light, dark, or whatever the browser prefers (`prefers-color-scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    #[default]
    Auto,
    Light,
    Dark,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Auto, Theme::Light, Theme::Dark];

    pub fn name(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// A `theme=` value; anything unknown is [`Theme::Auto`].
    pub fn parse(s: Option<&str>) -> Theme {
        match s {
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            _ => Theme::Auto,
        }
    }

    fn label(self, s: &Strings) -> &'static str {
        match self {
            Theme::Auto => s.theme_auto,
            Theme::Light => s.theme_light,
            Theme::Dark => s.theme_dark,
        }
    }
}

/// A named date range the controls offer as a one-click link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Last7Days,
    LastWeek,
    ThisMonth,
    LastMonth,
    Today,
    Tomorrow,
    Next7Days,
}

impl Preset {
    fn label(self, s: &Strings) -> &'static str {
        s.presets[self as usize]
    }
}

/// A preset with its dates (`from` inclusive, `to` exclusive), worked out
/// by the caller (the pages have no clock).
#[derive(Debug, Clone, PartialEq)]
pub struct RangePreset {
    pub preset: Preset,
    pub from: String,
    pub to: String,
}

/// The view a page shows, as the controls form and the URL carry it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Controls {
    /// `YYYY-MM-DD`, inclusive, local to `time_zone`.
    pub from: String,
    /// `YYYY-MM-DD`, exclusive.
    pub to: String,
    pub bucket: Bucket,
    /// IANA name (`Asia/Shanghai`).
    pub time_zone: String,
    /// Active filters; a value may list several, comma-separated, as in
    /// `GET /v1/kpis`.
    pub filters: Vec<(Dimension, String)>,
    /// Values to suggest per dimension (a `<datalist>`); may be empty.
    pub suggestions: Vec<(Dimension, Vec<String>)>,
    /// Date ranges offered as links next to the date fields; may be empty.
    pub presets: Vec<RangePreset>,
}

impl Controls {
    /// The query pairs of this view (not language or theme).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (k, v) in [("from", &self.from), ("to", &self.to), ("tz", &self.time_zone)] {
            if !v.is_empty() {
                pairs.push((k.to_string(), v.clone()));
            }
        }
        pairs.push(("bucket".to_string(), self.bucket.name().to_string()));
        for d in Dimension::ALL {
            for (fd, v) in &self.filters {
                if *fd == d && !v.is_empty() {
                    pairs.push((d.name().to_string(), v.clone()));
                }
            }
        }
        pairs
    }

    fn filter(&self, d: Dimension) -> &str {
        self.filters
            .iter()
            .find(|(fd, _)| *fd == d)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What every page needs besides its data: whose data, in which language
/// and theme, and the view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PageContext {
    /// The tenant of the signed-in key (shown in the header).
    pub tenant: String,
    pub lang: Lang,
    /// `lang=` was in the URL: links keep it. Otherwise the language came
    /// from `Accept-Language` and a shared link opens in the recipient's.
    pub lang_pinned: bool,
    pub theme: Theme,
    pub controls: Controls,
}

impl PageContext {
    /// The context of a request for a page: the view read from the URL's
    /// query pairs (`from`, `to`, `bucket`, `tz`, one parameter per
    /// [`Dimension`], `lang`, `theme`), the language negotiated from `lang=`
    /// and `accept_language`. A parameter that is absent, empty or not
    /// understood takes its value from `defaults` (the server's choice of
    /// period and the tenant's time zone); so does a `bucket` of the other
    /// kind than `defaults.bucket` (a staffing interval on a trend page, or
    /// the reverse). Other parameters (`format`) are the caller's. The last
    /// of repeated parameters wins.
    pub fn from_query(
        tenant: &str,
        pairs: &[(String, String)],
        accept_language: Option<&str>,
        defaults: &Controls,
    ) -> PageContext {
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim())
        };
        let lang_param = get("lang").filter(|l| Lang::parse(l).is_some());
        let mut filters: Vec<(Dimension, String)> = Vec::new();
        for d in Dimension::ALL {
            if let Some(v) = get(d.name()) {
                filters.push((d, v.to_string()));
            }
        }
        PageContext {
            tenant: tenant.to_string(),
            lang: Lang::negotiate(lang_param, accept_language),
            lang_pinned: lang_param.is_some(),
            theme: Theme::parse(get("theme")),
            controls: Controls {
                from: get("from").map_or_else(|| defaults.from.clone(), str::to_string),
                to: get("to").map_or_else(|| defaults.to.clone(), str::to_string),
                bucket: get("bucket")
                    .and_then(Bucket::parse)
                    .filter(|b| same_kind(*b, defaults.bucket))
                    .unwrap_or(defaults.bucket),
                time_zone: get("tz").map_or_else(|| defaults.time_zone.clone(), str::to_string),
                filters: if filters.is_empty() {
                    defaults.filters.clone()
                } else {
                    filters
                },
                suggestions: defaults.suggestions.clone(),
                presets: defaults.presets.clone(),
            },
        }
    }

    pub fn strings(&self) -> &'static Strings {
        self.lang.strings()
    }

    /// Query pairs of the view plus the pinned language and chosen theme.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = self.controls.query_pairs();
        if self.lang_pinned {
            pairs.push(("lang".to_string(), self.lang.code().to_string()));
        }
        if self.theme != Theme::Auto {
            pairs.push(("theme".to_string(), self.theme.name().to_string()));
        }
        pairs
    }

    /// A link to `path` with this view's parameters.
    pub fn link(&self, path: &str) -> String {
        href(path, &self.query_pairs())
    }

    /// This view's CSV: the same URL with `format=csv`.
    pub fn csv_link(&self, path: &str) -> String {
        let mut pairs = self.query_pairs();
        pairs.push(("format".to_string(), "csv".to_string()));
        href(path, &pairs)
    }

    /// The CSV of one chart of this view: [`PageContext::csv_link`] plus
    /// `part=<part>` and `extra` pairs (`kpi=<key>` for one overview tile).
    pub fn csv_part_link(&self, path: &str, part: CsvPart, extra: &[(&str, &str)]) -> String {
        let mut pairs = self.query_pairs();
        pairs.push(("format".to_string(), "csv".to_string()));
        pairs.push(("part".to_string(), part.name().to_string()));
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        href(path, &pairs)
    }
}

/// A chart's own CSV, the `part=` of `format=csv`: only charts whose
/// numbers the page's CSV does not already hold have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvPart {
    /// The trend charts: each overview tile's value per bucket, and the
    /// conversations per bucket of the busiest channels, teams or tags.
    Trend,
}

impl CsvPart {
    pub fn name(self) -> &'static str {
        match self {
            CsvPart::Trend => "trend",
        }
    }

    pub fn parse(s: &str) -> Option<CsvPart> {
        match s {
            "trend" => Some(CsvPart::Trend),
            _ => None,
        }
    }
}

/// The small "CSV" link next to a chart (see [`PageContext::csv_part_link`]).
pub(crate) fn chart_csv_link(ctx: &PageContext, path: &str, part: CsvPart, extra: &[(&str, &str)]) -> String {
    let s = ctx.strings();
    format!(
        r#"<a class="chart-csv" href="{}" title="{}" download>{}</a>"#,
        escape(&ctx.csv_part_link(path, part, extra)),
        escape(s.chart_csv_title),
        escape(s.chart_csv)
    )
}

/// A navigable page of the dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Channels,
    TeamsAgents,
    Tags,
    Traffic,
    Scripts,
    Experiments,
    Staffing,
}

impl Page {
    pub const ALL: [Page; 8] = [
        Page::Overview,
        Page::Channels,
        Page::TeamsAgents,
        Page::Tags,
        Page::Traffic,
        Page::Scripts,
        Page::Experiments,
        Page::Staffing,
    ];

    /// The page's path on the server.
    pub fn path(self) -> &'static str {
        match self {
            Page::Overview => "/",
            Page::Channels => "/channels",
            Page::TeamsAgents => "/teams",
            Page::Tags => "/tags",
            Page::Traffic => "/traffic",
            Page::Scripts => "/scripts",
            Page::Experiments => "/experiments",
            Page::Staffing => "/staffing",
        }
    }

    /// The choices of the page's bucket control: trend buckets where the
    /// page draws trends, intervals on staffing, none where time is not
    /// an axis (the heatmap is weekday × hour by definition; scripts and
    /// experiments compare totals over the period).
    pub fn buckets(self) -> &'static [Bucket] {
        match self {
            Page::Overview | Page::Channels | Page::TeamsAgents | Page::Tags => &Bucket::TRENDS,
            Page::Staffing => &Bucket::INTERVALS,
            Page::Traffic | Page::Scripts | Page::Experiments => &[],
        }
    }

    /// The bucket a page shows when the URL names none of its choices.
    pub fn default_bucket(self) -> Bucket {
        match self {
            Page::Staffing => Bucket::Minutes30,
            _ => Bucket::Day,
        }
    }

    /// Whether the time zone is the view's choice. Elsewhere it is the
    /// tenant's reporting zone (the KPI and analysis APIs' windows), shown
    /// read-only.
    pub fn time_zone_editable(self) -> bool {
        self == Page::Staffing
    }

    pub fn title(self, s: &Strings) -> &'static str {
        match self {
            Page::Overview => s.overview,
            Page::Channels => s.channels,
            Page::TeamsAgents => s.teams_agents,
            Page::Tags => s.tags,
            Page::Traffic => s.traffic,
            Page::Scripts => s.scripts,
            Page::Experiments => s.experiments,
            Page::Staffing => s.staffing,
        }
    }
}

/// One full page of the signed-in dashboards.
pub(crate) struct Frame<'a> {
    pub(crate) ctx: &'a PageContext,
    /// Which navigation entry is current.
    pub(crate) page: Page,
    /// This URL's path (form action, switches, CSV).
    pub(crate) path: &'a str,
    /// `<h1>` (already plain text; escaped here).
    pub(crate) heading: &'a str,
    /// Show the controls form and the CSV link.
    pub(crate) controls: bool,
}

pub(crate) fn document(title: &str, lang: Lang, theme: Theme, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + CSS.len() + 512);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="{}" data-theme="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>{}</title><style>{CSS}</style></head><body>{body}</body></html>"#,
        lang.code(),
        theme.name(),
        escape(title),
    );
    out
}

pub(crate) fn render(frame: &Frame<'_>, main: &str) -> String {
    let ctx = frame.ctx;
    let s = ctx.strings();
    let mut b = String::with_capacity(main.len() + 8192);
    // Header: brand, tenant, switches.
    let _ = write!(
        b,
        r#"<header class="top"><a class="brand" href="{}">cxlake</a><span class="tenant">{}: <b>{}</b></span><span class="switches"><span class="switch" role="group" aria-label="{}">"#,
        escape(&ctx.link(Page::Overview.path())),
        escape(s.tenant),
        escape(&ctx.tenant),
        escape(s.language)
    );
    for lang in Lang::ALL {
        let mut pairs = ctx.controls.query_pairs();
        pairs.push(("lang".into(), lang.code().into()));
        if ctx.theme != Theme::Auto {
            pairs.push(("theme".into(), ctx.theme.name().into()));
        }
        switch_link(
            &mut b,
            &href(frame.path, &pairs),
            lang.native_name(),
            lang == ctx.lang,
            Some(lang.code()),
        );
    }
    let _ = write!(
        b,
        r#"</span><span class="switch" role="group" aria-label="{}">"#,
        escape(s.theme)
    );
    for theme in Theme::ALL {
        let mut pairs = ctx.controls.query_pairs();
        if ctx.lang_pinned {
            pairs.push(("lang".into(), ctx.lang.code().into()));
        }
        if theme != Theme::Auto {
            pairs.push(("theme".into(), theme.name().into()));
        }
        switch_link(
            &mut b,
            &href(frame.path, &pairs),
            theme.label(s),
            theme == ctx.theme,
            None,
        );
    }
    // Signing out is a POST (a link could be prefetched); the cookie is
    // SameSite=Strict, so another site cannot sign anyone out either.
    let _ = write!(
        b,
        r#"</span><form class="logout" method="post" action="/logout"><button type="submit">{}</button></form></span></header>"#,
        escape(s.sign_out)
    );
    // Navigation.
    let _ = write!(b, r#"<nav class="pages" aria-label="{}">"#, escape(s.nav_label));
    for page in Page::ALL {
        let current = if page == frame.page {
            r#" aria-current="page""#
        } else {
            ""
        };
        // Staffing's dates are a forecast horizon (tomorrow by default) and
        // its bucket an interval, the other pages' a past period and a trend
        // bucket: neither crosses between them.
        let link = if (page == Page::Staffing) != (frame.page == Page::Staffing) {
            let pairs: Vec<(String, String)> = ctx
                .query_pairs()
                .into_iter()
                .filter(|(k, _)| k != "from" && k != "to" && k != "bucket" && k != "tz")
                .collect();
            href(page.path(), &pairs)
        } else {
            ctx.link(page.path())
        };
        let _ = write!(
            b,
            r#"<a href="{}"{current}>{}</a>"#,
            escape(&link),
            escape(page.title(s))
        );
    }
    b.push_str("</nav>");
    if frame.controls {
        controls_form(&mut b, ctx, frame.page, frame.path);
    }
    let _ = write!(b, r#"<main><div class="head"><h1>{}</h1>"#, escape(frame.heading));
    if frame.controls {
        let c = &ctx.controls;
        // No dates: the page's own period (an experiment's whole run).
        let period = if c.from.is_empty() && c.to.is_empty() {
            String::new()
        } else {
            format!("{} – {} · ", c.from, c.to)
        };
        let _ = write!(
            b,
            r#"<p class="window">{}{}</p><a class="csv" href="{}" download>{}</a>"#,
            escape(&period),
            escape(&c.time_zone),
            escape(&ctx.csv_link(frame.path)),
            escape(s.download_csv)
        );
    }
    b.push_str("</div>");
    b.push_str(main);
    b.push_str("</main>");
    let title = format!("{} · {} · cxlake", frame.heading, ctx.tenant);
    document(&title, ctx.lang, ctx.theme, &b)
}

fn switch_link(out: &mut String, url: &str, label: &str, current: bool, hreflang: Option<&str>) {
    let cur = if current { r#" aria-current="true""# } else { "" };
    let hl = hreflang
        .map(|h| format!(r#" hreflang="{}" lang="{}""#, escape(h), escape(h)))
        .unwrap_or_default();
    let _ = write!(out, r#"<a href="{}"{cur}{hl}>{}</a>"#, escape(url), escape(label));
}

fn controls_form(b: &mut String, ctx: &PageContext, page: Page, path: &str) {
    let s = ctx.strings();
    let c = &ctx.controls;
    let _ = write!(
        b,
        r#"<form class="controls" method="get" action="{}" aria-label="{}"><div class="fields">"#,
        escape(path),
        escape(s.controls)
    );
    let _ = write!(
        b,
        r#"<label>{}<input type="date" name="from" value="{}"></label><label>{}<input type="date" name="to" value="{}"></label>"#,
        escape(s.from),
        escape(&c.from),
        escape(s.to),
        escape(&c.to),
    );
    let buckets = page.buckets();
    if buckets.is_empty() {
        // Kept for the pages that have the control.
        let _ = write!(b, r#"<input type="hidden" name="bucket" value="{}">"#, c.bucket.name());
    } else {
        let label = if page == Page::Staffing { s.interval } else { s.bucket };
        let _ = write!(b, r#"<label>{}<select name="bucket">"#, escape(label));
        for &bucket in buckets {
            let sel = if bucket == c.bucket { " selected" } else { "" };
            let _ = write!(
                b,
                r#"<option value="{}"{sel}>{}</option>"#,
                bucket.name(),
                escape(bucket_label(bucket, s))
            );
        }
        b.push_str("</select></label>");
    }
    if page.time_zone_editable() {
        let _ = write!(
            b,
            r#"<label>{}<input type="text" name="tz" value="{}" placeholder="Asia/Shanghai" autocomplete="off"></label></div>"#,
            escape(s.time_zone),
            escape(&c.time_zone)
        );
    } else {
        let _ = write!(
            b,
            r#"<label>{}<input type="text" name="tz" value="{}" readonly title="{}"></label></div>"#,
            escape(s.time_zone),
            escape(&c.time_zone),
            escape(s.time_zone_of_tenant)
        );
    }
    if !c.presets.is_empty() {
        let _ = write!(b, r#"<p class="presets" aria-label="{}">"#, escape(s.quick_ranges));
        for p in &c.presets {
            let mut pairs: Vec<(String, String)> = ctx
                .query_pairs()
                .into_iter()
                .filter(|(k, _)| k != "from" && k != "to")
                .collect();
            pairs.splice(0..0, [("from".into(), p.from.clone()), ("to".into(), p.to.clone())]);
            let cur = if p.from == c.from && p.to == c.to {
                r#" aria-current="true""#
            } else {
                ""
            };
            let _ = write!(
                b,
                r#"<a href="{}"{cur}>{}</a>"#,
                escape(&href(path, &pairs)),
                escape(p.preset.label(s))
            );
        }
        b.push_str("</p>");
    }
    // Collapsed even when filters are active (they would push the page
    // below the fold on a phone); the summary names them instead.
    let active: Vec<String> = c
        .filters
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(d, v)| format!("{} = {v}", dimension_label(*d, s)))
        .collect();
    let _ = write!(
        b,
        r#"<details class="filters"><summary>{}{}</summary><div class="fields">"#,
        escape(s.filters),
        escape(&if active.is_empty() {
            String::new()
        } else {
            format!(": {}", active.join(" · "))
        })
    );
    for d in Dimension::ALL {
        let suggestions = c.suggestions.iter().find(|(sd, _)| *sd == d).map(|(_, v)| v);
        let list = if suggestions.is_some_and(|v| !v.is_empty()) {
            format!(r#" list="dl-{}""#, d.name())
        } else {
            String::new()
        };
        let _ = write!(
            b,
            r#"<label>{}<input type="text" name="{}" value="{}"{list} autocomplete="off"></label>"#,
            escape(dimension_label(d, s)),
            d.name(),
            escape(c.filter(d))
        );
        if let Some(values) = suggestions.filter(|v| !v.is_empty()) {
            let _ = write!(b, r#"<datalist id="dl-{}">"#, d.name());
            for v in values {
                let _ = write!(b, r#"<option value="{}"></option>"#, escape(v));
            }
            b.push_str("</datalist>");
        }
    }
    b.push_str("</div></details>");
    if ctx.lang_pinned {
        let _ = write!(b, r#"<input type="hidden" name="lang" value="{}">"#, ctx.lang.code());
    }
    if ctx.theme != Theme::Auto {
        let _ = write!(b, r#"<input type="hidden" name="theme" value="{}">"#, ctx.theme.name());
    }
    let _ = write!(b, r#"<button type="submit">{}</button></form>"#, escape(s.apply));
}

/// The stylesheet: CSS variables for both themes, grid layouts that fold
/// to one column on a phone, chart classes.
const CSS: &str = concat!(
    ":root{--bg:#f6f7f9;--fg:#1b1f24;--muted:#5b6470;--card:#fff;--line:#d9dde3;--accent:#2563eb;",
    "--accent2:#d97706;--excellent:#15803d;--good:#0e7490;--bad:#b91c1c;--band:rgba(37,99,235,.18);color-scheme:light}",
    "@media (prefers-color-scheme:dark){:root:not([data-theme=light]){--bg:#111418;--fg:#e6e9ed;--muted:#9aa4b1;",
    "--card:#1a1f26;--line:#2e3641;--accent:#60a5fa;--accent2:#fbbf24;--excellent:#4ade80;--good:#22d3ee;--bad:#f87171;",
    "--band:rgba(96,165,250,.25);color-scheme:dark}}",
    ":root[data-theme=dark]{--bg:#111418;--fg:#e6e9ed;--muted:#9aa4b1;--card:#1a1f26;--line:#2e3641;--accent:#60a5fa;",
    "--accent2:#fbbf24;--excellent:#4ade80;--good:#22d3ee;--bad:#f87171;--band:rgba(96,165,250,.25);color-scheme:dark}",
    "*{box-sizing:border-box}",
    "body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,",
    "'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;overflow-wrap:anywhere}",
    "a{color:var(--accent)}",
    ".top{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:10px 16px;background:var(--card);",
    "border-bottom:1px solid var(--line)}",
    ".brand{font-weight:700;text-decoration:none;color:var(--fg)}.tenant{color:var(--muted)}",
    ".switches{margin-left:auto;display:flex;flex-wrap:wrap;gap:8px}",
    ".switch{display:inline-flex;border:1px solid var(--line);border-radius:6px;overflow:hidden}",
    ".switch a{padding:2px 8px;text-decoration:none;color:var(--muted)}",
    ".switch a[aria-current]{background:var(--accent);color:var(--card)}",
    ".logout{margin:0}.logout button{font:inherit;color:var(--muted);background:none;border:1px solid var(--line);",
    "border-radius:6px;padding:1px 8px;cursor:pointer}",
    ".pages{display:flex;flex-wrap:wrap;gap:4px;padding:8px 16px;border-bottom:1px solid var(--line)}",
    ".pages a{padding:4px 10px;border-radius:6px;text-decoration:none;color:var(--fg)}",
    ".pages a[aria-current]{background:var(--accent);color:var(--card)}",
    ".controls{padding:10px 16px;border-bottom:1px solid var(--line);display:grid;gap:8px}",
    ".fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}",
    ".controls label{display:grid;gap:2px;font-size:12px;color:var(--muted)}",
    ".controls input,.controls select,.controls button,.login input,.login button{font:inherit;color:var(--fg);",
    "background:var(--card);border:1px solid var(--line);border-radius:6px;padding:5px 8px;min-width:0;width:100%}",
    ".controls button,.login button{background:var(--accent);color:var(--card);border:0;width:auto;justify-self:start;",
    "padding:6px 16px;cursor:pointer}",
    ".filters summary{cursor:pointer;color:var(--muted)}.filters .fields{margin-top:8px}",
    "main{padding:12px 16px 32px;max-width:1400px;margin:0 auto}",
    ".head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px}h1{font-size:22px;margin:8px 0}",
    "h2{font-size:15px;margin:0 0 6px}main>h2{margin:16px 0 8px}.window{color:var(--muted);margin:0}.csv{margin-left:auto}",
    ".ctitle{display:flex;align-items:baseline;gap:8px}.chart-csv{font-size:12px;font-weight:400;margin-left:auto}",
    ".chart-links{margin:0;font-size:12px;text-align:right}",
    ".tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:12px}",
    ".grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,460px),1fr));gap:12px}",
    ".card,.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;min-width:0}",
    ".card{margin:12px 0}.grid2 .card{margin:0}",
    ".tile{border-top:4px solid var(--line)}",
    ".tile.t-excellent{border-top-color:var(--excellent)}.tile.t-good{border-top-color:var(--good)}",
    ".tile.t-needs-work{border-top-color:var(--bad)}",
    ".big{font-size:26px;font-weight:650;margin:0}.chg{margin:2px 0;font-size:13px;color:var(--muted)}",
    ".chg .better{color:var(--excellent)}.chg .worse{color:var(--bad)}",
    ".badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:10px;border:1px solid currentColor}",
    ".b-excellent{color:var(--excellent)}.b-good{color:var(--good)}.b-needs-work{color:var(--bad)}",
    ".b-ship{color:var(--excellent)}.b-stop{color:var(--bad)}.b-keep{color:var(--accent2)}",
    ".tgt{margin:4px 0;font-size:12px;color:var(--muted)}",
    ".tw{overflow-x:auto;max-width:100%}",
    "table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}",
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap}",
    "td.n,th.n{text-align:right}caption{text-align:left;color:var(--muted);padding:4px 0}",
    "details.data summary{cursor:pointer;color:var(--muted);font-size:12px;margin-top:4px}",
    ".empty{color:var(--muted)}.notes{color:var(--muted);font-size:12px}",
    ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 0}",
    ".sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}",
    ".sw.ln{background:var(--accent)}.sw.act{background:var(--accent2)}.sw.band{background:var(--band)}",
    ".decision{font-size:16px}.alert{border-left:4px solid var(--bad)}.ok{border-left:4px solid var(--excellent)}",
    ".chart{display:block;width:100%;height:auto;margin:6px 0}",
    ".chart text{fill:var(--muted);font-size:11px}.chart .lbl,.chart .val{fill:var(--fg)}",
    ".chart .grid{stroke:var(--line);stroke-width:1}",
    ".chart .ln{fill:none;stroke:var(--accent);stroke-width:2;stroke-linejoin:round}",
    ".chart .dot{fill:var(--accent)}.chart .bar,.chart .cell{fill:var(--accent)}",
    ".chart .sbar{fill:transparent}.chart .sarea{fill:var(--band)}.chart .band{fill:var(--band)}",
    ".chart .act{fill:none;stroke:var(--accent2);stroke-width:2}.chart .adot{fill:var(--accent2)}",
    ".chart .zero{stroke:var(--fg);stroke-dasharray:4 3}",
    ".chart .ci{stroke-width:2.5}.chart .ci.neutral{stroke:var(--muted)}.chart .ci.better{stroke:var(--excellent)}",
    ".chart .ci.worse{stroke:var(--bad)}.chart .est.neutral{fill:var(--muted)}.chart .est.better{fill:var(--excellent)}",
    ".chart .est.worse{fill:var(--bad)}",
    ".heat{max-width:760px}.forest{max-width:600px}.bars{max-width:560px}.band-chart,.step{max-width:820px}",
    ".forest text{font-size:13px}",
    ".ramp{display:inline-block;width:120px;height:10px;border-radius:2px;vertical-align:middle;",
    "background:linear-gradient(to right,var(--band),var(--accent))}",
    ".chart.ib{display:inline-block;width:160px;max-width:40vw;height:auto;margin:0;vertical-align:middle}",
    ".chart.ib .ci{stroke-width:3}.chart .ci.plain{stroke:var(--accent)}.chart .est.plain{fill:var(--accent)}.mini h3{font-size:13px;margin:0;font-weight:600}",
    ".few{color:var(--muted);font-size:11px}.extremes{display:flex;flex-wrap:wrap;gap:4px 16px;margin:0 0 8px}",
    ".dayparts th,.dayparts td{white-space:normal}",
    ".presets{display:flex;flex-wrap:wrap;gap:4px 12px;margin:0;font-size:13px}",
    ".presets a[aria-current]{font-weight:650;text-decoration:none;color:var(--fg)}",
    ".controls input[readonly]{color:var(--muted);background:transparent}",
    ".login{max-width:420px;margin:10vh auto;padding:24px;display:grid;gap:12px}",
    ".login label{display:grid;gap:4px}.login .switch{justify-self:start}.err{color:var(--bad)}",
    "@media (max-width:600px){main{padding:8px 10px 24px}.top,.pages,.controls{padding-left:10px;padding-right:10px}",
    ".tiles{grid-template-columns:1fr}.fields{grid-template-columns:1fr 1fr}.csv{margin-left:0}}",
);

#[cfg(test)]
mod tests;
