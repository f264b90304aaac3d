//! Sessions for analysts' SQL: tenant-scoped, read-only, bounded.
//!
//! Three independent layers keep an analyst's statement harmless, whichever
//! protocol brought it (HTTP `/v1/sql`, the Postgres wire in the simple or
//! extended protocol):
//!
//! 1. [`check_statement`]: only queries, `EXPLAIN` of a query, `SHOW`,
//!    transaction no-ops, cursors over a query and `SET` of the client
//!    parameters drivers send on connect pass. Nested statements count too
//!    (`WITH ... INSERT`, `SELECT ... INTO`).
//! 2. [`Warehouse::sandbox_session`]: the session's catalog holds only the
//!    tenant's `events` ([`crate::scoped`]) and the views over it; no URL
//!    tables, no file table functions; planning with DDL/DML/statements
//!    disabled where the caller plans through [`plan_options`].
//! 3. [`crate::bounds`]: a physical rule bounds time, rows and concurrency
//!    and refuses plans that write; the memory pool bounds memory (within
//!    the process-wide budget of all user SQL), [`crate::caps`] refuses
//!    function calls that would build huge values.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement, Visit, Visitor};

use crate::bounds::{BoundError, BoundRule, Bounds};
use crate::{EventsTable, Result, Warehouse, views};

/// Client parameters that drivers and tools set on connect (psql, psycopg,
/// JDBC/DBeaver, Metabase, Grafana). Setting them changes only how this
/// connection formats values; every other `SET` is refused.
pub const CLIENT_PARAMETERS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "statement_timeout",
    "timezone",
];

/// Planning options for user SQL: no DDL, no DML, no state-changing
/// statements.
pub fn plan_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Refuses every statement that is not read-only, with the reason.
pub fn check_statement(stmt: &Statement) -> Result<(), BoundError> {
    let refuse = |what: &str| Err(BoundError::ReadOnly(what.to_string()));
    match stmt {
        Statement::Query(q) => check_nested(q),
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(q) => check_nested(q),
            other => refuse(&format!("EXPLAIN of {}", statement_kind(other))),
        },
        Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowFunctions { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => Ok(()),
        Statement::Declare { stmts } => {
            for d in stmts {
                if let Some(q) = &d.for_query {
                    check_nested(q)?;
                }
            }
            Ok(())
        }
        Statement::Set(set) => check_set(set),
        other => refuse(&statement_kind(other)),
    }
}

fn check_set(set: &datafusion::sql::sqlparser::ast::Set) -> Result<(), BoundError> {
    use datafusion::sql::sqlparser::ast::Set;
    match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            if CLIENT_PARAMETERS.contains(&name.as_str()) {
                Ok(())
            } else {
                Err(BoundError::ReadOnly(format!(
                    "SET {name} (a session may set only the client parameters {})",
                    CLIENT_PARAMETERS.join(", ")
                )))
            }
        }
        Set::SetTimeZone { local: false, .. } | Set::SetNames { .. } => Ok(()),
        _ => Err(BoundError::ReadOnly(format!("SET ({set})"))),
    }
}

/// A short name of a statement's kind for error messages: its first words.
fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let kind = words.join(" ").to_ascii_uppercase();
    if kind.starts_with("CREATE") || kind.starts_with("DROP") || kind.starts_with("ALTER") {
        kind
    } else {
        words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default()
    }
}

struct NestedCheck(Option<BoundError>);

