//! Page tests: well-formed markup for empty and full data, escaping, the
//! language and theme switches, target colours, URL state, page weight.

use super::*;
use crate::i18n::Lang;
use crate::kpi::{KPI_KEYS, Unit, unit_of};
use crate::shell::{Bucket, Controls, Dimension, PageContext, Preset, RangePreset, Theme};
use crate::testing::check_balanced;

fn ctx(lang: Lang) -> PageContext {
    PageContext {
        tenant: "acme".into(),
        lang,
        lang_pinned: false,
        theme: Theme::Auto,
        controls: Controls {
            from: "2026-03-01".into(),
            to: "2026-03-31".into(),
            bucket: Bucket::Day,
            time_zone: "Asia/Shanghai".into(),
            filters: vec![(Dimension::Channel, "whatsapp".into())],
            suggestions: vec![(Dimension::Channel, vec!["whatsapp".into(), "line".into()])],
            presets: vec![
                RangePreset {
                    preset: Preset::LastWeek,
                    from: "2026-02-23".into(),
                    to: "2026-03-02".into(),
                },
                RangePreset {
                    preset: Preset::ThisMonth,
                    from: "2026-03-01".into(),
                    to: "2026-03-31".into(),
                },
            ],
        },
    }
}

fn trend(days: usize, base: f64) -> Vec<(String, f64)> {
    (0..days)
        .map(|d| {
            (
                format!("2026-03-{:02}", d + 1),
                base * (1.0 + 0.1 * ((d % 7) as f64 - 3.0) / 3.0),
            )
        })
        .collect()
}

fn overview(days: usize) -> OverviewData {
    OverviewData {
        tiles: KPI_KEYS
            .iter()
            .map(|k| {
                let base = match unit_of(k, "EUR") {
                    Unit::Fraction => 0.6,
                    Unit::Score => 4.3,
                    Unit::Seconds => 95.0,
                    _ => 1234.0,
                };
                KpiTile::new(k, k, unit_of(k, "EUR"), Some(base), Some(base * 0.9), trend(days, base))
            })
            .collect(),
        notes: vec!["labor cost is left out under a channel filter".into()],
    }
}

fn stats(n: u64) -> BreakdownStats {
    BreakdownStats {
        conversations: n,
        frt_s: Some(42.0 + n as f64 / 10.0),
        response_s: Some(20.0),
        handling_s: Some(900.0),
        csat: Some(4.4),
        resolution_rate: Some(0.8),
        transfer_rate: None,
    }
}

fn rows(keys: &[&str]) -> Vec<BreakdownRow> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| BreakdownRow {
            key: k.to_string(),
            stats: stats(100 * (i as u64 + 1)),
        })
        .collect()
}

fn experiment(key: &str, mismatch: bool) -> ExperimentResultData {
    ExperimentResultData {
        key: key.into(),
        state: "running".into(),
        control: "control".into(),
        variants: vec![
            VariantShare {
                key: "control".into(),
                weight: 0.5,
                units: 1040,
            },
            VariantShare {
                key: "warm".into(),
                weight: 0.5,
                units: 980,
            },
        ],
        srm: Some(SrmCheck {
            chi_square: 1.78,
            p_value: if mismatch { 0.0004 } else { 0.18 },
            mismatch,
        }),
        metrics: vec![
            MetricResult {
                metric: "conversion".into(),
                role: "primary".into(),
                higher_is_better: true,
                comparisons: vec![VariantComparison {
                    variant: "warm".into(),
                    control_mean: Some(0.1),
                    treatment_mean: Some(0.12),
                    absolute_lift: Some(0.02),
                    absolute_ci: Some((0.005, 0.035)),
                    relative_lift: Some(0.2),
                    relative_ci: Some((0.05, 0.35)),
                    p_value: Some(0.004),
                    significant: true,
                    chance_to_win: Some(0.998),
                    error: None,
                }],
            },
            MetricResult {
                metric: "frt".into(),
                role: "guardrail".into(),
                higher_is_better: false,
                comparisons: vec![VariantComparison {
                    variant: "warm".into(),
                    relative_lift: Some(-0.01),
                    relative_ci: Some((-0.06, 0.04)),
                    p_value: Some(0.7),
                    ..VariantComparison::default()
                }],
            },
        ],
        decision: Some(DecisionSummary {
            variant: "warm".into(),
            verdict: Verdict::Ship,
            explanation: "Ship warm: conversion rose 20% (CI 5% to 35%) and no guardrail got worse.".into(),
        }),
    }
}

