//! Thin, panic-free wrappers over `statrs` distributions.
//!
//! `statrs` asserts on out-of-domain probabilities; callers here validate
//! first, and these wrappers clamp so a NaN can never reach an assertion.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    Normal::standard().cdf(x)
}

/// Standard normal survival function `1 - Φ(x)`, accurate in the tail.
pub fn normal_sf(x: f64) -> f64 {
    Normal::standard().sf(x)
}

/// Standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    Normal::standard().pdf(x)
}

/// Standard normal quantile `Φ⁻¹(p)` for `p` in (0, 1); ±∞ at the ends, NaN for NaN.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    Normal::standard().inverse_cdf(p)
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_two_sided_p(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

fn students_t(df: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df).ok()
}

/// Two-sided p-value of a Student t statistic with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    match students_t(df) {
        Some(dist) if t.is_finite() => (2.0 * dist.sf(t.abs())).min(1.0),
        _ if t.is_infinite() => 0.0,
        _ => f64::NAN,
    }
}

/// Student t quantile for `p` in (0, 1).
///
/// `statrs` inverts through the inverse regularized incomplete beta, which is
/// only good to about 1e-9; two Newton steps on the CDF bring it to machine
/// precision so confidence intervals match scipy to 1e-6 relative with margin.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let Some(dist) = students_t(df) else {
        return f64::NAN;
    };
    if !(p > 0.0 && p < 1.0) {
        return normal_quantile(p);
    }
    let mut x = dist.inverse_cdf(p);
    for _ in 0..2 {
        let density = dist.pdf(x);
        if !(density > 0.0) || !x.is_finite() {
            break;
        }
        x -= (dist.cdf(x) - p) / density;
    }
    x
}

/// Upper tail of the chi-square distribution.
pub fn chi_square_sf(statistic: f64, df: f64) -> f64 {
    match ChiSquared::new(df) {
        Ok(dist) => dist.sf(statistic),
        Err(_) => f64::NAN,
    }
}
