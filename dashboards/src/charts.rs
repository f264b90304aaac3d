//! Server-side SVG charts: trend lines, horizontal bars, a weekday × hour
//! heatmap, a forest plot of lifts with intervals, a forecast band chart and
//! a step chart of required agents.
//!
//! Each function returns one self-contained `<svg>` element with a
//! `viewBox` (it scales to its container's width), `role="img"`, an
//! `aria-label` and a `<title>`; colours come from CSS classes of the page
//! (`.ln`, `.bar`, `.band`, …) so light and dark themes need no second
//! drawing. Points and cells carry a `<title>` tooltip. A chart never
//! stands alone: the pages put its numbers in a table next to it.
//!
//! Coordinates are written with one decimal; the geometry is plain linear
//! scales ([`Scale`]) over "nice" tick values ([`nice_ticks`]).

use std::fmt::Write as _;

use crate::format;
use crate::html::{escape, truncate};
use crate::kpi::Unit;

/// The drawing size in SVG user units (the `viewBox`); the element itself
/// is as wide as its container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartSize {
    pub width: f64,
    pub height: f64,
}

/// A linear map from data values `d0..d1` to pixels `r0..r1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    /// The pixel of `v`; the middle of the range when the domain is empty.
    pub fn map(&self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Round tick values covering `min..=max` with a step of 1, 2 or 5 × 10ⁿ,
/// close to `count` intervals; the first tick ≤ `min`, the last ≥ `max`.
/// An empty or degenerate range gets ticks around its value.
pub fn nice_ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    let (mut lo, mut hi) = if min.is_finite() && max.is_finite() {
        (min.min(max), min.max(max))
    } else {
        (0.0, 1.0)
    };
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        if lo == 0.0 {
            hi = 1.0;
        } else {
            let pad = lo.abs() * 0.5;
            lo -= pad;
            hi += pad;
        }
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    // Thresholds at the geometric means of neighbouring steps, so the
    // number of intervals stays closest to `count`.
    let nice = if norm < 2f64.sqrt() {
        1.0
    } else if norm < 10f64.sqrt() {
        2.0
    } else if norm < 50f64.sqrt() {
        5.0
    } else {
        10.0
    };
    let step = nice * magnitude;
    let (k0, k1) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    (k0..=k1).map(|k| k as f64 * step).collect()
}

/// [`nice_ticks`], but durations longer than a few minutes step by whole
/// minutes or hours (1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12, 24 h) so the
/// labels read `5m`, `10m`, not `3.33m`.
pub fn ticks_for(unit: &Unit, min: f64, max: f64, count: usize) -> Vec<f64> {
    const STEPS_S: [f64; 12] = [
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0,
    ];
    let raw = (max - min) / count.max(1) as f64;
    if *unit != Unit::Seconds || !raw.is_finite() || raw < 45.0 {
        return nice_ticks(min, max, count);
    }
    let step = STEPS_S
        .iter()
        .copied()
        .find(|s| *s >= raw * 0.75)
        .unwrap_or_else(|| (raw / 86400.0).ceil() * 86400.0);
    let (k0, k1) = ((min / step).floor() as i64, (max / step).ceil() as i64);
    (k0..=k1).map(|k| k as f64 * step).collect()
}

/// Margins of the plotting area inside a chart.
#[derive(Debug, Clone, Copy)]
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x0(&self) -> f64 {
        self.left
    }
    fn x1(&self) -> f64 {
        self.width - self.right
    }
    fn y0(&self) -> f64 {
        self.top
    }
    fn y1(&self) -> f64 {
        self.height - self.bottom
    }
}

const LINE_MARGINS: (f64, f64, f64, f64) = (40.0, 10.0, 10.0, 20.0);