fn staffing(n: usize) -> StaffingData {
    StaffingData {
        queue: "channel:whatsapp".into(),
        interval_minutes: 30,
        method: "poisson_trend".into(),
        service_level: Some((0.8, 120.0)),
        intervals: (0..n)
            .map(|i| StaffingInterval {
                label: format!("{:02}:{:02}", i / 2, (i % 2) * 30),
                actual: (i < n / 2).then_some(10.0 + i as f64),
                mean: 10.0 + i as f64,
                p10: 6.0 + i as f64,
                p90: 14.0 + i as f64,
                agents: Some(3.0 + (i / 4) as f64),
            })
            .collect(),
    }
}

fn traffic() -> TrafficData {
    let mut t = TrafficData::default();
    for (d, row) in t.conversations.iter_mut().enumerate() {
        for (h, v) in row.iter_mut().enumerate() {
            *v = ((h as u64 * 7 + d as u64 * 3) % 40) * u64::from((8..22).contains(&h));
        }
    }
    t
}

/// Every page, rendered from empty and from full data.
fn key_trends(keys: &[&str]) -> Vec<KeyTrend> {
    keys.iter()
        .map(|k| KeyTrend {
            key: (*k).to_string(),
            points: trend(7, 40.0),
        })
        .collect()
}

fn script(kind: ScriptKind, id: &str, csat: f64, n: u64) -> ScriptRow {
    ScriptRow {
        kind,
        id: id.into(),
        conversations: n * 2,
        csat: Some(csat),
        csat_ci: Some((csat - 0.2, csat + 0.2)),
        csat_n: n,
        resolution_rate: Some(0.9),
        resolution_ci: Some((0.85, 0.94)),
        small_sample: n < 30,
    }
}

fn scripts() -> ScriptsData {
    ScriptsData {
        scripts: vec![
            script(ScriptKind::QuickReply, "qr_hello", 4.6, 40),
            script(ScriptKind::QuickReply, "qr_rare", 4.4, 3),
            script(ScriptKind::QuickReply, "qr_sorry", 3.1, 60),
            script(ScriptKind::Template, "tpl_wait", 2.9, 50),
        ],
        best: vec![
            (ScriptKind::QuickReply, "qr_hello".into()),
            (ScriptKind::Template, "tpl_wait".into()),
        ],
        worst: vec![(ScriptKind::QuickReply, "qr_sorry".into())],
    }
}

fn all_pages(c: &PageContext, full: bool) -> Vec<(&'static str, String)> {
    let lang = c.lang;
    let theme = c.theme;
    if full {
        vec![
            ("overview", render_overview(c, &overview(30))),
            (
                "channels",
                render_channels(
                    c,
                    &ChannelsData {
                        rows: rows(&["whatsapp", "messenger", "line", "webchat", "email"]),
                        trend: key_trends(&["whatsapp", "line"]),
                    },
                ),
            ),
            (
                "teams",
                render_teams(
                    c,
                    &TeamsData {
                        teams: rows(&["billing", "dach"]),
                        agents: vec![AgentRow {
                            agent: "a-17".into(),
                            team: Some("billing".into()),
                            stats: stats(40),
                        }],
                        trend: key_trends(&["billing"]),
                    },
                ),
            ),
            (
                "tags",
                render_tags(
                    c,
                    &TagsData {
                        tags: rows(&["refund", "shipping"]),
                        co_occurrence: vec![TagPair {
                            a: "refund".into(),
                            b: "shipping".into(),
                            conversations: 17,
                        }],
                        trend: Vec::new(),
                    },
                ),
            ),
            ("traffic", render_traffic(c, &traffic())),
            ("scripts", render_scripts(c, &scripts())),
            (
                "experiments",
                render_experiments(
                    c,
                    &ExperimentsData {
                        experiments: vec![ExperimentSummary {
                            key: "greeting-2026".into(),
                            kind: "greeting".into(),
                            state: "running".into(),
                            primary_metric: "conversion".into(),
                            units: 2020,
                            verdict: Some(Verdict::KeepRunning),
                        }],
                    },
                ),
            ),
            (
                "experiment",
                render_experiment_result(c, &experiment("greeting-2026", false)),
            ),
            ("staffing", render_staffing(c, &staffing(48))),
            (
                "login",
                render_login(
                    lang,
                    theme,
                    &LoginData {
                        error: Some("That key is not valid.".into()),
                        next: Some("/channels".into()),
                    },
                ),
            ),
            (
                "error",
                render_error(
                    lang,
                    theme,
                    &ErrorData {
                        status: 500,
                        title: "Internal error".into(),
                        detail: "the lake is unreachable".into(),
                    },
                ),
            ),
        ]
    } else {
        vec![
            ("overview", render_overview(c, &OverviewData::default())),
            ("channels", render_channels(c, &ChannelsData::default())),
            ("teams", render_teams(c, &TeamsData::default())),
            ("tags", render_tags(c, &TagsData::default())),
            ("traffic", render_traffic(c, &TrafficData::default())),
            ("scripts", render_scripts(c, &ScriptsData::default())),
            ("experiments", render_experiments(c, &ExperimentsData::default())),
            (
                "experiment",
                render_experiment_result(c, &ExperimentResultData::default()),
            ),
            ("staffing", render_staffing(c, &StaffingData::default())),
            ("login", render_login(lang, theme, &LoginData::default())),
            ("error", render_error(lang, theme, &ErrorData::default())),
        ]
    }
}

