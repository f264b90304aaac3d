//! Configuration: the knobs of the model and the `demo` preset.

use chrono::NaiveDate;
use chrono_tz::Tz;

/// The messaging channels of contract v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Whatsapp,
    Messenger,
    FacebookComment,
    Instagram,
    Line,
    Wechat,
    Webchat,
    App,
    Email,
    Sms,
    Voice,
    Other,
}

impl Channel {
    /// Every channel, in contract order.
    pub const ALL: [Channel; 12] = [
        Channel::Whatsapp,
        Channel::Messenger,
        Channel::FacebookComment,
        Channel::Instagram,
        Channel::Line,
        Channel::Wechat,
        Channel::Webchat,
        Channel::App,
        Channel::Email,
        Channel::Sms,
        Channel::Voice,
        Channel::Other,
    ];

    /// The contract spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Messenger => "messenger",
            Channel::FacebookComment => "facebook_comment",
            Channel::Instagram => "instagram",
            Channel::Line => "line",
            Channel::Wechat => "wechat",
            Channel::Webchat => "webchat",
            Channel::App => "app",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Other => "other",
        }
    }

    /// Asynchronous channels: customers answer in hours, no one abandons a queue.
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Channel::Email | Channel::FacebookComment)
    }
}

/// How `occurred_at` is written for a tenant. Mixing styles across tenants
/// exercises the parser: both forms denote the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampStyle {
    /// `Z` or the tenant's UTC offset at that instant (`+08:00`, `-04:00`).
    pub offset: OffsetStyle,
    /// Fraction digits. Times are truncated to this precision at generation,
    /// so ordering and durations agree with what is printed.
    pub precision: Precision,
}

/// See [`TimestampStyle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetStyle {
    /// `2026-03-01T12:00:00.000Z`
    Utc,
    /// `2026-03-01T20:00:00.000+08:00`
    Local,
}

/// See [`TimestampStyle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 3 fraction digits.
    Millis,
    /// 6 fraction digits.
    Micros,
}

/// A language / region / customer time zone combination, with its share of
/// the tenant's customers.
#[derive(Debug, Clone)]
pub struct Locale {
    /// BCP 47, e.g. `zh-CN`.
    pub language: String,
    /// ISO 3166-1 alpha-2, e.g. `CN`.
    pub region: String,
    /// IANA zone of the customer (written to `conversation.started.timezone`).
    pub timezone: String,
    pub weight: f64,
}

/// One channel account (WhatsApp number, Facebook page, LINE official
/// account, inbox) of a tenant.
#[derive(Debug, Clone)]
pub struct ChannelAccount {
    pub channel: Channel,
    pub account: String,
    /// Relative popularity among customers who may use it.
    pub weight: f64,
    /// Whether an AI bot answers first on this account.
    pub bot: bool,
    /// Languages (BCP 47) of customers who use this account; empty = all.
    pub languages: Vec<String>,
}

/// A shift: agents on it go online at `start_min` local minutes after
/// midnight for `hours` hours (it may cross midnight).
#[derive(Debug, Clone, Copy)]
pub struct Shift {
    pub start_min: u32,
    pub hours: u32,
    /// Relative share of the team's agents on this shift.
    pub share: f64,
}

/// A team of human agents.
#[derive(Debug, Clone)]
pub struct TeamProfile {
    pub name: String,
    /// Head count per 1,000 average daily conversations of the tenant, so
    /// staffing scales with `GenConfig::conversations_per_day` (at least 2).
    pub agents_per_1k_daily: f64,
    pub shifts: Vec<Shift>,
    /// Share of agents whose two days off are Saturday and Sunday; the others
    /// have two consecutive days off spread over the week.
    pub weekend_off_share: f64,
}

/// Why a customer writes; it picks the queue, the tags and the odds of buying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Pre-sales: product questions, pricing, availability.
    Sales,
    /// After-sales: order status, shipping, refunds, payments.
    Support,
}

/// A routing queue; conversations go to the first queue matching their
/// language and intent (else intent only, else the first queue).
#[derive(Debug, Clone)]
pub struct QueueProfile {
    pub name: String,
    /// Name of the team that serves it.
    pub team: String,
    /// Languages served; empty = all.
    pub languages: Vec<String>,
    pub intent: Intent,
}

/// Order values in the tenant's currency.
#[derive(Debug, Clone)]
pub enum OrderValue {
    /// Basket values: log-normal around `median` with log-sigma `sigma`.
    LogNormal { median: f64, sigma: f64 },
    /// Subscription plans: one of these prices, with these weights.
    Plans(Vec<(f64, f64)>),
}

