use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use futures::StreamExt;

use super::*;

fn engine(runtime: Option<Handle>, memory_total_bytes: usize) -> Arc<SqlEngine> {
    let config = EngineConfig {
        memory_total_bytes,
        spill_max_bytes: 64 << 20,
    };
    Arc::new(SqlEngine::new(&config, runtime).unwrap_or_else(|e| panic!("{e}")))
}

fn bounds(engine: Arc<SqlEngine>, timeout: Duration, memory_bytes: usize) -> Bounds {
    Bounds {
        timeout,
        max_rows: 1_000_000,
        memory_bytes,
        gate: Arc::new(ConcurrencyGate::new(2)),
        max_json_bytes: 1 << 20,
        engine,
    }
}

/// A session with the bound rule and a table `t` of `rows` numbers.
fn session(bounds: &Bounds, rows: i64) -> SessionContext {
    let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(bounds.engine.session_pool(bounds.memory_bytes));
    runtime.disk_manager = Some(bounds.engine.disk_manager());
    let state = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(2))
        .with_runtime_env(runtime.build_arc().unwrap_or_else(|e| panic!("{e}")))
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(BoundRule::new(bounds.clone())))
        .build();
    let ctx = SessionContext::new_with_state(state);
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(0..rows))])
        .unwrap_or_else(|e| panic!("{e}"));
    let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap_or_else(|e| panic!("{e}"));
    ctx.register_table("t", Arc::new(table))
        .unwrap_or_else(|e| panic!("{e}"));
    ctx
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await?;
    let mut stream = df.execute_stream().await?;
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        out.push(b?);
    }
    Ok(out)
}

/// 4e10 rows over a table of `ROWS`. The join collects one side, then
/// emits a batch after batch for each batch of the other side without
/// polling anything. A sum, not a count: a count of a cross join of tables
/// with exact statistics is answered from the statistics alone.
const CROSS_JOIN: &str = "SELECT sum(a.n + b.n) FROM t a CROSS JOIN t b";
const ROWS: i64 = 200_000;

/// A cross join emits a batch per row of its build side
/// without ever returning `Pending`, so its task never yields; after the
/// timeout the query went on, both cores busy, for as long as it liked.
#[test]
fn a_timed_out_cross_join_leaves_no_task_running() {
    let sql_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = engine(Some(sql_rt.handle().clone()), 1 << 30);
    let bounds = bounds(engine.clone(), Duration::from_millis(500), 256 << 20);
    let ctx = session(&bounds, ROWS);
    let answer = caller.block_on(async {
        let ctx = ctx.clone();
        let query = engine.run(async move { run(&ctx, CROSS_JOIN).await });
        // A liveness guard: with both workers stuck in tasks that never
        // yield, not even the timeout could answer.
        tokio::time::timeout(Duration::from_secs(60), query).await
    });
    let err = match answer {
        Err(_) => panic!("no answer a minute after the 500 ms timeout"),
        Ok(done) => done
            .and_then(|r| r)
            .err()
            .unwrap_or_else(|| panic!("a cross join of 4e10 rows finished in time")),
    };
    assert_eq!(
        BoundError::find(&err),
        Some(&BoundError::Timeout(Duration::from_millis(500))),
        "{err}"
    );
    // Every task of the query ends soon after (a minute is the liveness
    // guard; a task that never yields would stay alive forever).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sql_rt.metrics().num_alive_tasks() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} query tasks still alive a minute after the timeout",
            sql_rt.metrics().num_alive_tasks()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(bounds.gate.active(), 0, "the concurrency slot is free again");
    sql_rt.shutdown_background();
}

#[test]
fn shutting_down_the_engine_stops_running_queries_and_refuses_new_ones() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = engine(None, 1 << 30);
    let bounds = bounds(engine.clone(), Duration::from_secs(600), 256 << 20);
    let ctx = session(&bounds, ROWS);
    let err = rt.block_on(async {
        let running = {
            let ctx = ctx.clone();
            tokio::spawn(async move { run(&ctx, CROSS_JOIN).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        engine.shut_down();
        match tokio::time::timeout(Duration::from_secs(60), running).await {
            Ok(Ok(Err(e))) => e,
            other => panic!("the query did not stop with an error: {other:?}"),
        }
    });
    assert_eq!(BoundError::find(&err), Some(&BoundError::ShuttingDown), "{err}");
    let again = rt.block_on(run(&ctx, "SELECT count(*) FROM t"));
    let err = again.err().unwrap_or_else(|| panic!("a query ran after shutdown"));
    assert_eq!(BoundError::find(&err), Some(&BoundError::ShuttingDown), "{err}");
    rt.shutdown_background();
}

#[test]
fn sessions_draw_on_the_shared_memory_budget() {
    let engine = engine(None, 1 << 20);
    let a = engine.session_pool(8 << 20);
    let b = engine.session_pool(8 << 20);
    let first = MemoryConsumer::new("a").register(&a);
    first.try_grow(900 << 10).unwrap_or_else(|e| panic!("{e}"));
    // Within its own bound, but the budget of all sessions is spent.
    let second = MemoryConsumer::new("b").register(&b);
    let err = second
        .try_grow(200 << 10)
        .err()
        .unwrap_or_else(|| panic!("over budget"));
    assert!(
        err.to_string().contains("all SQL queries of this server together"),
        "{err}"
    );
    assert_eq!(b.reserved(), 0, "a refused reservation holds nothing");
    drop(first);
    second.try_grow(200 << 10).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engine.memory_reserved(), 200 << 10);
}