#[test]
fn every_page_is_well_formed_for_empty_and_full_data() {
    for lang in Lang::ALL {
        for theme in Theme::ALL {
            let c = PageContext { theme, ..ctx(lang) };
            for full in [false, true] {
                for (name, html) in all_pages(&c, full) {
                    assert!(html.starts_with("<!DOCTYPE html><html"), "{name}");
                    assert!(html.ends_with("</body></html>"), "{name}");
                    if let Err(e) = check_balanced(&html) {
                        panic!("{name} ({lang:?}, {theme:?}, full={full}): {e}");
                    }
                }
            }
        }
    }
}

#[test]
fn empty_pages_say_so() {
    for (name, html) in all_pages(&ctx(Lang::En), false) {
        if !matches!(name, "login" | "error" | "experiments") {
            assert!(html.contains("No data for this selection."), "{name}");
        }
        assert!(!html.contains("<polyline"), "{name}");
    }
    let html = render_experiments(&ctx(Lang::En), &ExperimentsData::default());
    assert!(html.contains("No experiments yet."));
}

#[test]
fn pages_load_nothing_from_elsewhere_and_run_no_script() {
    for full in [false, true] {
        for (name, html) in all_pages(&ctx(Lang::En), full) {
            assert!(!html.contains("<script"), "{name}");
            assert!(!html.contains("@import") && !html.contains("url("), "{name}");
            let external = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !external.contains("http://") && !external.contains("https://"),
                "{name}"
            );
            assert!(!external.contains("//cdn") && !html.contains("@font-face"), "{name}");
        }
    }
}

