//! API keys: tenant-scoped, role-carrying, stored hashed.
//!
//! A key reads `cxk_<id>_<secret>`: `id` (16 hex digits) finds the record,
//! `secret` (64 hex digits, 256 random bits) proves possession. Only
//! SHA-256 of the secret is stored — the secret has full entropy, so a slow
//! password hash would add latency and no safety. The store is
//! `<data>/keys.json`, rewritten atomically (temp file, fsync, rename); the
//! server notices a changed file on the next lookup, so `cxlake key create`
//! works while it runs.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do (see DESIGN.md, "Security and privacy").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Supervisor,
    Agent,
    Operations,
    Analyst,
    Service,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::Operations,
        Role::Analyst,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Operations => "operations",
            Role::Analyst => "analyst",
            Role::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tenants a key reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantScope {
    /// Platform-wide (`--tenant '*'`): the messaging core serves many tenants.
    All,
    One(String),
}

impl TenantScope {
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            TenantScope::All => true,
            TenantScope::One(t) => t == tenant,
        }
    }
}

impl fmt::Display for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantScope::All => f.write_str("*"),
            TenantScope::One(t) => f.write_str(t),
        }
    }
}

/// One stored key (no secret, only its hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: String,
    pub role: Role,
    pub secret_sha256: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Who is calling, once a key checked out.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: String,
    pub tenant: TenantScope,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {detail}")]
    Store { path: PathBuf, detail: String },
    #[error("tenant {0:?} must be '*' or match [a-z0-9_-]{{1,64}}")]
    BadTenant(String),
}

#[derive(Default, Debug, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<KeyRecord>,
}

/// The key store of one data directory.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    cache: RwLock<(Option<SystemTime>, HashMap<String, KeyRecord>)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl KeyStore {
    pub fn open(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("keys.json"),
            cache: RwLock::new((None, HashMap::new())),
        }
    }

    fn store_err(&self, detail: impl fmt::Display) -> KeyError {
        KeyError::Store {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    fn read_file(&self) -> Result<KeyFile, KeyError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.store_err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
            Err(e) => Err(self.store_err(e)),
        }
    }

    /// Creates a key and returns its full text (shown once, never stored).
    pub fn create(&self, tenant: &str, role: Role, label: Option<String>) -> Result<(KeyRecord, String), KeyError> {
        if tenant != "*" && !ingest::contract::valid_tenant_id(tenant) {
            return Err(KeyError::BadTenant(tenant.into()));
        }
        let id = hex(&rand::random::<[u8; 8]>());
        let secret = hex(&rand::random::<[u8; 32]>());
        let record = KeyRecord {
            id: id.clone(),
            tenant: tenant.into(),
            role,
            secret_sha256: sha256_hex(&secret),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            label,
        };
        let mut file = self.read_file()?;
        file.keys.push(record.clone());
        self.write_file(&file)?;
        Ok((record, format!("cxk_{id}_{secret}")))
    }

    fn write_file(&self, file: &KeyFile) -> Result<(), KeyError> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| self.store_err(e))?;
        crate::fsutil::write_atomic(&self.path, &bytes).map_err(|e| self.store_err(e))
    }

    /// Checks a presented key; `None` for anything that is not a live key.
    pub fn authenticate(&self, presented: &str) -> Option<Principal> {
        let rest = presented.strip_prefix("cxk_")?;
        let (id, secret) = rest.split_once('_')?;
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let record = cache.1.get(id)?;
        if !constant_time_eq(sha256_hex(secret).as_bytes(), record.secret_sha256.as_bytes()) {
            return None;
        }
        let tenant = if record.tenant == "*" {
            TenantScope::All
        } else {
            TenantScope::One(record.tenant.clone())
        };
        Some(Principal {
            key_id: record.id.clone(),
            tenant,
            role: record.role,
        })
    }

    /// Reloads the file when its modification time changed.
    fn refresh(&self) {
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if self.cache.read().unwrap_or_else(|p| p.into_inner()).0 == mtime && mtime.is_some() {
            return;
        }
        match self.read_file() {
            Ok(file) => {
                let map = file.keys.into_iter().map(|k| (k.id.clone(), k)).collect();
                *self.cache.write().unwrap_or_else(|p| p.into_inner()) = (mtime, map);
            }
            Err(e) => tracing::error!(error = %e, "cannot read the key store; keeping the keys already loaded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_authenticate_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = KeyStore::open(dir.path());
        let (rec, key) = store
            .create("acme", Role::Admin, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let p = store.authenticate(&key).unwrap_or_else(|| panic!("key should work"));
        assert_eq!(
            (p.key_id.as_str(), p.role, p.tenant),
            (rec.id.as_str(), Role::Admin, TenantScope::One("acme".into()))
        );
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push('x');
        assert!(store.authenticate(&wrong).is_none());
        assert!(store.authenticate("cxk_nothing_here").is_none());
        assert!(store.authenticate("Bearer nonsense").is_none());
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap_or_default();
        assert!(
            !text.contains(key.rsplit('_').next().unwrap_or("-")),
            "the secret is never stored"
        );
    }

    #[test]
    fn a_second_store_sees_keys_created_later() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let server = KeyStore::open(dir.path());
        assert!(server.authenticate("cxk_a_b").is_none());
        let (_, key) = KeyStore::open(dir.path())
            .create("*", Role::Service, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let p = server
            .authenticate(&key)
            .unwrap_or_else(|| panic!("server should reload"));
        assert_eq!(p.tenant, TenantScope::All);
    }

    #[test]
    fn bad_tenants_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            KeyStore::open(dir.path()).create("Acme Inc", Role::Admin, None),
            Err(KeyError::BadTenant(_))
        ));
    }
}
