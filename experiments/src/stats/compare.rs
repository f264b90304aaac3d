//! Treatment versus control on summary statistics.
//!
//! - Means: Welch's t-test, Welch–Satterthwaite degrees of freedom
//!   `df = (s²_t/n_t + s²_c/n_c)² / ((s²_t/n_t)²/(n_t−1) + (s²_c/n_c)²/(n_c−1))`,
//!   interval `Δ ± t_{1−α/2, df} · SE` (matches `scipy.stats.ttest_ind(equal_var=False)`).
//! - Rates: two-proportion z-test with the *pooled* proportion under H0 for
//!   the p-value (`statsmodels.stats.proportion.proportions_ztest`) and the
//!   *unpooled* Wald interval for the difference
//!   (`confint_proportions_2indep(method="wald")`).
//! - Relative lift `ȳ_t/ȳ_c − 1` by the delta method:
//!   `Var ≈ Var(ȳ_t)/ȳ_c² + ȳ_t²·Var(ȳ_c)/ȳ_c⁴`, normal interval. It ignores
//!   the uncertainty of the denominator beyond first order, which is fine at
//!   the sample sizes where decisions are made (≥ 500 per arm).

use serde::{Deserialize, Serialize};

use super::dist::{normal_quantile, normal_two_sided_p, t_quantile, t_two_sided_p};
use super::{ArmSummary, Result, check_alpha};

/// Which test produced a [`Comparison`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Welch's unequal-variance t-test on means.
    WelchT,
    /// Two-proportion z-test on rates.
    TwoProportionZ,
    /// Delta method on a ratio of sums (normal approximation).
    DeltaRatio,
    /// Welch's t-test on CUPED-adjusted means.
    CupedWelchT,
    /// Delta method on CUPED-adjusted ratios of sums (normal approximation).
    CupedDeltaRatio,
}

/// Treatment versus control on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Test used.
    pub method: Method,
    /// Significance level the intervals were built for.
    pub alpha: f64,
    /// Control units.
    pub control_n: u64,
    /// Treatment units.
    pub treatment_n: u64,
    /// Control mean (rate, mean, or ratio).
    pub control_mean: f64,
    /// Treatment mean.
    pub treatment_mean: f64,
    /// `treatment_mean − control_mean`.
    pub absolute_lift: f64,
    /// Two-sided `1 − alpha` interval for the absolute lift, `[low, high]`.
    pub absolute_ci: [f64; 2],
    /// Standard error of the absolute lift (unpooled).
    pub standard_error: f64,
    /// `treatment_mean / control_mean − 1`; `None` when the control mean is 0.
    pub relative_lift: Option<f64>,
    /// Delta-method interval for the relative lift.
    pub relative_ci: Option<[f64; 2]>,
    /// Delta-method standard error of the relative lift.
    pub relative_standard_error: Option<f64>,
    /// Two-sided p-value for "no difference".
    pub p_value: f64,
    /// Test statistic (t or z).
    pub statistic: f64,
    /// Degrees of freedom for t-tests; `None` for normal (z) tests.
    pub degrees_of_freedom: Option<f64>,
}

/// Compares two arms, choosing the test from the input shape as the
/// `/v1/stats/compare` body does: without `sum_squares` the arms are rates
/// (two-proportion z-test), with them means (Welch).
pub fn compare(control: &ArmSummary, treatment: &ArmSummary, alpha: f64) -> Result<Comparison> {
    match (control.sum_squares, treatment.sum_squares) {
        (None, None) => two_proportion_z_test(control, treatment, alpha),
        _ => welch_t_test(control, treatment, alpha),
    }
}

/// Welch's t-test on two arms of a mean metric (both need `sum_squares`).
pub fn welch_t_test(control: &ArmSummary, treatment: &ArmSummary, alpha: f64) -> Result<Comparison> {
    check_alpha(alpha)?;
    let var_c = control.validate_mean("control")?;
    let var_t = treatment.validate_mean("treatment")?;
    Ok(welch_from_moments(
        Method::WelchT,
        alpha,
        Moments1 {
            n: control.n,
            mean: control.mean(),
            variance: var_c,
        },
        Moments1 {
            n: treatment.n,
            mean: treatment.mean(),
            variance: var_t,
        },
    ))
}

