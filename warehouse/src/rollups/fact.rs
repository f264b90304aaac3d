//! One conversation as the overview needs it ([`Fact`]), the names its
//! interned ids stand for, and the order of groups.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Interner {
    pub(super) ids: HashMap<Arc<str>, u32>,
    pub(super) names: Vec<Arc<str>>,
}

impl Interner {
    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
    pub(super) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
    pub(super) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
    pub(super) fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.intern(s))
    }
}

pub(super) const RESOLVED: u16 = 1;
pub(super) const EVER_RESOLVED: u16 = 2;
pub(super) const REOPENED_7D: u16 = 4;
pub(super) const BOT_REPLIED: u16 = 8;
pub(super) const HANDED_OFF: u16 = 16;
pub(super) const BOT_ONLY: u16 = 32;
pub(super) const CONVERTED: u16 = 64;
pub(super) const CSAT_REQUESTED: u16 = 128;
pub(super) const HUMAN_HANDLED: u16 = 256;

/// Reply sender of a customer turn.
pub(super) const SEG_BOT: u8 = 0;
pub(super) const SEG_HUMAN: u8 = 1;

/// A NULL instant of a [`Fact`]; a NULL duration is NaN. A million facts
/// are held at once: `Option`s would cost them 8 bytes a field more.
pub(super) const NO_US: i64 = i64::MIN;
pub(super) const NO_SCORE: i32 = i32::MIN;

/// One conversation, as much as the overview needs of it.
#[derive(Debug, Clone)]
pub(super) struct Fact {
    pub(super) id: Arc<str>,
    pub(super) first_event_us: i64,
    pub(super) last_event_us: i64,
    /// [`NO_US`] when NULL, as the other instants.
    pub(super) started_us: i64,
    /// Interned channel, channel_account, queue, team, agent, language,
    /// region, customer_tier ([`NONE`] when NULL).
    pub(super) dims: [u32; 8],
    /// Interned tags, then experiment variants, then replying agents, in
    /// one allocation: [`Fact::tags`], [`Fact::variants`],
    /// [`Fact::replying_agents`].
    pub(super) ids: Box<[u32]>,
    pub(super) n_tags: u16,
    pub(super) n_variants: u16,
    /// frt_s, human_frt_s, handling_s; NaN when NULL.
    pub(super) durations: [f64; 3],
    pub(super) first_customer_message_us: i64,
    pub(super) first_reply_us: i64,
    pub(super) flags: u16,
    pub(super) agent_replies: u32,
    pub(super) copilot_replies: u32,
    /// [`NO_SCORE`] when NULL.
    pub(super) csat_score: i32,
    /// Interned `customer_id` (the rollup's customers; [`NONE`] when NULL):
    /// which conversations an order without one may credit.
    pub(super) customer: u32,
    /// Customer-turn waits in seconds and who answered.
    pub(super) turns: Box<[(f64, u8)]>,
    /// Attributed orders per currency: (currency, net amount, orders).
    pub(super) orders: Box<[(u32, f64, u32)]>,
}

pub(super) fn opt_us(us: i64) -> Option<i64> {
    (us != NO_US).then_some(us)
}

impl Fact {
    pub(super) fn tags(&self) -> &[u32] {
        &self.ids[..usize::from(self.n_tags)]
    }

    pub(super) fn variants(&self) -> &[u32] {
        &self.ids[usize::from(self.n_tags)..usize::from(self.n_tags) + usize::from(self.n_variants)]
    }

    pub(super) fn replying_agents(&self) -> &[u32] {
        &self.ids[usize::from(self.n_tags) + usize::from(self.n_variants)..]
    }

    pub(super) fn started(&self) -> Option<i64> {
        opt_us(self.started_us)
    }

    pub(super) fn csat(&self) -> Option<i32> {
        (self.csat_score != NO_SCORE).then_some(self.csat_score)
    }

    /// Sets the replying agents (they come after the conversation's row).
    pub(super) fn set_replying_agents(&mut self, agents: &[u32]) {
        let lists = usize::from(self.n_tags) + usize::from(self.n_variants);
        let mut ids = Vec::with_capacity(lists + agents.len());
        ids.extend_from_slice(&self.ids[..lists]);
        ids.extend_from_slice(agents);
        self.ids = ids.into_boxed_slice();
    }

    pub(super) fn matches(&self, filters: &[(Dimension, Option<Vec<u32>>)]) -> bool {
        filters.iter().all(|(dim, values)| {
            let list: &[u32] = match dim {
                Dimension::Tag => self.tags(),
                Dimension::Variant => self.variants(),
                _ => {
                    let v = self.dims[slot(*dim).unwrap_or(0)];
                    return match values {
                        None => v == NONE,
                        Some(vs) => v != NONE && vs.contains(&v),
                    };
                }
            };
            match values {
                None => list.is_empty(),
                Some(vs) => list.iter().any(|t| vs.contains(t)),
            }
        })
    }
}

/// A growable bit set of interned ids (replying agents).
#[derive(Debug, Clone, Default)]
pub(super) struct IdSet(pub(super) Vec<u64>);

impl IdSet {
    pub(super) fn insert(&mut self, id: u32) {
        let (w, b) = ((id / 64) as usize, id % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }
    pub(super) fn union(&mut self, other: &IdSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    pub(super) fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The order of groups: by the first dimension's value, then the
/// second's, and so on, values by name and `None` (NULL or empty) last.
pub(super) fn group_order(a: &[Option<String>], b: &[Option<String>]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => x.cmp(y),
            (x, y) => y.is_some().cmp(&x.is_some()),
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}
