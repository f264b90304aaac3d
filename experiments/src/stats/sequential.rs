//! Always-valid inference, so managers may look at results every day without
//! inflating the false-positive rate.
//!
//! # mSPRT (Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B Tests",
//! KDD; the Optimizely Stats Engine)
//!
//! For the difference of means `Δ̂` with (estimated) variance `V = SE²` and a
//! normal mixing distribution `N(0, τ²)` over the true effect, the mixture
//! likelihood ratio against `Δ = δ₀` is
//!
//! `Λ(δ₀) = sqrt(V / (V + τ²)) · exp( τ² (Δ̂ − δ₀)² / (2 V (V + τ²)) )`.
//!
//! (With `n` per arm and common variance σ², `V = 2σ²/n` and this is the
//! paper's `sqrt(2σ²/(2σ²+nτ²)) · exp(n²τ²Δ̂² / (4σ²(2σ²+nτ²)))`.)
//! The always-valid p-value is `min(1, 1/Λ(0))` and the always-valid
//! `1 − α` interval is `{δ₀ : Λ(δ₀) < 1/α}`, i.e. `Δ̂ ± r` with
//!
//! `r = sqrt( 2 V (V + τ²) / τ² · ( ln(1/α) + ½ ln((V + τ²)/V) ) )`.
//!
//! Validity over time needs the running minimum of p and the running
//! intersection of intervals across looks; [`SequentialResult::after`] does it.
//!
//! **Mixing variance τ².** τ is the scale of effects one expects to see, in
//! the metric's units; the interval is tightest when the observed effect is
//! about τ. cxlake's default ([`default_tau_squared`]) is `(0.1 · |control
//! mean|)²`, i.e. effects of about 10 % relative, typical for greeting and
//! persona changes; a results layer with historical experiments should
//! estimate it from past effects instead, as Optimizely does.
//!
//! # Asymptotic confidence sequence (Waudby-Smith, Arbour, Sinha, Kennedy &
//! Ramdas 2023, "Time-uniform central limit theory and asymptotic confidence
//! sequences", Annals of Statistics)
//!
//! The Gaussian-mixture asymptotic CS for a mean after `t` observations with
//! standard deviation σ̂ is `μ̂ ± σ̂ · sqrt( 2(tρ² + 1)/(t²ρ²) · ln( sqrt(tρ² + 1)/α ) )`.
//! Applied to the difference with `SE² = σ̂²/t`, `t = n_c + n_t`, this is
//! `Δ̂ ± SE · sqrt( 2(tρ² + 1)/(tρ²) · ln( sqrt(tρ² + 1)/α ) )`, free of
//! the metric's units. ρ is tuned so the sequence is tightest at the planned
//! sample size `t*`: `ρ² = (−2 ln α + ln(−2 ln α + 1)) / t*` (paper, §2).
//! Its p-value is the α at which the interval touches 0.

use serde::{Deserialize, Serialize};

use super::compare::Comparison;
use super::{Result, check_alpha, invalid};

/// Which always-valid method produced a [`SequentialResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequentialMethod {
    /// Normal-mixture mSPRT.
    Msprt,
    /// Asymptotic (Gaussian-mixture) confidence sequence.
    AsymptoticCs,
}

/// An always-valid p-value and interval for the absolute lift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialResult {
    /// Method.
    pub method: SequentialMethod,
    /// Significance level of the interval.
    pub alpha: f64,
    /// Mixing parameter: τ² for mSPRT (metric units²), ρ² for the confidence sequence.
    pub mixing_variance: f64,
    /// Always-valid p-value.
    pub p_value: f64,
    /// Always-valid interval for the absolute lift, `[low, high]`.
    pub absolute_ci: [f64; 2],
}

