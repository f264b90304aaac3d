//! Fixtures follow the payloads Chatwoot builds (`WebhookListener` merges
//! `event` and, for conversation events, `changed_attributes` into the
//! model's `webhook_data`), with Chatwoot's field names, types and nesting.

use serde_json::{Value, json};

use super::*;
use crate::EventType;
use crate::contract::{Channel, ResolvedBy, Sender};

fn parse(fixture: &str) -> Value {
    serde_json::from_str(fixture).expect("fixtures are valid JSON")
}

fn events(account: Option<&str>, v: &Value) -> Vec<Event> {
    match map_webhook("acme", account, v) {
        Ok(Mapped::Events(e)) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

fn one(account: Option<&str>, v: &Value) -> Event {
    let mut e = events(account, v);
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

fn attr(e: &Event, key: &str) -> Option<String> {
    let attrs: Value = serde_json::from_str(&e.attrs).ok()?;
    attrs[key].as_str().map(String::from)
}

/// `message_created`: `Message#webhook_data` of a customer's message in a
/// web-widget inbox; `conversation` is `Conversation#webhook_data`
/// (`Conversations::EventDataPresenter#push_data`), `sender` the contact's
/// `webhook_data`.
const INCOMING_MESSAGE: &str = r#"{
  "event": "message_created",
  "id": 5021,
  "content": "Hallo, mein Paket ist nicht angekommen",
  "content_type": "text",
  "content_attributes": {},
  "additional_attributes": {},
  "created_at": 1772543157,
  "message_type": "incoming",
  "private": false,
  "source_id": null,
  "sender": {"id": 9, "name": "Erika Muster", "avatar": "", "type": "contact",
             "account": {"id": 1, "name": "Acme GmbH"}},
  "account": {"id": 1, "name": "Acme GmbH"},
  "inbox": {"id": 3, "name": "Website"},
  "conversation": {
    "additional_attributes": {"browser": {"browser_name": "Firefox"}, "browser_language": "de"},
    "can_reply": true,
    "channel": "Channel::WebWidget",
    "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3, "source_id": "8c0e8f5e-2d55-4f39-9d3a-8f0c3c0b9a11",
                      "created_at": "2026-03-03T13:05:50.412Z", "updated_at": "2026-03-03T13:05:50.412Z",
                      "hmac_verified": false, "pubsub_token": "Zp9xY"},
    "id": 101,
    "inbox_id": 3,
    "messages": [{"id": 5021, "content": "Hallo, mein Paket ist nicht angekommen", "account_id": 1, "inbox_id": 3,
                  "conversation_id": 101, "message_type": 0, "created_at": 1772543157, "private": false,
                  "content_type": "text", "sender_type": "Contact", "sender_id": 9}],
    "labels": [],
    "meta": {"sender": {"id": 9, "name": "Erika Muster", "type": "contact"}, "assignee": null,
             "assignee_type": null, "team": null, "hmac_verified": false},
    "status": "pending",
    "custom_attributes": {},
    "snoozed_until": null,
    "unread_count": 1,
    "first_reply_created_at": null,
    "priority": null,
    "waiting_since": 1772543157,
    "agent_last_seen_at": 0,
    "contact_last_seen_at": 0,
    "last_activity_at": 1772543157,
    "timestamp": 1772543157,
    "created_at": 1772543150,
    "updated_at": 1772543157.284113
  }
}"#;

/// `message_created`: an outgoing `Message#webhook_data` in the same
/// conversation; the test sets `sender`, `content_attributes`,
/// `additional_attributes` and `message_type` per case.
const OUTGOING_MESSAGE: &str = r#"{
  "event": "message_created",
  "id": 5022,
  "content": "Guten Tag! Ich schaue nach.",
  "content_type": "text",
  "content_attributes": {},
  "additional_attributes": {},
  "created_at": 1772543163,
  "message_type": "outgoing",
  "private": false,
  "source_id": null,
  "sender": {"id": 1, "name": "Lea", "email": "lea@acme.example", "type": "user"},
  "account": {"id": 1, "name": "Acme GmbH"},
  "inbox": {"id": 3, "name": "Website"},
  "conversation": {
    "channel": "Channel::WebWidget",
    "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3, "source_id": "8c0e8f5e-2d55-4f39-9d3a-8f0c3c0b9a11"},
    "id": 101,
    "inbox_id": 3,
    "messages": [],
    "labels": [],
    "meta": {"sender": {"id": 9, "name": "Erika Muster", "type": "contact"}, "assignee": null},
    "status": "pending",
    "created_at": 1772543150,
    "updated_at": 1772543163.5,
    "timestamp": 1772543163
  }
}"#;

