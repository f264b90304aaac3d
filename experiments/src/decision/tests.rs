use super::*;
use crate::stats::{ArmSummary, compare, msprt_from_comparison, sample_ratio_mismatch};

fn rate_reading(control: (u64, u64), treatment: (u64, u64), direction: Direction) -> MetricReading {
    let comparison = compare(
        &ArmSummary::rate(control.0, control.1),
        &ArmSummary::rate(treatment.0, treatment.1),
        0.05,
    )
    .unwrap();
    MetricReading {
        name: "conversion".to_string(),
        scale: MetricScale::Rate,
        direction,
        comparison,
        sequential: None,
        minimum_useful_effect: 0.01,
    }
}

fn input(primary: MetricReading) -> DecisionInput {
    let srm = sample_ratio_mismatch(
        &[primary.comparison.control_n, primary.comparison.treatment_n],
        &[1.0, 1.0],
    )
    .unwrap();
    DecisionInput {
        variant: "B".to_string(),
        primary,
        guardrails: vec![],
        srm_p_value: srm.p_value,
        min_sample_per_variant: DEFAULT_MIN_SAMPLE_PER_VARIANT,
        planned_duration_reached: false,
    }
}

#[test]
fn known_effect_ships_with_the_numbers_in_the_sentence() {
    // 10.0 % vs 12.1 % on 10,000 customers each.
    let d = decide(&input(rate_reading(
        (10_000, 1_000),
        (10_000, 1_210),
        Direction::HigherIsBetter,
    )));
    assert_eq!(d.verdict, Verdict::Ship);
    assert_eq!(d.reason, Reason::PrimaryBetter);
    assert_eq!(
        d.explanation,
        "B wins: +2.1 pp conversion (95 % CI 1.2–3.0), p < 0.001, ship it."
    );
}

#[test]
fn a_a_test_makes_no_decision_and_no_srm_flag() {
    let i = input(rate_reading((3_000, 300), (3_010, 302), Direction::HigherIsBetter));
    assert!(i.srm_p_value > SRM_P_THRESHOLD);
    let d = decide(&i);
    assert_eq!(d.verdict, Verdict::KeepRunning, "{}", d.explanation);
    assert_eq!(d.reason, Reason::Inconclusive);
    assert_eq!(
        d.explanation,
        "Keep running: +0.0 pp conversion (95 % CI -1.5 to 1.6), p = 0.966 so far for B."
    );
}

#[test]
fn below_minimum_sample_keeps_running_even_with_a_big_effect() {
    let d = decide(&input(rate_reading((400, 40), (400, 80), Direction::HigherIsBetter)));
    assert_eq!(d.verdict, Verdict::KeepRunning);
    assert_eq!(d.reason, Reason::BelowMinimumSample);
    assert_eq!(
        d.explanation,
        "Keep running: B has 400 and control 400 units, 500 per variant are needed before deciding."
    );
}

#[test]
fn sample_ratio_mismatch_blocks_a_winning_result() {
    let mut i = input(rate_reading(
        (10_000, 1_000),
        (10_000, 1_210),
        Direction::HigherIsBetter,
    ));
    i.srm_p_value = sample_ratio_mismatch(&[10_000, 10_600], &[1.0, 1.0]).unwrap().p_value;
    let d = decide(&i);
    assert_eq!(d.verdict, Verdict::KeepRunning);
    assert_eq!(d.reason, Reason::SampleRatioMismatch);
    assert!(d.explanation.contains("p < 0.001"), "{}", d.explanation);
}

