//! The generated stream against event contract v1 (DESIGN.md): envelope,
//! per-type fields, enum values, ids, timestamps, ordering, determinism.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

use chrono::DateTime;
use datagen::{GenConfig, generate, generate_day};
use serde_json::Value;

/// Three days, ~2,000 conversations a day over the three demo tenants.
fn sample() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut out = Vec::new();
        generate(&GenConfig::demo_with(11, 3, 2000.0), &mut out).expect("generate");
        out
    })
}

fn events() -> impl Iterator<Item = Value> {
    sample()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("every line is JSON"))
}

const TYPES: [&str; 14] = [
    "conversation.started",
    "message.created",
    "conversation.assigned",
    "conversation.handoff",
    "conversation.resolved",
    "conversation.reopened",
    "conversation.tagged",
    "csat.requested",
    "csat.submitted",
    "order.placed",
    "order.refunded",
    "agent.status_changed",
    "experiment.exposed",
    "cost.incurred",
];

/// Enum fields of the contract and their allowed values.
const ENUMS: [(&str, &[&str]); 9] = [
    (
        "channel",
        &[
            "whatsapp",
            "messenger",
            "facebook_comment",
            "instagram",
            "line",
            "wechat",
            "webchat",
            "app",
            "email",
            "sms",
            "voice",
            "other",
        ],
    ),
    ("sender", &["customer", "bot", "agent", "system"]),
    (
        "reason",
        &["customer_request", "low_confidence", "policy", "sentiment", "other"],
    ),
    ("resolved_by", &["bot", "agent"]),
    ("customer_tier", &["new", "regular", "vip"]),
    ("ai_suggestion", &["none", "accepted", "edited"]),
    ("cost_kind", &["channel_fee", "ai_usage", "sms", "other"]),
    ("status", &["online", "away", "offline"]),
    ("tag_source", &["agent", "auto"]),
];

/// Required fields per type (beyond the envelope) and their JSON kind.
fn required(ty: &str) -> &'static [(&'static str, &'static str)] {
    match ty {
        "conversation.started" => &[
            ("language", "str"),
            ("region", "str"),
            ("timezone", "str"),
            ("customer_tier", "str"),
            ("queue", "str"),
            ("source", "str"),
        ],
        "message.created" => &[
            ("message_id", "str"),
            ("sender", "str"),
            ("private", "bool"),
            ("automated", "bool"),
            ("chars", "num"),
        ],
        "conversation.assigned" => &[("agent_id", "str"), ("team", "str"), ("queue", "str")],
        "conversation.handoff" => &[("reason", "str")],
        "conversation.resolved" => &[("resolved_by", "str")],
        "conversation.tagged" => &[("tags", "arr"), ("tag_source", "str")],
        "csat.submitted" => &[("score", "num")],
        "order.placed" | "order.refunded" => &[("order_id", "str"), ("amount", "num"), ("currency", "str")],
        "agent.status_changed" => &[("agent_id", "str"), ("team", "str"), ("status", "str")],
        "experiment.exposed" => &[("experiment_key", "str"), ("variant_key", "str"), ("unit_id", "str")],
        "cost.incurred" => &[("cost_kind", "str"), ("amount", "num"), ("currency", "str")],
        _ => &[],
    }
}

fn kind_ok(v: &Value, kind: &str) -> bool {
    match kind {
        "str" => v.as_str().is_some_and(|s| !s.is_empty()),
        "bool" => v.is_boolean(),
        "num" => v.is_number(),
        "arr" => v
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)),
        _ => false,
    }
}

