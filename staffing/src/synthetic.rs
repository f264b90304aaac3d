//! Deterministic synthetic arrival series shaped like chat traffic, for tests
//! and the benchmark. Not a model of any real tenant: a known truth to check
//! that forecasts recover it.
//!
//! Shape: two intraday peaks (late morning, mid afternoon) over a night
//! floor, weekends lower and later, multiplicative weekly growth, Poisson
//! counts. The generator is a SplitMix64 stream so a seed always gives the
//! same series, on every platform.

use crate::forecast::{Point, Special};

/// A small deterministic PRNG (SplitMix64, Steele et al. 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson draw. Inversion by sequential search, split into pieces of
    /// mean ≤ 200 so `e^(−mean)` never underflows (a sum of Poissons is
    /// Poisson).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean.is_nan() || mean <= 0.0 || mean.is_infinite() {
            return 0;
        }
        let pieces = (mean / 200.0).ceil().max(1.0);
        let m = mean / pieces;
        let mut total = 0;
        for _ in 0..pieces as u64 {
            let u = self.next_f64();
            let mut k = 0u64;
            let mut p = (-m).exp();
            let mut cdf = p;
            while u > cdf && k < 100_000 {
                k += 1;
                p *= m / k as f64;
                cdf += p;
            }
            total += k;
        }
        total
    }
}

/// Relative arrival intensity at a local weekday (0 = Monday) and time of
/// day in hours; the weekly mean of the intensity is about 1.
pub fn chat_intensity(weekday: u8, hour: f64) -> f64 {
    let bump = |centre: f64, width: f64| (-0.5 * ((hour - centre) / width).powi(2)).exp();
    let weekend = weekday >= 5;
    let shape = if weekend {
        0.08 + 0.9 * bump(12.5, 2.5) + 0.7 * bump(17.0, 2.5)
    } else {
        0.05 + 1.0 * bump(10.5, 1.6) + 0.85 * bump(14.5, 2.0) + 0.3 * bump(20.0, 1.5)
    };
    let day_factor = [1.2, 1.1, 1.05, 1.0, 0.9, 0.5, 0.4][usize::from(weekday.min(6))];
    // 2.05 normalises the weekly mean of `shape × day_factor` to about 1.
    2.05 * shape * day_factor
}

/// How to generate a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatSeriesSpec {
    /// Number of days.
    pub days: usize,
    /// 900 or 1800.
    pub interval_s: u32,
    /// Weekday of the first day, 0 = Monday.
    pub start_weekday: u8,
    /// Mean arrivals per interval over a week at the start.
    pub mean_per_interval: f64,
    /// Multiplicative growth per week, e.g. 0.02 for +2 %/week.
    pub growth_per_week: f64,
    /// PRNG seed.
    pub seed: u64,
}

/// A generated series with the true mean of each point.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSeries {
    /// The counts, as a forecast input.
    pub points: Vec<Point>,
    /// The true expected count of each point.
    pub truth: Vec<f64>,
}

/// True expected count at day `day` (from the start), slot `slot`.
pub fn chat_mean(spec: &ChatSeriesSpec, day: usize, slot: u16) -> f64 {
    let weekday = ((usize::from(spec.start_weekday) + day) % 7) as u8;
    let hour = (f64::from(slot) + 0.5) * f64::from(spec.interval_s) / 3600.0;
    let slot_in_day = f64::from(slot) * f64::from(spec.interval_s) / 86_400.0;
    let weeks = (day as f64 + slot_in_day) / 7.0;
    spec.mean_per_interval * chat_intensity(weekday, hour) * (1.0 + spec.growth_per_week).powf(weeks)
}

/// Generates a series of `spec.days` whole days.
pub fn chat_series(spec: &ChatSeriesSpec) -> ChatSeries {
    let spd = (86_400 / spec.interval_s.max(1)) as u16;
    let mut rng = SplitMix64::new(spec.seed);
    let mut points = Vec::with_capacity(spec.days * usize::from(spd));
    let mut truth = Vec::with_capacity(points.capacity());
    for day in 0..spec.days {
        let weekday = ((usize::from(spec.start_weekday) + day) % 7) as u8;
        for slot in 0..spd {
            let mean = chat_mean(spec, day, slot);
            points.push(Point {
                weekday,
                slot,
                count: rng.poisson(mean) as f64,
                special: Special::Normal,
            });
            truth.push(mean);
        }
    }
    ChatSeries { points, truth }
}
