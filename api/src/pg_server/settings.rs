//! The parameters a connection sets for itself: `TimeZone` and
//! `statement_timeout`, by `SET` or in the startup packet (libpq's
//! `options='-c statement_timeout=2s'`, or a parameter of its own).
//!
//! Both are checked when they are set, so a bad value fails that `SET` (or
//! that login) and nothing after it. Both belong to the connection alone:
//! the time zone to its own copy of the session configuration, the timeout
//! to its metadata, read before each statement.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::timezone::Tz;
use datafusion::common::ParamValues;
use datafusion::execution::registry::FunctionRegistry as _;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, UnaryOperator, Value};
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::results::{Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::ParameterStatus;

use super::user_error;

/// Where datafusion-postgres keeps the statement timeout (milliseconds) in
/// the connection's metadata; its `SHOW statement_timeout` reads it there.
const TIMEOUT_KEY: &str = "statement_timeout_ms";
/// Where it keeps the time zone; its `SHOW TIME ZONE` reads it there.
const TIME_ZONE_KEY: &str = "timezone";

/// One parameter, checked, to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Setting {
    /// `None`: the server's default (UTC).
    TimeZone(Option<String>),
    /// `None`: no timeout (only the role's bound).
    StatementTimeout(Option<Duration>),
}

/// The statement timeout of this connection, if one is set.
pub(super) fn statement_timeout(metadata: &HashMap<String, String>) -> Option<Duration> {
    metadata
        .get(TIMEOUT_KEY)
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// The time zone the client sees in `ParameterStatus` and `SHOW`.
pub(super) fn time_zone_shown(metadata: &HashMap<String, String>) -> String {
    metadata.get(TIME_ZONE_KEY).cloned().unwrap_or_else(|| "UTC".into())
}

/// Drops the copies of these parameters that pgwire made of the startup
/// packet into the metadata, unchecked; [`apply`] puts back what was checked.
pub(super) fn forget_unchecked(metadata: &mut HashMap<String, String>) {
    metadata.remove(TIME_ZONE_KEY);
    metadata.remove(TIMEOUT_KEY);
}

/// Applies `setting` to this connection's session and metadata.
pub(super) fn apply(setting: &Setting, ctx: &SessionContext, metadata: &mut HashMap<String, String>) {
    match setting {
        Setting::TimeZone(tz) => {
            let state = ctx.state_ref();
            let mut state = state.write();
            state.config_mut().options_mut().execution.time_zone = tz.clone();
            // Functions that read the configuration when they are built
            // (`now()`) are built again, as DataFusion's own SET does.
            let options = state.config().options().clone();
            let rebuilt: Vec<_> = state
                .scalar_functions()
                .values()
                .filter_map(|f| f.inner().with_updated_config(&options).map(Arc::new))
                .collect();
            for f in rebuilt {
                // Replacing a registered function cannot fail.
                let _ = state.register_udf(f);
            }
            metadata.insert(TIME_ZONE_KEY.into(), tz.clone().unwrap_or_else(|| "UTC".into()));
        }
        Setting::StatementTimeout(Some(d)) => {
            metadata.insert(TIMEOUT_KEY.into(), d.as_millis().to_string());
        }
        Setting::StatementTimeout(None) => {
            metadata.remove(TIMEOUT_KEY);
        }
    }
}

/// A `statement_timeout` value as Postgres reads it: a number with an
/// optional unit (`us`, `ms`, `s`, `min`, `h`, `d`; milliseconds without
/// one); 0 turns it off.
fn parse_timeout(text: &str) -> Option<Option<Duration>> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let ms_per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1e3,
        "min" => 60e3,
        "h" => 3_600e3,
        "d" => 86_400e3,
        _ => return None,
    };
    let ms = (n * ms_per_unit).round();
    // Postgres keeps it in an int of milliseconds.
    if !ms.is_finite() || ms > f64::from(i32::MAX) {
        return None;
    }
    Some((ms >= 1.0).then(|| Duration::from_millis(ms as u64)))
}

