//! Audits statements that arrive over the Postgres wire.
//!
//! A query hook that handles nothing: it records each statement's text
//! (`sql.query`, target `postgres`, with the client address) and lets the
//! next hook or DataFusion run it. The row count is not known here — the
//! wire streams rows — so these records carry `"rows": null`.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::PgWireResult;
use warehouse::sandbox::Scope;

use services::audit::{AuditLog, sql_query};
use services::keys::Principal;

/// The hook of one Postgres session.
#[derive(Debug)]
pub struct QueryAudit {
    log: AuditLog,
    principal: Principal,
    scope: Scope,
}

impl QueryAudit {
    pub fn new(log: AuditLog, principal: &Principal, scope: &Scope) -> QueryAudit {
        QueryAudit {
            log,
            principal: principal.clone(),
            scope: scope.clone(),
        }
    }
}

impl QueryAudit {
    async fn record(&self, statement: &Statement, client: &dyn HookClient) {
        let addr = client.socket_addr();
        let entry = sql_query(&self.principal, &self.scope, "postgres", &statement.to_string(), None).from_addr(addr);
        self.log.record(entry).await;
    }
}

#[async_trait]
impl QueryHook for QueryAudit {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.record(statement, client).await;
        None
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.record(statement, client).await;
        None
    }
}
