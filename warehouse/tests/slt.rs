//! Runs the sqllogictest files of `sql/tests/`: for each `X.slt`, the
//! contract-v1 events of `X.ndjson` are decoded and validated exactly as
//! ingest does (`decode_events` → `events_to_batch`), registered as the
//! `events` table, the views of `sql/views/` are registered on top
//! (`warehouse::views::register_views`), and the records of `X.slt` run.
//!
//! A minimal runner for the part of the sqllogictest format these files
//! use (no new dependency for it):
//!
//! ```text
//! # a comment
//! statement ok
//! <sql>
//!
//! statement error <text the error message must contain, optional>
//! <sql>
//!
//! query <one type letter per column> [rowsort]
//! <sql>
//! ----
//! <expected rows, values separated by spaces or tabs>
//! ```
//!
//! Type letters are checked against the result schema: `I` integer, `R`
//! float or decimal, `T` text, `B` boolean, `P` timestamp, `D` date, `?`
//! anything (lists, structs). Values are rendered as: NULL as `NULL`, the
//! empty string as `(empty)`, floats rounded to 6 decimal places and
//! printed in shortest form (`12.5`, `3`, `0.333333`), decimals exactly
//! but without trailing zeros (`64.5`, `30`), timestamps (RFC 3339) and
//! lists (`[a, b]`) as Arrow prints them. Rows are
//! compared as whitespace-separated tokens, so alignment does not matter;
//! `rowsort` sorts expected and actual rows before comparing.
//!
//! Every session also has the KPI overview (`sql/kpis/overview.sql`)
//! prepared as `kpi_overview(TIMESTAMP, TIMESTAMP)` (window start
//! inclusive, end exclusive, UTC), so a file can
//! `EXECUTE kpi_overview('…', '…')`; it is prepared again after each
//! `statement ok`, so it sees views a file replaced. A statement that
//! replaces a view of `sql/views/` (`CREATE OR REPLACE VIEW
//! tenant_settings ...`) also builds the views after it again, so they read
//! the replacement. The same holds for
//! the analyses of `sql/analyses/` (`warehouse::views::ANALYSES`), prepared
//! as `analysis_<name>(<its parameter types>)`, e.g.
//! `EXECUTE analysis_scripts('…', '…', 30)`.
//!
//! Every mismatch in a file is reported (file, line, SQL, expected and
//! actual rows), not just the first.
//!
//! `SLT_COMPLETE=1 cargo test --workspace --test slt` rewrites the expected
//! rows of every query whose result differs with what it returns now (the
//! `--complete` mode of sqllogictest runners): for a new query, or after a
//! deliberate change, then review the diff. Statements and declared column
//! types are still checked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};
use ingest::decode::{DecodeLimits, decode_events};
use ingest::schema::{events_schema, events_to_batch};
use warehouse::views::{ANALYSES, KPI_OVERVIEW_SQL, VIEWS, register_views};

/// Decimal places floats are rounded to before they are compared.
const FLOAT_DECIMALS: i32 = 6;

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql")
}

/// A session like `Warehouse::session`, over the events of one fixture.
async fn session_for(ndjson_path: &Path) -> Result<SessionContext, String> {
    let body = std::fs::read(ndjson_path).map_err(|e| format!("{}: {e}", ndjson_path.display()))?;
    let decoded =
        decode_events(&body, &DecodeLimits::default()).map_err(|e| format!("{}: {e}", ndjson_path.display()))?;
    if !decoded.rejected.is_empty() {
        let mut msg = format!("{}: fixture lines rejected by contract v1:\n", ndjson_path.display());
        for r in &decoded.rejected {
            let _ = writeln!(msg, "  line {}: {} {}", r.line, r.field, r.reason);
        }
        return Err(msg);
    }
    let batch = events_to_batch(decoded.events.iter().map(|(_, e)| e));
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("cxlake", "public");
    let ctx = SessionContext::new_with_config(config);
    let table = MemTable::try_new(events_schema(), vec![vec![batch]]).map_err(|e| e.to_string())?;
    ctx.register_table("events", Arc::new(table))
        .map_err(|e| e.to_string())?;
    register_views(&ctx).map_err(|e| format!("register_views: {e}"))?;
    prepare_statements(&ctx, false).await?;
    Ok(ctx)
}

