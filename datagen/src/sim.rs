//! The behaviour model: one day of a tenant's conversations, agent shifts
//! and organic orders, as unsorted [`Ev`]s.

use chrono::NaiveTime;

use crate::config::{Channel, Intent, OrderValue};
use crate::event::*;
use crate::rng::{SimRng, hash, unit_from_hash};
use crate::world::{TenantWorld, US, World, local_to_utc_us, stream};

#[inline]
fn secs(s: f64) -> i64 {
    (s * US as f64) as i64
}

/// A conversation to simulate: when it starts, its number and customer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) t0: i64,
    pub(crate) conv: u64,
    pub(crate) customer: u64,
    pub(crate) is_new: bool,
}

/// Appends the events of one conversation (or of one agent-day, or one
/// organic order) with consecutive sequence numbers.
struct Sink<'a> {
    out: &'a mut Vec<Ev>,
    tenant: u16,
    account: u16,
    conv: u64,
    customer: u64,
    seq: u32,
    millis: bool,
    end_us: i64,
}

impl Sink<'_> {
    fn push(&mut self, t_us: i64, body: Body) {
        self.push_with(t_us, body, true);
    }

    /// `linked = false`: no `conversation_id` and channel (an order placed
    /// later in the shop, attributed by customer).
    fn push_with(&mut self, t_us: i64, body: Body, linked: bool) {
        let seq = self.seq;
        self.seq += 1;
        let t_us = if self.millis {
            t_us - t_us.rem_euclid(1000)
        } else {
            t_us
        };
        if t_us >= self.end_us {
            return;
        }
        self.out.push(Ev {
            t_us,
            tenant: self.tenant,
            account: if linked { self.account } else { NONE16 },
            conv: if linked { self.conv } else { NONE64 },
            customer: self.customer,
            id: EvId::Conv { conv: self.conv, seq },
            body,
        });
    }

    fn push_unlinked(&mut self, t_us: i64, body: Body) {
        self.push_with(t_us, body, false);
    }

    fn msg(&mut self, t_us: i64, m: Msg) {
        self.push(t_us, Body::Message(m));
    }

    fn cost(&mut self, t_us: i64, kind: CostKind, amount: f64) {
        let amount_micros = (amount * 1e6).round() as i64;
        if amount_micros > 0 {
            self.push(t_us, Body::Cost { kind, amount_micros });
        }
    }
}

fn msg(sender: Sender, chars: f64) -> Msg {
    Msg {
        sender,
        agent: NONE32,
        private: false,
        automated: false,
        template: NONE16,
        quick_reply: NONE16,
        ai: Ai::Absent,
        chars: chars.clamp(1.0, 20_000.0) as u32,
        attrs: NONE16,
    }
}

/// A comment index into [`COMMENTS`] for a language and score.
fn comment_for(language: &str, score: u8, pick: u64) -> u16 {
    let lang = COMMENTS
        .iter()
        .position(|(p, _)| language.starts_with(p))
        .unwrap_or(COMMENTS.len() - 1);
    let band = match score {
        1 | 2 => 0,
        3 => 1,
        _ => 2,
    };
    (lang * 6 + band * 2 + (pick % 2) as usize) as u16
}

impl World {
    /// All events caused by day `d` (conversations started that day, shifts
    /// starting that day, organic orders that day), unsorted.
    pub(crate) fn gen_day(&self, d: u32, out: &mut Vec<Ev>) {
        for tw in &self.tenants {
            self.gen_day_fixed(tw, d, out);
            self.gen_conversations(tw, d, out);
        }
    }

    /// The events of day `d` that do not come from conversations: agent
    /// shifts and organic orders. None of them is before local midnight.
    pub(crate) fn gen_day_fixed(&self, tw: &TenantWorld, d: u32, out: &mut Vec<Ev>) {
        self.gen_agents(tw, d, out);
        self.gen_organic_orders(tw, d, out);
    }

    fn end_us(&self, tw: &TenantWorld) -> i64 {
        if self.snapshot_at_end {
            tw.midnight(self.days)
        } else {
            i64::MAX
        }
    }

    fn millis(tw: &TenantWorld) -> bool {
        tw.profile.timestamps.precision == crate::config::Precision::Millis
    }

    fn local_day_to_utc(&self, tw: &TenantWorld, d: u32, local_s: f64) -> i64 {
        let date = self.start + chrono::Days::new(d as u64);
        let whole = local_s.floor();
        let frac_us = ((local_s - whole) * US as f64) as i64;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(whole as u32 % 86_400, 0).unwrap_or(NaiveTime::MIN);
        local_to_utc_us(&tw.profile.timezone, date.and_time(time)) + frac_us
    }

