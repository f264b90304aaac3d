//! End to end: whole conversations played as the webhooks Chatwoot sends,
//! against the real binary, checked on `/v1/kpis` against numbers worked
//! out by hand below.
//!
//! Payload shapes: `Message#webhook_data` for `message_created` /
//! `message_updated`, `Conversation#webhook_data`
//! (`Conversations::EventDataPresenter#push_data`) for conversation events,
//! `changed_attributes` as `WebhookListener` builds it (a list of
//! `{attr: {previous_value, current_value}}`; `conversation_status_changed`
//! carries only the status). Ids are integers, message `created_at` epoch
//! seconds, conversation `updated_at` float seconds, changed times ISO 8601.
//!
//! The day 2026-03-03 (UTC), two Chatwoot accounts posting to one tenant:
//!
//! | conversation | what happens | FRT | human FRT | handling |
//! |---|---|---|---|---|
//! | A: account 1, #101, web widget, bot inbox | customer 10:00:00, agent bot 10:00:02, handoff 10:00:30.5 (sent twice: status_changed and updated), assigned to user 5, private note 10:00:40, user 5 10:01:30, resolved 10:05:00, CSAT 5 | 2 | 59.5 (from the handoff) | 300 |
//! | B: account 1, #102, Facebook | customer 11:00:00, Captain (assistant 1) 11:00:04, resolved from pending 11:02:00 | 4 | — | 120 |
//! | C: account 1, #103, Telegram | customer 12:00:00, automation-rule auto-reply 12:00:01 (not a reply), user 1 12:03:00, resolved 12:10:00 | 180 | 180 | 600 |
//! | D: account 2, #101 (same display id and contact id as A) , e-mail | customer 13:00:00, account 2's user 5 13:00:50, resolved 13:30:00 | 50 | 50 | 1800 |
//! | E: account 1, #104, e-mail | a 3 MB HTML e-mail 14:00:00, user 1 14:01:40, open | 100 | 100 | — |
//!
//! conversations 5; FRT mean 67.2, median 50; SLA (≤ 120 s) 4/5 = 0.8;
//! human FRT mean (59.5+180+50+100)/4 = 97.375 over 4; handling mean
//! (300+120+600+1800)/4 = 705; CSAT 5.0 over 1 (response rate 1/1);
//! transfer rate: handoff in A / bot replies in A and B = 0.5; automation
//! rate: B alone = 0.2; resolution rate 4/5 = 0.8; conversations per agent:
//! A, C, D, E human-handled / agents {account 1 user 5, account 1 user 1,
//! account 2 user 5} = 4/3.
//!
//! Of the 28 webhooks posted to the right URL all are accepted (two as
//! duplicates); account 2's message posted to account 1's URL, a typing
//! indicator and a webhook without a key are counted in `/metrics`.

use crate::support;

use serde_json::{Value, json};
use support::{Server, create_key};

/// 2026-03-03T00:00:00Z.
const DAY: i64 = 1_772_496_000;

fn at(h: i64, m: i64, s: i64) -> i64 {
    DAY + h * 3600 + m * 60 + s
}