/// Unit costs in the tenant's currency (`cost.incurred`).
#[derive(Debug, Clone, Copy)]
pub struct CostProfile {
    /// `channel_fee` per WhatsApp conversation.
    pub whatsapp_per_conversation: f64,
    /// `sms` per outbound SMS (bot, agent or automated).
    pub sms_per_message: f64,
    /// `ai_usage` per bot reply.
    pub ai_per_bot_reply: f64,
    /// `ai_usage` per AI copilot suggestion used by an agent.
    pub ai_per_suggestion: f64,
    /// `other` (telephony) per started minute of a voice conversation.
    pub voice_per_minute: f64,
}

/// One business on the platform.
#[derive(Debug, Clone)]
pub struct TenantProfile {
    /// `[a-z0-9_-]{1,64}`.
    pub tenant_id: String,
    /// Reporting time zone: arrival seasonality and shifts are local to it.
    pub timezone: Tz,
    /// ISO 4217.
    pub currency: String,
    pub timestamps: TimestampStyle,
    /// Relative share of `GenConfig::conversations_per_day`.
    pub volume_share: f64,
    /// Traffic factors Monday..Sunday (normalised to mean 1).
    pub weekday_factors: [f64; 7],
    /// Traffic weights per local hour 0..23 (any scale).
    pub hourly_profile: [f64; 24],
    /// Compound growth of the daily volume per day (0.003 = +0.3 %/day).
    pub growth_per_day: f64,
    pub locales: Vec<Locale>,
    pub accounts: Vec<ChannelAccount>,
    pub teams: Vec<TeamProfile>,
    pub queues: Vec<QueueProfile>,
    /// Share of conversations with a sales intent (the rest is support).
    pub sales_share: f64,
    /// Probability that the bot resolves a conversation alone (before
    /// adjustments: sales +, complaints and VIPs −).
    pub bot_resolve_rate: f64,
    /// Share of conversations from first-time customers.
    pub new_customer_share: f64,
    /// Size of the customer base before the first day, in days of
    /// conversations (returning customers are drawn from it).
    pub existing_customer_base_days: f64,
    /// Share of known customers who are VIPs.
    pub vip_share: f64,
    /// Probability that a sales conversation leads to an order.
    pub conversion_sales: f64,
    /// Probability that a support conversation leads to an order.
    pub conversion_support: f64,
    /// Orders without any conversation, per conversation (repurchases).
    pub organic_orders_per_conversation: f64,
    pub order_value: OrderValue,
    /// Share of orders refunded (more after complaints).
    pub refund_rate: f64,
    /// Share of CSAT requests answered.
    pub csat_response_rate: f64,
    /// Share of resolved conversations reopened by the customer.
    pub reopen_rate: f64,
    pub costs: CostProfile,
    /// Chats an agent handles at once (queueing model).
    pub agent_concurrency: u32,
    /// Mean human handling time per conversation in seconds (queueing model).
    pub handle_time_s: f64,
    /// Whether this tenant runs [`GenConfig::experiment`].
    pub runs_experiment: bool,
}

/// A variant of the generated experiment and its true effect.
#[derive(Debug, Clone)]
pub struct VariantEffect {
    pub key: String,
    pub weight: f64,
    /// Added to the probability of an order (0.02 = +2 points).
    pub conversion_lift: f64,
    /// Added to the latent CSAT score (points on the 1–5 scale).
    pub csat_lift: f64,
}

/// A greeting experiment run by the bots: units are customers, assigned by
/// `experiments::assign_variant(assignment_seed, customer_id, weights)`;
/// `experiment.exposed` is written when the bot greets.
#[derive(Debug, Clone)]
pub struct ExperimentConfig {
    pub key: String,
    pub assignment_seed: String,
    pub variants: Vec<VariantEffect>,
}

/// Everything the generator needs. Same config, same bytes.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub seed: u64,
    /// First local day (in each tenant's reporting time zone).
    pub start: NaiveDate,
    pub days: u32,
    /// Average conversations per day over all tenants (before trend and
    /// seasonality).
    pub conversations_per_day: f64,
    pub tenants: Vec<TenantProfile>,
    pub experiment: Option<ExperimentConfig>,
    /// Drop events after the end of the window (each tenant's local midnight
    /// after the last day), like a snapshot taken then. When false, late
    /// events (reopens, refunds, CSAT) of the last days are kept.
    pub snapshot_at_end: bool,
    /// Put a few top-level fields that are not in the contract on some events
    /// (ingest must keep them in `attrs`).
    pub unknown_fields: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig::demo()
    }
}

