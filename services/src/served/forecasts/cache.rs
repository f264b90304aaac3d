//! The arrival history of every queue of a tenant from one scan.
//!
//! A staffing plan for 100 queues used to run 100 queries over the tenant's
//! materialized `conversations` rows, each reading all of them to keep one
//! queue's conversations. Here one query per tenant, window and interval
//! ([`Cells`]) keeps the additive facts per interval and combination
//! of queue dimensions; each queue's history is summed from those cells in
//! memory, and the cells are kept until the tenant's data changes.
//!
//! **Freshness.** `conversations` is a view over the tenant's rollup rows
//! (`services::kpis::fast`), brought up to date with the lake and the buffer
//! whenever it is scanned: the rows change exactly when the tenant's lake
//! files or buffered rows do, and the rollup's version
//! (`TenantRollup::data_version`) with them. Before answering, each request
//! brings the rollup up to date (as a scan would) and keys on that version,
//! together with the tenant's settings. Versions are unique in the process
//! (a rollup rebuilt from scratch never repeats an older one's), so an
//! entry is never served for other data.
//!
//! **Bounds.** Entries are per service (ingestor), tenant, window and
//! interval; a tenant's entries of an older data version are dropped when a
//! newer one is seen, and at most [`ENTRIES_PER_TENANT`] are kept (least
//! recently used out). Concurrent requests for the same entry wait for one
//! scan.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::context::Services;
use crate::error::ServiceError;
use crate::forecasts::lake::{Cells, History, QueueKey};
use crate::tenant::TenantId;

/// Windows kept per tenant (a routing core asks for one or two: the
/// staffing plan's and the arrivals').
const ENTRIES_PER_TENANT: usize = 4;

/// Which data a cache entry was computed from: the tenant's settings (as
/// JSON) and its materialized data's version.
type DataVersion = (String, u64);

type Shared = Arc<tokio::sync::OnceCell<Arc<Cells>>>;

/// `S`: what identifies a running service (its ingestor).
#[derive(Debug)]
struct Entry<S> {
    service: Weak<S>,
    tenant: String,
    /// `from_us`, `to_us`, `interval_us`.
    window: (i64, i64, i64),
    version: DataVersion,
    cells: Shared,
    last_used: u64,
}

#[derive(Debug)]
struct Cache<S> {
    entries: Vec<Entry<S>>,
    clock: u64,
}

impl<S> Default for Cache<S> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            clock: 0,
        }
    }
}

impl<S> Cache<S> {
    /// The entry of `tenant`'s `window` at `version`, made empty when
    /// absent; drops the tenant's entries of other versions.
    fn entry(&mut self, service: &Arc<S>, tenant: &str, window: (i64, i64, i64), version: &DataVersion) -> Shared {
        self.clock += 1;
        let now = self.clock;
        let mine = |e: &Entry<S>| e.tenant == tenant && std::ptr::addr_eq(e.service.as_ptr(), Arc::as_ptr(service));
        self.entries
            .retain(|e| e.service.strong_count() > 0 && !(mine(e) && e.version != *version));
        if let Some(e) = self.entries.iter_mut().find(|e| mine(e) && e.window == window) {
            e.last_used = now;
            return e.cells.clone();
        }
        let cells = Shared::default();
        self.entries.push(Entry {
            service: Arc::downgrade(service),
            tenant: tenant.to_string(),
            window,
            version: version.clone(),
            cells: cells.clone(),
            last_used: now,
        });
        while self.entries.iter().filter(|e| mine(e)).count() > ENTRIES_PER_TENANT {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| mine(e))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.entries.remove(i);
            }
        }
        cells
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %e, "forecast history query failed");
    ServiceError::internal(format!("reading the arrival history failed: {e}"))
}