/// (Re)prepares `kpi_overview` and every `analysis_<name>`. A prepared
/// plan has the views it reads inlined, so they are prepared again after
/// every statement, which may have replaced one of them (e.g.
/// `team_hourly_rates`).
async fn prepare_statements(ctx: &SessionContext, replace: bool) -> Result<(), String> {
    let mut statements = vec![(
        "kpi_overview".to_string(),
        "TIMESTAMP, TIMESTAMP",
        KPI_OVERVIEW_SQL,
        "sql/kpis/overview.sql".to_string(),
    )];
    for (name, sql, types) in ANALYSES {
        statements.push((
            format!("analysis_{name}"),
            types,
            sql,
            format!("sql/analyses/{name}.sql"),
        ));
    }
    for (name, types, sql, file) in statements {
        if replace {
            ctx.sql(&format!("DEALLOCATE {name}"))
                .await
                .map_err(|e| format!("DEALLOCATE {name}: {e}"))?;
        }
        let body = sql.trim().trim_end_matches(';');
        ctx.sql(&format!("PREPARE {name}({types}) AS {body}"))
            .await
            .map_err(|e| format!("preparing {file}: {e}"))?;
    }
    Ok(())
}

/// When `sql` replaced a view of `sql/views/` (say `tenant_settings`),
/// builds every view after it again, so that they read the replacement as
/// they would read a tenant's own settings in the service.
async fn rebuild_views_above(ctx: &SessionContext, sql: &str) -> Result<(), String> {
    let words: Vec<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_ascii_lowercase)
        .collect();
    let replaced = |name: &str| words.windows(2).any(|w| w[0] == "view" && w[1] == name);
    let Some(first) = VIEWS.iter().position(|(name, _)| replaced(name)) else {
        return Ok(());
    };
    for (name, view) in &VIEWS[first + 1..] {
        ctx.deregister_table(*name).map_err(|e| e.to_string())?;
        ctx.sql(view)
            .await
            .map_err(|e| format!("building view {name} again: {e}"))?;
    }
    Ok(())
}

#[derive(Debug)]
enum Record {
    StatementOk {
        line: usize,
        sql: String,
    },
    StatementError {
        line: usize,
        sql: String,
        expected: String,
    },
    Query {
        line: usize,
        types: String,
        rowsort: bool,
        sql: String,
        expected: Vec<String>,
    },
}

fn parse_slt(text: &str, file: &str) -> Result<Vec<Record>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    let mut i = 0;
    // Lines of SQL up to a blank line, EOF or (for queries) `----`.
    let take_sql = |i: &mut usize, stop_at_dashes: bool| {
        let mut sql = Vec::new();
        while *i < lines.len() {
            let l = lines[*i];
            if l.trim().is_empty() || (stop_at_dashes && l.trim() == "----") {
                break;
            }
            if !l.trim_start().starts_with('#') {
                sql.push(l);
            }
            *i += 1;
        }
        sql.join("\n")
    };
    while i < lines.len() {
        let line = lines[i].trim();
        let line_no = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["statement", "ok"] => {
                let sql = take_sql(&mut i, false);
                records.push(Record::StatementOk { line: line_no, sql });
            }
            ["statement", "error", rest @ ..] => {
                let sql = take_sql(&mut i, false);
                records.push(Record::StatementError {
                    line: line_no,
                    sql,
                    expected: rest.join(" "),
                });
            }
            ["query", types, rest @ ..] => {
                let rowsort = match rest {
                    [] | ["nosort"] => false,
                    ["rowsort"] => true,
                    other => return Err(format!("{file}:{line_no}: unknown query options {other:?}")),
                };
                let sql = take_sql(&mut i, true);
                if i >= lines.len() || lines[i].trim() != "----" {
                    return Err(format!("{file}:{line_no}: query without a `----` line"));
                }
                i += 1;
                let mut expected = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() {
                    expected.push(normalize(lines[i]));
                    i += 1;
                }
                records.push(Record::Query {
                    line: line_no,
                    types: types.to_string(),
                    rowsort,
                    sql,
                    expected,
                });
            }
            _ => return Err(format!("{file}:{line_no}: cannot parse record header {line:?}")),
        }
    }
    Ok(records)
}