#[test]
fn a_worse_guardrail_stops_a_winner() {
    let mut i = input(rate_reading(
        (10_000, 1_000),
        (10_000, 1_210),
        Direction::HigherIsBetter,
    ));
    let frt = crate::stats::welch_t_test(
        &ArmSummary {
            n: 10_000,
            sum: 300_000.0,
            sum_squares: Some(300_000.0 * 30.0 + 9_999.0 * 100.0),
        },
        &ArmSummary {
            n: 10_000,
            sum: 330_000.0,
            sum_squares: Some(330_000.0 * 33.0 + 9_999.0 * 100.0),
        },
        0.05,
    )
    .unwrap();
    i.guardrails.push(MetricReading {
        name: "first response time".to_string(),
        scale: MetricScale::Mean { unit: "s".to_string() },
        direction: Direction::LowerIsBetter,
        comparison: frt,
        sequential: None,
        minimum_useful_effect: 1.0,
    });
    let d = decide(&i);
    assert_eq!(d.verdict, Verdict::Stop);
    assert_eq!(d.reason, Reason::GuardrailWorse);
    assert_eq!(
        d.explanation,
        "B harms guardrail first response time: +3.0 s first response time (95 % CI 2.7–3.3), p < 0.001, stop it."
    );
}

#[test]
fn a_better_lower_is_better_guardrail_does_not_stop() {
    // Transfer to human falls: good for a lower-is-better guardrail.
    let mut i = input(rate_reading(
        (10_000, 1_000),
        (10_000, 1_210),
        Direction::HigherIsBetter,
    ));
    i.guardrails
        .push(rate_reading((10_000, 2_000), (10_000, 1_700), Direction::LowerIsBetter));
    assert_eq!(decide(&i).verdict, Verdict::Ship);
}

#[test]
fn significantly_worse_primary_stops() {
    let d = decide(&input(rate_reading(
        (10_000, 1_210),
        (10_000, 1_000),
        Direction::HigherIsBetter,
    )));
    assert_eq!(d.verdict, Verdict::Stop);
    assert_eq!(d.reason, Reason::PrimaryWorse);
    assert!(
        d.explanation
            .starts_with("B loses: -2.1 pp conversion (95 % CI -3.0 to -1.2)"),
        "{}",
        d.explanation
    );
}

#[test]
fn interval_excluding_useful_effect_stops() {
    // 200k per arm: interval about ±0.2 pp around 0, well below the 1 pp useful effect.
    let d = decide(&input(rate_reading(
        (200_000, 20_000),
        (200_000, 20_050),
        Direction::HigherIsBetter,
    )));
    assert_eq!(d.verdict, Verdict::Stop);
    assert_eq!(d.reason, Reason::NoUsefulEffect);
    assert!(
        d.explanation.contains("rules out the minimum useful +1.0 pp"),
        "{}",
        d.explanation
    );
}

#[test]
fn inconclusive_at_planned_duration_stops() {
    let mut i = input(rate_reading((3_000, 300), (3_010, 302), Direction::HigherIsBetter));
    i.planned_duration_reached = true;
    let d = decide(&i);
    assert_eq!(d.verdict, Verdict::Stop);
    assert_eq!(d.reason, Reason::InconclusiveAtPlannedDuration);
}

#[test]
fn sequential_interval_is_more_cautious_than_fixed_horizon() {
    // Fixed-horizon significant (p ~ 0.02), but not always-valid yet.
    let mut reading = rate_reading((5_000, 500), (5_000, 570), Direction::HigherIsBetter);
    assert!(reading.comparison.p_value < 0.05);
    assert_eq!(decide(&input(reading.clone())).verdict, Verdict::Ship);
    reading.sequential = Some(msprt_from_comparison(&reading.comparison, None).unwrap());
    let d = decide(&input(reading));
    assert_eq!(d.verdict, Verdict::KeepRunning, "{}", d.explanation);
    assert!(d.explanation.contains("always-valid CI"), "{}", d.explanation);
}

#[test]
fn decision_serializes_with_snake_case_codes() {
    let d = decide(&input(rate_reading(
        (10_000, 1_000),
        (10_000, 1_210),
        Direction::HigherIsBetter,
    )));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["verdict"], "ship");
    assert_eq!(json["reason"], "primary_better");
}
