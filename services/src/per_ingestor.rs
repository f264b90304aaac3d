//! State that lives as long as one running service: keyed by its ingestor,
//! held weakly, so a test process that starts several services never mixes
//! their caches and a stopped service's entries go with it.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use ingest::Ingestor;

/// One `T` per live ingestor.
pub struct PerIngestor<T> {
    all: OnceLock<Mutex<Vec<(Weak<Ingestor>, T)>>>,
}

impl<T> std::fmt::Debug for PerIngestor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerIngestor").finish_non_exhaustive()
    }
}

impl<T: Default> PerIngestor<T> {
    pub const fn new() -> Self {
        Self { all: OnceLock::new() }
    }

    /// Runs `f` on the ingestor's `T` (created on first use), under a lock:
    /// keep `f` short and never await in it.
    pub fn with<R>(&self, ingestor: &Arc<Ingestor>, f: impl FnOnce(&mut T) -> R) -> R {
        let mut all = self
            .all
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.retain(|(w, _)| w.strong_count() > 0);
        let i = match all
            .iter()
            .position(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(ingestor)))
        {
            Some(i) => i,
            None => {
                all.push((Arc::downgrade(ingestor), T::default()));
                all.len() - 1
            }
        };
        f(&mut all[i].1)
    }
}
