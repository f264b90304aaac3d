use serde_json::json;

use super::*;

fn base(t: &str) -> Value {
    json!({
        "event_id": "e1",
        "tenant_id": "acme",
        "type": t,
        "occurred_at": "2026-03-01T09:30:00.250+08:00",
        "conversation_id": "c1",
        "customer_id": "cus_1",
        "channel": "whatsapp",
        "channel_account": "+8613800000000",
    })
}

fn with(mut v: Value, fields: Value) -> Value {
    if let (Value::Object(o), Value::Object(f)) = (&mut v, fields) {
        o.extend(f);
    }
    v
}

fn errors(v: &Value) -> Vec<(String, String)> {
    match Event::from_json(v) {
        Ok(e) => panic!("expected rejection, got {e:?}"),
        Err(errs) => errs.into_iter().map(|e| (e.field, e.reason)).collect(),
    }
}

fn fields(v: &Value) -> Vec<String> {
    errors(v).into_iter().map(|(f, _)| f).collect()
}

#[test]
fn a_minimal_event_of_every_type_is_accepted() {
    let extra = |t: EventType| match t {
        EventType::MessageCreated => json!({"sender": "customer"}),
        EventType::ConversationAssigned => json!({"agent_id": "a1"}),
        EventType::ConversationResolved => json!({"resolved_by": "bot"}),
        EventType::ConversationTagged => json!({"tags": ["refund_request"]}),
        EventType::CsatSubmitted => json!({"score": 5}),
        EventType::OrderPlaced | EventType::OrderRefunded => {
            json!({"order_id": "o1", "amount": 19.99, "currency": "EUR"})
        }
        EventType::AgentStatusChanged => json!({"agent_id": "a1", "status": "online"}),
        EventType::ExperimentExposed => json!({"experiment_key": "greet", "variant_key": "b"}),
        EventType::CostIncurred => json!({"cost_kind": "sms", "amount": "0.05", "currency": "USD"}),
        _ => json!({}),
    };
    for &t in EventType::ALL {
        let v = with(base(t.as_str()), extra(t));
        let e = Event::from_json(&v).unwrap_or_else(|errs| panic!("{t}: {errs:?}"));
        assert_eq!(e.event_type, t);
        assert!(e.attrs.is_empty(), "{t}: nothing should land in attrs, got {}", e.attrs);
    }
}

#[test]
fn timestamps_become_utc_microseconds() {
    let e = Event::from_json(&base("conversation.reopened")).unwrap_or_default();
    // 09:30:00.250 at +08:00 is 01:30:00.250 UTC.
    assert_eq!(e.occurred_at_us, 1_772_328_600_250_000);
}

#[test]
fn timestamps_without_offset_or_malformed_are_rejected() {
    for bad in ["2026-03-01T09:30:00", "2026-03-01", "yesterday", "2026-13-01T00:00:00Z"] {
        let v = with(base("csat.requested"), json!({"occurred_at": bad}));
        assert_eq!(fields(&v), vec!["occurred_at"], "{bad}");
    }
    let v = with(base("csat.requested"), json!({"occurred_at": 1700000000}));
    assert!(errors(&v)[0].1.contains("RFC 3339 string"));
}

#[test]
fn envelope_requirements() {
    let mut v = base("conversation.started");
    if let Value::Object(o) = &mut v {
        o.remove("event_id");
        o.remove("tenant_id");
        o.remove("occurred_at");
    }
    assert_eq!(fields(&v), vec!["event_id", "tenant_id", "occurred_at"]);

    let v = with(base("conversation.started"), json!({"tenant_id": "Acme Corp"}));
    assert_eq!(fields(&v), vec!["tenant_id"]);
    let v = with(base("conversation.started"), json!({"tenant_id": "a".repeat(65)}));
    assert_eq!(fields(&v), vec!["tenant_id"]);
    let v = with(base("conversation.started"), json!({"event_id": ""}));
    assert_eq!(fields(&v), vec!["event_id"]);
    let v = with(base("conversation.started"), json!({"event_id": "x".repeat(129)}));
    assert_eq!(fields(&v), vec!["event_id"]);
    let v = with(base("conversation.started"), json!({"event_id": 42}));
    assert!(errors(&v)[0].1.contains("must be a string, got a number"));
}

#[test]
fn unknown_type_and_channel_list_what_is_accepted() {
    let errs = errors(&base("conversation.exploded"));
    assert_eq!(errs[0].0, "type");
    assert!(errs[0].1.contains("conversation.started"), "{}", errs[0].1);
    let errs = errors(&with(base("csat.requested"), json!({"channel": "telegram"})));
    assert_eq!(errs[0].0, "channel");
    assert!(errs[0].1.contains("whatsapp") && errs[0].1.contains("\"telegram\""));
}

