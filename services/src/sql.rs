//! Analyst SQL, shared by HTTP `/v1/sql` and the Postgres wire: who may
//! run it, over which rows, within which bounds.
//!
//! - Roles `analyst` and `admin` may; the others may not.
//! - A tenant key's session holds only its tenant's rows
//!   ([`warehouse::scoped`]); a platform-wide key (`*`) reads every tenant,
//!   or one tenant when it names it.
//! - Bounds per role (`[sql.analyst]`, `[sql.admin]` in the configuration):
//!   time, rows, memory, JSON result size and queries at once per tenant;
//!   see [`warehouse::bounds`].
//! - Bounds of all user SQL together (`[sql]`): a memory budget every
//!   session's pool draws on, the spill space, and the threads of the
//!   runtime queries run on ([`warehouse::bounds::SqlEngine`]), apart from
//!   the runtime that acknowledges ingest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::prelude::SessionContext;
use serde::Deserialize;
use warehouse::Warehouse;
use warehouse::bounds::{Bounds, ConcurrencyGate, EngineConfig, SqlEngine};
use warehouse::sandbox::Scope;

use crate::error::ServiceError;
use crate::keys::{Principal, Role, TenantScope};
use crate::tenant::TenantId;

/// The catalog analyst SQL sees its tables in (`cxlake.public.conversations`),
/// and the database name a Postgres client connects to.
pub const DATABASE: &str = "cxlake";

/// One role's bounds, as configured.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SqlLimits {
    /// Seconds a query may run.
    pub timeout_s: f64,
    /// Rows a result may have.
    pub max_rows: usize,
    /// Memory for operators of one tenant and role (MiB; its queries share
    /// one cached session); sorts and aggregates spill
    /// to disk beyond it, joins fail cleanly.
    pub memory_mb: usize,
    /// Queries of one tenant that may run at once.
    pub concurrent_per_tenant: usize,
    /// Size of a JSON result of `/v1/sql` (MiB); streamed formats have no
    /// such limit.
    pub max_json_mb: usize,
}

impl SqlLimits {
    fn analyst() -> Self {
        Self {
            timeout_s: 30.0,
            max_rows: 1_000_000,
            memory_mb: 1024,
            concurrent_per_tenant: 4,
            max_json_mb: 256,
        }
    }

    fn admin() -> Self {
        Self {
            timeout_s: 120.0,
            max_rows: 10_000_000,
            memory_mb: 2048,
            concurrent_per_tenant: 8,
            max_json_mb: 1024,
        }
    }
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self::analyst()
    }
}

/// Bounds per role.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    pub analyst: SqlLimits,
    pub admin: SqlLimits,
    /// Memory all user SQL together may hold (MiB); 0 = 40% of the
    /// machine's (or the container's) memory.
    pub memory_total_mb: usize,
    /// Bytes all queries together may spill to the temporary directory
    /// (MiB).
    pub spill_max_mb: usize,
    /// Worker threads of the runtime user SQL runs on; 0 = one per core.
    pub threads: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            analyst: SqlLimits::analyst(),
            admin: SqlLimits::admin(),
            memory_total_mb: 0,
            spill_max_mb: 10 * 1024,
            threads: 0,
        }
    }
}

impl SqlConfig {
    /// The shared budgets, with `memory_total_mb = 0` resolved.
    pub fn engine_config(&self) -> EngineConfig {
        let memory_total_bytes = match self.memory_total_mb {
            0 => machine_memory_bytes().map_or(4 << 30, |m| (m / 10 * 4) as usize),
            mb => mb << 20,
        };
        EngineConfig {
            memory_total_bytes,
            spill_max_bytes: (self.spill_max_mb as u64) << 20,
        }
    }

    /// Worker threads of the SQL runtime.
    pub fn runtime_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// The memory this process may use: the machine's, or the cgroup's limit
/// when a container sets a lower one.
fn machine_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let total = total_kb * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    Some(cgroup.map_or(total, |c| c.min(total)))
}

/// Builds the sessions of analyst SQL and keeps the per-tenant gates.
pub struct SqlService {
    config: SqlConfig,
    engine: Arc<SqlEngine>,
    gates: Mutex<HashMap<(String, Role), Arc<ConcurrencyGate>>>,
    /// Planned sessions by (scope, role, the tenant's settings as stored):
    /// planning the views costs tens of milliseconds, far more than a small
    /// query. A session is read-only, so concurrent requests can share it;
    /// its memory pool is then the bound of that tenant and role together.
    sessions: Mutex<HashMap<(String, Role, String), SessionContext>>,
    catalogs: Option<CatalogSetup>,
}

