//! The query parameters of the KPI endpoints, parsed and validated before
//! any SQL is built: windows (`from`, `to`), dimensions (`group_by=`, one
//! filter parameter per dimension), time buckets in the tenant's time zone.
//!
//! Pure functions of strings, a time zone and a limit; no lake, no clock.

use ingest::contract::{Channel, CustomerTier};

use arrow::array::timezone::Tz;
use chrono::{
    DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveDateTime, Offset, SecondsFormat, TimeZone, Utc,
};

/// A parameter the request got wrong, and what would be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    pub parameter: String,
    pub detail: String,
}

impl ParamError {
    pub fn new(parameter: &str, detail: impl Into<String>) -> Self {
        Self {
            parameter: parameter.to_string(),
            detail: detail.into(),
        }
    }
}

pub use model::{Bucket, Dimension};

/// Checks one filter value. Values never reach SQL as text (they are
/// passed as rows of a table), so this is about telling the client early
/// that a value cannot match, not about escaping.
pub fn validate_value(d: Dimension, v: &str) -> Result<(), String> {
    match d {
        Dimension::Channel if Channel::parse(v).is_none() => {
            Err(format!("{v:?} is not a channel; channels are {}", Channel::expected()))
        }
        Dimension::CustomerTier if CustomerTier::parse(v).is_none() => Err(format!(
            "{v:?} is not a customer tier; tiers are {}",
            CustomerTier::expected()
        )),
        Dimension::Variant if !v.contains('=') => Err(format!(
            "{v:?} is not experiment_key=variant_key, e.g. variant=greeting_test=b"
        )),
        _ if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) => {
            Err("values are 1 to 256 printable characters".into())
        }
        _ => Ok(()),
    }
}

/// `group_by=channel,day`: at most one time bucket and any dimensions, each once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupBy {
    pub dimensions: Vec<Dimension>,
    pub bucket: Option<Bucket>,
}

impl GroupBy {
    pub fn is_empty(&self) -> bool {
        self.dimensions.is_empty() && self.bucket.is_none()
    }
}

fn accepted_group_by() -> String {
    let dims: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
    let buckets: Vec<&str> = Bucket::TRENDS.iter().map(|b| b.name()).collect();
    format!(
        "a comma-separated list of dimensions ({}) and at most one time bucket ({})",
        dims.join(", "),
        buckets.join(", ")
    )
}

pub fn parse_group_by(s: &str) -> Result<GroupBy, ParamError> {
    let mut g = GroupBy::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(d) = Dimension::parse(part) {
            if g.dimensions.contains(&d) {
                return Err(ParamError::new("group_by", format!("{part} is named twice")));
            }
            g.dimensions.push(d);
        } else if let Some(b) = Bucket::parse_trend(part) {
            if g.bucket.is_some() {
                return Err(ParamError::new(
                    "group_by",
                    format!(
                        "{part}: only one time bucket at a time; group_by takes {}",
                        accepted_group_by()
                    ),
                ));
            }
            g.bucket = Some(b);
        } else {
            return Err(ParamError::new(
                "group_by",
                format!("{part:?} is not a dimension; group_by takes {}", accepted_group_by()),
            ));
        }
    }
    Ok(g)
}

/// `channel=whatsapp,line`: the accepted values of one dimension.
pub fn parse_filter(d: Dimension, s: &str) -> Result<Vec<String>, ParamError> {
    let mut values = Vec::new();
    for v in s.split(',').map(str::trim) {
        validate_value(d, v)
            .map_err(|reason| ParamError::new(d.name(), format!("{reason} (several values: {}=a,b)", d.name())))?;
        if !values.iter().any(|x| x == v) {
            values.push(v.to_string());
        }
    }
    Ok(values)
}

/// A window bound as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// `YYYY-MM-DD`: local midnight in the tenant's time zone.
    Date(NaiveDate),
    /// RFC 3339 with an offset.
    Instant(DateTime<Utc>),
}

pub fn parse_bound(parameter: &str, s: &str) -> Result<Bound, ParamError> {
    let date_shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if date_shaped && let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Bound::Date(d));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Bound::Instant(t.with_timezone(&Utc)));
    }
    Err(ParamError::new(
        parameter,
        format!(
            "{s:?} is neither a date YYYY-MM-DD (in the tenant's reporting time zone) nor an RFC 3339 instant \
             with an offset such as 2025-03-30T00:00:00Z or 2025-03-30T08:00:00+08:00"
        ),
    ))
}

