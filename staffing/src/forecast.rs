//! Arrival forecasts per queue and interval, with quantiles.
//!
//! # Input
//!
//! A [`Series`]: counts at a fixed interval (15 or 30 minutes), oldest
//! first, consecutive, each point carrying its **local** weekday and slot of
//! day as computed by the caller in the tenant's time zone. Nothing here
//! looks at clocks: a spring-forward day is simply a day whose slots 4 and 5
//! (02:00–03:00 at 30 minutes) are missing, a fall-back day one where they
//! appear twice. Models key on `(weekday, slot)`, never on a point's
//! position within a day, so DST days neither shift nor break the seasonal
//! pattern. (This is why the strong model is a regression on weekday × slot
//! rather than Holt-Winters, whose seasonal index is positional.)
//!
//! # Methods
//!
//! * [`Method::LastWeek`] — the value at the same weekday and slot in the
//!   most recent week.
//! * [`Method::MeanK`] / [`Method::MedianK`] — mean / median of the last `K`
//!   same weekday-slot values.
//! * [`Method::PoissonTrend`] — Poisson regression
//!   `log μ = log exposure + β·t + log r(weekday, slot)`, fitted by weighted
//!   maximum likelihood (recency half-life 8 weeks) alternating the closed
//!   form for the cell rates with a Newton step for `β`. Each cell rate is
//!   shrunk towards `weekday level × pooled slot shape` with `κ` pseudo
//!   observations (empirical Bayes with a Gamma prior), which is what lets it
//!   beat the baselines: a baseline averages 4 noisy counts, this model
//!   borrows strength from the other weekdays' shape. With less than a week
//!   the pooled prior *is* the forecast for unseen weekdays; the trend is
//!   only fitted from three weeks of history on.
//! * [`Method::AggregateSplit`] — for a group of small queues, the sum is
//!   forecast and split by each queue's share of the last four weeks
//!   ([`forecast_group`]), when that backtests better.
//!
//! # Selection and quantiles
//!
//! Each method is scored by a rolling-origin backtest: up to
//! [`ForecastConfig::backtest_folds`] non-overlapping 7-day windows at the
//! end of the history, each forecast from the history before it. The method
//! with the lowest pooled **WAPE** wins. For very sparse series (under one
//! arrival per interval on average) WAPE rewards forecasting zero — an
//! all-zero forecast has WAPE 1 while the true mean scores about 2 — so
//! there the mean Poisson deviance, which the true mean minimises, decides.
//! Below two weeks of history there is no backtest: the Poisson model is used
//! (it falls back to pooled shapes) and the result says so.
//!
//! Quantiles come from a negative-binomial predictive distribution with the
//! forecast as mean and variance `φ·mean`, where the dispersion `φ ≥ 1` is
//! the Pearson statistic of the chosen method's backtest residuals (in-sample
//! residuals without a backtest). `φ = 1` is Poisson.
//!
//! # Special days
//!
//! History points can be [`Special::Exclude`]d (outages, holidays unlike any
//! other) or carry a [`Special::Factor`] (a campaign that doubled traffic:
//! the models learn from `count / factor`). Horizon slots carry a multiplier.
//!
//! # Accuracy
//!
//! [`wape`], [`mape`] (which skips zero actuals and reports how many), and
//! [`poisson_noise_floor`]: for Poisson counts with mean `m`,
//! `E|Y − m| / m ≈ √(2/π)/√m ≈ 0.8/√m`, the WAPE no model can beat
//! (asymptotically; for `m < 1` the exact value is somewhat higher). Pooled
//! over intervals of different means it is `Σ0.8√μᵢ / Σμᵢ`
//! ([`poisson_noise_floor_pooled`]), which is what [`Forecast`] reports.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::error::{Error, Result, finite, non_negative};

/// How a history point is treated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "factor")]
pub enum Special {
    /// An ordinary interval.
    #[default]
    Normal,
    /// Ignored by every model (outage, holiday unlike any other day).
    Exclude,
    /// Traffic was this many times normal (campaign, holiday): models learn
    /// from `count / factor`.
    Factor(f64),
}

/// One interval of history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Local weekday, 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Local slot of day: local clock time / interval (0..48 at 30 minutes).
    pub slot: u16,
    /// Arrivals in the interval.
    pub count: f64,
    /// Special-day marking.
    #[serde(default)]
    pub special: Special,
}

