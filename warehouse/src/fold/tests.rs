//! The fold against the view, row for row and column for column.

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ingest::decode::{DecodeLimits, decode_events};
use ingest::schema::{events_schema, events_to_batch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::*;

const DAY_US: i64 = 86_400_000_000;

fn settings(window_days: i64) -> FoldSettings {
    FoldSettings {
        attribution_window_us: window_days * DAY_US,
        sla_target_us: 120_000_000,
        now_us: Utc::now().timestamp_micros(),
    }
}

fn batch_of(ndjson: &[u8]) -> RecordBatch {
    let decoded = decode_events(ndjson, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    events_to_batch(decoded.events.iter().map(|(_, e)| e))
}

/// A session with `batches` as `events` and every view of `sql/views/`.
fn views_over(batches: &[RecordBatch]) -> SessionContext {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(events_schema(), vec![batches.to_vec()]).unwrap();
    ctx.register_table("events", Arc::new(table)).unwrap();
    crate::views::register_views(&ctx).unwrap();
    ctx
}

/// The view's rows over `batches`, with the attribution window of
/// `window_days`, by tenant and conversation.
async fn view_rows(batches: &[RecordBatch], window_days: i64) -> RecordBatch {
    let ctx = views_over(batches);
    if window_days != 7 {
        ctx.sql(&format!(
            "CREATE OR REPLACE VIEW tenant_settings AS SELECT INTERVAL '{window_days} days' AS attribution_window, \
             CAST(120000000 AS BIGINT) AS sla_target_us, 'UTC' AS time_zone"
        ))
        .await
        .unwrap();
        for (name, sql) in crate::views::VIEWS.iter().skip(1) {
            ctx.deregister_table(*name).unwrap();
            ctx.sql(sql).await.unwrap();
        }
    }
    let batches = ctx
        .sql("SELECT * FROM conversations ORDER BY tenant_id, conversation_id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let schema = conversations_schema().unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// The rows of `sql` over the views of `batches`, cells rendered and
/// joined with `|` (floats to 6 places).
async fn view_lines(batches: &[RecordBatch], sql: &str) -> Vec<String> {
    let ctx = views_over(batches);
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
        let columns: Vec<_> = b
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Float64 => Arc::new(StringArray::from(
                    c.as_primitive::<Float64Type>()
                        .iter()
                        .map(|v| v.map(|v| format!("{v:.6}")))
                        .collect::<Vec<_>>(),
                )) as ArrayRef,
                _ => c.clone(),
            })
            .collect();
        let formatters: Vec<_> = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// The turns, replying agents and scripts of the fold against the
/// `messages` and `script_uses` views.
async fn assert_message_facts_are_the_views(batches: &[RecordBatch], folded: &Folded, what: &str) {
    let ids = folded
        .rows
        .column_by_name("conversation_id")
        .unwrap()
        .as_string::<i32>();
    let tenants = folded.rows.column_by_name("tenant_id").unwrap().as_string::<i32>();
    let (mut turns, mut agents, mut scripts) = (Vec::new(), Vec::new(), Vec::new());
    for (r, m) in folded.messages.iter().enumerate() {
        let (t, c) = (tenants.value(r), ids.value(r));
        for (wait, by) in &m.turns {
            let by = match by {
                Replier::Bot => "bot",
                Replier::Agent => "agent",
            };
            turns.push(format!("{t}|{c}|{wait:.6}|{by}"));
        }
        agents.extend(m.replying_agents.iter().map(|a| format!("{t}|{c}|{a}")));
        scripts.extend(m.scripts.iter().map(|(k, key)| format!("{t}|{c}|{}|{key}", k.name())));
    }
    let view_turns = view_lines(
        batches,
        "SELECT tenant_id, conversation_id, turn_response_s, turn_reply_sender FROM messages \
         WHERE turn_response_s IS NOT NULL AND conversation_id IS NOT NULL \
         ORDER BY tenant_id, conversation_id, occurred_at, event_id",
    )
    .await;
    assert_eq!(turns, view_turns, "{what}: turns");
    let view_agents = view_lines(
        batches,
        "SELECT tenant_id, conversation_id, agent_id FROM messages \
         WHERE is_reply AND sender = 'agent' AND agent_id IS NOT NULL AND conversation_id IS NOT NULL \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    assert_eq!(agents, view_agents, "{what}: replying agents");
    let view_scripts = view_lines(
        batches,
        "SELECT tenant_id, conversation_id, kind, \"key\" FROM script_uses \
         WHERE conversation_id IS NOT NULL ORDER BY 1, 2, 3, 4",
    )
    .await;
    assert_eq!(scripts, view_scripts, "{what}: scripts");
}

/// The fold's orders against the `orders` view (default window).
async fn assert_orders_are_the_view(batches: &[RecordBatch], folded: &Folded, what: &str) {
    let mut orders: Vec<&FoldedOrder> = folded.orders.iter().collect();
    orders.sort_by(|a, b| (&a.tenant_id, &a.order_id).cmp(&(&b.tenant_id, &b.order_id)));
    let null = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let lines: Vec<String> = orders
        .iter()
        .map(|o| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}",
                o.tenant_id,
                null(&o.order_id),
                o.placed_us,
                null(&o.customer_id),
                null(&o.attributed_conversation_id),
                null(&o.currency),
                o.net_amount.map_or("NULL".into(), |n| format!("{n:.6}"))
            )
        })
        .collect();
    let view = view_lines(
        batches,
        "SELECT tenant_id, order_id, arrow_cast(placed_at, 'Int64'), customer_id, attributed_conversation_id, \
         currency, CAST(net_amount AS DOUBLE) FROM orders ORDER BY tenant_id, order_id",
    )
    .await;
    assert_eq!(lines, view, "{what}: orders");
}

async fn assert_fold_is_the_view(batches: &[RecordBatch], window_days: i64, what: &str) -> usize {
    let view = view_rows(batches, window_days).await;
    let folded = fold_with_messages(batches, settings(window_days)).unwrap();
    assert_message_facts_are_the_views(batches, &folded, what).await;
    if window_days == 7 {
        assert_orders_are_the_view(batches, &folded, what).await;
    }
    let folded = folded.rows;
    let diff = differences(&view, &folded);
    assert!(
        diff.is_empty(),
        "{what}: {} differences, the first:\n{}",
        diff.len(),
        diff[..diff.len().min(30)].join("\n")
    );
    view.num_rows()
}

#[tokio::test]
async fn the_fold_is_the_view_on_every_fixture_of_the_sql_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures in {}", dir.display());
    let mut rows = 0;
    for path in &files {
        let batch = batch_of(&std::fs::read(path).unwrap());
        for window in [7, 2] {
            rows += assert_fold_is_the_view(std::slice::from_ref(&batch), window, &path.display().to_string()).await;
        }
    }
    assert!(rows > 50, "{rows} rows compared");
}

