//! `local_time(instant, zone)`: the wall-clock time of a UTC instant in an
//! IANA zone, as a timestamp without zone.
//!
//! `AT TIME ZONE` takes only a literal zone name, so a view that reads its
//! zone from a table (`tenant_settings.time_zone`) needs a function whose
//! zone is a value. Same result as `instant AT TIME ZONE 'zone'` followed
//! by dropping the zone: on the night clocks go back, two instants an hour
//! apart have the same local time.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Offset, TimeZone};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers [`local_time`](self) on `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(LocalTime::new()));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalTime {
    signature: Signature,
}

impl LocalTime {
    fn new() -> Self {
        let instant = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![instant.clone(), DataType::Utf8]),
                    TypeSignature::Exact(vec![instant, DataType::Utf8View]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

/// The zone of `name`, or an error that names it.
fn zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).or_else(|_| exec_err!("local_time: {name:?} is not a time zone"))
}

/// `micros` (UTC) as wall-clock microseconds in `tz`.
fn local_micros(micros: i64, tz: &Tz) -> Result<i64> {
    let Some(utc) = DateTime::from_timestamp_micros(micros) else {
        return exec_err!("local_time: instant {micros} µs is out of range");
    };
    let offset_s = tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc();
    Ok(micros + i64::from(offset_s) * 1_000_000)
}

impl ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        "local_time"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [instants, zones] = args.args.as_slice() else {
            return exec_err!("local_time takes an instant and a zone");
        };
        let instants = instants.to_array(rows)?;
        let instants = instants.as_primitive::<TimestampMicrosecondType>();
        // The zone is one value for the whole batch in every view that uses
        // it (a setting); parse it once then, and per distinct run otherwise.
        let zones = zones.to_array(rows)?;
        let zone_at = |i: usize| -> Option<String> {
            if zones.is_null(i) {
                return None;
            }
            Some(match zones.data_type() {
                DataType::Utf8View => zones.as_string_view().value(i).to_string(),
                _ => zones.as_string::<i32>().value(i).to_string(),
            })
        };
        let mut parsed: Option<(String, Tz)> = None;
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let (false, Some(name)) = (instants.is_null(i), zone_at(i)) else {
                out.push(None);
                continue;
            };
            if parsed.as_ref().is_none_or(|(n, _)| *n != name) {
                let tz = zone(&name)?;
                parsed = Some((name, tz));
            }
            let tz = &parsed.as_ref().expect("parsed above").1;
            out.push(Some(local_micros(instants.value(i), tz)?));
        }
        let array = TimestampMicrosecondArray::from(out);
        if rows == 1 && args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(sql: &str) -> Result<String> {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(
            arrow::util::pretty::pretty_format_columns("v", &[batches[0].column(0).clone()])?
                .to_string()
                .lines()
                .nth(3)
                .unwrap_or_default()
                .trim_matches(|c| c == '|' || c == ' ')
                .to_string(),
        )
    }

    #[tokio::test]
    async fn wall_clock_time_follows_the_zone_rules() {
        // Winter and summer time in Berlin, and the hour repeated when
        // clocks go back (2026-10-25 01:30 UTC and 00:30 UTC are both 02:30).
        let cases = [
            ("2026-01-15T12:00:00Z", "Europe/Berlin", "2026-01-15T13:00:00"),
            ("2026-07-15T12:00:00Z", "Europe/Berlin", "2026-07-15T14:00:00"),
            ("2026-10-25T00:30:00Z", "Europe/Berlin", "2026-10-25T02:30:00"),
            ("2026-10-25T01:30:00Z", "Europe/Berlin", "2026-10-25T02:30:00"),
            ("2026-01-15T12:00:00Z", "Asia/Kathmandu", "2026-01-15T17:45:00"),
            ("2026-01-15T12:00:00Z", "UTC", "2026-01-15T12:00:00"),
        ];
        for (instant, zone, local) in cases {
            let sql = format!("SELECT local_time(TIMESTAMP '{instant}' AT TIME ZONE 'UTC', '{zone}') AS v");
            assert_eq!(one(&sql).await.unwrap(), local, "{instant} in {zone}");
        }
    }

    #[tokio::test]
    async fn the_zone_may_come_from_a_table_and_a_bad_one_is_named() {
        let ctx = SessionContext::new();
        register(&ctx);
        ctx.sql("CREATE VIEW s AS SELECT 'America/New_York' AS zone")
            .await
            .unwrap();
        let sql = "SELECT local_time(TIMESTAMP '2026-01-15T12:00:00Z' AT TIME ZONE 'UTC', (SELECT zone FROM s)) AS v";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let v = batches[0].column(0).as_primitive::<TimestampMicrosecondType>().value(0);
        assert_eq!(
            DateTime::from_timestamp_micros(v).unwrap().to_rfc3339(),
            "2026-01-15T07:00:00+00:00"
        );

        let err = one("SELECT local_time(TIMESTAMP '2026-01-15T12:00:00Z' AT TIME ZONE 'UTC', 'Mars/Olympus') AS v")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"Mars/Olympus\" is not a time zone"), "{err}");
        assert_eq!(
            one("SELECT local_time(NULL, 'UTC') AS v").await.unwrap(),
            "",
            "NULL in, NULL out"
        );
    }
}
