//! Sample-ratio mismatch: are the observed units per variant consistent with
//! the configured weights? Pearson's chi-square goodness of fit,
//! `χ² = Σ (O_i − E_i)² / E_i` with `E_i = N w_i / Σw` and `k − 1` degrees of
//! freedom (`scipy.stats.chisquare`). A mismatch means assignment or
//! exposure logging is broken, so no result can be trusted: the decision is
//! blocked below [`SRM_P_THRESHOLD`], a strict threshold because the check
//! runs on every look.

use serde::{Deserialize, Serialize};

use super::dist::chi_square_sf;
use super::{Result, invalid};

/// p-value below which a sample-ratio mismatch is flagged.
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// Outcome of the sample-ratio-mismatch check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmResult {
    /// Pearson chi-square statistic.
    pub chi_square: f64,
    /// Degrees of freedom (variants − 1).
    pub degrees_of_freedom: u64,
    /// p-value.
    pub p_value: f64,
    /// `p_value < SRM_P_THRESHOLD`.
    pub mismatch: bool,
}

/// Chi-square goodness of fit of `observed` units per variant against `weights`.
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> Result<SrmResult> {
    if observed.len() != weights.len() || observed.len() < 2 {
        return Err(invalid(
            "observed",
            "need one count per variant and at least two variants",
        ));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(invalid("weights", "each weight must be positive and finite"));
    }
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    if total == 0.0 {
        return Err(invalid("observed", "no units observed yet"));
    }
    let weight_sum: f64 = weights.iter().sum();
    let chi_square: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let expected = total * w / weight_sum;
            (o as f64 - expected).powi(2) / expected
        })
        .sum();
    let degrees_of_freedom = observed.len() as u64 - 1;
    let p_value = chi_square_sf(chi_square, degrees_of_freedom as f64);
    Ok(SrmResult {
        chi_square,
        degrees_of_freedom,
        p_value,
        mismatch: p_value < SRM_P_THRESHOLD,
    })
}