impl Visitor for NestedCheck {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Err(e) = check_set_expr(&query.body) {
            self.0 = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, stmt: &Statement) -> ControlFlow<()> {
        // A statement nested in a query (data-modifying CTEs and the like).
        if !matches!(stmt, Statement::Query(_)) {
            self.0 = Some(BoundError::ReadOnly(statement_kind(stmt)));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn check_set_expr(body: &SetExpr) -> Result<(), BoundError> {
    match body {
        SetExpr::Select(s) if s.into.is_some() => Err(BoundError::ReadOnly("SELECT ... INTO".into())),
        SetExpr::SetOperation { left, right, .. } => {
            check_set_expr(left)?;
            check_set_expr(right)
        }
        SetExpr::Insert(_) => Err(BoundError::ReadOnly("INSERT".into())),
        SetExpr::Update(_) => Err(BoundError::ReadOnly("UPDATE".into())),
        SetExpr::Delete(_) => Err(BoundError::ReadOnly("DELETE".into())),
        SetExpr::Merge(_) => Err(BoundError::ReadOnly("MERGE".into())),
        _ => Ok(()),
    }
}

fn check_nested(q: &Query) -> Result<(), BoundError> {
    let mut v = NestedCheck(None);
    let _ = q.visit(&mut v);
    v.0.map_or(Ok(()), Err)
}

/// Who a sandboxed session reads for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's rows only.
    Tenant(String),
    /// Every tenant (platform-wide keys).
    Platform,
}

impl Warehouse {
    /// A session for user SQL: `events` (and, with `with_views`, the views
    /// of `sql/views/` over it) hold only `scope`'s rows, every plan is
    /// bounded by `bounds`, operators share a memory pool of
    /// `bounds.memory_bytes` drawn from the engine's budget (spilling to
    /// the engine's bounded spill space), and the functions that build
    /// values of a size the query names are capped ([`crate::caps`]). A caller
    /// that builds the views itself (with a tenant's settings) passes
    /// `with_views = false`, so they are planned once.
    pub fn sandbox_session(&self, scope: &Scope, bounds: &Bounds, with_views: bool) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("cxlake", "public");
        let mut runtime = RuntimeEnvBuilder::new().with_memory_pool(bounds.engine.session_pool(bounds.memory_bytes));
        // One spill space for all sessions, so its size bounds them together.
        runtime.disk_manager = Some(bounds.engine.disk_manager());
        let runtime = runtime.build_arc()?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(BoundRule::new(bounds.clone())))
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::caps::install(&ctx, bounds.max_value_bytes());
        let events: Arc<dyn datafusion::catalog::TableProvider> = Arc::new(EventsTable::new(self.ingestor.clone()));
        let events = match scope {
            Scope::Tenant(t) => crate::scoped::tenant_scoped("events", events, t)?,
            Scope::Platform => events,
        };
        ctx.register_table("events", events)?;
        if with_views {
            views::register_views(&ctx)?;
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn check(sql: &str) -> Result<(), BoundError> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        stmts.iter().try_for_each(check_statement)
    }

    #[test]
    fn queries_and_harmless_statements_pass() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1 AS x) SELECT * FROM a UNION ALL SELECT 2",
            "EXPLAIN SELECT * FROM events",
            "EXPLAIN ANALYZE SELECT count(*) FROM events",
            "SHOW TABLES",
            "SET application_name = 'psql'",
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn state_changes_are_refused() {
        for (sql, what) in [
            ("INSERT INTO events VALUES (1)", "INSERT"),
            ("DROP TABLE events", "DROP TABLE"),
            ("CREATE TABLE x (a INT)", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("COPY events TO '/tmp/x.csv'", "COPY"),
            (
                "SET datafusion.execution.target_partitions = 1",
                "SET datafusion.execution.target_partitions",
            ),
            ("SET work_mem = '1GB'", "SET work_mem"),
            ("SELECT * INTO t FROM events", "SELECT ... INTO"),
            ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "INSERT"),
            ("EXPLAIN INSERT INTO t VALUES (1)", "EXPLAIN of INSERT"),
            ("DELETE FROM events", "DELETE"),
            ("UPDATE events SET a = 1", "UPDATE"),
            (
                "CREATE FUNCTION f() RETURNS INT AS 'select 1' LANGUAGE SQL",
                "CREATE FUNCTION",
            ),
        ] {
            match check(sql) {
                Err(BoundError::ReadOnly(msg)) => assert!(msg.starts_with(what), "{sql}: {msg}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }
}
