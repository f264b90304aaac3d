//! Edge cases and input validation; numeric agreement with scipy/statsmodels
//! is in `tests/reference.rs`.

use super::*;

#[test]
fn compare_rejects_bad_input_naming_the_field() {
    let ok = ArmSummary::rate(100, 10);
    let too_many = ArmSummary::rate(100, 101);
    assert!(matches!(
        compare(&ok, &too_many, 0.05),
        Err(StatsError::InvalidInput { field: "treatment", .. })
    ));
    assert!(matches!(
        compare(&ok, &ok, 1.5),
        Err(StatsError::InvalidInput { field: "alpha", .. })
    ));
    let one_unit = ArmSummary {
        n: 1,
        sum: 3.0,
        sum_squares: Some(9.0),
    };
    let mean = ArmSummary {
        n: 10,
        sum: 30.0,
        sum_squares: Some(100.0),
    };
    assert!(matches!(
        welch_t_test(&one_unit, &mean, 0.05),
        Err(StatsError::InvalidInput { field: "control", .. })
    ));
    // A rate body sent to the mean test is rejected, not silently treated as 0/1.
    assert!(welch_t_test(&ok, &mean, 0.05).is_err());
}

#[test]
fn no_conversions_yet_is_not_an_error() {
    let c = compare(&ArmSummary::rate(600, 0), &ArmSummary::rate(600, 0), 0.05).unwrap();
    assert_eq!(c.p_value, 1.0);
    assert_eq!(c.absolute_ci, [0.0, 0.0]);
    // Relative lift is undefined with a zero control rate.
    assert_eq!(c.relative_lift, None);
    let json = serde_json::to_value(c).unwrap();
    assert!(json["relative_lift"].is_null());
    assert_eq!(json["method"], "two_proportion_z");
}

#[test]
fn arm_summary_accepts_the_http_body_shape() {
    let rate: ArmSummary = serde_json::from_str(r#"{"n": 1000, "sum": 120}"#).unwrap();
    assert_eq!(rate, ArmSummary::rate(1000, 120));
    let mean: ArmSummary = serde_json::from_str(r#"{"n": 3, "sum": 6, "sum_squares": 14}"#).unwrap();
    assert_eq!(mean, ArmSummary::from_values(&[1.0, 2.0, 3.0]));
    assert_eq!(mean.sample_variance(), 1.0);
}

#[test]
fn multiple_testing_rejects_invalid_p_values_and_handles_empty() {
    assert!(holm(&[0.5, 1.2]).is_err());
    assert!(benjamini_hochberg(&[f64::NAN]).is_err());
    assert_eq!(holm(&[]).unwrap(), Vec::<f64>::new());
    // Adjusted p-values never fall below the raw ones.
    let raw = [0.01, 0.02, 0.03];
    for adjusted in [holm(&raw).unwrap(), benjamini_hochberg(&raw).unwrap()] {
        assert!(adjusted.iter().zip(raw).all(|(a, r)| *a >= r));
    }
}

#[test]
fn srm_validates_shapes() {
    assert!(sample_ratio_mismatch(&[10], &[1.0]).is_err());
    assert!(sample_ratio_mismatch(&[10, 10], &[1.0, 0.0]).is_err());
    assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).is_err());
    assert!(!sample_ratio_mismatch(&[500, 500], &[1.0, 1.0]).unwrap().mismatch);
}

#[test]
fn percentile_validates_and_caps_only_the_top() {
    assert!(percentile_linear(&[], 50.0).is_err());
    assert!(percentile_linear(&[1.0], 101.0).is_err());
    assert!(percentile_linear(&[1.0, f64::NAN], 50.0).is_err());
    assert_eq!(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 50.0).unwrap(), 2.5);
    let mut values = [1.0, 50.0, 3.0, 1000.0];
    winsorize(&mut values, 60.0);
    assert_eq!(values, [1.0, 50.0, 3.0, 60.0]);
}

