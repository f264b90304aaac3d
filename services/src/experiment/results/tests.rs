use serde_json::json;

use super::*;
use crate::experiment::store::{ExperimentDefinition, Registry};

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

#[test]
fn cuped_is_reported_and_tighter_when_the_pre_period_correlates() {
    // Units with a persistent habit: whoever converted before converts again
    // (every 10th unit flips); treatment adds 3 points of new converters.
    let with_history = |variant: &str, per_mille: usize| -> Vec<UnitOutcome> {
        arm(variant, 3000, per_mille)
            .into_iter()
            .enumerate()
            .map(|(i, mut u)| {
                // The habit does not depend on the arm (the pre-period
                // precedes the treatment): the same 10 % in both.
                let habit = f64::from(u8::from(i * 1000 / 3000 < 100));
                let before = if i % 10 == 0 { 1.0 - habit } else { habit };
                u.pre = Some(Box::new(UnitOutcome {
                    conversations: 2.0,
                    converted: 2.0 * before,
                    resolved: if i % 7 == 0 {
                        2.0 - 2.0 * u.resolved
                    } else {
                        2.0 * u.resolved
                    },
                    order_value: u.order_value * 1.1,
                    ..UnitOutcome::default()
                }));
                u
            })
            .collect()
    };
    let mut units = with_history("control", 100);
    units.extend(with_history("friendly", 130));
    let out = analyze(&experiment(), &units, options());
    for (m, metric) in ["conversion", "resolution", "order_value_per_customer"]
        .iter()
        .enumerate()
    {
        let c = &out["metrics"][m]["comparisons"][0];
        assert_eq!(out["metrics"][m]["metric"], *metric);
        let cuped = &c["cuped"];
        let plain_se = c["standard_error"].as_f64().unwrap_or_default();
        let cuped_se = cuped["standard_error"].as_f64().unwrap_or(f64::INFINITY);
        assert!(cuped_se <= plain_se * (1.0 + 1e-9), "{metric}: {cuped:#}");
        assert_eq!(cuped["units_with_pre_period"]["control"], 3000, "{cuped:#}");
        assert!(cuped["sequential"]["p_value"].is_number(), "{cuped:#}");
        assert!(cuped["absolute_ci"][0].is_number() && cuped["relative_lift"].is_number());
    }
    let conversion = &out["metrics"][0]["comparisons"][0];
    let cuped = &conversion["cuped"];
    assert_eq!(cuped["method"], "cuped_delta_ratio");
    assert!(cuped["theta"].as_f64().unwrap_or_default() > 0.3, "{cuped:#}");
    assert!(
        cuped["variance_reduction"].as_f64().unwrap_or_default() > 0.25,
        "{cuped:#}"
    );
    // The same estimand: near the plain +3 points, with a narrower interval.
    let lift = cuped["absolute_lift"].as_f64().unwrap_or_default();
    assert!(
        (lift - 0.03).abs() < 1e-9,
        "identical pre-periods leave the lift: {lift}"
    );
    let width = |v: &Value| v["absolute_ci"][1].as_f64().unwrap_or(9.0) - v["absolute_ci"][0].as_f64().unwrap_or(0.0);
    assert!(width(cuped) < 0.85 * width(conversion));
    assert_eq!(out["metrics"][2]["comparisons"][0]["cuped"]["method"], "cuped_welch_t");
}

#[test]
fn without_a_pre_period_cuped_equals_the_plain_estimate() {
    let mut units = arm("control", 2000, 100);
    units.extend(arm("friendly", 2000, 130));
    let out = analyze(&experiment(), &units, options());
    let c = &out["metrics"][0]["comparisons"][0];
    assert_eq!(c["cuped"]["theta"], 0.0, "{:#}", c["cuped"]);
    assert_eq!(c["cuped"]["units_with_pre_period"]["treatment"], 0);
    let (a, b) = (
        c["cuped"]["absolute_lift"].as_f64().unwrap_or_default(),
        c["absolute_lift"].as_f64().unwrap_or(1.0),
    );
    assert!((a - b).abs() < 1e-12);
}

