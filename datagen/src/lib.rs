//! Realistic synthetic contract-v1 event streams (NDJSON) for demos, KPI
//! tests, dashboards and benchmarks.
//!
//! `datagen` simulates the businesses on the platform — their customers,
//! bots, agents and shops — and writes what the messaging core would send
//! to cxlake: one JSON object per line, every type and enum value of the
//! event contract v1 (see `DESIGN.md`). It is deterministic (same
//! [`GenConfig`], same bytes), streaming (memory holds about an hour of
//! events plus the long tail of late events such as refunds) and fast
//! (hand-written JSON, no allocation per event).
//!
//! ```
//! let cfg = datagen::GenConfig::demo_with(7, 1, 300.0);
//! let mut out = Vec::new();
//! let stats = datagen::generate(&cfg, &mut out).unwrap();
//! assert_eq!(stats.events as usize, out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count());
//! ```
//!
//! # The model
//!
//! Each tenant ([`TenantProfile`]) has a reporting time zone, a currency,
//! locales (language, region, customer time zone), channel accounts (with
//! or without a bot), queues, teams of agents on shifts, and business rates.
//!
//! * **Arrivals.** Conversations per local day are Poisson around
//!   `GenConfig::conversations_per_day × volume_share`, times a weekday
//!   factor (weekends busier for the shop, quieter for the retailer), a
//!   compound trend (`growth_per_day`) and ±6 % daily noise. Start times
//!   follow `hourly_profile` (default [`EVENING_PEAK`]: quiet nights, a
//!   lunch bump, the peak at 20:00 local), interpolated per quarter hour.
//! * **Customers.** A share are first-time customers (`customer_tier: new`);
//!   the others return (ids `cus_<n>` are reused, 40 % of them recent
//!   newcomers), so repurchase, per-customer experiment units and
//!   attribution by customer work. Language, region, favourite account and
//!   VIP status are stable per customer.
//! * **Conversations.** 1–6 customer turns (each 1–3 messages). On bot
//!   accounts the bot answers 1–5 s after the customer and resolves alone
//!   with probability `bot_resolve_rate` (more for sales, less for
//!   complaints, refunds and VIPs); otherwise it hands off with a reason
//!   (`sentiment` follows complaints, `policy` refunds). Email and voice go
//!   straight to a queue. Some conversations open with an automated
//!   campaign message; email gets an automated acknowledgement; web and app
//!   chats a system "agent joined" line.
//! * **Queueing.** Agents work 8-hour shifts with two days off (some always
//!   on weekends), breaks (`agent.status_changed` online / away / offline)
//!   and 3 % sick days. The wait for an agent is exponential around
//!   Sakasegawa's M/M/s mean for the expected human arrivals against the
//!   agents on shift in that quarter hour (concurrency × handle time), so
//!   evenings, when traffic peaks and the late shift is thin, wait longest;
//!   at night conversations wait for the morning shift. Agent replies slow
//!   down with utilisation. Chat customers abandon after ~25 minutes.
//! * **Agent work.** Replies carry `ai_suggestion` (each agent has an
//!   adoption habit), sometimes a `template_id` or `quick_reply_id`; 22 %
//!   of human conversations get a private note; agents tag at the end
//!   (`shipping_delay` drags `complaint` along), a classifier tags some at
//!   the start.
//! * **Outcomes.** Resolved by bot or agent (a few stay open), reopened
//!   within days (more after complaints) and resolved again. CSAT is
//!   requested after each resolution; ~30 % answer, the score falls with the
//!   human wait, complaints and reopenings and rises for quick bot answers;
//!   5 % change their score later (the last counts); some comment.
//! * **Orders.** Conversion depends on intent and tier; 65 % of orders carry
//!   the `conversation_id`, the rest come hours to 6 days later without it
//!   (attributed by customer). Organic orders come without conversations;
//!   a few are refunded, in full or in part.
//! * **Experiment.** [`GenConfig::experiment`] (default `greeting_v2`:
//!   `control` / `friendly`) is assigned per customer with
//!   `experiments::assign_variant`; `experiment.exposed` is written when the
//!   bot greets; `friendly` truly raises the order probability by 2.5
//!   points (about +2 points of measured conversion) and CSAT by 0.15.
//! * **Costs.** `channel_fee` per WhatsApp conversation, `sms` per outbound
//!   SMS, `ai_usage` per bot reply and per used copilot suggestion, `other`
//!   per voice minute.
//! * **Odd inputs on purpose.** `attrs` objects on some events (browser,
//!   campaign, attachments, order items), one top-level field outside the
//!   contract (`widget_version`, when `unknown_fields`), comments with
//!   quotes and non-ASCII text, timestamps in `Z` or in the tenant's offset
//!   (across DST changes), in milli- or microseconds.
//!
//! # Ids
//!
//! `event_id` is unique within a tenant and short: `c<conversation>-<n>`,
//! `a<agent>-<day>-<n>`, `o<day>-<k>` (base 36). `conversation_id` is
//! `conv_<n>`, `customer_id` `cus_<n>`, `agent_id` `agt_<nnnn>`.
//!
//! # Streaming
//!
//! [`generate`] and [`Generator`] write all events in `occurred_at` order
//! (per tenant; ties broken by conversation and sequence), hour by hour.
//! [`generate_day`] writes the events *caused* by one day (its
//! conversations with their late events, its shifts, its organic orders),
//! sorted within that chunk; days are independent, so they can be
//! generated in any order or in parallel. The union of all days equals the
//! output of [`generate`].
//!
//! # What it does not do
//!
//! No message text (only `chars`), no real names, no holidays or outages.

