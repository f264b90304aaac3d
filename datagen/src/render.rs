//! Rendering events as contract-v1 JSON lines, by hand: no intermediate
//! `serde_json::Value`, no allocation per event. Every string that did not
//! come from the static tables is escaped once, when the renderer is built.

use crate::config::{OffsetStyle, Precision};
use crate::event::*;
use crate::stats::{EventType, GenStats};
use crate::world::{US, World, offset_at};

/// `"..."` with JSON escaping.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Debug)]
struct TenantStrings {
    /// `"tenant_id":"..."` prefix fragment.
    tenant_field: String,
    /// `,"channel":"..","channel_account":".."` per account.
    account_fields: Vec<String>,
    /// Per locale: `,"language":..,"region":..,"timezone":..`
    locale_fields: Vec<String>,
    /// Per locale: language tag (for nothing else than comments).
    queue_names: Vec<String>,
    team_names: Vec<String>,
    currency: String,
    offset_local: bool,
    micros: bool,
    tz: chrono_tz::Tz,
    /// Cache of the zone offset: (UTC hour number, offset seconds).
    offset_cache: (i64, i64),
    /// One top-level field outside the contract, for webchat starts.
    unknown_ok: bool,
}

#[derive(Debug)]
pub(crate) struct Renderer {
    tenants: Vec<TenantStrings>,
    experiment_field: String,
    variant_fields: Vec<String>,
    variant_templates: Vec<String>,
    comments: Vec<String>,
}

fn push_u64(buf: &mut String, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Digits are ASCII.
    buf.push_str(std::str::from_utf8(&tmp[i..]).unwrap_or("0"));
}

fn push_b36(buf: &mut String, mut v: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut tmp = [0u8; 13];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(v % 36) as usize];
        v /= 36;
        if v == 0 {
            break;
        }
    }
    buf.push_str(std::str::from_utf8(&tmp[i..]).unwrap_or("0"));
}

