//! Dashboard sessions: what the sign-in cookie holds instead of the key.
//!
//! A session id is 256 random bits (64 hex characters), handed to the
//! browser once in the cookie; the server keeps only its SHA-256, in
//! memory, with the id of the key that signed in. So the browser never
//! holds an API key (an admin key in a cookie jar would be a bearer token
//! for the whole API), signing out ends the session on the server (a
//! copied cookie stops working), and every request looks the key up again
//! by id ([`services::keys::KeyStore::principal_by_id`]): revoking or expiring
//! the key ends its sessions at once.
//!
//! A session ends after [`IDLE_TIMEOUT`] without a request, or
//! [`MAX_LIFETIME`] after sign-in, whichever comes first. Sessions do not
//! survive a restart: signing in again is the cost of keeping no session
//! secret on disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A session unused this long has ended.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after sign-in, however busy.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug)]
struct Session {
    key_id: String,
    started: Instant,
    last_seen: Instant,
}

impl Session {
    fn live_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) < IDLE_TIMEOUT
            && now.saturating_duration_since(self.started) < MAX_LIFETIME
    }
}

/// The signed-in dashboard sessions of this process, by the SHA-256 of
/// their id. Callers pass `now`, so expiry is testable without waiting.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for the key `key_id`; returns the id for the cookie.
    pub fn start(&self, key_id: &str, now: Instant) -> String {
        let id: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        let mut all = self.lock();
        // Ended sessions are swept here, so the map holds live ones only
        // (plus those that ended since the last sign-in).
        all.retain(|_, s| s.live_at(now));
        all.insert(
            hash(&id),
            Session {
                key_id: key_id.to_string(),
                started: now,
                last_seen: now,
            },
        );
        id
    }

    /// The key id of a live session (and marks it used), `None` for an
    /// unknown or ended one.
    pub fn key_id(&self, id: &str, now: Instant) -> Option<String> {
        let h = hash(id);
        let mut all = self.lock();
        let session = all.get_mut(&h)?;
        if !session.live_at(now) {
            all.remove(&h);
            return None;
        }
        session.last_seen = now;
        Some(session.key_id.clone())
    }

    /// Ends a session (sign-out); unknown ids are ignored.
    pub fn end(&self, id: &str) {
        self.lock().remove(&hash(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_random_ends_on_sign_out_and_after_idle_or_lifetime() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let id = sessions.start("k1", t0);
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(sessions.start("k1", t0), id, "every sign-in gets a new id");
        assert_eq!(sessions.key_id(&id, t0).as_deref(), Some("k1"));
        assert_eq!(sessions.key_id("0".repeat(64).as_str(), t0), None);
        assert!(
            !format!("{:?}", sessions).contains(&id),
            "only the hash of an id is kept"
        );

        // Used within the idle timeout, it lives on; then idles out.
        let hour = Duration::from_secs(3600);
        let mut t = t0;
        for _ in 0..3 {
            t += IDLE_TIMEOUT - hour;
            assert_eq!(sessions.key_id(&id, t).as_deref(), Some("k1"));
        }
        assert_eq!(sessions.key_id(&id, t + IDLE_TIMEOUT), None);
        assert_eq!(sessions.key_id(&id, t), None, "an ended session stays ended");

        // However busy, it ends at its maximum lifetime.
        let busy = sessions.start("k2", t0);
        let mut t = t0;
        while t + IDLE_TIMEOUT / 2 < t0 + MAX_LIFETIME {
            t += IDLE_TIMEOUT / 2;
            assert_eq!(sessions.key_id(&busy, t).as_deref(), Some("k2"));
        }
        assert_eq!(sessions.key_id(&busy, t0 + MAX_LIFETIME), None);

        let out = sessions.start("k3", t0);
        sessions.end(&out);
        assert_eq!(sessions.key_id(&out, t0), None);
    }
}
