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
//! * [`Method::AggregateSplit`] — for small queues: an aggregate the queue
//!   is part of (the tenant's total, a group of queues) is forecast with the
//!   Poisson model and multiplied by the queue's share of the aggregate over
//!   the last 28 days ([`forecast_with_aggregate`], [`forecast_group`]). It
//!   is a candidate like the others whenever an aggregate is given, so it is
//!   used exactly when it backtests better.
//!
//! # Selection and quantiles
//!
//! Each candidate — the three baselines, the Poisson model, and the split
//! when an aggregate is given — is scored by a rolling-origin backtest: up to
//! [`ForecastConfig::backtest_folds`] non-overlapping 7-day windows at the
//! end of the history, each forecast from the history before it. The
//! candidate with the lowest pooled **WAPE** wins, so the chosen method is
//! never worse than the best (eligible) baseline on those windows. For
//! sparse series (under one arrival per interval on average in the windows)
//! WAPE cannot tell a good mean forecast from a bad one: it is minimised by
//! the median, which is 0 there — an all-zero forecast scores 1 while the
//! true mean scores about 2, and a noisy copy of last week beats a smooth
//! model. There the mean **Poisson deviance**, a proper score that the true
//! mean minimises, decides instead (again among all candidates, baselines
//! included). The guard: a
//! candidate whose backtest forecasts fall short of the actual total by more
//! than [`MAX_UNDER_FORECAST`] (10 %, or two Poisson standard deviations of
//! the total when that is more) is not eligible. WAPE's best point forecast
//! is the median, and on sparse series (under 0.69 arrivals per interval
//! the Poisson median is 0) it rewards forecasting low — which would starve
//! the queue, and under-staffing costs far more than over-staffing. Every
//! score carries its `bias` (forecast total / actual total − 1) and
//! whether it was `eligible`. Below two weeks of history there is no
//! backtest: the Poisson model is used (it falls back to pooled shapes) and
//! the result says so.
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
    /// Forecast total / actual total − 1 over the backtest windows.
    pub bias: Option<f64>,
    /// Whether the method could be chosen: it does not under-forecast the
    /// backtest total beyond [`MAX_UNDER_FORECAST`].
    pub eligible: bool,
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
    /// What the backtest chose by (`None` without a backtest).
    pub selected_by: Option<Criterion>,
}

/// The backtest score a method is chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Pooled WAPE: series with at least one arrival per interval.
    Wape,
    /// Mean Poisson deviance: sparser series.
    PoissonDeviance,
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
    if mean.is_nan() || mean <= 0.0 || mean.is_infinite() {
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

/// Means (before horizon multipliers) for `keys` following `train`;
/// `agg_train` is the aggregate over the same positions (for
/// [`Method::AggregateSplit`]).
fn predict(
    method: Method,
    train: &[Point],
    agg_train: Option<&[Point]>,
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
        Method::AggregateSplit => match agg_train {
            Some(agg) => {
                // The aggregate is dense, where the Poisson regression is the
                // strong model; the share is the queue's over the last 28 days.
                let share = share_of(train, agg, SHARE_WINDOW_DAYS * spd);
                predict(Method::PoissonTrend, agg, None, keys, spd, interval_s, cfg)
                    .into_iter()
                    .map(|m| m * share)
                    .collect()
            }
            None => vec![0.0; keys.len()],
        },
        Method::Zero => vec![0.0; keys.len()],
        baseline => {
            let hist = CellHistory::new(train, spd);
            keys.iter()
                .map(|(w, s)| hist.predict(baseline, *w, *s, spd, cfg.k_weeks))
                .collect()
        }
    }
}

/// Days over which a queue's share of its aggregate is measured.
const SHARE_WINDOW_DAYS: usize = 28;

/// A candidate whose backtest forecasts fall short of the actual total by
/// more than this fraction (or two Poisson standard deviations of the
/// total, whichever is larger) is not chosen: under-staffing costs far more
/// than over-staffing, and on sparse series WAPE rewards forecasting low
/// (its best point forecast is the median, which is 0 below 0.69 arrivals
/// per interval).
pub const MAX_UNDER_FORECAST: f64 = 0.1;

