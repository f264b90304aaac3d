//! The pure parts of the analyses: intervals, comparisons, grid.
//! Reference values from scipy 1.17 / statsmodels (`stats.t.ppf`,
//! `stats.ttest_ind(equal_var=False)`, `proportions_ztest`).

use serde_json::{Value, json};

use super::*;

#[track_caller]
fn close(got: f64, expected: f64) {
    assert!((got - expected).abs() < 1e-6, "expected {expected}, got {got}");
}

fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> Table {
    Table {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

/// n, mean and sample sd of raw values, as `channels.sql` returns them.
fn summary(values: &[f64]) -> MetricSummary {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    MetricSummary {
        n: values.len() as i64,
        successes: None,
        value: Some(mean),
        sd,
    }
}

#[test]
fn t_interval_of_a_mean_matches_scipy() {
    // qr_hello of sql/tests/analyses_scripts.slt: scores 5 4 2.
    // t(0.975, 2) = 4.302653; half = 4.302653 · 1.527525 / √3 = 3.794583.
    let (low, high) = t_interval(3, 11.0 / 3.0, (7.0_f64 / 3.0).sqrt()).unwrap_or((f64::NAN, f64::NAN));
    close(low, -0.127916);
    close(high, 7.461250);
    // qr_refund: 2 1, t(0.975, 1) = 12.706205; half = 12.706205 · 0.707107 / √2 = 6.353102.
    let (low, high) = t_interval(2, 1.5, 0.5_f64.sqrt()).unwrap_or((f64::NAN, f64::NAN));
    close(low, -4.853102);
    close(high, 7.853102);
    // One score: no interval.
    assert_eq!(t_interval(1, 5.0, 0.0), None);
    assert_eq!(t_interval(0, f64::NAN, f64::NAN), None);
}

#[test]
fn csat_intervals_are_added_after_the_sd_and_best_and_worst_skip_small_groups() {
    let cols = ["kind", "key", "csat_n", "csat_mean", "csat_sd", "small_sample"];
    let mut t = table(
        &cols,
        vec![
            vec![
                json!("quick_reply"),
                json!("qr_hello"),
                json!(3),
                json!(11.0 / 3.0),
                json!((7.0_f64 / 3.0).sqrt()),
                json!(false),
            ],
            vec![
                json!("quick_reply"),
                json!("qr_refund"),
                json!(2),
                json!(1.5),
                json!(0.5_f64.sqrt()),
                json!(false),
            ],
            vec![
                json!("quick_reply"),
                json!("qr_rare"),
                json!(1),
                json!(1.0),
                Value::Null,
                json!(true),
            ],
            vec![
                json!("template"),
                json!("tpl_order"),
                json!(1),
                json!(5.0),
                Value::Null,
                json!(true),
            ],
        ],
    );
    add_csat_intervals(&mut t);
    assert_eq!(
        t.columns,
        [
            "kind",
            "key",
            "csat_n",
            "csat_mean",
            "csat_sd",
            "csat_low",
            "csat_high",
            "small_sample"
        ]
    );
    close(t.cell(&t.rows[0], "csat_low").as_f64().unwrap_or(f64::NAN), -0.127916);
    close(t.cell(&t.rows[1], "csat_high").as_f64().unwrap_or(f64::NAN), 7.853102);
    assert!(t.cell(&t.rows[2], "csat_low").is_null());
    assert_eq!(
        t.cell(&t.rows[2], "small_sample"),
        &json!(true),
        "columns kept their values"
    );

    let (best, worst) = best_and_worst(&t);
    assert_eq!(best["quick_reply"], "qr_hello");
    assert_eq!(worst["quick_reply"], "qr_refund", "qr_rare is small: not the worst");
    assert!(best["template"].is_null(), "only a small template group");
    assert!(worst["template"].is_null());
}

#[test]
fn a_channel_is_compared_with_the_rest_of_the_tenant() {
    // sql/tests/analyses_channels.slt: whatsapp against webchat + sms.
    let whatsapp_csat = summary(&[5.0, 4.0, 5.0]);
    let tenant_csat = summary(&[5.0, 4.0, 5.0, 3.0, 2.0, 4.0, 1.0]);
    let c = compare_with_rest(&whatsapp_csat, &tenant_csat);
    close(c.map_or(f64::NAN, |c| c.p_value), 0.036567);

    let whatsapp_frt = summary(&[10.0, 20.0, 30.0, 40.0]);
    let tenant_frt = summary(&[10.0, 20.0, 30.0, 40.0, 100.0, 200.0, 300.0, 400.0, 5.0]);
    close(
        compare_with_rest(&whatsapp_frt, &tenant_frt).map_or(f64::NAN, |c| c.p_value),
        0.065489,
    );

    // Conversion 3/4 against the rest's 1/5 (pooled z-test).
    let rate = |n: i64, k: i64| MetricSummary {
        n,
        successes: Some(k),
        value: Some(k as f64 / n as f64),
        sd: None,
    };
    close(
        compare_with_rest(&rate(4, 3), &rate(9, 4)).map_or(f64::NAN, |c| c.p_value),
        0.098943,
    );
    // sms: one conversation is enough for a rate ...
    close(
        compare_with_rest(&rate(1, 0), &rate(9, 4)).map_or(f64::NAN, |c| c.p_value),
        0.342782,
    );
    // ... not for a mean; and a channel that is the whole tenant has no rest.
    assert!(compare_with_rest(&summary(&[1.0]), &tenant_csat).is_none());
    assert!(compare_with_rest(&tenant_csat, &tenant_csat).is_none());
    assert!(compare_with_rest(&rate(9, 4), &rate(9, 4)).is_none());
}

#[test]
fn comparisons_are_added_to_channel_rows_only() {
    let cols = [
        "scope",
        "channel",
        "metric",
        "currency",
        "n",
        "successes",
        "value",
        "sd",
        "median",
    ];
    let mut t = table(
        &cols,
        vec![
            vec![
                json!("channel"),
                json!("sms"),
                json!("csat"),
                Value::Null,
                json!(1),
                Value::Null,
                json!(1.0),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!("channel"),
                json!("whatsapp"),
                json!("conversion_rate"),
                Value::Null,
                json!(4),
                json!(3),
                json!(0.75),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!("tenant"),
                Value::Null,
                json!("conversion_rate"),
                Value::Null,
                json!(9),
                json!(4),
                json!(4.0 / 9.0),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!("tenant"),
                Value::Null,
                json!("csat"),
                Value::Null,
                json!(7),
                Value::Null,
                json!(24.0 / 7.0),
                json!(1.511858),
                Value::Null,
            ],
        ],
    );
    add_comparisons(&mut t);
    let sms = &t.rows[0];
    close(t.cell(sms, "overall_value").as_f64().unwrap_or(f64::NAN), 24.0 / 7.0);
    close(t.cell(sms, "difference").as_f64().unwrap_or(f64::NAN), 1.0 - 24.0 / 7.0);
    assert_eq!(t.cell(sms, "test"), "welch_t");
    assert!(t.cell(sms, "p_value").is_null(), "one score: no test");
    assert!(t.cell(sms, "significant").is_null());
    let wa = &t.rows[1];
    assert_eq!(t.cell(wa, "test"), "two_proportion_z");
    close(t.cell(wa, "p_value").as_f64().unwrap_or(f64::NAN), 0.098943);
    assert_eq!(t.cell(wa, "significant"), &json!(false));
    for tenant in &t.rows[2..] {
        assert!(t.cell(tenant, "p_value").is_null());
        assert!(t.cell(tenant, "overall_value").is_null());
    }
}

#[test]
fn the_heatmap_has_every_cell() {
    let cols = ["weekday", "hour", "conversations", "wait_n", "wait_mean_s"];
    let t = table(
        &cols,
        vec![
            vec![json!(1), json!(9), json!(3), json!(2), json!(62.0)],
            vec![json!(7), json!(23), json!(1), json!(1), json!(60.0)],
        ],
    );
    let grid = full_grid(&t);
    assert_eq!(grid.rows.len(), 7 * 24);
    assert_eq!(grid.rows[0], vec![json!(1), json!(0), json!(0), json!(0), Value::Null]);
    assert_eq!(grid.rows[9], t.rows[0]);
    assert_eq!(grid.rows[167], t.rows[1]);
    assert_eq!(grid.rows[24][..2], [json!(2), json!(0)]);
}

#[test]
fn traffic_cells_are_the_grid_typed() {
    let cols = [
        "weekday",
        "hour",
        "conversations",
        "wait_mean_s",
        "wait_median_s",
        "wait_p90_s",
    ];
    let t = table(
        &cols,
        vec![vec![
            json!(3),
            json!(14),
            json!(5),
            json!(62.5),
            json!(40.0),
            json!(120.0),
        ]],
    );
    let cells = traffic_cells(&full_grid(&t));
    assert_eq!(cells.len(), 7 * 24);
    let busy = cells[2 * 24 + 14];
    assert_eq!(
        busy,
        TrafficCell {
            weekday: 3,
            hour: 14,
            conversations: 5,
            wait_mean_s: Some(62.5),
            wait_median_s: Some(40.0),
            wait_p90_s: Some(120.0),
        }
    );
    assert_eq!((cells[0].weekday, cells[0].hour, cells[0].conversations), (1, 0, 0));
    assert_eq!(cells[0].wait_mean_s, None);
    // A row that is no cell of the week is left out.
    let odd = table(
        &cols,
        vec![vec![json!(8), json!(1), json!(1), json!(1.0), json!(1.0), json!(1.0)]],
    );
    assert!(traffic_cells(&odd).is_empty());
}

#[test]
fn script_groups_are_the_rows_typed() {
    let cols = [
        "kind",
        "key",
        "conversations",
        "csat_n",
        "csat_mean",
        "csat_low",
        "csat_high",
        "resolution_rate",
        "resolution_low",
        "resolution_high",
        "small_sample",
    ];
    let t = table(
        &cols,
        vec![
            vec![
                json!("quick_reply"),
                json!("qr_refund"),
                json!(40),
                json!(31),
                json!(4.5),
                json!(4.2),
                json!(4.8),
                json!(0.9),
                json!(0.8),
                json!(0.95),
                json!(false),
            ],
            vec![
                json!("template"),
                Value::Null,
                json!(2),
                json!(1),
                json!(3.0),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                json!(true),
            ],
        ],
    );
    let g = script_groups(&t);
    assert_eq!(g.len(), 2);
    assert_eq!(
        g[0],
        ScriptGroup {
            kind: "quick_reply".into(),
            key: Some("qr_refund".into()),
            conversations: 40,
            csat_mean: Some(4.5),
            csat_n: 31,
            csat_ci: Some((4.2, 4.8)),
            resolution_rate: Some(0.9),
            resolution_ci: Some((0.8, 0.95)),
            small_sample: false,
        }
    );
    assert_eq!(
        (g[1].key.as_deref(), g[1].csat_ci, g[1].small_sample),
        (None, None, true)
    );
    // Without the column a group counts as small.
    let bare = table(&["kind", "key"], vec![vec![json!("template"), json!("t1")]]);
    assert!(script_groups(&bare)[0].small_sample);
}

#[test]
fn tag_pairs_are_the_pairs_table_typed() {
    let counts = warehouse::rollups::TagCounts {
        tagged: 10,
        tags: [("billing", 6), ("refund", 4), ("vip", 3)]
            .map(|(t, n)| (t.to_string(), n))
            .into(),
        pairs: [
            (("billing", "refund"), 3),
            (("refund", "billing"), 3),
            (("billing", "vip"), 1),
            (("vip", "billing"), 1),
        ]
        .map(|((a, b), n)| ((a.to_string(), b.to_string()), n))
        .into(),
    };
    let table = pairs_table(&counts, 2);
    let pairs = tag_pairs(&table);
    assert_eq!(pairs.len(), table.rows.len());
    assert_eq!(pairs.len(), 2, "the billing/vip pair is under min_count 2: {pairs:?}");
    for p in &pairs {
        assert_eq!(p.conversations, 3);
        assert!(
            matches!(
                (p.tag.as_str(), p.other_tag.as_str()),
                ("billing", "refund") | ("refund", "billing")
            ),
            "{p:?}"
        );
    }
}