/// `[from, to)` as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The asked window and the preceding one of equal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub current: Window,
    pub previous: Window,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The first instant of local midnight of `date` in `tz`: where midnight
/// falls into a daylight-saving gap (e.g. America/Santiago), the day
/// starts when the clocks jump; where it occurs twice, at the first.
pub fn local_midnight(date: NaiveDate, tz: &Tz) -> DateTime<Utc> {
    local_instant(date.and_hms_opt(0, 0, 0).unwrap_or_default(), tz)
}

/// The first instant at which local clocks in `tz` read `local`, or, in a
/// gap, the first instant after it.
fn local_instant(local: NaiveDateTime, tz: &Tz) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps are at most a few hours; step through them by minutes.
    for _ in 0..(24 * 60) {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    // Not reached for any real zone; fall back to reading `local` as UTC.
    Utc.from_utc_datetime(&local)
}

/// Resolves `from`/`to` in `tz` and checks them: `from` before `to`, at
/// most `max_days` apart. The previous period has the same length: the
/// same number of local calendar days when both bounds are dates (so the
/// day before a 23-hour DST day is a whole 24-hour day), else the same
/// duration.
pub fn resolve_windows(from: Bound, to: Bound, tz: &Tz, max_days: u32) -> Result<Windows, ParamError> {
    let instant = |b: Bound| match b {
        Bound::Date(d) => local_midnight(d, tz),
        Bound::Instant(t) => t,
    };
    let current = Window {
        from: instant(from),
        to: instant(to),
    };
    if current.from >= current.to {
        return Err(ParamError::new(
            "from",
            format!(
                "from ({}) must be before to ({}); to is exclusive, so one day is from=2025-03-30&to=2025-03-31",
                rfc3339(current.from),
                rfc3339(current.to)
            ),
        ));
    }
    let too_long = match (from, to) {
        (Bound::Date(f), Bound::Date(t)) => (t - f).num_days() > i64::from(max_days),
        _ => current.to - current.from > Duration::days(i64::from(max_days)),
    };
    if too_long {
        return Err(ParamError::new(
            "to",
            format!(
                "the window from {} to {} is longer than the maximum of {max_days} days; ask for a shorter range",
                rfc3339(current.from),
                rfc3339(current.to)
            ),
        ));
    }
    let previous_from = match (from, to) {
        (Bound::Date(f), Bound::Date(t)) => {
            let days = Days::new((t - f).num_days().unsigned_abs());
            match f.checked_sub_days(days) {
                Some(d) => local_midnight(d, tz),
                None => current.from - (current.to - current.from),
            }
        }
        _ => current.from - (current.to - current.from),
    };
    Ok(Windows {
        current,
        previous: Window {
            from: previous_from,
            to: current.from,
        },
    })
}

/// One time bucket: its label (local start, with the offset in force) and
/// the part of the window it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketWindow {
    /// Local start of the bucket, e.g. `2025-03-30T00:00:00+01:00`.
    pub label: String,
    pub window: Window,
}

fn local_date(t: DateTime<Utc>, tz: &Tz) -> NaiveDate {
    t.with_timezone(tz).date_naive()
}

/// The start of the bucket holding `t`.
fn bucket_start(t: DateTime<Utc>, bucket: Bucket, tz: &Tz) -> DateTime<Utc> {
    let date = local_date(t, tz);
    match bucket {
        Bucket::Minutes15 | Bucket::Minutes30 | Bucket::Hour => {
            // Hours and intervals are real lengths of time: align to the
            // local boundary with the offset in force at `t`, then step by
            // the length (a fall-back night has two 01:00 hours, one per
            // offset, a spring-forward night none for the skipped hour).
            let len_s = bucket.fixed_seconds().unwrap_or(3600);
            let offset_s = i64::from(t.with_timezone(tz).offset().fix().local_minus_utc());
            let local_s = t.timestamp() + offset_s;
            let start_local_s = local_s - local_s.rem_euclid(len_s);
            Utc.timestamp_opt(start_local_s - offset_s, 0).single().unwrap_or(t)
        }
        Bucket::Day => local_midnight(date, tz),
        Bucket::Week => local_midnight(date - Days::new(u64::from(date.weekday().num_days_from_monday())), tz),
        Bucket::Month => local_midnight(date.with_day(1).unwrap_or(date), tz),
    }
}