/// One interval to forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HorizonSlot {
    /// Local weekday, 0 = Monday.
    pub weekday: u8,
    /// Local slot of day.
    pub slot: u16,
    /// Expected traffic relative to normal (1.0 = normal; 0.3 for a holiday).
    pub multiplier: f64,
}

/// A history of counts at a fixed interval, oldest first, consecutive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// 900 or 1800 seconds.
    pub interval_s: u32,
    /// The points.
    pub points: Vec<Point>,
}

/// A forecasting method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Same weekday and slot, most recent week.
    LastWeek,
    /// Mean of the last K same weekday-slot values.
    MeanK,
    /// Median of the last K same weekday-slot values.
    MedianK,
    /// Poisson regression on weekday × slot with trend.
    PoissonTrend,
    /// Forecast of the group total split by stable shares.
    AggregateSplit,
    /// No usable history: zero.
    Zero,
}

/// Every single-series method, baselines first.
pub const METHODS: [Method; 4] = [Method::LastWeek, Method::MeanK, Method::MedianK, Method::PoissonTrend];

/// Tuning knobs; [`Default`] is what the service uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// K of the mean/median baselines.
    pub k_weeks: usize,
    /// Maximum number of 7-day backtest windows.
    pub backtest_folds: usize,
    /// Pseudo-observations pulling a weekday-slot rate to the pooled shape.
    pub pooling_strength: f64,
    /// Recency half-life of the Poisson model, days.
    pub half_life_days: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            k_weeks: 4,
            backtest_folds: 3,
            pooling_strength: 1.5,
            half_life_days: 56.0,
        }
    }
}

/// One forecast interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// Local weekday.
    pub weekday: u8,
    /// Local slot of day.
    pub slot: u16,
    /// Expected arrivals (horizon multiplier applied).
    pub mean: f64,
    /// 10th percentile of arrivals.
    pub p10: f64,
    /// Median arrivals.
    pub p50: f64,
    /// 90th percentile of arrivals.
    pub p90: f64,
}

/// Backtest score of one method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    /// The method.
    pub method: Method,
    /// Pooled WAPE over the backtest windows (`None` if no arrivals).
    pub wape: Option<f64>,
    /// MAPE over non-zero actuals.
    pub mape: Option<f64>,
    /// Zero actuals MAPE skipped.
    pub mape_skipped_zero: usize,
    /// Mean Poisson deviance per interval.
    pub poisson_deviance: f64,
}

/// A forecast with how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The method used.
    pub method: Method,
    /// Why this method, and any fallback taken.
    pub note: String,
    /// Dispersion `φ` of the predictive distribution (1 = Poisson).
    pub dispersion: f64,
    /// One point per horizon slot.
    pub points: Vec<ForecastPoint>,
    /// Backtest scores of every candidate (empty without a backtest).
    pub backtest: Vec<MethodScore>,
    /// Poisson noise floor of the backtest WAPE,
    /// [`poisson_noise_floor_pooled`] of the chosen method's predictions.
    pub noise_floor_wape: Option<f64>,
}

/// Weighted absolute percentage error `Σ|a − f| / Σa`; `None` when there
/// are no arrivals (the ratio is undefined).
pub fn wape(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    let (mut err, mut sum) = (0.0, 0.0);
    for (a, f) in actual.iter().zip(forecast) {
        err += (a - f).abs();
        sum += a;
    }
    (sum > 0.0).then(|| err / sum)
}

/// MAPE with the number of zero actuals it had to skip.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mape {
    /// Mean of `|a − f| / a` over non-zero actuals.
    pub value: Option<f64>,
    /// Zero actuals skipped (their percentage error is undefined).
    pub skipped_zero_actuals: usize,
}

/// Mean absolute percentage error; **skips zero actuals** and says how many.
pub fn mape(actual: &[f64], forecast: &[f64]) -> Mape {
    let (mut sum, mut n, mut skipped) = (0.0, 0usize, 0usize);
    for (a, f) in actual.iter().zip(forecast) {
        if *a == 0.0 {
            skipped += 1;
        } else {
            sum += ((a - f) / a).abs();
            n += 1;
        }
    }
    Mape {
        value: (n > 0).then(|| sum / n as f64),
        skipped_zero_actuals: skipped,
    }
}