#[test]
fn every_chart_comes_with_its_numbers_in_a_table() {
    for (name, html) in all_pages(&ctx(Lang::En), true) {
        if html.contains("<svg") {
            assert!(html.contains("<table>"), "{name} has a chart but no table");
        }
        let svgs = html.matches("<svg").count();
        assert_eq!(html.matches(r#"role="img" aria-label=""#).count(), svgs, "{name}");
        // Each chart opens with its <title>.
        for svg in html.split("<svg").skip(1) {
            let after_open = &svg[svg.find('>').map_or(0, |i| i + 1)..];
            assert!(after_open.starts_with("<title>"), "{name}");
        }
    }
    // The overview: one chart and one table per tile.
    let html = render_overview(&ctx(Lang::En), &overview(30));
    assert_eq!(html.matches("<svg").count(), 18);
    assert_eq!(html.matches("<table>").count(), 18);
}

const HOSTILE: &str = r#""><script>alert(1)</script><img src=x onerror=alert(2)>'"#;

fn assert_inert(name: &str, html: &str) {
    assert!(!html.contains("<script>alert(1)"), "{name}: raw script");
    assert!(!html.contains("<img src=x"), "{name}: raw img");
    assert!(
        !html.contains(r#"" onerror"#) && !html.contains("onerror=alert(2)>"),
        "{name}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{name}: escaped text missing"
    );
    if let Err(e) = check_balanced(html) {
        panic!("{name}: {e}");
    }
}

#[test]
fn hostile_tenant_tags_and_experiment_keys_are_escaped() {
    let mut c = ctx(Lang::En);
    c.tenant = HOSTILE.into();
    c.controls.filters = vec![(Dimension::Tag, HOSTILE.into())];
    c.controls.suggestions = vec![(Dimension::Tag, vec![HOSTILE.into()])];
    c.controls.time_zone = HOSTILE.into();
    for (name, html) in all_pages(&c, true) {
        if name != "login" && name != "error" {
            assert_inert(name, &html);
        }
    }
    let c = ctx(Lang::En);
    let tags = render_tags(
        &c,
        &TagsData {
            tags: rows(&[HOSTILE]),
            co_occurrence: vec![TagPair {
                a: HOSTILE.into(),
                b: "x".into(),
                conversations: 1,
            }],
            trend: key_trends(&[HOSTILE]),
        },
    );
    assert_inert("tags", &tags);
    let mut e = experiment(HOSTILE, true);
    e.metrics[0].metric = HOSTILE.into();
    if let Some(d) = e.decision.as_mut() {
        d.explanation = HOSTILE.into();
    }
    let page = render_experiment_result(&c, &e);
    assert_inert("experiment", &page);
    let list = render_experiments(
        &c,
        &ExperimentsData {
            experiments: vec![ExperimentSummary {
                key: HOSTILE.into(),
                kind: "greeting".into(),
                state: "running".into(),
                primary_metric: "conversion".into(),
                units: 1,
                verdict: None,
            }],
        },
    );
    assert_inert("experiments", &list);
    // The key is percent-encoded in the link to its page.
    assert!(
        list.contains(r#"href="/experiments/%22%3E%3Cscript%3Ealert%281%29"#),
        "{list}"
    );
    let err = render_error(
        Lang::En,
        Theme::Auto,
        &ErrorData {
            status: 400,
            title: HOSTILE.into(),
            detail: HOSTILE.into(),
        },
    );
    assert_inert("error", &err);
    let login = render_login(
        Lang::En,
        Theme::Auto,
        &LoginData {
            error: Some(HOSTILE.into()),
            next: Some(HOSTILE.into()),
        },
    );
    assert_inert("login", &login);
}

#[test]
fn chinese_strings_appear_when_asked() {
    let zh = render_overview(&ctx(Lang::ZhCn), &overview(3));
    for s in [
        "<html lang=\"zh-CN\"",
        "总览",
        "首次响应时间",
        "满意度（CSAT）",
        "下载 CSV",
        "对比上一周期",
        "筛选",
    ] {
        assert!(zh.contains(s), "{s}");
    }
    assert!(!zh.contains(">Overview<") && !zh.contains("Download CSV"));
    let en = render_overview(&ctx(Lang::En), &overview(3));
    assert!(en.contains("<html lang=\"en\"") && en.contains(">Overview<") && en.contains("First response time"));
    // Both languages are offered on every page, each in its own script.
    for html in [&zh, &en] {
        assert!(html.contains(">English</a>") && html.contains(">简体中文</a>"));
    }
    let traffic = render_traffic(&ctx(Lang::ZhCn), &traffic());
    assert!(traffic.contains("周一") && traffic.contains("按星期和小时的会话数"));
    let login = render_login(Lang::ZhCn, Theme::Auto, &LoginData::default());
    assert!(login.contains("登录") && login.contains("API 密钥"));
}

fn tile_class(key: &str, unit: Unit, value: f64) -> String {
    let html = render_overview(
        &ctx(Lang::En),
        &OverviewData {
            tiles: vec![KpiTile::new(key, key, unit, Some(value), None, vec![])],
            notes: vec![],
        },
    );
    let at = html.find(r#"<article class="tile "#).expect("a tile");
    html[at..].split('"').nth(1).unwrap_or_default().to_string()
}

#[test]
fn tiles_are_coloured_against_the_reference_targets_at_the_boundaries() {
    assert_eq!(tile_class("frt_s", Unit::Seconds, 119.9), "tile t-good");
    assert_eq!(tile_class("frt_s", Unit::Seconds, 120.0), "tile t-needs-work");
    assert_eq!(tile_class("response_s", Unit::Seconds, 30.0), "tile t-needs-work");
    assert_eq!(tile_class("response_s", Unit::Seconds, 29.0), "tile t-good");
    assert_eq!(tile_class("csat", Unit::Score, 4.5), "tile t-excellent");
    assert_eq!(tile_class("csat", Unit::Score, 4.0), "tile t-good");
    assert_eq!(tile_class("csat", Unit::Score, 3.99), "tile t-needs-work");
    assert_eq!(tile_class("conversations", Unit::Count, 1.0), "tile t-none");
    // The status is written, not only coloured.
    let html = render_overview(
        &ctx(Lang::En),
        &OverviewData {
            tiles: vec![KpiTile::new("csat", "CSAT", Unit::Score, Some(4.0), Some(4.2), vec![])],
            notes: vec![],
        },
    );
    assert!(html.contains(r#"<span class="badge b-good">Good</span>"#));
    // 4.2 → 4.0 is a CSAT drop: worse, shown in points.
    assert!(html.contains(r#"<span class="worse">▼ -0.20 · worse</span>"#), "{html}");
}

#[test]
fn period_over_period_change_reads_by_direction() {
    let html = render_overview(
        &ctx(Lang::En),
        &OverviewData {
            tiles: vec![
                KpiTile::new("frt_s", "FRT", Unit::Seconds, Some(90.0), Some(100.0), vec![]),
                KpiTile::new("sla_attainment", "SLA", Unit::Fraction, Some(0.85), Some(0.8), vec![]),
                KpiTile::new("conversations", "C", Unit::Count, Some(1100.0), Some(1000.0), vec![]),
            ],
            notes: vec![],
        },
    );
    assert!(
        html.contains(r#"<span class="better">▼ -10.0% · better</span>"#),
        "{html}"
    );
    assert!(html.contains(r#"<span class="better">▲ +5.0 pp · better</span>"#));
    // Volume is neither better nor worse.
    assert!(html.contains(r#"<span class="">▲ +10.0%</span>"#));
    assert!(html.contains("vs previous 1m 40s"));
}

#[test]
fn the_view_lives_in_the_url() {
    let mut c = ctx(Lang::En);
    c.controls.filters.push((Dimension::Tag, "vip&refund".into()));
    let html = render_channels(&c, &ChannelsData::default());
    // The form GETs the page itself with every control named as the API's parameters.
    assert!(html.contains(r#"<form class="controls" method="get" action="/channels""#));
    for input in [
        r#"name="from" value="2026-03-01""#,
        r#"name="to" value="2026-03-31""#,
        r#"name="tz" value="Asia/Shanghai""#,
        r#"name="channel" value="whatsapp" list="dl-channel""#,
        r#"name="tag" value="vip&amp;refund""#,
        r#"<option value="day" selected>"#,
        "<summary>Filters: Channel = whatsapp · Tag = vip&amp;refund</summary>",
    ] {
        assert!(html.contains(input), "{input}");
    }
    for d in Dimension::ALL {
        assert!(html.contains(&format!(r#"name="{}""#, d.name())), "{d:?}");
    }
    // CSV: the same URL plus format=csv.
    assert!(html.contains(
        r#"href="/channels?from=2026-03-01&amp;to=2026-03-31&amp;tz=Asia%2FShanghai&amp;bucket=day&amp;channel=whatsapp&amp;tag=vip%26refund&amp;format=csv" download>Download CSV</a>"#
    ), "{html}");
    // Navigation keeps the view.
    assert!(html.contains(r#"<a href="/traffic?from=2026-03-01&amp;to=2026-03-31"#));
    assert!(
        html.contains(r#"<a href="/channels?from=2026-03-01"#) && html.contains(r#"aria-current="page">Channels</a>"#)
    );
}

#[test]
fn language_and_theme_switches_keep_the_view() {
    let c = ctx(Lang::En);
    let html = render_overview(&c, &OverviewData::default());
    assert!(
        html.contains(r#"channel=whatsapp&amp;lang=zh-CN" hreflang="zh-CN""#),
        "{html}"
    );
    assert!(html.contains(r#"channel=whatsapp&amp;theme=dark">Dark</a>"#));
    // An Accept-Language choice is not put into shared links; an explicit one is.
    assert!(!html.contains(r#"name="lang""#));
    let pinned = PageContext {
        lang_pinned: true,
        theme: Theme::Dark,
        ..ctx(Lang::ZhCn)
    };
    let html = render_overview(&pinned, &OverviewData::default());
    assert!(html.contains(r#"<input type="hidden" name="lang" value="zh-CN">"#));
    assert!(html.contains(r#"<input type="hidden" name="theme" value="dark">"#));
    assert!(html.contains(r#"data-theme="dark""#));
    assert!(html.contains("lang=zh-CN&amp;theme=dark&amp;format=csv"));
    // Both themes are in the stylesheet; auto follows the browser.
    assert!(html.contains("@media (prefers-color-scheme:dark){:root:not([data-theme=light])"));
    assert!(html.contains(":root[data-theme=dark]"));
}

#[test]
fn pages_fit_a_phone() {
    let html = render_overview(&ctx(Lang::En), &overview(3));
    assert!(html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
    assert!(html.contains("@media (max-width:600px)"));
    // Tables scroll inside their box, never the page.
    assert_eq!(
        html.matches(r#"<div class="tw"><table>"#).count(),
        html.matches("<table>").count()
    );
    // Charts scale to the container instead of having a fixed width.
    assert!(!html.contains("<svg width=") && html.contains(".chart{display:block;width:100%;height:auto"));
}

#[test]
fn overview_of_30_days_and_18_kpis_stays_small() {
    let data = overview(30);
    assert_eq!(data.tiles.len(), 18);
    for lang in Lang::ALL {
        let html = render_overview(&ctx(lang), &data);
        assert!(html.len() < 500 * 1024, "{} bytes", html.len());
    }
    // The other pages at realistic sizes too.
    let staff = render_staffing(&ctx(Lang::En), &staffing(14 * 48));
    assert!(staff.len() < 500 * 1024, "staffing: {} bytes", staff.len());
}

#[test]
fn rendering_is_a_pure_function_of_its_input() {
    let c = ctx(Lang::En);
    assert_eq!(render_overview(&c, &overview(5)), render_overview(&c, &overview(5)));
    assert_eq!(render_staffing(&c, &staffing(8)), render_staffing(&c, &staffing(8)));
}

#[test]
fn experiment_result_shows_forest_plot_srm_and_decision() {
    let html = render_experiment_result(&ctx(Lang::En), &experiment("greeting-2026", false));
    assert!(html.contains("<h1>Experiment: greeting-2026</h1>"));
    assert!(html.contains(r#"<span class="badge b-ship">Ship</span> <b>warm</b>"#));
    assert!(html.contains("Ship warm: conversion rose 20% (CI 5% to 35%) and no guardrail got worse."));
    assert!(html.contains(r#"class="chart forest""#) && html.contains(r#"<line class="zero""#));
    // Conversion up (better), FRT change not significant.
    assert!(html.contains(r#"<line class="ci better""#) && html.contains(r#"<line class="ci neutral""#));
    assert!(html.contains(">+20.0% [5.0%, 35.0%]</text>"));
    assert!(html.contains("Split matches the weights") && html.contains("p-value 0.180"));
    assert!(html.contains(r#"action="/experiments/greeting-2026""#));
    let bad = render_experiment_result(&ctx(Lang::En), &experiment("x", true));
    assert!(bad.contains(r#"<section class="card alert">"#) && bad.contains("Sample ratio mismatch"));
    assert!(bad.contains("p-value &lt;0.001"));
}

#[test]
fn staffing_draws_band_actuals_and_agents() {
    let html = render_staffing(&ctx(Lang::En), &staffing(8));
    assert!(html.contains(r#"<polygon class="band""#));
    assert!(html.contains(r#"<polyline class="ln""#) && html.contains(r#"<polyline class="act""#));
    assert!(html.contains(r#"<path class="ln" d="M"#));
    assert!(html.contains("Queue: <b>channel:whatsapp</b> · Interval: 30 min"));
    assert!(html.contains("Service level target: 80.0% / 2m 00s"));
    assert!(html.contains("P10–P90 band"));
}

#[test]
fn login_posts_the_key_and_shows_no_tenant_data() {
    let html = render_login(Lang::En, Theme::Auto, &LoginData::default());
    assert!(html.contains(r#"<form class="login card" method="post" action="/login">"#));
    assert!(html.contains(r#"<input type="password" name="key" required"#));
    assert!(!html.contains(r#"class="pages""#) && !html.contains("Download CSV"));
    let err = render_error(
        Lang::En,
        Theme::Auto,
        &ErrorData {
            status: 404,
            title: "Not found".into(),
            detail: "no experiment greeting-x".into(),
        },
    );
    assert!(err.contains("<h1>Error 404</h1>") && err.contains("no experiment greeting-x"));
}

#[test]
fn scripts_show_intervals_best_first_and_name_the_best_and_worst() {
    let html = render_scripts(&ctx(Lang::En), &scripts());
    // One table per kind, quick replies first, rows in the API's order.
    let qr = html.find(">Quick replies<").unwrap_or(usize::MAX);
    let tpl = html.find(">Templates<").unwrap_or(0);
    assert!(qr < tpl, "quick replies, then templates");
    let order: Vec<usize> = ["qr_hello", "qr_rare", "qr_sorry"]
        .iter()
        .map(|id| html.find(&format!(r#"<th scope="row">{id}"#)).unwrap_or(0))
        .collect();
    assert!(order[0] > 0 && order[0] < order[1] && order[1] < order[2], "{order:?}");
    // Intervals in figures and as bars on a shared 1–5 axis.
    assert!(html.contains("[4.40, 4.80]"), "the CSAT interval");
    assert!(html.contains("[85.0%, 94.0%]"), "the resolution interval");
    assert_eq!(html.matches(r#"class="chart ib""#).count(), 8, "two bars per script");
    // Best and worst named on top of their kind, small samples marked.
    assert!(html.contains(r#"<span class="badge b-excellent">Best</span> <b>qr_hello</b>"#));
    assert!(html.contains(r#"<span class="badge b-needs-work">Worst</span> <b>qr_sorry</b>"#));
    assert!(html.contains(r#"qr_rare <span class="few">few scores</span>"#));
    assert!(html.contains("run it as an experiment"));
}

#[test]
fn breakdowns_draw_a_trend_per_busiest_key_in_the_views_bucket() {
    let html = render_channels(
        &ctx(Lang::En),
        &ChannelsData {
            rows: rows(&["whatsapp", "line"]),
            trend: key_trends(&["whatsapp", "line"]),
        },
    );
    assert!(html.contains("Conversations over time"));
    assert!(html.contains("<h3>whatsapp</h3>") && html.contains("<h3>line</h3>"));
    let empty = render_channels(
        &ctx(Lang::En),
        &ChannelsData {
            rows: rows(&["whatsapp"]),
            trend: Vec::new(),
        },
    );
    assert!(!empty.contains("Conversations over time"));
}

#[test]
fn trend_charts_link_their_own_csv_keeping_the_view() {
    let view = "from=2026-03-01&amp;to=2026-03-31&amp;tz=Asia%2FShanghai&amp;bucket=day&amp;channel=whatsapp";
    for (path, html) in [
        (
            "/channels",
            render_channels(
                &ctx(Lang::En),
                &ChannelsData {
                    rows: rows(&["whatsapp", "line"]),
                    trend: key_trends(&["whatsapp", "line"]),
                },
            ),
        ),
        (
            "/teams",
            render_teams(
                &ctx(Lang::En),
                &TeamsData {
                    teams: rows(&["billing"]),
                    agents: Vec::new(),
                    trend: key_trends(&["billing"]),
                },
            ),
        ),
        (
            "/tags",
            render_tags(
                &ctx(Lang::En),
                &TagsData {
                    tags: rows(&["refund"]),
                    co_occurrence: Vec::new(),
                    trend: key_trends(&["refund"]),
                },
            ),
        ),
    ] {
        let link = format!(
            r#"<a class="chart-csv" href="{path}?{view}&amp;format=csv&amp;part=trend" title="Download this chart&#39;s numbers as CSV" download>CSV</a>"#
        );
        assert_eq!(html.matches(&link).count(), 1, "{path}: {html}");
        assert_eq!(
            html.matches(r#"class="chart-csv""#).count(),
            1,
            "{path}: one trend chart"
        );
    }
    // One link per overview tile, each narrowed to its KPI.
    let data = overview(3);
    let html = render_overview(&ctx(Lang::En), &data);
    assert_eq!(html.matches(r#"class="chart-csv""#).count(), data.tiles.len());
    assert!(html.contains(&format!(
        r#"href="/?{view}&amp;format=csv&amp;part=trend&amp;kpi=frt_s""#
    )));
    // Chinese pages say it in Chinese; no trend, no link.
    let zh = render_overview(&ctx(Lang::ZhCn), &data);
    assert!(zh.contains(r#"title="下载此图表的数据（CSV）" download>CSV</a>"#));
    let no_trend = render_channels(
        &ctx(Lang::En),
        &ChannelsData {
            rows: rows(&["whatsapp"]),
            trend: Vec::new(),
        },
    );
    assert!(!no_trend.contains(r#"class="chart-csv""#));
}

#[test]
fn each_page_offers_the_bucket_choices_that_change_it() {
    let mut c = ctx(Lang::En);
    let overview = render_overview(&c, &overview(7));
    assert!(overview.contains(r#"<select name="bucket">"#) && overview.contains(r#"value="week""#));
    assert!(!overview.contains(r#"value="30min""#));
    // Staffing: the forecast interval, and a time zone of the view's choice.
    c.controls.bucket = Bucket::Minutes15;
    let staffing_page = render_staffing(&c, &staffing(8));
    assert!(
        staffing_page
            .contains(r#"<option value="15min" selected>15 min</option><option value="30min">30 min</option>"#)
    );
    assert!(!staffing_page.contains(r#"value="week""#));
    assert!(staffing_page.contains(r#"name="tz" value="Asia/Shanghai" placeholder"#));
    // Elsewhere the zone is the tenant's, shown read-only.
    assert!(overview.contains(r#"name="tz" value="Asia/Shanghai" readonly"#));
    // The heatmap has no time bucket: the choice is carried, not offered.
    c.controls.bucket = Bucket::Week;
    let traffic_page = render_traffic(&c, &traffic());
    assert!(!traffic_page.contains(r#"<select name="bucket">"#));
    assert!(traffic_page.contains(r#"<input type="hidden" name="bucket" value="week">"#));
}

#[test]
fn staffing_answers_how_many_agents_each_part_of_the_day_needs() {
    let data = StaffingData {
        queue: "*".into(),
        interval_minutes: 30,
        method: "seasonal_naive".into(),
        service_level: None,
        intervals: (0..48)
            .map(|i| StaffingInterval {
                label: format!("{:02}:{:02}", i / 2, (i % 2) * 30),
                actual: None,
                mean: 10.0,
                p10: 5.0,
                p90: 15.0,
                agents: Some(if i == 39 { 9.0 } else { 3.0 }),
            })
            .collect(),
    };
    let html = render_staffing(&ctx(Lang::En), &data);
    assert!(html.contains("Agents needed by part of the day"));
    assert!(
        html.contains(
            r#"<th scope="row">Evening (18–24 h)</th><td class="n"><b>9</b></td><td>19:30</td><td class="n">120</td>"#
        ),
        "the evening's peak"
    );
    assert!(html.contains(r#"<th scope="row">Night (0–6 h)</th><td class="n"><b>3</b></td><td>00:00</td>"#));
}

#[test]
fn date_presets_are_links_that_keep_the_rest_of_the_view() {
    let html = render_overview(&ctx(Lang::En), &overview(7));
    assert!(html.contains(
        r#"<a href="/?from=2026-02-23&amp;to=2026-03-02&amp;tz=Asia%2FShanghai&amp;bucket=day&amp;channel=whatsapp">Last week</a>"#
    ));
    // The range on show is marked.
    assert!(html.contains(r#"channel=whatsapp" aria-current="true">This month</a>"#));
    assert!(render_overview(&ctx(Lang::ZhCn), &overview(7)).contains(">上周</a>"));
}

#[test]
fn an_experiment_list_without_dates_links_to_whole_runs() {
    let mut c = ctx(Lang::En);
    c.controls.from.clear();
    c.controls.to.clear();
    let html = render_experiments(
        &c,
        &ExperimentsData {
            experiments: vec![ExperimentSummary {
                key: "greeting_v2".into(),
                kind: "greeting".into(),
                state: "running".into(),
                primary_metric: "conversion".into(),
                units: 10,
                verdict: None,
            }],
        },
    );
    assert!(html.contains(r#"<p class="window">Asia/Shanghai</p>"#));
    assert!(html.contains(
        r#"<a href="/experiments/greeting_v2?tz=Asia%2FShanghai&amp;bucket=day&amp;channel=whatsapp">greeting_v2</a>"#
    ));
}