/// `conversation_created`: `Conversation#webhook_data` of a new web-widget
/// conversation in a bot inbox (status `pending`), before any message, so
/// the body names no account: the URL's `?account=` does.
const CONVERSATION_CREATED: &str = r#"{
  "event": "conversation_created",
  "additional_attributes": {"browser": {"browser_name": "Firefox"}, "browser_language": "de",
                            "referer": "https://acme.example/hilfe"},
  "can_reply": true,
  "channel": "Channel::WebWidget",
  "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3, "source_id": "8c0e8f5e-2d55-4f39-9d3a-8f0c3c0b9a11",
                    "created_at": "2026-03-03T13:05:50.412Z", "updated_at": "2026-03-03T13:05:50.412Z",
                    "hmac_verified": false, "pubsub_token": "Zp9xY"},
  "id": 101,
  "inbox_id": 3,
  "messages": [],
  "labels": [],
  "meta": {"sender": {"id": 9, "name": "Erika Muster", "type": "contact"}, "assignee": null,
           "assignee_type": null, "team": null, "hmac_verified": false},
  "status": "pending",
  "custom_attributes": {},
  "snoozed_until": null,
  "unread_count": 0,
  "first_reply_created_at": null,
  "priority": null,
  "waiting_since": 1772543150,
  "agent_last_seen_at": 0,
  "contact_last_seen_at": 0,
  "last_activity_at": 1772543150,
  "timestamp": 1772543150,
  "created_at": 1772543150,
  "updated_at": 1772543150.412
}"#;

/// `conversation_status_changed`: `Conversation#webhook_data` plus
/// `changed_attributes` built from `previous_changes.slice('status')` (so
/// only the status, no time); the top-level state is read when the job ran.
const STATUS_CHANGED: &str = r#"{
  "event": "conversation_status_changed",
  "channel": "Channel::WebWidget",
  "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3, "source_id": "8c0e8f5e-2d55-4f39-9d3a-8f0c3c0b9a11"},
  "id": 101,
  "inbox_id": 3,
  "messages": [{"id": 5023, "account_id": 1, "conversation_id": 101, "message_type": 1, "created_at": 1772543200}],
  "labels": [],
  "meta": {"sender": {"id": 9, "type": "contact"}, "assignee": null, "assignee_type": null, "team": null},
  "status": "open",
  "last_activity_at": 1772543200,
  "timestamp": 1772543200,
  "created_at": 1772543150,
  "updated_at": 1772543230.123456,
  "changed_attributes": [{"status": {"previous_value": "pending", "current_value": "open"}}]
}"#;

/// `conversation_updated`: `Conversation#webhook_data` plus
/// `changed_attributes` from all of `previous_changes`, times as ISO 8601
/// with milliseconds (how ActiveSupport encodes them).
const CONVERSATION_UPDATED: &str = r#"{
  "event": "conversation_updated",
  "channel": "Channel::WebWidget",
  "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3, "source_id": "8c0e8f5e-2d55-4f39-9d3a-8f0c3c0b9a11"},
  "id": 101,
  "inbox_id": 3,
  "messages": [{"id": 5023, "account_id": 1, "conversation_id": 101, "message_type": 1, "created_at": 1772543200}],
  "labels": ["versand"],
  "meta": {"sender": {"id": 9, "type": "contact"},
           "assignee": {"id": 5, "name": "Lea", "available_name": "Lea", "type": "user", "availability_status": "online"},
           "assignee_type": "User", "team": {"id": 2, "name": "billing"}},
  "status": "open",
  "last_activity_at": 1772543200,
  "timestamp": 1772543200,
  "created_at": 1772543150,
  "updated_at": 1772543230.123456,
  "changed_attributes": [
    {"status": {"previous_value": "pending", "current_value": "open"}},
    {"updated_at": {"previous_value": "2026-03-03T13:06:03.500Z", "current_value": "2026-03-03T13:07:10.123Z"}}
  ]
}"#;

