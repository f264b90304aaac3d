//! The time grid of a forecast: UTC interval starts mapped to the tenant's
//! local weekday and slot of day.
//!
//! `staffing::forecast` knows nothing of clocks; it keys every point on the
//! caller's `(weekday, slot)`. This module is where wall-clock time enters:
//! each interval is a fixed span of real time (15 or 30 minutes) starting at
//! a UTC instant, and its slot is the *local* clock time at that instant
//! divided by the interval. Walking real time rather than local time is what
//! makes DST days come out right without special cases: the spring-forward
//! day in Europe/Berlin has 46 half-hours (02:00–03:00 local never happens,
//! slots 4 and 5 are absent), the fall-back day 50 (slots 4 and 5 appear
//! twice, first at +02:00, then at +01:00).
//!
//! Time zones are IANA names (`Europe/Berlin`) or fixed offsets (`+08:00`),
//! resolved through Arrow's `Tz`, which wraps `chrono-tz` — the same zone
//! database the ingest contract validates `timezone` against.

use arrow::array::timezone::Tz;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// The longest horizon a forecast may cover, in local days.
pub const MAX_HORIZON_DAYS: i64 = 14;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Interval length of a forecast: 15 or 30 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalLength(u32);

impl IntervalLength {
    /// `15` or `30`; anything else is refused with the reason.
    pub fn from_minutes(minutes: i64) -> Result<Self, String> {
        match minutes {
            15 | 30 => Ok(Self(minutes as u32)),
            other => Err(format!("must be 15 or 30 (minutes), got {other}")),
        }
    }

    pub fn minutes(self) -> u32 {
        self.0
    }

    pub fn seconds(self) -> u32 {
        self.0 * 60
    }

    pub fn micros(self) -> i64 {
        i64::from(self.seconds()) * MICROS_PER_SECOND
    }
}

/// A time zone as given by the caller, with the name it was given by.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub tz: Tz,
}

impl Zone {
    /// Parses an IANA name (`Europe/Berlin`, `UTC`) or a fixed offset
    /// (`+08:00`).
    pub fn parse(name: &str) -> Result<Self, String> {
        let tz: Tz = name.parse().map_err(|_| {
            format!(
                "{name:?} is not an IANA time zone (like Europe/Berlin or America/New_York) nor an offset like +08:00"
            )
        })?;
        Ok(Self {
            name: name.to_string(),
            tz,
        })
    }

    fn local(&self, t_us: i64) -> Option<NaiveDateTime> {
        DateTime::<Utc>::from_timestamp_micros(t_us).map(|t| t.with_timezone(&self.tz).naive_local())
    }

    /// RFC 3339 with the local offset, e.g. `2026-03-29T03:00:00+02:00`.
    pub fn rfc3339(&self, t_us: i64) -> String {
        DateTime::<Utc>::from_timestamp_micros(t_us)
            .map(|t| t.with_timezone(&self.tz).fixed_offset().to_rfc3339())
            .unwrap_or_default()
    }

    /// The first instant of a local date: local midnight, or, where midnight
    /// falls into a DST gap, the first local minute that exists after it.
    pub fn start_of_day(&self, date: NaiveDate) -> Option<i64> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        (0..=180).find_map(|minute| {
            let local = midnight + Duration::minutes(minute);
            self.tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_micros())
        })
    }
}

/// One interval of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start, UTC microseconds since the epoch.
    pub start_us: i64,
    /// Local date of the start.
    pub local_date: NaiveDate,
    /// Local weekday of the start, 0 = Monday.
    pub weekday: u8,
    /// Local clock time of the start / interval length.
    pub slot: u16,
}

/// Local date, weekday and slot of day of the instant `t_us`.
pub fn slot_at(zone: &Zone, interval: IntervalLength, t_us: i64) -> Option<Slot> {
    let local = zone.local(t_us)?;
    let seconds_of_day = local.num_seconds_from_midnight();
    Some(Slot {
        start_us: t_us,
        local_date: local.date(),
        weekday: local.weekday().num_days_from_monday() as u8,
        slot: (seconds_of_day / interval.seconds()) as u16,
    })
}

/// Whether `t_us` starts a local interval: its local clock time is a whole
/// multiple of the interval (00:00, 00:30, …).
pub fn is_aligned(zone: &Zone, interval: IntervalLength, t_us: i64) -> bool {
    t_us % MICROS_PER_SECOND == 0
        && zone
            .local(t_us)
            .is_some_and(|l| l.num_seconds_from_midnight() % interval.seconds() == 0)
}

