//! The `conversations` view's rows, folded from events in one pass over
//! each conversation's events, instead of evaluating the view.
//!
//! `sql/views/conversations.sql` (with `messages.sql`, `orders.sql`,
//! `exposures.sql`) stays the definition: analysts read it, the `.slt`
//! tests pin it, and `fold/tests.rs` compares this fold with it row for
//! row, column for column, on the fixtures of `sql/tests/`, on generated
//! months and on random event sequences. What the view computes with
//! windows, joins and aggregates over all events, the fold computes per
//! conversation from its events sorted by `(occurred_at, event_id)`:
//!
//! - every group of the view (`facts`, `started`, `status`, `msg`, `human`,
//!   `tag_list`, `variants`) is a pass over one conversation's events;
//! - `orders` needs the tenant: the first `order.placed` of each order, its
//!   refunds, and for an order without `conversation_id` the same
//!   customer's latest conversation started within the attribution window
//!   before it, found through an index customer → conversation starts.
//!
//! The output has the view's schema ([`conversations_schema`]), so the
//! rows can stand wherever the view's rows do.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::{DataFusionError, Result};

#[cfg(test)]
mod tests;

/// What the rows depend on besides the events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldSettings {
    /// How long before an order a conversation may take its credit.
    pub attribution_window_us: i64,
    /// The first-reply target of `sla_met`.
    pub sla_target_us: i64,
    /// The instant `sla_met` takes as now (the view's `now()`).
    pub now_us: i64,
}

const REOPEN_WINDOW_US: i64 = 7 * 86_400_000_000;

/// The columns of `events` the fold reads.
pub const EVENT_COLUMNS: [&str; 31] = [
    "event_id",
    "tenant_id",
    "type",
    "occurred_at",
    "conversation_id",
    "customer_id",
    "channel",
    "channel_account",
    "language",
    "region",
    "timezone",
    "customer_tier",
    "queue",
    "source",
    "sender",
    "agent_id",
    "private",
    "automated",
    "ai_suggestion",
    "template_id",
    "quick_reply_id",
    "team",
    "reason",
    "resolved_by",
    "tags",
    "score",
    "order_id",
    "amount",
    "currency",
    "experiment_key",
    "variant_key",
];

/// Who answered a customer turn (`messages.turn_reply_sender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replier {
    Bot,
    Agent,
}

/// A script a conversation used (`script_uses`): its kind and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScriptKind {
    QuickReply,
    Template,
}

impl ScriptKind {
    /// The `kind` of `script_uses`.
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::QuickReply => "quick_reply",
            ScriptKind::Template => "template",
        }
    }
}

/// What else the KPIs read of a conversation's messages, beside its row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFacts {
    /// The answered customer turns in order: wait in seconds, who replied
    /// (`messages.turn_response_s`, `turn_reply_sender`).
    pub turns: Vec<(f64, Replier)>,
    /// The agents that replied, by name (`count(DISTINCT agent_id)`).
    pub replying_agents: Vec<String>,
    /// The scripts used, each once, in order of kind and key (`script_uses`).
    pub scripts: Vec<(ScriptKind, String)>,
}

/// One row of the `orders` view, the columns the KPIs read.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedOrder {
    pub tenant_id: String,
    pub order_id: Option<String>,
    /// µs since the epoch.
    pub placed_us: i64,
    pub customer_id: Option<String>,
    pub attributed_conversation_id: Option<String>,
    pub currency: Option<String>,
    /// `net_amount` as a double (placed amount minus every refund).
    pub net_amount: Option<f64>,
}

/// The rows of `conversations` and, for each row, its [`MessageFacts`];
/// and the rows of `orders`, in no particular order.
#[derive(Debug, Clone)]
pub struct Folded {
    pub rows: RecordBatch,
    pub messages: Vec<MessageFacts>,
    pub orders: Vec<FoldedOrder>,
}

/// The schema of the `conversations` view ([`crate::views::view_schema`]).
pub fn conversations_schema() -> Result<SchemaRef> {
    crate::views::view_schema("conversations")
}

