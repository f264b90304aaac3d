//! Fault injection for the durability tests.
//!
//! The write path's promise ("a 2xx means durable, and the service recovers
//! once the fault clears") is only worth what the faults it was tested
//! against. A [`Faults`] handle travels in [`crate::IngestConfig`] to the
//! WAL writer and to the lake's object store ([`crate::store`]); each hook
//! asks it whether to fail this operation. Unarmed (the default, and always
//! in production) every check is one relaxed atomic load.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// One kind of failure a test can arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A WAL write fails before any byte is written.
    WalWrite,
    /// A WAL write puts half of its bytes in the file, then fails.
    WalShortWrite,
    /// The WAL's `fdatasync` fails after the bytes were written.
    WalSync,
    /// An object-store put (data file, log entry, checkpoint) fails.
    StorePut,
    /// A Delta log entry is written, then the put reports an error: the
    /// commit landed but the writer is told it did not.
    StoreCommitLandsThenFails,
    /// An object-store rename or copy fails.
    StoreRename,
    /// Every WAL write and object-store put fails with "no space left on
    /// device" until cleared.
    DiskFull,
}

const KINDS: usize = 7;

fn index(f: Fault) -> usize {
    match f {
        Fault::WalWrite => 0,
        Fault::WalShortWrite => 1,
        Fault::WalSync => 2,
        Fault::StorePut => 3,
        Fault::StoreCommitLandsThenFails => 4,
        Fault::StoreRename => 5,
        Fault::DiskFull => 6,
    }
}

/// Armed faults, shared by every layer of one ingestor. Cheap to clone.
#[derive(Debug, Default, Clone)]
pub struct Faults(Arc<State>);

#[derive(Debug, Default)]
struct State {
    armed: [AtomicU32; KINDS],
    /// When tracing: the durable steps of the lake's store, in order.
    trace: Mutex<Option<Vec<String>>>,
}

impl Faults {
    /// The next `times` operations of that kind fail (`u32::MAX`: until
    /// [`Faults::clear`]).
    pub fn arm(&self, fault: Fault, times: u32) {
        self.0.armed[index(fault)].store(times, Ordering::SeqCst);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        for c in self.0.armed.iter() {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Starts recording the store's steps (`"synced <path>"`,
    /// `"deleted <path>"`), for tests of their order.
    pub fn start_trace(&self) {
        *self.0.trace.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    }

    /// The steps recorded since [`Faults::start_trace`].
    pub fn trace(&self) -> Vec<String> {
        self.0
            .trace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    pub(crate) fn note(&self, step: impl FnOnce() -> String) {
        if let Some(t) = self.0.trace.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            t.push(step());
        }
    }

    /// True if this operation must fail (and counts it).
    pub(crate) fn take(&self, fault: Fault) -> bool {
        let c = &self.0.armed[index(fault)];
        if c.load(Ordering::Relaxed) == 0 {
            return false;
        }
        c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            u32::MAX => Some(u32::MAX),
            n => Some(n - 1),
        })
        .is_ok()
    }

    /// The error an injected fault returns.
    pub(crate) fn error(fault: Fault) -> io::Error {
        match fault {
            Fault::DiskFull => io::Error::new(io::ErrorKind::StorageFull, "injected fault: no space left on device"),
            other => io::Error::other(format!("injected fault: {other:?}")),
        }
    }
}
