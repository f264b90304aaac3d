//! Chatwoot webhooks → contract-v1 events.
//!
//! Chatwoot posts one JSON object per event to a configured URL. This
//! module maps the events that carry service facts onto the contract; each
//! result goes through the same validation ([`Event::from_json`]) and the
//! same durable path as every other event. One webhook can carry several
//! facts (a save that reopens and relabels a conversation), so a webhook
//! maps to a list of events.
//!
//! | Chatwoot `event` | contract type |
//! |---|---|
//! | `conversation_created` | `conversation.started` (language from `conversation_language` or `browser_language`), plus `conversation.tagged` when it starts with labels |
//! | `message_created` | `message.created`; the CSAT survey (`content_type` `input_csat`) → `csat.requested` |
//! | `message_updated` with a CSAT rating | `csat.submitted` |
//! | `conversation_status_changed`, `conversation_updated` with a status change | pending → open: `conversation.handoff`; → resolved: `conversation.resolved`; resolved → open/pending: `conversation.reopened` |
//! | `conversation_updated` with a new assignee or team | `conversation.assigned` |
//! | `conversation_updated` with labels added | `conversation.tagged` |
//!
//! Senders follow Chatwoot's own rule for a human reply
//! (`Message#human_response?`): only an outgoing message of a user that no
//! automation rule or campaign created is an agent reply. Agent bots and
//! Captain are `bot`; rule, campaign and greeting messages are `bot` and
//! `automated` (not a reply); integration bots that post without a sender
//! (Dialogflow) and echoes of messages sent outside Chatwoot are `bot`.
//!
//! Display ids are numbered per Chatwoot account, so every id is
//! namespaced by the account (`cw-<account>-...`): the account named in the
//! URL (`?account=`), checked against the one in the body when the body
//! carries it. Event ids are derived from Chatwoot's ids and the time of the
//! change, so a webhook retried by Chatwoot, or the same change delivered as
//! both `conversation_status_changed` and `conversation_updated`, is
//! deduplicated like any retried event.
//!
//! Chatwoot builds conversation webhooks in a background job, so the
//! top-level `status`, `updated_at` and assignee are the state when the job
//! ran, possibly after later changes. The values and the time of the change
//! itself are read from `changed_attributes` wherever Chatwoot sends them.

use serde_json::{Map, Value, json};

use crate::contract::{Event, FieldError};

#[cfg(test)]
mod tests;

/// What became of one webhook.
#[derive(Debug)]
pub enum Mapped {
    /// One or more contract events (never empty).
    Events(Vec<Event>),
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

/// Chatwoot sends times as Unix seconds (integers, or floats for
/// `updated_at`), RFC 3339 or `2020-03-03 13:05:57 UTC`; the result is UTC
/// microseconds.
fn timestamp_us(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            let us = (secs * 1e6).round();
            us.is_finite().then_some(us as i64)
        }
        Value::String(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_micros());
            }
            let trimmed = s.trim_end_matches(" UTC");
            let naive = chrono::NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f").ok()?;
            Some(naive.and_utc().timestamp_micros())
        }
        _ => None,
    }
}

fn rfc3339(us: i64) -> Option<String> {
    let dt = chrono::DateTime::from_timestamp_micros(us)?;
    Some(dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// A value Chatwoot sets when an attribute applies (`automation_rule_id`,
/// `campaign_id`, `external_echo`): anything but null, false and "".
fn present(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false)) && v.as_str() != Some("")
}

