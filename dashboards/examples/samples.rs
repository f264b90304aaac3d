//! Renders every page from made-up data into a directory, to look at in a
//! browser: `cargo run -p dashboards --example samples -- /tmp/pages`
//! (then open `/tmp/pages/overview.en.html`). Add `dark` after the
//! directory for the dark theme.

use dashboards::*;

/// Conversations per day over a week for each key.
fn trends(keys: &[&str]) -> Vec<KeyTrend> {
    keys.iter()
        .enumerate()
        .map(|(k, key)| KeyTrend {
            key: (*key).to_string(),
            points: (1..=7)
                .map(|d| {
                    (
                        format!("2026-03-{d:02}"),
                        (300 - 80 * k + 13 * ((d * 7 + k) % 5)) as f64,
                    )
                })
                .collect(),
        })
        .collect()
}

fn ctx(lang: Lang, theme: Theme) -> PageContext {
    PageContext {
        tenant: "modehaus_eu".into(),
        lang,
        lang_pinned: true,
        theme,
        controls: Controls {
            from: "2026-03-01".into(),
            to: "2026-03-31".into(),
            bucket: Bucket::Day,
            time_zone: "Europe/Berlin".into(),
            filters: vec![(Dimension::Channel, "whatsapp".into())],
            suggestions: vec![(
                Dimension::Channel,
                vec![
                    "whatsapp".into(),
                    "messenger".into(),
                    "instagram".into(),
                    "email".into(),
                ],
            )],
            presets: vec![RangePreset {
                preset: Preset::LastMonth,
                from: "2026-03-01".into(),
                to: "2026-04-01".into(),
            }],
        },
    }
}

/// A deterministic wiggle in [-1, 1].
fn wiggle(i: usize, seed: usize) -> f64 {
    let x = ((i * 7919 + seed * 104_729) % 1000) as f64 / 1000.0;
    2.0 * x - 1.0
}

fn overview() -> OverviewData {
    let tiles = KPI_KEYS
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let unit = unit_of(key, "EUR");
            let base = match *key {
                "conversations" => 1450.0,
                "frt_s" => 84.0,
                "human_frt_s" => 310.0,
                "response_s" => 33.0,
                "handling_s" => 1820.0,
                "csat" => 4.42,
                "aov" => 68.5,
                "conversations_per_agent" => 41.0,
                "labor_cost" => 5200.0,
                "cost_per_conversation" => 3.9,
                _ => 0.35 + 0.03 * k as f64,
            };
            let trend: Vec<(String, f64)> = (0..30)
                .map(|d| {
                    let weekly = if d % 7 >= 5 { 0.8 } else { 1.0 };
                    (
                        format!("2026-03-{:02}", d + 1),
                        base * weekly * (1.0 + 0.06 * wiggle(d, k)),
                    )
                })
                .collect();
            let value = trend.iter().map(|(_, v)| v).sum::<f64>() / 30.0;
            let value = if *key == "conversations" { value * 30.0 } else { value };
            let previous = value * (1.0 + 0.08 * wiggle(k, 3));
            KpiTile::new(key, key, unit, Some(value), Some(previous), trend)
        })
        .collect();
    OverviewData {
        tiles,
        notes: vec!["repurchase_rate, labor_cost, cost_per_conversation are left out where a dimension filters".into()],
    }
}

fn stats(n: u64, i: usize) -> BreakdownStats {
    BreakdownStats {
        conversations: n,
        frt_s: Some(40.0 + 30.0 * (1.0 + wiggle(i, 1))),
        response_s: Some(25.0 + 10.0 * wiggle(i, 2)),
        handling_s: Some(1500.0 + 500.0 * wiggle(i, 3)),
        csat: Some(4.3 + 0.3 * wiggle(i, 4)),
        resolution_rate: Some(0.8 + 0.1 * wiggle(i, 5)),
        transfer_rate: Some(0.3 + 0.1 * wiggle(i, 6)),
    }
}