fn iso(secs: i64, ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp(secs, (ms * 1_000_000) as u32).unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Conv {
    account: i64,
    id: i64,
    contact: i64,
    inbox: i64,
    channel: &'static str,
}

impl Conv {
    /// `Conversation#webhook_data`.
    fn data(&self, status: &str, created: i64, updated: f64, assignee: Value) -> Value {
        json!({
            "additional_attributes": {"browser_language": "de"},
            "can_reply": true,
            "channel": self.channel,
            "contact_inbox": {"id": self.contact * 10, "contact_id": self.contact, "inbox_id": self.inbox,
                              "source_id": format!("src-{}", self.contact), "hmac_verified": false},
            "id": self.id,
            "inbox_id": self.inbox,
            "messages": [],
            "labels": [],
            "meta": {"sender": {"id": self.contact, "name": "Kundin", "type": "contact"},
                     "assignee": assignee, "assignee_type": null, "team": null, "hmac_verified": false},
            "status": status,
            "custom_attributes": {},
            "snoozed_until": null,
            "unread_count": 0,
            "first_reply_created_at": null,
            "priority": null,
            "waiting_since": 0,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "last_activity_at": created,
            "timestamp": created,
            "created_at": created,
            "updated_at": updated
        })
    }

    fn created(&self, status: &str, t: i64) -> Value {
        let mut v = self.data(status, t, t as f64, Value::Null);
        v["event"] = json!("conversation_created");
        v
    }

    /// `Message#webhook_data` merged with `event`.
    fn message(&self, id: i64, t: i64, message_type: &str, sender: Value, content: &str) -> Value {
        json!({
            "event": "message_created",
            "id": id,
            "content": content,
            "content_type": "text",
            "content_attributes": {},
            "additional_attributes": {},
            "created_at": t,
            "message_type": message_type,
            "private": false,
            "source_id": null,
            "sender": sender,
            "account": {"id": self.account, "name": format!("Firma {}", self.account)},
            "inbox": {"id": self.inbox, "name": "Inbox"},
            "conversation": self.data("open", t, t as f64, Value::Null)
        })
    }

    /// `conversation_updated` with a status change at `t` + `ms`.
    fn status_updated(&self, from: &str, to: &str, t: i64, ms: i64, assignee: Value) -> Value {
        let mut v = self.data(to, t, t as f64 + ms as f64 / 1000.0, assignee);
        v["event"] = json!("conversation_updated");
        v["changed_attributes"] = json!([
            {"status": {"previous_value": from, "current_value": to}},
            {"updated_at": {"previous_value": iso(t - 5, 0), "current_value": iso(t, ms)}}
        ]);
        v
    }

    /// `conversation_status_changed`: only the status changed, the time is
    /// the top-level `updated_at`.
    fn status_changed(&self, from: &str, to: &str, updated: f64) -> Value {
        let mut v = self.data(to, 0, updated, Value::Null);
        v["event"] = json!("conversation_status_changed");
        v["changed_attributes"] = json!([{"status": {"previous_value": from, "current_value": to}}]);
        v
    }
}

fn user(id: i64) -> Value {
    json!({"id": id, "name": "Agent", "email": "agent@example.com", "type": "user"})
}

fn contact(id: i64) -> Value {
    json!({"id": id, "name": "Kundin", "type": "contact"})
}

struct Hooks<'a> {
    server: &'a Server,
    key: String,
}

impl Hooks<'_> {
    fn post(&self, account: i64, body: &Value) -> support::Response {
        let path = format!("/v1/webhooks/chatwoot?key={}&account={account}", self.key);
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.server
            .request("POST", &path, &[("Content-Type", "application/json")], &bytes)
            .unwrap_or_else(|e| panic!("POST webhook: {e}"))
    }

    /// Posts and checks how many events were new and how many duplicates.
    #[track_caller]
    fn send(&self, account: i64, body: &Value, accepted: u64, duplicates: u64) {
        let r = self.post(account, body);
        assert_eq!(r.status, 200, "{}: {}", body["event"], r.text());
        let v = r.json();
        assert_eq!(
            (v["accepted"].as_u64(), v["duplicates"].as_u64()),
            (Some(accepted), Some(duplicates)),
            "{}: {v}",
            body["event"]
        );
    }
}

#[track_caller]
fn approx(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - expected).abs() < 1e-6, "expected {expected}, got {got}");
}