#[test]
fn the_units_query_filters_the_window_and_reads_the_pre_period() {
    let w = ResultsWindow {
        from: "2026-03-05T00:00:00Z".parse().unwrap_or_default(),
        to: "2026-03-09T00:00:00Z".parse().unwrap_or_default(),
    };
    assert_eq!(
        w.pre_period(),
        ResultsWindow {
            from: "2026-03-01T00:00:00Z".parse().unwrap_or_default(),
            to: w.from,
        }
    );
    let st = units_sql("acme", "greet", Some(w));
    let (sql, p) = (&st.sql, &st.params);
    assert!(
        sql.contains("first_exposed_at >= $3 AND first_exposed_at < $4"),
        "{sql}"
    );
    assert!(sql.contains("f.started_at >= $5 AND f.started_at < $6"), "{sql}");
    assert!(sql.contains("pre.pre_order_value"), "{sql}");
    let micros =
        |s: &str| warehouse::statement::utc_micros(s.parse::<DateTime<Utc>>().map_or(0, |t| t.timestamp_micros()));
    assert_eq!(
        p,
        &vec![
            ScalarValue::from("acme"),
            ScalarValue::from("greet"),
            micros("2026-03-05T00:00:00Z"),
            micros("2026-03-09T00:00:00Z"),
            micros("2026-03-01T00:00:00Z"),
            micros("2026-03-05T00:00:00Z"),
        ]
    );
    let all = units_sql("acme", "greet", None);
    assert!(
        !all.sql.contains("first_exposed_at") && !all.sql.contains("pre_"),
        "{}",
        all.sql
    );
    assert_eq!(all.params.len(), 2);
}

#[test]
fn the_pages_read_an_answer_with_its_types() {
    use crate::served::experiments::{ComparisonView, ResultsView};
    let mut units = arm("control", 4000, 100);
    units.extend(arm("friendly", 4000, 150));
    let mut out = analyze(&experiment(), &units, options());
    // What serving adds: the window the results cover.
    out["window"] = json!({ "from": "2026-01-01T00:00:00.000Z", "to": "2026-01-15T00:00:00.000Z" });
    let view = ResultsView::read(&out).unwrap_or_else(|e| panic!("{e}: {out:#}"));
    assert_eq!(view.units(), 8000);
    let window = view.window.clone().unwrap_or_else(|| panic!("a window"));
    assert_eq!((window.to - window.from).num_days(), 14);
    assert_eq!(view.control, "control");
    let decision = view.decision.unwrap_or_else(|| panic!("a decision"));
    assert_eq!(decision.verdict, experiments::decision::Verdict::Ship);
    assert_eq!(decision.variant, "friendly");
    assert!(!view.srm.unwrap_or_else(|| panic!("an SRM check")).mismatch);
    let conversion = &view.metrics[0];
    assert_eq!(conversion.metric, "conversion");
    match &conversion.comparisons[0] {
        ComparisonView::Done {
            absolute_lift,
            relative_ci,
            significant,
            bayesian,
            ..
        } => {
            assert!((absolute_lift.unwrap_or_default() - 0.05).abs() < 1e-9);
            assert!(relative_ci.is_some());
            assert!(significant);
            assert!(bayesian.and_then(|b| b.chance_to_beat_control).unwrap_or_default() > 0.99);
        }
        failed => panic!("a computed comparison, not {failed:?}"),
    }

    // An answer without data reads too.
    let mut empty = analyze(&experiment(), &[], options());
    empty["window"] = Value::Null;
    let view = ResultsView::read(&empty).unwrap_or_else(|e| panic!("{e}: {empty:#}"));
    assert_eq!(view.units(), 0);

    // A renamed field is an error, not a zero.
    let mut renamed = out.clone();
    let variant = renamed["variants"][0]
        .as_object_mut()
        .unwrap_or_else(|| panic!("a variant"));
    let units = variant.remove("units").unwrap_or_else(|| panic!("units"));
    variant.insert("unit_count".into(), units);
    assert!(ResultsView::read(&renamed).is_err());
    let mut renamed = out;
    let c = renamed["metrics"][0]["comparisons"][0]
        .as_object_mut()
        .unwrap_or_else(|| panic!("a comparison"));
    let lift = c.remove("absolute_lift").unwrap_or_else(|| panic!("absolute_lift"));
    c.insert("lift".into(), lift);
    assert!(ResultsView::read(&renamed).is_err());
}