    /// Shift status events: online at the start, away for breaks, offline at
    /// the end, for every agent working on local day `d`.
    fn gen_agents(&self, tw: &TenantWorld, d: u32, out: &mut Vec<Ev>) {
        let date = self.start + chrono::Days::new(d as u64);
        let wd = chrono::Datelike::weekday(&date).num_days_from_monday();
        let local_day = tw.local_secs(tw.midnight(d)).div_euclid(86_400);
        let midnight = tw.midnight(d);
        let end_us = self.end_us(tw);
        let millis = Self::millis(tw);
        for agent in &tw.agents {
            if agent.days_off & (1 << wd) != 0 || tw.sick(self.seed, agent.id, local_day) {
                continue;
            }
            let mut rng = SimRng::new(&[self.seed, tw.index as u64, agent.id as u64, d as u64, stream::AGENTS]);
            let start = self.local_day_to_utc(tw, d, agent.shift_start_min as f64 * 60.0);
            let hours = agent.shift_hours as f64;
            let mut seq = 0u8;
            let team = agent.team;
            let mut push = |t: i64, status: Status| {
                let t = if millis { t - t.rem_euclid(1000) } else { t };
                if t < end_us {
                    out.push(Ev {
                        t_us: t.max(midnight),
                        tenant: tw.index,
                        account: NONE16,
                        conv: NONE64,
                        customer: NONE64,
                        id: EvId::Agent {
                            agent: agent.id,
                            day: d,
                            seq,
                        },
                        body: Body::AgentStatus {
                            agent: agent.id,
                            team,
                            status,
                        },
                    });
                }
                seq += 1;
            };
            let online = start + secs(rng.uniform(-300.0, 600.0));
            push(online, Status::Online);
            // Breaks: a short one after ~2 h, lunch after ~4 h, another short
            // one after ~6 h on long shifts.
            let breaks: [(f64, f64, f64); 3] = [(0.25, 600.0, 900.0), (0.5, 1800.0, 2700.0), (0.75, 600.0, 900.0)];
            for (i, (at, lo, hi)) in breaks.into_iter().enumerate() {
                if hours < 4.0 && i != 1 || (i == 2 && !rng.chance(0.6)) {
                    continue;
                }
                let away = start + secs(hours * 3600.0 * at + rng.uniform(-1200.0, 1200.0));
                push(away, Status::Away);
                push(away + secs(rng.uniform(lo, hi)), Status::Online);
            }
            push(start + secs(hours * 3600.0 + rng.uniform(0.0, 900.0)), Status::Offline);
        }
    }

    fn gen_organic_orders(&self, tw: &TenantWorld, d: u32, out: &mut Vec<Ev>) {
        let p = &tw.profile;
        let mut rng = SimRng::new(&[self.seed, tw.index as u64, d as u64, stream::ORGANIC]);
        let n_conv = tw.day_count[d as usize] as f64;
        let n = (n_conv * p.organic_orders_per_conversation.max(0.0) * rng.uniform(0.85, 1.15)).round() as u32;
        let known = tw.cust_base[d as usize].max(1);
        for k in 0..n {
            let customer = rng.below(known);
            let bin = rng.pick_cdf(&tw.bin_cdf);
            let t = self.local_day_to_utc(tw, d, bin as f64 * 900.0 + rng.uniform(0.0, 900.0));
            let vip = self.is_vip(tw, customer);
            let amount_cents = self.order_amount(tw, &mut rng, vip);
            let order = OrderRef::Organic { day: d, k };
            let mut ev = Ev {
                t_us: t,
                tenant: tw.index,
                account: NONE16,
                conv: NONE64,
                customer,
                id: EvId::Organic {
                    day: d,
                    k,
                    refund: false,
                },
                body: Body::OrderPlaced {
                    order,
                    amount_cents,
                    items: 1 + rng.below(4) as u8,
                    payment: self.payment_method(tw, &mut rng),
                },
            };
            let end_us = self.end_us(tw);
            let millis = Self::millis(tw);
            let trunc = |t: i64| if millis { t - t.rem_euclid(1000) } else { t };
            ev.t_us = trunc(ev.t_us);
            if ev.t_us < end_us {
                out.push(ev);
            }
            if rng.chance(p.refund_rate) {
                ev.t_us = trunc(t + secs(rng.lognormal(3.0 * 86_400.0, 0.6).min(20.0 * 86_400.0)));
                ev.id = EvId::Organic {
                    day: d,
                    k,
                    refund: true,
                };
                ev.body = Body::OrderRefunded { order, amount_cents };
                if ev.t_us < end_us {
                    out.push(ev);
                }
            }
        }
    }

    fn is_vip(&self, tw: &TenantWorld, customer: u64) -> bool {
        unit_from_hash(hash(&[self.seed, tw.index as u64, customer, stream::CUSTOMER, 1])) < tw.profile.vip_share
    }

