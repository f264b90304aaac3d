//! `POST /v1/sql`: analyst SQL over HTTP.
//!
//! Body `{"sql": "SELECT ..."}`; `?tenant=` for platform-wide keys (without
//! it they read every tenant). The `Accept` header picks the result format:
//!
//! | Accept | body |
//! |---|---|
//! | `application/json` (default) | `{"columns", "rows", "row_count", "elapsed_ms"}` |
//! | `text/csv` | CSV with a header row, streamed |
//! | `application/x-ndjson` | one JSON object per row, streamed |
//! | `application/vnd.apache.arrow.stream` | Arrow IPC stream, streamed |
//! | `application/vnd.apache.parquet` | a Parquet file, streamed row group by row group |
//!
//! The session is the one psql gets ([`services::sql`]): same tenant
//! scope, read-only checks and bounds. Errors before the first row are a
//! problem document (a column the format cannot hold: `406`, checked on
//! the schema); an error after streaming began cuts the body short.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use warehouse::bounds::BoundError;
use warehouse::format::JsonResult;
use warehouse::sandbox::{check_statement, plan_options};

use crate::problem::Problem;
use crate::state::AppState;
use crate::stream_export::{self, StreamFormat};
use services::keys::Principal;
use services::sql::{require_sql_role, sql_scope};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/sql", post(post_sql))
}

#[derive(Debug, Deserialize)]
struct SqlRequest {
    sql: String,
}

#[derive(Debug, Deserialize)]
struct SqlParams {
    tenant: Option<String>,
}

/// The problem document for a failed statement.
pub fn sql_problem(err: &DataFusionError) -> Problem {
    if let Some(b) = BoundError::find(err) {
        return bound_problem(b);
    }
    match err {
        DataFusionError::ResourcesExhausted(msg) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "memory-limit",
            "Query needs too much memory",
            format!(
                "the query exceeded the memory limit of this role ({msg}); aggregate more or narrow the time range"
            ),
        ),
        DataFusionError::Plan(msg)
            if msg.contains("not supported")
                && (msg.contains("DDL") || msg.contains("DML") || msg.contains("Statement")) =>
        {
            bound_problem(&BoundError::ReadOnly(msg.clone()))
        }
        other => Problem::bad_request("sql-error", other.to_string()),
    }
}

fn bound_problem(b: &BoundError) -> Problem {
    let (status, kind, title) = match b {
        BoundError::ReadOnly(_) => (StatusCode::FORBIDDEN, "read-only", "Only read-only queries"),
        BoundError::Timeout(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query-timeout", "Query ran too long"),
        BoundError::TooManyRows(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too-many-rows", "Result too large"),
        BoundError::Busy(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-queries",
            "Too many queries at once",
        ),
        BoundError::ValueTooLarge { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "value-too-large",
            "A function would build too large a value",
        ),
        BoundError::ResultTooLarge(_) => (StatusCode::UNPROCESSABLE_ENTITY, "result-too-large", "Result too large"),
        BoundError::ShuttingDown => (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "The server is shutting down",
        ),
    };
    Problem::new(status, kind, title, b.to_string())
}

/// Checks that `sql` is exactly one read-only statement.
pub fn check_sql(sql: &str) -> Result<(), Problem> {
    let statements = DFParser::parse_sql(sql).map_err(|e| Problem::bad_request("sql-error", e.to_string()))?;
    if statements.len() != 1 {
        return Err(Problem::bad_request(
            "sql-error",
            format!(
                "send exactly one statement per request; this body has {}",
                statements.len()
            ),
        ));
    }
    let verdict = match &statements[0] {
        DfStatement::Statement(s) => check_statement(s),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => check_statement(s),
            _ => Err(BoundError::ReadOnly("EXPLAIN of a statement that changes state".into())),
        },
        DfStatement::CreateExternalTable(_) => Err(BoundError::ReadOnly("CREATE EXTERNAL TABLE".into())),
        DfStatement::CopyTo(_) => Err(BoundError::ReadOnly("COPY".into())),
        _ => Err(BoundError::ReadOnly("this statement".into())),
    };
    verdict.map_err(|b| bound_problem(&b))
}

fn wanted_format(headers: &HeaderMap) -> Option<StreamFormat> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // The first listed type we serve wins.
    accept.split(',').find_map(|t| {
        let t = t.split(';').next().unwrap_or("").trim();
        match t {
            "text/csv" => Some(Some(StreamFormat::Csv)),
            "application/x-ndjson" | "application/jsonlines" => Some(Some(StreamFormat::Ndjson)),
            "application/vnd.apache.arrow.stream" => Some(Some(StreamFormat::ArrowIpc)),
            "application/vnd.apache.parquet" | "application/x-parquet" => Some(Some(StreamFormat::Parquet)),
            "application/json" | "*/*" => Some(None),
            _ => None,
        }
    })?
}