/// WAPE that pure Poisson noise causes with a perfect mean forecast:
/// `≈ 0.8/√mean` (exactly `√(2/π)/√mean` asymptotically).
pub fn poisson_noise_floor(mean_count_per_interval: f64) -> Option<f64> {
    (mean_count_per_interval > 0.0 && mean_count_per_interval.is_finite()).then(|| 0.8 / mean_count_per_interval.sqrt())
}

/// Noise floor of a pooled WAPE over intervals with different expected
/// counts `μᵢ`: `Σ 0.8·√μᵢ / Σ μᵢ`. Lower than `0.8/√mean(μ)` when counts
/// vary over the day (Jensen), so this is the one to compare a pooled
/// backtest WAPE with.
pub fn poisson_noise_floor_pooled(expected: &[f64]) -> Option<f64> {
    let total: f64 = expected.iter().filter(|m| **m > 0.0).sum();
    let noise: f64 = expected.iter().filter(|m| **m > 0.0).map(|m| 0.8 * m.sqrt()).sum();
    (total > 0.0 && total.is_finite()).then(|| noise / total)
}

/// Mean Poisson deviance; forecasts are floored at 1e-6 so a zero forecast
/// of a non-zero actual is heavily, not infinitely, penalised.
pub fn poisson_deviance(actual: &[f64], forecast: &[f64]) -> f64 {
    let mut d = 0.0;
    let mut n = 0usize;
    for (a, f) in actual.iter().zip(forecast) {
        let f = f.max(1e-6);
        let term = if *a > 0.0 { a * (a / f).ln() } else { 0.0 };
        d += 2.0 * (term - (a - f));
        n += 1;
    }
    if n == 0 { 0.0 } else { d / n as f64 }
}

/// The `q`-quantile of a negative binomial with mean `mean` and variance
/// `dispersion × mean` (Poisson when `dispersion ≤ 1`). Exact summation for
/// means up to 300, a normal approximation with continuity correction above,
/// where it is accurate to about one arrival.
pub fn quantile(mean: f64, dispersion: f64, q: f64) -> f64 {
    if !(mean > 0.0) || !mean.is_finite() {
        return 0.0;
    }
    let q = q.clamp(1e-9, 1.0 - 1e-9);
    let phi = if dispersion.is_finite() {
        dispersion.max(1.0)
    } else {
        1.0
    };
    if mean * phi > 300.0 {
        let sd = (phi * mean).sqrt();
        let z = Normal::standard().inverse_cdf(q);
        return (mean + z * sd - 0.5).ceil().max(0.0);
    }
    // pmf(0) and the ratio pmf(k+1)/pmf(k).
    let poisson = phi <= 1.0 + 1e-9;
    let (r, p_succ) = if poisson {
        (0.0, 0.0)
    } else {
        (mean / (phi - 1.0), 1.0 / phi)
    };
    let mut pmf = if poisson {
        (-mean).exp()
    } else {
        (r * p_succ.ln()).exp()
    };
    let mut cdf = pmf;
    let mut k = 0.0;
    while cdf < q && k < 100_000.0 {
        pmf *= if poisson {
            mean / (k + 1.0)
        } else {
            (k + r) / (k + 1.0) * (1.0 - p_succ)
        };
        k += 1.0;
        cdf += pmf;
    }
    k
}

/// Validated view of a series.
struct Prepared<'a> {
    slots_per_day: usize,
    interval_s: u32,
    points: &'a [Point],
}

fn slots_per_day(interval_s: u32) -> Result<usize> {
    match interval_s {
        900 | 1800 => Ok((86_400 / interval_s) as usize),
        other => Err(Error::Invalid {
            param: "interval_s",
            detail: format!("must be 900 or 1800 seconds, got {other}"),
        }),
    }
}

fn check_key(weekday: u8, slot: u16, spd: usize) -> Result<()> {
    if weekday > 6 {
        return Err(Error::Invalid {
            param: "weekday",
            detail: format!("must be 0 (Monday) to 6 (Sunday), got {weekday}"),
        });
    }
    if usize::from(slot) >= spd {
        return Err(Error::Invalid {
            param: "slot",
            detail: format!("must be below {spd} slots per day, got {slot}"),
        });
    }
    Ok(())
}

