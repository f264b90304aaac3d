//! Mergeable aggregates of conversations ([`Summary`]): a rollup cell or
//! a query's running total; the combinations of a fact's values a group
//! key takes; tag counts.

use super::*;

/// Tag counts of the conversations of a window that have a tag
/// ([`TenantRollup::tag_counts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagCounts {
    /// Conversations with at least one tag.
    pub tagged: u64,
    /// Conversations per tag.
    pub tags: HashMap<String, u64>,
    /// Conversations per ordered pair of two different tags (both orders).
    pub pairs: HashMap<(String, String), u64>,
}

/// Every combination of a fact's values of some dimensions: one for
/// scalar dimensions, one per tag (variant) for the list ones, with
/// [`NONE`] for NULL or an empty list. Its buffers serve fact after fact.
pub(super) struct Combinations<'a> {
    pub(super) dims: &'a [Dimension],
    pub(super) values: Vec<Vec<u32>>,
    pub(super) key: Vec<u32>,
    pub(super) at: Vec<usize>,
}

impl<'a> Combinations<'a> {
    pub(super) fn new(dims: &'a [Dimension]) -> Self {
        Self {
            dims,
            values: vec![Vec::new(); dims.len()],
            key: vec![NONE; dims.len()],
            at: vec![0; dims.len()],
        }
    }

    /// Calls `visit` with each combination of `f`'s values (the key holds
    /// interned ids, a value per dimension).
    pub(super) fn each(&mut self, f: &Fact, mut visit: impl FnMut(&[u32])) {
        for (d, v) in self.dims.iter().zip(self.values.iter_mut()) {
            v.clear();
            match slot(*d) {
                Some(k) => v.push(f.dims[k]),
                None => {
                    v.extend_from_slice(if *d == Dimension::Tag { f.tags() } else { f.variants() });
                    v.sort_unstable();
                    v.dedup();
                    if v.is_empty() {
                        v.push(NONE);
                    }
                }
            }
        }
        self.at.fill(0);
        'combinations: loop {
            for (k, &i) in self.at.iter().enumerate() {
                self.key[k] = self.values[k][i];
            }
            visit(&self.key);
            for k in (0..self.dims.len()).rev() {
                self.at[k] += 1;
                if self.at[k] < self.values[k].len() {
                    continue 'combinations;
                }
                self.at[k] = 0;
            }
            break;
        }
    }
}

/// Something a duration value can be added to.
pub(super) trait AddValue: Default {
    fn add_value(&mut self, x: f64);
}
impl AddValue for Sketch {
    fn add_value(&mut self, x: f64) {
        self.add(x)
    }
}
impl AddValue for SketchAcc {
    fn add_value(&mut self, x: f64) {
        self.add(x)
    }
}

/// Durations in output order: (kpi, segment).
pub(super) const DURATION_KEYS: [(&str, &str); 6] = [
    ("frt_s", "all"),
    ("human_frt_s", "all"),
    ("handling_s", "all"),
    ("response_s", "all"),
    ("response_s", "bot"),
    ("response_s", "human"),
];

/// Mergeable aggregates of a set of conversations: a rollup cell
/// (`Summary<Sketch>`) or a query's running total (`Summary<SketchAcc>`).
#[derive(Debug, Clone, Default)]
pub(super) struct Summary<S> {
    pub(super) conversations: u64,
    pub(super) durations: [S; 6],
    /// Conversations behind each duration.
    pub(super) duration_n: [u64; 6],
    pub(super) sla_met: u64,
    /// Conversations with a first reply (SLA met or missed whatever the time).
    pub(super) sla_answered: u64,
    /// First customer message of conversations nobody answered yet: missed
    /// once the target has passed, undecided before.
    pub(super) unanswered_since: Vec<i64>,
    pub(super) resolved: u64,
    pub(super) ever_resolved: u64,
    pub(super) reopened: u64,
    pub(super) bot_replied: u64,
    pub(super) transferred: u64,
    pub(super) bot_only: u64,
    pub(super) converted: u64,
    pub(super) human_handled: u64,
    pub(super) agent_replies: u64,
    pub(super) copilot_replies: u64,
    pub(super) csat_n: u64,
    pub(super) csat_sum: i64,
    pub(super) csat_distribution: [u64; 5],
    pub(super) csat_top2: u64,
    pub(super) csat_requested: u64,
    pub(super) csat_answered: u64,
    pub(super) agents: IdSet,
    /// currency → (net amount, orders, conversations)
    pub(super) aov: BTreeMap<u32, (f64, u64, u64)>,
}