/// The CSAT survey: `message_created` of the message
/// `CsatSurveyService` creates (`message_type` template, `content_type`
/// `input_csat`, no sender).
const CSAT_SURVEY: &str = r#"{
  "event": "message_created",
  "id": 5030,
  "content": "Bitte bewerten Sie das Gespräch",
  "content_type": "input_csat",
  "content_attributes": {},
  "additional_attributes": {},
  "created_at": 1772546000,
  "message_type": "template",
  "private": false,
  "source_id": null,
  "sender": null,
  "account": {"id": 1, "name": "Acme GmbH"},
  "inbox": {"id": 3, "name": "Website"},
  "conversation": {"channel": "Channel::WebWidget", "id": 101, "inbox_id": 3,
                   "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3}, "status": "resolved"}
}"#;

/// The customer's answer: `message_updated` of the survey message, the
/// rating in `content_attributes.submitted_values.csat_survey_response`.
const CSAT_ANSWER: &str = r#"{
  "event": "message_updated",
  "id": 5030,
  "content": "Bitte bewerten Sie das Gespräch",
  "content_type": "input_csat",
  "content_attributes": {"submitted_values": {"csat_survey_response": {"rating": 5, "feedback_message": "Sehr schnell, danke!"}}},
  "additional_attributes": {},
  "created_at": 1772546000,
  "message_type": "template",
  "private": false,
  "source_id": null,
  "sender": null,
  "account": {"id": 1, "name": "Acme GmbH"},
  "inbox": {"id": 3, "name": "Website"},
  "conversation": {"channel": "Channel::WebWidget", "id": 101, "inbox_id": 3,
                   "contact_inbox": {"id": 77, "contact_id": 9, "inbox_id": 3}, "status": "resolved"}
}"#;

#[test]
fn accounts_namespace_every_id() {
    let first = one(None, &parse(INCOMING_MESSAGE));
    let mut other = parse(INCOMING_MESSAGE);
    other["account"]["id"] = json!(2);
    other["conversation"]["messages"][0]["account_id"] = json!(2);
    let second = one(None, &other);
    assert_eq!(first.conversation_id.as_deref(), Some("cw-1-101"));
    assert_eq!(first.customer_id.as_deref(), Some("cw-1-contact-9"));
    assert_ne!(first.conversation_id, second.conversation_id);
    assert_ne!(first.customer_id, second.customer_id);
    assert_ne!(first.event_id, second.event_id);
    assert_ne!(first.message_id, second.message_id);
    // A retry keeps its event id.
    assert_eq!(first.event_id, one(None, &parse(INCOMING_MESSAGE)).event_id);

    // Conversation events carry no account before their first message:
    // the URL names it, and a body that names another one is refused.
    let created = parse(CONVERSATION_CREATED);
    let a1 = events(Some("1"), &created);
    let a2 = events(Some("2"), &created);
    assert_eq!(a1[0].conversation_id, first.conversation_id);
    assert_ne!(a1[0].conversation_id, a2[0].conversation_id);
    assert_ne!(a1[0].event_id, a2[0].event_id);
    let refused = map_webhook("acme", None, &created).expect_err("no account anywhere");
    assert_eq!(refused[0].field, "account");
    let refused = map_webhook("acme", Some("2"), &parse(INCOMING_MESSAGE)).expect_err("URL and body disagree");
    assert_eq!(refused[0].field, "account.id");
    assert!(map_webhook("acme", Some("1 OR 1=1"), &created).is_err());
    assert_eq!(one(Some("1"), &parse(INCOMING_MESSAGE)).event_id, first.event_id);
}

