//! Number formatting for tiles, tables and chart ticks. Language-neutral
//! on purpose (digits, `%`, `s`/`m`/`h`, ISO currency codes read the same
//! in English and Chinese dashboards).

use crate::kpi::{Change, Unit};

/// `12,345` style grouping of an integer.
pub(crate) fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A duration: `4.2 s`, `2m 05s`, `1h 02m`.
pub(crate) fn duration(s: f64) -> String {
    let sign = if s < 0.0 { "-" } else { "" };
    let a = s.abs();
    if a < 60.0 {
        format!("{sign}{a:.1} s")
    } else if a < 3600.0 {
        let total = a.round() as i64;
        format!("{sign}{}m {:02}s", total / 60, total % 60)
    } else {
        let total = (a / 60.0).round() as i64;
        format!("{sign}{}h {:02}m", total / 60, total % 60)
    }
}

/// A value in its unit, for tiles and tables.
pub(crate) fn value(unit: &Unit, v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    match unit {
        Unit::Count => group_thousands(v.round() as i64),
        Unit::Seconds => duration(v),
        Unit::Fraction => format!("{:.1}%", v * 100.0),
        Unit::Score => format!("{v:.2}"),
        Unit::Money(cur) => format!("{cur} {}", money(v)),
        Unit::Decimal => format!("{v:.1}"),
    }
}

/// `Option` values: `–` when absent.
pub(crate) fn opt_value(unit: &Unit, v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| value(unit, v))
}

fn money(v: f64) -> String {
    // Sub-unit amounts (cost per conversation) keep a third decimal.
    if v.abs() < 1.0 {
        return format!("{v:.3}");
    }
    let cents = (v * 100.0).round() as i64;
    format!("{}.{:02}", group_thousands(cents / 100), (cents % 100).abs())
}

/// A short axis tick: `90s`, `2m`, `1.5h`, `50%`, `1.2k`.
pub(crate) fn tick(unit: &Unit, v: f64) -> String {
    match unit {
        Unit::Seconds => {
            let a = v.abs();
            if a < 120.0 {
                format!("{}s", trim(v))
            } else if a < 7200.0 && a % 3600.0 != 0.0 {
                format!("{}m", trim(v / 60.0))
            } else {
                format!("{}h", trim(v / 3600.0))
            }
        }
        Unit::Fraction => format!("{}%", trim(v * 100.0)),
        Unit::Score => format!("{v:.1}"),
        _ => compact(v),
    }
}

/// `1.2k`, `3.4M`, or the number itself.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// Up to two decimals, trailing zeros dropped.
pub(crate) fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_string() } else { s.to_string() }
}

/// Three significant digits (`0.0123`, `4.52`, `1230`), for experiment
/// means and lifts whose scale depends on the metric.
pub(crate) fn sig(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `+12.3%`, `-1.5 pp`, `+0.12`.
pub(crate) fn change(unit: &Unit, c: Change) -> String {
    match (c, unit) {
        (Change::Relative(x), _) => format!("{:+.1}%", x * 100.0),
        (Change::Absolute(x), Unit::Fraction) => format!("{:+.1} pp", x * 100.0),
        (Change::Absolute(x), Unit::Seconds) => {
            let d = duration(x.abs());
            if x < 0.0 { format!("-{d}") } else { format!("+{d}") }
        }
        (Change::Absolute(x), _) => format!("{x:+.2}"),
    }
}

/// A value in its unit with an explicit `+` when positive (lifts).
pub(crate) fn signed(unit: &Unit, v: f64) -> String {
    let s = value(unit, v);
    if v > 0.0 { format!("+{s}") } else { s }
}

/// A signed percentage with one decimal (`+3.2%`) for lifts.
pub(crate) fn signed_percent(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

/// A p-value: `0.032`, `<0.001`.
pub(crate) fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "–".to_string()
    } else if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_their_units() {
        assert_eq!(value(&Unit::Count, 1234567.0), "1,234,567");
        assert_eq!(value(&Unit::Count, 12.0), "12");
        assert_eq!(value(&Unit::Seconds, 4.25), "4.2 s");
        assert_eq!(value(&Unit::Seconds, 125.0), "2m 05s");
        assert_eq!(value(&Unit::Seconds, 3725.0), "1h 02m");
        assert_eq!(value(&Unit::Fraction, 0.8766), "87.7%");
        assert_eq!(value(&Unit::Score, 4.5), "4.50");
        assert_eq!(value(&Unit::Money("EUR".into()), 1234.5), "EUR 1,234.50");
        assert_eq!(value(&Unit::Money("EUR".into()), 0.02567), "EUR 0.026");
        assert_eq!(value(&Unit::Count, f64::NAN), "–");
        assert_eq!(opt_value(&Unit::Count, None), "–");
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(&Unit::Seconds, 90.0), "90s");
        assert_eq!(tick(&Unit::Seconds, 150.0), "2.5m");
        assert_eq!(tick(&Unit::Seconds, 3600.0), "1h");
        assert_eq!(tick(&Unit::Seconds, 5400.0), "90m");
        assert_eq!(tick(&Unit::Fraction, 0.5), "50%");
        assert_eq!(tick(&Unit::Count, 12000.0), "12k");
        assert_eq!(tick(&Unit::Count, 2.5), "2.5");
    }

    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(change(&Unit::Count, Change::Relative(0.123)), "+12.3%");
        assert_eq!(change(&Unit::Fraction, Change::Absolute(-0.015)), "-1.5 pp");
        assert_eq!(change(&Unit::Score, Change::Absolute(0.12)), "+0.12");
        assert_eq!(p_value(0.0001), "<0.001");
        assert_eq!(sig(0.012345), "0.0123");
        assert_eq!(sig(4.5234), "4.52");
        assert_eq!(sig(-0.05), "-0.05");
        assert_eq!(sig(1234.0), "1234");
    }
}
