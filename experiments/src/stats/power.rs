//! Power, minimum detectable effect and sample size for two-sided tests with
//! equal arms, normal approximation.
//!
//! Notation: `z_a` is the standard normal `a`-quantile, `d` the absolute
//! effect, `n` units per arm.
//!
//! - Rates (statsmodels `power_proportions_2indep` /
//!   `samplesize_proportions_2indep_onetail`): baseline `p₂`, `p₁ = p₂ + d`,
//!   `p̄ = (p₁ + p₂)/2`, `s₀ = sqrt(2 p̄(1 − p̄))` (null), `s₁ = sqrt(p₁(1 − p₁) + p₂(1 − p₂))`
//!   (alternative).
//! - Means (statsmodels `NormalIndPower`): `s₀ = s₁ = σ√2`.
//! - Power (both tails): `1 − Φ(z_{1−α/2} s₀/s₁ − d√n/s₁) + Φ(−z_{1−α/2} s₀/s₁ − d√n/s₁)`.
//! - Sample size (closed form, the far tail neglected as statsmodels does):
//!   `n = ((z_{1−α/2} s₀ + z_{power} s₁) / d)²`, rounded up.
//! - MDE: the `d > 0` at which the power equals the target, by bisection on
//!   the exact two-tailed power.
//!
//! "Achieved power" at the *observed* effect is a transform of the p-value and
//! says little; cxlake reports power at the documented minimum useful effect
//! ([`power_from_standard_error`]) and the MDE instead.

use serde::{Deserialize, Serialize};

use super::dist::{normal_cdf, normal_quantile, normal_sf};
use super::{Result, check_alpha, invalid};

/// Smallest effect worth detecting, absolute (metric units; a rate's units
/// are fractions, so 0.01 = 1 pp) or relative to the baseline (0.05 = +5 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum MinimumEffect {
    /// In metric units.
    Absolute(f64),
    /// As a fraction of the baseline.
    Relative(f64),
}

impl MinimumEffect {
    /// The absolute effect for a given baseline.
    pub fn absolute(self, baseline: f64) -> f64 {
        match self {
            MinimumEffect::Absolute(d) => d,
            MinimumEffect::Relative(r) => r * baseline,
        }
    }
}

/// Units needed per arm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSizeResult {
    /// Units per arm, rounded up.
    pub units_per_arm: u64,
    /// Units per arm before rounding.
    pub units_per_arm_exact: f64,
    /// The absolute effect the size is computed for.
    pub absolute_effect: f64,
    /// Two-sided significance level.
    pub alpha: f64,
    /// Target power.
    pub power: f64,
}

impl SampleSizeResult {
    /// Days until every arm has its units, at `daily_units` units per day
    /// entering the experiment across `arms` equally weighted arms.
    pub fn days_at(&self, daily_units: f64, arms: u32) -> Result<f64> {
        if !(daily_units > 0.0 && daily_units.is_finite()) || arms == 0 {
            return Err(invalid("daily_units", "must be positive, with at least one arm"));
        }
        Ok(self.units_per_arm as f64 * f64::from(arms) / daily_units)
    }
}

fn check_power(power: f64) -> Result<()> {
    if power > 0.0 && power < 1.0 {
        Ok(())
    } else {
        Err(invalid("power", format!("must be in (0, 1), got {power}")))
    }
}

fn check_rate(field: &'static str, p: f64) -> Result<()> {
    if p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("must be a rate in (0, 1), got {p}")))
    }
}

/// (s₀, s₁) for rates.
fn rate_stds(baseline: f64, diff: f64) -> (f64, f64) {
    let p1 = baseline + diff;
    let mean = (p1 + baseline) / 2.0;
    (
        (2.0 * mean * (1.0 - mean)).sqrt(),
        (p1 * (1.0 - p1) + baseline * (1.0 - baseline)).sqrt(),
    )
}

/// Two-tailed power for effect `d` with null/alternative stds and `n` per arm.
fn two_tailed_power(d: f64, n: f64, std_null: f64, std_alt: f64, alpha: f64) -> f64 {
    let crit = normal_quantile(1.0 - alpha / 2.0);
    let ratio = std_null / std_alt;
    let shift = d * n.sqrt() / std_alt;
    normal_sf(crit * ratio - shift) + normal_cdf(-crit * ratio - shift)
}

fn sample_size(d: f64, std_null: f64, std_alt: f64, alpha: f64, power: f64) -> SampleSizeResult {
    let crit = normal_quantile(1.0 - alpha / 2.0);
    let crit_power = normal_quantile(power);
    let exact = ((crit * std_null + crit_power * std_alt).max(0.0) / d).powi(2);
    SampleSizeResult {
        units_per_arm: exact.ceil() as u64,
        units_per_arm_exact: exact,
        absolute_effect: d,
        alpha,
        power,
    }
}

/// Units per arm to detect `effect` on a rate with baseline `baseline_rate`.
pub fn sample_size_proportions(
    baseline_rate: f64,
    effect: MinimumEffect,
    alpha: f64,
    power: f64,
) -> Result<SampleSizeResult> {
    check_alpha(alpha)?;
    check_power(power)?;
    check_rate("baseline", baseline_rate)?;
    let d = effect.absolute(baseline_rate);
    if d == 0.0 || !d.is_finite() {
        return Err(invalid("minimum_effect", "must be non-zero and finite"));
    }
    check_rate("baseline + minimum_effect", baseline_rate + d)?;
    let (s0, s1) = rate_stds(baseline_rate, d);
    Ok(sample_size(d.abs(), s0, s1, alpha, power))
}