#[test]
fn conversation_id_required_where_the_contract_says() {
    for t in [
        "conversation.started",
        "message.created",
        "csat.submitted",
        "experiment.exposed",
    ] {
        let mut v = with(
            base(t),
            json!({"sender": "customer", "score": 4, "experiment_key": "k", "variant_key": "v"}),
        );
        if let Value::Object(o) = &mut v {
            o.remove("conversation_id");
        }
        assert!(fields(&v).contains(&"conversation_id".to_string()), "{t}");
    }
    let mut v = with(
        base("order.placed"),
        json!({"order_id": "o1", "amount": 10, "currency": "EUR"}),
    );
    if let Value::Object(o) = &mut v {
        o.remove("conversation_id");
    }
    assert!(Event::from_json(&v).is_ok(), "orders may come without a conversation");
}

#[test]
fn conversation_started_fields() {
    let ok = with(
        base("conversation.started"),
        json!({"language": "zh-CN", "region": "cn", "timezone": "Asia/Shanghai", "customer_tier": "vip", "queue": "pre_sales", "source": "ad"}),
    );
    let e = Event::from_json(&ok).unwrap_or_default();
    assert_eq!(e.region.as_deref(), Some("CN"), "region is normalized to upper case");
    assert_eq!(e.customer_tier, Some(CustomerTier::Vip));
    let bad = with(
        base("conversation.started"),
        json!({"language": "english!", "region": "DEU", "timezone": "Mars/Olympus", "customer_tier": "gold"}),
    );
    assert_eq!(fields(&bad), vec!["language", "region", "timezone", "customer_tier"]);
}

#[test]
fn message_fields() {
    let v = with(base("message.created"), json!({"sender": "agent"}));
    assert_eq!(fields(&v), vec!["agent_id"], "an agent message names its agent");
    let v = with(
        base("message.created"),
        json!({"sender": "robot", "private": "yes", "chars": -1, "ai_suggestion": "maybe"}),
    );
    assert_eq!(fields(&v), vec!["sender", "private", "ai_suggestion", "chars"]);
    let v = with(
        base("message.created"),
        json!({"sender": "agent", "agent_id": "a1", "private": true, "automated": false, "template_id": "t1", "quick_reply_id": "q1", "ai_suggestion": "edited", "chars": 120}),
    );
    let e = Event::from_json(&v).unwrap_or_default();
    assert_eq!((e.private, e.automated, e.chars), (Some(true), Some(false), Some(120)));
    assert_eq!(e.ai_suggestion, Some(AiSuggestion::Edited));
    let v = with(base("message.created"), json!({"sender": "bot", "chars": 1.5}));
    assert!(errors(&v)[0].1.contains("must be an integer"));
}

#[test]
fn csat_score_range() {
    for bad in [json!(0), json!(6), json!(4.5), json!("5")] {
        let v = with(base("csat.submitted"), json!({"score": bad}));
        assert_eq!(fields(&v), vec!["score"], "{bad}");
    }
    let v = base("csat.submitted");
    assert_eq!(fields(&v), vec!["score"]);
}

#[test]
fn money_is_exact_decimal() {
    let v = with(
        base("order.placed"),
        json!({"order_id": "o1", "amount": 19.99, "currency": "EUR"}),
    );
    assert_eq!(Event::from_json(&v).unwrap_or_default().amount_scaled, Some(19_990_000));
    let v = with(
        base("order.placed"),
        json!({"order_id": "o1", "amount": "1234567.0001", "currency": "CNY"}),
    );
    assert_eq!(
        Event::from_json(&v).unwrap_or_default().amount_scaled,
        Some(1_234_567_000_100)
    );
    for bad in [
        json!(-5),
        json!("1.2345678"),
        json!("1e3"),
        json!("abc"),
        json!(true),
        json!("12."),
    ] {
        let v = with(
            base("order.placed"),
            json!({"order_id": "o1", "amount": bad, "currency": "EUR"}),
        );
        assert_eq!(fields(&v), vec!["amount"], "{bad}");
    }
    let v = with(
        base("order.placed"),
        json!({"order_id": "o1", "amount": 1, "currency": "eur"}),
    );
    assert_eq!(fields(&v), vec!["currency"]);
    let v = base("order.refunded");
    assert_eq!(fields(&v), vec!["order_id", "amount", "currency"]);
}

