//! [`Services`]: what one running service holds (the data directory, the
//! ingestor and the warehouse over it, the stores of keys, experiments and
//! audit records, the analyst SQL sessions) and the per-tenant data every
//! feature reads through: the tenant's settings, its session with the
//! materialized rows, and the version of that data.
//!
//! The top layer of the crate: it may use every other module, none uses it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::prelude::SessionContext;
use ingest::Ingestor;
use warehouse::Warehouse;

use crate::audit::AuditLog;
use crate::cache::VersionedCache;
use crate::error::ServiceError;
use crate::experiment::store::ExperimentStore;
use crate::keys::KeyStore;
use crate::kpis::{fast, lake};
use crate::settings::{self, TenantSettings};
use crate::sql::SqlService;
use crate::tenant::TenantId;

/// One running service.
pub struct Services {
    /// The data directory (keys, WAL, lake, and any store a feature keeps).
    pub data_dir: PathBuf,
    pub ingestor: Arc<Ingestor>,
    pub warehouse: Warehouse,
    pub keys: KeyStore,
    /// The experiment registry (`<data_dir>/experiments/`).
    pub experiments: ExperimentStore,
    /// Analyst SQL sessions and their per-tenant gates (HTTP and Postgres).
    pub sql: SqlService,
    /// The tamper-evident audit log (`<data_dir>/audit/`).
    pub audit: AuditLog,
    /// Experiment results answers by request (see `experiment_routes`).
    pub experiment_results: VersionedCache<serde_json::Value>,
    /// Read-only tenant sessions by (tenant, settings as stored).
    shared_sessions: Mutex<HashMap<(String, String), SessionContext>>,
}

/// Experiment results answers kept at most, per service.
const RESULTS_KEPT: usize = 256;

/// How long a results answer is served again while nothing it reads
/// changed (a window that ends "now" moves; beyond this it is recomputed).
const RESULTS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("data_dir", &self.data_dir)
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    ServiceError::failed("tenant data", e)
}

fn tenant_id(tenant: &str) -> Result<TenantId, ServiceError> {
    TenantId::parse(tenant).ok_or_else(|| ServiceError::internal(format!("bad tenant id {tenant:?}")))
}

impl Services {
    pub fn new(
        data_dir: PathBuf,
        ingestor: Arc<Ingestor>,
        keys: KeyStore,
        experiments: ExperimentStore,
        sql: SqlService,
        audit: AuditLog,
    ) -> Self {
        Services {
            data_dir,
            warehouse: Warehouse::new(ingestor.clone()),
            ingestor,
            keys,
            experiments,
            sql,
            audit,
            experiment_results: VersionedCache::new(RESULTS_KEPT, RESULTS_FRESH_FOR),
            shared_sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's settings, read from disk off the async threads.
    pub async fn load_settings(&self, tenant: &TenantId) -> Result<TenantSettings, ServiceError> {
        let (dir, t) = (self.data_dir.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || settings::load(&dir, &t))
            .await
            .map_err(internal)?
            .map_err(internal)
    }

    /// The session features read a tenant's data through: `events` and the
    /// views hold only the tenant's rows, with its settings applied, and
    /// `conversations` reads the materialized rows ([`lake::tenant_session`]).
    pub async fn served_session(&self, tenant: &str) -> Result<SessionContext, ServiceError> {
        let tenant = tenant_id(tenant)?;
        let settings = self.load_settings(&tenant).await?;
        lake::tenant_session(&self.warehouse, &tenant, &settings)
            .await
            .map_err(internal)
    }

    /// [`Services::served_session`] for callers that only run queries (they
    /// must not register anything into it): kept per tenant and settings,
    /// since building one plans every view (tens of milliseconds), and
    /// current all the same, because every scan reads the lake's latest
    /// version and refreshes the materialized rows.
    pub async fn shared_served_session(&self, tenant: &str) -> Result<SessionContext, ServiceError> {
        let id = tenant_id(tenant)?;
        let settings = self.load_settings(&id).await?;
        let key = (tenant.to_string(), serde_json::to_string(&settings).map_err(internal)?);
        let cached = self
            .shared_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(ctx) = cached {
            return Ok(ctx);
        }
        let ctx = lake::tenant_session(&self.warehouse, &id, &settings)
            .await
            .map_err(internal)?;
        let mut sessions = self.shared_sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Settings changed: the tenant's older sessions go.
        sessions.retain(|k, _| k.0 != key.0);
        sessions.insert(key, ctx.clone());
        Ok(ctx)
    }

    /// The tenant's settings, the version of its materialized data
    /// ([`warehouse::rollups::TenantRollup::data_version`]) and the ingest
    /// `seq` that data counts ([`warehouse::rollups::TenantRollup::as_of_seq`]),
    /// as a scan would read them now: what caches of answers computed from
    /// that data key on, and what the answers say they count. `None`
    /// before anything is materialized.
    pub async fn data_version(&self, tenant: &TenantId) -> Result<DataVersion, ServiceError> {
        let settings = self.load_settings(tenant).await?;
        let rollup = fast::serving_rollup(&self.warehouse, tenant, &settings)
            .await
            .map_err(internal)?;
        Ok(DataVersion {
            version: rollup.data_version(),
            as_of_seq: rollup.as_of_seq(),
            settings,
        })
    }
}

/// See [`Services::data_version`].
#[derive(Debug, Clone)]
pub struct DataVersion {
    pub settings: TenantSettings,
    pub version: Option<u64>,
    pub as_of_seq: Option<u64>,
}