/// Units per arm to detect `effect` on a mean with baseline `baseline_mean`
/// and per-unit standard deviation `std_dev`.
pub fn sample_size_means(
    baseline_mean: f64,
    std_dev: f64,
    effect: MinimumEffect,
    alpha: f64,
    power: f64,
) -> Result<SampleSizeResult> {
    check_alpha(alpha)?;
    check_power(power)?;
    if !(std_dev > 0.0 && std_dev.is_finite()) {
        return Err(invalid("std_dev", "must be positive and finite"));
    }
    let d = effect.absolute(baseline_mean);
    if d == 0.0 || !d.is_finite() {
        return Err(invalid("minimum_effect", "must be non-zero and finite"));
    }
    let s = std_dev * std::f64::consts::SQRT_2;
    Ok(sample_size(d.abs(), s, s, alpha, power))
}

/// Power to detect an absolute change `absolute_effect` of a rate with `n_per_arm`.
pub fn power_proportions(baseline_rate: f64, absolute_effect: f64, n_per_arm: f64, alpha: f64) -> Result<f64> {
    check_alpha(alpha)?;
    check_rate("baseline", baseline_rate)?;
    check_rate("baseline + effect", baseline_rate + absolute_effect)?;
    if !(n_per_arm > 0.0) {
        return Err(invalid("n_per_arm", "must be positive"));
    }
    let (s0, s1) = rate_stds(baseline_rate, absolute_effect);
    Ok(two_tailed_power(absolute_effect.abs(), n_per_arm, s0, s1, alpha))
}

/// Power to detect `absolute_effect` on a mean with per-unit `std_dev` and `n_per_arm`.
pub fn power_means(std_dev: f64, absolute_effect: f64, n_per_arm: f64, alpha: f64) -> Result<f64> {
    check_alpha(alpha)?;
    if !(std_dev > 0.0 && std_dev.is_finite()) {
        return Err(invalid("std_dev", "must be positive and finite"));
    }
    if !(n_per_arm > 0.0) {
        return Err(invalid("n_per_arm", "must be positive"));
    }
    let s = std_dev * std::f64::consts::SQRT_2;
    Ok(two_tailed_power(absolute_effect.abs(), n_per_arm, s, s, alpha))
}

/// Power of a z-test whose estimate has standard error `standard_error` when
/// the true effect is `effect` (any design, e.g. the observed arms' SE).
pub fn power_from_standard_error(effect: f64, standard_error: f64, alpha: f64) -> Result<f64> {
    check_alpha(alpha)?;
    if !(standard_error > 0.0 && standard_error.is_finite()) {
        return Err(invalid("standard_error", "must be positive and finite"));
    }
    let crit = normal_quantile(1.0 - alpha / 2.0);
    let shift = effect.abs() / standard_error;
    Ok(normal_sf(crit - shift) + normal_cdf(-crit - shift))
}

/// Bisection for the smallest `d` in `(0, upper)` with `power(d) ≥ target`;
/// power is increasing in `d` on this interval.
fn solve_increasing(mut upper: f64, target: f64, power: impl Fn(f64) -> f64) -> Option<f64> {
    if power(upper) < target {
        return None;
    }
    let mut lower = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lower + upper);
        if mid <= lower || mid >= upper {
            break;
        }
        if power(mid) < target {
            lower = mid;
        } else {
            upper = mid;
        }
    }
    Some(0.5 * (lower + upper))
}

/// Minimum detectable absolute increase of a rate with `n_per_arm` units per arm.
pub fn mde_proportions(baseline_rate: f64, n_per_arm: f64, alpha: f64, power: f64) -> Result<f64> {
    check_alpha(alpha)?;
    check_power(power)?;
    check_rate("baseline", baseline_rate)?;
    if !(n_per_arm > 0.0) {
        return Err(invalid("n_per_arm", "must be positive"));
    }
    // Keep p₁ strictly below 1 so both standard deviations stay positive.
    let upper = (1.0 - baseline_rate) * (1.0 - 1e-12);
    solve_increasing(upper, power, |d| {
        let (s0, s1) = rate_stds(baseline_rate, d);
        two_tailed_power(d, n_per_arm, s0, s1, alpha)
    })
    .ok_or_else(|| invalid("n_per_arm", "too small: no increase of this rate reaches the power"))
}

/// Minimum detectable absolute effect on a mean with per-unit `std_dev`.
pub fn mde_means(std_dev: f64, n_per_arm: f64, alpha: f64, power: f64) -> Result<f64> {
    check_alpha(alpha)?;
    check_power(power)?;
    if !(std_dev > 0.0 && std_dev.is_finite()) {
        return Err(invalid("std_dev", "must be positive and finite"));
    }
    if !(n_per_arm > 0.0) {
        return Err(invalid("n_per_arm", "must be positive"));
    }
    let s = std_dev * std::f64::consts::SQRT_2;
    // Generous bracket: 100 standard errors always exceeds any power < 1.
    let upper = 100.0 * s / n_per_arm.sqrt();
    solve_increasing(upper, power, |d| two_tailed_power(d, n_per_arm, s, s, alpha))
        .ok_or_else(|| invalid("power", "unreachable"))
}