/// A typical daily curve: quiet night, morning ramp, lunch bump, evening
/// peak at 20:00.
pub const EVENING_PEAK: [f64; 24] = [
    2.5, 1.4, 0.8, 0.5, 0.4, 0.5, 1.0, 2.0, 3.6, 4.8, 5.4, 5.6, 5.9, 5.6, 5.3, 5.2, 5.4, 5.7, 6.4, 7.6, 8.6, 7.9, 6.0,
    4.1,
];

fn s(v: &str) -> String {
    v.to_string()
}

fn langs(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn locale(language: &str, region: &str, timezone: &str, weight: f64) -> Locale {
    Locale {
        language: s(language),
        region: s(region),
        timezone: s(timezone),
        weight,
    }
}

fn account(channel: Channel, account: &str, weight: f64, bot: bool, l: &[&str]) -> ChannelAccount {
    ChannelAccount {
        channel,
        account: s(account),
        weight,
        bot,
        languages: langs(l),
    }
}

fn queue(name: &str, team: &str, l: &[&str], intent: Intent) -> QueueProfile {
    QueueProfile {
        name: s(name),
        team: s(team),
        languages: langs(l),
        intent,
    }
}

fn shift(start_hour: u32, hours: u32, share: f64) -> Shift {
    Shift {
        start_min: start_hour * 60,
        hours,
        share,
    }
}

impl GenConfig {
    /// Three tenants over 30 days from 2026-03-01 (both the US and the EU
    /// switch to summer time inside the window), 3,000 conversations a day in
    /// total, running the `greeting_v2` experiment.
    pub fn demo() -> Self {
        GenConfig {
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default(),
            days: 30,
            conversations_per_day: 3000.0,
            tenants: vec![
                TenantProfile::asia_shop(),
                TenantProfile::eu_retailer(),
                TenantProfile::us_subscription(),
            ],
            experiment: Some(ExperimentConfig::greeting_v2()),
            snapshot_at_end: true,
            unknown_fields: true,
        }
    }

    /// The demo tenants with another seed, window and volume (tests,
    /// benchmarks).
    pub fn demo_with(seed: u64, days: u32, conversations_per_day: f64) -> Self {
        GenConfig {
            seed,
            days,
            conversations_per_day,
            ..GenConfig::demo()
        }
    }
}

impl ExperimentConfig {
    /// `greeting_v2`: `control` vs `friendly` 50/50; `friendly` raises the
    /// order probability of a conversation by 2.5 points (measured
    /// conversion, after attribution and the end-of-window cut, by about 2
    /// points) and the latent CSAT by 0.15 (measured about +0.1).
    pub fn greeting_v2() -> Self {
        ExperimentConfig {
            key: s("greeting_v2"),
            assignment_seed: s("greeting_v2"),
            variants: vec![
                VariantEffect {
                    key: s("control"),
                    weight: 0.5,
                    conversion_lift: 0.0,
                    csat_lift: 0.0,
                },
                VariantEffect {
                    key: s("friendly"),
                    weight: 0.5,
                    conversion_lift: 0.025,
                    csat_lift: 0.15,
                },
            ],
        }
    }
}

impl TenantProfile {
    /// Cross-border e-commerce shop in Shanghai: WeChat, LINE, WhatsApp, web
    /// chat; busier weekends; CNY; local-offset millisecond timestamps.
    pub fn asia_shop() -> Self {
        use Channel::*;
        TenantProfile {
            tenant_id: s("dragon-mart"),
            timezone: chrono_tz::Asia::Shanghai,
            currency: s("CNY"),
            timestamps: TimestampStyle {
                offset: OffsetStyle::Local,
                precision: Precision::Millis,
            },
            volume_share: 0.45,
            weekday_factors: [0.92, 0.9, 0.93, 0.95, 1.0, 1.15, 1.15],
            hourly_profile: EVENING_PEAK,
            growth_per_day: 0.004,
            locales: vec![
                locale("zh-CN", "CN", "Asia/Shanghai", 62.0),
                locale("zh-TW", "TW", "Asia/Taipei", 8.0),
                locale("en", "SG", "Asia/Singapore", 12.0),
                locale("en", "MY", "Asia/Kuala_Lumpur", 7.0),
                locale("en", "HK", "Asia/Hong_Kong", 5.0),
                locale("en", "TH", "Asia/Bangkok", 6.0),
            ],
            accounts: vec![
                account(Wechat, "gh_7d3f1a2b9c04", 60.0, true, &["zh-CN"]),
                account(Line, "@dragonmart_tw", 40.0, true, &["zh-TW", "en"]),
                account(Whatsapp, "+85230018888", 40.0, true, &["en", "zh-TW"]),
                account(Webchat, "web_dragonmart_cn", 30.0, true, &[]),
                account(Webchat, "web_dragonmart_global", 12.0, true, &["en"]),
            ],
            teams: vec![
                TeamProfile {
                    name: s("cn_service"),
                    agents_per_1k_daily: 8.0,
                    shifts: vec![shift(8, 8, 0.4), shift(12, 8, 0.4), shift(15, 8, 0.2)],
                    weekend_off_share: 0.1,
                },
                TeamProfile {
                    name: s("intl_service"),
                    agents_per_1k_daily: 4.0,
                    shifts: vec![shift(9, 8, 0.5), shift(14, 8, 0.5)],
                    weekend_off_share: 0.2,
                },
            ],
            queues: vec![
                queue("cn_presales", "cn_service", &["zh-CN", "zh-TW"], Intent::Sales),
                queue("cn_aftersales", "cn_service", &["zh-CN", "zh-TW"], Intent::Support),
                queue("intl_presales", "intl_service", &["en"], Intent::Sales),
                queue("intl_aftersales", "intl_service", &["en"], Intent::Support),
            ],
            sales_share: 0.45,
            bot_resolve_rate: 0.62,
            new_customer_share: 0.35,
            existing_customer_base_days: 40.0,
            vip_share: 0.06,
            conversion_sales: 0.22,
            conversion_support: 0.05,
            organic_orders_per_conversation: 0.12,
            order_value: OrderValue::LogNormal {
                median: 168.0,
                sigma: 0.7,
            },
            refund_rate: 0.05,
            csat_response_rate: 0.28,
            reopen_rate: 0.06,
            costs: CostProfile {
                whatsapp_per_conversation: 0.25,
                sms_per_message: 0.05,
                ai_per_bot_reply: 0.02,
                ai_per_suggestion: 0.01,
                voice_per_minute: 0.1,
            },
            agent_concurrency: 4,
            handle_time_s: 540.0,
            runs_experiment: true,
        }
    }

    /// Fashion retailer in Berlin: WhatsApp, Messenger and page comments,
    /// Instagram, email; German, English, French; quieter weekends; EUR; UTC
    /// microsecond timestamps.
    pub fn eu_retailer() -> Self {
        use Channel::*;
        TenantProfile {
            tenant_id: s("modehaus_eu"),
            timezone: chrono_tz::Europe::Berlin,
            currency: s("EUR"),
            timestamps: TimestampStyle {
                offset: OffsetStyle::Utc,
                precision: Precision::Micros,
            },
            volume_share: 0.3,
            weekday_factors: [1.15, 1.08, 1.04, 1.02, 0.98, 0.72, 0.62],
            hourly_profile: EVENING_PEAK,
            growth_per_day: 0.002,
            locales: vec![
                locale("de", "DE", "Europe/Berlin", 48.0),
                locale("de", "AT", "Europe/Vienna", 8.0),
                locale("de", "CH", "Europe/Zurich", 5.0),
                locale("fr", "FR", "Europe/Paris", 16.0),
                locale("fr", "BE", "Europe/Brussels", 4.0),
                locale("en", "GB", "Europe/London", 9.0),
                locale("en", "NL", "Europe/Amsterdam", 10.0),
            ],
            accounts: vec![
                account(Whatsapp, "+493012345670", 45.0, true, &["de", "en"]),
                account(Whatsapp, "+33187654321", 30.0, true, &["fr"]),
                account(Messenger, "fb_page_104928374651", 20.0, true, &[]),
                account(FacebookComment, "fb_page_104928374651", 5.0, false, &[]),
                account(Instagram, "@modehaus.official", 22.0, true, &[]),
                account(Email, "service@modehaus.example", 18.0, false, &[]),
            ],
            teams: vec![
                TeamProfile {
                    name: s("dach"),
                    agents_per_1k_daily: 10.0,
                    shifts: vec![shift(7, 8, 0.4), shift(11, 8, 0.35), shift(14, 8, 0.25)],
                    weekend_off_share: 0.6,
                },
                TeamProfile {
                    name: s("west"),
                    agents_per_1k_daily: 6.0,
                    shifts: vec![shift(8, 8, 0.6), shift(13, 8, 0.4)],
                    weekend_off_share: 0.6,
                },
            ],
            queues: vec![
                queue("de_sales", "dach", &["de"], Intent::Sales),
                queue("de_support", "dach", &["de"], Intent::Support),
                queue("fr_support", "west", &["fr"], Intent::Support),
                queue("fr_sales", "west", &["fr"], Intent::Sales),
                queue("en_general", "west", &["en"], Intent::Support),
                queue("en_sales", "west", &["en"], Intent::Sales),
            ],
            sales_share: 0.4,
            bot_resolve_rate: 0.55,
            new_customer_share: 0.3,
            existing_customer_base_days: 60.0,
            vip_share: 0.08,
            conversion_sales: 0.18,
            conversion_support: 0.04,
            organic_orders_per_conversation: 0.15,
            order_value: OrderValue::LogNormal {
                median: 64.0,
                sigma: 0.6,
            },
            refund_rate: 0.09,
            csat_response_rate: 0.32,
            reopen_rate: 0.07,
            costs: CostProfile {
                whatsapp_per_conversation: 0.0509,
                sms_per_message: 0.075,
                ai_per_bot_reply: 0.0025,
                ai_per_suggestion: 0.0012,
                voice_per_minute: 0.012,
            },
            agent_concurrency: 3,
            handle_time_s: 600.0,
            runs_experiment: true,
        }
    }

    /// Streaming subscription service in New York: SMS, web chat, app, email,
    /// voice and Apple Messages ("other"); English and Spanish; 24/7 with a
    /// thin night shift; USD plan prices; local-offset microsecond timestamps.
    pub fn us_subscription() -> Self {
        use Channel::*;
        TenantProfile {
            tenant_id: s("streamly-us"),
            timezone: chrono_tz::America::New_York,
            currency: s("USD"),
            timestamps: TimestampStyle {
                offset: OffsetStyle::Local,
                precision: Precision::Micros,
            },
            volume_share: 0.25,
            weekday_factors: [1.08, 1.04, 1.0, 1.0, 0.98, 0.92, 0.98],
            hourly_profile: EVENING_PEAK,
            growth_per_day: 0.001,
            locales: vec![
                locale("en-US", "US", "America/New_York", 40.0),
                locale("en-US", "US", "America/Chicago", 18.0),
                locale("en-US", "US", "America/Los_Angeles", 20.0),
                locale("es-US", "US", "America/Los_Angeles", 8.0),
                locale("es-US", "US", "America/New_York", 6.0),
                locale("es-MX", "MX", "America/Mexico_City", 5.0),
                locale("en-US", "PR", "America/Puerto_Rico", 3.0),
            ],
            accounts: vec![
                account(Sms, "+12125550143", 25.0, true, &[]),
                account(Webchat, "help_center_widget", 30.0, true, &[]),
                account(App, "streamly_ios_android", 30.0, true, &[]),
                account(Email, "support@streamly.example", 12.0, false, &[]),
                account(Voice, "+18005550199", 8.0, false, &[]),
                account(Other, "apple_messages_business", 5.0, true, &["en-US"]),
            ],
            teams: vec![
                TeamProfile {
                    name: s("care_en"),
                    agents_per_1k_daily: 9.0,
                    shifts: vec![
                        shift(7, 8, 0.3),
                        shift(11, 8, 0.3),
                        shift(15, 8, 0.3),
                        shift(23, 8, 0.1),
                    ],
                    weekend_off_share: 0.3,
                },
                TeamProfile {
                    name: s("care_es"),
                    agents_per_1k_daily: 4.0,
                    shifts: vec![shift(9, 8, 0.5), shift(14, 8, 0.5)],
                    weekend_off_share: 0.4,
                },
            ],
            queues: vec![
                queue("billing", "care_en", &["en-US"], Intent::Support),
                queue("upgrades", "care_en", &["en-US"], Intent::Sales),
                queue("soporte", "care_es", &["es-US", "es-MX"], Intent::Support),
                queue("ventas", "care_es", &["es-US", "es-MX"], Intent::Sales),
            ],
            sales_share: 0.3,
            bot_resolve_rate: 0.57,
            new_customer_share: 0.2,
            existing_customer_base_days: 90.0,
            vip_share: 0.1,
            conversion_sales: 0.2,
            conversion_support: 0.06,
            organic_orders_per_conversation: 0.1,
            order_value: OrderValue::Plans(vec![(8.99, 35.0), (15.49, 40.0), (22.99, 20.0), (99.99, 5.0)]),
            refund_rate: 0.04,
            csat_response_rate: 0.3,
            reopen_rate: 0.05,
            costs: CostProfile {
                whatsapp_per_conversation: 0.025,
                sms_per_message: 0.0079,
                ai_per_bot_reply: 0.003,
                ai_per_suggestion: 0.0015,
                voice_per_minute: 0.013,
            },
            agent_concurrency: 3,
            handle_time_s: 480.0,
            runs_experiment: true,
        }
    }
}
