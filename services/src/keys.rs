//! API keys: tenant-scoped, role-carrying, stored hashed.
//!
//! A key reads `cxk_<id>_<secret>`: `id` (16 hex digits) finds the record,
//! `secret` (64 hex digits, 256 random bits) proves possession. Only
//! SHA-256 of the secret is stored — the secret has full entropy, so a slow
//! password hash would add latency and no safety. The store is
//! `<data>/keys.json`, rewritten atomically (temp file, fsync, rename); the
//! server notices a changed file on the next lookup, so `cxlake key create`
//! works while it runs.
//!
//! A supervisor key carries its `team` and an agent key its `agent_id`
//! ([`ConversationScope`]): the conversations of its tenant it reaches,
//! forced onto every query by `crate::scope`. Both fields are optional in
//! the file, so keys stored before they existed still load; such a
//! supervisor or agent key reaches no conversations
//! ([`ConversationScope::Unassigned`]).
//!
//! Keys may expire (`expires_at`) and be revoked (`revoked_at`, never
//! deleted, so the audit log's key ids stay resolvable); either makes
//! [`KeyStore::authenticate`] refuse them. Rotation creates a new key with
//! the same tenant, role and label and revokes the old one. The last-used
//! time is kept in memory on every request and written to the file only by
//! [`KeyStore::persist_last_used`] (the server calls it every minute and at
//! shutdown), so a request never waits for an fsync.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
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

/// Which conversations of its tenant a key reaches (DESIGN.md: a
/// supervisor its team's, an agent its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversationScope {
    /// Every conversation of the tenant (admin, operations, analyst, service).
    Tenant,
    /// Those whose `team` is this one (supervisor keys).
    Team(String),
    /// Those whose `agent_id` (the last agent) is this one (agent keys).
    Agent(String),
    /// None: a supervisor or agent key stored before keys carried a team or
    /// an agent id.
    Unassigned,
}

/// Longest accepted `team` or `agent_id` of a key: the event contract's.
const MAX_SCOPE_LEN: usize = ingest::contract::MAX_ID_LEN;

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
    /// RFC 3339; the key stops working at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// RFC 3339; set once by a revocation (or rotation), never cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// RFC 3339, to the second; written at most every minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// The key this one replaced by rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// The team of a supervisor key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The agent of an agent key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl KeyRecord {
    /// The tenant scope this record grants.
    pub fn scope(&self) -> TenantScope {
        if self.tenant == "*" {
            TenantScope::All
        } else {
            TenantScope::One(self.tenant.clone())
        }
    }

    /// The conversations this record reaches inside its tenant.
    pub fn conversation_scope(&self) -> ConversationScope {
        match (self.role, &self.team, &self.agent_id) {
            (Role::Supervisor, Some(team), _) => ConversationScope::Team(team.clone()),
            (Role::Agent, _, Some(agent)) => ConversationScope::Agent(agent.clone()),
            (Role::Supervisor | Role::Agent, _, _) => ConversationScope::Unassigned,
            _ => ConversationScope::Tenant,
        }
    }

    fn expired_at(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires_at
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| e <= now)
    }

    /// Whether the key authenticates now: not revoked, not expired.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none() && !self.expired_at(chrono::Utc::now())
    }
}

/// What a new key looks like; the secret and id are drawn by the store.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub tenant: String,
    pub role: Role,
    pub label: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Required for (and only for) supervisor keys.
    pub team: Option<String>,
    /// Required for (and only for) agent keys.
    pub agent_id: Option<String>,
}

impl NewKey {
    /// A key without a team or agent (every role but supervisor and agent).
    pub fn unscoped(tenant: &str, role: Role) -> Self {
        Self {
            tenant: tenant.into(),
            role,
            label: None,
            expires_at: None,
            team: None,
            agent_id: None,
        }
    }