fn prepare(series: &Series) -> Result<Prepared<'_>> {
    let spd = slots_per_day(series.interval_s)?;
    for p in &series.points {
        check_key(p.weekday, p.slot, spd)?;
        non_negative("count", p.count)?;
        if let Special::Factor(f) = p.special {
            finite("factor", f)?;
            if f <= 0.0 {
                return Err(Error::OutOfRange {
                    param: "factor",
                    value: f,
                    requirement: "greater than 0 (use `exclude` to drop a day)",
                });
            }
        }
    }
    Ok(Prepared {
        slots_per_day: spd,
        interval_s: series.interval_s,
        points: &series.points,
    })
}

fn check_horizon(horizon: &[HorizonSlot], spd: usize) -> Result<()> {
    for h in horizon {
        check_key(h.weekday, h.slot, spd)?;
        non_negative("multiplier", h.multiplier)?;
    }
    Ok(())
}

/// Exposure of a history point; `None` when excluded.
fn exposure(p: &Point) -> Option<f64> {
    match p.special {
        Special::Normal => Some(1.0),
        Special::Exclude => None,
        Special::Factor(f) => Some(f),
    }
}

fn cell(weekday: u8, slot: u16, spd: usize) -> usize {
    usize::from(weekday) * spd + usize::from(slot)
}

/// Per-cell chronological normalised values, for the baselines.
struct CellHistory {
    cells: Vec<Vec<f64>>,
    by_slot: Vec<Vec<f64>>,
    overall_mean: f64,
}

impl CellHistory {
    fn new(points: &[Point], spd: usize) -> Self {
        let mut cells = vec![Vec::new(); 7 * spd];
        let mut by_slot = vec![Vec::new(); spd];
        let (mut sum, mut n) = (0.0, 0usize);
        for p in points {
            if let Some(e) = exposure(p) {
                let v = p.count / e;
                cells[cell(p.weekday, p.slot, spd)].push(v);
                by_slot[usize::from(p.slot)].push(v);
                sum += v;
                n += 1;
            }
        }
        Self {
            cells,
            by_slot,
            overall_mean: if n > 0 { sum / n as f64 } else { 0.0 },
        }
    }

    /// Values for a key: its weekday-slot cell, else the same slot on any
    /// weekday (short histories), else empty.
    fn values(&self, weekday: u8, slot: u16, spd: usize) -> &[f64] {
        let c = &self.cells[cell(weekday, slot, spd)];
        if !c.is_empty() {
            c
        } else {
            &self.by_slot[usize::from(slot)]
        }
    }

    fn predict(&self, method: Method, weekday: u8, slot: u16, spd: usize, k: usize) -> f64 {
        let v = self.values(weekday, slot, spd);
        if v.is_empty() {
            return self.overall_mean;
        }
        let last_k = &v[v.len().saturating_sub(k.max(1))..];
        match method {
            Method::LastWeek => v[v.len() - 1],
            Method::MedianK => {
                let mut s = last_k.to_vec();
                s.sort_by(f64::total_cmp);
                let m = s.len();
                if m % 2 == 1 {
                    s[m / 2]
                } else {
                    0.5 * (s[m / 2 - 1] + s[m / 2])
                }
            }
            _ => last_k.iter().sum::<f64>() / last_k.len() as f64,
        }
    }
}

/// Fitted Poisson regression on weekday × slot with trend.
struct PoissonFit {
    rates: Vec<f64>,
    beta_per_day: f64,
    end_pos: usize,
    days_per_point: f64,
    spd: usize,
}

/// Bound on the fitted trend, per day (about ±15 % a week): a steeper
/// "trend" in a few weeks of data is a level shift or a campaign, and
/// extrapolating it two weeks ahead would do more harm than good.
const MAX_TREND_PER_DAY: f64 = 0.02;

/// Pseudo-observations of the overall rate in the pooled slot shape.
const SLOT_PRIOR: f64 = 0.05;

