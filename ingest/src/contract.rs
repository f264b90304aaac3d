//! Event contract v1: the typed form of one event and its validation.
//!
//! The wire form is one JSON object per event (see `DESIGN.md`, "Event
//! contract v1", and the JSON Schema in `ingest/schema/events-v1.json`).
//! [`Event::from_json`] turns one parsed object into a validated [`Event`]
//! or a list of [`FieldError`]s, each naming the field and saying what to
//! change. Validation collects every problem of an event, not just the
//! first, so a client fixes a bad line in one round trip.
//!
//! Rules worth knowing:
//! - Fields the contract does not know are kept in `attrs` (as JSON), never
//!   dropped. A known field that does not belong to the event's type (a
//!   `score` on a `message.created`) is treated the same way.
//! - Timestamps must carry an offset; they are stored as UTC microseconds.
//!   The contract accepts the years 1970 to 2199; live ingest narrows that
//!   to an [`EventWindow`] around the server's clock.
//! - Money is a decimal with at most [`AMOUNT_SCALE`] fractional digits,
//!   stored as an integer count of 1/10⁶ units so no float ever touches it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fractional digits kept for `amount` (stored as `Decimal128(18, 6)`):
/// AI usage is billed in fractions of a cent.
pub const AMOUNT_SCALE: u32 = 6;
/// Largest absolute amount that fits `Decimal128(18, 6)`.
const AMOUNT_MAX_SCALED: i128 = 999_999_999_999_999_999;
/// Longest accepted identifier (event, conversation, customer, order, ...).
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted free-text field (CSAT comment, source, ...).
pub const MAX_TEXT_LEN: usize = 8_192;

macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in contract order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire spelling (exact, lower case).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages and the JSON Schema.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(
    /// The event type (`type` on the wire).
    EventType {
        ConversationStarted = "conversation.started",
        MessageCreated = "message.created",
        ConversationAssigned = "conversation.assigned",
        ConversationHandoff = "conversation.handoff",
        ConversationResolved = "conversation.resolved",
        ConversationReopened = "conversation.reopened",
        ConversationTagged = "conversation.tagged",
        CsatRequested = "csat.requested",
        CsatSubmitted = "csat.submitted",
        OrderPlaced = "order.placed",
        OrderRefunded = "order.refunded",
        AgentStatusChanged = "agent.status_changed",
        ExperimentExposed = "experiment.exposed",
        CostIncurred = "cost.incurred",
    }
);

str_enum!(
    /// Where the conversation happens.
    Channel {
        Whatsapp = "whatsapp",
        Messenger = "messenger",
        FacebookComment = "facebook_comment",
        Instagram = "instagram",
        Line = "line",
        Wechat = "wechat",
        Webchat = "webchat",
        App = "app",
        Email = "email",
        Sms = "sms",
        Voice = "voice",
        Other = "other",
    }
);

str_enum!(
    /// Customer segment on `conversation.started`.
    CustomerTier { New = "new", Regular = "regular", Vip = "vip" }
);

str_enum!(
    /// Who wrote a message.
    Sender { Customer = "customer", Bot = "bot", Agent = "agent", System = "system" }
);

str_enum!(
    /// Whether an agent used the AI copilot's suggestion.
    AiSuggestion { None = "none", Accepted = "accepted", Edited = "edited" }
);

str_enum!(
    /// Why a bot handed a conversation to a human.
    HandoffReason {
        CustomerRequest = "customer_request",
        LowConfidence = "low_confidence",
        Policy = "policy",
        Sentiment = "sentiment",
        Other = "other",
    }
);

str_enum!(
    /// Who resolved a conversation.
    ResolvedBy { Bot = "bot", Agent = "agent" }
);

str_enum!(
    /// Who tagged a conversation.
    TagSource { Agent = "agent", Auto = "auto" }
);

str_enum!(
    /// An agent's presence.
    AgentStatus { Online = "online", Away = "away", Offline = "offline" }
);

str_enum!(
    /// What a `cost.incurred` paid for.
    CostKind { ChannelFee = "channel_fee", AiUsage = "ai_usage", Sms = "sms", Other = "other" }
);

/// One validated event. Field names follow the contract; `occurred_at_us`
/// is UTC microseconds since the Unix epoch; `amount_scaled` is the amount
/// times 10^[`AMOUNT_SCALE`]; `attrs` is a JSON object as text (empty
/// string when there are none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at_us: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_tier: Option<CustomerTier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_suggestion: Option<AiSuggestion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<HandoffReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<ResolvedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_source: Option<TagSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_scaled: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_kind: Option<CostKind>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attrs: String,
}