    /// Checks that the role has the scope field it needs and no other.
    fn check_scope(&self) -> Result<(), KeyError> {
        let fields = [
            ("team", Role::Supervisor, &self.team),
            ("agent_id", Role::Agent, &self.agent_id),
        ];
        for (field, owner, value) in fields {
            match value {
                None if self.role == owner => {
                    return Err(KeyError::MissingScope { role: owner, field });
                }
                Some(_) if self.role != owner => {
                    return Err(KeyError::ScopeNotForRole {
                        role: self.role,
                        field,
                        owner,
                    });
                }
                Some(v) if v.is_empty() || v.len() > MAX_SCOPE_LEN || v.chars().any(char::is_control) => {
                    return Err(KeyError::BadScope {
                        field,
                        value: v.clone(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Who is calling, once a key checked out.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: String,
    pub tenant: TenantScope,
    pub role: Role,
    pub conversations: ConversationScope,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {detail}")]
    Store { path: PathBuf, detail: String },
    #[error("tenant {0:?} must be '*' or match [a-z0-9_-]{{1,64}}")]
    BadTenant(String),
    #[error("no key with id {0:?}")]
    NotFound(String),
    #[error("key {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("expires_at {0} is not in the future")]
    ExpiryInPast(String),
    #[error("{field}: {role} keys need one, the {} the key reaches", if *field == "team" { "team whose conversations" } else { "agent whose own conversations" })]
    MissingScope { role: Role, field: &'static str },
    #[error("{field}: only {owner} keys carry one, not {role} keys")]
    ScopeNotForRole {
        role: Role,
        field: &'static str,
        owner: Role,
    },
    #[error("{field}: {value:?} must be 1 to {MAX_SCOPE_LEN} bytes without control characters")]
    BadScope { field: &'static str, value: String },
}

impl KeyError {
    /// The field of a new key the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            KeyError::BadTenant(_) => Some("tenant"),
            KeyError::ExpiryInPast(_) => Some("expires_at"),
            KeyError::MissingScope { field, .. }
            | KeyError::ScopeNotForRole { field, .. }
            | KeyError::BadScope { field, .. } => Some(field),
            KeyError::Store { .. } | KeyError::NotFound(_) | KeyError::AlreadyRevoked(_) => None,
        }
    }
}

/// Why a key that once authenticated no longer does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyLapse {
    #[error("was revoked at {0}")]
    Revoked(String),
    #[error("expired at {0}")]
    Expired(String),
    #[error("no longer exists in the key store")]
    Gone,
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
    /// Key id → last use (Unix seconds) not yet written to the file.
    last_used: Mutex<HashMap<String, i64>>,
    /// Serializes this process's read-modify-write cycles of the file.
    write_lock: Mutex<()>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
            last_used: Mutex::new(HashMap::new()),
            write_lock: Mutex::new(()),
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
        self.create_key(NewKey {
            label,
            ..NewKey::unscoped(tenant, role)
        })
    }

    /// Creates a key, optionally expiring, and returns its full text.
    pub fn create_key(&self, new: NewKey) -> Result<(KeyRecord, String), KeyError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read_file()?;
        let (record, key) = self.new_record(new, None)?;
        file.keys.push(record.clone());
        self.write_file(&file)?;
        Ok((record, key))
    }

    fn new_record(&self, new: NewKey, rotated_from: Option<String>) -> Result<(KeyRecord, String), KeyError> {
        if new.tenant != "*" && !model::TenantId::is_valid(&new.tenant) {
            return Err(KeyError::BadTenant(new.tenant));
        }
        new.check_scope()?;
        let now = chrono::Utc::now();
        if let Some(e) = new.expires_at.filter(|e| *e <= now) {
            return Err(KeyError::ExpiryInPast(rfc3339(e)));
        }
        let id = hex(&rand::random::<[u8; 8]>());
        let secret = hex(&rand::random::<[u8; 32]>());
        let record = KeyRecord {
            id: id.clone(),
            tenant: new.tenant,
            role: new.role,
            secret_sha256: sha256_hex(&secret),
            created_at: rfc3339(now),
            label: new.label,
            expires_at: new.expires_at.map(rfc3339),
            revoked_at: None,
            last_used_at: None,
            rotated_from,
            team: new.team,
            agent_id: new.agent_id,
        };
        Ok((record, format!("cxk_{id}_{secret}")))
    }

    /// Every key of the store (revoked ones too), with the freshest
    /// last-used times; the hashes are blanked.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let mut keys = self.read_file()?.keys;
        let used = self.last_used.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for k in &mut keys {
            k.secret_sha256.clear();
            if let Some(t) = used.get(&k.id).and_then(|s| chrono::DateTime::from_timestamp(*s, 0)) {
                k.last_used_at = Some(rfc3339(t));
            }
        }
        Ok(keys)
    }

    /// One key's record (hash blanked), if it exists.
    pub fn get(&self, id: &str) -> Result<Option<KeyRecord>, KeyError> {
        Ok(self.list()?.into_iter().find(|k| k.id == id))
    }

    /// Revokes a key; it gets 401 from now on. Returns the revoked record.
    pub fn revoke(&self, id: &str) -> Result<KeyRecord, KeyError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read_file()?;
        let record = file
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::NotFound(id.into()))?;
        if record.revoked_at.is_some() {
            return Err(KeyError::AlreadyRevoked(id.into()));
        }
        record.revoked_at = Some(rfc3339(chrono::Utc::now()));
        let mut out = record.clone();
        self.write_file(&file)?;
        out.secret_sha256.clear();
        Ok(out)
    }

    /// Replaces a key: a new key with the same tenant, role and label (and
    /// `expires_at`, or the old expiry when `None`), and the old one
    /// revoked, in one write. Returns the new record and its full text.
    pub fn rotate(
        &self,
        id: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(KeyRecord, String), KeyError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.read_file()?;
        let old = file
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::NotFound(id.into()))?;
        if old.revoked_at.is_some() {
            return Err(KeyError::AlreadyRevoked(id.into()));
        }
        let old_expiry = old
            .expires_at
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .map(|e| e.with_timezone(&chrono::Utc))
            .filter(|e| *e > chrono::Utc::now());
        let new = NewKey {
            tenant: old.tenant.clone(),
            role: old.role,
            label: old.label.clone(),
            expires_at: expires_at.or(old_expiry),
            team: old.team.clone(),
            agent_id: old.agent_id.clone(),
        };
        let (record, key) = self.new_record(new, Some(id.to_string()))?;
        old.revoked_at = Some(record.created_at.clone());
        file.keys.push(record.clone());
        self.write_file(&file)?;
        Ok((record, key))
    }

