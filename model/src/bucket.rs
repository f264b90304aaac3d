/// A length of time numbers are grouped by, in the tenant's time zone: the
/// time bucket of KPI trends (`group_by=day`) or the interval of a
/// staffing forecast (`interval=15min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Bucket {
    Minutes15,
    Minutes30,
    Hour,
    #[default]
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Bucket {
    pub const ALL: [Bucket; 6] = [
        Bucket::Minutes15,
        Bucket::Minutes30,
        Bucket::Hour,
        Bucket::Day,
        Bucket::Week,
        Bucket::Month,
    ];

    /// The buckets of KPI trends (`GET /v1/kpis`'s time `group_by`).
    pub const TRENDS: [Bucket; 4] = [Bucket::Hour, Bucket::Day, Bucket::Week, Bucket::Month];

    /// The intervals of a staffing forecast.
    pub const INTERVALS: [Bucket; 2] = [Bucket::Minutes15, Bucket::Minutes30];

    /// The URL value.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Minutes15 => "15min",
            Bucket::Minutes30 => "30min",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.name() == s)
    }

    /// A trend bucket named `s`.
    pub fn parse_trend(s: &str) -> Option<Bucket> {
        Bucket::TRENDS.into_iter().find(|b| b.name() == s)
    }

    /// Seconds of a bucket of fixed length (intervals and hours); `None`
    /// for calendar buckets, whose length depends on the zone and date.
    pub fn fixed_seconds(self) -> Option<i64> {
        match self {
            Bucket::Minutes15 => Some(900),
            Bucket::Minutes30 => Some(1800),
            Bucket::Hour => Some(3600),
            Bucket::Day | Bucket::Week | Bucket::Month => None,
        }
    }

    /// Minutes of a staffing interval; `None` for a trend bucket.
    pub fn interval_minutes(self) -> Option<u32> {
        match self {
            Bucket::Minutes15 => Some(15),
            Bucket::Minutes30 => Some(30),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_and_intervals_partition_the_buckets() {
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.name()), Some(b));
            assert_ne!(Bucket::TRENDS.contains(&b), Bucket::INTERVALS.contains(&b));
            assert_eq!(b.interval_minutes().is_some(), Bucket::INTERVALS.contains(&b));
        }
        assert_eq!(Bucket::parse_trend("15min"), None);
        assert_eq!(Bucket::parse_trend("week"), Some(Bucket::Week));
    }
}
