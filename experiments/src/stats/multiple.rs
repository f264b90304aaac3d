//! Multiple-testing adjustments across metrics and variants.
//!
//! - Holm (1979) step-down, controls the family-wise error rate: with the
//!   p-values sorted ascending `p_(1) ≤ … ≤ p_(m)`,
//!   `adj_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))`.
//! - Benjamini–Hochberg (1995) step-up, controls the false discovery rate:
//!   `adj_(i) = min_{j ≥ i} min(1, m p_(j) / j)`.
//!
//! Both return adjusted p-values in the input order and match
//! `statsmodels.stats.multitest.multipletests(method="holm" / "fdr_bh")`.

use super::{Result, invalid};

fn sorted_order(p_values: &[f64]) -> Result<Vec<usize>> {
    if let Some(bad) = p_values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(invalid("p_values", format!("each must be in [0, 1], got {bad}")));
    }
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    Ok(order)
}

/// Holm-adjusted p-values, in input order.
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>> {
    let order = sorted_order(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &index) in order.iter().enumerate() {
        running_max = running_max.max(((m - rank) as f64 * p_values[index]).min(1.0));
        adjusted[index] = running_max;
    }
    Ok(adjusted)
}

/// Benjamini–Hochberg-adjusted p-values, in input order.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>> {
    let order = sorted_order(p_values)?;
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min: f64 = 1.0;
    for (rank, &index) in order.iter().enumerate().rev() {
        running_min = running_min.min(m as f64 * p_values[index] / (rank + 1) as f64);
        adjusted[index] = running_min;
    }
    Ok(adjusted)
}