#[tokio::test]
async fn the_fold_is_the_view_on_a_generated_fortnight() {
    let mut cfg = datagen::GenConfig::demo_with(11, 14, 60.0);
    // A day clocks change on in Europe, so local timestamps and DST meet.
    cfg.start = NaiveDate::from_ymd_opt(2026, 3, 22).unwrap();
    let mut ndjson = Vec::new();
    datagen::generate(&cfg, &mut ndjson).unwrap();
    let batch = batch_of(&ndjson);
    // In several batches, out of time order, as a lake scan hands them over.
    let n = batch.num_rows();
    let batches: Vec<RecordBatch> = (0..4)
        .rev()
        .map(|i| batch.slice(i * n / 4, (i + 1) * n / 4 - i * n / 4))
        .collect();
    let rows = assert_fold_is_the_view(&batches, 7, "generated").await;
    assert!(rows > 500, "{rows} conversations");
}

/// Random events of a few conversations and customers: random types,
/// ties in time, missing fields, orders with and without a conversation,
/// refunds, reopenings, repeated events.
fn random_events(rng: &mut StdRng, tenant: &str, n: usize) -> Vec<Value> {
    let base = DateTime::parse_from_rfc3339("2026-03-28T22:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_string();
    let maybe = |rng: &mut StdRng, xs: &[&str]| -> Option<String> {
        rng.random_bool(0.75)
            .then(|| xs[rng.random_range(0..xs.len())].to_string())
    };
    let mut out = Vec::new();
    for i in 0..n {
        // minutes apart, often equal, over about ten days
        let at = base + Duration::minutes(rng.random_range(0..14_400) / 30 * 30);
        let conv = format!("k{}", rng.random_range(0..8));
        let customer = maybe(rng, &["u1", "u2", "u3"]);
        let typ = pick(
            rng,
            &[
                "conversation.started",
                "message.created",
                "message.created",
                "message.created",
                "conversation.assigned",
                "conversation.handoff",
                "conversation.resolved",
                "conversation.reopened",
                "conversation.tagged",
                "csat.requested",
                "csat.submitted",
                "experiment.exposed",
                "order.placed",
                "order.refunded",
            ],
        );
        let mut e = json!({
            "event_id": format!("e{:03}", rng.random_range(0..1000)) + &format!("-{i}"),
            "tenant_id": tenant,
            "type": typ,
            "occurred_at": at.to_rfc3339(),
        });
        let o = e.as_object_mut().unwrap();
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.to_string(), v);
            }
        };
        let order = typ.starts_with("order.");
        if !order || rng.random_bool(0.4) {
            set("conversation_id", Some(json!(conv)));
        }
        set("customer_id", customer.map(Value::from));
        set("channel", maybe(rng, &["whatsapp", "email"]).map(Value::from));
        set("channel_account", maybe(rng, &["a1", "a2"]).map(Value::from));
        match typ.as_str() {
            "conversation.started" => {
                set("queue", maybe(rng, &["q1", "q2"]).map(Value::from));
                set("language", maybe(rng, &["en", "de"]).map(Value::from));
                set("region", maybe(rng, &["DE", "US"]).map(Value::from));
            }
            "message.created" => {
                set("message_id", Some(json!(format!("m{i}"))));
                let sender = pick(rng, &["customer", "customer", "bot", "agent", "system"]);
                let agent = match sender.as_str() {
                    "agent" => Some(pick(rng, &["a1", "a2"])),
                    _ => None,
                };
                set("sender", Some(json!(sender)));
                set("agent_id", agent.map(Value::from));
                set("private", rng.random_bool(0.2).then(|| json!(rng.random_bool(0.5))));
                set("automated", rng.random_bool(0.2).then(|| json!(rng.random_bool(0.5))));
                set(
                    "ai_suggestion",
                    maybe(rng, &["accepted", "edited", "none"]).map(Value::from),
                );
                set("quick_reply_id", maybe(rng, &["qr1"]).map(Value::from));
            }
            "conversation.assigned" => {
                // at least one of the three, as the contract asks
                set("queue", maybe(rng, &["q1", "q2"]).map(Value::from));
                set("team", maybe(rng, &["t1", "t2"]).map(Value::from));
                set("agent_id", Some(json!(pick(rng, &["a1", "a2"]))));
            }
            "conversation.handoff" => set(
                "reason",
                maybe(rng, &["customer_request", "low_confidence"]).map(Value::from),
            ),
            "conversation.resolved" => {
                set("resolved_by", Some(json!(pick(rng, &["bot", "agent"]))));
                set("agent_id", maybe(rng, &["a1", "a2"]).map(Value::from));
            }
            "conversation.tagged" => set(
                "tags",
                Some(json!(
                    (0..rng.random_range(1..4))
                        .map(|_| pick(rng, &["x", "y", "z"]))
                        .collect::<Vec<_>>()
                )),
            ),
            "csat.submitted" => set("score", Some(json!(rng.random_range(1..=5)))),
            "experiment.exposed" => {
                set("experiment_key", Some(json!(pick(rng, &["greet", "persona"]))));
                set("variant_key", Some(json!(pick(rng, &["a", "b"]))));
            }
            "order.placed" | "order.refunded" => {
                set("order_id", Some(json!(format!("o{}", rng.random_range(0..6)))));
                set(
                    "amount",
                    Some(json!(format!(
                        "{}.{:02}",
                        rng.random_range(1..90),
                        rng.random_range(0..100)
                    ))),
                );
                set("currency", Some(json!(pick(rng, &["EUR", "EUR", "USD"]))));
            }
            _ => {}
        }
        out.push(e);
    }
    out
}

#[tokio::test]
async fn the_fold_is_the_view_on_random_event_sequences() {
    let mut rng = StdRng::seed_from_u64(20261207);
    let mut compared = 0;
    for round in 0..40 {
        let mut lines = Vec::new();
        for tenant in ["t-a", "t-b"] {
            for e in random_events(&mut rng, tenant, 60) {
                lines.extend(serde_json::to_vec(&e).unwrap());
                lines.push(b'\n');
            }
        }
        let decoded = decode_events(&lines, &DecodeLimits::default()).unwrap();
        assert!(
            decoded.rejected.is_empty(),
            "the contract refuses {} of the random events: {:?}",
            decoded.rejected.len(),
            decoded
                .rejected
                .iter()
                .map(|r| (&r.field, &r.reason))
                .collect::<std::collections::BTreeSet<_>>()
        );
        let batch = events_to_batch(decoded.events.iter().map(|(_, e)| e));
        compared += assert_fold_is_the_view(
            std::slice::from_ref(&batch),
            [7, 1][round % 2],
            &format!("random round {round}"),
        )
        .await;
    }
    assert!(compared > 300, "{compared} rows compared");
}
