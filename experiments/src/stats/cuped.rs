//! CUPED variance reduction (Deng, Xu, Kohavi & Walker 2013, "Improving the
//! Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
//! Data", WSDM).
//!
//! With `y` the metric and `x` the same metric in the pre-period, per unit
//! `y' = y − θ (x − x̄)` where `θ = cov(x, y) / var(x)` and `x̄` are computed
//! on the **pooled** sample of both arms (unbiased n − 1 estimators), so the
//! adjustment is the same function in both arms and cannot create a
//! difference by itself. From the sums, per arm:
//!
//! - adjusted mean `ȳ_a − θ (x̄_a − x̄)`,
//! - adjusted variance `s²_y − 2θ s_xy + θ² s²_x`,
//!
//! which is exactly the mean and sample variance of `y'` in that arm, then
//! Welch's t-test and the delta-method relative lift as for plain means. The
//! estimation error of θ is ignored (negligible at experiment sizes).

use serde::{Deserialize, Serialize};

use super::compare::{Comparison, Method, Moments1, welch_from_moments};
use super::{BivariateSummary, Result, check_alpha};

/// CUPED-adjusted comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CupedResult {
    /// Pooled regression coefficient of the metric on its pre-period value.
    pub theta: f64,
    /// `1 − SE²(adjusted) / SE²(unadjusted)` of the absolute lift.
    pub variance_reduction: f64,
    /// Comparison of the adjusted means.
    pub comparison: Comparison,
}

/// CUPED Welch test: `y` = metric, `x` = pre-period covariate in each arm.
pub fn cuped_welch_t_test(control: &BivariateSummary, treatment: &BivariateSummary, alpha: f64) -> Result<CupedResult> {
    check_alpha(alpha)?;
    let c = control.moments("control")?;
    let t = treatment.moments("treatment")?;
    let pooled = control.pooled(treatment).moments("control")?;
    // A constant covariate carries no information: fall back to no adjustment.
    let theta = if pooled.var_x > 0.0 {
        pooled.cov_xy / pooled.var_x
    } else {
        0.0
    };
    let adjust = |m: &super::summary::Moments, n: u64| Moments1 {
        n,
        mean: m.mean_y - theta * (m.mean_x - pooled.mean_x),
        variance: (m.var_y - 2.0 * theta * m.cov_xy + theta * theta * m.var_x).max(0.0),
    };
    let comparison = welch_from_moments(
        Method::CupedWelchT,
        alpha,
        adjust(&c, control.n),
        adjust(&t, treatment.n),
    );
    let unadjusted_se2 = c.var_y / c.n + t.var_y / t.n;
    let variance_reduction = if unadjusted_se2 > 0.0 {
        1.0 - comparison.standard_error.powi(2) / unadjusted_se2
    } else {
        0.0
    };
    Ok(CupedResult {
        theta,
        variance_reduction,
        comparison,
    })
}