/// 64-bit FNV-1a: a stable digest for event ids (std's hasher may change
/// between Rust releases, and a retry must keep its id).
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Ids are per Chatwoot account (conversation display ids count from 1 in
/// every account), so each one carries the account.
struct Ids {
    account: String,
}

impl Ids {
    fn id(&self, kind: &str, id: &str) -> String {
        if kind.is_empty() {
            format!("cw-{}-{id}", self.account)
        } else {
            format!("cw-{}-{kind}-{id}", self.account)
        }
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The Chatwoot account of a webhook: the one in the URL, checked against
/// the one the body names (messages carry `account.id`, conversations
/// `account_id` or the account of their last message).
pub fn account(url_account: Option<&str>, payload: &Value) -> Result<String, Vec<FieldError>> {
    let body = [
        &payload["account"]["id"],
        &payload["account_id"],
        &payload["conversation"]["account_id"],
        &payload["messages"][0]["account_id"],
        &payload["conversation"]["messages"][0]["account_id"],
    ]
    .into_iter()
    .find_map(id_text);
    if let Some(b) = &body
        && !digits(b)
    {
        return Err(vec![FieldError::new(
            "account.id",
            format!("{b:?} is not a Chatwoot account id (an integer)"),
        )]);
    }
    match (url_account.map(str::trim).filter(|a| !a.is_empty()), body) {
        (Some(u), _) if !digits(u) => Err(vec![FieldError::new(
            "account",
            format!(
                "?account={u} is not a Chatwoot account id: use the number in the Chatwoot URL /app/accounts/<id>/"
            ),
        )]),
        (Some(u), Some(b)) if u != b => Err(vec![FieldError::new(
            "account.id",
            format!(
                "this webhook comes from Chatwoot account {b} but the URL names account {u}; give each account its own webhook URL with its own ?account="
            ),
        )]),
        (Some(u), _) => Ok(u.to_string()),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(vec![FieldError::new(
            "account",
            "this webhook does not say which Chatwoot account it comes from: add &account=<id> (the number in the Chatwoot URL /app/accounts/<id>/) to the webhook URL",
        )]),
    }
}

/// The contract channel, and Chatwoot's own channel type when the contract
/// has no name for it.
fn channel(conversation: &Value) -> Option<(&'static str, Option<String>)> {
    let c = conversation["channel"].as_str()?;
    let mapped = match c {
        "Channel::WebWidget" => "webchat",
        "Channel::Whatsapp" => "whatsapp",
        // Twilio serves SMS and WhatsApp from one channel type; WhatsApp
        // contacts have source ids of the form `whatsapp:+4930...`.
        "Channel::TwilioSms"
            if conversation["contact_inbox"]["source_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("whatsapp:")) =>
        {
            "whatsapp"
        }
        "Channel::Sms" | "Channel::TwilioSms" => "sms",
        // Instagram direct messages of a connected Facebook page arrive
        // through the page's inbox.
        "Channel::FacebookPage"
            if conversation["additional_attributes"]["type"].as_str() == Some("instagram_direct_message") =>
        {
            "instagram"
        }
        "Channel::FacebookPage" => "messenger",
        "Channel::Instagram" => "instagram",
        "Channel::Line" => "line",
        "Channel::Email" => "email",
        "Channel::Voice" => "voice",
        _ => "other",
    };
    Some((mapped, (mapped == "other").then(|| c.to_string())))
}

/// The conversation object: the payload itself for conversation events,
/// `payload.conversation` for message events.
fn envelope(
    ids: &Ids,
    tenant: &str,
    conversation: &Value,
    out: &mut Map<String, Value>,
    attrs: &mut Map<String, Value>,
) {
    out.insert("tenant_id".into(), json!(tenant));
    if let Some(id) = id_text(&conversation["id"]) {
        out.insert("conversation_id".into(), json!(ids.id("", &id)));
    }
    if let Some((c, raw)) = channel(conversation) {
        out.insert("channel".into(), json!(c));
        if let Some(raw) = raw {
            attrs.insert("chatwoot_channel".into(), json!(raw));
        }
    }
    if let Some(inbox) = id_text(&conversation["inbox_id"]) {
        out.insert("channel_account".into(), json!(ids.id("inbox", &inbox)));
    }
    let contact = id_text(&conversation["contact_inbox"]["contact_id"])
        .or_else(|| id_text(&conversation["meta"]["sender"]["id"]));
    if let Some(c) = contact {
        out.insert("customer_id".into(), json!(ids.id("contact", &c)));
    }
}

fn build(mut out: Map<String, Value>, attrs: &Map<String, Value>) -> Result<Event, Vec<FieldError>> {
    if !attrs.is_empty() {
        out.insert("attrs".into(), Value::Object(attrs.clone()));
    }
    Event::from_json(&Value::Object(out))
}

fn err(field: &str, reason: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError::new(field, reason)]
}

/// A BCP 47 tag as the contract takes it; Chatwoot also sends `pt_BR`.
fn language(conversation: &Value) -> Option<String> {
    let extra = &conversation["additional_attributes"];
    [&extra["conversation_language"], &extra["browser_language"]]
        .into_iter()
        .filter_map(|v| v.as_str())
        .map(|s| s.trim().replace('_', "-"))
        .find(|s| {
            let mut parts = s.split('-');
            let primary = parts.next().unwrap_or("");
            (2..=3).contains(&primary.len())
                && primary.bytes().all(|b| b.is_ascii_alphabetic())
                && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
}

/// Maps one webhook body. `url_account` is the `?account=` of the webhook
/// URL. `Err` carries field errors for the answer.
pub fn map_webhook(tenant: &str, url_account: Option<&str>, payload: &Value) -> Result<Mapped, Vec<FieldError>> {
    let Some(kind) = payload["event"].as_str() else {
        return Err(err("event", "a Chatwoot webhook names its event"));
    };
    match kind {
        "conversation_created"
        | "message_created"
        | "message_updated"
        | "conversation_status_changed"
        | "conversation_updated" => {}
        other => return Ok(Mapped::Ignored(other.to_string())),
    }
    let ids = Ids {
        account: account(url_account, payload)?,
    };
    match kind {
        "conversation_created" => conversation_created(&ids, tenant, payload),
        "message_created" | "message_updated" => message(&ids, tenant, kind, payload),
        _ => conversation_changed(&ids, tenant, kind, payload),
    }
}

fn conversation_created(ids: &Ids, tenant: &str, payload: &Value) -> Result<Mapped, Vec<FieldError>> {
    let (mut out, mut attrs) = (Map::new(), Map::new());
    envelope(ids, tenant, payload, &mut out, &mut attrs);
    let id = id_text(&payload["id"]).ok_or_else(|| err("id", "conversation id missing"))?;
    let at = timestamp_us(payload.get("created_at"))
        .or_else(|| timestamp_us(payload.get("timestamp")))
        .and_then(rfc3339)
        .ok_or_else(|| err("created_at", "missing or unreadable"))?;
    out.insert("occurred_at".into(), json!(at));
    let mut tagged = out.clone();
    out.insert("event_id".into(), json!(ids.id("conv", &format!("{id}-created"))));
    out.insert("type".into(), json!("conversation.started"));
    out.insert("source".into(), json!("chatwoot"));
    if let Some(lang) = language(payload) {
        out.insert("language".into(), json!(lang));
    }
    let mut events = vec![build(out, &attrs)?];
    let labels: Vec<&str> = payload["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !labels.is_empty() {
        tagged.insert(
            "event_id".into(),
            json!(ids.id("conv", &format!("{id}-created-tagged"))),
        );
        tagged.insert("type".into(), json!("conversation.tagged"));
        tagged.insert("tags".into(), json!(labels));
        events.push(build(tagged, &attrs)?);
    }
    Ok(Mapped::Events(events))
}

fn message(ids: &Ids, tenant: &str, kind: &str, payload: &Value) -> Result<Mapped, Vec<FieldError>> {
    let (mut out, mut attrs) = (Map::new(), Map::new());
    envelope(ids, tenant, &payload["conversation"], &mut out, &mut attrs);
    let id = id_text(&payload["id"]).ok_or_else(|| err("id", "message id missing"))?;
    let at = timestamp_us(payload.get("created_at"))
        .and_then(rfc3339)
        .ok_or_else(|| err("created_at", "missing or unreadable"))?;
    // Chatwoot's message webhooks carry only the creation time; for a CSAT
    // answer that is the time of the survey.
    out.insert("occurred_at".into(), json!(at));
    let content_attributes = &payload["content_attributes"];
    if payload["content_type"].as_str() == Some("input_csat") {
        if kind == "message_created" {
            out.insert("type".into(), json!("csat.requested"));
            out.insert("event_id".into(), json!(ids.id("msg", &format!("{id}-csat-requested"))));
            return Ok(Mapped::Events(vec![build(out, &attrs)?]));
        }
        let response = &content_attributes["submitted_values"]["csat_survey_response"];
        let Some(rating) = response.get("rating").filter(|r| !r.is_null()) else {
            return Ok(Mapped::Ignored("message_updated (CSAT survey without a rating)".into()));
        };
        out.insert("type".into(), json!("csat.submitted"));
        out.insert("score".into(), rating.clone());
        let feedback = response["feedback_message"].as_str().unwrap_or("").trim();
        if !feedback.is_empty() {
            out.insert("comment".into(), json!(feedback));
        }
        // The customer can change the answer; each distinct answer is one
        // event, and a retry of the same answer keeps its id.
        let answer = format!("{}-{}", id_text(rating).unwrap_or_default(), digest(feedback));
        out.insert("event_id".into(), json!(ids.id("msg", &format!("{id}-csat-{answer}"))));
        return Ok(Mapped::Events(vec![build(out, &attrs)?]));
    }
    if kind == "message_updated" {
        return Ok(Mapped::Ignored("message_updated".into()));
    }
    out.insert("event_id".into(), json!(ids.id("msg", &id)));
    out.insert("type".into(), json!("message.created"));
    out.insert("message_id".into(), json!(ids.id("msg", &id)));
    // `webhook_data` names the type; `push_event_data` (the messages nested
    // in a conversation) numbers it like Chatwoot's enum.
    let message_type = match &payload["message_type"] {
        Value::Number(n) => match n.as_u64() {
            Some(0) => "incoming",
            Some(1) => "outgoing",
            Some(2) => "activity",
            Some(3) => "template",
            _ => "",
        },
        v => v.as_str().unwrap_or(""),
    };
    let sender = &payload["sender"];
    let sender_type = sender["type"].as_str().unwrap_or("");
    let by_rule = present(&content_attributes["automation_rule_id"]);
    let by_campaign = present(&payload["additional_attributes"]["campaign_id"]);
    let echo = present(&content_attributes["external_echo"]);
    // Chatwoot's `Message#human_response?`: an outgoing message of a user,
    // created by no automation rule and no campaign. Everything else that
    // goes out is a bot: a reply when a bot wrote it, `automated` when a
    // rule, a campaign or an inbox setting (greeting, out of office) did.
    let (role, automated, origin) = match message_type {
        "incoming" => ("customer", false, None),
        "activity" => ("system", true, None),
        "outgoing" | "template" if by_rule => ("bot", true, Some("automation_rule")),
        "outgoing" | "template" if by_campaign => ("bot", true, Some("campaign")),
        "outgoing" | "template" if echo => ("bot", false, Some("external_echo")),
        "outgoing" | "template" if sender_type == "user" => ("agent", false, None),
        "outgoing" | "template" if sender_type == "agent_bot" => ("bot", false, Some("agent_bot")),
        "outgoing" | "template" if sender_type == "captain_assistant" => ("bot", false, Some("captain_assistant")),
        "template" => ("bot", true, Some("inbox_template")),
        "outgoing" => ("bot", false, Some("integration")),
        other => return Err(err("message_type", format!("unknown message_type {other:?}"))),
    };
    out.insert("sender".into(), json!(role));
    if automated {
        out.insert("automated".into(), json!(true));
    }
    if let Some(origin) = origin {
        attrs.insert("chatwoot_sender".into(), json!(origin));
    }
    if let Some(sid) = id_text(&sender["id"]).filter(|_| !sender_type.is_empty()) {
        // Users, agent bots and Captain assistants are numbered separately:
        // the id space is part of the id.
        let who = ids.id(sender_type, &sid);
        match role {
            "agent" => {
                out.insert("agent_id".into(), json!(who));
            }
            "bot" => {
                attrs.insert("chatwoot_bot_id".into(), json!(who));
            }
            _ => {}
        }
    }
    if let Some(p) = payload["private"].as_bool() {
        out.insert("private".into(), json!(p));
    }
    if let Some(text) = payload["content"].as_str() {
        out.insert("chars".into(), json!(text.chars().count()));
    }
    Ok(Mapped::Events(vec![build(out, &attrs)?]))
}

/// `changed_attributes` as Chatwoot sends it: a list of one-key objects,
/// `[{"status": {"previous_value": "open", "current_value": "resolved"}}]`.
fn changed<'a>(payload: &'a Value, attr: &str) -> Option<(&'a Value, &'a Value)> {
    payload["changed_attributes"].as_array()?.iter().find_map(|c| {
        let ch = c.get(attr)?;
        Some((&ch["previous_value"], &ch["current_value"]))
    })
}

fn conversation_changed(ids: &Ids, tenant: &str, kind: &str, payload: &Value) -> Result<Mapped, Vec<FieldError>> {
    let (mut base, attrs) = {
        let (mut out, mut attrs) = (Map::new(), Map::new());
        envelope(ids, tenant, payload, &mut out, &mut attrs);
        (out, attrs)
    };
    let id = id_text(&payload["id"]).ok_or_else(|| err("id", "conversation id missing"))?;
    // The time of the change: `updated_at` among the changed attributes
    // (conversation_updated), else the conversation's `updated_at` when the
    // job ran (conversation_status_changed carries only the status).
    let at_us = changed(payload, "updated_at")
        .and_then(|(_, current)| timestamp_us(Some(current)))
        .or_else(|| timestamp_us(payload.get("updated_at")))
        .or_else(|| timestamp_us(payload.get("timestamp")))
        .ok_or_else(|| err("updated_at", "missing or unreadable"))?;
    let at = rfc3339(at_us).ok_or_else(|| err("updated_at", "out of range"))?;
    base.insert("occurred_at".into(), json!(at));
    // Milliseconds: Chatwoot writes changed times with millisecond
    // precision and the top-level `updated_at` as float seconds, so the same
    // change delivered both ways gets the same id.
    let at_ms = at_us.div_euclid(1000);
    let event_id = |what: &str| ids.id("conv", &format!("{id}-{what}-{at_ms}"));
    let mut events = Vec::new();

    let status = match changed(payload, "status") {
        Some((p, c)) => Some((p.as_str().unwrap_or(""), c.as_str().unwrap_or(""))),
        // Without the change itself only a resolve can be read off the state.
        None if kind == "conversation_status_changed" => Some(("", payload["status"].as_str().unwrap_or(""))),
        None => None,
    };
    let assignee_change = changed(payload, "assignee_id").filter(|(_, c)| !c.is_null());
    if let Some((previous, current)) = status {
        let mut out = base.clone();
        match (previous, current) {
            ("pending", "open") => {
                out.insert("type".into(), json!("conversation.handoff"));
                out.insert("event_id".into(), json!(event_id("handoff")));
            }
            ("resolved", "open" | "pending") => {
                out.insert("type".into(), json!("conversation.reopened"));
                out.insert("event_id".into(), json!(event_id("reopened")));
            }
            (_, "resolved") => {
                out.insert("type".into(), json!("conversation.resolved"));
                out.insert("event_id".into(), json!(event_id("resolved")));
                // A conversation still pending was with the bot (an agent
                // bot, Captain); an agent bot assignee is not a person.
                let meta = &payload["meta"];
                let bot_assignee = meta["assignee_type"].as_str() == Some("AgentBot")
                    || matches!(
                        meta["assignee"]["type"].as_str(),
                        Some("agent_bot" | "captain_assistant")
                    );
                let human = assignee_change.map(|(_, c)| c.clone()).or_else(|| {
                    (!bot_assignee && matches!(meta["assignee"]["type"].as_str(), Some("user") | None))
                        .then(|| meta["assignee"]["id"].clone())
                });
                if previous == "pending" || bot_assignee {
                    out.insert("resolved_by".into(), json!("bot"));
                } else {
                    out.insert("resolved_by".into(), json!("agent"));
                    if let Some(a) = human.as_ref().and_then(id_text) {
                        out.insert("agent_id".into(), json!(ids.id("user", &a)));
                    }
                }
            }
            _ => {}
        }
        if out.contains_key("type") {
            events.push(build(out, &attrs)?);
        }
    }
    // A new assignee, a new team, or both in one save: one assignment.
    let team_change = changed(payload, "team_id").filter(|(_, c)| !c.is_null());
    if assignee_change.is_some() || team_change.is_some() {
        let mut out = base.clone();
        out.insert("type".into(), json!("conversation.assigned"));
        let mut what = String::from("assigned");
        if let Some((_, current)) = assignee_change {
            let agent = id_text(current).ok_or_else(|| err("changed_attributes.assignee_id", "not an id"))?;
            what.push_str(&format!("-{agent}"));
            out.insert("agent_id".into(), json!(ids.id("user", &agent)));
        }
        // The team's name is only in `meta`, read when the job ran: use it
        // when it is still the team of this change.
        let meta_team = &payload["meta"]["team"];
        let team = match team_change {
            Some((_, current)) => {
                let id = id_text(current).ok_or_else(|| err("changed_attributes.team_id", "not an id"))?;
                what.push_str(&format!("-team-{id}"));
                match meta_team["name"].as_str() {
                    Some(name) if id_text(&meta_team["id"]).as_deref() == Some(id.as_str()) => Some(name.to_string()),
                    _ => Some(ids.id("team", &id)),
                }
            }
            None => meta_team["name"].as_str().map(String::from),
        };
        if let Some(team) = team {
            out.insert("team".into(), json!(team));
        }
        out.insert("event_id".into(), json!(event_id(&what)));
        events.push(build(out, &attrs)?);
    }
    if let Some((previous, current)) = changed(payload, "label_list") {
        let before: Vec<&str> = previous
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let added: Vec<&str> = current
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| !before.contains(t))
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            let mut out = base.clone();
            out.insert("type".into(), json!("conversation.tagged"));
            out.insert(
                "event_id".into(),
                json!(event_id(&format!("tagged-{}", digest(&added.join("\n"))))),
            );
            out.insert("tags".into(), json!(added));
            events.push(build(out, &attrs)?);
        }
    }
    if events.is_empty() {
        let status = payload["status"].as_str().unwrap_or("");
        return Ok(Mapped::Ignored(format!("{kind} (status {status:?})")));
    }
    Ok(Mapped::Events(events))
}