/// One problem with one field of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as spelled on the wire (`attrs.browser` for an attribute);
    /// empty when the problem is the line itself (malformed JSON).
    pub field: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// Only so that [`Event`] can derive `Default` while it is being built;
/// a validated event always has the type it was sent with.
impl Default for EventType {
    fn default() -> Self {
        EventType::ConversationStarted
    }
}

/// Which fields belong to which type; anything else goes to `attrs`.
fn type_fields(t: EventType) -> &'static [&'static str] {
    use EventType::*;
    match t {
        ConversationStarted => &["language", "region", "timezone", "customer_tier", "queue", "source"],
        MessageCreated => &[
            "message_id",
            "sender",
            "agent_id",
            "private",
            "automated",
            "template_id",
            "quick_reply_id",
            "ai_suggestion",
            "chars",
        ],
        ConversationAssigned => &["agent_id", "team", "queue"],
        ConversationHandoff => &["reason"],
        ConversationResolved => &["resolved_by", "agent_id"],
        ConversationReopened | CsatRequested => &[],
        ConversationTagged => &["tags", "tag_source"],
        CsatSubmitted => &["score", "comment"],
        OrderPlaced | OrderRefunded => &["order_id", "amount", "currency"],
        AgentStatusChanged => &["agent_id", "team", "status"],
        ExperimentExposed => &["experiment_key", "variant_key", "unit_id"],
        CostIncurred => &["cost_kind", "amount", "currency"],
    }
}

const ENVELOPE_FIELDS: &[&str] = &[
    "event_id",
    "tenant_id",
    "type",
    "occurred_at",
    "conversation_id",
    "customer_id",
    "channel",
    "channel_account",
    "attrs",
];

impl EventType {
    /// Whether the contract requires `conversation_id` on this type.
    pub fn needs_conversation(self) -> bool {
        use EventType::*;
        matches!(
            self,
            ConversationStarted
                | MessageCreated
                | ConversationAssigned
                | ConversationHandoff
                | ConversationResolved
                | ConversationReopened
                | ConversationTagged
                | CsatRequested
                | CsatSubmitted
                | ExperimentExposed
        )
    }

    /// Fields of this type beyond the envelope.
    pub fn fields(self) -> &'static [&'static str] {
        type_fields(self)
    }
}

/// Collects field errors while an event is read.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn string(&mut self, field: &str, max_len: usize) -> Option<String> {
        let v = self.get(field)?;
        match v {
            Value::String(s) if s.is_empty() => {
                self.fail(field, "must not be empty");
                None
            }
            Value::String(s) if s.len() > max_len => {
                self.fail(
                    field,
                    format!("is {} bytes long; at most {max_len} are accepted", s.len()),
                );
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.fail(field, format!("must be a string, got {}", kind(other)));
                None
            }
        }
    }

    fn required_string(&mut self, field: &str, max_len: usize) -> Option<String> {
        if self.get(field).is_none() {
            self.fail(field, "is required");
            return None;
        }
        self.string(field, max_len)
    }

    fn enumeration<T>(&mut self, field: &str, parse: fn(&str) -> Option<T>, expected: fn() -> String) -> Option<T> {
        let v = self.get(field)?;
        match v {
            Value::String(s) => match parse(s) {
                Some(t) => Some(t),
                None => {
                    self.fail(field, format!("unknown value {s:?}; expected one of: {}", expected()));
                    None
                }
            },
            other => {
                self.fail(field, format!("must be a string, got {}", kind(other)));
                None
            }
        }
    }

    fn required_enum<T>(&mut self, field: &str, parse: fn(&str) -> Option<T>, expected: fn() -> String) -> Option<T> {
        if self.get(field).is_none() {
            self.fail(field, format!("is required; one of: {}", expected()));
            return None;
        }
        self.enumeration(field, parse, expected)
    }

    fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.get(field)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.fail(field, format!("must be true or false, got {}", kind(other)));
                None
            }
        }
    }

    fn integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.get(field)?;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.fail(
                    field,
                    format!("{n} is out of range; expected an integer from {min} to {max}"),
                );
                None
            }
            None => {
                self.fail(
                    field,
                    format!("must be an integer from {min} to {max}, got {}", kind_or_value(v)),
                );
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn kind_or_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}

/// Parses an RFC 3339 timestamp that carries an offset into UTC microseconds.
pub fn parse_timestamp_us(s: &str) -> Result<i64, String> {
    let dt = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
        format!("{s:?} is not an RFC 3339 timestamp with an offset (e.g. 2026-03-01T09:30:00.250+08:00): {e}")
    })?;
    let year = chrono::Datelike::year(&dt);
    if !(1970..=2199).contains(&year) {
        return Err(format!("{s:?} is outside the years 1970 to 2199"));
    }
    Ok(dt.timestamp_micros())
}