#[test]
fn amount_round_trips_through_text() {
    for (text, scaled) in [
        ("0", 0),
        ("0.5", 500_000),
        ("19.99", 19_990_000),
        ("100", 100_000_000),
        ("0.000001", 1),
    ] {
        assert_eq!(parse_amount_scaled(text), Ok(scaled));
        assert_eq!(format_amount(scaled), text);
    }
    assert!(parse_amount_scaled("99999999999999999999").is_err());
}

#[test]
fn tags_must_be_a_list_of_strings() {
    assert_eq!(
        fields(&with(base("conversation.tagged"), json!({"tags": []}))),
        vec!["tags"]
    );
    assert_eq!(
        fields(&with(base("conversation.tagged"), json!({"tags": "vip"}))),
        vec!["tags"]
    );
    assert_eq!(
        fields(&with(base("conversation.tagged"), json!({"tags": ["ok", 3, ""]}))),
        vec!["tags[1]", "tags[2]"]
    );
}

#[test]
fn agent_status_and_experiment_and_cost() {
    assert_eq!(
        fields(&with(base("agent.status_changed"), json!({"status": "busy"}))),
        vec!["agent_id", "status"]
    );
    assert_eq!(
        fields(&base("experiment.exposed")),
        vec!["experiment_key", "variant_key"]
    );
    assert_eq!(
        fields(&with(
            base("cost.incurred"),
            json!({"cost_kind": "coffee", "amount": 1, "currency": "USD"})
        )),
        vec!["cost_kind"]
    );
}

#[test]
fn unknown_fields_and_foreign_fields_are_kept_in_attrs() {
    let v = with(
        base("message.created"),
        json!({"sender": "customer", "browser": "Safari", "score": 5, "attrs": {"campaign": "spring", "n": 3}}),
    );
    let e = Event::from_json(&v).unwrap_or_default();
    let attrs: Value = serde_json::from_str(&e.attrs).unwrap_or_default();
    assert_eq!(
        attrs,
        json!({"browser": "Safari", "score": 5, "campaign": "spring", "n": 3})
    );
    assert_eq!(e.score, None, "score does not belong to message.created");
}

#[test]
fn attrs_values_must_be_scalars() {
    let v = with(base("csat.requested"), json!({"attrs": {"nested": {"a": 1}}}));
    assert_eq!(fields(&v), vec!["attrs.nested"]);
    let v = with(base("csat.requested"), json!({"attrs": [1, 2]}));
    assert_eq!(fields(&v), vec!["attrs"]);
}

#[test]
fn non_objects_are_rejected() {
    for v in [json!([1]), json!("event"), json!(null), json!(3)] {
        assert_eq!(fields(&v), vec![""]);
    }
}

#[test]
fn every_problem_of_an_event_is_reported_at_once() {
    let v = json!({"event_id": "", "tenant_id": "UPPER", "type": "csat.submitted", "occurred_at": "now", "score": 9});
    assert_eq!(
        fields(&v),
        vec!["event_id", "tenant_id", "occurred_at", "conversation_id", "score"]
    );
}

#[test]
fn canonical_form_round_trips() {
    let v = with(
        base("order.placed"),
        json!({"order_id": "o1", "amount": "12.5", "currency": "EUR", "extra": "kept"}),
    );
    let e = Event::from_json(&v).unwrap_or_default();
    let text = serde_json::to_string(&e).unwrap_or_default();
    let back: Event = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(back, e);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(s in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = Event::from_json(&v);
            }
        }

        #[test]
        fn valid_tenant_ids_are_accepted_and_others_rejected(t in "[a-z0-9_-]{1,64}", bad in "[A-Z .!]{1,10}") {
            prop_assert!(model::TenantId::is_valid(&t));
            prop_assert!(!model::TenantId::is_valid(&bad));
        }

        #[test]
        fn amounts_round_trip(int in 0u64..100_000_000_000, frac in 0u32..10_000) {
            let text = if frac == 0 { int.to_string() } else { format!("{int}.{frac:04}") };
            let scaled = parse_amount_scaled(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(scaled, int as i64 * 1_000_000 + i64::from(frac) * 100);
            prop_assert_eq!(parse_amount_scaled(&format_amount(scaled)), Ok(scaled));
        }

        #[test]
        fn any_scores_in_range_accepted(score in 1i64..=5, off in prop::sample::select(vec![-3i64, 0, 6, 100])) {
            let ok = with(base("csat.submitted"), json!({"score": score}));
            prop_assert!(Event::from_json(&ok).is_ok());
            let bad = with(base("csat.submitted"), json!({"score": off}));
            prop_assert!(Event::from_json(&bad).is_err());
        }
    }
}
