//! Experiments: the list with status, and one experiment's results — lift
//! per metric and variant as a forest plot, the sample-ratio check and the
//! decision in one sentence (the fields of `GET /v1/experiments/{key}/results`).

use std::fmt::Write as _;

use crate::charts::{ForestRow, Tone, forest_plot};
use crate::format;
use crate::html::{escape, url_encode};
use crate::i18n::Strings;
use crate::kpi::Unit;
use crate::pages::{Col, empty, table};
use crate::shell::{self, Page, PageContext};

/// An experiment's verdict (`experiments::decision::Verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ship,
    KeepRunning,
    Stop,
}

impl Verdict {
    fn label(self, s: &Strings) -> &'static str {
        match self {
            Verdict::Ship => s.ship,
            Verdict::KeepRunning => s.keep_running,
            Verdict::Stop => s.stop,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Verdict::Ship => "b-ship",
            Verdict::KeepRunning => "b-keep",
            Verdict::Stop => "b-stop",
        }
    }
}

/// One row of the experiment list.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSummary {
    pub key: String,
    /// `greeting`, `persona`, `quick_reply`, …
    pub kind: String,
    /// `draft`, `running`, `stopped`, `archived`.
    pub state: String,
    pub primary_metric: String,
    pub units: u64,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentsData {
    pub experiments: Vec<ExperimentSummary>,
}

/// A variant's planned weight and the units it got.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantShare {
    pub key: String,
    pub weight: f64,
    pub units: u64,
}

/// The sample-ratio-mismatch check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmCheck {
    pub chi_square: f64,
    pub p_value: f64,
    pub mismatch: bool,
}