/// Every interval starting in `[from_us, to_us)`, stepping real time from
/// `from_us` (which should be aligned, see [`is_aligned`]).
pub fn grid(zone: &Zone, interval: IntervalLength, from_us: i64, to_us: i64) -> Vec<Slot> {
    let step = interval.micros();
    let mut out = Vec::with_capacity(usize::try_from((to_us - from_us).max(0) / step + 1).unwrap_or(0));
    let mut t = from_us;
    while t < to_us {
        if let Some(s) = slot_at(zone, interval, t) {
            out.push(s);
        }
        t += step;
    }
    out
}

/// Parses a horizon bound: an RFC 3339 instant, or a date `YYYY-MM-DD`
/// meaning the start of that local day in `zone`.
pub fn parse_instant(zone: &Zone, text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return zone
            .start_of_day(d)
            .ok_or_else(|| format!("{text:?}: no start of that day in {}", zone.name));
    }
    Err(format!(
        "{text:?} is neither an RFC 3339 instant (2026-03-29T00:00:00+01:00) nor a date (2026-03-29, the start of that local day)"
    ))
}

/// Checks a horizon: aligned bounds, `from < to`, at most
/// [`MAX_HORIZON_DAYS`] local days. Returns `(parameter, reason)`.
pub fn check_horizon(
    zone: &Zone,
    interval: IntervalLength,
    from_us: i64,
    to_us: i64,
) -> Result<(), (&'static str, String)> {
    for (name, t) in [("from", from_us), ("to", to_us)] {
        if !is_aligned(zone, interval, t) {
            return Err((
                name,
                format!(
                    "{} does not start a {}-minute interval in {}; use a local time on the :00/:{:02} grid",
                    zone.rfc3339(t),
                    interval.minutes(),
                    zone.name,
                    interval.minutes() % 60
                ),
            ));
        }
    }
    if from_us >= to_us {
        return Err(("to", "must be after `from`".into()));
    }
    // Compare local wall-clock spans, so that 14 local days across a
    // fall-back night (14 days and 1 hour of real time) are allowed.
    let (Some(lf), Some(lt)) = (zone.local(from_us), zone.local(to_us)) else {
        return Err(("to", "out of the representable range".into()));
    };
    if lt - lf > Duration::days(MAX_HORIZON_DAYS) {
        return Err((
            "to",
            format!(
                "the horizon from {} to {} is longer than {MAX_HORIZON_DAYS} days",
                zone.rfc3339(from_us),
                zone.rfc3339(to_us)
            ),
        ));
    }
    Ok(())
}

/// How a special day is treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpecialKind {
    /// In history: ignored by every model. Not allowed in the horizon.
    Exclude,
    /// In history: traffic was this many times normal. In the horizon:
    /// expect this many times normal.
    Factor(f64),
}

/// A marked local date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecialDay {
    pub date: NaiveDate,
    pub kind: SpecialKind,
}

/// Parses `2026-12-24:0.5,2026-12-25:exclude` (the query-string form).
pub fn parse_special_days(text: &str) -> Result<Vec<SpecialDay>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (date, kind) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?}: expected DATE:FACTOR or DATE:exclude, e.g. 2026-12-24:0.5"))?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| format!("{date:?}: {e}"))?;
        let kind = if kind == "exclude" {
            SpecialKind::Exclude
        } else {
            let f: f64 = kind
                .parse()
                .map_err(|_| format!("{part:?}: the factor {kind:?} is not a number"))?;
            special_factor(f).map_err(|e| format!("{part:?}: {e}"))?
        };
        out.push(SpecialDay { date, kind });
    }
    Ok(out)
}

/// A factor must be a positive finite number.
pub fn special_factor(f: f64) -> Result<SpecialKind, String> {
    if f.is_finite() && f > 0.0 {
        Ok(SpecialKind::Factor(f))
    } else {
        Err(format!(
            "the factor must be a positive number (use exclude to drop a day), got {f}"
        ))
    }
}

/// The special marking of a local date, if any (the last mention wins).
pub fn special_on(days: &[SpecialDay], date: NaiveDate) -> Option<SpecialKind> {
    days.iter().rev().find(|d| d.date == date).map(|d| d.kind)
}

#[cfg(test)]
mod tests;