    fn order_amount(&self, tw: &TenantWorld, rng: &mut SimRng, vip: bool) -> i64 {
        let v = match &tw.profile.order_value {
            OrderValue::LogNormal { median, sigma } => rng.lognormal(*median, *sigma) * if vip { 1.6 } else { 1.0 },
            OrderValue::Plans(plans) => plans[rng.pick_cdf(&tw.plan_cdf)].0,
        };
        ((v * 100.0).round() as i64).max(1)
    }

    fn payment_method(&self, tw: &TenantWorld, rng: &mut SimRng) -> u8 {
        let options: &[u8] = match tw.profile.currency.as_str() {
            "CNY" => &[1, 1, 2, 2, 2, 0],
            "EUR" => &[0, 0, 3, 3, 4, 6],
            _ => &[0, 0, 0, 5, 5, 3],
        };
        options[rng.below(options.len() as u64) as usize]
    }

    fn gen_conversations(&self, tw: &TenantWorld, d: u32, out: &mut Vec<Ev>) {
        let mut id_buf = String::with_capacity(24);
        for a in self.arrivals(tw, d) {
            self.conversation(tw, &a, &mut id_buf, out);
        }
    }

    /// The conversations starting on local day `d`, sorted by start time.
    pub(crate) fn arrivals(&self, tw: &TenantWorld, d: u32) -> Vec<Arrival> {
        let n = tw.day_count[d as usize] as usize;
        if n == 0 {
            return Vec::new();
        }
        let mut rng = SimRng::new(&[self.seed, tw.index as u64, d as u64, stream::ARRIVALS]);
        let mut local_s: Vec<f64> = (0..n)
            .map(|_| rng.pick_cdf(&tw.bin_cdf) as f64 * 900.0 + rng.uniform(0.0, 900.0))
            .collect();
        local_s.sort_unstable_by(f64::total_cmp);
        // Which conversations come from first-time customers: exactly
        // `new_count` of them, spread at random over the day.
        let new_n = tw.new_count[d as usize] as usize;
        let mut is_new = vec![false; n];
        is_new[..new_n.min(n)].fill(true);
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            is_new.swap(i, j);
        }
        let base_c = tw.cust_base[d as usize];
        let recent_from = tw.cust_base[d.saturating_sub(30) as usize];
        let mut new_rank = 0u64;
        let mut out: Vec<Arrival> = local_s
            .iter()
            .enumerate()
            .map(|(k, &ls)| {
                // Returning customers: often one of the recent newcomers,
                // otherwise anyone known.
                let customer = if is_new[k] {
                    new_rank += 1;
                    base_c + new_rank - 1
                } else if base_c > recent_from && rng.chance(0.4) {
                    recent_from + rng.below(base_c - recent_from)
                } else {
                    rng.below(base_c.max(1))
                };
                Arrival {
                    t0: self.local_day_to_utc(tw, d, ls),
                    conv: tw.conv_base[d as usize] + k as u64,
                    customer,
                    is_new: is_new[k],
                }
            })
            .collect();
        // DST can fold local times; keep UTC order for the streaming merge.
        out.sort_by_key(|a| (a.t0, a.conv));
        out
    }

    /// When the conversation reaches an agent, and which one: queueing by
    /// the agents on shift at that moment; overnight it waits for the morning.
    fn assign(&self, tw: &TenantWorld, team: u16, t_us: i64, rng: &mut SimRng) -> (i64, u32, f64) {
        let tm = &tw.teams[team as usize];
        let (slot, _) = tw.week_slot(t_us);
        let t_assign = if !tm.online[slot].is_empty() {
            t_us + secs(8.0 + rng.exp(tm.wait_mean_s[slot] + 15.0))
        } else {
            // Nobody on shift: wait for the next slot with agents, then the
            // backlog is worked off during the first 45 minutes.
            let mut k = 1;
            while k < crate::world::WEEK_SLOTS && tm.online[(slot + k) % crate::world::WEEK_SLOTS].is_empty() {
                k += 1;
            }
            let local = tw.local_secs(t_us);
            let into_slot = local.rem_euclid(900);
            t_us + secs((k as i64 * 900 - into_slot) as f64 + rng.uniform(0.0, 2700.0))
        };
        let (slot2, day2) = tw.week_slot(t_assign);
        let (mut candidates, mut rho) = (&tm.online[slot2], tm.rho[slot2]);
        if candidates.is_empty() {
            // DST or a backlog running past a shift end: take whoever is on
            // at the original time or any team member.
            candidates = &tm.online[slot];
            rho = 0.9;
        }
        let agent = if candidates.is_empty() {
            tw.agents[tm.agents[rng.below(tm.agents.len() as u64) as usize] as usize].id
        } else {
            let mut pick = candidates[rng.below(candidates.len() as u64) as usize];
            for _ in 0..3 {
                if !tw.sick(self.seed, tw.agents[pick.0 as usize].id, day2 - pick.1 as i64) {
                    break;
                }
                pick = candidates[rng.below(candidates.len() as u64) as usize];
            }
            tw.agents[pick.0 as usize].id
        };
        (t_assign, agent, rho)
    }

    pub(crate) fn conversation(&self, tw: &TenantWorld, arrival: &Arrival, id_buf: &mut String, out: &mut Vec<Ev>) {
        let Arrival {
            t0,
            conv,
            customer,
            is_new,
        } = *arrival;
        let p = &tw.profile;
        let ti = tw.index as u64;
        let mut rng = SimRng::new(&[self.seed, ti, conv, stream::CONVERSATION]);
        let ch = |k: u64| unit_from_hash(hash(&[self.seed, ti, customer, stream::CUSTOMER, k]));

        // Who: stable per customer (locale, favourite account, VIP).
        let locale = crate::rng::pick_cdf(&tw.locale_cdf, ch(0));
        let vip = self.is_vip(tw, customer);
        let tier = if is_new {
            Tier::New
        } else if vip {
            Tier::Vip
        } else {
            Tier::Regular
        };
        let (acc_cdf, acc_idx) = &tw.locale_accounts[locale];
        let account = if rng.chance(0.8) {
            acc_idx[crate::rng::pick_cdf(acc_cdf, ch(2))]
        } else {
            acc_idx[rng.pick_cdf(acc_cdf)]
        };
        let acc = &p.accounts[account as usize];
        let channel = acc.channel;
        let language = p.locales[locale].language.as_str();

        // Why: intent, tags (complaints travel with shipping delays).
        let intent = if rng.chance(p.sales_share) {
            Intent::Sales
        } else {
            Intent::Support
        };
        let mut tags: u16 = 0;
        match intent {
            Intent::Sales => {
                tags |= TAG_PRODUCT_QUESTION;
                if rng.chance(0.2) {
                    tags |= TAG_SIZE_ADVICE;
                }
                if rng.chance(0.12) {
                    tags |= TAG_DISCOUNT_CODE;
                }
                if rng.chance(0.06) {
                    tags |= TAG_PAYMENT_ISSUE;
                }
            }
            Intent::Support => {
                let r = rng.f64();
                tags |= if r < 0.36 {
                    TAG_ORDER_STATUS
                } else if r < 0.64 {
                    TAG_SHIPPING_DELAY | if rng.chance(0.5) { TAG_ORDER_STATUS } else { 0 }
                } else if r < 0.82 {
                    TAG_REFUND_REQUEST
                } else if r < 0.92 {
                    TAG_PAYMENT_ISSUE
                } else if p.currency == "USD" {
                    TAG_SUBSCRIPTION_CHANGE
                } else {
                    TAG_ACCOUNT_ACCESS
                };
                if p.currency == "USD" && rng.chance(0.25) {
                    tags |= TAG_SUBSCRIPTION_CHANGE;
                }
            }
        }
        let complaint_p = if tags & TAG_SHIPPING_DELAY != 0 {
            0.55
        } else if tags & TAG_REFUND_REQUEST != 0 {
            0.25
        } else {
            0.04
        };
        if rng.chance(complaint_p) {
            tags |= TAG_COMPLAINT;
        }
        let complaint = tags & TAG_COMPLAINT != 0;
        let queue = tw.queue_for[locale][match intent {
            Intent::Sales => 0,
            Intent::Support => 1,
        }];
        let team = tw.queue_team[queue as usize];

        let campaign = matches!(
            channel,
            Channel::Whatsapp | Channel::Sms | Channel::Wechat | Channel::Line | Channel::Messenger | Channel::App
        ) && rng.chance(0.08);
        let (source, attrs) = if campaign {
            (1, ATTRS_CAMPAIGN + rng.below(2) as u16)
        } else {
            match channel {
                Channel::Whatsapp | Channel::Messenger | Channel::Instagram => {
                    let r = rng.below(10);
                    if r < 6 {
                        (0, NONE16)
                    } else if r < 9 {
                        (2, ATTRS_AD)
                    } else {
                        (3, NONE16)
                    }
                }
                Channel::Webchat => {
                    if rng.chance(0.15) {
                        (10, ATTRS_BROWSER + rng.below(3) as u16)
                    } else {
                        (4, ATTRS_BROWSER + rng.below(3) as u16)
                    }
                }
                Channel::App => (5, ATTRS_APP + rng.below(2) as u16),
                Channel::Email => (6, NONE16),
                Channel::Voice => (7, NONE16),
                Channel::Line | Channel::Wechat => (if rng.chance(0.7) { 8 } else { 3 }, NONE16),
                Channel::FacebookComment => (9, NONE16),
                Channel::Sms | Channel::Other => (0, NONE16),
            }
        };

        // The experiment: bots greet with the assigned variant.
        let bot = acc.bot;
        let variant = match (&self.experiment, bot && p.runs_experiment) {
            (Some(exp), true) => {
                use std::fmt::Write;
                id_buf.clear();
                let _ = write!(id_buf, "cus_{customer}");
                let v = experiments::assign_variant(&exp.assignment_seed, id_buf, &self.variant_weights);
                Some(v.min(exp.variants.len() - 1))
            }
            _ => None,
        };
        let (conversion_lift, csat_lift) = match (variant, &self.experiment) {
            (Some(v), Some(exp)) => (exp.variants[v].conversion_lift, exp.variants[v].csat_lift),
            _ => (0.0, 0.0),
        };

        let mut c = Sink {
            out,
            tenant: tw.index,
            account,
            conv,
            customer,
            seq: 0,
            millis: Self::millis(tw),
            end_us: self.end_us(tw),
        };
        c.push(
            t0,
            Body::Started {
                locale: locale as u16,
                tier,
                queue,
                source,
                attrs,
            },
        );

        let is_async = channel.is_async();
        let voice = channel == Channel::Voice;
        let sms = channel == Channel::Sms;
        let cust_chars = |rng: &mut SimRng| {
            if channel == Channel::Email {
                rng.lognormal(420.0, 0.7)
            } else if voice {
                rng.lognormal(140.0, 0.6)
            } else {
                rng.lognormal(38.0, 0.8)
            }
        };
        let think = |rng: &mut SimRng| {
            if is_async {
                rng.lognormal(2.5 * 3600.0, 1.0)
            } else if voice {
                rng.lognormal(6.0, 0.5)
            } else {
                rng.lognormal(45.0, 0.9)
            }
        };
        let mut first_business_msg: Option<i64> = None;

        // Campaign-started conversations open with an automated outbound
        // message; the customer answers minutes later.
        let mut t = if campaign {
            let mut m = msg(
                if bot { Sender::Bot } else { Sender::System },
                rng.lognormal(160.0, 0.3),
            );
            m.automated = true;
            m.template = if rng.chance(0.6) {
                TPL_CAMPAIGN_SPRING
            } else {
                TPL_CAMPAIGN_WINBACK
            };
            c.msg(t0, m);
            first_business_msg = Some(t0);
            if sms {
                c.cost(t0, CostKind::Sms, p.costs.sms_per_message);
            }
            t0 + secs(rng.lognormal(300.0, 1.0))
        } else {
            t0 + secs(rng.uniform(0.05, 1.5))
        };

        let customer_turn = |c: &mut Sink, rng: &mut SimRng, t: i64| -> i64 {
            let n = match rng.below(100) {
                0..70 => 1,
                70..92 => 2,
                _ => 3,
            };
            let mut tt = t;
            for i in 0..n {
                if i > 0 {
                    tt += secs(rng.uniform(2.0, 25.0));
                }
                let mut m = msg(Sender::Customer, cust_chars(rng));
                if !voice && rng.chance(0.04) {
                    m.attrs = rng.below(2) as u16;
                }
                c.msg(tt, m);
            }
            tt
        };

        let mut turns: u32 = match rng.below(100) {
            0..22 => 1,
            22..48 => 2,
            48..68 => 3,
            68..82 => 4,
            82..92 => 5,
            _ => 6,
        };
        let mut last_customer = customer_turn(&mut c, &mut rng, t);
        let first_customer = t;
        if rng.chance(0.45) {
            c.push(
                t + secs(rng.uniform(0.3, 1.5)),
                Body::Tagged {
                    tags: tags & !TAG_COMPLAINT,
                    auto: true,
                },
            );
        }
        if channel == Channel::Email {
            let mut m = msg(Sender::System, 310.0);
            m.automated = true;
            m.template = TPL_AUTO_ACK;
            c.msg(t + secs(rng.uniform(1.0, 3.0)), m);
        }

        // Bot or human; the bot keeps simple, happy conversations.
        let mut resolve_p = p.bot_resolve_rate;
        if intent == Intent::Sales {
            resolve_p += 0.08;
        }
        if complaint {
            resolve_p -= 0.35;
        }
        if tags & TAG_REFUND_REQUEST != 0 {
            resolve_p -= 0.2;
        }
        if vip {
            resolve_p -= 0.1;
        }
        let bot_resolves = bot && rng.chance(resolve_p.clamp(0.02, 0.95));
        let handoff_turn = if bot && !bot_resolves {
            let h = 1 + rng.below(turns.min(2) as u64) as u32;
            turns = turns.max(h + 1);
            h
        } else {
            0
        };

        let mut agent: Option<u32> = None;
        let mut agent_ready = 0i64;
        let mut rho = 0.0;
        let mut human_wait_s = 0.0f64;
        let mut abandoned = false;
        let mut bot_replied = false;
        let mut first_agent_reply = true;
        let mut noted = false;
        let want_note = rng.chance(0.22);
        let mut last_reply = t;
        let mut first_reply: Option<i64> = None;
        let (mut agent_replies, mut bot_replies) = (0u32, 0u32);

        let bot_reply = |c: &mut Sink, rng: &mut SimRng, at: i64, template: u16| {
            let mut m = msg(Sender::Bot, rng.lognormal(140.0, 0.5));
            m.template = template;
            if rng.chance(0.3) {
                m.quick_reply = match intent {
                    Intent::Sales => [3u16, 4, 7, 6][rng.below(4) as usize],
                    Intent::Support => [0u16, 1, 2, 5][rng.below(4) as usize],
                };
            }
            c.msg(at, m);
            c.cost(at, CostKind::AiUsage, p.costs.ai_per_bot_reply * rng.uniform(0.6, 1.6));
            if sms {
                c.cost(at, CostKind::Sms, p.costs.sms_per_message);
            }
        };

        let agent_msg_template = |rng: &mut SimRng| -> u16 {
            if !rng.chance(0.12) {
                return NONE16;
            }
            if tags & TAG_SHIPPING_DELAY != 0 {
                TPL_SHIPPING_DELAY
            } else if tags & TAG_REFUND_REQUEST != 0 {
                TPL_REFUND_POLICY
            } else if tags & TAG_PAYMENT_ISSUE != 0 {
                TPL_PAYMENT_RETRY
            } else if tags & TAG_ORDER_STATUS != 0 {
                TPL_ORDER_STATUS
            } else {
                TPL_PRODUCT_INFO
            }
        };

        for turn in 1..=turns {
            if turn > 1 {
                if abandoned {
                    break;
                }
                t = last_reply + secs(think(&mut rng));
                last_customer = customer_turn(&mut c, &mut rng, t);
            }
            if bot && (bot_resolves || turn <= handoff_turn) {
                let at = last_customer + secs(rng.uniform(1.0, 5.0));
                let template = if !bot_replied {
                    match variant {
                        Some(v) => {
                            c.push(at, Body::Exposed { variant: v as u16 });
                            TPL_VARIANT_BASE + v as u16
                        }
                        None => TPL_GREETING_DEFAULT,
                    }
                } else {
                    NONE16
                };
                bot_reply(&mut c, &mut rng, at, template);
                bot_replied = true;
                bot_replies += 1;
                first_reply.get_or_insert(at);
                first_business_msg.get_or_insert(at);
                last_reply = at;
                if turn != handoff_turn {
                    continue;
                }
                // Handoff to a human right after the bot's "connecting you".
                let reason = {
                    let w = [
                        0.38,
                        0.3,
                        if tags & TAG_REFUND_REQUEST != 0 { 0.35 } else { 0.1 },
                        if complaint { 0.45 } else { 0.08 },
                        0.07,
                    ];
                    match rng.pick_cdf(&crate::rng::cdf_of(w)) {
                        0 => Reason::CustomerRequest,
                        1 => Reason::LowConfidence,
                        2 => Reason::Policy,
                        3 => Reason::Sentiment,
                        _ => Reason::Other,
                    }
                };
                let th = at + secs(rng.uniform(0.3, 2.0));
                c.push(th, Body::Handoff { reason });
                last_reply = th;
            }
            // Human part of the conversation.
            let queued_at = last_reply.max(last_customer);
            let a = match agent {
                Some(a) => a,
                None => {
                    let (ta, a, r) = self.assign(tw, team, queued_at, &mut rng);
                    human_wait_s = (ta - queued_at) as f64 / US as f64;
                    rho = r;
                    let patience = if is_async {
                        f64::INFINITY
                    } else if voice {
                        rng.exp(240.0)
                    } else {
                        rng.exp(1500.0)
                    };
                    abandoned = human_wait_s > patience;
                    if voice && abandoned {
                        // The caller hung up; nobody picked up.
                        break;
                    }
                    c.push(ta, Body::Assigned { agent: a, team, queue });
                    if matches!(channel, Channel::Webchat | Channel::App) && rng.chance(0.5) {
                        let mut m = msg(Sender::System, 42.0);
                        m.automated = true;
                        m.template = TPL_AGENT_JOINED;
                        c.msg(ta, m);
                    }
                    agent = Some(a);
                    agent_ready = ta;
                    a
                }
            };
            let ag = &tw.agents[a as usize];
            let delay = if first_agent_reply {
                if is_async {
                    rng.lognormal(600.0, 0.8)
                } else if voice {
                    rng.uniform(2.0, 6.0)
                } else {
                    rng.lognormal(35.0, 0.6)
                }
            } else if is_async {
                rng.lognormal(2.0 * 3600.0, 0.9)
            } else if voice {
                rng.lognormal(8.0, 0.5)
            } else {
                rng.lognormal(25.0 * (1.0 + 3.0 * rho * rho), 0.7)
            };
            let at = agent_ready.max(last_customer) + secs(delay);
            if want_note && !noted && rng.chance(0.6) {
                let mut m = msg(Sender::Agent, rng.lognormal(90.0, 0.6));
                m.agent = a;
                m.private = true;
                c.msg(
                    (at - secs(rng.uniform(1.0, delay.clamp(1.0, 60.0)))).max(agent_ready),
                    m,
                );
                noted = true;
            }
            let mut m = msg(
                Sender::Agent,
                if channel == Channel::Email {
                    rng.lognormal(650.0, 0.5)
                } else {
                    rng.lognormal(160.0, 0.6)
                },
            );
            m.agent = a;
            m.template = if abandoned && first_agent_reply {
                TPL_WAIT_APOLOGY
            } else {
                agent_msg_template(&mut rng)
            };
            if m.template == NONE16 && turn == turns && rng.chance(0.25) {
                m.template = TPL_CLOSING;
            }
            if rng.chance(0.05) {
                m.quick_reply = rng.below(QUICK_REPLIES.len() as u64) as u16;
            }
            let r = rng.f64();
            m.ai = if r < ag.ai_accept {
                Ai::Accepted
            } else if r < ag.ai_accept + ag.ai_edit {
                Ai::Edited
            } else {
                Ai::None
            };
            if complaint && rng.chance(0.1) {
                m.attrs = 2;
            }
            c.msg(at, m);
            if m.ai != Ai::None {
                c.cost(at, CostKind::AiUsage, p.costs.ai_per_suggestion * rng.uniform(0.6, 1.6));
            }
            if sms {
                c.cost(at, CostKind::Sms, p.costs.sms_per_message);
            }
            first_agent_reply = false;
            agent_replies += 1;
            first_reply.get_or_insert(at);
            first_business_msg.get_or_insert(at);
            last_reply = at;
        }

        if want_note && !noted && agent.is_some() {
            let mut m = msg(Sender::Agent, rng.lognormal(90.0, 0.6));
            m.agent = agent.unwrap_or(NONE32);
            m.private = true;
            c.msg(last_reply + secs(rng.uniform(5.0, 60.0)), m);
        }
        if channel == Channel::Whatsapp {
            c.cost(
                first_business_msg.unwrap_or(t0),
                CostKind::ChannelFee,
                p.costs.whatsapp_per_conversation,
            );
        }

        // Wrap up: tags by the agent, resolution, CSAT, reopen.
        let human = agent.is_some();
        if human && rng.chance(0.65) {
            c.push(
                last_reply + secs(rng.uniform(2.0, 40.0)),
                Body::Tagged { tags, auto: false },
            );
        }
        let resolved_at = if voice && agent.is_none() {
            None
        } else if human {
            let p_open = if abandoned { 0.4 } else { 0.02 };
            (!rng.chance(p_open)).then(|| last_reply + secs(rng.lognormal(if is_async { 1800.0 } else { 90.0 }, 0.9)))
        } else {
            (!rng.chance(0.04)).then(|| last_reply + secs(rng.lognormal(45.0, 0.8)))
        };
        if voice {
            let end = resolved_at.unwrap_or(last_reply);
            let minutes = ((end - t0) as f64 / (60.0 * US as f64)).ceil().max(1.0);
            c.cost(end, CostKind::Other, p.costs.voice_per_minute * minutes);
        }
        let agent_id = agent.unwrap_or(NONE32);
        let mut reopened = false;
        let csat_base = {
            let quick_bot = bot_resolves && resolved_at.is_some_and(|r| r - first_customer < secs(180.0));
            4.5 + csat_lift + if quick_bot { 0.3 } else { 0.0 }
                - (0.5 * (1.0 + human_wait_s / 60.0).ln()).min(1.8)
                - if complaint { 0.9 } else { 0.0 }
                - if tags & TAG_REFUND_REQUEST != 0 { 0.3 } else { 0.0 }
                - if abandoned { 1.2 } else { 0.0 }
        };
        if let Some(rt) = resolved_at {
            c.push(rt, Body::Resolved { agent: agent_id });
            self.csat(&mut c, &mut rng, rt, csat_base, abandoned, language);
            if rng.chance(p.reopen_rate * if complaint { 1.8 } else { 1.0 }) {
                reopened = true;
                let tr = rt + secs(rng.lognormal(6.0 * 3600.0, 1.2).min(6.0 * 86_400.0));
                let mut m = msg(Sender::Customer, cust_chars(&mut rng));
                m.attrs = if rng.chance(0.1) { 0 } else { NONE16 };
                c.msg(tr, m);
                c.push(tr + secs(rng.uniform(0.2, 1.0)), Body::Reopened);
                let mut queued = tr + secs(1.0);
                if !human {
                    let at = tr + secs(rng.uniform(1.0, 5.0));
                    bot_reply(&mut c, &mut rng, at, NONE16);
                    queued = tr + secs(rng.uniform(5.0, 7.0));
                    c.push(
                        queued,
                        Body::Handoff {
                            reason: Reason::CustomerRequest,
                        },
                    );
                }
                let (ta, a, _) = self.assign(tw, team, queued, &mut rng);
                c.push(ta, Body::Assigned { agent: a, team, queue });
                let mut m = msg(Sender::Agent, rng.lognormal(160.0, 0.6));
                m.agent = a;
                m.ai = Ai::None;
                let at = ta + secs(rng.lognormal(40.0, 0.6));
                c.msg(at, m);
                let rt2 = at + secs(rng.lognormal(240.0, 0.8));
                c.push(rt2, Body::Resolved { agent: a });
                let wait2 = (ta - queued) as f64 / US as f64;
                let base2 = csat_base - 0.5 - 0.3 * (1.0 + wait2 / 60.0).ln();
                self.csat(&mut c, &mut rng, rt2, base2, false, language);
            }
        }

        // Orders: some during or right after the conversation (with its id),
        // some days later (attributed by customer).
        let tier_mult = match tier {
            Tier::New => 1.1,
            Tier::Regular => 1.0,
            Tier::Vip => 1.4,
        };
        let base_conv = match intent {
            Intent::Sales => p.conversion_sales,
            Intent::Support => p.conversion_support,
        };
        let p_order = base_conv * tier_mult * if abandoned { 0.3 } else { 1.0 } + conversion_lift;
        if rng.chance(p_order) {
            let explicit = rng.chance(0.65);
            let to = if explicit {
                let from = first_reply.unwrap_or(t0);
                let until = resolved_at.unwrap_or(last_reply) + secs(3600.0);
                from + ((until - from) as f64 * rng.f64()) as i64
            } else {
                t0 + secs(rng.uniform(2.0 * 3600.0, 6.0 * 86_400.0))
            };
            let amount_cents = self.order_amount(tw, &mut rng, vip);
            let order = OrderRef::Conv(conv);
            let body = Body::OrderPlaced {
                order,
                amount_cents,
                items: 1 + rng.below(4) as u8,
                payment: self.payment_method(tw, &mut rng),
            };
            if explicit {
                c.push(to, body);
            } else {
                c.push_unlinked(to, body);
            }
            let refund_p = p.refund_rate
                * if complaint || tags & TAG_REFUND_REQUEST != 0 {
                    2.5
                } else {
                    1.0
                };
            if rng.chance(refund_p) {
                let partial = rng.chance(0.3);
                let amount = if partial {
                    ((amount_cents as f64 * rng.uniform(0.2, 0.8)).round() as i64).max(1)
                } else {
                    amount_cents
                };
                let tr = to + secs(rng.lognormal(3.0 * 86_400.0, 0.6).min(20.0 * 86_400.0));
                c.push_unlinked(
                    tr,
                    Body::OrderRefunded {
                        order,
                        amount_cents: amount,
                    },
                );
            }
        }
        let _ = (reopened, agent_replies, bot_replies);
    }

    /// `csat.requested` after a resolution; ~30 % answer; the score falls
    /// with waiting and rises for quick bot answers; a few change their mind.
    fn csat(&self, c: &mut Sink, rng: &mut SimRng, resolved: i64, latent: f64, abandoned: bool, language: &str) {
        let tr = resolved + secs(rng.uniform(1.0, 10.0));
        c.push(tr, Body::CsatRequested);
        let p = self.tenants_csat_rate(c.tenant) * if abandoned { 0.5 } else { 1.0 };
        if !rng.chance(p) {
            return;
        }
        let score = |rng: &mut SimRng, latent: f64| (latent + 0.8 * rng.normal()).round().clamp(1.0, 5.0) as u8;
        let s = score(rng, latent);
        let ts = tr + secs(rng.lognormal(240.0, 1.2).min(3.0 * 86_400.0));
        let with_comment = rng.chance(if s <= 2 { 0.5 } else { 0.2 });
        let comment = if with_comment {
            comment_for(language, s, rng.u64())
        } else {
            NONE16
        };
        c.push(ts, Body::CsatSubmitted { score: s, comment });
        if rng.chance(0.05) {
            let s2 = (s as i32 + if rng.chance(0.5) { 1 } else { -1 }).clamp(1, 5) as u8;
            c.push(
                ts + secs(rng.uniform(60.0, 1800.0)),
                Body::CsatSubmitted {
                    score: s2,
                    comment: NONE16,
                },
            );
        }
    }

    fn tenants_csat_rate(&self, tenant: u16) -> f64 {
        self.tenants[tenant as usize].profile.csat_response_rate
    }
}