impl PoissonFit {
    fn fit(points: &[Point], spd: usize, interval_s: u32, cfg: &ForecastConfig) -> Self {
        let n = points.len();
        let days_per_point = f64::from(interval_s) / 86_400.0;
        let history_days = n as f64 * days_per_point;
        let fit_trend = history_days >= 21.0;
        // (cell, slot, weekday, t_days (≤ 0), y, exposure × recency weight, weight)
        let mut obs = Vec::with_capacity(n);
        for (i, p) in points.iter().enumerate() {
            if let Some(e) = exposure(p) {
                let t = (i as f64 + 1.0 - n as f64) * days_per_point;
                let w = 0.5_f64.powf(-t / cfg.half_life_days);
                obs.push((cell(p.weekday, p.slot, spd), p, t, w, e));
            }
        }
        let mut beta = 0.0_f64;
        let mut rates = vec![0.0; 7 * spd];
        let kappa = cfg.pooling_strength.max(0.0);
        for _ in 0..if fit_trend { 8 } else { 1 } {
            let mut yc = vec![0.0; 7 * spd];
            let mut xc = vec![0.0; 7 * spd];
            let (mut yw, mut xw) = ([0.0; 7], [0.0; 7]);
            let mut ys = vec![0.0; spd];
            let mut xs = vec![0.0; spd];
            let (mut y_tot, mut x_tot) = (0.0, 0.0);
            for (c, p, t, w, e) in &obs {
                let ex = w * e * (beta * t).exp();
                let y = w * p.count;
                yc[*c] += y;
                xc[*c] += ex;
                yw[usize::from(p.weekday)] += y;
                xw[usize::from(p.weekday)] += ex;
                ys[usize::from(p.slot)] += y;
                xs[usize::from(p.slot)] += ex;
                y_tot += y;
                x_tot += ex;
            }
            let overall = if x_tot > 0.0 { y_tot / x_tot } else { 0.0 };
            for (c, rate) in rates.iter_mut().enumerate() {
                let (wd, s) = (c / spd, c % spd);
                // Weekday level relative to overall, shrunk towards 1 by one
                // slot-day's worth of exposure, times the pooled slot rate.
                let level = if overall > 0.0 {
                    (yw[wd] + overall * spd as f64) / (xw[wd] + spd as f64) / overall
                } else {
                    1.0
                };
                // The pooled slot shape sees every weekday, so it needs only
                // a token prior (for slots never observed), not `κ`.
                let shape = (ys[s] + overall * SLOT_PRIOR) / (xs[s] + SLOT_PRIOR);
                let prior = level * shape;
                *rate = (yc[c] + kappa * prior) / (xc[c] + kappa);
            }
            if !fit_trend {
                break;
            }
            // Newton step on β with the rates held fixed.
            let (mut score, mut info) = (0.0, 0.0);
            for (c, p, t, w, e) in &obs {
                let mu = e * rates[*c] * (beta * t).exp();
                score += w * t * (p.count - mu);
                info += w * t * t * mu;
            }
            if info > 0.0 {
                beta = (beta + score / info).clamp(-MAX_TREND_PER_DAY, MAX_TREND_PER_DAY);
            }
        }
        Self {
            rates,
            beta_per_day: beta,
            end_pos: n,
            days_per_point,
            spd,
        }
    }

    /// Mean at absolute position `pos` (history positions are `0..end_pos`).
    fn mean_at(&self, weekday: u8, slot: u16, pos: usize) -> f64 {
        let t = (pos as f64 + 1.0 - self.end_pos as f64) * self.days_per_point;
        self.rates[cell(weekday, slot, self.spd)] * (self.beta_per_day * t).exp()
    }
}

/// Means (before horizon multipliers) for `keys` following `train`.
fn predict(
    method: Method,
    train: &[Point],
    keys: &[(u8, u16)],
    spd: usize,
    interval_s: u32,
    cfg: &ForecastConfig,
) -> Vec<f64> {
    match method {
        Method::PoissonTrend => {
            let fit = PoissonFit::fit(train, spd, interval_s, cfg);
            keys.iter()
                .enumerate()
                .map(|(h, (w, s))| fit.mean_at(*w, *s, train.len() + h))
                .collect()
        }
        Method::Zero | Method::AggregateSplit => vec![0.0; keys.len()],
        baseline => {
            let hist = CellHistory::new(train, spd);
            keys.iter()
                .map(|(w, s)| hist.predict(baseline, *w, *s, spd, cfg.k_weeks))
                .collect()
        }
    }
}

