//! The compact in-memory form of a generated event, before rendering.
//!
//! Events hold indices into the tenant's tables and into the static string
//! tables below instead of strings, so a day of events is cheap to sort.

pub(crate) const NONE16: u16 = u16::MAX;
pub(crate) const NONE32: u32 = u32::MAX;
pub(crate) const NONE64: u64 = u64::MAX;

/// How `event_id` is written; unique within a tenant by construction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EvId {
    /// `c<conversation base36>-<seq base36>`
    Conv { conv: u64, seq: u32 },
    /// `a<agent base36>-<day base36>-<seq>`
    Agent { agent: u32, day: u32, seq: u8 },
    /// `o<day base36>-<k base36>` and `...-r` for its refund.
    Organic { day: u32, k: u32, refund: bool },
}

impl EvId {
    /// Unique-per-tenant tiebreak for equal timestamps; keeps the causal order
    /// of a conversation's events.
    pub(crate) fn tiebreak(self) -> u64 {
        match self {
            EvId::Conv { conv, seq } => (conv << 16) | seq as u64,
            EvId::Agent { agent, day, seq } => (1 << 63) | ((day as u64) << 40) | ((agent as u64) << 8) | seq as u64,
            EvId::Organic { day, k, refund } => (1 << 62) | ((day as u64) << 40) | ((k as u64) << 1) | refund as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Customer,
    Bot,
    Agent,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    New,
    Regular,
    Vip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ai {
    /// Field absent (not an agent reply).
    Absent,
    None,
    Accepted,
    Edited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    CustomerRequest,
    LowConfidence,
    Policy,
    Sentiment,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Online,
    Away,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CostKind {
    ChannelFee,
    AiUsage,
    Sms,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderRef {
    Conv(u64),
    Organic { day: u32, k: u32 },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg {
    pub(crate) sender: Sender,
    pub(crate) agent: u32,
    pub(crate) private: bool,
    pub(crate) automated: bool,
    pub(crate) template: u16,
    pub(crate) quick_reply: u16,
    pub(crate) ai: Ai,
    pub(crate) chars: u32,
    /// Index into [`MSG_ATTRS`] or `NONE16`.
    pub(crate) attrs: u16,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
    Started {
        locale: u16,
        tier: Tier,
        queue: u16,
        source: u16,
        attrs: u16,
    },
    Message(Msg),
    Assigned {
        agent: u32,
        team: u16,
        queue: u16,
    },
    Handoff {
        reason: Reason,
    },
    Resolved {
        agent: u32,
    },
    Reopened,
    Tagged {
        tags: u16,
        auto: bool,
    },
    CsatRequested,
    CsatSubmitted {
        score: u8,
        comment: u16,
    },
    OrderPlaced {
        order: OrderRef,
        amount_cents: i64,
        items: u8,
        payment: u8,
    },
    OrderRefunded {
        order: OrderRef,
        amount_cents: i64,
    },
    AgentStatus {
        agent: u32,
        team: u16,
        status: Status,
    },
    Exposed {
        variant: u16,
    },
    Cost {
        kind: CostKind,
        /// Millionths of the currency unit.
        amount_micros: i64,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Ev {
    pub(crate) t_us: i64,
    pub(crate) tenant: u16,
    /// Channel account index or `NONE16`.
    pub(crate) account: u16,
    pub(crate) conv: u64,
    pub(crate) customer: u64,
    pub(crate) id: EvId,
    pub(crate) body: Body,
}

impl Ev {
    pub(crate) fn sort_key(&self) -> (i64, u16, u64) {
        (self.t_us, self.tenant, self.id.tiebreak())
    }
}

// ---- static vocabularies -------------------------------------------------

pub(crate) const TAG_NAMES: [&str; 10] = [
    "shipping_delay",
    "refund_request",
    "complaint",
    "product_question",
    "order_status",
    "payment_issue",
    "size_advice",
    "subscription_change",
    "account_access",
    "discount_code",
];
pub(crate) const TAG_SHIPPING_DELAY: u16 = 1 << 0;
pub(crate) const TAG_REFUND_REQUEST: u16 = 1 << 1;
pub(crate) const TAG_COMPLAINT: u16 = 1 << 2;
pub(crate) const TAG_PRODUCT_QUESTION: u16 = 1 << 3;
pub(crate) const TAG_ORDER_STATUS: u16 = 1 << 4;
pub(crate) const TAG_PAYMENT_ISSUE: u16 = 1 << 5;
pub(crate) const TAG_SIZE_ADVICE: u16 = 1 << 6;
pub(crate) const TAG_SUBSCRIPTION_CHANGE: u16 = 1 << 7;
pub(crate) const TAG_ACCOUNT_ACCESS: u16 = 1 << 8;
pub(crate) const TAG_DISCOUNT_CODE: u16 = 1 << 9;

pub(crate) const SOURCES: [&str; 11] = [
    "organic",
    "campaign",
    "ad_click_to_chat",
    "qr_code",
    "website_widget",
    "in_app",
    "email",
    "phone",
    "official_account",
    "page_comment",
    "order_page",
];

/// Static template ids; greeting templates of experiment variants are
/// numbered from [`TPL_VARIANT_BASE`].
pub(crate) const TEMPLATES: [&str; 12] = [
    "tpl_order_status",
    "tpl_shipping_delay_apology",
    "tpl_refund_policy",
    "tpl_payment_retry",
    "tpl_product_info",
    "tpl_wait_apology",
    "tpl_closing",
    "tpl_campaign_spring_sale",
    "tpl_campaign_winback",
    "tpl_auto_ack_email",
    "tpl_agent_joined",
    "tpl_greeting_default",
];
pub(crate) const TPL_ORDER_STATUS: u16 = 0;
pub(crate) const TPL_SHIPPING_DELAY: u16 = 1;
pub(crate) const TPL_REFUND_POLICY: u16 = 2;
pub(crate) const TPL_PAYMENT_RETRY: u16 = 3;
pub(crate) const TPL_PRODUCT_INFO: u16 = 4;
pub(crate) const TPL_WAIT_APOLOGY: u16 = 5;
pub(crate) const TPL_CLOSING: u16 = 6;
pub(crate) const TPL_CAMPAIGN_SPRING: u16 = 7;
pub(crate) const TPL_CAMPAIGN_WINBACK: u16 = 8;
pub(crate) const TPL_AUTO_ACK: u16 = 9;
pub(crate) const TPL_AGENT_JOINED: u16 = 10;
pub(crate) const TPL_GREETING_DEFAULT: u16 = 11;
pub(crate) const TPL_VARIANT_BASE: u16 = 1000;

pub(crate) const QUICK_REPLIES: [&str; 8] = [
    "qr_track_order",
    "qr_talk_to_agent",
    "qr_return_label",
    "qr_size_guide",
    "qr_payment_methods",
    "qr_cancel_subscription",
    "qr_yes_no",
    "qr_store_hours",
];

/// Pre-rendered `attrs` objects for `conversation.started`.
pub(crate) const START_ATTRS: [&str; 8] = [
    r#"{"browser":"Chrome 124","os":"Android 14"}"#,
    r#"{"browser":"Safari 17","os":"iOS 17.4"}"#,
    r#"{"browser":"Firefox 125","os":"Windows 11","referrer":"google"}"#,
    r#"{"campaign":"spring_sale","utm_source":"newsletter","utm_medium":"email"}"#,
    r#"{"campaign":"winback_q1","utm_source":"crm"}"#,
    r#"{"ad_id":"23851234567890","placement":"instagram_stories"}"#,
    r#"{"app_version":"5.12.0","device":"Pixel 8"}"#,
    r#"{"app_version":"5.11.2","device":"iPhone 15","screen_width":393}"#,
];
pub(crate) const ATTRS_BROWSER: u16 = 0;
pub(crate) const ATTRS_CAMPAIGN: u16 = 3;
pub(crate) const ATTRS_AD: u16 = 5;
pub(crate) const ATTRS_APP: u16 = 6;

/// Pre-rendered `attrs` objects for messages.
pub(crate) const MSG_ATTRS: [&str; 3] = [
    r#"{"attachment":"image/jpeg","attachment_bytes":284133}"#,
    r#"{"attachment":"application/pdf","attachment_bytes":90211}"#,
    r#"{"sentiment_score":-0.62}"#,
];

pub(crate) const PAYMENT_METHODS: [&str; 7] = ["card", "alipay", "wechat_pay", "paypal", "klarna", "apple_pay", "sepa"];

/// CSAT comments by language prefix and score band (low 1–2, mid 3, high
/// 4–5). Some contain quotes and non-ASCII text to exercise escaping.
pub(crate) const COMMENTS: [(&str, [&[&str]; 3]); 5] = [
    (
        "zh",
        [
            &["等了太久了，客服一直不回复", "快递太慢了，问题也没解决"],
            &["还可以，就是等的时间有点长", "一般般"],
            &["客服很耐心，谢谢！", "回复很快，问题解决了 👍"],
        ],
    ),
    (
        "de",
        [
            &["Viel zu lange gewartet.", "Paket immer noch nicht da, keine Lösung."],
            &["Okay, aber die Wartezeit war lang.", "Geht so."],
            &["Sehr freundlich und schnell, danke!", "Top Service 👍"],
        ],
    ),
    (
        "fr",
        [
            &["Beaucoup trop d'attente.", "Toujours pas de remboursement."],
            &["Correct, mais un peu lent.", "Moyen."],
            &["Très rapide, merci beaucoup !", "Service impeccable."],
        ],
    ),
    (
        "es",
        [
            &["Esperé demasiado tiempo.", "No resolvieron mi problema."],
            &["Bien, pero tardaron un poco.", "Regular."],
            &["¡Muy amables y rápidos!", "Excelente servicio, gracias."],
        ],
    ),
    (
        "en",
        [
            &[
                "Waited forever and the agent said \"please wait\" twice.",
                "Still no refund. Not happy.",
            ],
            &["Fine, but it took a while.", "OK I guess"],
            &[
                "Super quick, thanks!",
                "Great help from the chat bot, solved in a minute.",
            ],
        ],
    ),
];
