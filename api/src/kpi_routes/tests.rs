//! Parameter parsing and DST-correct windows and buckets.

use arrow::array::timezone::Tz;
use chrono::{DateTime, NaiveDate, Utc};

use super::lake::KpiRow;
use super::params::*;
use super::{csv_field, shape_kpis};

fn tz(name: &str) -> Tz {
    services::settings::parse_time_zone(name).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn date(s: &str) -> Bound {
    parse_bound("from", s).unwrap()
}

#[test]
fn bounds_are_dates_or_rfc3339_instants() {
    assert_eq!(
        parse_bound("from", "2025-03-30").unwrap(),
        Bound::Date(NaiveDate::from_ymd_opt(2025, 3, 30).unwrap())
    );
    assert_eq!(
        parse_bound("from", "2025-03-30T08:00:00+08:00").unwrap(),
        Bound::Instant(at("2025-03-30T00:00:00Z"))
    );
    for bad in [
        "2025-3-30",
        "2025-02-30",
        "yesterday",
        "2025-03-30T08:00:00",
        "",
        "2025-03-30 08:00",
    ] {
        let e = parse_bound("to", bad).unwrap_err();
        assert_eq!(e.parameter, "to", "{bad}");
        assert!(e.detail.contains("YYYY-MM-DD"), "{bad}: {}", e.detail);
    }
}

#[test]
fn a_local_day_across_spring_forward_is_23_hours_and_its_previous_day_24() {
    let w = resolve_windows(date("2025-03-30"), date("2025-03-31"), &tz("Europe/Berlin"), 400).unwrap();
    assert_eq!(w.current.from, at("2025-03-29T23:00:00Z"));
    assert_eq!(w.current.to, at("2025-03-30T22:00:00Z"));
    assert_eq!(w.previous.from, at("2025-03-28T23:00:00Z"));
    assert_eq!(w.previous.to, w.current.from);
}

#[test]
fn instants_have_a_previous_period_of_the_same_duration() {
    let w = resolve_windows(
        Bound::Instant(at("2025-03-30T04:00:00Z")),
        Bound::Instant(at("2025-03-30T05:30:00Z")),
        &tz("Europe/Berlin"),
        400,
    )
    .unwrap();
    assert_eq!(w.previous.from, at("2025-03-30T02:30:00Z"));
    assert_eq!(w.previous.to, at("2025-03-30T04:00:00Z"));
}

#[test]
fn windows_must_be_ordered_and_within_the_maximum() {
    let berlin = tz("Europe/Berlin");
    let e = resolve_windows(date("2025-03-30"), date("2025-03-30"), &berlin, 400).unwrap_err();
    assert_eq!(e.parameter, "from");
    let e = resolve_windows(date("2025-03-31"), date("2025-03-30"), &berlin, 400).unwrap_err();
    assert_eq!(e.parameter, "from");
    let e = resolve_windows(date("2024-01-01"), date("2025-03-01"), &berlin, 400).unwrap_err();
    assert_eq!(e.parameter, "to");
    assert!(e.detail.contains("400 days"), "{}", e.detail);
    assert!(resolve_windows(date("2024-01-01"), date("2025-02-04"), &berlin, 400).is_ok());
}

#[test]
fn midnight_in_a_dst_gap_starts_the_day_when_clocks_jump() {
    // Chile moved from -04 to -03 at 2024-09-08 00:00 local: midnight never happened.
    let t = local_midnight(NaiveDate::from_ymd_opt(2024, 9, 8).unwrap(), &tz("America/Santiago"));
    assert_eq!(t, at("2024-09-08T04:00:00Z"));
}

#[test]
fn day_buckets_follow_local_midnights_across_dst() {
    let w = Window {
        from: at("2025-03-29T00:00:00+01:00"),
        to: at("2025-04-01T00:00:00+02:00"),
    };
    let b = buckets(&w, Bucket::Day, &tz("Europe/Berlin"));
    let labels: Vec<&str> = b.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "2025-03-29T00:00:00+01:00",
            "2025-03-30T00:00:00+01:00",
            "2025-03-31T00:00:00+02:00"
        ]
    );
    assert_eq!(b[1].window.from, at("2025-03-29T23:00:00Z"));
    assert_eq!(b[1].window.to, at("2025-03-30T22:00:00Z"));
    assert_eq!((b[1].window.to - b[1].window.from).num_hours(), 23);
    assert_eq!(b[2].window.to, w.to);
}

#[test]
fn hour_buckets_are_real_hours_23_in_spring_25_in_autumn() {
    let berlin = tz("Europe/Berlin");
    let spring = resolve_windows(date("2025-03-30"), date("2025-03-31"), &berlin, 400).unwrap();
    let b = buckets(&spring.current, Bucket::Hour, &berlin);
    assert_eq!(b.len(), 23);
    assert_eq!(b[1].label, "2025-03-30T01:00:00+01:00");
    assert_eq!(b[2].label, "2025-03-30T03:00:00+02:00");

    let autumn = resolve_windows(date("2025-10-26"), date("2025-10-27"), &berlin, 400).unwrap();
    let b = buckets(&autumn.current, Bucket::Hour, &berlin);
    assert_eq!(b.len(), 25);
    assert_eq!(b[2].label, "2025-10-26T02:00:00+02:00");
    assert_eq!(b[3].label, "2025-10-26T02:00:00+01:00");
    assert!(b.iter().all(|b| (b.window.to - b.window.from).num_seconds() == 3600));
}

