//! Personal data at rest: per-tenant secret keys, pseudonymous customer
//! ids, encrypted or dropped free text, and the tombstones of erased
//! customers.
//!
//! Everything here happens *before* the write-ahead log, so a setting that
//! says "encrypt" or "pseudonymize" means the raw bytes never reach a file.
//!
//! ## The tenant key
//!
//! `<data_dir>/privacy/keys/<tenant>.key`: 32 random bytes as 64 hex
//! characters, created on first use with mode 0600 and fsynced (file and
//! directory). Two subkeys are derived from it with HMAC-SHA256 (one for
//! MACs, one for AES-256-GCM), so no key is used for two purposes.
//! Losing the file loses the ability to decrypt the tenant's free text and
//! to recompute pseudonyms; deleting it on purpose is crypto-shredding.
//!
//! ## Free text
//!
//! CSAT `comment` and the free text inside `attrs` are, per the tenant's
//! [`FreeText`] setting, stored as sent, encrypted (`enc:v1:` + base64 of a
//! random 96-bit nonce, the ciphertext and the GCM tag; the tenant id is
//! the associated data, so a value copied into another tenant does not
//! decrypt), or not stored at all.
//!
//! Free text in `attrs` is every string, at any depth, under a key that
//! names free text ([`names_free_text`]: one of its words is in
//! [`TEXT_ATTRS`]) or under such a key's object or array:
//! `{"message": {"text": "…", "lang": "en"}}` is free text through and
//! through, and so is `{"customer_note": "…"}`. Clients nest data as they
//! like (unknown top-level fields land in `attrs` as sent, objects
//! included) or as JSON text inside a string, so a string that holds a JSON
//! object or array is read and searched the same way. Numbers and booleans
//! are never text.
//!
//! ## Pseudonyms
//!
//! With `pseudonymize_customer_ids`, `customer_id` and `unit_id` (the
//! experiment unit, the customer by default) are replaced by
//! `psn_` + 32 hex characters of HMAC-SHA256(tenant key, id): the same
//! customer always maps to the same pseudonym, so every KPI still counts
//! customers, and without the key no one can go back or test a guess.
//!
//! ## Tombstones
//!
//! `<data_dir>/privacy/tombstones.jsonl`, appended and fsynced before an
//! erasure touches any data: one line per erased customer value (raw id
//! and pseudonym) and per erased conversation, each as a keyed hash
//! (never the id), with the erasure's time and receipt. Ingest drops
//! events of an erased conversation, and events of an erased customer that
//! occurred before the erasure (a retry or a late delivery of old data; a
//! customer who comes back later is a new customer).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::contract::Event;

/// Prefix of an encrypted free-text value (format version 1).
pub const ENCRYPTED_PREFIX: &str = "enc:v1:";
/// Prefix of a pseudonymous customer id.
pub const PSEUDONYM_PREFIX: &str = "psn_";
/// Words that make a key inside `attrs` hold free text (like `comment`):
/// message text, notes, descriptions, e-mail parts, transcripts. A key's
/// words are its parts between `_`, `-`, `.` or spaces and at lower-to-upper
/// case changes, lower-cased: `customer_note`, `messageText` and `Body`
/// all name free text.
pub const TEXT_ATTRS: &[&str] = &[
    "text",
    "content",
    "body",
    "message",
    "messages",
    "note",
    "notes",
    "comment",
    "comments",
    "description",
    "subject",
    "html",
    "transcript",
    "summary",
    "caption",
    "feedback",
];

/// Last words that make a key describe text rather than hold it
/// (`message_id`, `body_length`, `text_lang`): such a key alone is not free
/// text, though under a free-text key everything is.
const DESCRIBES_TEXT: &[&str] = &[
    "id", "ids", "count", "length", "len", "chars", "size", "bytes", "type", "kind", "lang", "language", "locale",
    "format", "status", "at", "s", "ms",
];

/// Whether a key inside `attrs` names free text (see [`TEXT_ATTRS`]).
pub fn names_free_text(key: &str) -> bool {
    let words = key_words(key);
    words
        .last()
        .is_some_and(|last| !DESCRIBES_TEXT.contains(&last.as_str()))
        && words.iter().any(|w| TEXT_ATTRS.contains(&w.as_str()))
}