#[test]
fn chatwoot_day_of_two_accounts_gives_the_hand_worked_kpis() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "service");
    let admin = create_key(&data, "acme", "admin");
    let server = Server::start(&data, &[]);
    let hooks = Hooks { server: &server, key };

    // A: web widget in a bot inbox; handoff, note, human reply, CSAT.
    let a = Conv {
        account: 1,
        id: 101,
        contact: 9,
        inbox: 3,
        channel: "Channel::WebWidget",
    };
    hooks.send(1, &a.created("pending", at(10, 0, 0)), 1, 0);
    hooks.send(
        1,
        &a.message(1001, at(10, 0, 0), "incoming", contact(9), "Mein Paket fehlt"),
        1,
        0,
    );
    let bot = json!({"id": 1, "name": "Menu bot", "type": "agent_bot"});
    hooks.send(
        1,
        &a.message(1002, at(10, 0, 2), "outgoing", bot, "Ich verbinde Sie"),
        1,
        0,
    );
    // The handoff arrives twice: as conversation_status_changed and as
    // conversation_updated; one event.
    hooks.send(
        1,
        &a.status_changed("pending", "open", at(10, 0, 30) as f64 + 0.5),
        1,
        0,
    );
    hooks.send(
        1,
        &a.status_updated("pending", "open", at(10, 0, 30), 500, Value::Null),
        0,
        1,
    );
    let mut assigned = a.data("open", at(10, 0, 0), at(10, 0, 40) as f64, user(5));
    assigned["event"] = json!("conversation_updated");
    assigned["changed_attributes"] = json!([
        {"assignee_id": {"previous_value": null, "current_value": 5}},
        {"updated_at": {"previous_value": iso(at(10, 0, 30), 500), "current_value": iso(at(10, 0, 31), 0)}}
    ]);
    hooks.send(1, &assigned, 1, 0);
    let mut note = a.message(1003, at(10, 0, 40), "outgoing", user(5), "Kunde ist VIP");
    note["private"] = json!(true);
    hooks.send(1, &note, 1, 0);
    hooks.send(
        1,
        &a.message(1004, at(10, 1, 30), "outgoing", user(5), "Ich kümmere mich"),
        1,
        0,
    );
    hooks.send(1, &a.status_updated("open", "resolved", at(10, 5, 0), 0, user(5)), 1, 0);
    let mut survey = a.message(1005, at(10, 5, 1), "template", Value::Null, "Wie war es?");
    survey["content_type"] = json!("input_csat");
    hooks.send(1, &survey, 1, 0);
    let mut answer = survey.clone();
    answer["event"] = json!("message_updated");
    answer["content_attributes"] =
        json!({"submitted_values": {"csat_survey_response": {"rating": 5, "feedback_message": "Top"}}});
    hooks.send(1, &answer, 1, 0);
    hooks.send(1, &answer, 0, 1);

    // B: Facebook, Captain answers and resolves while pending.
    let b = Conv {
        account: 1,
        id: 102,
        contact: 10,
        inbox: 4,
        channel: "Channel::FacebookPage",
    };
    hooks.send(1, &b.created("pending", at(11, 0, 0)), 1, 0);
    hooks.send(
        1,
        &b.message(1010, at(11, 0, 0), "incoming", contact(10), "Öffnungszeiten?"),
        1,
        0,
    );
    let captain = json!({"id": 1, "name": "Captain", "type": "captain_assistant"});
    hooks.send(
        1,
        &b.message(1011, at(11, 0, 4), "outgoing", captain, "9 bis 18 Uhr"),
        1,
        0,
    );
    hooks.send(1, &b.status_changed("pending", "resolved", at(11, 2, 0) as f64), 1, 0);

    // C: Telegram, an automation rule answers first, then a human.
    let c = Conv {
        account: 1,
        id: 103,
        contact: 11,
        inbox: 5,
        channel: "Channel::Telegram",
    };
    hooks.send(1, &c.created("open", at(12, 0, 0)), 1, 0);
    hooks.send(
        1,
        &c.message(1020, at(12, 0, 0), "incoming", contact(11), "Rechnung falsch"),
        1,
        0,
    );
    let mut rule = c.message(1021, at(12, 0, 1), "outgoing", Value::Null, "Danke, wir melden uns");
    rule["content_attributes"] = json!({"automation_rule_id": 7});
    hooks.send(1, &rule, 1, 0);
    hooks.send(
        1,
        &c.message(1022, at(12, 3, 0), "outgoing", user(1), "Ich korrigiere sie"),
        1,
        0,
    );
    hooks.send(
        1,
        &c.status_updated("open", "resolved", at(12, 10, 0), 0, Value::Null),
        1,
        0,
    );

    // D: account 2, the same display ids as A.
    let d = Conv {
        account: 2,
        id: 101,
        contact: 9,
        inbox: 3,
        channel: "Channel::Email",
    };
    hooks.send(2, &d.created("open", at(13, 0, 0)), 1, 0);
    let d_first = d.message(2001, at(13, 0, 0), "incoming", contact(9), "Kündigung");
    // Posted to account 1's URL by mistake: refused, not merged.
    let r = hooks.post(1, &d_first);
    assert_eq!(r.status, 422, "{}", r.text());
    hooks.send(2, &d_first, 1, 0);
    hooks.send(
        2,
        &d.message(2002, at(13, 0, 50), "outgoing", user(5), "Bestätigt"),
        1,
        0,
    );
    hooks.send(
        2,
        &d.status_updated("open", "resolved", at(13, 30, 0), 0, user(5)),
        1,
        0,
    );

    // E: a 3 MB HTML e-mail, above axum's 2 MiB default body limit.
    let e = Conv {
        account: 1,
        id: 104,
        contact: 12,
        inbox: 6,
        channel: "Channel::Email",
    };
    hooks.send(1, &e.created("open", at(14, 0, 0)), 1, 0);
    let html = format!(
        "<html><body>{}</body></html>",
        "<p>Rechnung im Anhang</p>".repeat(120_000)
    );
    assert!(html.len() > 3_000_000);
    hooks.send(1, &e.message(1030, at(14, 0, 0), "incoming", contact(12), &html), 1, 0);
    hooks.send(
        1,
        &e.message(1031, at(14, 1, 40), "outgoing", user(1), "Danke, erhalten"),
        1,
        0,
    );

    // Webhooks that store nothing are still counted, by reason.
    let typing = json!({"event": "conversation_typing_on", "conversation": {"id": 101}, "user": user(5)});
    let r = hooks.post(1, &typing);
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(0)),
        "{}",
        r.text()
    );
    let r = server
        .request("POST", "/v1/webhooks/chatwoot?account=1", &[], b"{}")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401);
    assert!(
        r.text().contains("key="),
        "tells Chatwoot users to put the key in the URL: {}",
        r.text()
    );
    let m = server
        .request("GET", "/metrics", &[], b"")
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    for (outcome, n) in [
        ("accepted", 28),
        ("ignored", 1),
        ("account", 1),
        ("unauthorized", 1),
        ("too_large", 0),
    ] {
        let line = format!("cxlake_webhooks_total{{source=\"chatwoot\",outcome=\"{outcome}\"}} {n}\n");
        assert!(m.contains(&line), "{line}: {m}");
    }

    let r = server
        .request(
            "GET",
            "/v1/kpis?from=2026-03-03&to=2026-03-04",
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let k = &v["kpis"];
    assert_eq!(k["conversations"]["n"], 5, "{k}");
    approx(&k["frt_s"]["mean"], 67.2);
    approx(&k["frt_s"]["median"], 50.0);
    approx(&k["sla_attainment"]["value"], 0.8);
    approx(&k["human_frt_s"]["mean"], 97.375);
    assert_eq!(k["human_frt_s"]["n"], 4);
    approx(&k["handling_s"]["mean"], 705.0);
    assert_eq!(k["handling_s"]["n"], 4);
    approx(&k["csat"]["mean"], 5.0);
    approx(&k["csat"]["response_rate"]["value"], 1.0);
    assert_eq!(k["csat"]["response_rate"]["n"], 1);
    approx(&k["transfer_rate"]["value"], 0.5);
    approx(&k["automation_rate"]["value"], 0.2);
    approx(&k["resolution_rate"]["value"], 0.8);
    approx(&k["conversations_per_agent"]["value"], 4.0 / 3.0);
}