/// The history of `key` in `tenant` per interval of `interval_us` over
/// `[from_us, to_us)`: what [`crate::forecasts::lake::history`] computes, from the tenant's
/// cached [`Cells`] of that window (read once per data version), and the
/// `seq` that data counts (the cells may count more, never less).
pub async fn history(
    state: &Services,
    tenant: &str,
    key: &QueueKey,
    from_us: i64,
    to_us: i64,
    interval_us: i64,
) -> Result<(History, Option<u64>), ServiceError> {
    let id = TenantId::parse(tenant).ok_or_else(|| ServiceError::internal(format!("bad tenant id {tenant:?}")))?;
    let crate::context::DataVersion {
        settings,
        version: data_version,
        as_of_seq,
    } = state.data_version(&id).await?;
    let read = || async {
        let started = std::time::Instant::now();
        let ctx = state.shared_served_session(tenant).await?;
        let cells = Cells::read(&ctx, tenant, from_us, to_us, interval_us)
            .await
            .map_err(internal)?;
        tracing::debug!(
            tenant,
            cells = cells.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "forecast history cells read"
        );
        Ok::<_, ServiceError>(Arc::new(cells))
    };
    let cells = match data_version {
        // No rows materialized yet (`conversations` is still computed from
        // events): nothing to key an entry on.
        None => read().await?,
        Some(data_version) => {
            let version = (serde_json::to_string(&settings).map_err(internal)?, data_version);
            static CACHE: OnceLock<Mutex<Cache<ingest::Ingestor>>> = OnceLock::new();
            let shared = CACHE
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(&state.ingestor, tenant, (from_us, to_us, interval_us), &version);
            // The scan may find rows newer than `version` (data arriving
            // meanwhile): then the entry is newer than its key says, never
            // older, and the next request's version replaces it.
            shared.get_or_try_init(read).await?.clone()
        }
    };
    Ok((cells.history(key), as_of_seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_tenant_window_and_version_and_bounded() {
        let (service, other_service) = (Arc::new(()), Arc::new(()));
        let mut cache = Cache::default();
        let v = |n: u64| ("{}".to_string(), n);
        let w = |i: i64| (i, i + 10, 1);
        let first = cache.entry(&service, "acme", w(0), &v(1));
        assert!(Arc::ptr_eq(&first, &cache.entry(&service, "acme", w(0), &v(1))));
        let of_globex = cache.entry(&service, "globex", w(0), &v(1));
        assert!(!Arc::ptr_eq(&first, &of_globex), "tenants never share an entry");
        let elsewhere = cache.entry(&other_service, "acme", w(0), &v(1));
        assert!(!Arc::ptr_eq(&first, &elsewhere), "nor do services");
        // Up to ENTRIES_PER_TENANT windows of one tenant, least recently used out.
        for i in 1..=ENTRIES_PER_TENANT as i64 {
            cache.entry(&service, "acme", w(i), &v(1));
        }
        let count = |c: &Cache<()>, t: &str| c.entries.iter().filter(|e| e.tenant == t).count();
        assert_eq!(
            count(&cache, "acme"),
            ENTRIES_PER_TENANT + 1,
            "4 here, 1 in the other service"
        );
        assert!(
            !Arc::ptr_eq(&first, &cache.entry(&service, "acme", w(0), &v(1))),
            "w(0) was the oldest"
        );
        // New data: the tenant's entries of the older version go; the other
        // tenant's stay.
        cache.entry(&service, "acme", w(0), &v(2));
        assert_eq!(count(&cache, "acme"), 2, "w(0) of v2 here, v1 in the other service");
        assert!(Arc::ptr_eq(&of_globex, &cache.entry(&service, "globex", w(0), &v(1))));
        // Other settings are another version too.
        let other_settings = ("{\"sla\":1}".to_string(), 2);
        let changed = cache.entry(&service, "acme", w(0), &other_settings);
        assert!(!Arc::ptr_eq(&changed, &cache.entry(&service, "acme", w(0), &v(2))));
        // A stopped service's entries go.
        drop(other_service);
        cache.entry(&service, "acme", w(0), &v(2));
        assert_eq!(count(&cache, "acme"), 1);
    }
}