/// A key's lower-cased words (see [`TEXT_ATTRS`]).
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut after_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            after_lower = false;
            continue;
        }
        if c.is_uppercase() && after_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
        after_lower = c.is_lowercase() || c.is_numeric();
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Errors of the privacy store.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("privacy store {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the system random number generator failed")]
    Random,
    #[error("an encrypted value does not decrypt with this tenant's key (damaged, or from another tenant)")]
    Decrypt,
}

pub type Result<T, E = PrivacyError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrivacyError + '_ {
    move |source| PrivacyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What happens to free text (CSAT comments, message text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeText {
    /// Stored as sent.
    #[default]
    Store,
    /// Encrypted with AES-256-GCM under the tenant key.
    Encrypt,
    /// Not stored at all.
    Drop,
}

/// One tenant's rules for personal data at rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivacyPolicy {
    pub free_text: FreeText,
    pub pseudonymize_customer_ids: bool,
}

impl PrivacyPolicy {
    /// Whether events pass unchanged.
    pub fn is_plain(&self) -> bool {
        *self == PrivacyPolicy::default()
    }
}

/// Where the pipeline asks for a tenant's policy (the `api` crate answers
/// from the tenant settings). Called once per tenant per ingested batch.
pub type PolicySource = Arc<dyn Fn(&str) -> PrivacyPolicy + Send + Sync>;

/// A keyed hash (HMAC-SHA256) of one erased value.
pub type ErasedHash = [u8; 32];

/// One tenant's secret, with its derived MAC and encryption keys.
pub struct TenantKey {
    mac: hmac::Key,
    aead: LessSafeKey,
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKey(..)")
    }
}