/// Backtest windows as `(origin, end)` position ranges.
fn folds(prep: &Prepared<'_>, cfg: &ForecastConfig) -> Vec<(usize, usize)> {
    let week = 7 * prep.slots_per_day;
    let n = prep.points.len();
    // At least one week of training before the earliest window.
    let possible = (n / week).saturating_sub(1);
    let k = possible.min(cfg.backtest_folds);
    (1..=k).rev().map(|f| (n - f * week, n - (f - 1) * week)).collect()
}

/// Actuals and scaled predictions of a method over the backtest windows,
/// skipping excluded test points and scaling by factor-marked ones.
fn backtest_pairs(
    prep: &Prepared<'_>,
    method: Method,
    windows: &[(usize, usize)],
    cfg: &ForecastConfig,
) -> (Vec<f64>, Vec<f64>) {
    let (mut act, mut pred) = (Vec::new(), Vec::new());
    for &(o, e) in windows {
        let test = &prep.points[o..e];
        let keys: Vec<(u8, u16)> = test.iter().map(|p| (p.weekday, p.slot)).collect();
        let means = predict(
            method,
            &prep.points[..o],
            &keys,
            prep.slots_per_day,
            prep.interval_s,
            cfg,
        );
        push_scored(test, &means, &mut act, &mut pred);
    }
    (act, pred)
}

fn push_scored(test: &[Point], means: &[f64], act: &mut Vec<f64>, pred: &mut Vec<f64>) {
    for (p, m) in test.iter().zip(means) {
        if let Some(e) = exposure(p) {
            act.push(p.count);
            pred.push(m * e);
        }
    }
}

fn score(method: Method, act: &[f64], pred: &[f64]) -> MethodScore {
    let m = mape(act, pred);
    MethodScore {
        method,
        wape: wape(act, pred),
        mape: m.value,
        mape_skipped_zero: m.skipped_zero_actuals,
        poisson_deviance: poisson_deviance(act, pred),
    }
}

/// Pearson dispersion `Σ(y − μ)²/μ / n`, at least 1.
fn pearson_dispersion(act: &[f64], pred: &[f64]) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for (a, m) in act.iter().zip(pred) {
        if *m > 1e-9 {
            s += (a - m).powi(2) / m;
            n += 1;
        }
    }
    if n == 0 { 1.0 } else { (s / n as f64).clamp(1.0, 100.0) }
}

/// Selection criterion: WAPE for series with at least one arrival per
/// interval, Poisson deviance for sparser ones (see module docs).
fn criterion(s: &MethodScore, sparse: bool) -> f64 {
    if sparse {
        s.poisson_deviance
    } else {
        s.wape.unwrap_or(f64::INFINITY)
    }
}

fn finish(
    method: Method,
    note: String,
    dispersion: f64,
    means: &[f64],
    horizon: &[HorizonSlot],
    backtest: Vec<MethodScore>,
    noise_floor_wape: Option<f64>,
) -> Forecast {
    let points = horizon
        .iter()
        .zip(means)
        .map(|(h, m)| {
            let mean = m * h.multiplier;
            ForecastPoint {
                weekday: h.weekday,
                slot: h.slot,
                mean,
                p10: quantile(mean, dispersion, 0.1),
                p50: quantile(mean, dispersion, 0.5),
                p90: quantile(mean, dispersion, 0.9),
            }
        })
        .collect();
    Forecast {
        method,
        note,
        dispersion,
        points,
        backtest,
        noise_floor_wape,
    }
}

/// Result of scoring all single-series methods.
struct Selection {
    best: Method,
    scores: Vec<MethodScore>,
    dispersion: f64,
    windows: Vec<(usize, usize)>,
    sparse: bool,
    noise_floor: Option<f64>,
}