async fn post_sql(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<SqlParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_sql_role(&principal)?;
    let req: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "bad-sql-request",
            format!("the body must be JSON like {{\"sql\": \"SELECT ...\"}}: {e}"),
        )
    })?;
    let scope = sql_scope(&principal, params.tenant.as_deref())?;
    check_sql(&req.sql)?;
    let started = Instant::now();
    let ctx = state
        .sql
        .session(&state.warehouse, &state.data_dir, principal.role, &scope)
        .await?;
    let bounds = state.sql.bounds(principal.role, &scope);
    let engine = bounds.engine.clone();
    // Planning (which folds constants, so it runs functions too) and
    // execution run on the SQL runtime; dropping this request's future
    // aborts them.
    let planning = {
        let (ctx, sql) = (ctx.clone(), req.sql.clone());
        engine.run(async move {
            let df = ctx.sql_with_options(&sql, plan_options()).await?;
            let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await?;
            Ok::<_, DataFusionError>((schema, stream))
        })
    };
    let (schema, stream) = match tokio::time::timeout(bounds.timeout, planning).await {
        Err(_) => return Err(bound_problem(&BoundError::Timeout(bounds.timeout))),
        Ok(planned) => planned.and_then(|p| p).map_err(|e| sql_problem(&e))?,
    };
    let mut stream = stream;
    tracing::info!(key = %principal.key_id, scope = ?scope, "sql over http");

    let Some(format) = wanted_format(&headers) else {
        let pool = ctx.runtime_env().memory_pool.clone();
        let max_json_bytes = bounds.max_json_bytes;
        let schema = schema.clone();
        let encoded = engine
            .run(async move {
                let reservation = MemoryConsumer::new("json result").register(&pool);
                let mut out = JsonResult::new(&schema, max_json_bytes, Some(reservation));
                while let Some(b) = stream.next().await {
                    out.push(&b?)?;
                }
                Ok::<_, DataFusionError>(out)
            })
            .await
            .and_then(|r| r)
            .map_err(|e| sql_problem(&e))?;
        let rows = encoded.rows();
        state
            .audit
            .record(services::audit::sql_query(
                &principal,
                &scope,
                "http",
                &req.sql,
                Some(rows),
            ))
            .await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let body = encoded.finish(&[
            ("row_count", json!(rows)),
            ("elapsed_ms", json!((ms * 1000.0).round() / 1000.0)),
        ]);
        let mut resp = body.into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(resp);
    };

    stream_export::check_encodable(format, &schema).map_err(|why| {
        Problem::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "format-cannot-hold-result",
            "Result not representable in the requested format",
            format!("{why}; cast the column (e.g. to text) or ask for another format (Accept: application/vnd.apache.arrow.stream holds every type)"),
        )
    })?;
    // Wait for the first batch, so a query that fails early (most do:
    // timeouts in a build phase, memory, bad casts) gets a problem document.
    let first = match stream.next().await {
        Some(Err(e)) => return Err(sql_problem(&e)),
        other => other,
    };
    state
        .audit
        .record(services::audit::sql_query(&principal, &scope, "http", &req.sql, None))
        .await;
    let rest = futures::stream::iter(first).chain(stream);
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), rest));
    let body = stream_export::body(format, schema, stream, "sql result", state.sql.engine().runtime())
        .map_err(|e| Problem::internal(e.to_string()))?;
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(resp)
}