#[test]
fn csat_survey_and_answer() {
    let asked = one(None, &parse(CSAT_SURVEY));
    assert_eq!(asked.event_type, EventType::CsatRequested);
    assert_eq!(asked.conversation_id.as_deref(), Some("cw-1-101"));
    let answer = one(None, &parse(CSAT_ANSWER));
    assert_eq!(answer.event_type, EventType::CsatSubmitted);
    assert_eq!(
        (answer.score, answer.comment.as_deref()),
        (Some(5), Some("Sehr schnell, danke!"))
    );
    assert_eq!(answer.conversation_id.as_deref(), Some("cw-1-101"));
    assert_ne!(asked.event_id, answer.event_id);
    // Retries dedup; a changed answer is a new event.
    assert_eq!(answer.event_id, one(None, &parse(CSAT_ANSWER)).event_id);
    let mut changed = parse(CSAT_ANSWER);
    changed["content_attributes"]["submitted_values"]["csat_survey_response"] =
        json!({"rating": 3, "feedback_message": null});
    let changed = one(None, &changed);
    assert_eq!((changed.score, changed.comment), (Some(3), None));
    assert_ne!(changed.event_id, answer.event_id);
    // Any other edit of a message is no service fact.
    let mut edit = parse(CSAT_ANSWER);
    edit["content_type"] = json!("text");
    assert!(matches!(map_webhook("acme", None, &edit), Ok(Mapped::Ignored(_))));
}

#[test]
fn bot_handoff_is_pending_to_open() {
    let via_status = one(None, &parse(STATUS_CHANGED));
    assert_eq!(via_status.event_type, EventType::ConversationHandoff);
    assert_eq!(via_status.conversation_id.as_deref(), Some("cw-1-101"));
    // The same change delivered as conversation_updated.
    let via_update = events(None, &parse(CONVERSATION_UPDATED));
    assert_eq!(via_update[0].event_type, EventType::ConversationHandoff);
    // conversation_updated says when it happened; the other only when the job ran.
    assert_eq!(
        via_update[0].occurred_at_us,
        crate::contract::parse_timestamp_us("2026-03-03T13:07:10.123Z").unwrap()
    );
    // No later change: both deliveries are one event (float seconds at the
    // top level, milliseconds in changed_attributes).
    let mut same_time = parse(STATUS_CHANGED);
    same_time["updated_at"] = json!(1772543230.123456);
    let a = one(None, &same_time);
    let b = events(None, &parse(CONVERSATION_UPDATED));
    assert_eq!(a.event_id, b[0].event_id);
}