/// The columns of one events batch the fold reads, in the types it reads
/// them as (a lake scan may hand strings over as views).
struct Cols {
    event_id: StringArray,
    tenant: StringArray,
    typ: StringArray,
    at: Int64Array,
    conversation_id: StringArray,
    customer_id: StringArray,
    channel: StringArray,
    channel_account: StringArray,
    language: StringArray,
    region: StringArray,
    timezone: StringArray,
    customer_tier: StringArray,
    queue: StringArray,
    source: StringArray,
    sender: StringArray,
    agent_id: StringArray,
    private: BooleanArray,
    automated: BooleanArray,
    ai_suggestion: StringArray,
    template_id: StringArray,
    quick_reply_id: StringArray,
    team: StringArray,
    reason: StringArray,
    resolved_by: StringArray,
    tags: ListArray,
    score: Int32Array,
    order_id: StringArray,
    amount: Decimal128Array,
    currency: StringArray,
    experiment_key: StringArray,
    variant_key: StringArray,
}

fn column(b: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Plan(format!("the events have no column {name}")))?;
    Ok(if a.data_type() == to { a.clone() } else { cast(a, to)? })
}

impl Cols {
    fn of(b: &RecordBatch, amount_type: &DataType) -> Result<Self> {
        let s =
            |name: &str| -> Result<StringArray> { Ok(column(b, name, &DataType::Utf8)?.as_string::<i32>().clone()) };
        let flag =
            |name: &str| -> Result<BooleanArray> { Ok(column(b, name, &DataType::Boolean)?.as_boolean().clone()) };
        let at = column(
            b,
            "occurred_at",
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?;
        let at = cast(&at, &DataType::Int64)?;
        let tags = column(
            b,
            "tags",
            &DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        )?;
        Ok(Self {
            event_id: s("event_id")?,
            tenant: s("tenant_id")?,
            typ: s("type")?,
            at: at.as_primitive().clone(),
            conversation_id: s("conversation_id")?,
            customer_id: s("customer_id")?,
            channel: s("channel")?,
            channel_account: s("channel_account")?,
            language: s("language")?,
            region: s("region")?,
            timezone: s("timezone")?,
            customer_tier: s("customer_tier")?,
            queue: s("queue")?,
            source: s("source")?,
            sender: s("sender")?,
            agent_id: s("agent_id")?,
            private: flag("private")?,
            automated: flag("automated")?,
            ai_suggestion: s("ai_suggestion")?,
            template_id: s("template_id")?,
            quick_reply_id: s("quick_reply_id")?,
            team: s("team")?,
            reason: s("reason")?,
            resolved_by: s("resolved_by")?,
            tags: tags.as_list::<i32>().clone(),
            score: column(b, "score", &DataType::Int32)?
                .as_primitive::<Int32Type>()
                .clone(),
            order_id: s("order_id")?,
            amount: column(b, "amount", amount_type)?.as_primitive().clone(),
            currency: s("currency")?,
            experiment_key: s("experiment_key")?,
            variant_key: s("variant_key")?,
        })
    }
}

fn opt(a: &StringArray, r: usize) -> Option<&str> {
    a.is_valid(r).then(|| a.value(r))
}

/// One event of a conversation: where it is, and its sort key.
#[derive(Debug, Clone, Copy)]
struct Ev {
    at: i64,
    batch: u32,
    row: u32,
}

/// The event types of the view's `conv_events`.
fn is_conversation_type(t: &str) -> bool {
    matches!(
        t,
        "conversation.started"
            | "message.created"
            | "conversation.assigned"
            | "conversation.handoff"
            | "conversation.resolved"
            | "conversation.reopened"
            | "conversation.tagged"
            | "csat.requested"
            | "csat.submitted"
            | "experiment.exposed"
    )
}

/// An order as the `orders` view has it, what `conversations` reads of it.
#[derive(Debug, Clone)]
struct Order<'a> {
    placed: Ev,
    customer_id: Option<&'a str>,
    conversation_id: Option<&'a str>,
    amount: Option<i128>,
    currency: Option<&'a str>,
}

/// Attributed orders of one conversation.
#[derive(Debug, Default)]
struct ConvOrders<'a> {
    n: i64,
    currencies: BTreeSet<&'a str>,
    net: Option<i128>,
}

