//! Overview: one tile per KPI with its value, the change against the
//! previous period, its reference target and a trend.

use std::fmt::Write as _;

use crate::charts::{ChartSize, line_chart};
use crate::format;
use crate::html::escape;
use crate::i18n::Strings;
use crate::kpi::{self, Change, TargetStatus, Unit};
use crate::pages::{Col, numbers, table};
use crate::shell::{self, CsvPart, Page, PageContext, chart_csv_link};

/// One KPI tile.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiTile {
    /// Glossary key (`frt_s`); glossary keys get the page language's label.
    pub key: String,
    /// Label for keys outside the glossary (and the fallback).
    pub label: String,
    pub value: Option<f64>,
    pub unit: Unit,
    /// The value over the previous period of equal length.
    pub previous: Option<f64>,
    pub change: Option<Change>,
    pub target_status: TargetStatus,
    /// Bucket label (e.g. a date) → value.
    pub trend: Vec<(String, f64)>,
}

impl KpiTile {
    /// A tile with its change and target status worked out from the
    /// values (see [`Change::between`], [`kpi::target_status`]).
    pub fn new(
        key: &str,
        label: &str,
        unit: Unit,
        value: Option<f64>,
        previous: Option<f64>,
        trend: Vec<(String, f64)>,
    ) -> KpiTile {
        KpiTile {
            key: key.to_string(),
            label: label.to_string(),
            change: Change::between(&unit, value, previous),
            target_status: kpi::target_status(key, value),
            value,
            unit,
            previous,
            trend,
        }
    }
}

/// The overview page's data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverviewData {
    pub tiles: Vec<KpiTile>,
    /// Caveats to show under the tiles (e.g. the API's `notes`).
    pub notes: Vec<String>,
}

fn status_label(s: &Strings, t: TargetStatus) -> &'static str {
    match t {
        TargetStatus::Excellent => s.excellent,
        TargetStatus::Good => s.good,
        TargetStatus::NeedsWork => s.needs_work,
        TargetStatus::None => "",
    }
}

fn target_text(s: &Strings, key: &str) -> Option<String> {
    match key {
        "frt_s" => Some(format!("{}: < 2 min", s.target)),
        "response_s" => Some(format!("{}: < 30 s", s.target)),
        "csat" => Some(format!(
            "{}: ≥ 4.5 {} · 4.0–4.5 {} · < 4.0 {}",
            s.target, s.excellent, s.good, s.needs_work
        )),
        _ => None,
    }
}

fn tile(out: &mut String, ctx: &PageContext, t: &KpiTile) {
    let s = ctx.strings();
    let label = s.kpi_label(&t.key).unwrap_or(&t.label);
    let _ = write!(
        out,
        r#"<article class="tile t-{}" id="kpi-{}"><h2>{}</h2><p class="big" data-value="{}">{}</p>"#,
        t.target_status.class(),
        escape(&t.key),
        escape(label),
        // The unrounded figure, for checks against the API (and copy-paste).
        t.value
            .filter(|v| v.is_finite())
            .map(|v| v.to_string())
            .unwrap_or_default(),
        escape(&format::opt_value(&t.unit, t.value))
    );
    out.push_str(r#"<p class="chg">"#);
    if let Some(c) = t.change {
        let amount = c.amount();
        let arrow = if amount > 0.0 {
            "▲ "
        } else if amount < 0.0 {
            "▼ "
        } else {
            ""
        };
        let verdict = match kpi::higher_is_better(&t.key) {
            Some(higher) if amount != 0.0 => {
                if (amount > 0.0) == higher {
                    Some(("better", s.better))
                } else {
                    Some(("worse", s.worse))
                }
            }
            _ => None,
        };
        let (class, word) = verdict.map_or(("", String::new()), |(c, w)| (c, format!(" · {w}")));
        let _ = write!(
            out,
            r#"<span class="{class}">{arrow}{}{}</span> "#,
            escape(&format::change(&t.unit, c)),
            escape(&word)
        );
    }
    let _ = write!(
        out,
        "{} {}</p>",
        escape(s.vs_previous),
        escape(&format::opt_value(&t.unit, t.previous))
    );
    if let Some(text) = target_text(s, &t.key) {
        out.push_str(r#"<p class="tgt">"#);
        if t.target_status != TargetStatus::None {
            let _ = write!(
                out,
                r#"<span class="badge b-{}">{}</span> "#,
                t.target_status.class(),
                escape(status_label(s, t.target_status))
            );
        }
        let _ = write!(out, "{}</p>", escape(&text));
    }
    if !t.trend.is_empty() {
        out.push_str(&line_chart(
            label,
            &t.trend,
            &t.unit,
            ChartSize {
                width: 320.0,
                height: 130.0,
            },
        ));
        // The tile's own CSV: its value per bucket (the page's CSV holds
        // every tile's headline and trend in one long table).
        let _ = write!(
            out,
            r#"<p class="chart-links">{}</p>"#,
            chart_csv_link(ctx, Page::Overview.path(), CsvPart::Trend, &[("kpi", &t.key)])
        );
        let rows: Vec<Vec<String>> = t
            .trend
            .iter()
            .map(|(k, v)| vec![escape(k), escape(&format::value(&t.unit, *v))])
            .collect();
        out.push_str(&numbers(s, &table("", &[Col(s.date, false), Col(label, true)], &rows)));
    }
    out.push_str("</article>");
}

/// The overview page.
pub fn render_overview(ctx: &PageContext, data: &OverviewData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    if data.tiles.is_empty() {
        main.push_str(&crate::pages::empty(s));
    } else {
        main.push_str(r#"<section class="tiles">"#);
        for t in &data.tiles {
            tile(&mut main, ctx, t);
        }
        main.push_str("</section>");
    }
    if !data.notes.is_empty() {
        let _ = write!(main, r#"<section class="notes"><h2>{}</h2><ul>"#, escape(s.notes));
        for n in &data.notes {
            let _ = write!(main, "<li>{}</li>", escape(n));
        }
        main.push_str("</ul></section>");
    }
    shell::render(
        &shell::Frame {
            ctx,
            page: Page::Overview,
            path: Page::Overview.path(),
            heading: s.overview,
            controls: true,
        },
        &main,
    )
}