#[test]
fn sequential_p_value_never_below_fixed_horizon() {
    // Always-valid inference pays for optional stopping with wider intervals.
    let c = compare(&ArmSummary::rate(5_000, 500), &ArmSummary::rate(5_000, 570), 0.05).unwrap();
    let m = msprt_from_comparison(&c, None).unwrap();
    assert!(m.p_value > c.p_value);
    assert!(m.absolute_ci[0] < c.absolute_ci[0] && m.absolute_ci[1] > c.absolute_ci[1]);
    // Running minimum / intersection across looks.
    let later = SequentialResult {
        p_value: 0.5,
        absolute_ci: [-1.0, 1.0],
        ..m
    };
    let combined = later.after(&m);
    assert_eq!(combined.p_value, m.p_value);
    assert_eq!(combined.absolute_ci, m.absolute_ci);
    assert!(msprt(0.1, 0.0, 1.0, 0.05).is_err());
    assert!(msprt(0.1, 0.1, -1.0, 0.05).is_err());
}

#[test]
fn bayesian_is_symmetric_and_oriented() {
    let up = bayesian_normal(0.02, 0.01, true).unwrap();
    let down = bayesian_normal(0.02, 0.01, false).unwrap();
    assert!((up.chance_to_beat_control + down.chance_to_beat_control - 1.0).abs() < 1e-12);
    assert!((up.expected_loss_treatment - down.expected_loss_control).abs() < 1e-12);
    // E[max(0,X)] - E[max(0,-X)] = E[X].
    assert!((up.expected_loss_control - up.expected_loss_treatment - 0.02).abs() < 1e-12);
    let c = compare(&ArmSummary::rate(5_000, 500), &ArmSummary::rate(5_000, 570), 0.05).unwrap();
    assert_eq!(bayesian_from_comparison(&c, true).unwrap().scale, LiftScale::Relative);
}

#[test]
fn power_helpers_are_consistent() {
    // At the computed sample size the power reaches the target (far tail adds a little).
    let size = sample_size_proportions(0.10, MinimumEffect::Relative(0.1), 0.05, 0.8).unwrap();
    let power = power_proportions(0.10, 0.01, size.units_per_arm as f64, 0.05).unwrap();
    assert!((0.8..0.801).contains(&power), "{power}");
    assert!((size.absolute_effect - 0.01).abs() < 1e-15);
    let days = size.days_at(2_000.0, 2).unwrap();
    assert!((days - size.units_per_arm as f64 / 1_000.0).abs() < 1e-9);
    assert!(sample_size_proportions(0.95, MinimumEffect::Absolute(0.06), 0.05, 0.8).is_err());
    // One customer per arm cannot detect any increase with 80 % power.
    assert!(mde_proportions(0.5, 1.0, 0.05, 0.8).is_err());
    let mde = mde_means(10.0, 1_000.0, 0.05, 0.8).unwrap();
    assert!((power_means(10.0, mde, 1_000.0, 0.05).unwrap() - 0.8).abs() < 1e-9);
}

/// Deterministic pseudo-random numbers in [0, 1) for test data.
fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn cuped_ratio_with_unit_denominators_is_cuped_welch() {
    let mut s = 7u64;
    let mut arms: [Vec<RatioUnit>; 2] = [Vec::new(), Vec::new()];
    for (a, arm) in arms.iter_mut().enumerate() {
        for _ in 0..500 {
            let pre = 10.0 * lcg(&mut s);
            let post = 0.8 * pre + 3.0 * lcg(&mut s) + a as f64;
            arm.push(RatioUnit {
                numerator: post,
                denominator: 1.0,
                pre_numerator: pre,
                pre_denominator: 1.0,
            });
        }
    }
    let summary = |arm: &[RatioUnit]| {
        BivariateSummary::from_pairs(&arm.iter().map(|u| (u.pre_numerator, u.numerator)).collect::<Vec<_>>())
    };
    let r = cuped_ratio_delta_test(&arms[0], &arms[1], 0.05).unwrap();
    let w = cuped_welch_t_test(&summary(&arms[0]), &summary(&arms[1]), 0.05).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(r.theta, w.theta), "{} vs {}", r.theta, w.theta);
    assert!(close(r.comparison.absolute_lift, w.comparison.absolute_lift));
    assert!(close(r.comparison.standard_error, w.comparison.standard_error));
    assert!(close(r.variance_reduction, w.variance_reduction));
    assert!(r.variance_reduction > 0.5, "{}", r.variance_reduction);
    assert_eq!(r.comparison.method, Method::CupedDeltaRatio);
}