/// A time zone as the engine will read it (an IANA name such as
/// `Europe/Berlin`, or a fixed offset such as `+02:00`), checked now so
/// that no later query meets a zone it cannot read.
fn parse_time_zone(text: &str) -> Option<Option<String>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("default") || t.eq_ignore_ascii_case("local") {
        return Some(None);
    }
    let t = if ["utc", "gmt", "uct", "z", "zulu"]
        .iter()
        .any(|u| t.eq_ignore_ascii_case(u))
    {
        "UTC"
    } else {
        t
    };
    Tz::from_str(t).ok().map(|_| Some(t.to_string()))
}

fn invalid(name: &str, value: &str, hint: &str) -> PgWireError {
    user_error(
        "22023",
        format!("invalid value for parameter \"{name}\": \"{value}\"; {hint}"),
    )
}

/// Checks `value` for the parameter `name` (case-insensitive); `None` when
/// the parameter is not one of these two.
pub(super) fn setting(name: &str, value: &str) -> Option<PgWireResult<Setting>> {
    match name.to_ascii_lowercase().as_str() {
        "timezone" => Some(parse_time_zone(value).map(Setting::TimeZone).ok_or_else(|| {
            invalid(
                "TimeZone",
                value,
                "use a zone name such as 'Europe/Berlin' or an offset such as '+02:00'",
            )
        })),
        "statement_timeout" => Some(parse_timeout(value).map(Setting::StatementTimeout).ok_or_else(|| {
            invalid(
                "statement_timeout",
                value,
                "use milliseconds or a number with a unit such as '2s' or '5min' (0 turns it off)",
            )
        })),
        _ => None,
    }
}

/// The settings of the startup packet: parameters of their own name, and
/// `-c name=value` / `--name=value` in `options` (which win, as in
/// Postgres). A bad value in `options` refuses the connection, as in
/// Postgres; one in a parameter of its own is skipped, because drivers send
/// those unasked (JDBC sends the JVM's zone, possibly in a form the engine
/// cannot read), and a tool that cannot connect is worse off than one in UTC.
pub(super) fn startup_settings(params: &HashMap<String, String>) -> PgWireResult<Vec<Setting>> {
    let mut settings = Vec::new();
    for (name, value) in params.iter().filter(|(k, _)| k.as_str() != "options") {
        match setting(name, value) {
            Some(Ok(s)) => settings.push(s),
            Some(Err(e)) => tracing::info!(%name, %value, error = %e, "startup parameter skipped"),
            None => {}
        }
    }
    for (name, value) in params.get("options").map(|o| option_pairs(o)).unwrap_or_default() {
        if let Some(s) = setting(&name, &value) {
            settings.push(s?);
        }
    }
    Ok(settings)
}

/// `name=value` pairs of a libpq `options` string: words split on
/// whitespace (a backslash escapes the next character), each `-c X` or
/// `-cX` or `--X` with X = `name=value`.
fn option_pairs(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut pairs = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let assignment = if w == "-c" {
            words.next()
        } else if let Some(rest) = w.strip_prefix("--") {
            Some(rest.replace('-', "_"))
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((name, value)) = assignment.as_deref().and_then(|a| a.split_once('=')) {
            pairs.push((name.to_string(), value.to_string()));
        }
    }
    pairs
}

/// The text of a `SET` value: a literal, a bare word, or a negative number.
fn value_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) | Value::EscapedStringLiteral(s) => {
                Some(s.clone())
            }
            Value::Number(n, _) => Some(n.to_string()),
            _ => None,
        },
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => value_text(expr).map(|s| format!("-{s}")),
        _ => None,
    }
}

