//! Which lake versions the queries of this process are reading.
//!
//! Compaction replaces files; vacuum deletes the replaced ones. A query
//! that took its snapshot before the compaction still reads the old files,
//! so vacuum keeps every file of a version some query of this process
//! holds ([`Readers::versions`]), whatever the retention says. The
//! retention is then only for readers outside the process (a `delta_scan`
//! in DuckDB over the same directory), as Postgres's vacuum keeps what a
//! running snapshot can see.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The versions held, with how many holders each.
#[derive(Debug, Default)]
pub struct Readers {
    held: Mutex<BTreeMap<u64, usize>>,
}

/// One holder of a version; dropping it lets the version go.
#[derive(Debug)]
pub struct Pin {
    readers: Arc<Readers>,
    version: u64,
}

impl Readers {
    /// Holds `version` until the returned pin is dropped.
    pub fn pin(self: &Arc<Self>, version: u64) -> Arc<Pin> {
        *self.lock().entry(version).or_default() += 1;
        Arc::new(Pin {
            readers: self.clone(),
            version,
        })
    }

    /// The versions held now, oldest first.
    pub fn versions(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        // A panic while holding the lock leaves plain counts behind.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pin {
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut held = self.readers.lock();
        if let Some(n) = held.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_held_until_its_last_pin_is_dropped() {
        let readers = Arc::new(Readers::default());
        let a = readers.pin(3);
        let b = readers.pin(3);
        let c = readers.pin(5);
        assert_eq!(readers.versions(), vec![3, 5]);
        drop(a);
        assert_eq!(readers.versions(), vec![3, 5]);
        drop(b);
        assert_eq!(readers.versions(), vec![5]);
        drop(c);
        assert!(readers.versions().is_empty());
    }
}