/// HMAC-SHA256 of `"{timestamp}.{body}"`, as Chatwoot signs a webhook.
fn chatwoot_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &message);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Webhooks of account 1 signed with its secret, posted without a key.
struct SignedHooks<'a> {
    server: &'a Server,
    secret: &'a str,
}

impl SignedHooks<'_> {
    fn post_at(&self, url: &str, body: &Value, secret: &str, signed_at: i64) -> support::Response {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let ts = signed_at.to_string();
        let signature = chatwoot_signature(secret, &ts, &bytes);
        self.server
            .request(
                "POST",
                url,
                &[
                    ("Content-Type", "application/json"),
                    ("X-Chatwoot-Signature", &signature),
                    ("X-Chatwoot-Timestamp", &ts),
                ],
                &bytes,
            )
            .unwrap_or_else(|e| panic!("POST webhook: {e}"))
    }

    #[track_caller]
    fn send(&self, body: &Value, accepted: u64, duplicates: u64) {
        let now = chrono::Utc::now().timestamp();
        let r = self.post_at("/v1/webhooks/chatwoot?tenant=acme&account=1", body, self.secret, now);
        assert_eq!(r.status, 200, "{}: {}", body["event"], r.text());
        let v = r.json();
        assert_eq!(
            (v["accepted"].as_u64(), v["duplicates"].as_u64()),
            (Some(accepted), Some(duplicates)),
            "{}: {v}",
            body["event"]
        );
    }
}