impl SequentialResult {
    /// Combines with the result of the previous look: running minimum of the
    /// p-value and intersection of the intervals, which is what keeps the
    /// guarantee across looks.
    pub fn after(self, previous: &SequentialResult) -> SequentialResult {
        SequentialResult {
            p_value: self.p_value.min(previous.p_value),
            absolute_ci: [
                self.absolute_ci[0].max(previous.absolute_ci[0]),
                self.absolute_ci[1].min(previous.absolute_ci[1]),
            ],
            ..self
        }
    }
}

/// cxlake's default τ²: `(0.1 · |control mean|)²` (effects of ~10 % relative).
pub fn default_tau_squared(control_mean: f64) -> f64 {
    (0.1 * control_mean).powi(2)
}

fn check_se(absolute_lift: f64, standard_error: f64) -> Result<()> {
    if !absolute_lift.is_finite() {
        return Err(invalid("absolute_lift", "must be finite"));
    }
    if !(standard_error > 0.0 && standard_error.is_finite()) {
        return Err(invalid("standard_error", "must be positive and finite"));
    }
    Ok(())
}

/// Normal-mixture mSPRT p-value and interval for a lift with the given standard error.
pub fn msprt(absolute_lift: f64, standard_error: f64, tau_squared: f64, alpha: f64) -> Result<SequentialResult> {
    check_alpha(alpha)?;
    check_se(absolute_lift, standard_error)?;
    if !(tau_squared > 0.0 && tau_squared.is_finite()) {
        return Err(invalid("tau_squared", "must be positive and finite"));
    }
    let v = standard_error * standard_error;
    // ln Λ, kept in logs so a large effect cannot overflow.
    let log_lr = 0.5 * (v / (v + tau_squared)).ln()
        + tau_squared * absolute_lift * absolute_lift / (2.0 * v * (v + tau_squared));
    let p_value = (-log_lr).exp().min(1.0);
    let radius =
        (2.0 * v * (v + tau_squared) / tau_squared * ((1.0 / alpha).ln() + 0.5 * ((v + tau_squared) / v).ln())).sqrt();
    Ok(SequentialResult {
        method: SequentialMethod::Msprt,
        alpha,
        mixing_variance: tau_squared,
        p_value,
        absolute_ci: [absolute_lift - radius, absolute_lift + radius],
    })
}

/// Asymptotic confidence sequence tuned for `planned_total_n` units (both arms).
pub fn confidence_sequence(
    absolute_lift: f64,
    standard_error: f64,
    total_n: u64,
    planned_total_n: u64,
    alpha: f64,
) -> Result<SequentialResult> {
    check_alpha(alpha)?;
    check_se(absolute_lift, standard_error)?;
    if total_n == 0 || planned_total_n == 0 {
        return Err(invalid("total_n", "observed and planned sample sizes must be positive"));
    }
    let log_alpha = alpha.ln();
    let rho_squared = (-2.0 * log_alpha + (-2.0 * log_alpha + 1.0).ln()) / planned_total_n as f64;
    let t_rho2 = total_n as f64 * rho_squared;
    let scale = 2.0 * (t_rho2 + 1.0) / t_rho2;
    let radius = standard_error * (scale * ((t_rho2 + 1.0).sqrt() / alpha).ln()).sqrt();
    // Solve radius(α) = |Δ̂| for α.
    let z = absolute_lift / standard_error;
    let p_value = ((t_rho2 + 1.0).sqrt() * (-z * z / scale).exp()).min(1.0);
    Ok(SequentialResult {
        method: SequentialMethod::AsymptoticCs,
        alpha,
        mixing_variance: rho_squared,
        p_value,
        absolute_ci: [absolute_lift - radius, absolute_lift + radius],
    })
}

/// mSPRT on a fixed-horizon comparison, with [`default_tau_squared`] when `tau_squared` is `None`.
pub fn msprt_from_comparison(comparison: &Comparison, tau_squared: Option<f64>) -> Result<SequentialResult> {
    let tau_squared = tau_squared.unwrap_or_else(|| default_tau_squared(comparison.control_mean));
    msprt(
        comparison.absolute_lift,
        comparison.standard_error,
        tau_squared,
        comparison.alpha,
    )
}