fn normalize(row: &str) -> String {
    row.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn type_matches(letter: char, dt: &DataType) -> bool {
    match letter {
        'I' => dt.is_integer(),
        'R' => dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..)),
        'T' => matches!(
            dt,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
        ),
        'B' => matches!(dt, DataType::Boolean | DataType::Null),
        'P' => matches!(dt, DataType::Timestamp(..)),
        'D' => matches!(dt, DataType::Date32 | DataType::Date64),
        '?' => true,
        _ => false,
    }
}

fn render_cell(array: &ArrayRef, formatter: &ArrayFormatter<'_>, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".to_string();
    }
    let v = match array.data_type() {
        DataType::Float64 => Some(
            array
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .map(|a| a.value(row)),
        ),
        DataType::Float32 => Some(
            array
                .as_any()
                .downcast_ref::<arrow::array::Float32Array>()
                .map(|a| f64::from(a.value(row))),
        ),
        _ => None,
    };
    match v {
        Some(Some(f)) => {
            let scale = 10f64.powi(FLOAT_DECIMALS);
            let rounded = (f * scale).round() / scale;
            // -0 and 0 are the same number to a reader.
            if rounded == 0.0 {
                "0".to_string()
            } else {
                format!("{rounded}")
            }
        }
        _ => {
            let s = formatter.value(row).to_string();
            if s.is_empty() {
                "(empty)".to_string()
            } else if matches!(array.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..)) {
                // Exact, but without the scale's trailing zeros, so fixtures do
                // not depend on how many fractional digits `amount` keeps.
                trim_decimal(&s)
            } else {
                s
            }
        }
    }
}

fn trim_decimal(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn render(batches: &[RecordBatch]) -> Result<Vec<String>, String> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| render_cell(c, f, row))
                .collect();
            rows.push(normalize(&cells.join(" ")));
        }
    }
    Ok(rows)
}

fn diff(expected: &[String], got: &[String]) -> String {
    let mut out = String::new();
    let n = expected.len().max(got.len());
    for k in 0..n {
        match (expected.get(k), got.get(k)) {
            (Some(e), Some(g)) if e == g => {
                let _ = writeln!(out, "    {e}");
            }
            (e, g) => {
                if let Some(e) = e {
                    let _ = writeln!(out, "  - {e}");
                }
                if let Some(g) = g {
                    let _ = writeln!(out, "  + {g}");
                }
            }
        }
    }
    out
}

/// Why a record failed: a query whose rows differ carries what it
/// returned, so the file can be completed with it.
enum Failure {
    Other(String),
    Rows { message: String, got: Vec<String> },
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Other(message)
    }
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Other(m) | Failure::Rows { message: m, .. } => m,
        }
    }
}

async fn run_record(ctx: &SessionContext, record: &Record, file: &str) -> Result<(), Failure> {
    match record {
        Record::StatementOk { line, sql } => {
            let outcome = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            outcome.map_err(|e| format!("{file}:{line}: statement failed: {e}\n{sql}"))?;
            rebuild_views_above(ctx, sql)
                .await
                .map_err(|e| Failure::Other(format!("{file}:{line}: {e}")))?;
            prepare_statements(ctx, true)
                .await
                .map_err(|e| Failure::Other(format!("{file}:{line}: {e}")))
        }
        Record::StatementError { line, sql, expected } => {
            let outcome = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => Err(format!("{file}:{line}: statement succeeded, expected an error\n{sql}").into()),
                Err(e) if e.to_string().contains(expected.as_str()) => Ok(()),
                Err(e) => Err(format!("{file}:{line}: error {e:?} does not contain {expected:?}\n{sql}").into()),
            }
        }
        Record::Query {
            line,
            types,
            rowsort,
            sql,
            expected,
        } => {
            let df = ctx
                .sql(sql)
                .await
                .map_err(|e| format!("{file}:{line}: query failed: {e}\n{sql}"))?;
            let schema = df.schema().as_arrow().clone();
            let batches = df
                .collect()
                .await
                .map_err(|e| format!("{file}:{line}: query failed: {e}\n{sql}"))?;
            let letters: Vec<char> = types.chars().collect();
            if letters.len() != schema.fields().len() {
                return Err(format!(
                    "{file}:{line}: query declares {} columns ({types}) but returns {}: {:?}\n{sql}",
                    letters.len(),
                    schema.fields().len(),
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                )
                .into());
            }
            for (letter, field) in letters.iter().zip(schema.fields()) {
                if !type_matches(*letter, field.data_type()) {
                    return Err(format!(
                        "{file}:{line}: column {} is {}, declared {letter}\n{sql}",
                        field.name(),
                        field.data_type()
                    )
                    .into());
                }
            }
            let mut got = render(&batches)?;
            let mut expected = expected.clone();
            if *rowsort {
                got.sort();
                expected.sort();
            }
            if got == expected {
                Ok(())
            } else {
                Err(Failure::Rows {
                    message: format!(
                        "{file}:{line}: query result mismatch (- expected, + got)\n{sql}\n{}",
                        diff(&expected, &got)
                    ),
                    got,
                })
            }
        }
    }
}

