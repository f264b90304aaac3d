//! Chatwoot webhooks → contract-v1 events.
//!
//! Chatwoot posts one JSON object per event to a configured URL. This
//! module maps the events that carry service facts onto the contract; the
//! result goes through the same validation ([`Event::from_json`]) and the
//! same durable path as every other event.
//!
//! | Chatwoot `event` | contract type |
//! |---|---|
//! | `conversation_created` | `conversation.started` |
//! | `message_created` | `message.created` (`incoming` → customer; `outgoing` by a user → agent, by an agent bot → bot; `template` → bot, automated; `activity` → system) |
//! | `conversation_status_changed` to `resolved` | `conversation.resolved` |
//! | `conversation_status_changed` from `resolved` to `open` | `conversation.reopened` |
//! | `conversation_updated` with a new assignee | `conversation.assigned` |
//!
//! Everything else (typing indicators, contact updates, ...) is ignored,
//! and said so in the answer. Event ids are derived from Chatwoot's ids and
//! timestamps, so a webhook retried by Chatwoot is deduplicated like any
//! retried event.

use serde_json::{Map, Value, json};

use crate::contract::{Event, FieldError};

/// What became of one webhook.
#[derive(Debug)]
pub enum Mapped {
    Event(Box<Event>),
    /// Not a service fact cxlake keeps; the string says which event it was.
    Ignored(String),
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Chatwoot sends times as Unix seconds, RFC 3339 or `2020-03-03 13:05:57 UTC`.
fn timestamp(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            let dt = chrono::DateTime::from_timestamp_micros((secs * 1e6).round() as i64)?;
            Some(dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }
        Value::String(s) => {
            if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
                return Some(s.clone());
            }
            let trimmed = s.trim_end_matches(" UTC");
            let naive = chrono::NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f").ok()?;
            Some(naive.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }
        _ => None,
    }
}

fn channel(chatwoot_channel: &str) -> &'static str {
    match chatwoot_channel {
        "Channel::WebWidget" => "webchat",
        "Channel::Whatsapp" => "whatsapp",
        "Channel::FacebookPage" => "messenger",
        "Channel::Instagram" => "instagram",
        "Channel::Line" => "line",
        "Channel::Email" => "email",
        "Channel::Sms" | "Channel::TwilioSms" => "sms",
        "Channel::Voice" => "voice",
        _ => "other",
    }
}

/// The conversation object: the payload itself for conversation events,
/// `payload.conversation` for message events.
fn envelope(tenant: &str, conversation: &Value, out: &mut Map<String, Value>) {
    out.insert("tenant_id".into(), json!(tenant));
    if let Some(id) = id_text(&conversation["id"]) {
        out.insert("conversation_id".into(), json!(format!("cw-{id}")));
    }
    if let Some(c) = conversation["channel"].as_str() {
        out.insert("channel".into(), json!(channel(c)));
    }
    if let Some(inbox) = id_text(&conversation["inbox_id"]) {
        out.insert("channel_account".into(), json!(format!("inbox-{inbox}")));
    }
    let contact = id_text(&conversation["contact_inbox"]["contact_id"])
        .or_else(|| id_text(&conversation["meta"]["sender"]["id"]));
    if let Some(c) = contact {
        out.insert("customer_id".into(), json!(format!("cw-contact-{c}")));
    }
}