/// The rows of `conversations` for the events in `batches` (any order, any
/// tenants), in the view's schema, ordered by tenant and conversation.
pub fn fold(batches: &[RecordBatch], settings: FoldSettings) -> Result<RecordBatch> {
    Ok(fold_with_messages(batches, settings)?.rows)
}

/// [`fold`] with each row's [`MessageFacts`].
pub fn fold_with_messages(batches: &[RecordBatch], settings: FoldSettings) -> Result<Folded> {
    let schema = conversations_schema()?;
    let amount_type = ingest::schema::events_schema()
        .field_with_name("amount")
        .map(|f| f.data_type().clone())?;
    let cols: Vec<Cols> = batches
        .iter()
        .map(|b| Cols::of(b, &amount_type))
        .collect::<Result<_>>()?;
    let key = |e: &Ev| (e.at, cols[e.batch as usize].event_id.value(e.row as usize));

    // One pass over the events: conversations, orders, refunds, starts.
    let mut conversations: HashMap<(&str, &str), Vec<Ev>> = HashMap::new();
    let mut orders: HashMap<(&str, Option<&str>), Order> = HashMap::new();
    // (tenant, order) → the sum of its refunds (NULL when every amount is)
    let mut refunds: HashMap<(&str, Option<&str>), Option<i128>> = HashMap::new();
    // (tenant, conversation) → (first start, least customer of its starts)
    let mut starts: HashMap<(&str, &str), (i64, Option<&str>)> = HashMap::new();
    for (b, c) in cols.iter().enumerate() {
        for r in 0..c.typ.len() {
            let ev = Ev {
                at: c.at.value(r),
                batch: b as u32,
                row: r as u32,
            };
            let (tenant, typ, conv) = (c.tenant.value(r), c.typ.value(r), opt(&c.conversation_id, r));
            if let Some(conv) = conv {
                if is_conversation_type(typ) {
                    conversations.entry((tenant, conv)).or_default().push(ev);
                }
                if typ == "conversation.started" {
                    let e = starts.entry((tenant, conv)).or_insert((ev.at, None));
                    e.0 = e.0.min(ev.at);
                    if let Some(customer) = opt(&c.customer_id, r) {
                        e.1 = Some(e.1.map_or(customer, |m: &str| m.min(customer)));
                    }
                }
            }
            match typ {
                "order.placed" => {
                    let candidate = Order {
                        placed: ev,
                        customer_id: opt(&c.customer_id, r),
                        conversation_id: conv,
                        amount: c.amount.is_valid(r).then(|| c.amount.value(r)),
                        currency: opt(&c.currency, r),
                    };
                    orders
                        .entry((tenant, opt(&c.order_id, r)))
                        .and_modify(|o| {
                            if key(&candidate.placed) < key(&o.placed) {
                                *o = candidate.clone();
                            }
                        })
                        .or_insert_with(|| candidate.clone());
                }
                "order.refunded" => {
                    let e = refunds.entry((tenant, opt(&c.order_id, r))).or_default();
                    if c.amount.is_valid(r) {
                        *e = Some(e.unwrap_or(0) + c.amount.value(r));
                    }
                }
                _ => {}
            }
        }
    }

    // Window attribution: (tenant, customer) → starts sorted by (time, id).
    let mut by_customer: HashMap<(&str, &str), Vec<(i64, &str)>> = HashMap::new();
    for ((tenant, conv), (at, customer)) in &starts {
        if let Some(customer) = customer {
            by_customer.entry((tenant, customer)).or_default().push((*at, conv));
        }
    }
    for list in by_customer.values_mut() {
        list.sort_unstable();
    }
    let mut conv_orders: HashMap<(&str, &str), ConvOrders> = HashMap::new();
    let scale = match &amount_type {
        DataType::Decimal128(_, s) => i32::from(*s),
        other => return Err(DataFusionError::Internal(format!("amounts are {other}, not decimals"))),
    };
    let mut folded_orders = Vec::with_capacity(orders.len());
    for ((tenant, order_id), o) in &orders {
        let attributed = match o.conversation_id {
            Some(c) => Some(c),
            None => o.customer_id.and_then(|customer| {
                let list = by_customer.get(&(*tenant, customer))?;
                // the latest start strictly before the order, if within the window
                let placed = o.placed.at;
                let i = list.partition_point(|(at, _)| *at < placed);
                let (at, conv) = *list.get(i.checked_sub(1)?)?;
                (at >= placed - settings.attribution_window_us).then_some(conv)
            }),
        };
        let refunded = refunds.get(&(*tenant, *order_id)).copied().flatten().unwrap_or(0);
        let net = o.amount.map(|amount| amount - refunded);
        folded_orders.push(FoldedOrder {
            tenant_id: tenant.to_string(),
            order_id: order_id.map(str::to_string),
            placed_us: o.placed.at,
            customer_id: o.customer_id.map(str::to_string),
            attributed_conversation_id: attributed.map(str::to_string),
            currency: o.currency.map(str::to_string),
            net_amount: net.map(|n| n as f64 / 10f64.powi(scale)),
        });
        let Some(conv) = attributed else { continue };
        let e = conv_orders.entry((tenant, conv)).or_default();
        e.n += 1;
        if let Some(currency) = o.currency {
            e.currencies.insert(currency);
        }
        if let Some(net) = net {
            e.net = Some(e.net.unwrap_or(0) + net);
        }
    }

    let mut ids: Vec<(&str, &str)> = conversations.keys().copied().collect();
    ids.sort_unstable();
    let mut out = Rows::with_capacity(ids.len());
    for id in ids {
        let mut evs = conversations.remove(&id).unwrap_or_default();
        evs.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        let orders = conv_orders.get(&id);
        out.push(id, &evs, &cols, orders, settings);
    }
    let messages = std::mem::take(&mut out.message_facts);
    Ok(Folded {
        rows: out.finish(&schema)?,
        messages,
        orders: folded_orders,
    })
}