#[test]
fn every_line_follows_the_contract() {
    let mut n = 0;
    for e in events() {
        n += 1;
        let id = e["event_id"].as_str().expect("event_id");
        assert!((1..=128).contains(&id.len()), "{e}");
        let tenant = e["tenant_id"].as_str().expect("tenant_id");
        assert!(
            !tenant.is_empty()
                && tenant.len() <= 64
                && tenant
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
            "{e}"
        );
        let ty = e["type"].as_str().expect("type");
        assert!(TYPES.contains(&ty), "unknown type in {e}");
        let at = e["occurred_at"].as_str().expect("occurred_at");
        assert!(DateTime::parse_from_rfc3339(at).is_ok(), "not RFC 3339: {at}");
        let needs_conversation = ty.starts_with("conversation.")
            || ty.starts_with("message.")
            || ty.starts_with("csat.")
            || ty == "experiment.exposed";
        if needs_conversation {
            assert!(e["conversation_id"].is_string(), "conversation_id missing: {e}");
            assert!(e["customer_id"].is_string() && e["channel"].is_string(), "{e}");
            assert!(e["channel_account"].is_string(), "{e}");
        }
        for (field, kind) in required(ty) {
            assert!(
                kind_ok(&e[*field], kind),
                "{ty}: field {field} missing or mistyped in {e}"
            );
        }
        for (field, allowed) in ENUMS {
            if let Some(v) = e.get(field) {
                let v = v.as_str().expect("enum values are strings");
                assert!(allowed.contains(&v), "{field}={v} not in the contract: {e}");
            }
        }
        if let Some(score) = e.get("score") {
            assert!((1..=5).contains(&score.as_u64().expect("integer score")), "{e}");
        }
        if let Some(attrs) = e.get("attrs") {
            let attrs = attrs.as_object().expect("attrs is an object");
            assert!(!attrs.is_empty());
            assert!(attrs.values().all(|v| v.is_string() || v.is_number()), "{e}");
        }
        if ty == "message.created" && e["sender"] == "agent" && e["private"] == false {
            assert!(e["ai_suggestion"].is_string() && e["agent_id"].is_string(), "{e}");
        }
        if ty == "conversation.resolved" {
            assert_eq!(e["resolved_by"] == "agent", e["agent_id"].is_string(), "{e}");
        }
        if ty == "experiment.exposed" {
            assert_eq!(e["unit_id"], e["customer_id"]);
        }
        if ty.starts_with("order.") {
            assert!(e["amount"].as_f64().is_some_and(|a| a > 0.0), "{e}");
        }
    }
    assert!(n > 50_000, "only {n} events");
}

#[test]
fn every_type_and_every_enum_value_appears() {
    let mut types = BTreeSet::new();
    let mut values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut flags = BTreeSet::new();
    for e in events() {
        types.insert(e["type"].as_str().unwrap_or_default().to_string());
        for (field, _) in ENUMS {
            if let Some(v) = e.get(field).and_then(Value::as_str) {
                values.entry(field).or_default().insert(v.to_string());
            }
        }
        for f in ["template_id", "quick_reply_id", "comment", "attrs", "widget_version"] {
            if e.get(f).is_some() {
                flags.insert(f.to_string());
            }
        }
        if e["private"] == true {
            flags.insert("private".into());
        }
        if e["automated"] == true {
            flags.insert("automated".into());
        }
        if e["type"] == "order.placed" {
            flags.insert(
                if e.get("conversation_id").is_some() {
                    "order_in_conv"
                } else {
                    "order_without_conv"
                }
                .into(),
            );
        }
    }
    let want: BTreeSet<String> = TYPES.iter().map(|s| s.to_string()).collect();
    assert_eq!(types, want);
    for (field, allowed) in ENUMS {
        let want: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        assert_eq!(values.get(field), Some(&want), "values of {field}");
    }
    for f in [
        "template_id",
        "quick_reply_id",
        "comment",
        "attrs",
        "widget_version",
        "private",
        "automated",
        "order_in_conv",
        "order_without_conv",
    ] {
        assert!(flags.contains(f), "{f} never generated");
    }
}