/// How far from the server's clock an `occurred_at` may lie.
///
/// The contract alone accepts the years 1970 to 2199, which lets one batch
/// of wrong dates create tens of thousands of daily partitions and fill the
/// dashboards with decades of empty buckets. Live ingest therefore accepts
/// only events from [`max_age_days`](Self::max_age_days) before to
/// [`max_future_s`](Self::max_future_s) after the clock reading taken when
/// the body arrived; loading older history is an explicit choice (a wider
/// window for that load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventWindow {
    /// Oldest accepted event, in whole days before now.
    pub max_age_days: u32,
    /// Latest accepted event, in seconds after now (senders' clocks drift).
    pub max_future_s: u32,
}

impl EventWindow {
    /// 400 days back (a year and a season of history), one day ahead.
    pub const DEFAULT: EventWindow = EventWindow {
        max_age_days: 400,
        max_future_s: 86_400,
    };

    /// Checks `occurred_at_us` against the window around `now_us` (both
    /// UTC microseconds); the error names the window and how to widen it.
    pub fn check(&self, occurred_at_us: i64, now_us: i64) -> Result<(), FieldError> {
        let earliest_us = now_us.saturating_sub(i64::from(self.max_age_days).saturating_mul(86_400_000_000));
        let latest_us = now_us.saturating_add(i64::from(self.max_future_s).saturating_mul(1_000_000));
        if (earliest_us..=latest_us).contains(&occurred_at_us) {
            return Ok(());
        }
        let show = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| us.to_string())
        };
        let (what, setting) = if occurred_at_us < earliest_us {
            (
                format!("is more than {} days before the server's clock", self.max_age_days),
                "load older history with `cxlake ingest --max-event-age-days N`, or have the operator raise \
                 max_event_age_days (env CXLAKE_MAX_EVENT_AGE_DAYS)",
            )
        } else {
            (
                format!("is more than {} s after the server's clock", self.max_future_s),
                "check the sender's clock and time zone offset, or have the operator raise max_event_future_s \
                 (env CXLAKE_MAX_EVENT_FUTURE_S)",
            )
        };
        Err(FieldError::new(
            "occurred_at",
            format!(
                "{} {what}; accepted are events from {} to {} ({} days back, {} s ahead); {setting}",
                show(occurred_at_us),
                show(earliest_us),
                show(latest_us),
                self.max_age_days,
                self.max_future_s,
            ),
        ))
    }
}