/// Whether `pred` under-forecasts `act` beyond [`MAX_UNDER_FORECAST`].
fn under_forecasts(act: &[f64], pred: &[f64]) -> bool {
    let a: f64 = act.iter().sum();
    let p: f64 = pred.iter().sum();
    a - p > (MAX_UNDER_FORECAST * a).max(2.0 * a.sqrt())
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
    agg: Option<&[Point]>,
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
            agg.map(|a| &a[..o]),
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
    let total: f64 = act.iter().sum();
    MethodScore {
        method,
        wape: wape(act, pred),
        mape: m.value,
        mape_skipped_zero: m.skipped_zero_actuals,
        poisson_deviance: poisson_deviance(act, pred),
        bias: (total > 0.0).then(|| pred.iter().sum::<f64>() / total - 1.0),
        eligible: !under_forecasts(act, pred),
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

/// What a backtest adds to a forecast.
struct Scored {
    backtest: Vec<MethodScore>,
    noise_floor_wape: Option<f64>,
    selected_by: Option<Criterion>,
}

impl Scored {
    fn none() -> Self {
        Self {
            backtest: Vec::new(),
            noise_floor_wape: None,
            selected_by: None,
        }
    }
}

fn finish(
    method: Method,
    note: String,
    dispersion: f64,
    means: &[f64],
    horizon: &[HorizonSlot],
    scored: Scored,
) -> Forecast {
    let Scored {
        backtest,
        noise_floor_wape,
        selected_by,
    } = scored;
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
        selected_by,
    }
}

/// Selection criterion: WAPE for series with at least one arrival per
/// interval, mean Poisson deviance for sparser ones (see module docs).
pub fn criterion(s: &MethodScore, sparse: bool) -> f64 {
    if sparse {
        s.poisson_deviance
    } else {
        s.wape.unwrap_or(f64::INFINITY)
    }
}

/// Whether a backtest of these actuals is judged by Poisson deviance
/// rather than WAPE: under one arrival per interval on average.
pub fn is_sparse(actual: &[f64]) -> bool {
    actual.iter().sum::<f64>() < actual.len() as f64
}

/// Result of scoring every candidate.
struct Selection {
    best: Method,
    scores: Vec<MethodScore>,
    dispersion: f64,
    windows: Vec<(usize, usize)>,
    /// Whether no candidate was eligible and the guard was dropped.
    unguarded: bool,
    /// Under one arrival per interval: chosen by Poisson deviance.
    sparse: bool,
    noise_floor: Option<f64>,
}

fn select(prep: &Prepared<'_>, agg: Option<&[Point]>, cfg: &ForecastConfig) -> Option<Selection> {
    let windows = folds(prep, cfg);
    if windows.is_empty() {
        return None;
    }
    let mut candidates = METHODS.to_vec();
    if agg.is_some() {
        candidates.push(Method::AggregateSplit);
    }
    let mut runs = Vec::new();
    for m in candidates {
        let (a, p) = backtest_pairs(prep, agg, m, &windows, cfg);
        runs.push((score(m, &a, &p), a, p));
    }
    let actual = &runs[0].1;
    let sparse = is_sparse(actual);
    let unguarded = !runs.iter().any(|r| r.0.eligible);
    let loss = |r: &(MethodScore, Vec<f64>, Vec<f64>)| {
        if r.0.eligible || unguarded {
            criterion(&r.0, sparse)
        } else {
            f64::INFINITY
        }
    };
    // Lowest loss among the eligible candidates; ties go to the later
    // (stronger) one. Without arrivals in the windows every WAPE is
    // undefined and the Poisson model is kept.
    let mut best = METHODS.len() - 1;
    for (i, r) in runs.iter().enumerate() {
        if loss(r) <= loss(&runs[best]) && loss(r).is_finite() {
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
        unguarded,
        sparse,
        noise_floor,
    })
}

/// Forecasts one series over `horizon`, choosing the method by backtest.
pub fn forecast(series: &Series, horizon: &[HorizonSlot], cfg: &ForecastConfig) -> Result<Forecast> {
    forecast_with_aggregate(series, None, horizon, cfg)
}

/// Checks that `aggregate` lines up with `series` point by point.
fn check_aggregate(series: &Series, aggregate: &Series) -> Result<()> {
    if aggregate.interval_s != series.interval_s || aggregate.points.len() != series.points.len() {
        return Err(Error::Invalid {
            param: "aggregate",
            detail: "the aggregate needs the same interval and length as the series".into(),
        });
    }
    for (a, b) in series.points.iter().zip(&aggregate.points) {
        if (a.weekday, a.slot) != (b.weekday, b.slot) {
            return Err(Error::Invalid {
                param: "aggregate",
                detail: "the aggregate needs the same weekday and slot per point as the series".into(),
            });
        }
        if b.count < a.count {
            return Err(Error::Invalid {
                param: "aggregate",
                detail: format!(
                    "the aggregate ({}) is below the series ({}) in one interval",
                    b.count, a.count
                ),
            });
        }
    }
    Ok(())
}

/// Forecasts one series over `horizon`, choosing the method by backtest,
/// with [`Method::AggregateSplit`] among the candidates when `aggregate`
/// (a total the series is part of, e.g. the tenant's or the channel's
/// arrivals, over the same intervals) is given. The aggregate's counts are
/// used as they are; the series' special marks apply to both.
pub fn forecast_with_aggregate(
    series: &Series,
    aggregate: Option<&Series>,
    horizon: &[HorizonSlot],
    cfg: &ForecastConfig,
) -> Result<Forecast> {
    let prep = prepare(series)?;
    check_horizon(horizon, prep.slots_per_day)?;
    let agg_points: Option<Vec<Point>> = match aggregate {
        Some(a) => {
            check_aggregate(series, a)?;
            for p in &a.points {
                finite("aggregate", p.count)?;
            }
            // The series' special marks apply to the aggregate.
            Some(
                a.points
                    .iter()
                    .zip(&series.points)
                    .map(|(ap, sp)| Point {
                        special: sp.special,
                        ..*ap
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let agg = agg_points.as_deref();
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
            Scored::none(),
        ));
    }
    let spd = prep.slots_per_day;
    match select(&prep, agg, cfg) {
        Some(sel) => {
            let means = predict(sel.best, prep.points, agg, &keys, spd, prep.interval_s, cfg);
            let mut note = format!(
                "chosen by {}-window rolling-origin backtest: lowest {} among {} candidates",
                sel.windows.len(),
                if sel.sparse {
                    "Poisson deviance (sparse series: under 1 arrival per interval, where WAPE would favour forecasting zero or copying noise)"
                } else {
                    "WAPE"
                },
                sel.scores.len()
            );
            if sel.unguarded {
                note.push_str(" (every candidate under-forecast the backtest total by more than 10 %: none excluded)");
            } else if sel.scores.iter().any(|s| !s.eligible) {
                let excluded: Vec<String> = sel
                    .scores
                    .iter()
                    .filter(|s| !s.eligible)
                    .map(|s| method_name(s.method))
                    .collect();
                note.push_str(&format!(
                    " that do not under-forecast the backtest total by more than 10 % (excluded: {})",
                    excluded.join(", ")
                ));
            }
            if sel.best == Method::AggregateSplit
                && let Some(a) = agg
            {
                note.push_str(&format!(
                    "; aggregate forecast by poisson_trend × the queue's share {:.4} of the last {SHARE_WINDOW_DAYS} days",
                    share_of(prep.points, a, SHARE_WINDOW_DAYS * spd)
                ));
            }
            Ok(finish(
                sel.best,
                note,
                sel.dispersion,
                &means,
                horizon,
                Scored {
                    backtest: sel.scores,
                    noise_floor_wape: sel.noise_floor,
                    selected_by: Some(if sel.sparse {
                        Criterion::PoissonDeviance
                    } else {
                        Criterion::Wape
                    }),
                },
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
                Scored::none(),
            ))
        }
    }
}

/// The snake_case name of a method, as in JSON.
pub fn method_name(m: Method) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{m:?}"))
}

/// Means of one given method over `horizon` (multipliers applied), without
/// selection: for reports comparing methods and for what-if plans.
pub fn forecast_method(
    series: &Series,
    horizon: &[HorizonSlot],
    method: Method,
    cfg: &ForecastConfig,
) -> Result<Vec<f64>> {
    forecast_method_with_aggregate(series, None, horizon, method, cfg)
}

/// [`forecast_method`] with an aggregate, so that
/// [`Method::AggregateSplit`] can be asked for too.
pub fn forecast_method_with_aggregate(
    series: &Series,
    aggregate: Option<&Series>,
    horizon: &[HorizonSlot],
    method: Method,
    cfg: &ForecastConfig,
) -> Result<Vec<f64>> {
    let prep = prepare(series)?;
    check_horizon(horizon, prep.slots_per_day)?;
    if let Some(a) = aggregate {
        check_aggregate(series, a)?;
    }
    if method == Method::AggregateSplit && aggregate.is_none() {
        return Err(Error::Invalid {
            param: "method",
            detail: "aggregate_split needs an aggregate: use forecast_method_with_aggregate".into(),
        });
    }
    let agg_points: Option<Vec<Point>> = aggregate.map(|a| {
        a.points
            .iter()
            .zip(&series.points)
            .map(|(ap, sp)| Point {
                special: sp.special,
                ..*ap
            })
            .collect()
    });
    let keys: Vec<(u8, u16)> = horizon.iter().map(|h| (h.weekday, h.slot)).collect();
    let means = predict(
        method,
        prep.points,
        agg_points.as_deref(),
        &keys,
        prep.slots_per_day,
        prep.interval_s,
        cfg,
    );
    Ok(means.iter().zip(horizon).map(|(m, h)| m * h.multiplier).collect())
}

/// Forecasts a group of queues (e.g. the languages of one channel), each
/// either on its own or as its share of the group total, whichever backtests
/// better ([`forecast_with_aggregate`] with the group total). All series
/// must share interval, length, keys and special marks.
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
    group
        .iter()
        .map(|s| forecast_with_aggregate(s, Some(&aggregate), horizon, cfg))
        .collect()
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