/// The frame, y ticks and y scale of a line-style chart over `values`
/// (finite, non-empty); the y axis always includes 0.
fn value_axes(values: &[f64], unit: &Unit, size: ChartSize) -> (Frame, Vec<f64>, Scale) {
    let frame = line_frame(size);
    let lo = values.iter().copied().fold(0.0_f64, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ticks = ticks_for(unit, lo, hi, 3);
    let y = Scale {
        d0: ticks[0],
        d1: ticks[ticks.len() - 1],
        r0: frame.y1(),
        r1: frame.y0(),
    };
    (frame, ticks, y)
}

/// Maps point indices `0..n` across the frame's width.
fn index_scale(n: usize, frame: &Frame) -> Scale {
    Scale {
        d0: 0.0,
        d1: n.saturating_sub(1) as f64,
        r0: frame.x0(),
        r1: frame.x1(),
    }
}

fn line_frame(size: ChartSize) -> Frame {
    let (left, right, top, bottom) = LINE_MARGINS;
    Frame {
        width: size.width,
        height: size.height,
        left,
        right,
        top,
        bottom,
    }
}

/// Opens a horizontal chart whose x axis spans `values` and zero, with its
/// grid lines and tick labels drawn; returns the SVG so far and the scale.
fn open_with_value_axis(label: &str, frame: &Frame, unit: &Unit, values: &[f64], class: &str) -> (String, Scale) {
    let lo = values.iter().copied().fold(0.0_f64, f64::min);
    let hi = values.iter().copied().fold(0.0_f64, f64::max);
    let ticks = ticks_for(unit, lo, hi, 4);
    let x = Scale {
        d0: ticks[0],
        d1: ticks[ticks.len() - 1],
        r0: frame.x0(),
        r1: frame.x1(),
    };
    let mut out = String::new();
    open(&mut out, label, frame.width, frame.height, class);
    for &t in &ticks {
        let px = x.map(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}"/><text class="ax" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            frame.y0(),
            frame.y1(),
            frame.y1() + 14.0,
            escape(&format::tick(unit, t))
        );
    }
    (out, x)
}

fn open(out: &mut String, label: &str, width: f64, height: f64, class: &str) {
    let label = escape(label);
    let _ = write!(
        out,
        r#"<svg class="chart {class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="{label}"><title>{label}</title>"#
    );
}

fn empty_chart(label: &str, size: ChartSize) -> String {
    let mut out = String::new();
    open(&mut out, label, size.width, size.height, "empty");
    let _ = write!(
        out,
        r#"<text class="ax" x="{:.1}" y="{:.1}" text-anchor="middle">–</text></svg>"#,
        size.width / 2.0,
        size.height / 2.0
    );
    out
}

/// Horizontal grid lines with value labels at the left edge.
fn y_grid(out: &mut String, frame: &Frame, ticks: &[f64], y: &Scale, unit: &Unit) {
    for &t in ticks {
        let py = y.map(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}"/><text class="ax" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            frame.x0(),
            frame.x1(),
            frame.x0() - 4.0,
            py + 3.5,
            escape(&format::tick(unit, t))
        );
    }
}

/// Category labels under the x axis at the given indices.
fn x_labels(out: &mut String, frame: &Frame, labels: &[(usize, &str)], x: impl Fn(usize) -> f64, n: usize) {
    for &(i, label) in labels {
        let anchor = if n > 1 && i == 0 {
            "start"
        } else if n > 1 && i == n - 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            r#"<text class="ax" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            x(i),
            frame.y1() + 14.0,
            escape(&truncate(label, 16))
        );
    }
}

/// Indices of at most `max` evenly spread labels, first and last included.
fn label_indices(n: usize, max: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    if n <= max {
        return (0..n).collect();
    }
    let step = (n - 1).div_ceil(max.max(2) - 1);
    let mut v: Vec<usize> = (0..n).step_by(step).collect();
    if v.last() != Some(&(n - 1)) {
        // Drop a label that would crowd the last one.
        if v.len() > 1 && n - 1 - v[v.len() - 1] < step / 2 + 1 {
            v.pop();
        }
        v.push(n - 1);
    }
    v
}

