//! Cancel requests. Every connection gets a process id and a random secret
//! in its `BackendKeyData`; a `CancelRequest` carrying both (psql's Ctrl-C,
//! psycopg's `conn.cancel()`, JDBC's `Statement.cancel()`, sent on a new
//! connection) stops the statement that connection runs, and nothing else.
//!
//! The process id only finds the connection; the secret (4 random bytes in
//! protocol 3.0, 32 in 3.2) is what authorizes, compared in constant time so
//! that timing does not reveal how much of a guess was right.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::ProtocolVersion;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;

use super::stop::Current;

/// The cancel keys of the open connections.
#[derive(Debug, Default)]
pub(super) struct Registry {
    conns: Mutex<HashMap<i32, Entry>>,
}

#[derive(Debug)]
struct Entry {
    secret: Vec<u8>,
    current: Weak<Current>,
}

/// Removes its connection's key when the connection ends.
#[derive(Debug)]
pub(super) struct Registration {
    pid: i32,
    registry: Arc<Registry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.pid);
    }
}

impl Registry {
    /// A fresh key for a connection whose statements `current` tracks.
    pub(super) fn register(
        self: &Arc<Self>,
        protocol: ProtocolVersion,
        current: &Arc<Current>,
    ) -> (i32, SecretKey, Registration) {
        let secret = match protocol {
            ProtocolVersion::PROTOCOL3_0 => SecretKey::I32(rand::random::<i32>()),
            _ => {
                let mut bytes = vec![0u8; 32];
                rand::fill(&mut bytes[..]);
                SecretKey::Bytes(bytes.into())
            }
        };
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        // Random too, so that one connection's id says nothing of the others.
        let pid = loop {
            let pid = rand::random_range(1..i32::MAX);
            if !conns.contains_key(&pid) {
                break pid;
            }
        };
        conns.insert(
            pid,
            Entry {
                secret: secret.to_bytes().to_vec(),
                current: Arc::downgrade(current),
            },
        );
        let registration = Registration {
            pid,
            registry: self.clone(),
        };
        (pid, secret, registration)
    }

    /// Cancels the statement of the connection `pid` if `secret` is its
    /// secret; whether it was.
    pub(super) fn cancel(&self, pid: i32, secret: &SecretKey) -> bool {
        let current = {
            let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = conns.get(&pid) else {
                return false;
            };
            if !constant_time_eq(&entry.secret, &secret.to_bytes()) {
                return false;
            }
            entry.current.upgrade()
        };
        match current {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl CancelHandler for Registry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let done = self.cancel(request.pid, &request.secret_key);
        // Postgres answers a cancel request with nothing either way.
        tracing::info!(pid = request.pid, cancelled = done, "postgres cancel request");
    }
}

#[cfg(test)]
mod tests {
    use pgwire::error::PgWireResult;

    use super::*;
    use crate::pg_server::stop::Watch;

    #[tokio::test]
    async fn only_the_right_secret_cancels_only_its_connection() {
        let registry = Arc::new(Registry::default());
        let (a, b) = (Arc::new(Current::default()), Arc::new(Current::default()));
        let (pid_a, secret_a, _reg_a) = registry.register(ProtocolVersion::PROTOCOL3_0, &a);
        let (pid_b, _secret_b, reg_b) = registry.register(ProtocolVersion::PROTOCOL3_2, &b);
        assert_ne!(pid_a, pid_b);
        let (watch_a, watch_b) = (Watch::begin(&a, None), Watch::begin(&b, None));
        let wrong = SecretKey::Bytes(secret_a.to_bytes().iter().map(|x| x ^ 1).collect::<Vec<u8>>().into());
        assert!(!registry.cancel(pid_a, &wrong));
        assert!(!registry.cancel(pid_b, &secret_a));
        assert!(registry.cancel(pid_a, &secret_a));
        let ran = |w: Watch| async move { w.run(None, std::future::pending::<PgWireResult<()>>()).await };
        let err = ran(watch_a).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("canceling statement due to user request"), "{err}");
        // B was not touched: it is still running.
        let still = tokio::time::timeout(std::time::Duration::from_millis(50), ran(watch_b)).await;
        assert!(still.is_err(), "B must still be running");
        drop(reg_b);
        assert!(
            registry
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&pid_b)
                .is_none()
        );
    }
}