/// Runs one `sql/tests/<name>.slt` over `sql/tests/<name>.ndjson`; panics
/// with every failure of the file.
async fn run_slt(name: &str) {
    let dir = sql_dir().join("tests");
    let slt_path = dir.join(format!("{name}.slt"));
    let file = format!("sql/tests/{name}.slt");
    let text = std::fs::read_to_string(&slt_path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let records = parse_slt(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    assert!(!records.is_empty(), "{file} has no records");
    let ctx = session_for(&dir.join(format!("{name}.ndjson")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut completed = Vec::new();
    for record in &records {
        match run_record(&ctx, record, &file).await {
            Ok(()) => {}
            Err(Failure::Rows { got, .. }) if complete => {
                if let Record::Query { line, .. } = record {
                    completed.push((*line, got));
                }
            }
            Err(e) => failures.push(e.message().to_string()),
        }
    }
    if !completed.is_empty() {
        std::fs::write(&slt_path, with_expected_rows(&text, &completed)).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: rewrote the expected rows of {} queries", completed.len());
    }
    assert!(
        failures.is_empty(),
        "{} of {} records failed in {file}:\n\n{}",
        failures.len(),
        records.len(),
        failures.join("\n")
    );
}

/// `text` with the expected rows of the queries whose header is on each
/// given (1-based) line replaced by `rows`.
fn with_expected_rows(text: &str, completed: &[(usize, Vec<String>)]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let rows = completed.iter().find(|(line, _)| *line == i + 1).map(|(_, rows)| rows);
        out.push(lines[i].to_string());
        i += 1;
        let Some(rows) = rows else { continue };
        while i < lines.len() && lines[i].trim() != "----" {
            out.push(lines[i].to_string());
            i += 1;
        }
        if i < lines.len() {
            out.push(lines[i].to_string());
            i += 1;
        }
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        out.extend(rows.iter().cloned());
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

#[test]
fn completing_replaces_only_the_expected_rows_of_the_queries_named() {
    let text = "statement ok\nCREATE VIEW v AS SELECT 1\n\nquery I\nSELECT 1\n----\n2\n3\n\nquery T rowsort\nSELECT 'a'\n----\na\n";
    let done = with_expected_rows(text, &[(4, vec!["1".to_string()])]);
    assert_eq!(
        done,
        "statement ok\nCREATE VIEW v AS SELECT 1\n\nquery I\nSELECT 1\n----\n1\n\nquery T rowsort\nSELECT 'a'\n----\na\n"
    );
    let records = parse_slt(&done, "t.slt").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(records.len(), 3);
}

macro_rules! slt_files {
    ($($name:ident),+ $(,)?) => {
        const SLT_FILES: &[&str] = &[$(stringify!($name)),+];
        $(
            #[tokio::test]
            async fn $name() {
                run_slt(stringify!($name)).await;
            }
        )+
    };
}

slt_files!(
    conversations,
    messages,
    orders,
    agent_sessions,
    exposures,
    script_uses,
    overview,
    analyses_scripts,
    analyses_bottlenecks,
    analyses_traffic,
    analyses_channels,
);

/// A new `.slt` file must get a test above, or it would silently never run.
#[test]
fn every_slt_file_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(sql_dir().join("tests"))
        .expect("sql/tests exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".slt"))
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SLT_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "sql/tests/*.slt and the slt_files! list in warehouse/tests/slt.rs differ"
    );
}