/// Mean and unbiased variance of one arm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moments1 {
    pub(crate) n: u64,
    pub(crate) mean: f64,
    pub(crate) variance: f64,
}

pub(crate) fn welch_from_moments(method: Method, alpha: f64, c: Moments1, t: Moments1) -> Comparison {
    let se2_c = c.variance / c.n as f64;
    let se2_t = t.variance / t.n as f64;
    let se2 = se2_c + se2_t;
    let se = se2.sqrt();
    let diff = t.mean - c.mean;
    let df = se2 * se2 / (se2_c * se2_c / (c.n as f64 - 1.0) + se2_t * se2_t / (t.n as f64 - 1.0));
    let (statistic, p_value, absolute_ci) = if se > 0.0 {
        let statistic = diff / se;
        let half = t_quantile(1.0 - alpha / 2.0, df) * se;
        (statistic, t_two_sided_p(statistic, df), [diff - half, diff + half])
    } else {
        degenerate(diff)
    };
    let mut comparison = Comparison {
        method,
        alpha,
        control_n: c.n,
        treatment_n: t.n,
        control_mean: c.mean,
        treatment_mean: t.mean,
        absolute_lift: diff,
        absolute_ci,
        standard_error: se,
        relative_lift: None,
        relative_ci: None,
        relative_standard_error: None,
        p_value,
        statistic,
        degrees_of_freedom: df.is_finite().then_some(df),
    };
    comparison.set_relative(se2_c, se2_t);
    comparison
}

/// Zero standard error (e.g. no conversions in either arm yet): no evidence
/// when the means agree, certainty otherwise.
fn degenerate(diff: f64) -> (f64, f64, [f64; 2]) {
    if diff == 0.0 {
        (0.0, 1.0, [0.0, 0.0])
    } else {
        (diff.signum() * f64::INFINITY, 0.0, [diff, diff])
    }
}

impl Comparison {
    /// Fills the relative lift by the delta method from the squared standard
    /// errors of the two means.
    pub(crate) fn set_relative(&mut self, se2_control_mean: f64, se2_treatment_mean: f64) {
        let (mc, mt) = (self.control_mean, self.treatment_mean);
        if mc == 0.0 || !mc.is_finite() {
            return;
        }
        let relative = mt / mc - 1.0;
        let var = se2_treatment_mean / (mc * mc) + mt * mt * se2_control_mean / mc.powi(4);
        let se = var.sqrt();
        let half = normal_quantile(1.0 - self.alpha / 2.0) * se;
        self.relative_lift = Some(relative);
        self.relative_ci = Some([relative - half, relative + half]);
        self.relative_standard_error = Some(se);
    }

    /// Whether the absolute interval lies entirely above 0.
    pub fn significantly_positive(&self) -> bool {
        self.absolute_ci[0] > 0.0
    }

    /// Whether the absolute interval lies entirely below 0.
    pub fn significantly_negative(&self) -> bool {
        self.absolute_ci[1] < 0.0
    }
}

/// Two-proportion z-test (pooled variance for the p-value, unpooled Wald interval).
pub fn two_proportion_z_test(control: &ArmSummary, treatment: &ArmSummary, alpha: f64) -> Result<Comparison> {
    check_alpha(alpha)?;
    let p_c = control.validate_rate("control")?;
    let p_t = treatment.validate_rate("treatment")?;
    let (n_c, n_t) = (control.n as f64, treatment.n as f64);
    let diff = p_t - p_c;
    let pooled = (control.sum + treatment.sum) / (n_c + n_t);
    let se_null = (pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)).sqrt();
    let se2_c = p_c * (1.0 - p_c) / n_c;
    let se2_t = p_t * (1.0 - p_t) / n_t;
    let se = (se2_c + se2_t).sqrt();
    let (statistic, p_value) = if se_null > 0.0 {
        let z = diff / se_null;
        (z, normal_two_sided_p(z))
    } else {
        let (z, p, _) = degenerate(diff);
        (z, p)
    };
    let half = normal_quantile(1.0 - alpha / 2.0) * se;
    let mut comparison = Comparison {
        method: Method::TwoProportionZ,
        alpha,
        control_n: control.n,
        treatment_n: treatment.n,
        control_mean: p_c,
        treatment_mean: p_t,
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
    comparison.set_relative(se2_c, se2_t);
    Ok(comparison)
}