mod config;
mod event;
mod render;
mod rng;
mod sim;
mod stats;
mod world;

use std::collections::BTreeMap;
use std::io::{self, Write};

pub use config::{
    Channel, ChannelAccount, CostProfile, EVENING_PEAK, ExperimentConfig, GenConfig, Intent, Locale, OffsetStyle,
    OrderValue, Precision, QueueProfile, Shift, TeamProfile, TenantProfile, TimestampStyle, VariantEffect,
};
pub use stats::{EventType, GenStats};
pub use world::ConfigError;

use event::Ev;
use render::Renderer;
use sim::Arrival;
use world::{US, World};

/// Writes the whole data set as NDJSON (one event per line, `\n`-terminated)
/// in time order, streaming hour by hour.
pub fn generate(cfg: &GenConfig, out: &mut impl Write) -> io::Result<GenStats> {
    let mut generator = Generator::new(cfg).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    generator.write_all(out)?;
    Ok(generator.stats().clone())
}

/// Calls `sink` with each line (without the newline) of the events caused
/// by day `day_index` (0-based), sorted by `occurred_at`. Days are
/// independent of each other.
pub fn generate_day(cfg: &GenConfig, day_index: u32, sink: &mut impl FnMut(&str)) -> Result<GenStats, ConfigError> {
    let world = World::new(cfg)?;
    let mut stats = GenStats::new(world.tenants.len());
    if day_index >= world.days {
        return Ok(stats);
    }
    stats.days = 1;
    let mut events = Vec::new();
    world.gen_day(day_index, &mut events);
    events.sort_unstable_by_key(Ev::sort_key);
    let mut renderer = Renderer::new(&world);
    let mut line = String::with_capacity(512);
    for ev in &events {
        line.clear();
        renderer.render(ev, &mut line, &mut stats);
        stats.bytes += line.len() as u64 + 1;
        sink(&line);
    }
    Ok(stats)
}

/// Streaming generator of the time-ordered data set, one hour per chunk.
///
/// Memory holds the conversations starting within the current hour and the
/// events scheduled later (CSAT answers, reopenings, later orders,
/// refunds), bucketed by hour.
#[derive(Debug)]
pub struct Generator {
    world: World,
    renderer: Renderer,
    stats: GenStats,
    /// Next day to open per tenant.
    next_day: Vec<u32>,
    /// Pending arrivals per tenant (sorted by start).
    arrivals: Vec<std::collections::VecDeque<Arrival>>,
    /// Generated, not yet written events by UTC hour.
    buckets: BTreeMap<i64, Vec<Ev>>,
    /// The next UTC hour to write.
    hour: i64,
    scratch: Vec<Ev>,
    id_buf: String,
    /// The hour being handed out by the iterator.
    current: std::vec::IntoIter<Ev>,
}

const HOUR_US: i64 = 3600 * US;