#[test]
fn hour_buckets_align_to_local_hours_in_half_hour_zones() {
    let w = Window {
        from: at("2025-01-01T00:00:00Z"),
        to: at("2025-01-01T02:00:00Z"),
    };
    let b = buckets(&w, Bucket::Hour, &tz("Asia/Kolkata"));
    // 05:30 local: the first bucket is the clipped 05:00-06:00 hour.
    assert_eq!(b[0].label, "2025-01-01T05:00:00+05:30");
    assert_eq!(b[0].window.from, w.from);
    assert_eq!(b[0].window.to, at("2025-01-01T00:30:00Z"));
    assert_eq!(b.len(), 3);
}

#[test]
fn week_and_month_buckets() {
    let utc = tz("UTC");
    let w = Window {
        from: at("2025-03-01T00:00:00Z"),
        to: at("2025-05-01T00:00:00Z"),
    };
    let months: Vec<String> = buckets(&w, Bucket::Month, &utc).into_iter().map(|b| b.label).collect();
    assert_eq!(months, ["2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"]);
    let weeks = buckets(&w, Bucket::Week, &utc);
    // 2025-03-01 is a Saturday: its week started Monday 02-24, clipped to the window.
    assert_eq!(weeks[0].label, "2025-02-24T00:00:00Z");
    assert_eq!(weeks[0].window.from, w.from);
    assert_eq!(weeks[1].label, "2025-03-03T00:00:00Z");
    assert_eq!(weeks.len(), 10);
    assert!(bucket_count(&w, Bucket::Week) >= weeks.len() as i64);
}

#[test]
fn group_by_names_dimensions_and_at_most_one_bucket() {
    let g = parse_group_by("channel,day").unwrap();
    assert_eq!(g.dimensions, [Dimension::Channel]);
    assert_eq!(g.bucket, Some(Bucket::Day));
    let g = parse_group_by("customer_tier,tag,variant,agent").unwrap();
    assert_eq!(g.dimensions.len(), 4);
    assert_eq!(g.bucket, None);
    for bad in ["chanel", "day,week", "team,team", "channel;day"] {
        let e = parse_group_by(bad).unwrap_err();
        assert_eq!(e.parameter, "group_by", "{bad}");
    }
    assert!(parse_group_by("colour").unwrap_err().detail.contains("channel_account"));
}

#[test]
fn filter_values_are_checked_against_the_contract() {
    assert_eq!(
        parse_filter(Dimension::Channel, "whatsapp,line,whatsapp").unwrap(),
        ["whatsapp", "line"]
    );
    assert_eq!(
        parse_filter(Dimension::Channel, "telegram").unwrap_err().parameter,
        "channel"
    );
    assert_eq!(
        parse_filter(Dimension::CustomerTier, "gold").unwrap_err().parameter,
        "customer_tier"
    );
    assert_eq!(parse_filter(Dimension::Variant, "b").unwrap_err().parameter, "variant");
    assert_eq!(parse_filter(Dimension::Queue, "a,,b").unwrap_err().parameter, "queue");
    // quotes are fine: values never become SQL text
    assert_eq!(parse_filter(Dimension::Queue, "o'brien").unwrap(), ["o'brien"]);
}

fn row(kpi: &str, measure: &str, segment: &str, value: Option<f64>, n: i64) -> KpiRow {
    KpiRow {
        kpi: kpi.into(),
        measure: measure.into(),
        segment: segment.into(),
        value,
        n,
    }
}

#[test]
fn rows_are_shaped_into_the_api_objects() {
    let k = shape_kpis(&[
        row("conversations", "value", "all", Some(4.0), 4),
        row("frt_s", "mean", "all", Some(61.0), 3),
        row("frt_s", "p90", "all", Some(144.4), 3),
        row("response_s", "median", "bot", Some(1.5), 2),
        row("sla_attainment", "value", "all", None, 0),
        row("csat", "mean", "all", Some(4.5), 2),
        row("csat", "response_rate", "all", Some(0.5), 4),
        row("csat", "share", "5", Some(1.0), 2),
        row("aov", "value", "EUR", Some(55.0), 2),
        row("labor_cost", "online_hours", "all", Some(17.0), 4),
        row("labor_cost", "value", "EUR", Some(210.0), 4),
    ]);
    let v = serde_json::Value::Object(k);
    assert_eq!(v["conversations"], serde_json::json!({"value": 4.0, "n": 4}));
    assert_eq!(v["frt_s"], serde_json::json!({"mean": 61.0, "p90": 144.4, "n": 3}));
    assert_eq!(v["response_s"]["bot"], serde_json::json!({"median": 1.5, "n": 2}));
    assert_eq!(v["sla_attainment"], serde_json::json!({"value": null, "n": 0}));
    assert_eq!(v["csat"]["response_rate"], serde_json::json!({"value": 0.5, "n": 4}));
    assert_eq!(v["csat"]["distribution"]["5"]["share"], 1.0);
    assert_eq!(v["aov"]["value"]["EUR"], 55.0);
    assert_eq!(v["aov"]["n"]["EUR"], 2);
    assert_eq!(
        v["labor_cost"],
        serde_json::json!({"online_hours": 17.0, "n": 4, "value": {"EUR": 210.0}})
    );
}

#[test]
fn csv_fields_are_quoted_when_needed() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}