#[test]
fn event_ids_are_unique_per_tenant() {
    let mut seen = HashSet::new();
    let mut tenants = BTreeSet::new();
    for e in events() {
        let key = (e["tenant_id"].to_string(), e["event_id"].to_string());
        assert!(seen.insert(key), "duplicate event_id: {e}");
        tenants.insert(e["tenant_id"].to_string());
    }
    assert_eq!(tenants.len(), 3);
}

#[test]
fn output_is_in_time_order_with_both_offset_styles_and_precisions() {
    let mut last = i64::MIN;
    let (mut zulu, mut offset, mut millis, mut micros) = (0, 0, 0, 0);
    for e in events() {
        let at = e["occurred_at"].as_str().unwrap_or_default();
        let t = DateTime::parse_from_rfc3339(at).expect("rfc3339").timestamp_micros();
        assert!(t >= last, "out of order at {e}");
        last = t;
        if at.ends_with('Z') {
            zulu += 1;
        } else {
            offset += 1;
        }
        let frac = at
            .split('.')
            .nth(1)
            .map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
        match frac {
            3 => millis += 1,
            6 => micros += 1,
            _ => panic!("unexpected precision: {at}"),
        }
    }
    assert!(zulu > 0 && offset > 0 && millis > 0 && micros > 0);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = GenConfig::demo_with(5, 2, 400.0);
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let sa = generate(&cfg, &mut a).expect("generate");
    generate(&cfg, &mut b).expect("generate");
    generate(&GenConfig { seed: 6, ..cfg.clone() }, &mut c).expect("generate");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(sa.bytes as usize, a.len());
    assert_eq!(sa.events as usize, a.iter().filter(|b| **b == b'\n').count());
    assert_eq!(sa.by_type.iter().sum::<u64>(), sa.events);
    assert_eq!(sa.by_tenant.iter().sum::<u64>(), sa.events);
}

#[test]
fn day_chunks_are_sorted_and_add_up_to_the_stream() {
    let cfg = GenConfig::demo_with(3, 3, 600.0);
    let mut whole = Vec::new();
    let stats = generate(&cfg, &mut whole).expect("generate");
    let mut whole: Vec<String> = String::from_utf8(whole)
        .expect("utf8")
        .lines()
        .map(str::to_owned)
        .collect();
    let mut chunks = Vec::new();
    let mut day_stats = datagen::GenStats::default();
    // Out of order on purpose: days are independent.
    for d in [2, 0, 1] {
        let mut last = i64::MIN;
        let s = generate_day(&cfg, d, &mut |line: &str| {
            let e: Value = serde_json::from_str(line).expect("json");
            let t = DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap_or_default())
                .expect("rfc3339")
                .timestamp_micros();
            assert!(t >= last, "chunk {d} out of order");
            last = t;
            chunks.push(line.to_owned());
        })
        .expect("generate_day");
        day_stats.merge(&s);
    }
    assert_eq!(day_stats.events, stats.events);
    assert_eq!(day_stats.by_type, stats.by_type);
    whole.sort();
    chunks.sort();
    assert_eq!(whole, chunks);
    // The iterator gives the same lines as `generate`.
    let mut iter_lines: Vec<String> = datagen::Generator::new(&cfg).expect("config").collect();
    iter_lines.sort();
    assert_eq!(iter_lines, whole);
}

#[test]
fn invalid_configs_are_refused() {
    let empty = GenConfig {
        tenants: Vec::new(),
        ..GenConfig::demo()
    };
    assert!(datagen::Generator::new(&empty).is_err());
    let mut bad_id = GenConfig::demo_with(1, 1, 10.0);
    bad_id.tenants[0].tenant_id = "Not Valid".into();
    let err = generate(&bad_id, &mut Vec::new()).expect_err("bad tenant id");
    assert!(err.to_string().contains("Not Valid"), "{err}");
    let mut bad_team = GenConfig::demo_with(1, 1, 10.0);
    bad_team.tenants[1].queues[0].team = "nobody".into();
    assert!(generate_day(&bad_team, 0, &mut |_| {}).is_err());
}