impl TenantKey {
    /// Derives the subkeys from a 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> TenantKey {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mac = hmac::sign(&master, b"cxlake mac v1");
        let enc = hmac::sign(&master, b"cxlake aead v1");
        let aead = UnboundKey::new(&AES_256_GCM, enc.as_ref())
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a SHA-256 tag is a valid AES-256 key"));
        TenantKey {
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac.as_ref()),
            aead,
        }
    }

    fn tag(&self, domain: &str, value: &str) -> ErasedHash {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(domain.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The pseudonym stored in place of a customer id.
    pub fn pseudonym(&self, id: &str) -> String {
        let tag = self.tag("pseudonym", id);
        format!("{PSEUDONYM_PREFIX}{}", hex(&tag[..16]))
    }

    /// The tombstone hash of a customer value (raw id or pseudonym).
    pub fn customer_hash(&self, value: &str) -> ErasedHash {
        self.tag("customer", value)
    }

    /// The tombstone hash of a conversation id.
    pub fn conversation_hash(&self, id: &str) -> ErasedHash {
        self.tag("conversation", id)
    }

    /// `enc:v1:<base64(nonce ‖ ciphertext ‖ tag)>`; `tenant` is bound as
    /// associated data.
    pub fn encrypt(&self, tenant: &str, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| PrivacyError::Random)?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(tenant.as_bytes()),
                &mut buf,
            )
            .map_err(|_| PrivacyError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!(
            "{ENCRYPTED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// The plaintext of a value written by [`TenantKey::encrypt`]; a value
    /// without the prefix was stored in the clear and comes back as it is.
    pub fn decrypt(&self, tenant: &str, stored: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(ENCRYPTED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| PrivacyError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(PrivacyError::Decrypt);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(tenant.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| PrivacyError::Decrypt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| PrivacyError::Decrypt)
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Applies `policy` to one event in place (the tenant key is only needed
/// when the policy is not plain).
pub fn apply_policy(policy: PrivacyPolicy, key: &TenantKey, e: &mut Event) -> Result<()> {
    if policy.pseudonymize_customer_ids {
        for id in [&mut e.customer_id, &mut e.unit_id].into_iter().flatten() {
            *id = key.pseudonym(id);
        }
    }
    match policy.free_text {
        FreeText::Store => {}
        FreeText::Drop => {
            e.comment = None;
            edit_text_attrs(&mut e.attrs, |_| Ok(None))?;
        }
        FreeText::Encrypt => {
            let tenant = e.tenant_id.clone();
            if let Some(c) = &mut e.comment {
                *c = key.encrypt(&tenant, c)?;
            }
            edit_text_attrs(&mut e.attrs, |text| key.encrypt(&tenant, text).map(Some))?;
        }
    }
    Ok(())
}

/// Replaces (or, on `None`, removes) every free-text string in the `attrs`
/// JSON object text: every string under a key that [`names_free_text`], at
/// any depth, through objects, arrays and JSON text held in strings.
pub fn edit_text_attrs(attrs: &mut String, mut f: impl FnMut(&str) -> Result<Option<String>>) -> Result<()> {
    if attrs.is_empty() {
        return Ok(());
    }
    // Not pre-filtered by searching the text for the key names: a key may
    // be spelled with JSON escapes (`"\u0074ext"`) or in upper case.
    let Ok(mut value @ serde_json::Value::Object(_)) = serde_json::from_str::<serde_json::Value>(attrs) else {
        return Ok(());
    };
    if edit_text_value(&mut value, false, &mut f)? {
        *attrs = match &value {
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            _ => value.to_string(),
        };
    }
    Ok(())
}

/// [`edit_text_attrs`] on one value; `in_text` when a key above it names
/// free text. Returns whether anything changed.
fn edit_text_value(
    value: &mut serde_json::Value,
    in_text: bool,
    f: &mut impl FnMut(&str) -> Result<Option<String>>,
) -> Result<bool> {
    use serde_json::Value;
    let mut changed = false;
    match value {
        Value::Object(map) => {
            let mut removed = Vec::new();
            for (k, child) in map.iter_mut() {
                let text = in_text || names_free_text(k);
                match child {
                    Value::String(s) if text => {
                        match f(s)? {
                            Some(new) => *s = new,
                            None => removed.push(k.clone()),
                        }
                        changed = true;
                    }
                    other => changed |= edit_text_value(other, text, f)?,
                }
            }
            for k in removed {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                match &mut item {
                    Value::String(s) if in_text => {
                        changed = true;
                        if let Some(new) = f(s)? {
                            *s = new;
                            kept.push(item);
                        }
                    }
                    other => {
                        changed |= edit_text_value(other, in_text, f)?;
                        kept.push(item);
                    }
                }
            }
            *items = kept;
        }
        // JSON text inside a string (`"payload": "{\"text\": …}"`) is
        // searched as if it had been sent as an object.
        Value::String(s) if s.trim_start().starts_with(['{', '[']) => {
            if let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(s) {
                if edit_text_value(&mut inner, false, f)? {
                    *s = inner.to_string();
                    changed = true;
                }
            }
        }
        _ => {}
    }
    Ok(changed)
}

/// What a tombstone line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TombstoneKind {
    Customer,
    Conversation,
}

/// One line of `tombstones.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    pub tenant: String,
    pub kind: TombstoneKind,
    /// Hex of the keyed hash ([`TenantKey::customer_hash`] or
    /// [`TenantKey::conversation_hash`]).
    pub hash: String,
    pub erased_at_us: i64,
    pub receipt: String,
}

#[derive(Debug, Default)]
struct TenantTombstones {
    /// Customer value hash → erasure time.
    customers: HashMap<ErasedHash, i64>,
    conversations: HashMap<ErasedHash, i64>,
}

/// Keys, policies and tombstones of one data directory.
pub struct Privacy {
    dir: PathBuf,
    keys: Mutex<HashMap<String, Arc<TenantKey>>>,
    tombstones: RwLock<HashMap<String, TenantTombstones>>,
    /// Serializes appends to the tombstone file.
    append: Mutex<()>,
    policy: RwLock<Option<PolicySource>>,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy").field("dir", &self.dir).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

impl Privacy {
    /// Opens `<data_dir>/privacy/` and loads the tombstones.
    pub fn open(data_dir: &Path) -> Result<Privacy> {
        let dir = data_dir.join("privacy");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let p = Privacy {
            dir,
            keys: Mutex::default(),
            tombstones: RwLock::default(),
            append: Mutex::default(),
            policy: RwLock::default(),
        };
        let path = p.tombstone_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut all = p.tombstones.write().unwrap_or_else(|e| e.into_inner());
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let t: Tombstone = match serde_json::from_str(line) {
                Ok(t) => t,
                // A torn last line is an append that was never acknowledged.
                Err(_) if n + 1 == text.lines().count() && !text.ends_with('\n') => break,
                Err(e) => {
                    return Err(PrivacyError::Corrupt {
                        path,
                        detail: format!("line {}: {e}", n + 1),
                    });
                }
            };
            insert(&mut all, &t);
        }
        drop(all);
        Ok(p)
    }

    fn tombstone_path(&self) -> PathBuf {
        self.dir.join("tombstones.jsonl")
    }

    /// The tenant's key, created (0600, fsynced) on first use.
    pub fn key(&self, tenant: &str) -> Result<Arc<TenantKey>> {
        let mut keys = lock(&self.keys);
        if let Some(k) = keys.get(tenant) {
            return Ok(k.clone());
        }
        let dir = self.dir.join("keys");
        let path = dir.join(format!("{tenant}.key"));
        if !model::TenantId::is_valid(tenant) {
            return Err(PrivacyError::Corrupt {
                path,
                detail: "not a tenant id".into(),
            });
        }
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => unhex::<32>(text.trim()).ok_or_else(|| PrivacyError::Corrupt {
                path: path.clone(),
                detail: "a tenant key file holds 64 hex characters".into(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut secret)
                    .map_err(|_| PrivacyError::Random)?;
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&path).map_err(io_err(&path))?;
                f.write_all(format!("{}\n", hex(&secret)).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(io_err(&path))?;
                sync_dir(&dir)?;
                sync_dir(&self.dir)?;
                secret
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let key = Arc::new(TenantKey::from_secret(&secret));
        keys.insert(tenant.to_string(), key.clone());
        Ok(key)
    }

    /// Installs where tenant policies come from (default: plain for all).
    pub fn set_policy_source(&self, source: PolicySource) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// The tenant's current policy.
    pub fn policy(&self, tenant: &str) -> PrivacyPolicy {
        let source = self.policy.read().unwrap_or_else(|e| e.into_inner()).clone();
        source.map(|s| s(tenant)).unwrap_or_default()
    }

    /// Appends tombstones durably (fsync) and makes them effective.
    pub fn add_tombstones(&self, entries: &[Tombstone]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = self.tombstone_path();
        let mut text = String::new();
        for t in entries {
            text.push_str(&serde_json::to_string(t).unwrap_or_default());
            text.push('\n');
        }
        {
            let _one_writer = lock(&self.append);
            let existed = path.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(io_err(&path))?;
            if !existed {
                sync_dir(&self.dir)?;
            }
        }
        let mut all = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        for t in entries {
            insert(&mut all, t);
        }
        Ok(())
    }

    /// Splits a batch into the events to keep and the line numbers of the
    /// events an erasure forbids (see the module docs).
    pub fn drop_erased(&self, events: Vec<(usize, Event)>) -> Result<(Vec<(usize, Event)>, Vec<usize>)> {
        let all = self.tombstones.read().unwrap_or_else(|e| e.into_inner());
        if all.is_empty() {
            return Ok((events, Vec::new()));
        }
        let mut keep = Vec::with_capacity(events.len());
        let mut erased = Vec::new();
        for (line, e) in events {
            let Some(t) = all.get(&e.tenant_id) else {
                keep.push((line, e));
                continue;
            };
            let key = self.key(&e.tenant_id)?;
            let conversation_gone = e
                .conversation_id
                .as_deref()
                .is_some_and(|c| t.conversations.contains_key(&key.conversation_hash(c)));
            let customer_gone = [&e.customer_id, &e.unit_id].into_iter().flatten().any(|v| {
                t.customers
                    .get(&key.customer_hash(v))
                    .is_some_and(|erased_at| e.occurred_at_us < *erased_at)
            });
            if conversation_gone || customer_gone {
                erased.push(line);
            } else {
                keep.push((line, e));
            }
        }
        Ok((keep, erased))
    }

    /// Applies each tenant's policy to the events (before the WAL).
    pub fn protect(&self, events: &mut [(usize, Event)]) -> Result<()> {
        let mut policies: HashMap<String, PrivacyPolicy> = HashMap::new();
        for (_, e) in events.iter_mut() {
            let policy = match policies.get(&e.tenant_id) {
                Some(p) => *p,
                None => {
                    let p = self.policy(&e.tenant_id);
                    policies.insert(e.tenant_id.clone(), p);
                    p
                }
            };
            if policy.is_plain() {
                continue;
            }
            let key = self.key(&e.tenant_id)?;
            apply_policy(policy, &key, e)?;
        }
        Ok(())
    }
}

fn insert(all: &mut HashMap<String, TenantTombstones>, t: &Tombstone) {
    let Some(hash) = unhex::<32>(&t.hash) else { return };
    let tenant = all.entry(t.tenant.clone()).or_default();
    let map = match t.kind {
        TombstoneKind::Customer => &mut tenant.customers,
        TombstoneKind::Conversation => &mut tenant.conversations,
    };
    let at = map.entry(hash).or_insert(t.erased_at_us);
    *at = (*at).max(t.erased_at_us);
}

#[cfg(test)]
mod tests;