#[test]
fn only_human_replies_are_agent_replies() {
    let msg = |edit: &dyn Fn(&mut Value)| {
        let mut v = parse(OUTGOING_MESSAGE);
        edit(&mut v);
        one(None, &v)
    };
    let human = msg(&|_| {});
    assert_eq!(
        (human.sender, human.agent_id.as_deref(), human.automated),
        (Some(Sender::Agent), Some("cw-1-user-1"), None)
    );
    // Captain's id 1 is not user 1.
    let captain = msg(&|v| v["sender"] = json!({"id": 1, "name": "Captain", "type": "captain_assistant"}));
    assert_eq!(
        (captain.sender, captain.agent_id.as_deref(), captain.automated),
        (Some(Sender::Bot), None, None)
    );
    assert_eq!(
        attr(&captain, "chatwoot_bot_id").as_deref(),
        Some("cw-1-captain_assistant-1")
    );
    let agent_bot = msg(&|v| v["sender"] = json!({"id": 1, "name": "Menu bot", "type": "agent_bot"}));
    assert_eq!(
        (agent_bot.sender, agent_bot.agent_id.as_deref()),
        (Some(Sender::Bot), None)
    );
    assert_eq!(attr(&agent_bot, "chatwoot_bot_id").as_deref(), Some("cw-1-agent_bot-1"));
    // AutomationRules::ActionService#send_message: no sender, the rule id in content_attributes.
    let rule = msg(&|v| {
        v["sender"] = Value::Null;
        v["content_attributes"] = json!({"automation_rule_id": 12});
    });
    assert_eq!((rule.sender, rule.automated), (Some(Sender::Bot), Some(true)));
    // A campaign message, even one sent in a user's name.
    let campaign = msg(&|v| v["additional_attributes"] = json!({"campaign_id": 4}));
    assert_eq!(
        (campaign.sender, campaign.automated, campaign.agent_id),
        (Some(Sender::Bot), Some(true), None)
    );
    // Dialogflow posts outgoing messages without a sender.
    let dialogflow = msg(&|v| v["sender"] = Value::Null);
    assert_eq!((dialogflow.sender, dialogflow.automated), (Some(Sender::Bot), None));
    // A message sent from outside Chatwoot and echoed back.
    let echo = msg(&|v| {
        v["sender"] = Value::Null;
        v["content_attributes"] = json!({"external_echo": true, "external_created_at": 1772543162});
    });
    assert_eq!((echo.sender, echo.agent_id), (Some(Sender::Bot), None));
    // A private note stays the agent's, marked private.
    let note = msg(&|v| v["private"] = json!(true));
    assert_eq!((note.sender, note.private), (Some(Sender::Agent), Some(true)));
    // A bot's menu (a template with options) is a bot reply; an inbox greeting is not a reply.
    let menu = msg(&|v| {
        v["message_type"] = json!("template");
        v["content_type"] = json!("input_select");
        v["sender"] = json!({"id": 2, "name": "Menu bot", "type": "agent_bot"});
    });
    assert_eq!((menu.sender, menu.automated), (Some(Sender::Bot), None));
    let greeting = msg(&|v| {
        v["message_type"] = json!("template");
        v["sender"] = Value::Null;
    });
    assert_eq!((greeting.sender, greeting.automated), (Some(Sender::Bot), Some(true)));
    let customer = one(None, &parse(INCOMING_MESSAGE));
    assert_eq!((customer.sender, customer.agent_id), (Some(Sender::Customer), None));
    // Chatwoot's enum numbers, as in `push_event_data`.
    let numbered = msg(&|v| v["message_type"] = json!(1));
    assert_eq!(numbered.sender, Some(Sender::Agent));
    let mut incoming = parse(INCOMING_MESSAGE);
    incoming["message_type"] = json!(0);
    assert_eq!(one(None, &incoming).sender, Some(Sender::Customer));
    let mut unknown = parse(INCOMING_MESSAGE);
    unknown["message_type"] = json!(9);
    assert!(map_webhook("acme", None, &unknown).is_err());
}

fn status_change(previous: &str, current: &str, edit: &dyn Fn(&mut Value)) -> Value {
    let mut v = parse(CONVERSATION_UPDATED);
    v["status"] = json!(current);
    v["changed_attributes"][0]["status"] = json!({"previous_value": previous, "current_value": current});
    edit(&mut v);
    v
}