/// Maps one webhook body. `Err` carries field errors for the answer.
pub fn map_webhook(tenant: &str, payload: &Value) -> Result<Mapped, Vec<FieldError>> {
    let err = |field: &str, reason: &str| vec![FieldError::new(field, reason)];
    let Some(kind) = payload["event"].as_str() else {
        return Err(err("event", "a Chatwoot webhook names its event"));
    };
    let mut out = Map::new();
    match kind {
        "conversation_created" => {
            envelope(tenant, payload, &mut out);
            let id = id_text(&payload["id"]).ok_or_else(|| err("id", "conversation id missing"))?;
            out.insert("event_id".into(), json!(format!("cw-conv-{id}-created")));
            out.insert("type".into(), json!("conversation.started"));
            let at = timestamp(payload.get("created_at"))
                .or_else(|| timestamp(payload.get("timestamp")))
                .ok_or_else(|| err("created_at", "missing or unreadable"))?;
            out.insert("occurred_at".into(), json!(at));
            out.insert("source".into(), json!("chatwoot"));
        }
        "message_created" => {
            let conversation = &payload["conversation"];
            envelope(tenant, conversation, &mut out);
            let id = id_text(&payload["id"]).ok_or_else(|| err("id", "message id missing"))?;
            out.insert("event_id".into(), json!(format!("cw-msg-{id}")));
            out.insert("type".into(), json!("message.created"));
            out.insert("message_id".into(), json!(format!("cw-{id}")));
            let at = timestamp(payload.get("created_at")).ok_or_else(|| err("created_at", "missing or unreadable"))?;
            out.insert("occurred_at".into(), json!(at));
            let sender_type = payload["sender"]["type"].as_str().unwrap_or("");
            let (sender, automated) = match (payload["message_type"].as_str().unwrap_or(""), sender_type) {
                ("incoming", _) => ("customer", false),
                ("outgoing", "agent_bot") => ("bot", false),
                ("outgoing", _) => ("agent", false),
                ("template", _) => ("bot", true),
                ("activity", _) => ("system", true),
                (other, _) => return Err(err("message_type", &format!("unknown message_type {other:?}"))),
            };
            out.insert("sender".into(), json!(sender));
            if automated {
                out.insert("automated".into(), json!(true));
            }
            if sender == "agent" {
                let agent = id_text(&payload["sender"]["id"]).unwrap_or_else(|| "unknown".into());
                out.insert("agent_id".into(), json!(format!("cw-user-{agent}")));
            }
            if let Some(p) = payload["private"].as_bool() {
                out.insert("private".into(), json!(p));
            }
            if let Some(text) = payload["content"].as_str() {
                out.insert("chars".into(), json!(text.chars().count()));
            }
        }
        "conversation_status_changed" | "conversation_updated" => {
            envelope(tenant, payload, &mut out);
            let id = id_text(&payload["id"]).ok_or_else(|| err("id", "conversation id missing"))?;
            let at = timestamp(payload.get("updated_at"))
                .or_else(|| timestamp(payload.get("timestamp")))
                .or_else(|| timestamp(payload.get("last_activity_at")))
                .ok_or_else(|| err("updated_at", "missing or unreadable"))?;
            let changed = |attr: &str| -> Option<(Value, Value)> {
                payload["changed_attributes"].as_array()?.iter().find_map(|c| {
                    let ch = c.get(attr)?;
                    Some((ch["previous_value"].clone(), ch["current_value"].clone()))
                })
            };
            let status = payload["status"].as_str().unwrap_or("");
            let previous_status = changed("status").and_then(|(p, _)| p.as_str().map(String::from));
            if kind == "conversation_status_changed" && status == "resolved" {
                out.insert("type".into(), json!("conversation.resolved"));
                out.insert("resolved_by".into(), json!("agent"));
                if let Some(a) = id_text(&payload["meta"]["assignee"]["id"]) {
                    out.insert("agent_id".into(), json!(format!("cw-user-{a}")));
                }
            } else if kind == "conversation_status_changed"
                && status == "open"
                && previous_status.as_deref() == Some("resolved")
            {
                out.insert("type".into(), json!("conversation.reopened"));
            } else if let Some((_, current)) = changed("assignee_id").filter(|(_, c)| !c.is_null()) {
                out.insert("type".into(), json!("conversation.assigned"));
                let agent = id_text(&current).unwrap_or_default();
                out.insert("agent_id".into(), json!(format!("cw-user-{agent}")));
                if let Some(team) = payload["meta"]["team"]["name"].as_str() {
                    out.insert("team".into(), json!(team));
                }
            } else {
                return Ok(Mapped::Ignored(format!("{kind} (status {status:?})")));
            }
            let t = out["type"].as_str().unwrap_or("").to_string();
            out.insert("event_id".into(), json!(format!("cw-conv-{id}-{t}-{at}")));
            out.insert("occurred_at".into(), json!(at));
        }
        other => return Ok(Mapped::Ignored(other.to_string())),
    }
    Event::from_json(&Value::Object(out)).map(|e| Mapped::Event(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(v: Value) -> Event {
        match map_webhook("acme", &v) {
            Ok(Mapped::Event(e)) => *e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn conversation_created_starts_a_conversation() {
        let e = event(json!({
            "event": "conversation_created", "id": 42, "inbox_id": 3, "channel": "Channel::Whatsapp",
            "created_at": 1772000000, "contact_inbox": {"contact_id": 9}, "status": "open"
        }));
        assert_eq!(e.event_type, crate::EventType::ConversationStarted);
        assert_eq!(e.conversation_id.as_deref(), Some("cw-42"));
        assert_eq!(e.customer_id.as_deref(), Some("cw-contact-9"));
        assert_eq!(e.channel, Some(crate::contract::Channel::Whatsapp));
        assert_eq!(e.channel_account.as_deref(), Some("inbox-3"));
        assert_eq!(e.occurred_at_us, 1_772_000_000_000_000);
        assert_eq!(e.event_id, "cw-conv-42-created");
    }

    #[test]
    fn messages_map_their_sender() {
        let conv =
            json!({"id": 42, "inbox_id": 3, "channel": "Channel::WebWidget", "contact_inbox": {"contact_id": 9}});
        let msg = |message_type: &str, sender_type: &str, private: bool| {
            event(json!({
                "event": "message_created", "id": 7, "content": "Hallo Welt", "created_at": "2026-03-03 13:05:57 UTC",
                "message_type": message_type, "private": private, "sender": {"id": 5, "type": sender_type},
                "conversation": conv.clone()
            }))
        };
        let e = msg("incoming", "contact", false);
        assert_eq!(
            (e.sender, e.chars, e.private),
            (Some(crate::contract::Sender::Customer), Some(10), Some(false))
        );
        assert_eq!(e.occurred_at_us, 1_772_543_157_000_000);
        let e = msg("outgoing", "user", true);
        assert_eq!(
            (e.sender, e.agent_id.as_deref(), e.private),
            (Some(crate::contract::Sender::Agent), Some("cw-user-5"), Some(true))
        );
        assert_eq!(
            msg("outgoing", "agent_bot", false).sender,
            Some(crate::contract::Sender::Bot)
        );
        let e = msg("template", "agent_bot", false);
        assert_eq!(
            (e.sender, e.automated),
            (Some(crate::contract::Sender::Bot), Some(true))
        );
        assert_eq!(msg("activity", "", false).sender, Some(crate::contract::Sender::System));
    }

    #[test]
    fn status_changes_resolve_and_reopen() {
        let base = |status: &str, previous: &str| {
            json!({
                "event": "conversation_status_changed", "id": 42, "inbox_id": 3, "channel": "Channel::Email",
                "status": status, "updated_at": "2026-03-03T14:00:00Z", "meta": {"assignee": {"id": 5}},
                "changed_attributes": [{"status": {"previous_value": previous, "current_value": status}}]
            })
        };
        let e = event(base("resolved", "open"));
        assert_eq!(e.event_type, crate::EventType::ConversationResolved);
        assert_eq!(e.agent_id.as_deref(), Some("cw-user-5"));
        assert_eq!(
            event(base("open", "resolved")).event_type,
            crate::EventType::ConversationReopened
        );
        assert!(matches!(
            map_webhook("acme", &base("pending", "open")),
            Ok(Mapped::Ignored(_))
        ));
        // A retried webhook maps to the same event id.
        assert_eq!(
            event(base("resolved", "open")).event_id,
            event(base("resolved", "open")).event_id
        );
    }

    #[test]
    fn assignments_and_other_events() {
        let e = event(json!({
            "event": "conversation_updated", "id": 42, "updated_at": 1772000100, "status": "open",
            "meta": {"team": {"name": "billing"}},
            "changed_attributes": [{"assignee_id": {"previous_value": null, "current_value": 5}}]
        }));
        assert_eq!(
            (e.event_type, e.agent_id.as_deref(), e.team.as_deref()),
            (
                crate::EventType::ConversationAssigned,
                Some("cw-user-5"),
                Some("billing")
            )
        );
        assert!(matches!(
            map_webhook("acme", &json!({"event": "conversation_typing_on"})),
            Ok(Mapped::Ignored(_))
        ));
        assert!(map_webhook("acme", &json!({"id": 1})).is_err());
        assert!(
            map_webhook(
                "acme",
                &json!({"event": "message_created", "id": 1, "conversation": {"id": 2}})
            )
            .is_err()
        );
    }
}
