//! Summary statistics per arm: what the lake aggregates and the HTTP body carries.

use serde::{Deserialize, Serialize};

use super::{Result, invalid};

/// One arm of a univariate metric: `n` units, `Σ y` and `Σ y²`.
///
/// For a rate (0/1 outcome) `sum` is the number of successes and
/// `sum_squares` may be omitted: it equals `sum` because `y² = y`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Number of units (randomization units, usually customers).
    pub n: u64,
    /// Sum of the metric over units (successes for a rate).
    pub sum: f64,
    /// Sum of squared values; `None` for a rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_squares: Option<f64>,
}

impl ArmSummary {
    /// Summary of raw per-unit values.
    pub fn from_values(values: &[f64]) -> Self {
        Self {
            n: values.len() as u64,
            sum: values.iter().sum(),
            sum_squares: Some(values.iter().map(|v| v * v).sum()),
        }
    }

    /// Summary of a rate: `successes` out of `n`.
    pub fn rate(n: u64, successes: u64) -> Self {
        Self {
            n,
            sum: successes as f64,
            sum_squares: None,
        }
    }

    /// Sample mean `Σy / n`.
    pub fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// Unbiased sample variance `(Σy² − n ȳ²) / (n − 1)`, clamped at 0 against
    /// cancellation. For a rate without `sum_squares`, `Σy² = Σy`.
    pub fn sample_variance(&self) -> f64 {
        let n = self.n as f64;
        let sum_squares = self.sum_squares.unwrap_or(self.sum);
        ((sum_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }

    pub(crate) fn validate_mean(&self, field: &'static str) -> Result<f64> {
        if self.n < 2 {
            return Err(invalid(field, format!("need n >= 2 units, got {}", self.n)));
        }
        if !self.sum.is_finite() {
            return Err(invalid(field, "sum must be finite"));
        }
        match self.sum_squares {
            Some(s) if s.is_finite() && s >= 0.0 => Ok(self.sample_variance()),
            Some(_) => Err(invalid(field, "sum_squares must be finite and >= 0")),
            None => Err(invalid(field, "sum_squares is required for a mean metric")),
        }
    }

    pub(crate) fn validate_rate(&self, field: &'static str) -> Result<f64> {
        if self.n == 0 {
            return Err(invalid(field, "need n >= 1 units"));
        }
        if !(self.sum >= 0.0 && self.sum <= self.n as f64) {
            return Err(invalid(
                field,
                format!("successes (sum) must be in 0..=n ({}), got {}", self.n, self.sum),
            ));
        }
        Ok(self.mean())
    }
}

/// One arm of a bivariate metric: sums of `x`, `y`, `x²`, `y²` and `xy` over `n` units.
///
/// Two uses: a **ratio metric** `Σx / Σy` (e.g. resolved conversations per
/// conversation with customers randomized: `x` = resolved, `y` =
/// conversations of the customer), and **CUPED**, where `y` is the metric and
/// `x` the same metric in the pre-period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BivariateSummary {
    /// Number of units.
    pub n: u64,
    /// Σ x.
    pub sum_x: f64,
    /// Σ y.
    pub sum_y: f64,
    /// Σ x².
    pub sum_x2: f64,
    /// Σ y².
    pub sum_y2: f64,
    /// Σ x·y.
    pub sum_xy: f64,
}

/// Means and unbiased (n − 1) covariance matrix of one bivariate arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moments {
    pub(crate) n: f64,
    pub(crate) mean_x: f64,
    pub(crate) mean_y: f64,
    pub(crate) var_x: f64,
    pub(crate) var_y: f64,
    pub(crate) cov_xy: f64,
}

impl BivariateSummary {
    /// Summary of raw per-unit pairs.
    pub fn from_pairs(pairs: &[(f64, f64)]) -> Self {
        let mut s = Self {
            n: pairs.len() as u64,
            sum_x: 0.0,
            sum_y: 0.0,
            sum_x2: 0.0,
            sum_y2: 0.0,
            sum_xy: 0.0,
        };
        for &(x, y) in pairs {
            s.sum_x += x;
            s.sum_y += y;
            s.sum_x2 += x * x;
            s.sum_y2 += y * y;
            s.sum_xy += x * y;
        }
        s
    }

    /// Element-wise sum of two arms (the pooled sample).
    pub fn pooled(&self, other: &Self) -> Self {
        Self {
            n: self.n + other.n,
            sum_x: self.sum_x + other.sum_x,
            sum_y: self.sum_y + other.sum_y,
            sum_x2: self.sum_x2 + other.sum_x2,
            sum_y2: self.sum_y2 + other.sum_y2,
            sum_xy: self.sum_xy + other.sum_xy,
        }
    }

    pub(crate) fn moments(&self, field: &'static str) -> Result<Moments> {
        if self.n < 2 {
            return Err(invalid(field, format!("need n >= 2 units, got {}", self.n)));
        }
        let all = [self.sum_x, self.sum_y, self.sum_x2, self.sum_y2, self.sum_xy];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(invalid(field, "all sums must be finite"));
        }
        let n = self.n as f64;
        let mean_x = self.sum_x / n;
        let mean_y = self.sum_y / n;
        Ok(Moments {
            n,
            mean_x,
            mean_y,
            var_x: ((self.sum_x2 - self.sum_x * mean_x) / (n - 1.0)).max(0.0),
            var_y: ((self.sum_y2 - self.sum_y * mean_y) / (n - 1.0)).max(0.0),
            cov_xy: (self.sum_xy - self.sum_x * mean_y) / (n - 1.0),
        })
    }
}
