use serde_json::json;

use super::*;
use crate::experiment_store::{ExperimentDefinition, Registry};

fn experiment() -> Experiment {
    let definition: ExperimentDefinition = serde_json::from_value(json!({
        "key": "greet",
        "kind": "greeting",
        "variants": [{"key": "control", "weight": 1}, {"key": "friendly", "weight": 1}],
        "primary_metric": "conversion",
        "guardrail_metrics": ["resolution", "order_value_per_customer"]
    }))
    .unwrap_or_else(|e| panic!("fixture: {e}"));
    let mut r = Registry::default();
    r.create(definition, "k", "2026-01-01T00:00:00Z")
        .cloned()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `units` customers, each with one conversation; `converted_per_mille` of
/// them convert (spread evenly), every fifth is unresolved.
fn arm(variant: &str, units: usize, converted_per_mille: usize) -> Vec<UnitOutcome> {
    (0..units)
        .map(|i| {
            let converted = (i * 1000 / units) % 1000 < converted_per_mille;
            UnitOutcome {
                variant: variant.into(),
                variant_count: 1,
                conversations: 1.0,
                converted: f64::from(u8::from(converted)),
                resolved: f64::from(u8::from(i % 5 != 0)),
                order_value: if converted { 40.0 + (i % 7) as f64 } else { 0.0 },
                ..UnitOutcome::default()
            }
        })
        .collect()
}

fn options() -> ResultsOptions {
    ResultsOptions {
        all_metrics: false,
        winsorize_percentile: 99.0,
        planned_duration_reached: false,
    }
}

fn verdict(out: &Value) -> &str {
    out["decision"]["verdict"].as_str().unwrap_or_default()
}

#[test]
fn a_clear_improvement_ships_with_its_numbers() {
    let mut units = arm("control", 4000, 100);
    units.extend(arm("friendly", 4000, 150));
    let out = analyze(&experiment(), &units, options());
    assert_eq!(verdict(&out), "ship", "{out:#}");
    let explanation = out["decision"]["explanation"].as_str().unwrap_or_default();
    assert!(explanation.starts_with("friendly wins: +5"), "{explanation}");
    let conversion = &out["metrics"][0];
    assert_eq!(conversion["metric"], "conversion");
    assert_eq!(conversion["method"], "delta_ratio");
    let c = &conversion["comparisons"][0];
    assert_eq!(c["control_n"], 4000);
    assert!((c["absolute_lift"].as_f64().unwrap_or_default() - 0.05).abs() < 1e-9);
    assert!((c["relative_lift"].as_f64().unwrap_or_default() - 0.5).abs() < 1e-9);
    assert!(c["p_value"].as_f64().unwrap_or(1.0) < 1e-6);
    assert!(c["sequential"]["p_value"].as_f64().unwrap_or(1.0) < 0.05);
    assert!(c["bayesian"]["chance_to_beat_control"].as_f64().unwrap_or_default() > 0.99);
    assert!(c["p_value_holm"].as_f64().unwrap_or(1.0) >= c["p_value"].as_f64().unwrap_or(1.0));
    assert!(c["mde"].as_f64().unwrap_or_default() > 0.0);
    assert_eq!(out["srm"]["mismatch"], false);
    // Order value is winsorized at the pooled 99th percentile.
    assert_eq!(out["metrics"][2]["winsorized"]["percentile"], 99.0);
}

#[test]
fn identical_arms_do_not_ship_and_show_no_mismatch() {
    let mut units = arm("control", 3000, 120);
    units.extend(arm("friendly", 3000, 120));
    let out = analyze(&experiment(), &units, options());
    assert_ne!(verdict(&out), "ship", "{out:#}");
    assert_eq!(out["srm"]["mismatch"], false);
    assert_eq!(out["metrics"][0]["comparisons"][0]["p_value"], 1.0);
}

#[test]
fn a_broken_split_blocks_the_decision() {
    let mut units = arm("control", 4000, 100);
    units.extend(arm("friendly", 3000, 200));
    let out = analyze(&experiment(), &units, options());
    assert_eq!(out["srm"]["mismatch"], true);
    assert_eq!(out["decision"]["reason"], "sample_ratio_mismatch", "{out:#}");
}

#[test]
fn small_samples_keep_running_and_odd_units_are_excluded() {
    let mut units = arm("control", 100, 100);
    units.extend(arm("friendly", 100, 300));
    units.push(UnitOutcome {
        variant: "control".into(),
        variant_count: 2,
        ..UnitOutcome::default()
    });
    units.push(UnitOutcome {
        variant: "bold".into(),
        variant_count: 1,
        ..UnitOutcome::default()
    });
    let out = analyze(&experiment(), &units, options());
    assert_eq!(out["decision"]["reason"], "below_minimum_sample");
    assert_eq!(out["excluded"]["units_in_several_variants"], 1);
    assert_eq!(out["excluded"]["units_in_unknown_variants"], 1);
    assert_eq!(out["variants"][0]["units"], 100);
}

#[test]
fn no_data_is_an_answer_not_an_error() {
    let out = analyze(&experiment(), &[], options());
    assert_eq!(verdict(&out), "keep_running");
    assert_eq!(out["srm"], Value::Null);
}

#[test]
fn a_harmed_guardrail_stops_the_experiment() {
    let mut units = arm("control", 4000, 100);
    let mut friendly = arm("friendly", 4000, 150);
    for (i, u) in friendly.iter_mut().enumerate() {
        u.resolved = f64::from(u8::from(i % 2 == 0));
    }
    units.extend(friendly);
    let out = analyze(&experiment(), &units, options());
    assert_eq!(verdict(&out), "stop", "{out:#}");
    assert_eq!(out["decision"]["reason"], "guardrail_worse");
}