/// 2026-03-04 (UTC), account 1 signing its webhooks:
///
/// | conversation | what happens | FRT | human FRT | handling |
/// |---|---|---|---|---|
/// | F: #201, WhatsApp, browser language de | customer 09:00:00; assigned to user 1 at 09:00:10 and to user 5 at 09:00:20 (both saves carry the same job-time `updated_at`); user 5 09:01:00; label `billing` 09:01:10; resolved 09:05:00; CSAT 3; reopened 09:20:00 when the customer writes again; user 5 09:21:00; resolved 09:30:00 | 60 | 60 | 1800 |
/// | G: #202, API inbox with an agent bot, conversation language en | customer 10:00:00; bot 10:00:03; resolved from pending 10:01:00; reopened to pending 10:30:00 (a bot inbox); bot 10:30:02; handoff 10:31:00; user 1 10:32:00; resolved 10:40:00 | 3 | 60 (from the handoff) | 2400 |
///
/// conversations 2; FRT mean 31.5; reopen rate 2/2; CSAT 3.0 over 1;
/// transfer rate 1/1 (G); automation rate 0 (G ends with an agent);
/// handling mean 2100; human FRT mean 60 over 2; conversations per agent
/// 2 / {user 1, user 5} = 1; by language: de F, en G; by tag: billing F.
#[test]
fn signed_webhooks_reopens_reassignments_labels_and_languages() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "service");
    let admin = create_key(&data, "acme", "admin");
    let server = Server::start(&data, &[]);
    let admin_auth = format!("Bearer {admin}");
    let secret = "whsec-account-1";
    let r = server
        .request(
            "PUT",
            "/v1/settings",
            &[("Authorization", &admin_auth), ("Content-Type", "application/json")],
            json!({"chatwoot_webhook_secrets": {"1": secret}})
                .to_string()
                .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let signed = SignedHooks {
        server: &server,
        secret,
    };
    let keyed = Hooks {
        server: &server,
        key: key.clone(),
    };
    let day = DAY + 86_400;
    let at = |h: i64, m: i64, s: i64| day + h * 3600 + m * 60 + s;

    // F: WhatsApp, reassigned, labelled, resolved, CSAT 3, reopened.
    let f = Conv {
        account: 1,
        id: 201,
        contact: 20,
        inbox: 7,
        channel: "Channel::Whatsapp",
    };
    signed.send(&f.created("open", at(9, 0, 0)), 1, 0);
    signed.send(
        &f.message(3001, at(9, 0, 0), "incoming", contact(20), "Falsche Abbuchung"),
        1,
        0,
    );
    // Both saves are delivered by jobs that read the same top-level
    // `updated_at`; only `changed_attributes` tells them apart.
    for (from, to, t) in [(Value::Null, 1, at(9, 0, 10)), (json!(1), 5, at(9, 0, 20))] {
        let mut v = f.data("open", at(9, 0, 0), at(9, 0, 20) as f64, user(to));
        v["event"] = json!("conversation_updated");
        v["changed_attributes"] = json!([
            {"assignee_id": {"previous_value": from, "current_value": to}},
            {"updated_at": {"previous_value": iso(t - 10, 0), "current_value": iso(t, 0)}}
        ]);
        signed.send(&v, 1, 0);
    }
    signed.send(
        &f.message(3002, at(9, 1, 0), "outgoing", user(5), "Ich prüfe das"),
        1,
        0,
    );
    let mut labelled = f.data("open", at(9, 0, 0), at(9, 1, 10) as f64, user(5));
    labelled["event"] = json!("conversation_updated");
    labelled["labels"] = json!(["billing"]);
    labelled["changed_attributes"] = json!([
        {"label_list": {"previous_value": [], "current_value": ["billing"]}},
        {"updated_at": {"previous_value": iso(at(9, 1, 0), 0), "current_value": iso(at(9, 1, 10), 0)}}
    ]);
    signed.send(&labelled, 1, 0);
    signed.send(&f.status_updated("open", "resolved", at(9, 5, 0), 0, user(5)), 1, 0);
    let mut survey = f.message(3003, at(9, 5, 1), "template", Value::Null, "Wie war es?");
    survey["content_type"] = json!("input_csat");
    signed.send(&survey, 1, 0);
    let mut answer = survey.clone();
    answer["event"] = json!("message_updated");
    answer["content_attributes"] = json!({"submitted_values": {"csat_survey_response": {"rating": 3}}});
    signed.send(&answer, 1, 0);
    signed.send(&f.status_updated("resolved", "open", at(9, 20, 0), 0, user(5)), 1, 0);
    signed.send(
        &f.message(3004, at(9, 20, 0), "incoming", contact(20), "Immer noch falsch"),
        1,
        0,
    );
    signed.send(
        &f.message(3005, at(9, 21, 0), "outgoing", user(5), "Jetzt korrigiert"),
        1,
        0,
    );
    signed.send(&f.status_updated("open", "resolved", at(9, 30, 0), 0, user(5)), 1, 0);

    // G: a bot inbox; Chatwoot reopens there to pending. Its first
    // webhook comes with the key in the URL and no signature (the
    // fallback for Chatwoot versions that do not sign).
    let g = Conv {
        account: 1,
        id: 202,
        contact: 21,
        inbox: 8,
        channel: "Channel::Api",
    };
    let mut created = g.created("pending", at(10, 0, 0));
    created["additional_attributes"] = json!({"conversation_language": "en"});
    keyed.send(1, &created, 1, 0);
    signed.send(
        &g.message(3010, at(10, 0, 0), "incoming", contact(21), "Where is my order?"),
        1,
        0,
    );
    let bot = json!({"id": 2, "name": "Order bot", "type": "agent_bot"});
    signed.send(
        &g.message(3011, at(10, 0, 3), "outgoing", bot.clone(), "It ships today"),
        1,
        0,
    );
    signed.send(&g.status_changed("pending", "resolved", at(10, 1, 0) as f64), 1, 0);
    signed.send(
        &g.status_updated("resolved", "pending", at(10, 30, 0), 0, Value::Null),
        1,
        0,
    );
    signed.send(&g.message(3012, at(10, 30, 2), "outgoing", bot, "Anything else?"), 1, 0);
    signed.send(
        &g.status_updated("pending", "open", at(10, 31, 0), 0, Value::Null),
        1,
        0,
    );
    signed.send(
        &g.message(3013, at(10, 32, 0), "outgoing", user(1), "Let me help"),
        1,
        0,
    );
    signed.send(&g.status_updated("open", "resolved", at(10, 40, 0), 0, user(1)), 1, 0);

    // Refused: a wrong signature even with a valid key in the URL; a
    // stale one; a signed webhook of an account without a secret and
    // without a key; an unsigned one without a key.
    let forged = g.message(3099, at(10, 50, 0), "incoming", contact(21), "forged");
    let now = chrono::Utc::now().timestamp();
    let with_key = format!("/v1/webhooks/chatwoot?key={key}&account=1");
    let r = signed.post_at(&with_key, &forged, "not-the-secret", now);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("bad-signature"), "{}", r.text());
    let r = signed.post_at(
        "/v1/webhooks/chatwoot?tenant=acme&account=1",
        &forged,
        secret,
        now - 3600,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("300 s"), "{}", r.text());
    let mut other_account = forged.clone();
    other_account["account"]["id"] = json!(2);
    let r = signed.post_at(
        "/v1/webhooks/chatwoot?tenant=acme&account=2",
        &other_account,
        secret,
        now,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("no webhook secret"), "{}", r.text());
    let r = server
        .request(
            "POST",
            "/v1/webhooks/chatwoot?tenant=acme&account=1",
            &[("Content-Type", "application/json")],
            forged.to_string().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401, "{}", r.text());

    let m = server
        .request("GET", "/metrics", &[], b"")
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    for (outcome, n) in [("accepted", 22), ("bad_signature", 2), ("unauthorized", 2)] {
        let line = format!("cxlake_webhooks_total{{source=\"chatwoot\",outcome=\"{outcome}\"}} {n}\n");
        assert!(m.contains(&line), "{line}: {m}");
    }
    // The settings' secret never reaches the audit log.
    let audit = server
        .request(
            "GET",
            "/v1/audit?action=settings.change",
            &[("Authorization", &admin_auth)],
            b"",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    assert!(
        audit.contains("chatwoot_webhook_secrets") && !audit.contains(secret),
        "{audit}"
    );

    let get = |path: &str| {
        let r = server
            .request("GET", path, &[("Authorization", &admin_auth)], b"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    };
    // Signed webhooks carry no key for `Server::request` to wait with.
    server.wait_for_facts(&admin_auth, 0);
    // The two reassignments are two events, not one dropped as a duplicate.
    let r = server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &admin_auth), ("Content-Type", "application/json")],
            json!({"sql": "select count(*) as n from events where type = 'conversation.assigned'"})
                .to_string()
                .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.json()["rows"], json!([[2]]), "{}", r.text());
    let v = get("/v1/kpis?from=2026-03-04&to=2026-03-05");
    let k = &v["kpis"];
    assert_eq!(k["conversations"]["n"], 2, "{k}");
    approx(&k["frt_s"]["mean"], 31.5);
    approx(&k["reopen_rate"]["value"], 1.0);
    assert_eq!(k["reopen_rate"]["n"], 2, "{k}");
    approx(&k["csat"]["mean"], 3.0);
    approx(&k["transfer_rate"]["value"], 1.0);
    approx(&k["automation_rate"]["value"], 0.0);
    approx(&k["resolution_rate"]["value"], 1.0);
    approx(&k["handling_s"]["mean"], 2100.0);
    approx(&k["human_frt_s"]["mean"], 60.0);
    assert_eq!(k["human_frt_s"]["n"], 2, "{k}");
    approx(&k["conversations_per_agent"]["value"], 1.0);

    let group = |by: &str, key: &str| {
        let v = get(&format!("/v1/kpis?from=2026-03-04&to=2026-03-05&group_by={by}"));
        v["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["key"][by] == key).cloned())
            .unwrap_or_else(|| panic!("no {by} group {key}: {v}"))
    };
    let de = group("language", "de");
    assert_eq!(de["kpis"]["conversations"]["n"], 1, "{de}");
    approx(&de["kpis"]["frt_s"]["mean"], 60.0);
    let en = group("language", "en");
    assert_eq!(en["kpis"]["conversations"]["n"], 1, "{en}");
    approx(&en["kpis"]["frt_s"]["mean"], 3.0);
    let billing = group("tag", "billing");
    assert_eq!(billing["kpis"]["conversations"]["n"], 1, "{billing}");
    approx(&billing["kpis"]["csat"]["mean"], 3.0);
    let by_agent = get("/v1/kpis?from=2026-03-04&to=2026-03-05&group_by=agent");
    let agents: Vec<String> = by_agent["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|g| g["key"]["agent"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(agents.len(), 2, "{by_agent}");
}
