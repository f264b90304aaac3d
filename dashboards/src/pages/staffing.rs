//! Staffing: forecast arrivals against actuals with the P10–P90 band, and
//! the agents each interval needs (`GET /v1/forecast/staffing`).

use std::fmt::Write as _;

use crate::charts::{BandPoint, ChartSize, band_chart, step_chart};
use crate::format;
use crate::html::escape;
use crate::i18n::Strings;
use crate::kpi::Unit;
use crate::pages::{Col, empty, numbers, table};
use crate::shell::{self, Page, PageContext};

/// One forecast interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaffingInterval {
    /// Local start, as shown (`Tue 18:30`).
    pub label: String,
    /// Arrivals that happened, once the interval is past.
    pub actual: Option<f64>,
    pub mean: f64,
    pub p10: f64,
    pub p90: f64,
    /// Agents to schedule (after shrinkage).
    pub agents: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaffingData {
    /// The queue key (`channel:whatsapp,language:en`; `*` for all).
    pub queue: String,
    pub interval_minutes: u32,
    /// The forecast method the backtest chose.
    pub method: String,
    /// Service level target: share answered within `target_s`.
    pub service_level: Option<(f64, f64)>,
    pub intervals: Vec<StaffingInterval>,
}

/// The local hour of an interval label (`18:30`, `11-22 18:30`).
fn label_hour(label: &str) -> Option<usize> {
    let hhmm = label.get(label.len().checked_sub(5)?..)?;
    hhmm.get(..2)?.parse().ok().filter(|h| *h < 24)
}

/// The question a manager brings ("how many agents tomorrow evening?")
/// answered before the charts: per part of the day, the most agents any
/// interval needs, when, and the arrivals forecast.
fn day_parts(out: &mut String, s: &Strings, intervals: &[StaffingInterval]) {
    let mut body = Vec::new();
    for (part, name) in s.day_parts.iter().enumerate() {
        let hours = part * 6..part * 6 + 6;
        let inside: Vec<&StaffingInterval> = intervals
            .iter()
            .filter(|i| label_hour(&i.label).is_some_and(|h| hours.contains(&h)))
            .collect();
        // The first interval of the most agents.
        let Some(peak) = inside
            .iter()
            .filter(|i| i.agents.is_some_and(f64::is_finite))
            .rev()
            .max_by(|a, b| a.agents.unwrap_or(0.0).total_cmp(&b.agents.unwrap_or(0.0)))
        else {
            continue;
        };
        let arrivals: f64 = inside.iter().map(|i| i.mean).filter(|v| v.is_finite()).sum();
        body.push(vec![
            escape(name),
            format!("<b>{}</b>", escape(&format::opt_value(&Unit::Count, peak.agents))),
            escape(&peak.label),
            escape(&format::value(&Unit::Count, arrivals.round())),
        ]);
    }
    if body.is_empty() {
        return;
    }
    let _ = write!(
        out,
        r#"<section class="card dayparts"><h2>{}</h2>{}</section>"#,
        escape(s.agents_by_day_part),
        table(
            "",
            &[
                Col("", false),
                Col(s.most_agents, true),
                Col(s.at, false),
                Col(s.forecast_mean, true),
            ],
            &body,
        )
    );
}

/// The staffing page.
pub fn render_staffing(ctx: &PageContext, data: &StaffingData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    let _ = write!(
        main,
        r#"<p>{}: <b>{}</b> · {}: {} min · {}: {}"#,
        escape(s.queue),
        escape(&data.queue),
        escape(s.interval),
        data.interval_minutes,
        escape(s.method),
        escape(&data.method)
    );
    if let Some((share, target_s)) = data.service_level {
        let _ = write!(
            main,
            " · {}: {} / {}",
            escape(s.service_level_target),
            escape(&format::value(&Unit::Fraction, share)),
            escape(&format::value(&Unit::Seconds, target_s))
        );
    }
    main.push_str("</p>");
    if data.intervals.is_empty() {
        main.push_str(&empty(s));
    } else {
        day_parts(&mut main, s, &data.intervals);
        let band: Vec<BandPoint> = data
            .intervals
            .iter()
            .map(|i| BandPoint {
                label: i.label.clone(),
                low: i.p10,
                mean: i.mean,
                high: i.p90,
                actual: i.actual,
            })
            .collect();
        let _ = write!(
            main,
            r#"<section class="card"><h2>{}</h2><p class="legend"><span><span class="sw band"></span>{}</span><span><span class="sw ln"></span>{}</span><span><span class="sw act"></span>{}</span></p>{}</section>"#,
            escape(s.forecast_vs_actual),
            escape(s.band_p10_p90),
            escape(s.forecast_mean),
            escape(s.actual),
            band_chart(
                s.forecast_vs_actual,
                &band,
                &Unit::Decimal,
                ChartSize {
                    width: 480.0,
                    height: 220.0
                }
            )
        );
        let agents: Vec<(String, f64)> = data
            .intervals
            .iter()
            .map(|i| (i.label.clone(), i.agents.unwrap_or(f64::NAN)))
            .collect();
        let _ = write!(
            main,
            r#"<section class="card"><h2>{}</h2>{}"#,
            escape(s.required_agents),
            step_chart(
                s.required_agents,
                &agents,
                &Unit::Count,
                ChartSize {
                    width: 480.0,
                    height: 180.0
                }
            )
        );
        let body: Vec<Vec<String>> = data
            .intervals
            .iter()
            .map(|i| {
                let d = |v: f64| format::value(&Unit::Decimal, v);
                vec![
                    escape(&i.label),
                    escape(&i.actual.map_or_else(|| "–".into(), d)),
                    escape(&d(i.mean)),
                    escape(&d(i.p10)),
                    escape(&d(i.p90)),
                    escape(&format::opt_value(&Unit::Count, i.agents)),
                ]
            })
            .collect();
        main.push_str(&numbers(
            s,
            &table(
                "",
                &[
                    Col(s.interval, false),
                    Col(s.actual, true),
                    Col(s.forecast_mean, true),
                    Col("P10", true),
                    Col("P90", true),
                    Col(s.required_agents, true),
                ],
                &body,
            ),
        ));
        main.push_str("</section>");
    }
    shell::render(
        &shell::Frame {
            ctx,
            page: Page::Staffing,
            path: Page::Staffing.path(),
            heading: s.staffing,
            controls: true,
        },
        &main,
    )
}