fn rows(keys: &[&str]) -> Vec<BreakdownRow> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| BreakdownRow {
            key: k.to_string(),
            stats: stats((9000.0 / (i as f64 + 1.5)) as u64, i),
        })
        .collect()
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/pages".into()));
    let theme = Theme::parse(args.next().as_deref());
    std::fs::create_dir_all(&dir)?;
    for lang in Lang::ALL {
        let c = ctx(lang, theme);
        let mut traffic = TrafficData::default();
        for (d, row) in traffic.conversations.iter_mut().enumerate() {
            for (h, v) in row.iter_mut().enumerate() {
                let day = if d >= 5 { 0.6 } else { 1.0 };
                let shape = (-((h as f64 - 14.0) / 4.5).powi(2)).exp();
                *v = (220.0 * day * shape * (1.0 + 0.2 * wiggle(d * 24 + h, 9))) as u64;
            }
        }
        let experiment = ExperimentResultData {
            key: "greeting-warm-2026".into(),
            state: "running".into(),
            control: "control".into(),
            variants: vec![
                VariantShare { key: "control".into(), weight: 0.5, units: 5120 },
                VariantShare { key: "warm".into(), weight: 0.25, units: 2544 },
                VariantShare { key: "emoji".into(), weight: 0.25, units: 2571 },
            ],
            srm: Some(SrmCheck { chi_square: 0.19, p_value: 0.91, mismatch: false }),
            metrics: ["conversion", "csat", "frt", "transfer"]
                .iter()
                .enumerate()
                .map(|(m, metric)| MetricResult {
                    metric: metric.to_string(),
                    role: if m == 0 { "primary" } else { "guardrail" }.into(),
                    higher_is_better: m < 2,
                    comparisons: ["warm", "emoji"]
                        .iter()
                        .enumerate()
                        .map(|(v, variant)| {
                            let rel = 0.06 * wiggle(m * 2 + v, 11) + if m == 0 && v == 0 { 0.08 } else { 0.0 };
                            let half = 0.04 + 0.01 * m as f64;
                            VariantComparison {
                                variant: variant.to_string(),
                                control_mean: Some(0.12),
                                treatment_mean: Some(0.12 * (1.0 + rel)),
                                absolute_lift: Some(0.12 * rel),
                                absolute_ci: Some((0.12 * (rel - half), 0.12 * (rel + half))),
                                relative_lift: Some(rel),
                                relative_ci: Some((rel - half, rel + half)),
                                p_value: Some(if rel.abs() > half { 0.003 } else { 0.4 }),
                                significant: rel.abs() > half,
                                chance_to_win: Some(0.5 + rel * 5.0),
                                error: None,
                            }
                        })
                        .collect(),
                })
                .collect(),
            decision: Some(DecisionSummary {
                variant: "warm".into(),
                verdict: Verdict::Ship,
                explanation: "Ship warm: conversion rate improved by 1.2 points (+10.1%, always-valid 95% CI +0.3 to +2.1 points) and no guardrail is significantly worse.".into(),
            }),
        };
        let staffing = StaffingData {
            queue: "channel:whatsapp,language:de".into(),
            interval_minutes: 30,
            method: "poisson_trend".into(),
            service_level: Some((0.8, 120.0)),
            intervals: (0..48)
                .map(|i| {
                    let mean = 2.0 + 30.0 * (-((i as f64 / 2.0 - 14.0) / 4.0).powi(2)).exp();
                    StaffingInterval {
                        label: format!("{:02}:{:02}", i / 2, (i % 2) * 30),
                        actual: (i < 30).then(|| (mean * (1.0 + 0.25 * wiggle(i, 7))).round()),
                        mean,
                        p10: mean * 0.65,
                        p90: mean * 1.4,
                        agents: Some((mean / 3.0).ceil() + 1.0),
                    }
                })
                .collect(),
        };
        let pages: Vec<(&str, String)> = vec![
            ("overview", render_overview(&c, &overview())),
            (
                "channels",
                render_channels(
                    &c,
                    &ChannelsData {
                        rows: rows(&["whatsapp", "messenger", "instagram", "webchat", "email", "line"]),
                        trend: trends(&["whatsapp", "messenger", "instagram"]),
                    },
                ),
            ),
            (
                "teams",
                render_teams(
                    &c,
                    &TeamsData {
                        teams: rows(&["dach", "billing", "returns"]),
                        agents: (0..8)
                            .map(|i| AgentRow {
                                agent: format!("agent-{:02}", i + 1),
                                team: Some(["dach", "billing", "returns"][i % 3].into()),
                                stats: stats(400 - 30 * i as u64, i),
                            })
                            .collect(),
                        trend: trends(&["dach", "billing", "returns"]),
                    },
                ),
            ),
            (
                "tags",
                render_tags(
                    &c,
                    &TagsData {
                        tags: rows(&["shipping", "refund", "size-exchange", "payment", "complaint"]),
                        co_occurrence: vec![
                            TagPair {
                                a: "refund".into(),
                                b: "shipping".into(),
                                conversations: 412,
                            },
                            TagPair {
                                a: "complaint".into(),
                                b: "refund".into(),
                                conversations: 190,
                            },
                            TagPair {
                                a: "payment".into(),
                                b: "refund".into(),
                                conversations: 88,
                            },
                        ],
                        trend: trends(&["shipping", "refund"]),
                    },
                ),
            ),
            ("traffic", render_traffic(&c, &traffic)),
            (
                "scripts",
                render_scripts(
                    &c,
                    &ScriptsData {
                        scripts: (0..6)
                            .map(|i| ScriptRow {
                                kind: if i % 2 == 0 {
                                    ScriptKind::QuickReply
                                } else {
                                    ScriptKind::Template
                                },
                                id: format!(
                                    "{}_{}",
                                    if i % 2 == 0 { "qr" } else { "tpl" },
                                    [
                                        "greeting",
                                        "where_is_my_order",
                                        "refund_policy",
                                        "size_guide",
                                        "thanks",
                                        "handoff"
                                    ][i]
                                ),
                                conversations: 800 - 90 * i as u64,
                                csat: Some(4.6 - 0.1 * i as f64),
                                csat_ci: Some((4.45 - 0.1 * i as f64, 4.75 - 0.1 * i as f64)),
                                csat_n: 200 - 35 * i as u64,
                                resolution_rate: Some(0.9 - 0.04 * i as f64),
                                resolution_ci: Some((0.85 - 0.04 * i as f64, 0.94 - 0.04 * i as f64)),
                                small_sample: 200 - 35 * i < 30,
                            })
                            .collect(),
                        best: vec![
                            (ScriptKind::QuickReply, "qr_greeting".into()),
                            (ScriptKind::Template, "tpl_where_is_my_order".into()),
                        ],
                        worst: vec![
                            (ScriptKind::QuickReply, "qr_thanks".into()),
                            (ScriptKind::Template, "tpl_handoff".into()),
                        ],
                    },
                ),
            ),
            (
                "experiments",
                render_experiments(
                    &c,
                    &ExperimentsData {
                        experiments: vec![
                            ExperimentSummary {
                                key: "greeting-warm-2026".into(),
                                kind: "greeting".into(),
                                state: "running".into(),
                                primary_metric: "conversion".into(),
                                units: 10235,
                                verdict: Some(Verdict::Ship),
                            },
                            ExperimentSummary {
                                key: "persona-formal".into(),
                                kind: "persona".into(),
                                state: "running".into(),
                                primary_metric: "csat".into(),
                                units: 812,
                                verdict: Some(Verdict::KeepRunning),
                            },
                            ExperimentSummary {
                                key: "qr-set-b".into(),
                                kind: "quick_reply".into(),
                                state: "draft".into(),
                                primary_metric: "resolution".into(),
                                units: 0,
                                verdict: None,
                            },
                        ],
                    },
                ),
            ),
            ("experiment", render_experiment_result(&c, &experiment)),
            ("staffing", render_staffing(&c, &staffing)),
            (
                "login",
                render_login(
                    lang,
                    theme,
                    &LoginData {
                        error: None,
                        next: None,
                    },
                ),
            ),
            (
                "error",
                render_error(
                    lang,
                    theme,
                    &ErrorData {
                        status: 404,
                        title: "Not found".into(),
                        detail: "There is no experiment named greeting-x.".into(),
                    },
                ),
            ),
        ];
        for (name, html) in pages {
            let path = dir.join(format!("{name}.{}.html", lang.code()));
            std::fs::write(&path, &html)?;
            println!("{} {} bytes", path.display(), html.len());
        }
    }
    Ok(())
}