/// `M`/`L` path through the finite points, broken where a value is missing.
fn polyline_segments(points: &[(f64, Option<f64>)]) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    for &(x, y) in points {
        match y {
            Some(y) => {
                if !current.is_empty() {
                    current.push(' ');
                }
                let _ = write!(current, "{x:.1},{y:.1}");
            }
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A trend line over labelled points (dates, buckets) with y ticks, the
/// first, middle and last x labels and a dot with a tooltip per point.
/// Non-finite values leave a gap. The y axis includes 0.
pub fn line_chart(label: &str, series: &[(String, f64)], unit: &Unit, size: ChartSize) -> String {
    let values: Vec<f64> = series.iter().filter_map(|(_, v)| finite(*v)).collect();
    if values.is_empty() {
        return empty_chart(label, size);
    }
    let (frame, ticks, y) = value_axes(&values, unit, size);
    let n = series.len();
    let x = |i: usize| index_scale(n, &frame).map(i as f64);
    let mut out = String::new();
    open(&mut out, label, size.width, size.height, "line");
    y_grid(&mut out, &frame, &ticks, &y, unit);
    let idx = label_indices(n, 3);
    let labels: Vec<(usize, &str)> = idx.iter().map(|&i| (i, series[i].0.as_str())).collect();
    x_labels(&mut out, &frame, &labels, x, n);
    let pts: Vec<(f64, Option<f64>)> = series
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (x(i), finite(*v).map(|v| y.map(v))))
        .collect();
    for seg in polyline_segments(&pts) {
        let _ = write!(out, r#"<polyline class="ln" points="{seg}"/>"#);
    }
    for (i, (name, v)) in series.iter().enumerate() {
        if let Some(v) = finite(*v) {
            let _ = write!(
                out,
                r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {}</title></circle>"#,
                x(i),
                y.map(v),
                escape(name),
                escape(&format::value(unit, v))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per category, longest scale at the largest value,
/// with the value written after each bar (channels, teams, tags, scripts).
pub fn bar_chart(label: &str, bars: &[(String, f64)], unit: &Unit) -> String {
    const ROW: f64 = 24.0;
    // Narrow on purpose: on a phone the chart is drawn at about this
    // width, so its 11-unit text stays readable.
    let width = 360.0;
    let frame = Frame {
        width,
        height: 6.0 + ROW * bars.len() as f64 + 22.0,
        left: 104.0,
        right: 58.0,
        top: 6.0,
        bottom: 22.0,
    };
    let values: Vec<f64> = bars.iter().filter_map(|(_, v)| finite(*v)).collect();
    if values.is_empty() {
        return empty_chart(label, ChartSize { width, height: 60.0 });
    }
    let (mut out, x) = open_with_value_axis(label, &frame, unit, &values, "bars");
    let zero = x.map(0.0);
    for (i, (name, v)) in bars.iter().enumerate() {
        let top = frame.y0() + ROW * i as f64;
        let _ = write!(
            out,
            r#"<text class="lbl" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            frame.x0() - 6.0,
            top + ROW / 2.0 + 4.0,
            escape(&truncate(name, 14))
        );
        let Some(v) = finite(*v) else { continue };
        let (a, b) = (zero.min(x.map(v)), zero.max(x.map(v)));
        let _ = write!(
            out,
            r#"<rect class="bar" x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {}</title></rect><text class="val" x="{:.1}" y="{:.1}">{}</text>"#,
            top + 4.0,
            (b - a).max(0.5),
            ROW - 8.0,
            escape(name),
            escape(&format::value(unit, v)),
            b + 4.0,
            top + ROW / 2.0 + 4.0,
            escape(&format::value(unit, v))
        );
    }
    out.push_str("</svg>");
    out
}

/// A grid of cells shaded by value (darker = more), rows × columns, e.g.
/// weekdays × hours of the day. `values[r][c]`; missing cells count as 0.
pub fn heatmap(label: &str, row_labels: &[&str], col_labels: &[String], values: &[Vec<f64>], unit: &Unit) -> String {
    const CELL: f64 = 20.0;
    let (left, top) = (36.0, 18.0);
    let width = left + CELL * col_labels.len() as f64 + 4.0;
    let height = top + CELL * row_labels.len() as f64 + 4.0;
    let max = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let mut out = String::new();
    open(&mut out, label, width, height, "heat");
    for (c, name) in col_labels.iter().enumerate() {
        if c % 3 == 0 {
            let _ = write!(
                out,
                r#"<text class="ax" x="{:.1}" y="12" text-anchor="middle">{}</text>"#,
                left + CELL * c as f64 + CELL / 2.0,
                escape(name)
            );
        }
    }
    for (r, row_name) in row_labels.iter().enumerate() {
        let y = top + CELL * r as f64;
        let _ = write!(
            out,
            r#"<text class="ax" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 4.0,
            y + CELL / 2.0 + 4.0,
            escape(row_name)
        );
        for (c, col_name) in col_labels.iter().enumerate() {
            let v = values
                .get(r)
                .and_then(|row| row.get(c))
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
            // Empty cells stay faintly visible so the grid reads as a grid.
            let opacity = if max > 0.0 && v > 0.0 {
                0.12 + 0.88 * v / max
            } else {
                0.04
            };
            let _ = write!(
                out,
                r#"<rect class="cell" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill-opacity="{opacity:.2}"><title>{} {}: {}</title></rect>"#,
                left + CELL * c as f64,
                CELL - 2.0,
                CELL - 2.0,
                escape(row_name),
                escape(col_name),
                escape(&format::value(unit, v))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// How a forest-plot row reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Significantly better than control.
    Better,
    /// Significantly worse than control.
    Worse,
    /// Not significant.
    Neutral,
    /// Neither good nor bad: just the figure.
    Plain,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Better => "better",
            Tone::Worse => "worse",
            Tone::Neutral => "neutral",
            Tone::Plain => "plain",
        }
    }
}

/// One estimate with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub tone: Tone,
}

/// Estimates with confidence intervals on one axis with a dashed zero line
/// (experiment lifts). Each row is two lines high: the label and the
/// estimate with its interval written above, the interval drawn below, so
/// the chart stays legible when scaled down to a phone.
pub fn forest_plot(label: &str, rows: &[ForestRow], unit: &Unit) -> String {
    const ROW: f64 = 44.0;
    let frame = Frame {
        width: 400.0,
        height: 8.0 + ROW * rows.len() as f64 + 22.0,
        // Room for half a centred tick label ("-20%") at either end.
        left: 22.0,
        right: 22.0,
        top: 8.0,
        bottom: 22.0,
    };
    let extent: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.estimate, r.low, r.high])
        .filter(|v| v.is_finite())
        .collect();
    if extent.is_empty() {
        return empty_chart(
            label,
            ChartSize {
                width: frame.width,
                height: 60.0,
            },
        );
    }
    let (mut out, x) = open_with_value_axis(label, &frame, unit, &extent, "forest");
    let zero = x.map(0.0);
    let _ = write!(
        out,
        r#"<line class="zero" x1="{zero:.1}" y1="{:.1}" x2="{zero:.1}" y2="{:.1}"/>"#,
        frame.y0(),
        frame.y1()
    );
    for (i, r) in rows.iter().enumerate() {
        let top = frame.y0() + ROW * i as f64;
        let cy = top + 30.0;
        let tone = r.tone.class();
        let text = if r.low.is_finite() && r.high.is_finite() {
            format!(
                "{} [{}, {}]",
                format::signed(unit, r.estimate),
                format::value(unit, r.low),
                format::value(unit, r.high)
            )
        } else {
            format::signed(unit, r.estimate)
        };
        let _ = write!(
            out,
            r#"<text class="lbl" x="{:.1}" y="{:.1}">{}</text><text class="val" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            frame.x0(),
            top + 14.0,
            escape(&truncate(&r.label, 30)),
            frame.x1(),
            top + 14.0,
            escape(&text)
        );
        if let (Some(a), Some(b)) = (finite(r.low), finite(r.high)) {
            let _ = write!(
                out,
                r#"<line class="ci {tone}" x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}"/>"#,
                x.map(a),
                x.map(b)
            );
        }
        if let Some(e) = finite(r.estimate) {
            let _ = write!(
                out,
                r#"<rect class="est {tone}" x="{:.1}" y="{:.1}" width="8" height="8"><title>{}: {}</title></rect>"#,
                x.map(e) - 4.0,
                cy - 4.0,
                escape(&r.label),
                escape(&text)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One estimate with its interval as a bar for a table cell: the interval
/// as a line over `domain` (the same for every row of a column, so rows
/// compare by eye), the estimate as a square; a hairline marks `reference`
/// (e.g. the overall figure). Muted rows (`Tone::Neutral`) are those to
/// read as anecdotes.
pub fn interval_bar(
    label: &str,
    estimate: Option<f64>,
    interval: Option<(f64, f64)>,
    domain: (f64, f64),
    reference: Option<f64>,
    tone: Tone,
) -> String {
    const W: f64 = 160.0;
    const H: f64 = 16.0;
    let x = Scale {
        d0: domain.0,
        d1: domain.1,
        r0: 4.0,
        r1: W - 4.0,
    };
    let clamp = |v: f64| x.map(v.clamp(domain.0.min(domain.1), domain.0.max(domain.1)));
    let mut out = String::new();
    open(&mut out, label, W, H, "ib");
    let _ = write!(
        out,
        r#"<line class="grid" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        x.r0,
        H / 2.0,
        x.r1,
        H / 2.0
    );
    if let Some(r) = reference.and_then(finite) {
        let _ = write!(
            out,
            r#"<line class="zero" x1="{0:.1}" y1="1" x2="{0:.1}" y2="{1:.1}"/>"#,
            clamp(r),
            H - 1.0
        );
    }
    let tone = tone.class();
    if let Some((a, b)) = interval.filter(|(a, b)| a.is_finite() && b.is_finite()) {
        let _ = write!(
            out,
            r#"<line class="ci {tone}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
            clamp(a),
            H / 2.0,
            clamp(b),
            H / 2.0
        );
    }
    if let Some(e) = estimate.and_then(finite) {
        let _ = write!(
            out,
            r#"<rect class="est {tone}" x="{:.1}" y="{:.1}" width="7" height="7"/>"#,
            clamp(e) - 3.5,
            H / 2.0 - 3.5
        );
    }
    out.push_str("</svg>");
    out
}

/// One interval of a forecast: its quantile band, mean and (once known)
/// the actual figure.
#[derive(Debug, Clone, PartialEq)]
pub struct BandPoint {
    pub label: String,
    pub low: f64,
    pub mean: f64,
    pub high: f64,
    pub actual: Option<f64>,
}

/// A shaded band (e.g. P10–P90) with the mean as a line and the actuals as
/// a second line with dots.
pub fn band_chart(label: &str, points: &[BandPoint], unit: &Unit, size: ChartSize) -> String {
    let values: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.low, p.mean, p.high, p.actual.unwrap_or(f64::NAN)])
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return empty_chart(label, size);
    }
    let (frame, ticks, y) = value_axes(&values, unit, size);
    let n = points.len();
    let x = |i: usize| index_scale(n, &frame).map(i as f64);
    let mut out = String::new();
    open(&mut out, label, size.width, size.height, "band-chart");
    y_grid(&mut out, &frame, &ticks, &y, unit);
    let idx = label_indices(n, 7);
    let labels: Vec<(usize, &str)> = idx.iter().map(|&i| (i, points[i].label.as_str())).collect();
    x_labels(&mut out, &frame, &labels, x, n);
    // The band: upper edge forward, lower edge back.
    let band: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, finite(p.low)?, finite(p.high)?)))
        .collect();
    if !band.is_empty() {
        let mut poly = String::new();
        for &(i, _, h) in &band {
            let _ = write!(poly, "{:.1},{:.1} ", x(i), y.map(h));
        }
        for &(i, l, _) in band.iter().rev() {
            let _ = write!(poly, "{:.1},{:.1} ", x(i), y.map(l));
        }
        let _ = write!(out, r#"<polygon class="band" points="{}"/>"#, poly.trim_end());
    }
    let mean: Vec<(f64, Option<f64>)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (x(i), finite(p.mean).map(|v| y.map(v))))
        .collect();
    for seg in polyline_segments(&mean) {
        let _ = write!(out, r#"<polyline class="ln" points="{seg}"/>"#);
    }
    let actual: Vec<(f64, Option<f64>)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (x(i), p.actual.and_then(finite).map(|v| y.map(v))))
        .collect();
    for seg in polyline_segments(&actual) {
        let _ = write!(out, r#"<polyline class="act" points="{seg}"/>"#);
    }
    for (i, p) in points.iter().enumerate() {
        if let Some(a) = p.actual.and_then(finite) {
            let _ = write!(
                out,
                r#"<circle class="adot" cx="{:.1}" cy="{:.1}" r="2.5"><title>{}: {} ({} – {})</title></circle>"#,
                x(i),
                y.map(a),
                escape(&p.label),
                escape(&format::value(unit, a)),
                escape(&format::value(unit, p.low)),
                escape(&format::value(unit, p.high))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Values held over each interval, drawn as adjacent bars with a step
/// outline (required agents per interval).
pub fn step_chart(label: &str, points: &[(String, f64)], unit: &Unit, size: ChartSize) -> String {
    let values: Vec<f64> = points.iter().filter_map(|(_, v)| finite(*v)).collect();
    if values.is_empty() {
        return empty_chart(label, size);
    }
    let frame = line_frame(size);
    let hi = values.iter().copied().fold(0.0_f64, f64::max);
    let ticks = ticks_for(unit, 0.0, hi, 3);
    let y = Scale {
        d0: ticks[0],
        d1: ticks[ticks.len() - 1],
        r0: frame.y1(),
        r1: frame.y0(),
    };
    let n = points.len();
    let bw = (frame.x1() - frame.x0()) / n as f64;
    let left = |i: usize| frame.x0() + bw * i as f64;
    let mut out = String::new();
    open(&mut out, label, size.width, size.height, "step");
    y_grid(&mut out, &frame, &ticks, &y, unit);
    let idx = label_indices(n, 7);
    let labels: Vec<(usize, &str)> = idx.iter().map(|&i| (i, points[i].0.as_str())).collect();
    x_labels(&mut out, &frame, &labels, |i| left(i) + bw / 2.0, n);
    let mut path = String::new();
    for (i, (name, v)) in points.iter().enumerate() {
        let Some(v) = finite(*v) else { continue };
        let top = y.map(v);
        let _ = write!(
            out,
            r#"<rect class="sbar" x="{:.1}" y="{top:.1}" width="{bw:.1}" height="{:.1}"><title>{}: {}</title></rect>"#,
            left(i),
            (frame.y1() - top).max(0.0),
            escape(name),
            escape(&format::value(unit, v))
        );
        let _ = write!(
            path,
            "{}{:.1},{top:.1}H{:.1}",
            if path.is_empty() { "M" } else { "L" },
            left(i),
            left(i) + bw
        );
    }
    if !path.is_empty() {
        // One filled area under the steps (abutting translucent bars would
        // show seams where anti-aliasing overlaps them), then the outline.
        let first = points.iter().position(|(_, v)| v.is_finite()).unwrap_or(0);
        let last = points.iter().rposition(|(_, v)| v.is_finite()).unwrap_or(0);
        let _ = write!(
            out,
            r#"<path class="sarea" d="{path}L{:.1},{:.1}H{:.1}Z"/><path class="ln" d="{path}"/>"#,
            left(last) + bw,
            frame.y1(),
            left(first)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests;
