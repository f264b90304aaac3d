//! Every statistical function against scipy / statsmodels reference values
//! (`fixtures/reference.json`, written by `fixtures/gen_reference.py`), to
//! 1e-6 relative.

use experiments::stats::{self, ArmSummary, BivariateSummary, Comparison, Method, MinimumEffect};
use serde_json::Value;

const REFERENCE: &str = include_str!("fixtures/reference.json");
const RELATIVE_TOLERANCE: f64 = 1e-6;

fn reference() -> Value {
    serde_json::from_str(REFERENCE).unwrap()
}

fn cases<'a>(reference: &'a Value, section: &str) -> &'a Vec<Value> {
    let cases = reference[section].as_array().unwrap();
    assert!(!cases.is_empty(), "no cases in {section}");
    cases
}

fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

fn pair(value: &Value) -> [f64; 2] {
    [num(&value[0]), num(&value[1])]
}

/// `actual` within 1e-6 relative of `expected` (plus 1e-12 absolute so that
/// values that are exactly 0 in the reference can match).
#[track_caller]
fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = RELATIVE_TOLERANCE * expected.abs() + 1e-12;
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, reference {expected} (diff {:e})",
        (actual - expected).abs()
    );
}

#[track_caller]
fn assert_close_pair(actual: [f64; 2], expected: [f64; 2], what: &str) {
    assert_close(actual[0], expected[0], &format!("{what}[0]"));
    assert_close(actual[1], expected[1], &format!("{what}[1]"));
}

fn arm(value: &Value) -> ArmSummary {
    serde_json::from_value(value.clone()).unwrap()
}

fn bivariate(value: &Value) -> BivariateSummary {
    serde_json::from_value(value.clone()).unwrap()
}

fn check_relative(c: &Comparison, case: &Value, what: &str) {
    assert_close(
        c.relative_lift.unwrap(),
        num(&case["relative_lift"]),
        &format!("{what} relative_lift"),
    );
    assert_close_pair(
        c.relative_ci.unwrap(),
        pair(&case["relative_ci"]),
        &format!("{what} relative_ci"),
    );
    if !case["relative_standard_error"].is_null() {
        assert_close(
            c.relative_standard_error.unwrap(),
            num(&case["relative_standard_error"]),
            &format!("{what} relative_standard_error"),
        );
    }
}

#[test]
fn welch_t_test_matches_scipy() {
    let reference = reference();
    for (i, case) in cases(&reference, "welch").iter().enumerate() {
        let what = format!("welch[{i}]");
        let c = stats::welch_t_test(&arm(&case["control"]), &arm(&case["treatment"]), num(&case["alpha"])).unwrap();
        assert_eq!(c.method, Method::WelchT);
        assert_close(c.absolute_lift, num(&case["absolute_lift"]), &what);
        assert_close_pair(
            c.absolute_ci,
            pair(&case["absolute_ci"]),
            &format!("{what} absolute_ci"),
        );
        assert_close(c.p_value, num(&case["p_value"]), &format!("{what} p_value"));
        assert_close(c.statistic, num(&case["statistic"]), &format!("{what} statistic"));
        assert_close(
            c.degrees_of_freedom.unwrap(),
            num(&case["degrees_of_freedom"]),
            &format!("{what} df"),
        );
        assert_close(c.standard_error, num(&case["standard_error"]), &format!("{what} se"));
        check_relative(&c, case, &what);
        // The dispatcher picks Welch when sum_squares is present.
        assert_eq!(
            stats::compare(&arm(&case["control"]), &arm(&case["treatment"]), num(&case["alpha"])).unwrap(),
            c
        );
    }
}

#[test]
fn two_proportion_test_matches_statsmodels() {
    let reference = reference();
    for (i, case) in cases(&reference, "rates").iter().enumerate() {
        let what = format!("rates[{i}]");
        let control = arm(&case["control"]);
        assert_eq!(control.sum_squares, None);
        let c = stats::compare(&control, &arm(&case["treatment"]), num(&case["alpha"])).unwrap();
        assert_eq!(c.method, Method::TwoProportionZ);
        assert_close(c.absolute_lift, num(&case["absolute_lift"]), &what);
        assert_close_pair(
            c.absolute_ci,
            pair(&case["absolute_ci"]),
            &format!("{what} absolute_ci"),
        );
        assert_close(c.p_value, num(&case["p_value"]), &format!("{what} p_value"));
        assert_close(c.statistic, num(&case["statistic"]), &format!("{what} statistic"));
        check_relative(&c, case, &what);
    }
}

