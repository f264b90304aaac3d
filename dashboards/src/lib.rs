//! # dashboards — manager web pages with server-side SVG charts
//!
//! Turns plain Rust data structs into complete HTML pages: the overview of
//! every glossary KPI (tiles with the period-over-period change, reference
//! targets coloured, a trend per tile), channels, teams and agents, tags,
//! the weekday × hour traffic heatmap, scripts, the experiment list and
//! result (forest plot of lifts, sample-ratio check, decision), staffing
//! (forecast band against actuals, required agents), plus `/login` and an
//! error page.
//!
//! ```
//! use dashboards::{KpiTile, OverviewData, PageContext, Unit, render_overview};
//!
//! let ctx = PageContext { tenant: "acme".into(), ..PageContext::default() };
//! let data = OverviewData {
//!     tiles: vec![KpiTile::new("frt_s", "FRT", Unit::Seconds, Some(95.0), Some(110.0), vec![])],
//!     notes: vec![],
//! };
//! let html = render_overview(&ctx, &data);
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("1m 35s"));
//! ```
//!
//! ## What it does
//!
//! - **Pages** ([`render_overview`], …): one function per page taking a
//!   [`PageContext`] (tenant, language, theme, the view's [`Controls`]) and
//!   the page's data struct, returning the whole document. Each page has
//!   the header (tenant, language and theme switches), the navigation, a
//!   `GET` controls form (date range with one-click [`Preset`]s, the page's
//!   bucket choices — trend buckets, staffing intervals, or none where time
//!   is not an axis, see [`Page::buckets`] — time zone, a filter per
//!   [`Dimension`]) and a "Download CSV" link to the same URL with
//!   `format=csv`: the state lives in the URL, so a view can be shared.
//!   A chart whose numbers that CSV does not hold (the trends) has a small
//!   "CSV" link of its own, `format=csv&part=trend` ([`CsvPart`]).
//! - **Charts** ([`charts`]): line, bar, heatmap, forest, band and step
//!   charts as inline SVG, styled by the page's CSS, each with `<title>` and
//!   `aria-label`, and never without a table of its numbers.
//! - **Languages** ([`Lang`]): English and Simplified Chinese string tables;
//!   [`Lang::negotiate`] picks by `lang=` then `Accept-Language`.
//! - **Themes** ([`Theme`]): `prefers-color-scheme` by default, `theme=light`
//!   / `theme=dark` to override; responsive CSS grid down to a 375 px phone.
//! - **Escaping** ([`escape`]): every data string is HTML-escaped; link
//!   values are percent-encoded first ([`url_encode`]).
//!
//! ## What it does not do
//!
//! Rendering is a pure function of the data handed to it: no lake, no
//! server, no clock, no I/O, no randomness — the same input gives the same
//! bytes, so every page is testable without starting anything. This crate
//! does not query KPIs, check keys, set cookies or parse requests (the
//! `api` crate does, and fills these structs from the same code as the
//! JSON API, so a page's numbers equal the API's). No JavaScript runs on
//! any page; nothing is loaded from a CDN and no external font is used;
//! there is no Node build step. No dependencies.

pub mod charts;
mod format;
mod html;
mod i18n;
mod kpi;
mod pages;
mod shell;
#[cfg(test)]
mod testing;

pub use html::{escape, href, url_encode};
pub use i18n::{Lang, Strings};
pub use kpi::{
    CSAT_EXCELLENT, CSAT_GOOD, Change, FRT_TARGET_S, KPI_KEYS, RESPONSE_TARGET_S, TargetStatus, Unit, higher_is_better,
    target_status, unit_of,
};
pub use pages::{
    AgentRow, BreakdownRow, BreakdownStats, ChannelsData, DecisionSummary, ErrorData, ExperimentResultData,
    ExperimentSummary, ExperimentsData, KeyTrend, KpiTile, LoginData, MetricResult, OverviewData, ScriptKind,
    ScriptRow, ScriptsData, SrmCheck, StaffingData, StaffingInterval, TagPair, TagsData, TeamsData, TrafficData,
    VariantComparison, VariantShare, Verdict, render_channels, render_error, render_experiment_result,
    render_experiments, render_login, render_overview, render_scripts, render_staffing, render_tags, render_teams,
    render_traffic,
};
pub use shell::{Bucket, Controls, CsvPart, Dimension, Page, PageContext, Preset, RangePreset, Theme};