/// The start of the bucket after the one starting at `start`.
fn next_bucket_start(start: DateTime<Utc>, bucket: Bucket, tz: &Tz) -> DateTime<Utc> {
    let date = local_date(start, tz);
    let next_date = match bucket {
        Bucket::Minutes15 | Bucket::Minutes30 | Bucket::Hour => {
            return start + Duration::seconds(bucket.fixed_seconds().unwrap_or(3600));
        }
        Bucket::Day => date.checked_add_days(Days::new(1)),
        Bucket::Week => date.checked_add_days(Days::new(7)),
        Bucket::Month => date.with_day(1).and_then(|d| d.checked_add_months(Months::new(1))),
    };
    match next_date {
        Some(d) => local_midnight(d, tz),
        None => start + Duration::days(1),
    }
}

/// The buckets covering `window`, in order; the first and last are clipped
/// to the window when it does not start or end on a bucket boundary.
pub fn buckets(window: &Window, bucket: Bucket, tz: &Tz) -> Vec<BucketWindow> {
    let mut out = Vec::new();
    let mut start = bucket_start(window.from, bucket, tz);
    while start < window.to {
        let mut end = next_bucket_start(start, bucket, tz);
        if end <= start {
            // Defensive: never loop forever on an odd zone.
            end = start + Duration::hours(1);
        }
        out.push(BucketWindow {
            label: start
                .with_timezone(tz)
                .fixed_offset()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            window: Window {
                from: start.max(window.from),
                to: end.min(window.to),
            },
        });
        start = end;
    }
    out
}

/// How many buckets `buckets` would return, without building them.
pub fn bucket_count(window: &Window, bucket: Bucket) -> i64 {
    let span = window.to - window.from;
    match bucket {
        Bucket::Minutes15 | Bucket::Minutes30 | Bucket::Hour => {
            span.num_seconds() / bucket.fixed_seconds().unwrap_or(3600) + 2
        }
        Bucket::Day => span.num_days() + 2,
        Bucket::Week => span.num_weeks() + 2,
        Bucket::Month => span.num_days() / 28 + 2,
    }
}

/// Default of `CXLAKE_KPI_MAX_DAYS`, the longest window.
pub const DEFAULT_MAX_DAYS: u32 = 400;

/// The longest window a KPI or analysis request may ask for:
/// `CXLAKE_KPI_MAX_DAYS`, or [`DEFAULT_MAX_DAYS`].
pub fn max_days() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| match std::env::var("CXLAKE_KPI_MAX_DAYS") {
        Ok(v) => v.trim().parse().ok().filter(|d| *d > 0).unwrap_or_else(|| {
            tracing::warn!(value = %v, "CXLAKE_KPI_MAX_DAYS is not a positive whole number; using {DEFAULT_MAX_DAYS}");
            DEFAULT_MAX_DAYS
        }),
        Err(_) => DEFAULT_MAX_DAYS,
    })
}

/// `from` and `to` of a request's parameters, resolved in the tenant's
/// time zone.
pub fn windows(
    q: &std::collections::BTreeMap<String, String>,
    settings: &crate::settings::TenantSettings,
) -> Result<Windows, ParamError> {
    let bound = |name: &str| -> Result<Bound, ParamError> {
        let s = q.get(name).ok_or_else(|| {
            ParamError::new(
                name,
                "required; a date YYYY-MM-DD in the tenant's reporting time zone or an RFC 3339 instant",
            )
        })?;
        parse_bound(name, s)
    };
    let (from, to) = (bound("from")?, bound("to")?);
    resolve_windows(from, to, &settings.tz(), max_days())
}

/// A window as the JSON answers show it.
pub fn window_json(w: &Window) -> serde_json::Value {
    serde_json::json!({ "from": rfc3339(w.from), "to": rfc3339(w.to) })
}