#[test]
fn ratio_delta_method_matches_statsmodels() {
    let reference = reference();
    for (i, case) in cases(&reference, "ratio").iter().enumerate() {
        let what = format!("ratio[{i}]");
        let c = stats::ratio_delta_test(
            &bivariate(&case["control"]),
            &bivariate(&case["treatment"]),
            num(&case["alpha"]),
        )
        .unwrap();
        assert_close(c.control_mean, num(&case["control_mean"]), &what);
        assert_close(c.treatment_mean, num(&case["treatment_mean"]), &what);
        assert_close(c.absolute_lift, num(&case["absolute_lift"]), &what);
        assert_close_pair(
            c.absolute_ci,
            pair(&case["absolute_ci"]),
            &format!("{what} absolute_ci"),
        );
        assert_close(c.standard_error, num(&case["standard_error"]), &format!("{what} se"));
        assert_close(c.p_value, num(&case["p_value"]), &format!("{what} p_value"));
        check_relative(&c, case, &what);
    }
}

#[test]
fn cuped_matches_welch_on_adjusted_values() {
    let reference = reference();
    for (i, case) in cases(&reference, "cuped").iter().enumerate() {
        let what = format!("cuped[{i}]");
        let r = stats::cuped_welch_t_test(
            &bivariate(&case["control"]),
            &bivariate(&case["treatment"]),
            num(&case["alpha"]),
        )
        .unwrap();
        let c = &r.comparison;
        assert_close(r.theta, num(&case["theta"]), &format!("{what} theta"));
        assert_close(
            r.variance_reduction,
            num(&case["variance_reduction"]),
            &format!("{what} reduction"),
        );
        assert_close(c.control_mean, num(&case["control_mean"]), &what);
        assert_close(c.treatment_mean, num(&case["treatment_mean"]), &what);
        assert_close(c.absolute_lift, num(&case["absolute_lift"]), &what);
        assert_close_pair(
            c.absolute_ci,
            pair(&case["absolute_ci"]),
            &format!("{what} absolute_ci"),
        );
        assert_close(c.p_value, num(&case["p_value"]), &format!("{what} p_value"));
        assert_close(
            c.degrees_of_freedom.unwrap(),
            num(&case["degrees_of_freedom"]),
            &format!("{what} df"),
        );
        check_relative(c, case, &what);
        assert!(
            r.variance_reduction > 0.0,
            "{what}: a correlated covariate must reduce variance"
        );
    }
}

#[test]
fn sequential_matches_paper_formulas() {
    let reference = reference();
    for (i, case) in cases(&reference, "sequential").iter().enumerate() {
        let what = format!("sequential[{i}]");
        let (lift, se, alpha) = (
            num(&case["absolute_lift"]),
            num(&case["standard_error"]),
            num(&case["alpha"]),
        );
        let m = stats::msprt(lift, se, num(&case["tau_squared"]), alpha).unwrap();
        assert_close(m.p_value, num(&case["msprt_p_value"]), &format!("{what} msprt p"));
        assert_close_pair(m.absolute_ci, pair(&case["msprt_ci"]), &format!("{what} msprt ci"));
        let cs = stats::confidence_sequence(
            lift,
            se,
            case["total_n"].as_u64().unwrap(),
            case["planned_total_n"].as_u64().unwrap(),
            alpha,
        )
        .unwrap();
        assert_close(
            cs.mixing_variance,
            num(&case["cs_rho_squared"]),
            &format!("{what} rho2"),
        );
        assert_close(cs.p_value, num(&case["cs_p_value"]), &format!("{what} cs p"));
        assert_close_pair(cs.absolute_ci, pair(&case["cs_ci"]), &format!("{what} cs ci"));
        // Always-valid intervals are wider than the fixed-horizon z interval.
        let z = 1.959963984540054 * se;
        if alpha == 0.05 {
            assert!(m.absolute_ci[1] - m.absolute_ci[0] > 2.0 * z, "{what}");
        }
    }
}

#[test]
fn bayesian_matches_numerical_integration() {
    let reference = reference();
    for (i, case) in cases(&reference, "bayes").iter().enumerate() {
        let what = format!("bayes[{i}]");
        let b = stats::bayesian_normal(
            num(&case["lift"]),
            num(&case["standard_error"]),
            case["higher_is_better"].as_bool().unwrap(),
        )
        .unwrap();
        assert_close(
            b.chance_to_beat_control,
            num(&case["chance_to_beat_control"]),
            &format!("{what} ctw"),
        );
        assert_close(
            b.expected_loss_treatment,
            num(&case["expected_loss_treatment"]),
            &format!("{what} loss t"),
        );
        assert_close(
            b.expected_loss_control,
            num(&case["expected_loss_control"]),
            &format!("{what} loss c"),
        );
    }
}

