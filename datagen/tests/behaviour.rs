//! The generated data behaves like a business: evening peak, slower
//! evenings, CSAT falling with waiting, an experiment with a real effect.

use std::collections::HashMap;

use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use datagen::{GenConfig, Generator};
use serde_json::Value;

/// Streams the events of `cfg` into `f` without keeping them.
fn for_each_event(cfg: &GenConfig, mut f: impl FnMut(&Value)) {
    let mut generator = Generator::new(cfg).expect("config");
    let mut buf = String::new();
    while generator.next_chunk(&mut buf) {
        for line in buf.lines() {
            f(&serde_json::from_str(line).expect("json"));
        }
        buf.clear();
    }
}

fn micros(e: &Value) -> i64 {
    DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap_or_default())
        .expect("rfc3339")
        .timestamp_micros()
}

fn local_hour(cfg: &GenConfig, tenant: &str, t_us: i64) -> u32 {
    let tz: Tz = cfg
        .tenants
        .iter()
        .find(|t| t.tenant_id == tenant)
        .map(|t| t.timezone)
        .expect("tenant");
    DateTime::from_timestamp_micros(t_us)
        .expect("time")
        .with_timezone(&tz)
        .hour()
}

#[test]
fn evening_peak_and_slower_evenings() {
    let cfg = GenConfig::demo_with(21, 7, 2000.0);
    let mut arrivals = [0u32; 24];
    let mut handoff_at: HashMap<(String, String), i64> = HashMap::new();
    // Wait from handoff to assignment, by local hour of the handoff.
    let mut waits: Vec<Vec<f64>> = vec![Vec::new(); 24];
    for_each_event(&cfg, |e| {
        let tenant = e["tenant_id"].as_str().unwrap_or_default().to_string();
        let t = micros(e);
        match e["type"].as_str() {
            Some("conversation.started") => arrivals[local_hour(&cfg, &tenant, t) as usize] += 1,
            Some("conversation.handoff") => {
                handoff_at
                    .entry((tenant, e["conversation_id"].to_string()))
                    .or_insert(t);
            }
            Some("conversation.assigned") => {
                if let Some(h) = handoff_at.remove(&(tenant.clone(), e["conversation_id"].to_string())) {
                    waits[local_hour(&cfg, &tenant, h) as usize].push((t - h) as f64 / 1e6);
                }
            }
            _ => {}
        }
    });
    let peak = (0..24).max_by_key(|h| arrivals[*h]).unwrap_or(0);
    assert!((19..=21).contains(&peak), "peak at {peak}: {arrivals:?}");
    assert!(arrivals[20] > 5 * arrivals[4], "{arrivals:?}");
    assert!(arrivals[20] > arrivals[10], "{arrivals:?}");
    let median = |hours: std::ops::Range<usize>| {
        let mut v: Vec<f64> = hours.flat_map(|h| waits[h].iter().copied()).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (day, evening) = (median(10..16), median(19..22));
    assert!(evening > 1.5 * day, "median wait day {day:.0}s, evening {evening:.0}s");
}

#[derive(Default)]
struct Conv {
    customer: String,
    variant: Option<String>,
    handoff: Option<i64>,
    assigned: Option<i64>,
    bot_resolved: bool,
    csat: Option<u64>,
    ordered: bool,
}

/// Conversations of the given config, with attributed orders (explicit
/// `conversation_id`, else the customer's latest conversation started
/// within 7 days before the order).
fn conversations(cfg: &GenConfig) -> HashMap<(String, String), Conv> {
    let mut convs: HashMap<(String, String), Conv> = HashMap::new();
    let mut by_customer: HashMap<(String, String), Vec<(i64, String)>> = HashMap::new();
    let mut orders = Vec::new();
    for_each_event(cfg, |e| {
        let tenant = e["tenant_id"].as_str().unwrap_or_default().to_string();
        let t = micros(e);
        let customer = e["customer_id"].as_str().unwrap_or_default().to_string();
        let conv_id = e["conversation_id"].as_str().map(str::to_owned);
        let ty = e["type"].as_str().unwrap_or_default();
        if ty == "order.placed" {
            orders.push((tenant, customer, t, conv_id));
            return;
        }
        let Some(conv_id) = conv_id else { return };
        let key = (tenant.clone(), conv_id.clone());
        if ty == "conversation.started" {
            by_customer
                .entry((tenant, customer.clone()))
                .or_default()
                .push((t, conv_id));
            convs.insert(
                key,
                Conv {
                    customer,
                    ..Conv::default()
                },
            );
            return;
        }
        let Some(c) = convs.get_mut(&key) else { return };
        match ty {
            "experiment.exposed" => c.variant = e["variant_key"].as_str().map(str::to_owned),
            "conversation.handoff" => {
                c.handoff.get_or_insert(t);
            }
            "conversation.assigned" => {
                c.assigned.get_or_insert(t);
            }
            "conversation.resolved" => c.bot_resolved = e["resolved_by"] == "bot" && c.handoff.is_none(),
            "csat.submitted" => c.csat = e["score"].as_u64(),
            _ => {}
        }
    });
    for (tenant, customer, t, conv_id) in orders {
        let target = conv_id.or_else(|| {
            by_customer.get(&(tenant.clone(), customer)).and_then(|list| {
                list.iter()
                    .filter(|(s, _)| *s <= t && t - *s <= 7 * 86_400_000_000)
                    .max()
                    .map(|(_, c)| c.clone())
            })
        });
        if let Some(c) = target.and_then(|c| convs.get_mut(&(tenant, c))) {
            c.ordered = true;
        }
    }
    convs
}

#[test]
fn experiment_has_a_real_effect_and_assignment_is_per_customer() {
    let cfg = GenConfig::demo_with(33, 7, 4000.0);
    let convs = conversations(&cfg);
    let exp = cfg.experiment.as_ref().expect("experiment");
    let weights: Vec<f64> = exp.variants.iter().map(|v| v.weight).collect();
    let mut per_variant: HashMap<&str, (u32, u32)> = HashMap::new();
    for c in convs.values() {
        let Some(v) = c.variant.as_deref() else { continue };
        let expected = experiments::assign_variant(&exp.assignment_seed, &c.customer, &weights);
        assert_eq!(v, exp.variants[expected].key, "customer {}", c.customer);
        let entry = per_variant
            .entry(if v == "friendly" { "friendly" } else { "control" })
            .or_default();
        entry.0 += 1;
        entry.1 += c.ordered as u32;
    }
    let rate = |k: &str| {
        let (n, o) = per_variant[k];
        (n, o as f64 / n as f64)
    };
    let ((n_c, control), (n_f, friendly)) = (rate("control"), rate("friendly"));
    assert!(n_c > 5000 && n_f > 5000, "{n_c} / {n_f} exposed conversations");
    let ratio = n_c as f64 / (n_c + n_f) as f64;
    assert!((0.46..0.54).contains(&ratio), "split {ratio}");
    let lift = friendly - control;
    assert!(
        lift > 0.01 && lift < 0.035,
        "control {control:.4}, friendly {friendly:.4}"
    );
}

#[test]
fn csat_falls_with_waiting_and_bots_resolve_about_half() {
    let cfg = GenConfig::demo_with(8, 5, 2000.0);
    let convs = conversations(&cfg);
    let mean = |f: &dyn Fn(&Conv) -> bool| {
        let v: Vec<f64> = convs
            .values()
            .filter(|c| f(c))
            .filter_map(|c| c.csat)
            .map(|s| s as f64)
            .collect();
        assert!(v.len() > 50, "too few scores");
        v.iter().sum::<f64>() / v.len() as f64
    };
    let waited = |c: &Conv| match (c.handoff, c.assigned) {
        (Some(h), Some(a)) => Some((a - h) as f64 / 1e6),
        _ => None,
    };
    let quick_bot = mean(&|c| c.bot_resolved);
    let short_wait = mean(&|c| waited(c).is_some_and(|w| w < 120.0));
    let long_wait = mean(&|c| waited(c).is_some_and(|w| w > 1800.0));
    assert!(
        quick_bot > short_wait && short_wait > long_wait + 0.5,
        "{quick_bot} {short_wait} {long_wait}"
    );
    let with_bot = convs.values().filter(|c| c.variant.is_some()).count() as f64;
    let bot_resolved = convs.values().filter(|c| c.bot_resolved).count() as f64;
    let share = bot_resolved / with_bot;
    assert!((0.35..0.65).contains(&share), "bot resolution share {share}");
}
