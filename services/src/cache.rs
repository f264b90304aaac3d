//! Answers computed from a tenant's data, kept while that data keeps its
//! version ([`warehouse::rollups::TenantRollup::data_version`]) and for a
//! while at most; owned by the [`crate::Services`] of one running service.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `kept` answers by request key, each with the data version it
/// was computed at and when.
#[derive(Debug)]
pub struct VersionedCache<V> {
    entries: Mutex<HashMap<String, (Instant, u64, V)>>,
    kept: usize,
    fresh_for: Duration,
}

impl<V: Clone> VersionedCache<V> {
    pub fn new(kept: usize, fresh_for: Duration) -> Self {
        VersionedCache {
            entries: Mutex::new(HashMap::new()),
            kept,
            fresh_for,
        }
    }

    /// The answer to `key` if it was computed at `version` less than the
    /// freshness period ago.
    pub fn get(&self, key: &str, version: u64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, at_version, _)| *at_version == version && at.elapsed() < self.fresh_for)
            .map(|(_, _, v)| v.clone())
    }

    /// Keeps `value` as the answer to `key` at `version`; past `kept`
    /// answers the oldest goes.
    pub fn insert(&self, key: String, version: u64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.kept
            && !entries.contains_key(&key)
            && let Some(oldest) = entries.iter().min_by_key(|(_, (at, _, _))| *at).map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(key, (Instant::now(), version, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_its_version_and_the_oldest_goes_first() {
        let cache = VersionedCache::new(2, Duration::from_secs(60));
        cache.insert("a".into(), 1, "A");
        assert_eq!(cache.get("a", 1), Some("A"));
        assert_eq!(cache.get("a", 2), None, "another data version");
        cache.insert("b".into(), 1, "B");
        cache.insert("c".into(), 1, "C");
        assert_eq!(cache.get("a", 1), None, "the oldest went");
        assert_eq!((cache.get("b", 1), cache.get("c", 1)), (Some("B"), Some("C")));
        let stale = VersionedCache::new(2, Duration::ZERO);
        stale.insert("a".into(), 1, "A");
        assert_eq!(stale.get("a", 1), None, "past its freshness");
    }
}
