//! Which events a rollup session holds ([`EventRange`]), as conditions
//! over the columns of `events` whose bounds are parameters.

use super::*;
use crate::statement::Binder;

/// The events a rollup session holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRange {
    /// Events at or after this instant (µs since the epoch); `None`: all.
    pub since_us: Option<i64>,
    /// Events before this instant, except those of [`CREDIT_TYPES`] (read
    /// up to `credit_until_us`) and [`LONG_HORIZON_TYPES`] (read to the
    /// end); `None`: no bound.
    pub until_us: Option<i64>,
    /// With `until_us`: where [`CREDIT_TYPES`] end (at least `until_us`).
    pub credit_until_us: Option<i64>,
}

/// `occurred_at` at or after `us` (µs since the epoch), with the
/// `event_date` term that lets the lake prune partitions.
fn at_or_after(b: &mut Binder, us: i64) -> String {
    format!("event_date >= {} AND occurred_at >= {}", day(b, us), instant(b, us))
}

/// `occurred_at` before `us`, with its `event_date` term.
fn before(b: &mut Binder, us: i64) -> String {
    format!("event_date <= {} AND occurred_at < {}", day(b, us), instant(b, us))
}

/// The UTC day of `us` as a `DATE` parameter.
fn day(b: &mut Binder, us: i64) -> String {
    b.bind(ScalarValue::Date32(Some(us.div_euclid(DAY_US) as i32)))
}

/// `us` as a parameter of the type of the `events` timestamps.
fn instant(b: &mut Binder, us: i64) -> String {
    b.bind(crate::statement::utc_micros(us))
}

/// The event types `types` as an `IN` list of parameters.
fn types_in(b: &mut Binder, types: &[&str]) -> String {
    let list: Vec<String> = types.iter().map(|t| b.bind(ScalarValue::from(*t))).collect();
    format!("type IN ({})", list.join(", "))
}

impl EventRange {
    /// The events of [`LONG_HORIZON_TYPES`] a bounded range needs beyond
    /// [`Self::predicate`]: the condition over them (they are read once per
    /// build and kept in memory, not re-read from the lake per slice).
    pub fn long_horizon_predicate(&self, b: &mut Binder) -> Option<String> {
        let until = self.until_us?;
        Some(format!(
            "occurred_at >= {} AND {}",
            instant(b, until),
            types_in(b, &LONG_HORIZON_TYPES)
        ))
    }

    /// Whether a session of this range reads [`LONG_HORIZON_TYPES`] events
    /// apart ([`Self::long_horizon_predicate`]).
    pub fn is_bounded(&self) -> bool {
        self.until_us.is_some()
    }

    /// Where [`CREDIT_TYPES`] end: `credit_until_us`, at least `until_us`.
    pub(super) fn credit_until(&self, until: i64) -> i64 {
        self.credit_until_us.unwrap_or(until).max(until)
    }

    /// The condition over the columns of `events` that selects the range
    /// from the lake (`TRUE` when unbounded), apart from the events of
    /// [`Self::long_horizon_predicate`], its bounds bound in `b`;
    /// `event_date` terms let the lake prune partitions.
    pub fn predicate(&self, b: &mut Binder) -> String {
        let mut terms = Vec::new();
        if let Some(since) = self.since_us {
            terms.push(at_or_after(b, since));
        }
        if let Some(until) = self.until_us {
            let [start, placed] = CREDIT_TYPES;
            terms.push(format!(
                "(({}) OR ({} AND (type = '{placed}' OR (type = '{start}' AND customer_id IN (SELECT customer_id FROM {CREDIT_CUSTOMERS})))))",
                before(b, until),
                before(b, self.credit_until(until)),
            ));
        }
        if terms.is_empty() {
            "TRUE".to_string()
        } else {
            terms.join(" AND ")
        }
    }

    /// With `until_us`: the query over `source` (all events, restricted by
    /// `scope`, a condition on its columns whose values `b` holds) of the
    /// [`CREDIT_CUSTOMERS`] the [`Self::predicate`] reads, to be held in
    /// the session under that name: customers who started a conversation
    /// in the range and placed an order between its end and
    /// `credit_until_us`.
    pub fn credit_customers_sql(&self, source: &str, scope: &str, b: &mut Binder) -> Option<String> {
        let until = self.until_us?;
        let since = self
            .since_us
            .map_or(String::new(), |s| format!(" AND {}", at_or_after(b, s)));
        let [start, placed] = CREDIT_TYPES;
        Some(format!(
            "SELECT DISTINCT customer_id FROM {source} \
             WHERE {scope} AND type = '{placed}' AND customer_id IS NOT NULL AND {} AND {} \
             AND customer_id IN (SELECT customer_id FROM {source} WHERE {scope} AND type = '{start}'{since} AND {})",
            at_or_after(b, until),
            before(b, self.credit_until(until)),
            before(b, until),
        ))
    }
}
