use datafusion::prelude::SessionContext;

use super::*;

const LIMIT: usize = 1 << 20;

fn capped_session() -> SessionContext {
    let ctx = SessionContext::new();
    install(&ctx, LIMIT);
    ctx
}

async fn first_value(ctx: &SessionContext, sql: &str) -> Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let batch = batches
        .first()
        .ok_or_else(|| datafusion::error::DataFusionError::Execution("no rows".into()))?;
    Ok(arrow::util::display::array_value_to_string(batch.column(0), 0)?)
}

fn refused(result: Result<String>, function: &str) {
    match result {
        Err(e) => match BoundError::find(&e) {
            Some(BoundError::ValueTooLarge { function: f, limit, .. }) => {
                assert!(f.starts_with(function), "{f}");
                // levenshtein counts steps, eight per byte of the limit.
                let want = if function == "levenshtein" { 8 * LIMIT } else { LIMIT };
                assert_eq!(*limit, want, "{function}");
            }
            other => panic!("{function}: expected ValueTooLarge, got {other:?}: {e}"),
        },
        Ok(v) => panic!("{function}: answered {v}"),
    }
}

/// Sizes far past the 1 MiB limit but small enough that the uncapped
/// functions would answer them: the test fails without the caps.
#[tokio::test]
async fn functions_that_build_huge_values_are_refused() {
    let ctx = capped_session();
    for (sql, function) in [
        ("SELECT length(repeat('x', 50000000))", "repeat"),
        ("SELECT length(lpad('x', 50000000))", "lpad"),
        ("SELECT length(rpad('x', 50000000, 'é'))", "rpad"),
        ("SELECT cardinality(array_repeat(1, 10000000))", "array_repeat"),
        (
            "SELECT cardinality(array_repeat(make_array(1, 2, 3, 4), 1000000))",
            "array_repeat",
        ),
        ("SELECT cardinality(array_resize([1], 10000000, 0))", "array_resize"),
        ("SELECT cardinality(range(1, 10000000))", "range"),
        ("SELECT cardinality(generate_series(1, 10000000))", "generate_series"),
        (
            "SELECT cardinality(range(TIMESTAMP '1970-01-01', TIMESTAMP '2000-01-01', INTERVAL '10 minutes'))",
            "range",
        ),
        (
            "SELECT length(replace(repeat('a', 3000), 'a', repeat('b', 3000)))",
            "replace",
        ),
        (
            "SELECT length(regexp_replace(repeat('a', 10000), '', repeat('b', 1000), 'g'))",
            "regexp_replace",
        ),
        (
            "SELECT length(array_to_string(array_repeat('', 3000), repeat('x', 3000)))",
            "array_to_string",
        ),
        (
            "SELECT levenshtein(repeat('a', 10000), repeat('b', 10000))",
            "levenshtein",
        ),
    ] {
        refused(first_value(&ctx, sql).await, function);
    }
}

#[tokio::test]
async fn small_values_and_other_functions_work_as_before() {
    let ctx = capped_session();
    for (sql, want) in [
        ("SELECT repeat('ab', 3)", "ababab"),
        ("SELECT lpad('x', 4, '-')", "---x"),
        ("SELECT rpad('x', 3)", "x  "),
        ("SELECT cardinality(array_repeat(0, 5))", "5"),
        ("SELECT cardinality(array_resize([1, 2], 4))", "4"),
        ("SELECT cardinality(range(1, 10))", "9"),
        ("SELECT cardinality(generate_series(1, 10))", "10"),
        (
            "SELECT cardinality(range(DATE '2026-01-01', DATE '2026-02-01', INTERVAL '1 day'))",
            "31",
        ),
        ("SELECT replace('a-b-c', '-', '+')", "a+b+c"),
        ("SELECT regexp_replace('a  b', '\\s+', ' ', 'g')", "a b"),
        ("SELECT array_to_string([1, 2, 3], ',')", "1,2,3"),
        ("SELECT levenshtein('kitten', 'sitting')", "3"),
        // A column argument: one check per batch, not per row.
        (
            "SELECT sum(length(repeat(x, 3))) FROM (VALUES ('a'), ('bb'), ('ccc')) v(x)",
            "18",
        ),
    ] {
        let got = first_value(&ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(got, want, "{sql}");
    }
}

/// `string_agg` appends the delimiter for each row of a batch before the
/// aggregate accounts for its memory; a delimiter that would add more than
/// the limit over one batch is refused when the plan is built.
#[tokio::test]
async fn string_agg_with_a_huge_delimiter_is_refused() {
    let ctx = capped_session();
    let plan = ctx
        .sql("SELECT string_agg(x, repeat('-', 100000)) FROM (VALUES ('a'), ('b')) v(x)")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .create_physical_plan()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = check_aggregates(&plan, LIMIT, 8192)
        .err()
        .unwrap_or_else(|| panic!("a 100 kB delimiter over 8192 rows passed"));
    assert!(
        matches!(BoundError::find(&err), Some(BoundError::ValueTooLarge { .. })),
        "{err}"
    );
    let plan = ctx
        .sql("SELECT string_agg(x, ', ') FROM (VALUES ('a'), ('b')) v(x)")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .create_physical_plan()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(check_aggregates(&plan, LIMIT, 8192).is_ok());
}

/// A session whose operators may take `bytes` of memory in all.
fn bounded_session(bytes: usize) -> SessionContext {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(bytes, 1.0)
        .build_arc()
        .unwrap_or_else(|e| panic!("{e}"));
    let ctx = SessionContext::new_with_config_rt(datafusion::prelude::SessionConfig::new(), runtime);
    install(&ctx, LIMIT);
    ctx
}

/// 6,000 rows: a growing frame builds 18 million elements (about 150 MB
/// unaccounted without the wrappers, and the query answers); within an
/// 32 MiB session it is refused as out of memory.
#[tokio::test]
async fn growing_window_aggregates_are_bounded_by_the_session_memory() {
    let ctx = bounded_session(32 << 20);
    for sql in [
        "SELECT sum(cardinality(a)) FROM (SELECT array_agg(v) OVER (ORDER BY v) AS a FROM (SELECT unnest(range(1, 6001)) AS v))",
        "SELECT sum(length(a)) FROM (SELECT string_agg(CAST(v AS VARCHAR), ',') OVER (ORDER BY v) AS a FROM (SELECT unnest(range(1, 6001)) AS v))",
    ] {
        let err = first_value(&ctx, sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("answered within 32 MiB: {sql}"));
        let text = err.to_string();
        assert!(text.contains("growing window frame"), "{sql}: {text}");
        assert!(
            matches!(
                err.find_root(),
                datafusion::error::DataFusionError::ResourcesExhausted(_)
            ),
            "{sql}: {err:?}"
        );
    }
    // A bounded frame holds four values a row, a plain aggregate one value.
    for (sql, want) in [
        (
            "SELECT sum(cardinality(a)) FROM (SELECT array_agg(v) OVER (ORDER BY v ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS a FROM (SELECT unnest(range(1, 6001)) AS v))",
            "23994",
        ),
        (
            "SELECT cardinality(array_agg(v)) FROM (SELECT unnest(range(1, 6001)) AS v)",
            "6000",
        ),
        (
            "SELECT count(*) FROM (SELECT array_agg(v) OVER (PARTITION BY v % 2000 ORDER BY v) AS a FROM (SELECT unnest(range(1, 6001)) AS v))",
            "6000",
        ),
    ] {
        let got = first_value(&ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(got, want, "{sql}");
    }
}