#[test]
fn resolved_by_and_reopen() {
    let by_agent = one(None, &status_change("open", "resolved", &|_| {}));
    assert_eq!(by_agent.event_type, EventType::ConversationResolved);
    assert_eq!(
        (by_agent.resolved_by, by_agent.agent_id.as_deref()),
        (Some(ResolvedBy::Agent), Some("cw-1-user-5"))
    );
    // Resolved while still with the bot (Captain, an agent bot, auto-resolve).
    let from_pending = one(
        None,
        &status_change("pending", "resolved", &|v| v["meta"]["assignee"] = Value::Null),
    );
    assert_eq!(
        (from_pending.resolved_by, from_pending.agent_id),
        (Some(ResolvedBy::Bot), None)
    );
    // An agent bot assignee is not a person.
    let bot_assignee = one(
        None,
        &status_change("open", "resolved", &|v| {
            v["meta"]["assignee"] = json!({"id": 5, "name": "Menu bot", "type": "agent_bot"});
            v["meta"]["assignee_type"] = json!("AgentBot");
        }),
    );
    assert_eq!(
        (bot_assignee.resolved_by, bot_assignee.agent_id),
        (Some(ResolvedBy::Bot), None)
    );
    // In a bot inbox a reopened conversation goes back to pending.
    let reopened = one(None, &status_change("resolved", "pending", &|_| {}));
    assert_eq!(reopened.event_type, EventType::ConversationReopened);
    let reopened = one(None, &status_change("resolved", "open", &|_| {}));
    assert_eq!(reopened.event_type, EventType::ConversationReopened);
    assert!(matches!(
        map_webhook("acme", None, &status_change("open", "snoozed", &|_| {})),
        Ok(Mapped::Ignored(_))
    ));
}

#[test]
fn changes_are_read_at_change_time() {
    // A resolve whose job ran after a quick reopen: the top-level state is
    // already open again, the change says resolved.
    let resolve = status_change("open", "resolved", &|v| {
        v["status"] = json!("open");
        v["changed_attributes"][1]["updated_at"]["current_value"] = json!("2026-03-03T14:00:00.100Z");
    });
    let reopen = status_change("resolved", "open", &|v| {
        v["changed_attributes"][1]["updated_at"]["current_value"] = json!("2026-03-03T14:00:02.700Z");
    });
    let (resolved, reopened) = (one(None, &resolve), one(None, &reopen));
    assert_eq!(resolved.event_type, EventType::ConversationResolved);
    assert_eq!(reopened.event_type, EventType::ConversationReopened);
    assert_eq!(
        resolved.occurred_at_us,
        crate::contract::parse_timestamp_us("2026-03-03T14:00:00.100Z").unwrap()
    );
    assert!(reopened.occurred_at_us > resolved.occurred_at_us);

    // Two reassignments whose jobs read the same top-level updated_at.
    let assign = |agent: i64, at: &str| {
        let mut v = parse(CONVERSATION_UPDATED);
        v["changed_attributes"] = json!([
            {"assignee_id": {"previous_value": null, "current_value": agent}},
            {"updated_at": {"previous_value": "2026-03-03T14:00:00.000Z", "current_value": at}}
        ]);
        one(None, &v)
    };
    let first = assign(5, "2026-03-03T14:10:00.250Z");
    let second = assign(5, "2026-03-03T14:10:04.900Z");
    assert_eq!(first.event_type, EventType::ConversationAssigned);
    assert_eq!(
        (first.agent_id.as_deref(), first.team.as_deref()),
        (Some("cw-1-user-5"), Some("billing"))
    );
    assert_ne!(first.event_id, second.event_id);
    assert!(second.occurred_at_us > first.occurred_at_us);
    assert_eq!(first.event_id, assign(5, "2026-03-03T14:10:00.250Z").event_id);

    // A team transfer without an agent; the team's name is taken from
    // `meta` only while it is still the team of the change.
    let transfer = |team: i64| {
        let mut v = parse(CONVERSATION_UPDATED);
        v["changed_attributes"] = json!([
            {"team_id": {"previous_value": null, "current_value": team}},
            {"updated_at": {"previous_value": "2026-03-03T14:00:00.000Z", "current_value": "2026-03-03T14:30:00.000Z"}}
        ]);
        one(None, &v)
    };
    let to_billing = transfer(2);
    assert_eq!(to_billing.event_type, EventType::ConversationAssigned);
    assert_eq!(
        (to_billing.agent_id, to_billing.team.as_deref()),
        (None, Some("billing"))
    );
    let moved_on = transfer(3);
    assert_eq!(moved_on.team.as_deref(), Some("cw-1-team-3"));
    assert_ne!(moved_on.event_id, to_billing.event_id);
}

