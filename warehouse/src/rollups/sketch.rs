//! A mergeable quantile sketch: a fixed log-bucket histogram (the DDSketch
//! mapping, Masson et al., VLDB 2019) with an exact count and sum.
//!
//! A positive value `x` goes to bucket `ceil(ln x / ln γ)` and is read back
//! as `2 γ^i / (γ + 1)`, which is within a relative [`RELATIVE_ERROR`] of
//! every value in the bucket; negatives mirror that; values with
//! `|x| < `[`ZERO_BELOW`] (a microsecond) are read back as 0. A quantile
//! is an interpolation between two order statistics (PostgreSQL's
//! `percentile_cont`, which the SQL path uses), each read back within the
//! relative error, so the quantile is too (for order statistics of one
//! sign). Count and sum are exact, so means are exact.
//!
//! Buckets are fixed, so two sketches merge by adding counts: daily or
//! hourly sketches add up to any longer period with the same error bound.
//! [`Sketch`] is the sparse form kept in rollup cells (a few bytes per
//! non-empty bucket); [`SketchAcc`] the dense form a query adds into.

/// γ = (1 + α) / (1 − α) for α = 1 %.
const GAMMA: f64 = 1.0202020202020203;
/// Relative error of a quantile read back from a sketch.
pub const RELATIVE_ERROR: f64 = 0.01;
/// Magnitudes below this are read back as 0 (absolute error ≤ 1 µs).
pub const ZERO_BELOW: f64 = 1e-6;
/// Magnitudes above this are clamped (about 31 700 years in seconds).
const MAX_VALUE: f64 = 1e12;
/// Bucket of `ZERO_BELOW` is about −690, of `MAX_VALUE` about 1386.
const KEY_OFFSET: i32 = 700;
/// Buckets per sign.
const BINS: usize = 2100;

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

/// The bucket of a magnitude `m >= ZERO_BELOW`, in `0..BINS`.
fn bin(m: f64) -> usize {
    let i = (m.min(MAX_VALUE).ln() / ln_gamma()).ceil() as i32 + KEY_OFFSET;
    i.clamp(0, BINS as i32 - 1) as usize
}

/// The value a bucket is read back as.
fn bin_value(b: usize) -> f64 {
    let i = b as i32 - KEY_OFFSET;
    2.0 * GAMMA.powi(i) / (GAMMA + 1.0)
}

/// Sparse sketch: sorted `(key, count)`; keys `0..BINS` are positive
/// values, `BINS..2*BINS` negative ones.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    bins: Vec<(u16, u32)>,
    zero: u64,
    count: u64,
    sum: f64,
}

impl Sketch {
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += x;
        let m = x.abs();
        if m < ZERO_BELOW {
            self.zero += 1;
            return;
        }
        let key = (bin(m) + if x < 0.0 { BINS } else { 0 }) as u16;
        match self.bins.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => self.bins[i].1 += 1,
            Err(i) => self.bins.insert(i, (key, 1)),
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn shrink(&mut self) {
        self.bins.shrink_to_fit();
    }
}

/// Most values a [`SketchAcc`] keeps to answer exactly.
pub const EXACT_MAX_VALUES: usize = 200_000;

/// The dense buckets of a [`SketchAcc`]: positive magnitudes, then
/// negative ones.
#[derive(Debug, Clone)]
struct Dense {
    pos: Vec<u64>,
    neg: Vec<u64>,
    zero: u64,
}

impl Dense {
    fn new() -> Self {
        Self {
            pos: vec![0; BINS],
            neg: vec![0; BINS],
            zero: 0,
        }
    }

    fn add(&mut self, x: f64) {
        let m = x.abs();
        if m < ZERO_BELOW {
            self.zero += 1;
        } else if x < 0.0 {
            self.neg[bin(m)] += 1;
        } else {
            self.pos[bin(m)] += 1;
        }
    }

