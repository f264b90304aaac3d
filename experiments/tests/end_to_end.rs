//! Assignment → summaries → statistics → decision on generated traffic.
//!
//! Outcomes are generated deterministically from a hash of the unit id (a
//! separate seed from the experiment), so the test is reproducible and
//! outcome is independent of the variant except through the injected effect.

use experiments::assignment::{Stream, unit_position};
use experiments::decision::{
    DEFAULT_MIN_SAMPLE_PER_VARIANT, DecisionInput, Direction, MetricReading, MetricScale, Reason, Verdict, decide,
};
use experiments::stats::{ArmSummary, compare, sample_ratio_mismatch};
use experiments::{assign_variant, in_traffic};

/// Runs an experiment on `units` customers with true conversion `rates[v]`
/// per variant; returns the decision and the SRM flag.
fn run(seed: &str, units: u32, rates: [f64; 2]) -> (experiments::decision::Decision, bool, [f64; 2]) {
    let weights = [1.0, 1.0];
    let mut n = [0u64; 2];
    let mut conversions = [0u64; 2];
    for i in 0..units {
        let unit = format!("customer-{i}");
        if !in_traffic(seed, &unit, 0.8) {
            continue;
        }
        let variant = assign_variant(seed, &unit, &weights);
        n[variant] += 1;
        if unit_position("outcome-generator", &unit, Stream::Traffic) < rates[variant] {
            conversions[variant] += 1;
        }
    }
    let srm = sample_ratio_mismatch(&n, &weights).unwrap();
    let comparison = compare(
        &ArmSummary::rate(n[0], conversions[0]),
        &ArmSummary::rate(n[1], conversions[1]),
        0.05,
    )
    .unwrap();
    let absolute_ci = comparison.absolute_ci;
    let decision = decide(&DecisionInput {
        variant: "B".to_string(),
        primary: MetricReading {
            name: "conversion".to_string(),
            scale: MetricScale::Rate,
            direction: Direction::HigherIsBetter,
            comparison,
            sequential: None,
            minimum_useful_effect: 0.01,
        },
        guardrails: vec![],
        srm_p_value: srm.p_value,
        min_sample_per_variant: DEFAULT_MIN_SAMPLE_PER_VARIANT,
        planned_duration_reached: false,
    });
    (decision, srm.mismatch, absolute_ci)
}

#[test]
fn known_effect_is_shipped() {
    // +3 pp on a 10 % baseline with ~16k customers per arm.
    let (decision, srm, ci) = run("greeting-friendly-v1", 40_000, [0.10, 0.13]);
    assert!(!srm);
    assert_eq!(decision.verdict, Verdict::Ship, "{}", decision.explanation);
    // The interval covers the injected effect.
    assert!(ci[0] < 0.03 && 0.03 < ci[1], "{ci:?}");
    assert!(
        decision.explanation.starts_with("B wins: +2."),
        "{}",
        decision.explanation
    );
}

#[test]
fn a_a_experiments_make_no_decision_and_no_srm_flag() {
    for seed in ["aa-1", "aa-2", "aa-3"] {
        let (decision, srm, _) = run(seed, 6_000, [0.10, 0.10]);
        assert!(!srm, "{seed}");
        assert_eq!(
            decision.verdict,
            Verdict::KeepRunning,
            "{seed}: {}",
            decision.explanation
        );
        assert_eq!(decision.reason, Reason::Inconclusive, "{seed}");
    }
}