    /// Writes the last-used times gathered since the previous call into the
    /// file (one atomic rewrite; nothing when no key was used).
    pub fn persist_last_used(&self) -> Result<(), KeyError> {
        let used = std::mem::take(&mut *self.last_used.lock().unwrap_or_else(|p| p.into_inner()));
        if used.is_empty() {
            return Ok(());
        }
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| {
            let mut file = self.read_file()?;
            for k in &mut file.keys {
                if let Some(t) = used.get(&k.id).and_then(|s| chrono::DateTime::from_timestamp(*s, 0)) {
                    k.last_used_at = Some(rfc3339(t));
                }
            }
            self.write_file(&file)
        })();
        if result.is_err() {
            // Keep them for the next attempt (newer uses win).
            let mut pending = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
            for (id, t) in used {
                pending.entry(id).or_insert(t);
            }
        }
        result
    }

    fn write_file(&self, file: &KeyFile) -> Result<(), KeyError> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| self.store_err(e))?;
        crate::fsutil::write_atomic(&self.path, &bytes).map_err(|e| self.store_err(e))?;
        // Two writes within one mtime tick must not hide the second.
        self.cache.write().unwrap_or_else(|p| p.into_inner()).0 = None;
        Ok(())
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
        if !record.is_live() {
            return None;
        }
        Some(self.principal_of(record))
    }

    /// The principal of a live key by its id, for a dashboard session that
    /// checked the secret at sign-in; `None` once the key is revoked or
    /// expired (or gone), so that ends the session too.
    pub fn principal_by_id(&self, id: &str) -> Option<Principal> {
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let record = cache.1.get(id).filter(|r| r.is_live())?;
        Some(self.principal_of(record))
    }

    /// Who a live key is; records the use.
    fn principal_of(&self, record: &KeyRecord) -> Principal {
        let tenant = record.scope();
        let conversations = record.conversation_scope();
        let now = chrono::Utc::now().timestamp();
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.id.clone(), now);
        Principal {
            key_id: record.id.clone(),
            tenant,
            role: record.role,
            conversations,
        }
    }

    /// Whether the key `id` still authenticates now, and if not why: for
    /// sessions that outlive one request (Postgres connections), which
    /// re-check their key before each statement. A lookup in the cached
    /// store; the file is re-read only when it changed.
    pub fn standing(&self, id: &str) -> Result<(), KeyLapse> {
        self.refresh();
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let Some(record) = cache.1.get(id) else {
            return Err(KeyLapse::Gone);
        };
        if let Some(at) = &record.revoked_at {
            return Err(KeyLapse::Revoked(at.clone()));
        }
        if record.expired_at(chrono::Utc::now()) {
            return Err(KeyLapse::Expired(record.expires_at.clone().unwrap_or_default()));
        }
        Ok(())
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

/// Refuses a key whose role is not among `allowed`, saying which would do.
pub fn require_role(p: &Principal, allowed: &[Role], what: &str) -> Result<(), crate::error::ServiceError> {
    if allowed.contains(&p.role) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        let roles = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        Err(crate::error::ServiceError::forbidden(format!(
            "{what} needs a key with role {roles}; this key has role {}",
            p.role
        )))
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
    fn standing_says_why_a_key_lapsed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = KeyStore::open(dir.path());
        let (live, _) = store
            .create("acme", Role::Analyst, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let (revoked, _) = store
            .create("acme", Role::Analyst, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let (expiring, _) = store
            .create("acme", Role::Analyst, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.standing(&live.id), Ok(()));
        store.revoke(&revoked.id).unwrap_or_else(|e| panic!("{e}"));
        // Expiry in the past cannot be created; write it as another process would.
        let path = dir.path().join("keys.json");
        let mut file: KeyFile =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        for k in &mut file.keys {
            if k.id == expiring.id {
                k.expires_at = Some("2020-01-01T00:00:00Z".into());
            }
        }
        std::fs::write(&path, serde_json::to_vec(&file).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.standing(&live.id), Ok(()));
        assert!(matches!(store.standing(&revoked.id), Err(KeyLapse::Revoked(_))));
        assert_eq!(
            store.standing(&expiring.id),
            Err(KeyLapse::Expired("2020-01-01T00:00:00Z".into()))
        );
        assert_eq!(store.standing("nope"), Err(KeyLapse::Gone));
    }

    #[test]
    fn bad_tenants_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            KeyStore::open(dir.path()).create("Acme Inc", Role::Admin, None),
            Err(KeyError::BadTenant(_))
        ));
    }

    #[test]
    fn revoked_rotated_and_expired_keys_stop_working() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = KeyStore::open(dir.path());
        let (a, key_a) = store
            .create("acme", Role::Analyst, Some("bi".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let (b, key_b) = store.rotate(&a.id, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.authenticate(&key_a).is_none(), "the rotated key is revoked");
        let p = store
            .authenticate(&key_b)
            .unwrap_or_else(|| panic!("the new key works"));
        assert_eq!(
            (p.role, b.label.as_deref(), b.rotated_from.as_deref()),
            (Role::Analyst, Some("bi"), Some(a.id.as_str()))
        );
        store.revoke(&b.id).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.authenticate(&key_b).is_none());
        assert!(matches!(store.revoke(&b.id), Err(KeyError::AlreadyRevoked(_))));
        assert!(matches!(store.revoke("nope"), Err(KeyError::NotFound(_))));

        // An expiry in the past is refused at creation; one that passes
        // while the key is stored makes it fail.
        let past = chrono::Utc::now() - chrono::Duration::seconds(5);
        let new = |expires_at| NewKey {
            expires_at,
            ..NewKey::unscoped("acme", Role::Admin)
        };
        assert!(matches!(
            store.create_key(new(Some(past))),
            Err(KeyError::ExpiryInPast(_))
        ));
        let (c, key_c) = store
            .create_key(new(Some(chrono::Utc::now() + chrono::Duration::days(1))))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.authenticate(&key_c).is_some());
        let mut file = store.read_file().unwrap_or_else(|e| panic!("{e}"));
        for k in file.keys.iter_mut().filter(|k| k.id == c.id) {
            k.expires_at = Some(rfc3339(past));
        }
        store.write_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.authenticate(&key_c).is_none(), "expired");
    }

    #[test]
    fn last_use_is_kept_in_memory_until_persisted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = KeyStore::open(dir.path());
        let (rec, key) = store
            .create("acme", Role::Service, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.authenticate(&key).is_some());
        let listed = store.get(&rec.id).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            listed
                .as_ref()
                .is_some_and(|k| k.last_used_at.is_some() && k.secret_sha256.is_empty())
        );
        let on_disk = |s: &KeyStore| {
            s.read_file().unwrap_or_else(|e| panic!("{e}")).keys[0]
                .last_used_at
                .clone()
        };
        assert_eq!(on_disk(&store), None, "no write per request");
        store.persist_last_used().unwrap_or_else(|e| panic!("{e}"));
        assert!(on_disk(&store).is_some());
    }

    #[test]
    fn supervisor_and_agent_keys_carry_their_scope() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = KeyStore::open(dir.path());
        let scoped = |role, team: Option<&str>, agent: Option<&str>| NewKey {
            team: team.map(str::to_string),
            agent_id: agent.map(str::to_string),
            ..NewKey::unscoped("acme", role)
        };
        let field = |r: Result<(KeyRecord, String), KeyError>| r.err().and_then(|e| e.field());
        assert_eq!(
            field(store.create_key(scoped(Role::Supervisor, None, None))),
            Some("team")
        );
        assert_eq!(
            field(store.create_key(scoped(Role::Agent, None, None))),
            Some("agent_id")
        );
        assert_eq!(
            field(store.create_key(scoped(Role::Agent, Some("t1"), Some("a1")))),
            Some("team"),
            "a team on an agent key would read as a scope it does not have"
        );
        assert_eq!(
            field(store.create_key(scoped(Role::Analyst, None, Some("a1")))),
            Some("agent_id")
        );
        assert_eq!(
            field(store.create_key(scoped(Role::Supervisor, Some(""), None))),
            Some("team")
        );

        let (sup, sup_key) = store
            .create_key(scoped(Role::Supervisor, Some("billing"), None))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = store.authenticate(&sup_key).unwrap_or_else(|| panic!("works"));
        assert_eq!(p.conversations, ConversationScope::Team("billing".into()));
        let (_, agent_key) = store
            .create_key(scoped(Role::Agent, None, Some("a7")))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = store.authenticate(&agent_key).unwrap_or_else(|| panic!("works"));
        assert_eq!(p.conversations, ConversationScope::Agent("a7".into()));
        let (rotated, _) = store.rotate(&sup.id, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rotated.team.as_deref(), Some("billing"), "rotation keeps the team");

        // A file written before keys carried a scope still loads; its
        // supervisor reaches no conversations, its analyst all of them.
        let old = r#"{"keys": [
            {"id": "00000000000000a1", "tenant": "acme", "role": "supervisor", "secret_sha256": "SUP", "created_at": "2026-01-01T00:00:00Z"},
            {"id": "00000000000000a2", "tenant": "acme", "role": "analyst", "secret_sha256": "ANA", "created_at": "2026-01-01T00:00:00Z"}
        ]}"#
        .replace("SUP", &sha256_hex("s1"))
        .replace("ANA", &sha256_hex("s2"));
        let file: KeyFile = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
        store.write_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let scope = |k: &str| store.authenticate(k).map(|p| p.conversations);
        assert_eq!(scope("cxk_00000000000000a1_s1"), Some(ConversationScope::Unassigned));
        assert_eq!(scope("cxk_00000000000000a2_s2"), Some(ConversationScope::Tenant));
    }
}
