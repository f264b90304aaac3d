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
use super::dist::{normal_quantile, normal_two_sided_p};
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

/// One randomization unit of a ratio metric with its pre-period: the sums of
/// the unit's conversations in the analysed window (`numerator`,
/// `denominator`, e.g. converted conversations and conversations) and the
/// same sums before it (`pre_*`, both 0 when the unit had no pre-period
/// conversation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RatioUnit {
    pub numerator: f64,
    pub denominator: f64,
    pub pre_numerator: f64,
    pub pre_denominator: f64,
}

/// Linearized moments of a set of units around given ratios: with
/// `ℓ = (y − R d) / d̄` and `m = (p − P q) / q̄` per unit, the unbiased
/// (n − 1) `var(ℓ)`, `var(m)`, `cov(ℓ, m)`.
struct Linearized {
    n: u64,
    ratio: f64,
    pre_ratio: Option<f64>,
    var_l: f64,
    var_m: f64,
    cov_lm: f64,
}

fn linearize<'a>(units: impl Iterator<Item = &'a RatioUnit> + Clone, field: &'static str) -> Result<Linearized> {
    let (mut n, mut sy, mut sd, mut sp, mut sq) = (0u64, 0.0, 0.0, 0.0, 0.0);
    for u in units.clone() {
        let all = [u.numerator, u.denominator, u.pre_numerator, u.pre_denominator];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(super::invalid(field, "all unit sums must be finite"));
        }
        if u.denominator < 0.0 || u.pre_denominator < 0.0 {
            return Err(super::invalid(field, "denominators must be >= 0"));
        }
        n += 1;
        sy += u.numerator;
        sd += u.denominator;
        sp += u.pre_numerator;
        sq += u.pre_denominator;
    }
    if n < 2 {
        return Err(super::invalid(field, format!("need n >= 2 units, got {n}")));
    }
    if sd <= 0.0 {
        return Err(super::invalid(field, "the sum of denominators must be > 0"));
    }
    let nf = n as f64;
    let (ratio, mean_d) = (sy / sd, sd / nf);
    let pre = (sq > 0.0).then(|| (sp / sq, sq / nf));
    let lin = |u: &RatioUnit| {
        let l = (u.numerator - ratio * u.denominator) / mean_d;
        let m = pre.map_or(0.0, |(p, mean_q)| (u.pre_numerator - p * u.pre_denominator) / mean_q);
        (l, m)
    };
    // ℓ and m have mean 0 algebraically; centre on the computed means anyway.
    let (mut ml, mut mm) = (0.0, 0.0);
    for u in units.clone() {
        let (l, m) = lin(u);
        ml += l;
        mm += m;
    }
    ml /= nf;
    mm /= nf;
    let (mut sll, mut smm, mut slm) = (0.0, 0.0, 0.0);
    for u in units {
        let (l, m) = lin(u);
        let (l, m) = (l - ml, m - mm);
        sll += l * l;
        smm += m * m;
        slm += l * m;
    }
    Ok(Linearized {
        n,
        ratio,
        pre_ratio: pre.map(|(p, _)| p),
        var_l: sll / (nf - 1.0),
        var_m: smm / (nf - 1.0),
        cov_lm: slm / (nf - 1.0),
    })
}

/// CUPED for a ratio metric `Σy / Σd` under per-unit randomization, with the
/// same ratio in the pre-period `Σp / Σq` as covariate (Deng, Knoblich & Lu
/// 2018, section "CUPED for ratio metrics", via the delta method).
///
/// Both ratios are linearized per unit, `ℓ = (y − R d) / d̄` and
/// `m = (p − P q) / q̄`, so that `Var(R) ≈ var(ℓ) / n`, `Cov(R, P) ≈
/// cov(ℓ, m) / n`. `θ = cov(ℓ, m) / var(m)` on the **pooled** sample of both
/// arms (linearized around the pooled ratios), as in
/// [`cuped_welch_t_test`]; per arm the adjusted ratio is
/// `R_a − θ (P_a − P)` with variance `(var_a(ℓ) − 2θ cov_a(ℓ, m) + θ²
/// var_a(m)) / n_a`. With every denominator 1 this is exactly
/// [`cuped_welch_t_test`]'s estimate and standard error; with no pre-period
/// data (`θ = 0`) it is [`super::ratio_delta_test`]. Tests and intervals are
/// normal (z); the estimation error of θ is ignored. A unit without
/// pre-period conversations has `m = 0`.
pub fn cuped_ratio_delta_test(control: &[RatioUnit], treatment: &[RatioUnit], alpha: f64) -> Result<CupedResult> {
    check_alpha(alpha)?;
    let c = linearize(control.iter(), "control")?;
    let t = linearize(treatment.iter(), "treatment")?;
    let pooled = linearize(control.iter().chain(treatment), "control")?;
    let theta = if pooled.var_m > 0.0 {
        pooled.cov_lm / pooled.var_m
    } else {
        0.0
    };
    let adjust = |a: &Linearized| {
        let shift = match (a.pre_ratio, pooled.pre_ratio) {
            (Some(p_a), Some(p)) => theta * (p_a - p),
            _ => 0.0,
        };
        let var = (a.var_l - 2.0 * theta * a.cov_lm + theta * theta * a.var_m).max(0.0);
        (a.ratio - shift, var / a.n as f64)
    };
    let (mean_c, se2_c) = adjust(&c);
    let (mean_t, se2_t) = adjust(&t);
    let diff = mean_t - mean_c;
    let se = (se2_c + se2_t).sqrt();
    let half = normal_quantile(1.0 - alpha / 2.0) * se;
    let (statistic, p_value) = if se > 0.0 {
        (diff / se, normal_two_sided_p(diff / se))
    } else if diff == 0.0 {
        (0.0, 1.0)
    } else {
        (diff.signum() * f64::INFINITY, 0.0)
    };
    let mut comparison = Comparison {
        method: Method::CupedDeltaRatio,
        alpha,
        control_n: c.n,
        treatment_n: t.n,
        control_mean: mean_c,
        treatment_mean: mean_t,
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
    let unadjusted_se2 = c.var_l / c.n as f64 + t.var_l / t.n as f64;
    let variance_reduction = if unadjusted_se2 > 0.0 {
        1.0 - se * se / unadjusted_se2
    } else {
        0.0
    };
    Ok(CupedResult {
        theta,
        variance_reduction,
        comparison,
    })
}