fn select(prep: &Prepared<'_>, cfg: &ForecastConfig) -> Option<Selection> {
    let windows = folds(prep, cfg);
    if windows.is_empty() {
        return None;
    }
    let mut runs = Vec::new();
    for m in METHODS {
        let (a, p) = backtest_pairs(prep, m, &windows, cfg);
        runs.push((score(m, &a, &p), a, p));
    }
    let actual = &runs[0].1;
    let mean_actual = if actual.is_empty() {
        0.0
    } else {
        actual.iter().sum::<f64>() / actual.len() as f64
    };
    let sparse = mean_actual < 1.0;
    // Ties go to the later (stronger) method in METHODS order.
    let mut best = runs.len() - 1;
    for (i, r) in runs.iter().enumerate() {
        if criterion(&r.0, sparse) < criterion(&runs[best].0, sparse) {
            best = i;
        }
    }
    let dispersion = pearson_dispersion(&runs[best].1, &runs[best].2);
    let noise_floor = poisson_noise_floor_pooled(&runs[best].2);
    Some(Selection {
        best: runs[best].0.method,
        scores: runs.into_iter().map(|r| r.0).collect(),
        dispersion,
        windows,
        sparse,
        noise_floor,
    })
}

/// Forecasts one series over `horizon`, choosing the method by backtest.
pub fn forecast(series: &Series, horizon: &[HorizonSlot], cfg: &ForecastConfig) -> Result<Forecast> {
    let prep = prepare(series)?;
    check_horizon(horizon, prep.slots_per_day)?;
    let keys: Vec<(u8, u16)> = horizon.iter().map(|h| (h.weekday, h.slot)).collect();
    let usable = prep.points.iter().filter(|p| exposure(p).is_some()).count();
    if usable == 0 {
        let note = if prep.points.is_empty() {
            "empty history: forecasting zero"
        } else {
            "every history point is excluded: forecasting zero"
        };
        return Ok(finish(
            Method::Zero,
            note.into(),
            1.0,
            &vec![0.0; keys.len()],
            horizon,
            Vec::new(),
            None,
        ));
    }
    let spd = prep.slots_per_day;
    match select(&prep, cfg) {
        Some(sel) => {
            let means = predict(sel.best, prep.points, &keys, spd, prep.interval_s, cfg);
            let note = format!(
                "chosen by {}-window rolling-origin backtest on {}",
                sel.windows.len(),
                if sel.sparse {
                    "Poisson deviance (sparse series: under 1 arrival per interval, WAPE would favour zero)"
                } else {
                    "WAPE"
                }
            );
            Ok(finish(
                sel.best,
                note,
                sel.dispersion,
                &means,
                horizon,
                sel.scores,
                sel.noise_floor,
            ))
        }
        None => {
            // No backtest possible: the pooled Poisson model degrades best.
            let fit = PoissonFit::fit(prep.points, spd, prep.interval_s, cfg);
            let (mut act, mut pred) = (Vec::new(), Vec::new());
            for (i, p) in prep.points.iter().enumerate() {
                if let Some(e) = exposure(p) {
                    act.push(p.count);
                    pred.push(fit.mean_at(p.weekday, p.slot, i) * e);
                }
            }
            let means: Vec<f64> = keys
                .iter()
                .enumerate()
                .map(|(h, (w, s))| fit.mean_at(*w, *s, prep.points.len() + h))
                .collect();
            let days = prep.points.len() as f64 / spd as f64;
            let note = format!(
                "history of {days:.1} days is shorter than the 14 needed for a backtest: \
                 poisson_trend without trend, unseen weekdays use the pooled slot shape, \
                 dispersion from in-sample residuals"
            );
            Ok(finish(
                Method::PoissonTrend,
                note,
                pearson_dispersion(&act, &pred),
                &means,
                horizon,
                Vec::new(),
                None,
            ))
        }
    }
}

/// Means of one given method over `horizon` (multipliers applied), without
/// selection: for reports comparing methods and for what-if plans.
pub fn forecast_method(
    series: &Series,
    horizon: &[HorizonSlot],
    method: Method,
    cfg: &ForecastConfig,
) -> Result<Vec<f64>> {
    let prep = prepare(series)?;
    check_horizon(horizon, prep.slots_per_day)?;
    if method == Method::AggregateSplit {
        return Err(Error::Invalid {
            param: "method",
            detail: "aggregate_split needs a group: use forecast_group".into(),
        });
    }
    let keys: Vec<(u8, u16)> = horizon.iter().map(|h| (h.weekday, h.slot)).collect();
    let means = predict(method, prep.points, &keys, prep.slots_per_day, prep.interval_s, cfg);
    Ok(means.iter().zip(horizon).map(|(m, h)| m * h.multiplier).collect())
}