fn push_padded(buf: &mut String, v: u32, width: usize) {
    let mut tmp = [b'0'; 10];
    let mut x = v;
    for i in (0..width).rev() {
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    buf.push_str(std::str::from_utf8(&tmp[..width]).unwrap_or("0"));
}

/// A decimal with `scale` implied fraction digits, trailing zeros trimmed
/// down to `min_frac` digits: `push_decimal(1234, 2, 2)` = `12.34`.
fn push_decimal(buf: &mut String, v: i64, scale: u32, min_frac: u32) {
    if v < 0 {
        buf.push('-');
    }
    let v = v.unsigned_abs();
    let div = 10u64.pow(scale);
    push_u64(buf, v / div);
    let mut frac = v % div;
    let mut digits = scale;
    while digits > min_frac && frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    if digits > 0 {
        buf.push('.');
        push_padded(buf, frac as u32, digits as usize);
    }
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl TenantStrings {
    fn push_timestamp(&mut self, buf: &mut String, t_us: i64) {
        let off_s = if self.offset_local {
            let hour = t_us.div_euclid(3600 * US);
            if self.offset_cache.0 != hour {
                self.offset_cache = (hour, offset_at(&self.tz, t_us));
            }
            self.offset_cache.1
        } else {
            0
        };
        let local = t_us + off_s * US;
        let days = local.div_euclid(86_400 * US);
        let in_day = local.rem_euclid(86_400 * US);
        let (y, m, d) = civil_from_days(days);
        let secs = (in_day / US) as u32;
        buf.push('"');
        push_padded(buf, y.clamp(0, 9999) as u32, 4);
        buf.push('-');
        push_padded(buf, m, 2);
        buf.push('-');
        push_padded(buf, d, 2);
        buf.push('T');
        push_padded(buf, secs / 3600, 2);
        buf.push(':');
        push_padded(buf, secs / 60 % 60, 2);
        buf.push(':');
        push_padded(buf, secs % 60, 2);
        buf.push('.');
        let frac = (in_day % US) as u32;
        if self.micros {
            push_padded(buf, frac, 6);
        } else {
            push_padded(buf, frac / 1000, 3);
        }
        if self.offset_local {
            buf.push(if off_s < 0 { '-' } else { '+' });
            let a = off_s.unsigned_abs() as u32;
            push_padded(buf, a / 3600, 2);
            buf.push(':');
            push_padded(buf, a / 60 % 60, 2);
        } else {
            buf.push('Z');
        }
        buf.push('"');
    }
}

impl Renderer {
    pub(crate) fn new(world: &World) -> Renderer {
        let tenants = world
            .tenants
            .iter()
            .map(|tw| {
                let p = &tw.profile;
                TenantStrings {
                    tenant_field: format!(",\"tenant_id\":{}", json_string(&p.tenant_id)),
                    account_fields: p
                        .accounts
                        .iter()
                        .map(|a| {
                            format!(
                                ",\"channel\":\"{}\",\"channel_account\":{}",
                                a.channel.as_str(),
                                json_string(&a.account)
                            )
                        })
                        .collect(),
                    locale_fields: p
                        .locales
                        .iter()
                        .map(|l| {
                            format!(
                                ",\"language\":{},\"region\":{},\"timezone\":{}",
                                json_string(&l.language),
                                json_string(&l.region),
                                json_string(&l.timezone)
                            )
                        })
                        .collect(),
                    queue_names: p.queues.iter().map(|q| json_string(&q.name)).collect(),
                    team_names: p.teams.iter().map(|t| json_string(&t.name)).collect(),
                    currency: json_string(&p.currency),
                    offset_local: p.timestamps.offset == OffsetStyle::Local,
                    micros: p.timestamps.precision == Precision::Micros,
                    tz: p.timezone,
                    offset_cache: (i64::MIN, 0),
                    unknown_ok: world.unknown_fields,
                }
            })
            .collect();
        let (experiment_field, variant_fields, variant_templates) = match &world.experiment {
            Some(exp) => (
                format!(",\"experiment_key\":{}", json_string(&exp.key)),
                exp.variants
                    .iter()
                    .map(|v| format!(",\"variant_key\":{}", json_string(&v.key)))
                    .collect(),
                exp.variants
                    .iter()
                    .map(|v| json_string(&format!("tpl_{}_{}", exp.key, v.key)))
                    .collect(),
            ),
            None => (String::new(), Vec::new(), Vec::new()),
        };
        let comments = COMMENTS
            .iter()
            .flat_map(|(_, bands)| bands.iter().flat_map(|b| b.iter().map(|c| json_string(c))))
            .collect();
        Renderer {
            tenants,
            experiment_field,
            variant_fields,
            variant_templates,
            comments,
        }
    }

    /// Appends one JSON object (no newline) and counts it.
    pub(crate) fn render(&mut self, ev: &Ev, buf: &mut String, stats: &mut GenStats) {
        let ts = &mut self.tenants[ev.tenant as usize];
        let ty = event_type(&ev.body);
        stats.count(ty, ev.tenant as usize);
        buf.push_str("{\"event_id\":\"");
        match ev.id {
            EvId::Conv { conv, seq } => {
                buf.push('c');
                push_b36(buf, conv);
                buf.push('-');
                push_b36(buf, seq as u64);
            }
            EvId::Agent { agent, day, seq } => {
                buf.push('a');
                push_b36(buf, agent as u64);
                buf.push('-');
                push_b36(buf, day as u64);
                buf.push('-');
                push_b36(buf, seq as u64);
            }
            EvId::Organic { day, k, refund } => {
                buf.push('o');
                push_b36(buf, day as u64);
                buf.push('-');
                push_b36(buf, k as u64);
                if refund {
                    buf.push_str("-r");
                }
            }
        }
        buf.push('"');
        buf.push_str(&ts.tenant_field);
        buf.push_str(",\"type\":\"");
        buf.push_str(ty.as_str());
        buf.push_str("\",\"occurred_at\":");
        ts.push_timestamp(buf, ev.t_us);
        if ev.conv != NONE64 {
            buf.push_str(",\"conversation_id\":\"conv_");
            push_u64(buf, ev.conv);
            buf.push('"');
        }
        if ev.customer != NONE64 {
            buf.push_str(",\"customer_id\":\"cus_");
            push_u64(buf, ev.customer);
            buf.push('"');
        }
        if ev.account != NONE16 {
            buf.push_str(&ts.account_fields[ev.account as usize]);
        }
        let push_agent = |buf: &mut String, agent: u32| {
            buf.push_str(",\"agent_id\":\"agt_");
            push_padded(buf, agent, if agent < 10_000 { 4 } else { 9 });
            buf.push('"');
        };
        match ev.body {
            Body::Started {
                locale,
                tier,
                queue,
                source,
                attrs,
            } => {
                buf.push_str(&ts.locale_fields[locale as usize]);
                buf.push_str(match tier {
                    Tier::New => ",\"customer_tier\":\"new\"",
                    Tier::Regular => ",\"customer_tier\":\"regular\"",
                    Tier::Vip => ",\"customer_tier\":\"vip\"",
                });
                buf.push_str(",\"queue\":");
                buf.push_str(&ts.queue_names[queue as usize]);
                buf.push_str(",\"source\":\"");
                buf.push_str(SOURCES[source as usize]);
                buf.push('"');
                if attrs != NONE16 {
                    buf.push_str(",\"attrs\":");
                    buf.push_str(START_ATTRS[attrs as usize]);
                    if ts.unknown_ok && attrs < 3 {
                        // A field outside the contract at top level: ingest
                        // must keep it (in attrs), not drop it.
                        buf.push_str(",\"widget_version\":\"3.8.1\"");
                    }
                }
            }
            Body::Message(m) => {
                buf.push_str(",\"message_id\":\"m");
                if let EvId::Conv { conv, seq } = ev.id {
                    push_b36(buf, conv);
                    buf.push('-');
                    push_b36(buf, seq as u64);
                }
                buf.push_str(match m.sender {
                    Sender::Customer => "\",\"sender\":\"customer\"",
                    Sender::Bot => "\",\"sender\":\"bot\"",
                    Sender::Agent => "\",\"sender\":\"agent\"",
                    Sender::System => "\",\"sender\":\"system\"",
                });
                if m.agent != NONE32 {
                    push_agent(buf, m.agent);
                }
                buf.push_str(if m.private {
                    ",\"private\":true"
                } else {
                    ",\"private\":false"
                });
                buf.push_str(if m.automated {
                    ",\"automated\":true"
                } else {
                    ",\"automated\":false"
                });
                if m.template != NONE16 {
                    buf.push_str(",\"template_id\":");
                    if m.template >= TPL_VARIANT_BASE {
                        let v = (m.template - TPL_VARIANT_BASE) as usize;
                        buf.push_str(self.variant_templates.get(v).map_or("\"tpl_greeting\"", |s| s));
                    } else {
                        buf.push('"');
                        buf.push_str(TEMPLATES[m.template as usize]);
                        buf.push('"');
                    }
                }
                if m.quick_reply != NONE16 {
                    buf.push_str(",\"quick_reply_id\":\"");
                    buf.push_str(QUICK_REPLIES[m.quick_reply as usize]);
                    buf.push('"');
                }
                match m.ai {
                    Ai::Absent => {}
                    Ai::None => buf.push_str(",\"ai_suggestion\":\"none\""),
                    Ai::Accepted => buf.push_str(",\"ai_suggestion\":\"accepted\""),
                    Ai::Edited => buf.push_str(",\"ai_suggestion\":\"edited\""),
                }
                buf.push_str(",\"chars\":");
                push_u64(buf, m.chars as u64);
                if m.attrs != NONE16 {
                    buf.push_str(",\"attrs\":");
                    buf.push_str(MSG_ATTRS[m.attrs as usize]);
                }
            }
            Body::Assigned { agent, team, queue } => {
                push_agent(buf, agent);
                buf.push_str(",\"team\":");
                buf.push_str(&ts.team_names[team as usize]);
                buf.push_str(",\"queue\":");
                buf.push_str(&ts.queue_names[queue as usize]);
            }
            Body::Handoff { reason } => buf.push_str(match reason {
                Reason::CustomerRequest => ",\"reason\":\"customer_request\"",
                Reason::LowConfidence => ",\"reason\":\"low_confidence\"",
                Reason::Policy => ",\"reason\":\"policy\"",
                Reason::Sentiment => ",\"reason\":\"sentiment\"",
                Reason::Other => ",\"reason\":\"other\"",
            }),
            Body::Resolved { agent } => {
                if agent == NONE32 {
                    buf.push_str(",\"resolved_by\":\"bot\"");
                } else {
                    buf.push_str(",\"resolved_by\":\"agent\"");
                    push_agent(buf, agent);
                }
            }
            Body::Reopened | Body::CsatRequested => {}
            Body::Tagged { tags, auto } => {
                buf.push_str(",\"tags\":[");
                let mut first = true;
                for (i, name) in TAG_NAMES.iter().enumerate() {
                    if tags & (1 << i) != 0 {
                        if !first {
                            buf.push(',');
                        }
                        first = false;
                        buf.push('"');
                        buf.push_str(name);
                        buf.push('"');
                    }
                }
                buf.push_str(if auto {
                    "],\"tag_source\":\"auto\""
                } else {
                    "],\"tag_source\":\"agent\""
                });
            }
            Body::CsatSubmitted { score, comment } => {
                buf.push_str(",\"score\":");
                push_u64(buf, score as u64);
                if comment != NONE16 {
                    buf.push_str(",\"comment\":");
                    buf.push_str(&self.comments[comment as usize]);
                }
            }
            Body::OrderPlaced {
                order,
                amount_cents,
                items,
                payment,
            } => {
                push_order(buf, order);
                buf.push_str(",\"amount\":");
                push_decimal(buf, amount_cents, 2, 2);
                buf.push_str(",\"currency\":");
                buf.push_str(&ts.currency);
                buf.push_str(",\"attrs\":{\"items\":");
                push_u64(buf, items as u64);
                buf.push_str(",\"payment_method\":\"");
                buf.push_str(PAYMENT_METHODS[payment as usize]);
                buf.push_str("\"}");
            }
            Body::OrderRefunded { order, amount_cents } => {
                push_order(buf, order);
                buf.push_str(",\"amount\":");
                push_decimal(buf, amount_cents, 2, 2);
                buf.push_str(",\"currency\":");
                buf.push_str(&ts.currency);
            }
            Body::AgentStatus { agent, team, status } => {
                push_agent(buf, agent);
                buf.push_str(",\"team\":");
                buf.push_str(&ts.team_names[team as usize]);
                buf.push_str(match status {
                    Status::Online => ",\"status\":\"online\"",
                    Status::Away => ",\"status\":\"away\"",
                    Status::Offline => ",\"status\":\"offline\"",
                });
            }
            Body::Exposed { variant } => {
                buf.push_str(&self.experiment_field);
                buf.push_str(self.variant_fields.get(variant as usize).map_or("", |s| s));
                buf.push_str(",\"unit_id\":\"cus_");
                push_u64(buf, ev.customer);
                buf.push('"');
            }
            Body::Cost { kind, amount_micros } => {
                buf.push_str(match kind {
                    CostKind::ChannelFee => ",\"cost_kind\":\"channel_fee\"",
                    CostKind::AiUsage => ",\"cost_kind\":\"ai_usage\"",
                    CostKind::Sms => ",\"cost_kind\":\"sms\"",
                    CostKind::Other => ",\"cost_kind\":\"other\"",
                });
                buf.push_str(",\"amount\":");
                push_decimal(buf, amount_micros, 6, 2);
                buf.push_str(",\"currency\":");
                buf.push_str(&ts.currency);
            }
        }
        buf.push('}');
    }
}

fn push_order(buf: &mut String, order: OrderRef) {
    buf.push_str(",\"order_id\":\"ord_");
    match order {
        OrderRef::Conv(conv) => {
            buf.push('c');
            push_b36(buf, conv);
        }
        OrderRef::Organic { day, k } => {
            buf.push('d');
            push_b36(buf, day as u64);
            buf.push('_');
            push_b36(buf, k as u64);
        }
    }
    buf.push('"');
}

fn event_type(body: &Body) -> EventType {
    match body {
        Body::Started { .. } => EventType::ConversationStarted,
        Body::Message(_) => EventType::MessageCreated,
        Body::Assigned { .. } => EventType::ConversationAssigned,
        Body::Handoff { .. } => EventType::ConversationHandoff,
        Body::Resolved { .. } => EventType::ConversationResolved,
        Body::Reopened => EventType::ConversationReopened,
        Body::Tagged { .. } => EventType::ConversationTagged,
        Body::CsatRequested => EventType::CsatRequested,
        Body::CsatSubmitted { .. } => EventType::CsatSubmitted,
        Body::OrderPlaced { .. } => EventType::OrderPlaced,
        Body::OrderRefunded { .. } => EventType::OrderRefunded,
        Body::AgentStatus { .. } => EventType::AgentStatusChanged,
        Body::Exposed { .. } => EventType::ExperimentExposed,
        Body::Cost { .. } => EventType::CostIncurred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn decimals() {
        let mut b = String::new();
        push_decimal(&mut b, 1234, 2, 2);
        b.push(' ');
        push_decimal(&mut b, 7_900, 6, 2);
        b.push(' ');
        push_decimal(&mut b, 250_000, 6, 2);
        b.push(' ');
        push_decimal(&mut b, 5, 2, 2);
        assert_eq!(b, "12.34 0.0079 0.25 0.05");
    }

    #[test]
    fn escaping() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