/// Adds catalogs tools expect to a new session (the binary registers the
/// Postgres `pg_catalog`, which it speaks the wire protocol of).
pub type CatalogSetup = Arc<dyn Fn(&SessionContext) -> datafusion::error::Result<()> + Send + Sync>;

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqlService {
    /// A service whose queries run on the caller's runtime.
    pub fn new(config: SqlConfig) -> datafusion::error::Result<Self> {
        Self::with_runtime(config, None)
    }

    /// A service whose queries run on `runtime` (see
    /// [`warehouse::bounds::SqlEngine`]).
    pub fn with_runtime(config: SqlConfig, runtime: Option<tokio::runtime::Handle>) -> datafusion::error::Result<Self> {
        let engine = Arc::new(SqlEngine::new(&config.engine_config(), runtime)?);
        Ok(Self {
            config,
            engine,
            gates: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            catalogs: None,
        })
    }

    /// Every session built from now on gets `setup` run on it.
    pub fn with_catalogs(mut self, setup: CatalogSetup) -> Self {
        self.catalogs = Some(setup);
        self
    }

    /// The bounds of `role`'s queries on `scope`; the concurrency gate is
    /// shared by every session (HTTP or Postgres) of that scope and role.
    pub fn bounds(&self, role: Role, scope: &Scope) -> Bounds {
        let limits = match role {
            Role::Admin => &self.config.admin,
            _ => &self.config.analyst,
        };
        let scope_key = match scope {
            Scope::Tenant(t) => t.clone(),
            Scope::Platform => "*".to_string(),
        };
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((scope_key, role))
            .or_insert_with(|| Arc::new(ConcurrencyGate::new(limits.concurrent_per_tenant)))
            .clone();
        Bounds {
            timeout: Duration::from_secs_f64(limits.timeout_s.max(0.001)),
            max_rows: limits.max_rows,
            memory_bytes: limits.memory_mb.max(1) << 20,
            gate,
            max_json_bytes: limits.max_json_mb.max(1) << 20,
            engine: self.engine.clone(),
        }
    }

    /// Where every user query runs; [`SqlEngine::shut_down`] stops them.
    pub fn engine(&self) -> &Arc<SqlEngine> {
        &self.engine
    }

    /// A sandboxed session for `role` over `scope`. A tenant's session has
    /// the tenant's settings applied to its views (SLA target, attribution
    /// window, labour rates), so SQL sees the same facts as `/v1/kpis`.
    pub async fn session(
        &self,
        warehouse: &Warehouse,
        data_dir: &std::path::Path,
        role: Role,
        scope: &Scope,
    ) -> Result<SessionContext, ServiceError> {
        let internal = |e: &dyn std::fmt::Display| ServiceError::internal(e.to_string());
        let (scope_key, settings) = match scope {
            Scope::Tenant(t) => {
                let tenant =
                    TenantId::parse(t).ok_or_else(|| ServiceError::internal(format!("bad tenant id {t:?}")))?;
                let settings = crate::settings::load(data_dir, &tenant).map_err(|e| internal(&e))?;
                (t.clone(), Some((tenant, settings)))
            }
            Scope::Platform => ("*".to_string(), None),
        };
        let settings_key = settings
            .as_ref()
            .map(|(_, s)| serde_json::to_string(s).unwrap_or_default())
            .unwrap_or_default();
        let key = (scope_key, role, settings_key);
        if let Some(ctx) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(ctx.clone());
        }
        let ctx = warehouse
            .sandbox_session(scope, &self.bounds(role, scope), settings.is_none())
            .map_err(|e| internal(&e))?;
        if let Some((tenant, settings)) = &settings {
            crate::kpis::lake::register_tenant_views(&ctx, tenant, settings)
                .await
                .map_err(|e| internal(&e))?;
            // `conversations` from the materialized rows, kept current
            // per query (the view over events is what computes them).
            crate::kpis::fast::use_materialized(&ctx, warehouse, tenant, settings, crate::kpis::fast::Rows::Current)
                .await
                .map_err(|e| internal(&e))?;
        }
        if settings.is_none() {
            // Platform-wide: every tenant's materialized rows.
            crate::kpis::fast::use_platform_materialized(&ctx, warehouse, data_dir)
                .await
                .map_err(|e| internal(&e))?;
        }
        if role == Role::Admin {
            crate::audit::sql::register(&ctx, data_dir, scope).map_err(|e| internal(&e))?;
        }
        // The Postgres catalog, for tools; harmless over HTTP.
        if let Some(setup) = &self.catalogs {
            setup(&ctx).map_err(|e| internal(&e))?;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Settings changed: drop the tenant's stale sessions.
        sessions.retain(|k, _| !(k.0 == key.0 && k.1 == key.1));
        sessions.insert(key, ctx.clone());
        Ok(ctx)
    }
}

/// Refuses keys whose role may not run SQL.
pub fn require_sql_role(principal: &Principal) -> Result<(), ServiceError> {
    match principal.role {
        Role::Admin | Role::Analyst => Ok(()),
        other => Err(ServiceError::forbidden(format!(
            "a key with role {} cannot run SQL; use an analyst or admin key",
            other.as_str()
        ))),
    }
}

/// The rows a principal's SQL reads: its tenant; for a platform-wide key
/// the tenant it names, or every tenant.
pub fn sql_scope(principal: &Principal, requested: Option<&str>) -> Result<Scope, ServiceError> {
    match (&principal.tenant, requested) {
        (TenantScope::All, None) => Ok(Scope::Platform),
        (_, requested) => {
            crate::tenant::resolve_tenant(principal, requested).map(|t: TenantId| Scope::Tenant(t.as_str().to_string()))
        }
    }
}
