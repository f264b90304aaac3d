//! The local slot mapping, pinned on DST days worked out by hand from the
//! zone rules: Europe/Berlin springs forward on 2026-03-29 at 02:00 (+01:00
//! → +02:00) and falls back on 2026-10-25 at 03:00 (+02:00 → +01:00);
//! America/New_York springs forward on 2026-03-08 at 02:00.

use super::*;

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_micros()
}

fn half_hour() -> IntervalLength {
    IntervalLength::from_minutes(30).unwrap_or_else(|e| panic!("{e}"))
}

fn day_grid(z: &Zone, interval: IntervalLength, date: &str) -> Vec<Slot> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap_or_else(|e| panic!("{e}"));
    let from = z.start_of_day(d).unwrap_or_else(|| panic!("no start of {date}"));
    let to = z
        .start_of_day(d + Duration::days(1))
        .unwrap_or_else(|| panic!("no end of {date}"));
    grid(z, interval, from, to)
}

#[test]
fn ordinary_day_has_48_half_hours_in_order() {
    let g = day_grid(&zone("Europe/Berlin"), half_hour(), "2026-03-28");
    assert_eq!(g.len(), 48);
    let slots: Vec<u16> = g.iter().map(|s| s.slot).collect();
    assert_eq!(slots, (0..48).collect::<Vec<u16>>());
    // 2026-03-28 is a Saturday.
    assert!(g.iter().all(|s| s.weekday == 5));
    assert_eq!(g[0].start_us, at("2026-03-27T23:00:00Z"));
}

#[test]
fn spring_forward_day_skips_the_missing_hour() {
    let g = day_grid(&zone("Europe/Berlin"), half_hour(), "2026-03-29");
    assert_eq!(g.len(), 46);
    let slots: Vec<u16> = g.iter().map(|s| s.slot).collect();
    let expected: Vec<u16> = (0..48).filter(|s| !(4..6).contains(s)).collect();
    assert_eq!(slots, expected);
    // 01:30 local (+01:00) is followed by 03:00 local (+02:00), half an hour later.
    assert_eq!(g[3].start_us, at("2026-03-29T01:30:00+01:00"));
    assert_eq!(g[4].start_us, at("2026-03-29T03:00:00+02:00"));
    assert_eq!(g[4].start_us - g[3].start_us, 1_800_000_000);
    assert!(g.iter().all(|s| s.weekday == 6));
}

#[test]
fn fall_back_day_repeats_the_doubled_hour() {
    let g = day_grid(&zone("Europe/Berlin"), half_hour(), "2026-10-25");
    assert_eq!(g.len(), 50);
    let slots: Vec<u16> = g.iter().map(|s| s.slot).collect();
    assert_eq!(&slots[..10], &[0, 1, 2, 3, 4, 5, 4, 5, 6, 7]);
    assert_eq!(slots[49], 47);
}

#[test]
fn quarter_hours_and_other_zones() {
    let q = IntervalLength::from_minutes(15).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(day_grid(&zone("America/New_York"), q, "2026-03-08").len(), 92);
    assert_eq!(day_grid(&zone("America/New_York"), q, "2026-03-09").len(), 96);
    assert_eq!(day_grid(&zone("UTC"), half_hour(), "2026-03-29").len(), 48);
    // A fixed offset has no DST.
    assert_eq!(day_grid(&zone("+08:00"), half_hour(), "2026-03-29").len(), 48);
}

#[test]
fn slot_and_weekday_come_from_the_local_clock() {
    let z = zone("Asia/Shanghai");
    // 2026-03-01T16:30Z is Monday 2026-03-02 00:30 in Shanghai.
    let s = slot_at(&z, half_hour(), at("2026-03-01T16:30:00Z")).unwrap_or_else(|| panic!("in range"));
    assert_eq!((s.weekday, s.slot), (0, 1));
    assert_eq!(s.local_date, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default());
}

#[test]
fn bounds_parse_as_instants_or_local_dates() {
    let z = zone("Europe/Berlin");
    assert_eq!(parse_instant(&z, "2026-03-29"), Ok(at("2026-03-28T23:00:00Z")));
    assert_eq!(
        parse_instant(&z, "2026-03-29T03:00:00+02:00"),
        Ok(at("2026-03-29T01:00:00Z"))
    );
    assert!(parse_instant(&z, "tomorrow").is_err());
    assert!(parse_instant(&z, "2026-02-30").is_err());
    assert!(Zone::parse("Mars/Olympus_Mons").is_err());
}

#[test]
fn horizon_checks_name_the_parameter() {
    let z = zone("Europe/Berlin");
    let hh = half_hour();
    let from = at("2026-03-29T00:00:00+01:00");
    assert_eq!(check_horizon(&z, hh, from, from + 1_800_000_000), Ok(()));
    assert_eq!(check_horizon(&z, hh, from, from).map_err(|e| e.0), Err("to"));
    assert_eq!(
        check_horizon(&z, hh, from + 60_000_000, from + 3_600_000_000).map_err(|e| e.0),
        Err("from")
    );
    // 14 local days across the fall-back night are 14 days and 1 hour of
    // real time, and allowed; one interval more is not.
    let f = at("2026-10-19T00:00:00+02:00");
    let t = at("2026-11-02T00:00:00+01:00");
    assert_eq!(check_horizon(&z, hh, f, t), Ok(()));
    assert_eq!(check_horizon(&z, hh, f, t + 1_800_000_000).map_err(|e| e.0), Err("to"));
    // A zone whose offset is not on the quarter-hour grid of UTC still
    // aligns to its own local clock.
    let kathmandu = zone("Asia/Kathmandu");
    assert!(is_aligned(&kathmandu, hh, at("2026-03-29T00:00:00+05:45")));
    assert!(!is_aligned(&kathmandu, hh, at("2026-03-29T00:00:00Z")));
}

#[test]
fn special_days_parse_and_look_up() {
    let days = parse_special_days("2026-12-24:0.5, 2026-12-25:exclude").unwrap_or_else(|e| panic!("{e}"));
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
    assert_eq!(special_on(&days, d("2026-12-24")), Some(SpecialKind::Factor(0.5)));
    assert_eq!(special_on(&days, d("2026-12-25")), Some(SpecialKind::Exclude));
    assert_eq!(special_on(&days, d("2026-12-26")), None);
    assert!(parse_special_days("2026-12-24").is_err());
    assert!(parse_special_days("2026-12-24:0").is_err());
    assert!(parse_special_days("2026-12-24:lots").is_err());
}