impl Default for EventWindow {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// BCP 47 shape: a 2–3 letter primary language, then 1–8 alphanumeric subtags.
fn valid_language(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Parses a decimal amount (a JSON number or a string such as `"19.99"`)
/// into units of 10^-[`AMOUNT_SCALE`], without going through a float.
pub fn parse_amount_scaled(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    // Reject exponents: they are legal JSON but a money amount never needs one.
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    let well_formed = !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac_part.is_empty());
    if !well_formed {
        return Err(format!("{text:?} is not a decimal number such as 19.99"));
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > AMOUNT_SCALE as usize {
        return Err(format!("{text:?} has more than {AMOUNT_SCALE} decimal places"));
    }
    let mut value: i128 = 0;
    for b in int_part.bytes().chain(frac_trimmed.bytes()) {
        value = value * 10 + i128::from(b - b'0');
        if value > AMOUNT_MAX_SCALED {
            return Err(format!("{text:?} is too large"));
        }
    }
    value *= 10_i128.pow(AMOUNT_SCALE - frac_trimmed.len() as u32);
    if value > AMOUNT_MAX_SCALED {
        return Err(format!("{text:?} is too large"));
    }
    let value = i64::try_from(value).map_err(|_| format!("{text:?} is too large"))?;
    Ok(if neg { -value } else { value })
}

/// Formats a scaled amount back to its shortest decimal text.
pub fn format_amount(scaled: i64) -> String {
    let scale = 10_i64.pow(AMOUNT_SCALE);
    let sign = if scaled < 0 { "-" } else { "" };
    let abs = scaled.unsigned_abs();
    let int = abs / scale as u64;
    let frac = abs % scale as u64;
    if frac == 0 {
        format!("{sign}{int}")
    } else {
        let f = format!("{frac:0width$}", width = AMOUNT_SCALE as usize);
        format!("{sign}{int}.{}", f.trim_end_matches('0'))
    }
}

impl Event {
    /// Validates one parsed JSON value against contract v1.
    pub fn from_json(value: &Value) -> Result<Event, Vec<FieldError>> {
        let Value::Object(obj) = value else {
            return Err(vec![FieldError::new(
                "",
                format!("an event must be a JSON object, got {}", kind(value)),
            )]);
        };
        let mut r = Reader {
            obj,
            errors: Vec::new(),
        };
        let mut e = Event::default();

        if let Some(id) = r.required_string("event_id", MAX_ID_LEN) {
            e.event_id = id;
        }
        if let Some(t) = r.required_string("tenant_id", 64) {
            if model::TenantId::is_valid(&t) {
                e.tenant_id = t;
            } else {
                r.fail("tenant_id", format!("{t:?} must match [a-z0-9_-]{{1,64}}"));
            }
        }
        let event_type = r.required_enum("type", EventType::parse, EventType::expected);
        match r.get("occurred_at") {
            None => r.fail("occurred_at", "is required (RFC 3339 with an offset)"),
            Some(Value::String(s)) => match parse_timestamp_us(s) {
                Ok(us) => e.occurred_at_us = us,
                Err(reason) => r.fail("occurred_at", reason),
            },
            Some(other) => r.fail(
                "occurred_at",
                format!("must be an RFC 3339 string, got {}", kind(other)),
            ),
        }
        e.conversation_id = r.string("conversation_id", MAX_ID_LEN);
        e.customer_id = r.string("customer_id", MAX_ID_LEN);
        e.channel = r.enumeration("channel", Channel::parse, Channel::expected);
        e.channel_account = r.string("channel_account", MAX_ID_LEN);

        let Some(t) = event_type else {
            return Err(r.errors);
        };
        e.event_type = t;
        if t.needs_conversation()
            && e.conversation_id.is_none()
            && !r.errors.iter().any(|f| f.field == "conversation_id")
        {
            r.fail("conversation_id", format!("is required for {t}"));
        }

        use EventType::*;
        match t {
            ConversationStarted => {
                if let Some(lang) = r.string("language", 35) {
                    if valid_language(&lang) {
                        e.language = Some(lang);
                    } else {
                        r.fail(
                            "language",
                            format!("{lang:?} is not a BCP 47 tag such as en, zh-CN or pt-BR"),
                        );
                    }
                }
                if let Some(region) = r.string("region", 2) {
                    if region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic()) {
                        e.region = Some(region.to_ascii_uppercase());
                    } else {
                        r.fail(
                            "region",
                            format!("{region:?} is not an ISO 3166-1 alpha-2 code such as DE or CN"),
                        );
                    }
                }
                if let Some(tz) = r.string("timezone", 64) {
                    if tz.parse::<chrono_tz::Tz>().is_ok() {
                        e.timezone = Some(tz);
                    } else {
                        r.fail(
                            "timezone",
                            format!("{tz:?} is not an IANA time zone such as Europe/Berlin"),
                        );
                    }
                }
                e.customer_tier = r.enumeration("customer_tier", CustomerTier::parse, CustomerTier::expected);
                e.queue = r.string("queue", MAX_ID_LEN);
                e.source = r.string("source", MAX_ID_LEN);
            }
            MessageCreated => {
                e.message_id = r.string("message_id", MAX_ID_LEN);
                e.sender = r.required_enum("sender", Sender::parse, Sender::expected);
                e.agent_id = r.string("agent_id", MAX_ID_LEN);
                if e.sender == Some(Sender::Agent) && e.agent_id.is_none() && r.get("agent_id").is_none() {
                    r.fail("agent_id", "is required when sender is agent");
                }
                e.private = r.boolean("private");
                e.automated = r.boolean("automated");
                e.template_id = r.string("template_id", MAX_ID_LEN);
                e.quick_reply_id = r.string("quick_reply_id", MAX_ID_LEN);
                e.ai_suggestion = r.enumeration("ai_suggestion", AiSuggestion::parse, AiSuggestion::expected);
                e.chars = r.integer("chars", 0, i64::from(i32::MAX)).map(|n| n as i32);
            }
            ConversationAssigned => {
                e.agent_id = r.string("agent_id", MAX_ID_LEN);
                e.team = r.string("team", MAX_ID_LEN);
                e.queue = r.string("queue", MAX_ID_LEN);
                if e.agent_id.is_none() && e.team.is_none() && e.queue.is_none() && r.errors.is_empty() {
                    r.fail(
                        "agent_id",
                        "conversation.assigned needs at least one of agent_id, team, queue",
                    );
                }
            }
            ConversationHandoff => {
                e.reason = r.enumeration("reason", HandoffReason::parse, HandoffReason::expected);
            }
            ConversationResolved => {
                e.resolved_by = r.required_enum("resolved_by", ResolvedBy::parse, ResolvedBy::expected);
                e.agent_id = r.string("agent_id", MAX_ID_LEN);
            }
            ConversationReopened | CsatRequested => {}
            ConversationTagged => {
                match r.get("tags") {
                    None => r.fail("tags", "is required: a non-empty list of strings"),
                    Some(Value::Array(items)) if items.is_empty() => r.fail("tags", "must not be empty"),
                    Some(Value::Array(items)) => {
                        let mut tags = Vec::with_capacity(items.len());
                        for (i, item) in items.iter().enumerate() {
                            match item {
                                Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => tags.push(s.clone()),
                                Value::String(_) => {
                                    r.fail(&format!("tags[{i}]"), format!("must be 1 to {MAX_ID_LEN} bytes"))
                                }
                                other => {
                                    r.fail(&format!("tags[{i}]"), format!("must be a string, got {}", kind(other)))
                                }
                            }
                        }
                        e.tags = Some(tags);
                    }
                    Some(other) => r.fail("tags", format!("must be a list of strings, got {}", kind(other))),
                }
                e.tag_source = r.enumeration("tag_source", TagSource::parse, TagSource::expected);
            }
            CsatSubmitted => {
                if r.get("score").is_none() {
                    r.fail("score", "is required: an integer from 1 to 5");
                }
                e.score = r.integer("score", 1, 5).map(|n| n as i32);
                e.comment = r.string("comment", MAX_TEXT_LEN);
            }
            OrderPlaced | OrderRefunded | CostIncurred => {
                if t == CostIncurred {
                    e.cost_kind = r.required_enum("cost_kind", CostKind::parse, CostKind::expected);
                } else {
                    e.order_id = r.required_string("order_id", MAX_ID_LEN);
                }
                match r.get("amount") {
                    None => r.fail("amount", "is required: a decimal such as 19.99"),
                    Some(Value::Number(n)) => match parse_amount_scaled(&n.to_string()) {
                        Ok(v) => e.amount_scaled = Some(v),
                        Err(reason) => r.fail("amount", reason),
                    },
                    Some(Value::String(s)) => match parse_amount_scaled(s) {
                        Ok(v) => e.amount_scaled = Some(v),
                        Err(reason) => r.fail("amount", reason),
                    },
                    Some(other) => r.fail("amount", format!("must be a decimal number, got {}", kind(other))),
                }
                if let Some(v) = e.amount_scaled {
                    if v < 0 {
                        r.fail("amount", "must not be negative (a refund is its own event type)");
                    }
                }
                match r.required_string("currency", 3) {
                    Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => e.currency = Some(c),
                    Some(c) => r.fail("currency", format!("{c:?} is not an ISO 4217 code such as EUR or CNY")),
                    None => {}
                }
            }
            AgentStatusChanged => {
                e.agent_id = r.required_string("agent_id", MAX_ID_LEN);
                e.team = r.string("team", MAX_ID_LEN);
                e.status = r.required_enum("status", AgentStatus::parse, AgentStatus::expected);
            }
            ExperimentExposed => {
                e.experiment_key = r.required_string("experiment_key", MAX_ID_LEN);
                e.variant_key = r.required_string("variant_key", MAX_ID_LEN);
                e.unit_id = r.string("unit_id", MAX_ID_LEN);
            }
        }

        // Everything else is kept in attrs: the explicit `attrs` object first,
        // then unknown top-level fields (including known fields that do not
        // belong to this type), so nothing a client sent is dropped.
        let own = type_fields(t);
        let mut attrs = Map::new();
        match obj.get("attrs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(a)) => {
                for (k, v) in a {
                    match v {
                        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                            attrs.insert(k.clone(), v.clone());
                        }
                        Value::Null => {}
                        other => r.fail(
                            &format!("attrs.{k}"),
                            format!("attribute values must be strings or numbers, got {}", kind(other)),
                        ),
                    }
                }
            }
            Some(other) => r.fail("attrs", format!("must be an object, got {}", kind(other))),
        }
        for (k, v) in obj {
            if ENVELOPE_FIELDS.contains(&k.as_str()) || own.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            attrs.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !attrs.is_empty() {
            e.attrs = Value::Object(attrs).to_string();
        }

        if r.errors.is_empty() { Ok(e) } else { Err(r.errors) }
    }
}

#[cfg(test)]
mod tests;