#[test]
fn holm_and_benjamini_hochberg_match_statsmodels() {
    let reference = reference();
    for (i, case) in cases(&reference, "multiple").iter().enumerate() {
        let p: Vec<f64> = case["p_values"].as_array().unwrap().iter().map(num).collect();
        for (method, adjusted) in [
            ("holm", stats::holm(&p).unwrap()),
            ("benjamini_hochberg", stats::benjamini_hochberg(&p).unwrap()),
        ] {
            let expected: Vec<f64> = case[method].as_array().unwrap().iter().map(num).collect();
            assert_eq!(adjusted.len(), expected.len());
            for (j, (a, e)) in adjusted.iter().zip(&expected).enumerate() {
                assert_close(*a, *e, &format!("multiple[{i}] {method}[{j}]"));
            }
        }
    }
}

#[test]
fn sample_ratio_mismatch_matches_scipy() {
    let reference = reference();
    for (i, case) in cases(&reference, "srm").iter().enumerate() {
        let observed: Vec<u64> = case["observed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let weights: Vec<f64> = case["weights"].as_array().unwrap().iter().map(num).collect();
        let r = stats::sample_ratio_mismatch(&observed, &weights).unwrap();
        assert_close(r.chi_square, num(&case["chi_square"]), &format!("srm[{i}] chi2"));
        assert_close(r.p_value, num(&case["p_value"]), &format!("srm[{i}] p"));
        assert_eq!(r.mismatch, case["mismatch"].as_bool().unwrap(), "srm[{i}]");
    }
}

#[test]
fn percentiles_and_winsorizing_match_numpy() {
    let reference = reference();
    for (i, case) in cases(&reference, "percentiles").iter().enumerate() {
        let values: Vec<f64> = case["values"].as_array().unwrap().iter().map(num).collect();
        for (q, expected) in case["q"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["percentile"].as_array().unwrap())
        {
            let actual = stats::percentile_linear(&values, num(q)).unwrap();
            assert_close(actual, num(expected), &format!("percentiles[{i}] q={q}"));
        }
        // Pooled cap over two halves equals the cap over all values.
        let (a, b) = values.split_at(values.len() / 2);
        let cap = stats::pooled_cap(&[a, b], 99.0).unwrap();
        let mut capped = values.clone();
        stats::winsorize(&mut capped, cap);
        assert_close(
            capped.iter().sum(),
            num(&case["capped_sum_at_99"]),
            &format!("percentiles[{i}] capped sum"),
        );
    }
}

#[test]
fn power_and_sample_size_for_rates_match_statsmodels() {
    let reference = reference();
    for (i, case) in cases(&reference, "power_rates").iter().enumerate() {
        let what = format!("power_rates[{i}]");
        let (baseline, diff, n, alpha, target) = (
            num(&case["baseline"]),
            num(&case["diff"]),
            num(&case["n_per_arm"]),
            num(&case["alpha"]),
            num(&case["power_target"]),
        );
        assert_close(
            stats::power_proportions(baseline, diff, n, alpha).unwrap(),
            num(&case["power"]),
            &format!("{what} power"),
        );
        let size = stats::sample_size_proportions(baseline, MinimumEffect::Absolute(diff), alpha, target).unwrap();
        assert_close(
            size.units_per_arm_exact,
            num(&case["sample_size"]),
            &format!("{what} size"),
        );
        assert_eq!(size.units_per_arm, num(&case["sample_size"]).ceil() as u64);
        let relative =
            stats::sample_size_proportions(baseline, MinimumEffect::Relative(diff / baseline), alpha, target).unwrap();
        assert_close(
            relative.units_per_arm_exact,
            num(&case["sample_size"]),
            &format!("{what} size (relative)"),
        );
        assert_close(
            stats::mde_proportions(baseline, n, alpha, target).unwrap(),
            num(&case["mde"]),
            &format!("{what} mde"),
        );
    }
}

#[test]
fn power_and_sample_size_for_means_match_statsmodels() {
    let reference = reference();
    for (i, case) in cases(&reference, "power_means").iter().enumerate() {
        let what = format!("power_means[{i}]");
        let (sd, diff, n, alpha, target) = (
            num(&case["std_dev"]),
            num(&case["diff"]),
            num(&case["n_per_arm"]),
            num(&case["alpha"]),
            num(&case["power_target"]),
        );
        assert_close(
            stats::power_means(sd, diff, n, alpha).unwrap(),
            num(&case["power"]),
            &format!("{what} power"),
        );
        assert_close(
            stats::power_from_standard_error(diff, num(&case["standard_error"]), alpha).unwrap(),
            num(&case["power"]),
            &format!("{what} power from se"),
        );
        let size = stats::sample_size_means(100.0, sd, MinimumEffect::Absolute(diff), alpha, target).unwrap();
        assert_close(
            size.units_per_arm_exact,
            num(&case["sample_size"]),
            &format!("{what} size"),
        );
        assert_close(
            stats::mde_means(sd, n, alpha, target).unwrap(),
            num(&case["mde"]),
            &format!("{what} mde"),
        );
    }
}