/// The view's columns, one vector each.
#[derive(Default)]
struct Rows<'a> {
    tenant_id: Vec<&'a str>,
    conversation_id: Vec<&'a str>,
    strings: HashMap<&'static str, Vec<Option<&'a str>>>,
    instants: HashMap<&'static str, Vec<Option<i64>>>,
    counts: HashMap<&'static str, Vec<Option<i64>>>,
    floats: HashMap<&'static str, Vec<Option<f64>>>,
    flags: HashMap<&'static str, Vec<Option<bool>>>,
    csat_score: Vec<Option<i32>>,
    tags: Vec<Option<Vec<Option<String>>>>,
    experiment_variants: Vec<Option<Vec<Option<String>>>>,
    order_net_amount: Vec<Option<i128>>,
    message_facts: Vec<MessageFacts>,
}

impl<'a> Rows<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            tenant_id: Vec::with_capacity(n),
            conversation_id: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    fn s(&mut self, name: &'static str, v: Option<&'a str>) {
        self.strings.entry(name).or_default().push(v);
    }
    fn t(&mut self, name: &'static str, v: Option<i64>) {
        self.instants.entry(name).or_default().push(v);
    }
    fn n(&mut self, name: &'static str, v: i64) {
        self.counts.entry(name).or_default().push(Some(v));
    }
    fn f(&mut self, name: &'static str, v: Option<f64>) {
        self.floats.entry(name).or_default().push(v);
    }
    fn b(&mut self, name: &'static str, v: Option<bool>) {
        self.flags.entry(name).or_default().push(v);
    }

    /// One conversation's row from its events, sorted.
    fn push(
        &mut self,
        (tenant, conv): (&'a str, &'a str),
        evs: &[Ev],
        cols: &'a [Cols],
        orders: Option<&ConvOrders<'a>>,
        settings: FoldSettings,
    ) {
        let at_of = |e: &Ev| e.at;
        let c = |e: &Ev| (&cols[e.batch as usize], e.row as usize);
        let typ = |e: &Ev| {
            let (c, r) = c(e);
            c.typ.value(r)
        };
        // The first value of the column over all the conversation's events.
        let first_non_null = |f: &dyn Fn(&'a Cols) -> &'a StringArray| -> Option<&'a str> {
            evs.iter().find_map(|e| {
                let (c, r) = c(e);
                opt(f(c), r)
            })
        };
        let last_non_null = |f: &dyn Fn(&'a Cols) -> &'a StringArray, only: &str| -> Option<&'a str> {
            evs.iter().rev().filter(|e| typ(e) == only).find_map(|e| {
                let (c, r) = c(e);
                opt(f(c), r)
            })
        };
        let of_type = |t: &'static str| evs.iter().filter(move |e| typ(e) == t);

        // started: the first conversation.started
        let started = of_type("conversation.started").next().map(c);
        let from_start = |f: &dyn Fn(&'a Cols) -> &'a StringArray| started.and_then(|(c, r)| opt(f(c), r));

        // facts
        let first_event_at = evs.first().map(at_of);
        let last_event_at = evs.last().map(at_of);
        let handoffs: Vec<&Ev> = of_type("conversation.handoff").collect();
        let resolved: Vec<&Ev> = of_type("conversation.resolved").collect();
        let last_resolved = resolved.last().map(|e| c(e));
        let submitted: Vec<&Ev> = of_type("csat.submitted").collect();
        let requested: Vec<&Ev> = of_type("csat.requested").collect();
        let handoff_at = handoffs.first().map(|e| e.at);

        // status
        let mut last_status: Option<&str> = None;
        let mut prev: Option<(&str, i64)> = None;
        let mut reopened_within_7d = false;
        for e in evs {
            let t = typ(e);
            if matches!(
                t,
                "conversation.started" | "conversation.resolved" | "conversation.reopened"
            ) {
                if t == "conversation.reopened"
                    && prev.is_some_and(|(pt, pat)| pt == "conversation.resolved" && e.at <= pat + REOPEN_WINDOW_US)
                {
                    reopened_within_7d = true;
                }
                prev = Some((t, e.at));
                last_status = Some(t);
            }
        }
        let is_resolved = last_status == Some("conversation.resolved");

        // msg
        let m = Messages::of(evs.iter().filter(|e| typ(e) == "message.created").map(c));
        let human_from = handoff_at.or(m.first_customer_message_at);
        let first_human_reply_at = human_from.and_then(|from| m.agent_reply_ats.iter().copied().find(|at| *at >= from));

        // tags, variants
        let tags = {
            let mut all: Vec<Option<String>> = Vec::new();
            let mut any = false;
            for e in of_type("conversation.tagged") {
                any = true;
                let (c, r) = c(e);
                if c.tags.is_valid(r) {
                    let list = c.tags.value(r);
                    let list = list.as_string::<i32>();
                    all.extend((0..list.len()).map(|i| opt(list, i).map(str::to_string)));
                }
            }
            all.sort_unstable();
            all.dedup();
            any.then_some(all)
        };
        let variants = {
            let mut all: Vec<Option<String>> = of_type("experiment.exposed")
                .map(|e| {
                    let (c, r) = c(e);
                    Some(format!("{}={}", opt(&c.experiment_key, r)?, opt(&c.variant_key, r)?))
                })
                .collect();
            all.sort_unstable();
            all.dedup();
            (!all.is_empty()).then_some(all)
        };

        let us_to_s = |a: Option<i64>, b: Option<i64>| Some((a? - b?) as f64 / 1_000_000.0);
        let fcm = m.first_customer_message_at;
        let agent_messages = m.agent_messages;
        let attributed_orders = orders.map_or(0, |o| o.n);
        let resolved_by = last_resolved.and_then(|(c, r)| opt(&c.resolved_by, r));

        self.tenant_id.push(tenant);
        self.conversation_id.push(conv);
        let any_customer = first_non_null(&|c| &c.customer_id);
        self.s("customer_id", from_start(&|c| &c.customer_id).or(any_customer));
        let any_channel = first_non_null(&|c| &c.channel);
        self.s("channel", from_start(&|c| &c.channel).or(any_channel));
        let any_account = first_non_null(&|c| &c.channel_account);
        self.s("channel_account", from_start(&|c| &c.channel_account).or(any_account));
        let assigned_queue = last_non_null(&|c| &c.queue, "conversation.assigned");
        self.s("queue", assigned_queue.or(from_start(&|c| &c.queue)));
        self.s("team", last_non_null(&|c| &c.team, "conversation.assigned"));
        let assigned_agent = last_non_null(&|c| &c.agent_id, "conversation.assigned");
        self.s("agent_id", assigned_agent.or(m.last_replying_agent_id));
        self.s("language", from_start(&|c| &c.language));
        self.s("region", from_start(&|c| &c.region));
        self.s("timezone", from_start(&|c| &c.timezone));
        self.s("customer_tier", from_start(&|c| &c.customer_tier));
        self.s("source", from_start(&|c| &c.source));
        self.t("started_at", started.map(|(c, r)| c.at.value(r)));
        self.t("first_event_at", first_event_at);
        self.t("last_event_at", last_event_at);
        self.t("first_customer_message_at", fcm);
        self.t("first_reply_at", m.first_reply.map(|(at, _)| at));
        self.s("first_reply_by", m.first_reply.and_then(|(_, by)| by));
        self.t("first_human_reply_at", first_human_reply_at);
        self.t("handoff_at", handoff_at);
        self.s(
            "handoff_reason",
            handoffs.first().and_then(|e| {
                let (c, r) = c(e);
                opt(&c.reason, r)
            }),
        );
        self.n("handoffs", handoffs.len() as i64);
        self.n("assignments", of_type("conversation.assigned").count() as i64);
        self.t("resolved_at", resolved.last().map(|e| e.at));
        self.s("resolved_by", resolved_by);
        self.s(
            "resolved_agent_id",
            last_resolved.and_then(|(c, r)| opt(&c.agent_id, r)),
        );
        self.n("resolves", resolved.len() as i64);
        self.n("reopens", of_type("conversation.reopened").count() as i64);
        self.b("is_resolved", Some(is_resolved));
        self.b("reopened_within_7d", Some(reopened_within_7d));
        self.b("csat_requested", Some(!requested.is_empty()));
        self.t("csat_requested_at", requested.first().map(|e| e.at));
        self.csat_score.push(submitted.last().and_then(|e| {
            let (c, r) = c(e);
            c.score.is_valid(r).then(|| c.score.value(r))
        }));
        self.t("csat_submitted_at", submitted.last().map(|e| e.at));
        self.n("csat_submissions", submitted.len() as i64);
        self.tags.push(tags);
        self.n("messages", m.messages);
        self.n("customer_messages", m.customer_messages);
        self.n("bot_replies", m.bot_replies);
        self.n("agent_replies", m.agent_replies);
        self.n("agent_messages", agent_messages);
        self.n("private_notes", m.private_notes);
        self.n("automated_messages", m.automated_messages);
        self.n("copilot_replies", m.copilot_replies);
        self.n("replying_agents", m.replying_agents.len() as i64);
        self.n("customer_turns", m.customer_turns);
        self.n("answered_turns", m.waits.len() as i64);
        self.f("waiting_s", (!m.waits.is_empty()).then(|| m.waits.iter().sum::<f64>()));
        self.f("longest_wait_s", m.waits.iter().copied().reduce(f64::max));
        self.n("attributed_orders", attributed_orders);
        let one_currency = orders.filter(|o| o.currencies.len() == 1);
        self.order_net_amount.push(one_currency.and_then(|o| o.net));
        self.s(
            "order_currency",
            orders.map(|o| match o.currencies.len() {
                1 => o.currencies.first().copied().unwrap_or("MIXED"),
                _ => "MIXED",
            }),
        );
        self.experiment_variants.push(variants);
        self.f("frt_s", us_to_s(m.first_reply.map(|(at, _)| at), fcm));
        self.f("human_frt_s", us_to_s(first_human_reply_at, human_from));
        self.f(
            "handling_s",
            if is_resolved {
                us_to_s(resolved.last().map(|e| e.at), fcm)
            } else {
                None
            },
        );
        self.b(
            "sla_met",
            fcm.and_then(|fcm| match m.first_reply {
                Some((at, _)) => Some(at - fcm <= settings.sla_target_us),
                None => (settings.now_us > fcm + settings.sla_target_us).then_some(false),
            }),
        );
        self.b("transferred", Some(m.bot_replies > 0 && !handoffs.is_empty()));
        self.b(
            "bot_only",
            Some(is_resolved && resolved_by == Some("bot") && agent_messages == 0),
        );
        self.b("human_handled", Some(m.agent_replies > 0));
        self.b("converted", Some(attributed_orders > 0));
        self.message_facts.push(MessageFacts {
            turns: m.turns,
            replying_agents: m.replying_agents.iter().map(|a| a.to_string()).collect(),
            scripts: m.scripts.into_iter().map(|(k, key)| (k, key.to_string())).collect(),
        });
    }

    fn finish(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let n = self.tenant_id.len();
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name().as_str();
            let a: ArrayRef = match name {
                "tenant_id" => Arc::new(StringArray::from(self.tenant_id.clone())),
                "conversation_id" => Arc::new(StringArray::from(self.conversation_id.clone())),
                "csat_score" => Arc::new(Int32Array::from(self.csat_score.clone())),
                "tags" => string_lists(self.tags.iter().cloned()),
                "experiment_variants" => string_lists(self.experiment_variants.iter().cloned()),
                "order_net_amount" => {
                    let DataType::Decimal128(p, s) = field.data_type() else {
                        return Err(DataFusionError::Internal(format!(
                            "order_net_amount is {}, not a decimal",
                            field.data_type()
                        )));
                    };
                    Arc::new(Decimal128Array::from(self.order_net_amount.clone()).with_precision_and_scale(*p, *s)?)
                }
                _ => {
                    if let Some(v) = self.strings.get(name) {
                        Arc::new(StringArray::from(v.clone()))
                    } else if let Some(v) = self.instants.get(name) {
                        Arc::new(TimestampMicrosecondArray::from(v.clone()).with_timezone("UTC"))
                    } else if let Some(v) = self.counts.get(name) {
                        Arc::new(Int64Array::from(v.clone()))
                    } else if let Some(v) = self.floats.get(name) {
                        Arc::new(Float64Array::from(v.clone()))
                    } else if let Some(v) = self.flags.get(name) {
                        Arc::new(BooleanArray::from(v.clone()))
                    } else if n == 0 {
                        arrow::array::new_empty_array(field.data_type())
                    } else {
                        return Err(DataFusionError::Internal(format!(
                            "the fold has no column {name} of the conversations view"
                        )));
                    }
                }
            };
            columns.push(if a.data_type() == field.data_type() {
                a
            } else {
                cast(&a, field.data_type())?
            });
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Every difference between two sets of `conversations` rows in the same
/// order (the view's, `view`, and others, `folded`), one line each,
/// naming the conversation and the column: floats within 1e-9 relative
/// (sums may add in another order), the rest equal. Columns are matched by
/// name and type; nullability may differ.
pub fn differences(view: &RecordBatch, folded: &RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    let shape = |b: &RecordBatch| -> Vec<(String, DataType)> {
        b.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    if shape(view) != shape(folded) {
        out.push(format!("the columns differ:\n{:?}\n{:?}", shape(view), shape(folded)));
        return out;
    }
    if view.num_rows() != folded.num_rows() {
        out.push(format!(
            "{} rows in the view, {} folded",
            view.num_rows(),
            folded.num_rows()
        ));
    }
    let options = FormatOptions::default().with_null("NULL");
    let ids = view.column_by_name("conversation_id").unwrap();
    let ids = ArrayFormatter::try_new(ids.as_ref(), &options).unwrap();
    for (i, field) in view.schema().fields().iter().enumerate() {
        let (a, b) = (view.column(i), folded.column(i));
        for r in 0..view.num_rows().min(folded.num_rows()) {
            let same = if field.data_type() == &DataType::Float64 {
                let (x, y) = (a.as_primitive::<Float64Type>(), b.as_primitive::<Float64Type>());
                match (x.is_valid(r), y.is_valid(r)) {
                    (true, true) => {
                        let (x, y) = (x.value(r), y.value(r));
                        (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
                    }
                    (v, f) => v == f,
                }
            } else {
                let fa = ArrayFormatter::try_new(a.as_ref(), &options).unwrap();
                let fb = ArrayFormatter::try_new(b.as_ref(), &options).unwrap();
                fa.value(r).to_string() == fb.value(r).to_string()
            };
            if !same {
                let fa = ArrayFormatter::try_new(a.as_ref(), &options).unwrap();
                let fb = ArrayFormatter::try_new(b.as_ref(), &options).unwrap();
                out.push(format!(
                    "{} {}: view {} fold {}",
                    ids.value(r),
                    field.name(),
                    fa.value(r),
                    fb.value(r)
                ));
            }
        }
    }
    out
}

fn string_lists(lists: impl Iterator<Item = Option<Vec<Option<String>>>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for l in lists {
        match l {
            Some(items) => {
                for s in items {
                    b.values().append_option(s);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// What `conversations` reads of `messages`, for one conversation's
/// `message.created` events in order (see `sql/views/messages.sql`).
#[derive(Debug, Default)]
struct Messages<'a> {
    messages: i64,
    customer_messages: i64,
    bot_replies: i64,
    agent_replies: i64,
    agent_messages: i64,
    private_notes: i64,
    automated_messages: i64,
    copilot_replies: i64,
    replying_agents: BTreeSet<&'a str>,
    last_replying_agent_id: Option<&'a str>,
    first_customer_message_at: Option<i64>,
    /// The reply that answered the first customer turn, and who sent it.
    first_reply: Option<(i64, Option<&'a str>)>,
    customer_turns: i64,
    /// The waits of the answered turns, in seconds.
    waits: Vec<f64>,
    /// The answered turns: wait, who replied.
    turns: Vec<(f64, Replier)>,
    scripts: BTreeSet<(ScriptKind, &'a str)>,
    /// When the agent replies came, in order.
    agent_reply_ats: Vec<i64>,
}

impl<'a> Messages<'a> {
    fn of(messages: impl Iterator<Item = (&'a Cols, usize)>) -> Self {
        let mut m = Messages::default();
        // every reply in order: (time, sender)
        let mut replies: Vec<(i64, Option<&'a str>)> = Vec::new();
        // turns opened: (time, replies before it)
        let mut openers: Vec<(i64, usize)> = Vec::new();
        for (c, r) in messages {
            let at = c.at.value(r);
            let sender = opt(&c.sender, r);
            let private = c.private.is_valid(r) && c.private.value(r);
            let automated = c.automated.is_valid(r) && c.automated.value(r);
            let is_reply = matches!(sender, Some("bot" | "agent")) && !private && !automated;
            m.messages += 1;
            if !private {
                m.scripts
                    .extend(opt(&c.quick_reply_id, r).map(|k| (ScriptKind::QuickReply, k)));
                m.scripts
                    .extend(opt(&c.template_id, r).map(|k| (ScriptKind::Template, k)));
            }
            m.private_notes += i64::from(private);
            m.automated_messages += i64::from(automated);
            match sender {
                Some("customer") => {
                    m.customer_messages += 1;
                    m.first_customer_message_at.get_or_insert(at);
                    if openers.last().is_none_or(|(_, k)| *k != replies.len()) {
                        openers.push((at, replies.len()));
                    }
                }
                Some("agent") => m.agent_messages += 1,
                _ => {}
            }
            if is_reply {
                replies.push((at, sender));
                match sender {
                    Some("bot") => m.bot_replies += 1,
                    _ => {
                        m.agent_replies += 1;
                        let agent = opt(&c.agent_id, r);
                        m.last_replying_agent_id = agent;
                        m.replying_agents.extend(agent);
                        m.agent_reply_ats.push(at);
                        if matches!(opt(&c.ai_suggestion, r), Some("accepted" | "edited")) {
                            m.copilot_replies += 1;
                        }
                    }
                }
            }
        }
        m.customer_turns = openers.len() as i64;
        for (i, (at, before)) in openers.iter().enumerate() {
            if let Some(&(reply_at, by)) = replies.get(*before) {
                if i == 0 {
                    m.first_reply = Some((reply_at, by));
                }
                let wait = (reply_at - at) as f64 / 1_000_000.0;
                m.waits.push(wait);
                let replier = match by {
                    Some("bot") => Replier::Bot,
                    _ => Replier::Agent,
                };
                m.turns.push((wait, replier));
            }
        }
        m
    }
}
