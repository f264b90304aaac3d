//! Bayesian summaries with a normal approximation, as GrowthBook does:
//! with a flat prior the posterior of the lift is `N(lift, SE²)`.
//!
//! - chance to beat control `P(lift > 0) = Φ(lift / SE)`;
//! - expected loss of shipping the treatment `E[max(0, −lift)] = SE·φ(μ/SE) − μ·Φ(−μ/SE)`;
//! - expected loss of keeping control `E[max(0, lift)] = SE·φ(μ/SE) + μ·Φ(μ/SE)`.
//!
//! [`bayesian_from_comparison`] uses the *relative* lift and its delta-method
//! standard error (GrowthBook reports risk as a fraction of the baseline),
//! falling back to the absolute lift when the control mean is 0. Losses are
//! in the unit of the lift used (see `scale`).

use serde::{Deserialize, Serialize};

use super::compare::Comparison;
use super::dist::{normal_cdf, normal_pdf, normal_sf};
use super::{Result, invalid};

/// Whether losses are relative to control or in the metric's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiftScale {
    /// Fraction of the control mean.
    Relative,
    /// Metric units.
    Absolute,
}

/// Posterior summaries of the lift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BayesianResult {
    /// Unit of the lift and losses.
    pub scale: LiftScale,
    /// Probability that the treatment is better (`P(lift > 0)`; for a
    /// lower-is-better metric, `P(lift < 0)`).
    pub chance_to_beat_control: f64,
    /// Expected loss if the treatment is shipped.
    pub expected_loss_treatment: f64,
    /// Expected loss if the control is kept.
    pub expected_loss_control: f64,
}

/// Posterior summaries for a lift `N(lift, standard_error²)`.
pub fn bayesian_normal(lift: f64, standard_error: f64, higher_is_better: bool) -> Result<BayesianResult> {
    if !lift.is_finite() {
        return Err(invalid("lift", "must be finite"));
    }
    if !(standard_error > 0.0 && standard_error.is_finite()) {
        return Err(invalid("standard_error", "must be positive and finite"));
    }
    // Orient so that positive means "better".
    let mu = if higher_is_better { lift } else { -lift };
    let s = standard_error;
    let z = mu / s;
    Ok(BayesianResult {
        scale: LiftScale::Absolute,
        chance_to_beat_control: normal_cdf(z),
        expected_loss_treatment: s * normal_pdf(z) - mu * normal_sf(z),
        expected_loss_control: s * normal_pdf(z) + mu * normal_cdf(z),
    })
}

/// Posterior summaries of a comparison (relative lift when available).
pub fn bayesian_from_comparison(comparison: &Comparison, higher_is_better: bool) -> Result<BayesianResult> {
    match (comparison.relative_lift, comparison.relative_standard_error) {
        (Some(lift), Some(se)) if se > 0.0 => Ok(BayesianResult {
            scale: LiftScale::Relative,
            ..bayesian_normal(lift, se, higher_is_better)?
        }),
        _ => bayesian_normal(comparison.absolute_lift, comparison.standard_error, higher_is_better),
    }
}
