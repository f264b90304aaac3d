use super::*;

#[test]
fn wape_and_mape_definitions() {
    assert_eq!(wape(&[10.0, 0.0, 30.0], &[12.0, 1.0, 27.0]), Some(6.0 / 40.0));
    assert_eq!(wape(&[0.0, 0.0], &[1.0, 2.0]), None);
    let m = mape(&[10.0, 0.0, 20.0], &[12.0, 5.0, 15.0]);
    assert_eq!(m.skipped_zero_actuals, 1);
    assert!((m.value.unwrap() - (0.2 + 0.25) / 2.0).abs() < 1e-12);
    assert_eq!(mape(&[0.0], &[1.0]).value, None);
    assert_eq!(poisson_noise_floor(0.0), None);
    assert!((poisson_noise_floor(16.0).unwrap() - 0.2).abs() < 1e-12);
    // Pooled: (0.8·1 + 0.8·3) / (1 + 9) = 0.32 < 0.8/√5 ≈ 0.358.
    assert!((poisson_noise_floor_pooled(&[1.0, 9.0]).unwrap() - 0.32).abs() < 1e-12);
    assert_eq!(poisson_noise_floor_pooled(&[0.0]), None);
}

#[test]
fn quantiles_of_poisson_and_negative_binomial() {
    // Poisson(2): P(≤1) = 0.406, P(≤2) = 0.677, P(≤3) = 0.857, P(≤4) = 0.947.
    assert_eq!(quantile(2.0, 1.0, 0.5), 2.0);
    assert_eq!(quantile(2.0, 1.0, 0.9), 4.0);
    assert_eq!(quantile(0.0, 3.0, 0.9), 0.0);
    // Over-dispersion widens the upper quantile.
    assert!(quantile(20.0, 3.0, 0.9) > quantile(20.0, 1.0, 0.9));
    // Normal branch stays close to the exact one at the switch-over.
    let exact = quantile(290.0, 1.0, 0.9);
    let approx = quantile(310.0, 1.0, 0.9) - 20.0;
    assert!((exact - approx).abs() <= 2.0, "{exact} {approx}");
}

#[test]
fn pearson_dispersion_is_one_for_a_perfect_poisson_fit() {
    assert_eq!(pearson_dispersion(&[3.0, 3.0], &[3.0, 3.0]), 1.0);
    assert!(pearson_dispersion(&[0.0, 20.0], &[10.0, 10.0]) > 5.0);
}
