use super::*;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_url_round_trips_through_the_context() {
    let defaults = Controls {
        from: "2026-03-01".into(),
        to: "2026-03-08".into(),
        time_zone: "Asia/Shanghai".into(),
        ..Controls::default()
    };
    let q = pairs(&[
        ("from", "2026-02-01"),
        ("to", ""),
        ("bucket", "week"),
        ("channel", "whatsapp,line"),
        ("tag", "vip"),
        ("lang", "zh-CN"),
        ("theme", "dark"),
        ("format", "csv"),
    ]);
    let c = PageContext::from_query("acme", &q, Some("en-US"), &defaults);
    assert_eq!(c.lang, Lang::ZhCn);
    assert!(c.lang_pinned);
    assert_eq!(c.theme, Theme::Dark);
    assert_eq!(c.controls.from, "2026-02-01");
    assert_eq!(c.controls.to, "2026-03-08", "an empty value takes the default");
    assert_eq!(c.controls.bucket, Bucket::Week);
    assert_eq!(
        c.controls.filters,
        vec![
            (Dimension::Channel, "whatsapp,line".into()),
            (Dimension::Tag, "vip".into())
        ]
    );
    // What the page links to reads back as the same view.
    let again = PageContext::from_query("acme", &c.query_pairs(), None, &defaults);
    assert_eq!(again, c);
}

#[test]
fn without_parameters_the_browser_language_and_defaults_apply() {
    let defaults = Controls {
        from: "2026-03-01".into(),
        ..Controls::default()
    };
    let c = PageContext::from_query(
        "acme",
        &pairs(&[("lang", "xx"), ("bucket", "decade")]),
        Some("zh-CN,zh;q=0.9"),
        &defaults,
    );
    assert_eq!(c.lang, Lang::ZhCn);
    assert!(!c.lang_pinned);
    assert_eq!(c.theme, Theme::Auto);
    assert_eq!(c.controls.bucket, Bucket::Day);
    assert_eq!(c.controls.from, "2026-03-01");
}

#[test]
fn every_page_can_sign_out_and_staffing_links_drop_the_past_dates() {
    let ctx = PageContext {
        tenant: "acme".into(),
        controls: Controls {
            from: "2026-03-01".into(),
            to: "2026-03-08".into(),
            filters: vec![(Dimension::Channel, "line".into())],
            ..Controls::default()
        },
        ..PageContext::default()
    };
    let frame = |page: Page| Frame {
        ctx: &ctx,
        page,
        path: page.path(),
        heading: "h",
        controls: true,
    };
    let channels = render(&frame(Page::Channels), "");
    assert!(channels.contains(r#"<form class="logout" method="post" action="/logout">"#));
    // Past period to past page: kept; to the forecast horizon: dropped,
    // while the filters travel.
    assert!(channels.contains(r#"href="/tags?from=2026-03-01&amp;to=2026-03-08&amp;bucket=day&amp;channel=line""#));
    assert!(channels.contains(r#"href="/staffing?channel=line""#));
    let staffing = render(&frame(Page::Staffing), "");
    assert!(staffing.contains(r#"href="/channels?channel=line""#));
}

#[test]
fn a_bucket_of_the_other_control_falls_back_to_the_pages_default() {
    let trend_page = Controls::default();
    let staffing_page = Controls {
        bucket: Bucket::Minutes30,
        ..Controls::default()
    };
    let bucket = |value: &str, defaults: &Controls| {
        PageContext::from_query("t", &pairs(&[("bucket", value)]), None, defaults)
            .controls
            .bucket
    };
    assert_eq!(bucket("30min", &trend_page), Bucket::Day);
    assert_eq!(bucket("week", &trend_page), Bucket::Week);
    assert_eq!(bucket("week", &staffing_page), Bucket::Minutes30);
    assert_eq!(bucket("15min", &staffing_page), Bucket::Minutes15);
    assert_eq!(Bucket::Minutes15.interval_minutes(), Some(15));
    assert_eq!(Bucket::Day.interval_minutes(), None);
}