/// One treatment variant against control on one metric. Lifts are in the
/// metric's unit (absolute) and as a fraction of the control mean
/// (relative); intervals are `(low, high)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariantComparison {
    pub variant: String,
    pub control_mean: Option<f64>,
    pub treatment_mean: Option<f64>,
    pub absolute_lift: Option<f64>,
    pub absolute_ci: Option<(f64, f64)>,
    pub relative_lift: Option<f64>,
    pub relative_ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub significant: bool,
    pub chance_to_win: Option<f64>,
    /// Why there is no comparison (too few units).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricResult {
    pub metric: String,
    /// `primary`, `guardrail`, `secondary`.
    pub role: String,
    pub higher_is_better: bool,
    pub comparisons: Vec<VariantComparison>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecisionSummary {
    pub variant: String,
    pub verdict: Verdict,
    /// The one-sentence explanation.
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentResultData {
    pub key: String,
    pub state: String,
    pub control: String,
    pub variants: Vec<VariantShare>,
    pub srm: Option<SrmCheck>,
    pub metrics: Vec<MetricResult>,
    pub decision: Option<DecisionSummary>,
}

fn badge(s: &Strings, v: Verdict) -> String {
    format!(r#"<span class="badge {}">{}</span>"#, v.class(), escape(v.label(s)))
}

/// The path of one experiment's result page.
pub(crate) fn result_path(key: &str) -> String {
    format!("/experiments/{}", url_encode(key))
}

/// The experiment list.
pub fn render_experiments(ctx: &PageContext, data: &ExperimentsData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    if data.experiments.is_empty() {
        let _ = write!(main, r#"<p class="empty">{}</p>"#, escape(s.no_experiments));
    } else {
        let body: Vec<Vec<String>> = data
            .experiments
            .iter()
            .map(|e| {
                vec![
                    format!(
                        r#"<a href="{}">{}</a>"#,
                        escape(&ctx.link(&result_path(&e.key))),
                        escape(&e.key)
                    ),
                    escape(&e.kind),
                    escape(&e.state),
                    escape(&e.primary_metric),
                    escape(&format::value(&Unit::Count, e.units as f64)),
                    e.verdict.map_or_else(|| "–".to_string(), |v| badge(s, v)),
                ]
            })
            .collect();
        let _ = write!(
            main,
            r#"<section class="card">{}</section>"#,
            table(
                "",
                &[
                    Col(s.experiment, false),
                    Col(s.kind, false),
                    Col(s.state, false),
                    Col(s.primary_metric, false),
                    Col(s.units, true),
                    Col(s.decision, false),
                ],
                &body,
            )
        );
    }
    shell::render(
        &shell::Frame {
            ctx,
            page: Page::Experiments,
            path: Page::Experiments.path(),
            heading: s.experiments,
            controls: true,
        },
        &main,
    )
}

/// `[low, high]` in the unit, or a dash.
pub(crate) fn interval(unit: &Unit, ci: Option<(f64, f64)>) -> String {
    ci.map_or_else(
        || "–".to_string(),
        |(a, b)| format!("[{}, {}]", format::value(unit, a), format::value(unit, b)),
    )
}

fn signed(v: Option<f64>) -> String {
    v.map_or_else(
        || "–".to_string(),
        |v| format!("{}{}", if v > 0.0 { "+" } else { "" }, format::sig(v)),
    )
}

/// One experiment's results.
pub fn render_experiment_result(ctx: &PageContext, data: &ExperimentResultData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    let _ = write!(
        main,
        r#"<p><a href="{}">← {}</a> · {}: {} · {}: {}</p>"#,
        escape(&ctx.link(Page::Experiments.path())),
        escape(s.all_experiments),
        escape(s.state),
        escape(&data.state),
        escape(s.control),
        escape(&data.control)
    );
    // The decision first: it is what the reader came for.
    match &data.decision {
        Some(d) => {
            let _ = write!(
                main,
                r#"<section class="card decision"><h2>{}</h2><p>{} <b>{}</b></p><p>{}</p></section>"#,
                escape(s.decision),
                badge(s, d.verdict),
                escape(&d.variant),
                escape(&d.explanation)
            );
        }
        None => {
            let _ = write!(
                main,
                r#"<section class="card decision"><h2>{}</h2>{}</section>"#,
                escape(s.decision),
                empty(s)
            );
        }
    }
    // Sample ratio check with the split.
    let (class, verdict) = match data.srm {
        Some(c) if c.mismatch => ("alert", s.srm_mismatch),
        Some(_) => ("ok", s.srm_ok),
        None => ("", s.srm_unavailable),
    };
    let _ = write!(
        main,
        r#"<section class="card {class}"><h2>{}</h2><p>{}"#,
        escape(s.srm_check),
        escape(verdict)
    );
    if let Some(c) = data.srm {
        let _ = write!(
            main,
            " ({} {} · {} {})",
            escape(s.chi_square),
            escape(&format::trim(c.chi_square)),
            escape(s.p_value),
            escape(&format::p_value(c.p_value))
        );
    }
    main.push_str("</p>");
    let total_weight: f64 = data.variants.iter().map(|v| v.weight).sum();
    let total_units: u64 = data.variants.iter().map(|v| v.units).sum();
    let share = |num: f64, den: f64| {
        if den > 0.0 {
            format::value(&Unit::Fraction, num / den)
        } else {
            "–".into()
        }
    };
    let body: Vec<Vec<String>> = data
        .variants
        .iter()
        .map(|v| {
            vec![
                escape(&v.key),
                escape(&format::trim(v.weight)),
                escape(&share(v.weight, total_weight)),
                escape(&format::value(&Unit::Count, v.units as f64)),
                escape(&share(v.units as f64, total_units as f64)),
            ]
        })
        .collect();
    main.push_str(&table(
        "",
        &[
            Col(s.variant, false),
            Col(s.weight, true),
            Col(s.expected_share, true),
            Col(s.units, true),
            Col(s.observed_share, true),
        ],
        &body,
    ));
    main.push_str("</section>");
    // Lifts: forest plot of the relative lifts, then every figure.
    let _ = write!(main, r#"<section class="card"><h2>{}</h2>"#, escape(s.lift_by_metric));
    let rows: Vec<ForestRow> = data
        .metrics
        .iter()
        .flat_map(|m| {
            m.comparisons.iter().filter_map(move |c| {
                let est = c.relative_lift?;
                let (low, high) = c.relative_ci.unwrap_or((f64::NAN, f64::NAN));
                let tone = if !c.significant {
                    Tone::Neutral
                } else if (est > 0.0) == m.higher_is_better {
                    Tone::Better
                } else {
                    Tone::Worse
                };
                Some(ForestRow {
                    label: format!("{} · {}", m.metric, c.variant),
                    estimate: est,
                    low,
                    high,
                    tone,
                })
            })
        })
        .collect();
    if rows.is_empty() {
        main.push_str(&empty(s));
    } else {
        main.push_str(&forest_plot(s.lift_by_metric, &rows, &Unit::Fraction));
        let _ = write!(main, r#"<p class="notes">{}</p>"#, escape(s.forest_note));
    }
    let mut body: Vec<Vec<String>> = Vec::new();
    for m in &data.metrics {
        for c in &m.comparisons {
            let mean = |v: Option<f64>| v.map_or_else(|| "–".to_string(), format::sig);
            body.push(vec![
                escape(&m.metric),
                escape(&m.role),
                escape(&c.variant),
                escape(&mean(c.control_mean)),
                escape(&mean(c.treatment_mean)),
                escape(&signed(c.absolute_lift)),
                escape(&c.absolute_ci.map_or_else(
                    || "–".into(),
                    |(a, b)| format!("[{}, {}]", format::sig(a), format::sig(b)),
                )),
                escape(&c.relative_lift.map_or_else(|| "–".into(), format::signed_percent)),
                escape(&interval(&Unit::Fraction, c.relative_ci)),
                escape(&c.p_value.map_or_else(|| "–".into(), format::p_value)),
                escape(if c.significant { s.yes } else { s.no }),
                escape(&format::opt_value(&Unit::Fraction, c.chance_to_win)),
                escape(c.error.as_deref().unwrap_or("")),
            ]);
        }
    }
    if !body.is_empty() {
        main.push_str(&table(
            "",
            &[
                Col(s.metric, false),
                Col(s.role, false),
                Col(s.variant, false),
                Col(s.control, true),
                Col(s.variant, true),
                Col(s.lift, true),
                Col(s.confidence_interval, true),
                Col(s.relative_lift, true),
                Col(s.confidence_interval, true),
                Col(s.p_value, true),
                Col(s.significant, false),
                Col(s.chance_to_win, true),
                Col("", false),
            ],
            &body,
        ));
    }
    main.push_str("</section>");
    let path = result_path(&data.key);
    let heading = format!("{}: {}", s.experiment, data.key);
    shell::render(
        &shell::Frame {
            ctx,
            page: Page::Experiments,
            path: &path,
            heading: &heading,
            controls: true,
        },
        &main,
    )
}
