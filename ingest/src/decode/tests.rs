use std::io::Write;

use super::*;

const GOOD: &str = r#"{"event_id":"e1","tenant_id":"acme","type":"csat.requested","occurred_at":"2026-03-01T09:30:00Z","conversation_id":"c1"}"#;

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_body_bytes: 1 << 20,
        max_line_bytes: 1024,
        event_window: None,
    }
}

fn good(id: &str) -> String {
    GOOD.replace("\"e1\"", &format!("{id:?}"))
}

#[test]
fn ndjson_lines_are_judged_one_by_one() {
    let body = format!(
        "{}\n\n{{not json\r\n{}\n{}",
        good("a"),
        r#"{"event_id":"b"}"#,
        good("c")
    );
    let d = decode_events(body.as_bytes(), &limits()).unwrap_or_default();
    let lines: Vec<usize> = d.events.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![1, 5], "blank line 2 is skipped but still counted");
    assert_eq!(d.rejected[0].line, 3);
    assert!(
        d.rejected[0].reason.starts_with("malformed JSON"),
        "{:?}",
        d.rejected[0]
    );
    assert!(
        d.rejected.iter().filter(|r| r.line == 4).count() >= 3,
        "line 4 lacks tenant_id, type, occurred_at"
    );
}

#[test]
fn json_array_elements_are_numbered_from_one() {
    let body = format!("  [{}, 7, {}]", good("a"), good("b"));
    let d = decode_events(body.as_bytes(), &limits()).unwrap_or_default();
    assert_eq!(d.events.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].line, 2);
}

#[test]
fn a_broken_array_fails_the_body() {
    let err = decode_events(b"[{\"a\":1},", &limits());
    assert!(matches!(err, Err(BodyError::BadArray(_))));
}

#[test]
fn oversize_lines_are_rejected_alone() {
    let long = good("a").replace("\"c1\"", &format!("\"c1\",\"pad\":\"{}\"", "x".repeat(2000)));
    let body = format!("{long}\n{}", good("b"));
    let d = decode_events(body.as_bytes(), &limits()).unwrap_or_default();
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.rejected[0].line, 1);
    assert!(d.rejected[0].reason.contains("at most 1024"));
}

#[test]
fn invalid_utf8_is_rejected_with_its_position() {
    let mut body = good("a").into_bytes();
    body.push(b'\n');
    body.extend_from_slice(b"{\"event_id\":\"\xff\xfe\"}\n");
    body.extend_from_slice(good("c").as_bytes());
    let d = decode_events(&body, &limits()).unwrap_or_default();
    assert_eq!(d.events.len(), 2);
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].line, 2);
    assert!(
        d.rejected[0].reason.contains("invalid UTF-8 at byte 13"),
        "{}",
        d.rejected[0].reason
    );
}

#[test]
fn empty_and_whitespace_bodies_decode_to_nothing() {
    for body in ["", "   \n\n  "] {
        let d = decode_events(body.as_bytes(), &limits()).unwrap_or_default();
        assert!(d.events.is_empty() && d.rejected.is_empty());
    }
}