    /// The `rank`-th smallest value (0-based), read back from its bucket.
    fn order_statistic(&self, rank: u64) -> f64 {
        let mut seen = 0u64;
        // negatives: largest magnitude first
        for b in (0..BINS).rev() {
            seen += self.neg[b];
            if rank < seen {
                return -bin_value(b);
            }
        }
        seen += self.zero;
        if rank < seen {
            return 0.0;
        }
        for b in 0..BINS {
            seen += self.pos[b];
            if rank < seen {
                return bin_value(b);
            }
        }
        // rank >= count: the largest value
        (0..BINS).rev().find(|&b| self.pos[b] > 0).map_or(0.0, bin_value)
    }
}

/// What a [`SketchAcc`] holds: its values while they answer exactly, or
/// the buckets.
#[derive(Debug, Clone)]
enum Held {
    /// Every value added, in no order.
    Exact(Vec<f64>),
    Dense(Box<Dense>),
}

/// Dense sketch that queries add into. While every value came through
/// [`SketchAcc::add`] and there are at most [`EXACT_MAX_VALUES`], it keeps
/// the values alone and answers quantiles exactly (by selection, which
/// reorders them); past that, or once a [`Sketch`] is merged,
/// it holds the buckets (33 KB, so a query over many groups allocates them
/// only for the groups that need them) and answers within the relative
/// error.
#[derive(Debug, Clone)]
pub struct SketchAcc {
    count: u64,
    sum: f64,
    held: Held,
}

impl Default for SketchAcc {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            held: Held::Exact(Vec::new()),
        }
    }
}

impl SketchAcc {
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += x;
        if let Held::Exact(values) = &mut self.held
            && values.len() < EXACT_MAX_VALUES
        {
            values.push(x);
            return;
        }
        self.dense_mut().add(x);
    }

    /// The buckets, made from the values kept so far when there are none
    /// yet (the answers are approximate from then on).
    fn dense_mut(&mut self) -> &mut Dense {
        if let Held::Exact(values) = &self.held {
            let mut dense = Box::new(Dense::new());
            for &x in values {
                dense.add(x);
            }
            self.held = Held::Dense(dense);
        }
        match &mut self.held {
            Held::Dense(dense) => dense,
            Held::Exact(_) => unreachable!("made above"),
        }
    }

    pub fn merge(&mut self, s: &Sketch) {
        if s.count == 0 {
            return;
        }
        self.count += s.count;
        self.sum += s.sum;
        let dense = self.dense_mut();
        dense.zero += s.zero;
        for &(k, c) in &s.bins {
            let k = k as usize;
            if k >= BINS {
                dense.neg[k - BINS] += u64::from(c);
            } else {
                dense.pos[k] += u64::from(c);
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether quantiles are exact (no sketch merged, few values).
    pub fn is_exact(&self) -> bool {
        matches!(self.held, Held::Exact(_))
    }

    /// Forgets the values kept for exact answers (tests of the sketch).
    pub fn approximate(&mut self) {
        self.dense_mut();
    }

    /// Exact mean (sum / count); `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// `percentile_cont(q)`: linear interpolation between the order
    /// statistics around `q (n − 1)`; `None` when empty.
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let h = q.clamp(0.0, 1.0) * (self.count - 1) as f64;
        let (lo, hi) = (h.floor() as u64, h.ceil() as u64);
        let (a, b) = match &mut self.held {
            Held::Exact(v) => {
                // the order statistics by selection, in linear time
                let (_, a, above) = v.select_nth_unstable_by(lo as usize, |a, b| a.total_cmp(b));
                let a = *a;
                let b = if hi == lo {
                    a
                } else {
                    above.iter().copied().min_by(|a, b| a.total_cmp(b)).unwrap_or(a)
                };
                (a, b)
            }
            Held::Dense(d) => {
                let a = d.order_statistic(lo);
                let b = if hi == lo { a } else { d.order_statistic(hi) };
                (a, b)
            }
        };
        Some(a + (h - lo as f64) * (b - a))
    }
}
