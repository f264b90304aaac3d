//! [`AppState`]: what every handler reads. A module of its own that
//! imports no handler, so the handlers and the router do not form a cycle.

use std::sync::Arc;

use ingest::decode::DecodeLimits;
use services::Services;

/// Shared by every handler: the services, and what only HTTP needs.
/// Dereferences to [`Services`], so `state.warehouse` is the services'.
#[derive(Debug)]
pub struct AppState {
    pub services: Services,
    pub limits: DecodeLimits,
    /// GDPR erasures, as durable jobs (`<data_dir>/erasures/`).
    pub erasures: Arc<crate::erasure_jobs::ErasureJobs>,
    /// Signed-in dashboard sessions (in memory).
    pub dashboard_sessions: crate::page_sessions::Sessions,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}