/// The setting a `SET` statement asks for, if it is one of these two.
fn requested(statement: &Statement) -> Option<PgWireResult<Setting>> {
    let Statement::Set(set) = statement else {
        return None;
    };
    let (name, value) = match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            values,
        } => {
            let name = variable.to_string();
            if !matches!(name.to_ascii_lowercase().as_str(), "timezone" | "statement_timeout") {
                return None;
            }
            match values.as_slice() {
                [one] => (name, one),
                _ => return Some(Err(user_error("22023", format!("SET {name} takes one value")))),
            }
        }
        Set::SetTimeZone { local: false, value } => ("timezone".to_string(), value),
        _ => return None,
    };
    match value_text(value) {
        Some(text) => setting(&name, &text),
        None => Some(Err(invalid(
            &name,
            &value.to_string(),
            "give the value as a quoted string",
        ))),
    }
}

/// Handles `SET` of the time zone and the statement timeout for this
/// connection; the stock hook would change the session every connection
/// of the tenant shares, and take any zone.
#[derive(Debug)]
pub(super) struct SessionSettings;

impl SessionSettings {
    async fn handle(
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let setting = match requested(statement)? {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        apply(&setting, ctx, client.metadata_mut());
        if let Setting::TimeZone(_) = setting {
            let shown = time_zone_shown(client.metadata());
            let status = PgWireBackendMessage::ParameterStatus(ParameterStatus::new("TimeZone".into(), shown));
            if let Err(e) = client.send_message(status).await {
                return Some(Err(e));
            }
        }
        Some(Ok(Response::Execution(Tag::new("SET"))))
    }
}

#[async_trait]
impl QueryHook for SessionSettings {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::handle(statement, ctx, client).await
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        // The stock hook after this one plans a SET as an empty relation.
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::handle(statement, ctx, client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_postgres() {
        let ms = |n| Some(Some(Duration::from_millis(n)));
        assert_eq!(parse_timeout("2s"), ms(2000));
        assert_eq!(parse_timeout("2 s"), ms(2000));
        assert_eq!(parse_timeout("1500"), ms(1500));
        assert_eq!(parse_timeout("250ms"), ms(250));
        assert_eq!(parse_timeout("1.5min"), ms(90_000));
        assert_eq!(parse_timeout("1h"), ms(3_600_000));
        assert_eq!(parse_timeout("0"), Some(None));
        for bad in ["", "abc", "-1", "2 parsecs", "1e3", "30d"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn time_zones_are_checked_when_set() {
        assert_eq!(parse_time_zone("Asia/Tokyo"), Some(Some("Asia/Tokyo".into())));
        assert_eq!(parse_time_zone("+05:30"), Some(Some("+05:30".into())));
        assert_eq!(parse_time_zone("utc"), Some(Some("UTC".into())));
        assert_eq!(parse_time_zone("DEFAULT"), Some(None));
        assert_eq!(parse_time_zone("Mars/Olympus_Mons"), None);
        assert_eq!(parse_time_zone(""), None);
    }

    #[test]
    fn startup_options_carry_settings() {
        let params: HashMap<String, String> = [
            ("user", "acme"),
            ("TimeZone", "Europe/Berlin"),
            ("options", "-c statement_timeout=2s --search-path=x -cfoo=bar"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut got = startup_settings(&params).unwrap_or_else(|e| panic!("{e}"));
        got.sort_by_key(|s| matches!(s, Setting::StatementTimeout(_)));
        assert_eq!(
            got,
            vec![
                Setting::TimeZone(Some("Europe/Berlin".into())),
                Setting::StatementTimeout(Some(Duration::from_secs(2))),
            ]
        );
        let bad: HashMap<String, String> = [("options".to_string(), "-c TimeZone=Nowhere".to_string())].into();
        assert!(startup_settings(&bad).is_err());
        let unasked: HashMap<String, String> = [("TimeZone".to_string(), "GMT+05:30".to_string())].into();
        assert_eq!(startup_settings(&unasked).ok(), Some(vec![]));
        assert_eq!(
            option_pairs(r"-c a=b\ c --d-e=f"),
            vec![("a".into(), "b c".into()), ("d_e".into(), "f".into())]
        );
    }
}