impl<S: AddValue> Summary<S> {
    pub(super) fn add_fact(&mut self, f: &Fact, sla_target_us: i64) {
        self.conversations += 1;
        for (i, &d) in f.durations.iter().enumerate() {
            if !d.is_nan() {
                self.durations[i].add_value(d);
                self.duration_n[i] += 1;
            }
        }
        let mut seen = [false; 3];
        for &(wait, seg) in f.turns.iter() {
            self.durations[3].add_value(wait);
            seen[0] = true;
            match seg {
                SEG_BOT => {
                    self.durations[4].add_value(wait);
                    seen[1] = true;
                }
                SEG_HUMAN => {
                    self.durations[5].add_value(wait);
                    seen[2] = true;
                }
                _ => {}
            }
        }
        for (i, s) in seen.iter().enumerate() {
            self.duration_n[3 + i] += u64::from(*s);
        }
        if let Some(fcm) = opt_us(f.first_customer_message_us) {
            match opt_us(f.first_reply_us) {
                Some(reply) => {
                    self.sla_answered += 1;
                    self.sla_met += u64::from(reply - fcm <= sla_target_us);
                }
                None => self.unanswered_since.push(fcm),
            }
        }
        let flag = |bit: u16| u64::from(f.flags & bit != 0);
        self.resolved += flag(RESOLVED);
        self.ever_resolved += flag(EVER_RESOLVED);
        self.reopened += u64::from(f.flags & EVER_RESOLVED != 0 && f.flags & REOPENED_7D != 0);
        self.bot_replied += flag(BOT_REPLIED);
        self.transferred += u64::from(f.flags & BOT_REPLIED != 0 && f.flags & HANDED_OFF != 0);
        self.bot_only += flag(BOT_ONLY);
        self.converted += flag(CONVERTED);
        self.human_handled += flag(HUMAN_HANDLED);
        self.agent_replies += u64::from(f.agent_replies);
        self.copilot_replies += u64::from(f.copilot_replies);
        if let Some(score) = f.csat() {
            self.csat_n += 1;
            self.csat_sum += i64::from(score);
            if (1..=5).contains(&score) {
                self.csat_distribution[(score - 1) as usize] += 1;
            }
            self.csat_top2 += u64::from(score >= 4);
        }
        if f.flags & CSAT_REQUESTED != 0 {
            self.csat_requested += 1;
            self.csat_answered += u64::from(f.csat().is_some());
        }
        for &a in f.replying_agents() {
            self.agents.insert(a);
        }
        for &(cur, net, orders) in f.orders.iter() {
            let e = self.aov.entry(cur).or_insert((0.0, 0, 0));
            e.0 += net;
            e.1 += u64::from(orders);
            e.2 += 1;
        }
    }
}

impl Summary<SketchAcc> {
    pub(super) fn merge_cell(&mut self, c: &Summary<Sketch>) {
        self.conversations += c.conversations;
        for i in 0..6 {
            self.durations[i].merge(&c.durations[i]);
            self.duration_n[i] += c.duration_n[i];
        }
        self.sla_met += c.sla_met;
        self.sla_answered += c.sla_answered;
        self.unanswered_since.extend_from_slice(&c.unanswered_since);
        self.resolved += c.resolved;
        self.ever_resolved += c.ever_resolved;
        self.reopened += c.reopened;
        self.bot_replied += c.bot_replied;
        self.transferred += c.transferred;
        self.bot_only += c.bot_only;
        self.converted += c.converted;
        self.human_handled += c.human_handled;
        self.agent_replies += c.agent_replies;
        self.copilot_replies += c.copilot_replies;
        self.csat_n += c.csat_n;
        self.csat_sum += c.csat_sum;
        for i in 0..5 {
            self.csat_distribution[i] += c.csat_distribution[i];
        }
        self.csat_top2 += c.csat_top2;
        self.csat_requested += c.csat_requested;
        self.csat_answered += c.csat_answered;
        self.agents.union(&c.agents);
        for (cur, (net, orders, convs)) in &c.aov {
            let e = self.aov.entry(*cur).or_insert((0.0, 0, 0));
            e.0 += net;
            e.1 += orders;
            e.2 += convs;
        }
    }
}

impl Summary<Sketch> {
    pub(super) fn shrink(&mut self) {
        for d in &mut self.durations {
            d.shrink();
        }
        self.unanswered_since.shrink_to_fit();
    }
}