/// Forecasts a group of queues (e.g. the languages of one channel), each
/// either on its own or as its share of the group total, whichever backtests
/// better. All series must share interval, length, keys and special marks.
pub fn forecast_group(group: &[Series], horizon: &[HorizonSlot], cfg: &ForecastConfig) -> Result<Vec<Forecast>> {
    let Some(first) = group.first() else {
        return Ok(Vec::new());
    };
    for s in group {
        if s.interval_s != first.interval_s || s.points.len() != first.points.len() {
            return Err(Error::Invalid {
                param: "series",
                detail: "every series of a group needs the same interval and length".into(),
            });
        }
        for (a, b) in s.points.iter().zip(&first.points) {
            if (a.weekday, a.slot, a.special) != (b.weekday, b.slot, b.special) {
                return Err(Error::Invalid {
                    param: "series",
                    detail: "every series of a group needs the same weekday, slot and special marks per point".into(),
                });
            }
        }
    }
    let aggregate = Series {
        interval_s: first.interval_s,
        points: first
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| Point {
                count: group.iter().map(|s| s.points[i].count).sum(),
                ..*p
            })
            .collect(),
    };
    let agg_prep = prepare(&aggregate)?;
    check_horizon(horizon, agg_prep.slots_per_day)?;
    let agg_sel = select(&agg_prep, cfg);
    let agg_fc = forecast(&aggregate, horizon, cfg)?;
    let spd = agg_prep.slots_per_day;
    let share_window = 28 * spd;

    let mut out = Vec::with_capacity(group.len());
    for s in group {
        let own = forecast(s, horizon, cfg)?;
        let (Some(asel), false) = (&agg_sel, own.backtest.is_empty()) else {
            out.push(own);
            continue;
        };
        let prep = prepare(s)?;
        // Backtest the split: the aggregate's method on each window's
        // training data, times the queue's share of that training data.
        let (mut act, mut pred) = (Vec::new(), Vec::new());
        for &(o, e) in &asel.windows {
            let test = &prep.points[o..e];
            let keys: Vec<(u8, u16)> = test.iter().map(|p| (p.weekday, p.slot)).collect();
            let agg_means = predict(asel.best, &agg_prep.points[..o], &keys, spd, prep.interval_s, cfg);
            let share = share_of(&prep.points[..o], &agg_prep.points[..o], share_window);
            let means: Vec<f64> = agg_means.iter().map(|m| m * share).collect();
            push_scored(test, &means, &mut act, &mut pred);
        }
        let split_score = score(Method::AggregateSplit, &act, &pred);
        let sparse = act.iter().sum::<f64>() < act.len() as f64;
        let own_best = own
            .backtest
            .iter()
            .find(|m| m.method == own.method)
            .map_or(f64::INFINITY, |m| criterion(m, sparse));
        if criterion(&split_score, sparse) < own_best {
            let share = share_of(prep.points, agg_prep.points, share_window);
            let means: Vec<f64> = agg_fc
                .points
                .iter()
                .zip(horizon)
                .map(|(p, h)| {
                    if h.multiplier > 0.0 {
                        p.mean / h.multiplier * share
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut backtest = own.backtest.clone();
            backtest.push(split_score);
            let note = format!(
                "aggregate ({:?}) × share {share:.4} of the last 28 days: backtests better than {:?} alone",
                agg_fc.method, own.method
            );
            out.push(finish(
                Method::AggregateSplit,
                note,
                pearson_dispersion(&act, &pred),
                &means,
                horizon,
                backtest,
                own.noise_floor_wape,
            ));
        } else {
            let mut own = own;
            own.backtest.push(split_score);
            out.push(own);
        }
    }
    Ok(out)
}

/// A queue's share of the group total over the last `window` points
/// (normalised counts, excluded points skipped).
fn share_of(queue: &[Point], total: &[Point], window: usize) -> f64 {
    let start = queue.len().saturating_sub(window);
    let (mut q, mut t) = (0.0, 0.0);
    for (a, b) in queue[start..].iter().zip(&total[start..]) {
        if let Some(e) = exposure(a) {
            q += a.count / e;
            t += b.count / e;
        }
    }
    if t > 0.0 { q / t } else { 0.0 }
}

#[cfg(test)]
mod tests;
