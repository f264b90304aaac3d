//! What the pages know about KPIs: units, which direction is better, the
//! reference targets of `DESIGN.md`, and the period-over-period change.

use model::{Kpi, Measure};

/// How a KPI value is measured and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// A whole number of things (conversations).
    Count,
    /// A duration in seconds.
    Seconds,
    /// A share in [0, 1], shown as a percentage.
    Fraction,
    /// A mean score (CSAT 1–5).
    Score,
    /// An amount of money in one ISO 4217 currency.
    Money(String),
    /// Any other number (conversations per agent).
    Decimal,
}

/// A tile's standing against its reference target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetStatus {
    Excellent,
    Good,
    NeedsWork,
    /// The KPI has no reference target, or no value.
    #[default]
    None,
}

impl TargetStatus {
    /// CSS class suffix.
    pub(crate) fn class(self) -> &'static str {
        match self {
            TargetStatus::Excellent => "excellent",
            TargetStatus::Good => "good",
            TargetStatus::NeedsWork => "needs-work",
            TargetStatus::None => "none",
        }
    }
}

/// First response time target: under 2 minutes.
pub const FRT_TARGET_S: f64 = 120.0;
/// Average response time target: under 30 seconds.
pub const RESPONSE_TARGET_S: f64 = 30.0;
/// CSAT at or above this is excellent.
pub const CSAT_EXCELLENT: f64 = 4.5;
/// CSAT at or above this (and below [`CSAT_EXCELLENT`]) is good.
pub const CSAT_GOOD: f64 = 4.0;

/// The reference targets shown on dashboards (`DESIGN.md`): FRT under 2
/// minutes, average response under 30 seconds (both strictly: exactly 120 s
/// misses), CSAT ≥ 4.5 excellent, 4.0–4.5 good, under 4.0 needs work.
/// `value` is the figure the tile shows (the mean for durations).
pub fn target_status(key: &str, value: Option<f64>) -> TargetStatus {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return TargetStatus::None;
    };
    let under = |target: f64| {
        if v < target {
            TargetStatus::Good
        } else {
            TargetStatus::NeedsWork
        }
    };
    match key {
        "frt_s" => under(FRT_TARGET_S),
        "response_s" => under(RESPONSE_TARGET_S),
        "csat" if v >= CSAT_EXCELLENT => TargetStatus::Excellent,
        "csat" if v >= CSAT_GOOD => TargetStatus::Good,
        "csat" => TargetStatus::NeedsWork,
        _ => TargetStatus::None,
    }
}

/// Whether a higher value of the glossary KPI `key` is better; `None` when
/// neither direction is (volume) or the key is unknown.
pub fn higher_is_better(key: &str) -> Option<bool> {
    Kpi::parse(key)?.higher_is_better()
}

/// The 18 KPI keys of the glossary, in the order the overview shows them.
pub const KPI_KEYS: [&str; 18] = {
    let mut keys = [""; 18];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = Kpi::ALL[i].key();
        i += 1;
    }
    keys
};

/// The unit of a glossary KPI key (`aov` and the costs in `currency`).
pub fn unit_of(key: &str, currency: &str) -> Unit {
    match Kpi::parse(key).map(Kpi::measure) {
        Some(Measure::Count) => Unit::Count,
        Some(Measure::Duration) => Unit::Seconds,
        Some(Measure::Score) => Unit::Score,
        Some(Measure::Money) => Unit::Money(currency.to_string()),
        Some(Measure::Decimal) => Unit::Decimal,
        Some(Measure::Rate) | None => Unit::Fraction,
    }
}

/// Period-over-period change of a tile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// `value / previous − 1` (counts, durations, money).
    Relative(f64),
    /// `value − previous` in the KPI's own unit (shares: percentage points
    /// once multiplied by 100; scores: points).
    Absolute(f64),
}

impl Change {
    /// The change from `previous` to `value`: absolute for shares and
    /// scores (a CSAT of 4.2 → 4.4 is "+0.2", not "+4.8 %"), relative
    /// otherwise; `None` without both values or from a previous 0.
    pub fn between(unit: &Unit, value: Option<f64>, previous: Option<f64>) -> Option<Change> {
        let (v, p) = (value?, previous?);
        if !v.is_finite() || !p.is_finite() {
            return None;
        }
        match unit {
            Unit::Fraction | Unit::Score => Some(Change::Absolute(v - p)),
            _ if p == 0.0 => None,
            _ => Some(Change::Relative(v / p - 1.0)),
        }
    }

    /// The signed amount (relative or absolute).
    pub fn amount(self) -> f64 {
        match self {
            Change::Relative(x) | Change::Absolute(x) => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frt_target_is_strictly_under_two_minutes() {
        assert_eq!(target_status("frt_s", Some(119.999)), TargetStatus::Good);
        assert_eq!(target_status("frt_s", Some(120.0)), TargetStatus::NeedsWork);
        assert_eq!(target_status("frt_s", Some(120.001)), TargetStatus::NeedsWork);
        assert_eq!(target_status("frt_s", None), TargetStatus::None);
        assert_eq!(target_status("frt_s", Some(f64::NAN)), TargetStatus::None);
    }

    #[test]
    fn response_target_is_strictly_under_thirty_seconds() {
        assert_eq!(target_status("response_s", Some(29.9)), TargetStatus::Good);
        assert_eq!(target_status("response_s", Some(30.0)), TargetStatus::NeedsWork);
    }

    #[test]
    fn csat_bands_include_their_lower_bound() {
        assert_eq!(target_status("csat", Some(4.5)), TargetStatus::Excellent);
        assert_eq!(target_status("csat", Some(4.49)), TargetStatus::Good);
        assert_eq!(target_status("csat", Some(4.0)), TargetStatus::Good);
        assert_eq!(target_status("csat", Some(3.99)), TargetStatus::NeedsWork);
        assert_eq!(target_status("csat", Some(5.0)), TargetStatus::Excellent);
    }

    #[test]
    fn kpis_without_targets_have_no_status() {
        assert_eq!(target_status("conversations", Some(10.0)), TargetStatus::None);
        assert_eq!(target_status("human_frt_s", Some(500.0)), TargetStatus::None);
    }

    #[test]
    fn change_is_absolute_for_shares_and_scores_relative_otherwise() {
        assert_eq!(
            Change::between(&Unit::Fraction, Some(0.6), Some(0.5))
                .map(Change::amount)
                .map(|x| (x * 1e9).round()),
            Some(0.1e9)
        );
        assert_eq!(
            Change::between(&Unit::Score, Some(4.5), Some(4.0)),
            Some(Change::Absolute(0.5))
        );
        assert_eq!(
            Change::between(&Unit::Count, Some(150.0), Some(100.0)),
            Some(Change::Relative(0.5))
        );
        assert_eq!(Change::between(&Unit::Count, Some(150.0), Some(0.0)), None);
        assert_eq!(Change::between(&Unit::Seconds, None, Some(3.0)), None);
    }

    #[test]
    fn every_glossary_key_has_a_unit_and_known_direction_or_none() {
        assert_eq!(unit_of("frt_s", "EUR"), Unit::Seconds);
        assert_eq!(unit_of("aov", "EUR"), Unit::Money("EUR".into()));
        assert_eq!(unit_of("sla_attainment", "EUR"), Unit::Fraction);
        for key in KPI_KEYS {
            if key != "conversations" {
                assert!(higher_is_better(key).is_some(), "{key}");
            }
        }
    }
}
