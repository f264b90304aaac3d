//! Ratio metrics under per-customer randomization (Deng, Knoblich & Lu 2018,
//! "Applying the Delta Method in Metric Analytics", KDD).
//!
//! When customers are randomized but the metric is per conversation (e.g.
//! resolution rate = resolved conversations / conversations), conversations of
//! one customer are correlated and a naive per-conversation test understates
//! the variance. Per arm, with per-customer numerator `x` and denominator `y`,
//! `R = Σx/Σy = x̄/ȳ` and to first order
//!
//! `Var(R) ≈ (s²_x − 2 R s_xy + R² s²_y) / (n ȳ²)`
//!
//! with unbiased (n − 1) sample (co)variances. The arms are independent, so
//! `Var(R_t − R_c) = Var(R_t) + Var(R_c)`; the relative lift uses the same
//! delta formula as means. Tests and intervals are normal (z).

use super::compare::{Comparison, Method};
use super::dist::{normal_quantile, normal_two_sided_p};
use super::summary::Moments;
use super::{BivariateSummary, Result, check_alpha, invalid};

/// Ratio `Σx/Σy` per arm and its delta-method variance.
fn ratio_and_variance(m: &Moments, field: &'static str) -> Result<(f64, f64)> {
    if m.mean_y == 0.0 {
        return Err(invalid(field, "sum_y (denominator) must not be 0"));
    }
    let r = m.mean_x / m.mean_y;
    let var = (m.var_x - 2.0 * r * m.cov_xy + r * r * m.var_y) / (m.n * m.mean_y * m.mean_y);
    Ok((r, var.max(0.0)))
}

/// Compares the ratio `Σx/Σy` of treatment against control by the delta method.
pub fn ratio_delta_test(control: &BivariateSummary, treatment: &BivariateSummary, alpha: f64) -> Result<Comparison> {
    check_alpha(alpha)?;
    let (r_c, var_c) = ratio_and_variance(&control.moments("control")?, "control")?;
    let (r_t, var_t) = ratio_and_variance(&treatment.moments("treatment")?, "treatment")?;
    let diff = r_t - r_c;
    let se = (var_c + var_t).sqrt();
    let half = normal_quantile(1.0 - alpha / 2.0) * se;
    let (statistic, p_value) = if se > 0.0 {
        (diff / se, normal_two_sided_p(diff / se))
    } else if diff == 0.0 {
        (0.0, 1.0)
    } else {
        (diff.signum() * f64::INFINITY, 0.0)
    };
    let mut comparison = Comparison {
        method: Method::DeltaRatio,
        alpha,
        control_n: control.n,
        treatment_n: treatment.n,
        control_mean: r_c,
        treatment_mean: r_t,
        absolute_lift: diff,
        absolute_ci: [diff - half, diff + half],
        standard_error: se,
        relative_lift: None,
        relative_ci: None,
        relative_standard_error: None,
        p_value,
        statistic,
        degrees_of_freedom: None,
    };
    comparison.set_relative(var_c, var_t);
    Ok(comparison)
}