#[test]
fn gzip_and_zstd_bodies_decompress() {
    let plain = format!("{}\n{}", good("a"), good("b"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain.as_bytes()).unwrap_or_default();
    let gz = gz.finish().unwrap_or_default();
    let zs = zstd::encode_all(plain.as_bytes(), 1).unwrap_or_default();
    for (bytes, enc) in [(gz, ContentEncoding::Gzip), (zs, ContentEncoding::Zstd)] {
        let body = decompress(&bytes, enc, 1 << 20).unwrap_or_default();
        assert_eq!(body, plain.as_bytes());
    }
}

#[test]
fn decompression_stops_at_the_limit() {
    let bomb = zstd::encode_all(&vec![b' '; 5 << 20][..], 3).unwrap_or_default();
    assert!(bomb.len() < 10_000);
    assert!(
        matches!(decompress(&bomb, ContentEncoding::Zstd, 1 << 20), Err(BodyError::TooLarge { limit }) if limit == 1 << 20)
    );
    assert!(matches!(
        decompress(&[0u8; 100], ContentEncoding::Identity, 10),
        Err(BodyError::TooLarge { .. })
    ));
    assert!(matches!(
        decompress(b"not gzip", ContentEncoding::Gzip, 100),
        Err(BodyError::Corrupt { .. })
    ));
}

#[test]
fn content_encoding_header() {
    assert_eq!(ContentEncoding::from_header(None).ok(), Some(ContentEncoding::Identity));
    assert_eq!(
        ContentEncoding::from_header(Some("GZIP")).ok(),
        Some(ContentEncoding::Gzip)
    );
    assert_eq!(
        ContentEncoding::from_header(Some("zstd")).ok(),
        Some(ContentEncoding::Zstd)
    );
    assert!(ContentEncoding::from_header(Some("br")).is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_every_line_is_accounted(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(d) = decode_events(&bytes, &limits()) {
                let non_blank = bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
                    .count();
                let mut lines: Vec<usize> = d.events.iter().map(|(l, _)| *l).chain(d.rejected.iter().map(|r| r.line)).collect();
                lines.sort();
                lines.dedup();
                if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
                    prop_assert_eq!(lines.len(), non_blank);
                }
            }
        }
    }
}

/// 2026-03-10T00:00:00Z, the clock reading the window tests decode at.
const NOW_US: i64 = 1_773_100_800_000_000;

fn at(id: &str, occurred_at: &str) -> String {
    good(id).replace("2026-03-01T09:30:00Z", occurred_at)
}

#[test]
fn events_outside_the_window_around_now_are_rejected_line_by_line() {
    let windowed = DecodeLimits {
        event_window: Some(EventWindow::DEFAULT),
        ..limits()
    };
    let body = [
        at("recent", "2026-03-01T09:30:00Z"),
        at("epoch", "1970-01-01T00:00:00Z"),
        at("far-future", "2199-12-31T23:59:59Z"),
        at("old", "2025-02-01T00:00:00+01:00"),
        at("tomorrow", "2026-03-10T23:00:00Z"),
        at("in-two-days", "2026-03-12T00:00:01Z"),
    ]
    .join("\n");
    let d = decode_events_at(body.as_bytes(), &windowed, NOW_US).unwrap_or_default();
    let kept: Vec<&str> = d.events.iter().map(|(_, e)| e.event_id.as_str()).collect();
    assert_eq!(kept, vec!["recent", "tomorrow"]);
    let rejected: Vec<(usize, &str)> = d.rejected.iter().map(|r| (r.line, r.field.as_str())).collect();
    assert_eq!(
        rejected,
        vec![
            (2, "occurred_at"),
            (3, "occurred_at"),
            (4, "occurred_at"),
            (6, "occurred_at")
        ]
    );
    let old = &d.rejected[0].reason;
    assert!(
        old.contains("more than 400 days before")
            && old.contains("2025-02-03T00:00:00Z to 2026-03-11T00:00:00Z")
            && old.contains("max_event_age_days"),
        "the reason names the window and the setting: {old}"
    );
    assert!(
        d.rejected[1].reason.contains("max_event_future_s"),
        "{}",
        d.rejected[1].reason
    );

    // A JSON array is judged the same way.
    let array = format!(
        "[{},{}]",
        at("a", "2026-03-09T00:00:00Z"),
        at("b", "1999-01-01T00:00:00Z")
    );
    let d = decode_events_at(array.as_bytes(), &windowed, NOW_US).unwrap_or_default();
    assert_eq!((d.events.len(), d.rejected.len()), (1, 1));
    assert_eq!(d.rejected[0].line, 2);

    // A wider window (a backfill) takes the old line; no window takes all.
    let backfill = DecodeLimits {
        event_window: Some(EventWindow {
            max_age_days: 36_500,
            ..EventWindow::DEFAULT
        }),
        ..limits()
    };
    let d = decode_events_at(body.as_bytes(), &backfill, NOW_US).unwrap_or_default();
    assert_eq!(d.events.len(), 4, "{:?}", d.rejected);
    let d = decode_events_at(body.as_bytes(), &limits(), NOW_US).unwrap_or_default();
    assert_eq!(d.events.len(), 6, "{:?}", d.rejected);
}