impl Generator {
    pub fn new(cfg: &GenConfig) -> Result<Self, ConfigError> {
        let world = World::new(cfg)?;
        let n = world.tenants.len();
        let hour = world.day_floor_us(0).div_euclid(HOUR_US);
        let mut stats = GenStats::new(n);
        stats.days = world.days;
        Ok(Generator {
            renderer: Renderer::new(&world),
            world,
            stats,
            next_day: vec![0; n],
            arrivals: vec![Default::default(); n],
            buckets: BTreeMap::new(),
            hour,
            scratch: Vec::new(),
            id_buf: String::new(),
            current: Vec::new().into_iter(),
        })
    }

    /// Counts of what has been written so far.
    pub fn stats(&self) -> &GenStats {
        &self.stats
    }

    fn file(&mut self) {
        for ev in self.scratch.drain(..) {
            let h = ev.t_us.div_euclid(HOUR_US).max(self.hour);
            self.buckets.entry(h).or_default().push(ev);
        }
    }

    fn all_generated(&self) -> bool {
        self.next_day.iter().all(|&d| d >= self.world.days) && self.arrivals.iter().all(|a| a.is_empty())
    }

    /// The next non-empty hour of events, sorted; `None` when done.
    fn next_events(&mut self) -> Option<Vec<Ev>> {
        loop {
            if self.all_generated() {
                match self.buckets.keys().next() {
                    Some(&h) => self.hour = self.hour.max(h),
                    None => return None,
                }
            }
            let bound = (self.hour + 1) * HOUR_US;
            // Open the days starting before the end of this hour, then
            // simulate every conversation starting before it: nothing
            // generated later can fall into this hour.
            for ti in 0..self.world.tenants.len() {
                let tw = &self.world.tenants[ti];
                while self.next_day[ti] < self.world.days && tw.midnight(self.next_day[ti]) < bound {
                    let d = self.next_day[ti];
                    self.world.gen_day_fixed(tw, d, &mut self.scratch);
                    self.arrivals[ti].extend(self.world.arrivals(tw, d));
                    self.next_day[ti] += 1;
                }
                while let Some(a) = self.arrivals[ti].front() {
                    if a.t0 >= bound {
                        break;
                    }
                    let a = *a;
                    self.arrivals[ti].pop_front();
                    self.world.conversation(tw, &a, &mut self.id_buf, &mut self.scratch);
                }
            }
            self.file();
            let current = self.hour;
            self.hour += 1;
            // Bucket vectors are not recycled: a tail bucket (refunds in two
            // weeks) would keep a whole busy hour's capacity alive.
            if let Some(mut events) = self.buckets.remove(&current) {
                events.sort_unstable_by_key(Ev::sort_key);
                return Some(events);
            }
        }
    }

    fn render_line(&mut self, ev: &Ev, buf: &mut String) {
        let before = buf.len();
        self.renderer.render(ev, buf, &mut self.stats);
        buf.push('\n');
        self.stats.bytes += (buf.len() - before) as u64;
    }

    /// Appends the lines (`\n`-terminated) of the next non-empty hour to
    /// `buf`; returns `false` when everything has been written.
    pub fn next_chunk(&mut self, buf: &mut String) -> bool {
        match self.next_events() {
            Some(events) => {
                for ev in &events {
                    self.render_line(ev, buf);
                }
                true
            }
            None => false,
        }
    }

    /// Calls `sink` with each line (without newline) of the next non-empty
    /// hour; returns `false` when everything has been written.
    pub fn next_lines(&mut self, sink: &mut impl FnMut(&str)) -> bool {
        let Some(events) = self.next_events() else {
            return false;
        };
        let mut line = String::with_capacity(512);
        for ev in &events {
            line.clear();
            self.render_line(ev, &mut line);
            sink(&line[..line.len() - 1]);
        }
        true
    }

    /// Writes everything left as NDJSON, flushing every MiB.
    pub fn write_all(&mut self, out: &mut impl Write) -> io::Result<()> {
        let mut buf = String::with_capacity(1 << 20);
        while let Some(events) = self.next_events() {
            for ev in &events {
                self.render_line(ev, &mut buf);
                if buf.len() >= 1 << 20 {
                    out.write_all(buf.as_bytes())?;
                    buf.clear();
                }
            }
        }
        out.write_all(buf.as_bytes())?;
        out.flush()
    }
}

/// Lines without the trailing newline.
impl Iterator for Generator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            if let Some(ev) = self.current.next() {
                let mut line = String::with_capacity(400);
                self.render_line(&ev, &mut line);
                line.pop();
                return Some(line);
            }
            self.current = self.next_events()?.into_iter();
        }
    }
}