#[test]
fn labels_and_language() {
    let mut v = parse(CONVERSATION_UPDATED);
    v["changed_attributes"] = json!([
        {"label_list": {"previous_value": ["versand"], "current_value": ["versand", "erstattung", "vip"]}},
        {"updated_at": {"previous_value": "2026-03-03T14:00:00.000Z", "current_value": "2026-03-03T14:20:00.000Z"}}
    ]);
    let tagged = one(None, &v);
    assert_eq!(tagged.event_type, EventType::ConversationTagged);
    assert_eq!(tagged.tags, Some(vec!["erstattung".to_string(), "vip".to_string()]));
    // Removing a label adds no tag.
    v["changed_attributes"][0]["label_list"] = json!({"previous_value": ["versand"], "current_value": []});
    assert!(matches!(map_webhook("acme", None, &v), Ok(Mapped::Ignored(_))));

    let mut created = parse(CONVERSATION_CREATED);
    let started = one(Some("1"), &created);
    assert_eq!(started.event_type, EventType::ConversationStarted);
    assert_eq!(started.language.as_deref(), Some("de"));
    assert_eq!(started.occurred_at_us, 1_772_543_150_000_000);
    assert_eq!(started.channel, Some(Channel::Webchat));
    assert_eq!(started.channel_account.as_deref(), Some("cw-1-inbox-3"));
    created["additional_attributes"]["conversation_language"] = json!("pt_BR");
    created["labels"] = json!(["vip"]);
    let both = events(Some("1"), &created);
    assert_eq!(both[0].language.as_deref(), Some("pt-BR"));
    assert_eq!(both[1].event_type, EventType::ConversationTagged);
    assert_eq!(both[1].tags, Some(vec!["vip".to_string()]));
    // An unreadable language is left out, not a reason to lose the conversation.
    created["additional_attributes"] = json!({"browser_language": "de DE!"});
    assert_eq!(events(Some("1"), &created)[0].language, None);
}

#[test]
fn channels() {
    let channel_of = |edit: &dyn Fn(&mut Value)| {
        let mut v = parse(CONVERSATION_CREATED);
        edit(&mut v);
        let e = events(Some("1"), &v).remove(0);
        (e.channel, attr(&e, "chatwoot_channel"))
    };
    // Twilio's WhatsApp senders have source ids `whatsapp:+...`.
    assert_eq!(
        channel_of(&|v| {
            v["channel"] = json!("Channel::TwilioSms");
            v["contact_inbox"]["source_id"] = json!("whatsapp:+4915112345678");
        }),
        (Some(Channel::Whatsapp), None)
    );
    assert_eq!(
        channel_of(&|v| {
            v["channel"] = json!("Channel::TwilioSms");
            v["contact_inbox"]["source_id"] = json!("+4915112345678");
        }),
        (Some(Channel::Sms), None)
    );
    assert_eq!(
        channel_of(&|v| {
            v["channel"] = json!("Channel::FacebookPage");
            v["additional_attributes"] = json!({"type": "instagram_direct_message"});
        }),
        (Some(Channel::Instagram), None)
    );
    assert_eq!(
        channel_of(&|v| v["channel"] = json!("Channel::FacebookPage")),
        (Some(Channel::Messenger), None)
    );
    for raw in ["Channel::Telegram", "Channel::Api", "Channel::Tiktok"] {
        assert_eq!(
            channel_of(&|v| v["channel"] = json!(raw)),
            (Some(Channel::Other), Some(raw.to_string()))
        );
    }
}

#[test]
fn other_events_and_bad_bodies() {
    assert!(matches!(
        map_webhook("acme", None, &json!({"event": "conversation_typing_on"})),
        Ok(Mapped::Ignored(_))
    ));
    assert!(map_webhook("acme", Some("1"), &json!({"id": 1})).is_err());
    assert!(
        map_webhook(
            "acme",
            Some("1"),
            &json!({"event": "message_created", "id": 1, "conversation": {"id": 2}})
        )
        .is_err()
    );
}