#[test]
fn cuped_ratio_without_pre_period_is_the_delta_method() {
    let mut s = 11u64;
    let mut arms: [Vec<RatioUnit>; 2] = [Vec::new(), Vec::new()];
    for (a, arm) in arms.iter_mut().enumerate() {
        for _ in 0..400 {
            let d = 1.0 + (4.0 * lcg(&mut s)).floor();
            let y = (d * (0.2 + 0.05 * a as f64 + 0.3 * lcg(&mut s))).round();
            arm.push(RatioUnit {
                numerator: y,
                denominator: d,
                ..RatioUnit::default()
            });
        }
    }
    let pairs = |arm: &[RatioUnit]| {
        BivariateSummary::from_pairs(&arm.iter().map(|u| (u.numerator, u.denominator)).collect::<Vec<_>>())
    };
    let r = cuped_ratio_delta_test(&arms[0], &arms[1], 0.05).unwrap();
    let d = ratio_delta_test(&pairs(&arms[0]), &pairs(&arms[1]), 0.05).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    assert_eq!(r.theta, 0.0);
    assert!(r.variance_reduction.abs() < 1e-12);
    assert!(close(r.comparison.absolute_lift, d.absolute_lift));
    assert!(close(r.comparison.standard_error, d.standard_error));
    assert!(close(r.comparison.p_value, d.p_value));
    assert!(close(r.comparison.relative_lift.unwrap(), d.relative_lift.unwrap()));
}

#[test]
fn cuped_ratio_tightens_the_interval_when_the_pre_period_correlates() {
    // Each unit has a persistent propensity; conversations per period vary.
    let mut s = 3u64;
    let mut arms: [Vec<RatioUnit>; 2] = [Vec::new(), Vec::new()];
    for (a, arm) in arms.iter_mut().enumerate() {
        for _ in 0..2000 {
            let propensity = 0.05 + 0.6 * lcg(&mut s);
            let (d, q) = (1.0 + (3.0 * lcg(&mut s)).floor(), 1.0 + (3.0 * lcg(&mut s)).floor());
            let rate = (propensity + 0.03 * a as f64).min(1.0);
            arm.push(RatioUnit {
                numerator: (d * rate + 0.2 * (lcg(&mut s) - 0.5)).clamp(0.0, d),
                denominator: d,
                pre_numerator: (q * propensity + 0.2 * (lcg(&mut s) - 0.5)).clamp(0.0, q),
                pre_denominator: q,
            });
        }
    }
    let pairs = |arm: &[RatioUnit]| {
        BivariateSummary::from_pairs(&arm.iter().map(|u| (u.numerator, u.denominator)).collect::<Vec<_>>())
    };
    let plain = ratio_delta_test(&pairs(&arms[0]), &pairs(&arms[1]), 0.05).unwrap();
    let r = cuped_ratio_delta_test(&arms[0], &arms[1], 0.05).unwrap();
    assert!(r.theta > 0.5, "theta {}", r.theta);
    assert!(r.variance_reduction > 0.5, "{}", r.variance_reduction);
    assert!(r.comparison.standard_error < 0.75 * plain.standard_error);
    // Same estimand: the adjusted lift stays near the true +3 points.
    assert!((r.comparison.absolute_lift - 0.03).abs() < 4.0 * r.comparison.standard_error);
    let width = |c: &Comparison| c.absolute_ci[1] - c.absolute_ci[0];
    assert!(width(&r.comparison) < width(&plain));
    // Bad input names the arm.
    assert!(matches!(
        cuped_ratio_delta_test(&arms[0][..1], &arms[1], 0.05),
        Err(StatsError::InvalidInput { field: "control", .. })
    ));
}
