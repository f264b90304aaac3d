//! Winsorizing heavy-tailed metrics (order value per customer) at a pooled
//! percentile, so one whale order cannot decide an experiment.
//!
//! The cap is computed on the **pooled** values of all arms (a per-arm cap
//! would itself differ between arms and bias the lift), then values above it
//! are replaced by the cap. Only the upper tail is capped: order values are
//! bounded below by 0.
//!
//! Percentile method: numpy's default `"linear"` (Hyndman & Fan type 7).
//! For sorted `x_0 ≤ … ≤ x_{n−1}` and `q` in percent, `h = (n − 1) q / 100`,
//! `i = ⌊h⌋`, `g = h − i`, and the result is `x_i + g (x_{i+1} − x_i)`
//! (computed as `x_{i+1} − (1 − g)(x_{i+1} − x_i)` when `g ≥ 0.5`, as numpy
//! does, so results agree to the last bit in practice).

use super::{Result, invalid};

/// numpy-compatible `percentile(values, q, method="linear")`, `q` in `[0, 100]`.
pub fn percentile_linear(values: &[f64], q: f64) -> Result<f64> {
    if values.is_empty() {
        return Err(invalid("values", "need at least one value"));
    }
    if !(0.0..=100.0).contains(&q) {
        return Err(invalid("percentile", format!("must be in [0, 100], got {q}")));
    }
    if values.iter().any(|v| v.is_nan()) {
        return Err(invalid("values", "must not contain NaN"));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * (q / 100.0);
    let i = (h.floor() as usize).min(sorted.len() - 1);
    let g = h - i as f64;
    let Some(&upper) = sorted.get(i + 1) else {
        return Ok(sorted[i]);
    };
    let lower = sorted[i];
    let diff = upper - lower;
    Ok(if g >= 0.5 {
        upper - diff * (1.0 - g)
    } else {
        lower + diff * g
    })
}

/// The pooled cap: the `percentile` of all arms' values together.
pub fn pooled_cap(arms: &[&[f64]], percentile: f64) -> Result<f64> {
    let pooled: Vec<f64> = arms.iter().flat_map(|arm| arm.iter().copied()).collect();
    percentile_linear(&pooled, percentile)
}

/// Caps values above `cap` in place.
pub fn winsorize(values: &mut [f64], cap: f64) {
    for value in values {
        if *value > cap {
            *value = cap;
        }
    }
}
