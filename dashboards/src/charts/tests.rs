use super::*;
use crate::testing::check_balanced;

const SMALL: ChartSize = ChartSize {
    width: 200.0,
    height: 100.0,
};

fn s(v: &[(&str, f64)]) -> Vec<(String, f64)> {
    v.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn nice_ticks_cover_the_range_with_round_steps() {
    assert_eq!(nice_ticks(0.0, 10.0, 3), vec![0.0, 5.0, 10.0]);
    assert_eq!(nice_ticks(0.0, 10.0, 4), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(nice_ticks(0.0, 0.0, 2), vec![0.0, 0.5, 1.0]);
    assert_eq!(nice_ticks(3.0, 3.0, 4), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(nice_ticks(-2.0, 6.0, 4), vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
    assert_eq!(nice_ticks(0.0, 87.0, 4), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    assert_eq!(nice_ticks(f64::NAN, 1.0, 2), vec![0.0, 0.5, 1.0]);
}

#[test]
fn duration_ticks_step_by_whole_minutes() {
    assert_eq!(ticks_for(&Unit::Seconds, 0.0, 320.0, 3), vec![0.0, 120.0, 240.0, 360.0]);
    assert_eq!(
        ticks_for(&Unit::Seconds, 0.0, 1900.0, 3),
        vec![0.0, 600.0, 1200.0, 1800.0, 2400.0]
    );
    // Short durations keep decimal steps.
    assert_eq!(ticks_for(&Unit::Seconds, 0.0, 40.0, 3), nice_ticks(0.0, 40.0, 3));
    assert_eq!(ticks_for(&Unit::Count, 0.0, 320.0, 3), nice_ticks(0.0, 320.0, 3));
    let labels: Vec<String> = ticks_for(&Unit::Seconds, 0.0, 1900.0, 3)
        .iter()
        .map(|t| format::tick(&Unit::Seconds, *t))
        .collect();
    assert_eq!(labels, ["0s", "10m", "20m", "30m", "40m"]);
}

#[test]
fn scale_maps_linearly_and_handles_an_empty_domain() {
    let sc = Scale {
        d0: 0.0,
        d1: 10.0,
        r0: 80.0,
        r1: 10.0,
    };
    assert_eq!(sc.map(0.0), 80.0);
    assert_eq!(sc.map(5.0), 45.0);
    assert_eq!(sc.map(10.0), 10.0);
    let flat = Scale { d1: 0.0, ..sc };
    assert_eq!(flat.map(3.0), 45.0);
}

#[test]
fn line_chart_places_a_tiny_series_exactly() {
    // Plot area of a 200 × 100 chart: x 40..190, y 10..80; ticks 0, 5, 10.
    let svg = line_chart(
        "FRT",
        &s(&[("d1", 0.0), ("d2", 5.0), ("d3", 10.0)]),
        &Unit::Count,
        SMALL,
    );
    assert!(svg.contains(r#"points="40.0,80.0 115.0,45.0 190.0,10.0""#), "{svg}");
    assert!(svg.contains(r#"<circle class="dot" cx="115.0" cy="45.0""#));
    // Gridlines at the ticks, labelled.
    assert!(svg.contains(r#"y1="45.0""#) && svg.contains(">5</text>") && svg.contains(">10</text>"));
    // First, middle and last x labels.
    for l in ["d1", "d2", "d3"] {
        assert!(svg.contains(&format!(">{l}</text>")), "{l}");
    }
    assert!(svg.contains(r#"role="img" aria-label="FRT""#) && svg.contains("<title>FRT</title>"));
    check_balanced(&svg).unwrap();
}

#[test]
fn line_chart_breaks_at_missing_values_and_survives_one_point() {
    let svg = line_chart("x", &s(&[("a", 1.0), ("b", f64::NAN), ("c", 1.0)]), &Unit::Count, SMALL);
    assert_eq!(svg.matches("<polyline").count(), 2);
    let one = line_chart("x", &s(&[("a", 2.0)]), &Unit::Count, SMALL);
    assert!(one.contains(r#"cx="115.0""#), "{one}");
    check_balanced(&one).unwrap();
    let none = line_chart("x", &[], &Unit::Count, SMALL);
    assert!(!none.contains("<polyline"));
    check_balanced(&none).unwrap();
}

#[test]
fn bar_chart_scales_bars_to_the_largest_value() {
    // Plot x 104..302; ticks 0, 2, …, 10.
    let svg = bar_chart("by channel", &s(&[("whatsapp", 10.0), ("email", 5.0)]), &Unit::Count);
    assert!(svg.contains(r#"x="104.0" y="10.0" width="198.0""#), "{svg}");
    assert!(svg.contains(r#"x="104.0" y="34.0" width="99.0""#), "{svg}");
    assert!(svg.contains(">whatsapp</text>"));
    check_balanced(&svg).unwrap();
}

#[test]
fn heatmap_shades_cells_by_share_of_the_maximum() {
    let svg = heatmap(
        "traffic",
        &["Mon", "Tue"],
        &["00".to_string(), "01".to_string()],
        &[vec![10.0, 5.0], vec![0.0]],
        &Unit::Count,
    );
    assert!(
        svg.contains(r#"fill-opacity="1.00"><title>Mon 00: 10</title>"#),
        "{svg}"
    );
    assert!(svg.contains(r#"fill-opacity="0.56"><title>Mon 01: 5</title>"#));
    // The missing cell is drawn, nearly empty, lighter than any count.
    assert!(svg.contains(r#"fill-opacity="0.04"><title>Tue 01: 0</title>"#));
    check_balanced(&svg).unwrap();
}

#[test]
fn forest_plot_draws_the_zero_line_and_intervals() {
    // Domain −2..6 over x 22..378: zero at 111; the first interval at y 38.
    let rows = [ForestRow {
        label: "csat · b".into(),
        estimate: 1.0,
        low: -2.0,
        high: 6.0,
        tone: Tone::Neutral,
    }];
    let svg = forest_plot("lifts", &rows, &Unit::Decimal);
    assert!(svg.contains(r#"<line class="zero" x1="111.0""#), "{svg}");
    assert!(
        svg.contains(r#"<line class="ci neutral" x1="22.0" y1="38.0" x2="378.0""#),
        "{svg}"
    );
    assert!(svg.contains(r#"<rect class="est neutral" x="151.5" y="34.0""#));
    assert!(svg.contains(">+1.0 [-2.0, 6.0]</text>"));
    check_balanced(&svg).unwrap();
}

#[test]
fn band_chart_outlines_the_band_and_both_lines() {
    let pts = vec![
        BandPoint {
            label: "08:00".into(),
            low: 0.0,
            mean: 1.0,
            high: 2.0,
            actual: Some(1.5),
        },
        BandPoint {
            label: "08:30".into(),
            low: 0.0,
            mean: 1.0,
            high: 2.0,
            actual: None,
        },
    ];
    let svg = band_chart("fc", &pts, &Unit::Decimal, SMALL);
    assert!(
        svg.contains(r#"points="40.0,10.0 190.0,10.0 190.0,80.0 40.0,80.0""#),
        "{svg}"
    );
    assert!(svg.contains(r#"<polyline class="ln" points="40.0,45.0 190.0,45.0""#));
    assert!(svg.contains(r#"<circle class="adot" cx="40.0" cy="27.5""#));
    check_balanced(&svg).unwrap();
}

#[test]
fn step_chart_holds_each_value_over_its_interval() {
    let svg = step_chart("agents", &s(&[("a", 1.0), ("b", 2.0)]), &Unit::Count, SMALL);
    assert!(
        svg.contains(r#"<path class="ln" d="M40.0,45.0H115.0L115.0,10.0H190.0""#),
        "{svg}"
    );
    assert!(svg.contains(r#"<path class="sarea" d="M40.0,45.0H115.0L115.0,10.0H190.0L190.0,80.0H40.0Z""#));
    assert!(svg.contains(r#"<rect class="sbar" x="115.0" y="10.0" width="75.0" height="70.0""#));
    check_balanced(&svg).unwrap();
}

#[test]
fn chart_labels_are_escaped() {
    let svg = bar_chart("<b>", &s(&[("<script>", 1.0)]), &Unit::Count);
    assert!(!svg.contains("<script>") && !svg.contains("<b>"));
    assert!(svg.contains("&lt;script&gt;"));
    check_balanced(&svg).unwrap();
}

#[test]
fn label_indices_keep_first_and_last() {
    assert_eq!(label_indices(3, 3), vec![0, 1, 2]);
    assert_eq!(label_indices(30, 3), vec![0, 15, 29]);
    let many = label_indices(48, 7);
    assert_eq!(many.first(), Some(&0));
    assert_eq!(many.last(), Some(&47));
    assert!(many.len() <= 8);
    assert!(label_indices(0, 3).is_empty());
}
