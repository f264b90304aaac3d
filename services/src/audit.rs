//! The audit log: who did what, when, from where — append-only and
//! tamper-evident.
//!
//! # On disk
//!
//! `<data>/audit/audit-YYYY-MM.jsonl`, one file per month (UTC) so that
//! retention is a matter of keeping files: nothing here ever deletes one
//! (the promise is at least a year). Each line is one JSON [`Record`]:
//!
//! ```text
//! {"seq":7,"time":"2026-11-21T06:01:02.345Z","tenant":"acme",
//!  "actor":{"key_id":"3f…","tenant":"acme","role":"analyst"},
//!  "action":"sql.query","target":"http","detail":{"sql":"SELECT …","rows":3},
//!  "source":"127.0.0.1:51234","prev_hash":"…","hash":"…"}
//! ```
//!
//! `hash` is SHA-256 over `prev_hash`, a newline, and the record without
//! its `hash` field serialized canonically (keys sorted, no whitespace);
//! `prev_hash` is the previous record's `hash` (64 zeros for the first)
//! and `seq` counts from 1 across files. Editing a record breaks its hash;
//! deleting one breaks the next record's `seq` and `prev_hash`. Truncating
//! the newest records is the one change a chain alone cannot show: ship
//! the log (or its latest hash) elsewhere if that matters.
//!
//! # Durability
//!
//! [`AuditLog::record`] returns once the line is fsynced. Concurrent
//! records share fsyncs: whoever takes the file lock writes every record
//! queued so far and syncs once (group commit), so a burst of SQL queries
//! costs one fsync per burst rather than per query.
//!
//! `tenant` is the tenant acted on (`*` for platform-wide acts and for
//! failed sign-ins that name no key): a tenant's admins read the records
//! of their tenant, platform admins read all.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::keys::Principal;

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted: the key (when one was presented and known).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub key_id: Option<String>,
    pub tenant: String,
    pub role: Option<String>,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub time: String,
    pub tenant: String,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: Value,
    pub source: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// What a caller records; the log adds seq, time and the chain.
#[derive(Clone, Debug)]
pub struct Entry {
    pub tenant: String,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: Value,
    /// Taken from the request (see [`source_layer`]) when `None`.
    pub source: Option<String>,
}

impl Entry {
    /// An act of `principal`, on its own tenant (`*` for a platform-wide
    /// key; name the tenant acted on with [`Entry::on_tenant`]).
    pub fn by(principal: &Principal, action: &str, target: impl Into<String>, detail: Value) -> Entry {
        let tenant = principal.tenant.to_string();
        Entry {
            tenant: tenant.clone(),
            actor: Actor {
                key_id: Some(principal.key_id.clone()),
                tenant,
                role: Some(principal.role.as_str().to_string()),
            },
            action: action.into(),
            target: target.into(),
            detail,
            source: None,
        }
    }

    /// An act of nobody known (a refused sign-in); only platform admins see it.
    pub fn anonymous(action: &str, target: impl Into<String>, detail: Value) -> Entry {
        Entry {
            tenant: "*".into(),
            actor: Actor {
                key_id: None,
                tenant: "*".into(),
                role: None,
            },
            action: action.into(),
            target: target.into(),
            detail,
            source: None,
        }
    }

    pub fn on_tenant(mut self, tenant: impl Into<String>) -> Entry {
        self.tenant = tenant.into();
        self
    }

    pub fn from_addr(mut self, source: impl std::fmt::Display) -> Entry {
        self.source = Some(source.to_string());
        self
    }
}

/// Longest SQL text kept in a record (the rest is cut, with a marker).
pub const MAX_SQL_CHARS: usize = 16 * 1024;

/// A `sql.query` record: the text, the rows returned (`None` when the
/// result streams and the count is not known yet), over which tenant.
pub fn sql_query(
    principal: &Principal,
    scope: &warehouse::sandbox::Scope,
    via: &str,
    sql: &str,
    rows: Option<usize>,
) -> Entry {
    let tenant = match scope {
        warehouse::sandbox::Scope::Tenant(t) => t.clone(),
        warehouse::sandbox::Scope::Platform => "*".into(),
    };
    let text: String = if sql.chars().count() > MAX_SQL_CHARS {
        sql.chars().take(MAX_SQL_CHARS).chain("…[cut]".chars()).collect()
    } else {
        sql.to_string()
    };
    Entry::by(
        principal,
        "sql.query",
        via,
        serde_json::json!({ "sql": text, "rows": rows }),
    )
    .on_tenant(tenant)
}

/// A sign-in: `signin.success` for `principal`, or `signin.failure` under
/// the presented key's id (never its secret) with the reason.
pub fn sign_in(via: &str, outcome: Result<&Principal, (&str, &str)>) -> Entry {
    match outcome {
        Ok(p) => Entry::by(p, "signin.success", via, Value::Null),
        Err((presented, reason)) => Entry::anonymous(
            "signin.failure",
            via,
            serde_json::json!({ "key_id": presented_key_id(presented), "reason": reason }),
        ),
    }
}

/// The key id of a presented key text (`cxk_<id>_…`), never its secret:
/// what a refused sign-in is recorded under.
pub fn presented_key_id(presented: &str) -> String {
    presented
        .trim()
        .strip_prefix("cxk_")
        .and_then(|r| r.split_once('_'))
        .map(|(id, _)| id)
        .filter(|id| id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("")
        .to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("audit log {path} line {line}: {detail}")]
    Corrupt { path: PathBuf, line: usize, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a record given as JSON (its `hash` field is ignored).
fn hash_of(record: &Value) -> String {
    let mut v = record.clone();
    if let Value::Object(o) = &mut v {
        o.remove("hash");
    }
    let prev = v.get("prev_hash").and_then(Value::as_str).unwrap_or("").to_string();
    // serde_json's Map is a BTreeMap here: keys come out sorted, which
    // makes this serialization canonical.
    let canonical = v.to_string();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex(&h.finalize())
}

/// The month files of `dir`, oldest first.
fn month_files(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(dir)(e)),
    };
    files.sort();
    Ok(files)
}

fn file_name_for(time: &str) -> String {
    format!("audit-{}.jsonl", time.get(..7).unwrap_or("0000-00"))
}

#[derive(Debug)]
struct Tail {
    seq: u64,
    hash: String,
    /// The newest month file as this process last saw it: name, length,
    /// and (once we append to it) an open handle.
    newest: Option<(String, u64)>,
    file: Option<(String, File)>,
}

/// Where the chain on disk ends. Cuts a torn last line (a crash
/// mid-append, never acknowledged) when `repair`.
fn load_tail(dir: &Path, repair: bool) -> Result<Tail, AuditError> {
    let mut tail = Tail {
        seq: 0,
        hash: GENESIS_HASH.into(),
        newest: None,
        file: None,
    };
    let Some(last) = month_files(dir)?.pop() else {
        return Ok(tail);
    };
    let bytes = std::fs::read(&last).map_err(io_err(&last))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() && repair {
        tracing::warn!(file = %last.display(), "cutting a torn last audit line (a crash mid-append)");
        let f = OpenOptions::new().write(true).open(&last).map_err(io_err(&last))?;
        f.set_len(complete as u64).map_err(io_err(&last))?;
        f.sync_all().map_err(io_err(&last))?;
    }
    let text = String::from_utf8_lossy(&bytes[..complete]);
    if let Some((n, line)) = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).last() {
        let r: Record = serde_json::from_str(line).map_err(|e| AuditError::Corrupt {
            path: last.clone(),
            line: n + 1,
            detail: e.to_string(),
        })?;
        tail.seq = r.seq;
        tail.hash = r.hash;
    }
    let name = last.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    tail.newest = Some((name, complete as u64));
    Ok(tail)
}

/// The newest month file's name and length now.
fn newest_on_disk(dir: &Path) -> Result<Option<(String, u64)>, AuditError> {
    let Some(last) = month_files(dir)?.pop() else {
        return Ok(None);
    };
    let len = std::fs::metadata(&last).map_err(io_err(&last))?.len();
    Ok(Some((
        last.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
        len,
    )))
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Entries waiting for the writer.
    queue: Mutex<Vec<Entry>>,
    tail: Mutex<Tail>,
    /// `audit/.lock`, locked while appending: the CLI (`cxlake key …`)
    /// appends to the same chain while a server runs.
    lock_file: File,
}

/// The audit log of one data directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl AuditLog {
    /// Opens (creating) `<data_dir>/audit/` and finds where the chain ends.
    /// A torn last line (a crash mid-append, never acknowledged) is cut off.
    pub fn open(data_dir: &Path) -> Result<AuditLog, AuditError> {
        let dir = data_dir.join("audit");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join(".lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock_file.lock().map_err(io_err(&lock_path))?;
        let tail = load_tail(&dir, true);
        let _ = lock_file.unlock();
        Ok(AuditLog {
            inner: Arc::new(Inner {
                dir,
                queue: Mutex::new(Vec::new()),
                tail: Mutex::new(tail?),
                lock_file,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends one record and returns once it is fsynced. Failures are
    /// logged, not returned: the act itself already happened.
    pub async fn record(&self, mut entry: Entry) {
        if entry.source.is_none() {
            entry.source = SOURCE.try_with(|s| s.clone()).ok().flatten();
        }
        let log = self.clone();
        let action = entry.action.clone();
        match tokio::task::spawn_blocking(move || log.append_blocking(entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, %action, "audit record NOT written"),
            Err(e) => tracing::error!(error = %e, %action, "audit record NOT written"),
        }
    }

    /// Appends one record durably (group commit with concurrent callers).
    pub fn append_blocking(&self, entry: Entry) -> Result<(), AuditError> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
        let mut tail = self.inner.tail.lock().unwrap_or_else(|p| p.into_inner());
        // Whoever holds the tail writes everything queued, ours included
        // unless an earlier holder already did (and synced it before
        // letting go of the tail).
        let batch = std::mem::take(&mut *self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let lock_path = self.inner.dir.join(".lock");
        self.inner.lock_file.lock().map_err(io_err(&lock_path))?;
        let result = self
            .sync_tail(&mut tail)
            .and_then(|()| self.write_batch(&mut tail, batch));
        let _ = self.inner.lock_file.unlock();
        result
    }

    /// Picks up records another process appended since our last write.
    fn sync_tail(&self, tail: &mut Tail) -> Result<(), AuditError> {
        let now = newest_on_disk(&self.inner.dir)?;
        if now != tail.newest {
            *tail = load_tail(&self.inner.dir, false)?;
        }
        Ok(())
    }

    fn write_batch(&self, tail: &mut Tail, batch: Vec<Entry>) -> Result<(), AuditError> {
        let mut seq = tail.seq;
        let mut hash = tail.hash.clone();
        // Lines per month file (a batch may straddle midnight of the 1st).
        let mut out: Vec<(String, String)> = Vec::new();
        for e in batch {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            seq += 1;
            let mut record = Record {
                seq,
                time: time.clone(),
                tenant: e.tenant,
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
                source: e.source,
                prev_hash: hash.clone(),
                hash: String::new(),
            };
            let value = serde_json::to_value(&record).map_err(|err| AuditError::Corrupt {
                path: self.inner.dir.clone(),
                line: 0,
                detail: err.to_string(),
            })?;
            record.hash = hash_of(&value);
            hash = record.hash.clone();
            let mut line = serde_json::to_string(&record).unwrap_or_default();
            line.push('\n');
            let name = file_name_for(&time);
            match out.last_mut() {
                Some((n, text)) if *n == name => text.push_str(&line),
                _ => out.push((name, line)),
            }
        }
        for (name, text) in out {
            let path = self.inner.dir.join(&name);
            if tail.file.as_ref().is_none_or(|(n, _)| *n != name) {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                // A new month file must survive a crash too.
                File::open(&self.inner.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&self.inner.dir))?;
                tail.file = Some((name.clone(), f));
            }
            if let Some((_, f)) = tail.file.as_mut() {
                f.write_all(text.as_bytes()).map_err(io_err(&path))?;
                f.sync_data().map_err(io_err(&path))?;
                let len = f.metadata().map_err(io_err(&path))?.len();
                tail.newest = Some((name, len));
            }
        }
        tail.seq = seq;
        tail.hash = hash;
        Ok(())
    }

    /// Records matching `filter`, oldest first, at most `filter.limit`
    /// (the newest ones when more match).
    pub fn query(&self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
        read_records(&self.inner.dir, filter)
    }
}

/// Records of the audit directory `dir` matching `filter` (see
/// [`AuditLog::query`]); reads the month files the bounds reach.
pub fn read_records(dir: &Path, filter: &Filter) -> Result<Vec<Record>, AuditError> {
    let mut hits = Vec::new();
    for path in month_files(dir)? {
        let month = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.get(6..13))
            .unwrap_or("")
            .to_string();
        if filter
            .from
            .as_deref()
            .is_some_and(|f| month.as_str() < f.get(..7).unwrap_or(""))
            || filter
                .to
                .as_deref()
                .is_some_and(|t| month.as_str() > t.get(..7).unwrap_or("9999"))
        {
            continue;
        }
        let f = File::open(&path).map_err(io_err(&path))?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io_err(&path))?;
            // A line being appended right now may be incomplete.
            let Ok(r) = serde_json::from_str::<Record>(&line) else {
                continue;
            };
            if filter.matches(&r) {
                hits.push(r);
            }
        }
    }
    if hits.len() > filter.limit {
        hits.drain(..hits.len() - filter.limit);
    }
    Ok(hits)
}

/// Which records [`AuditLog::query`] returns.
#[derive(Clone, Debug)]
pub struct Filter {
    /// Only this tenant's records; `None` for all.
    pub tenant: Option<String>,
    /// RFC 3339 bounds on `time`, inclusive `from`, exclusive `to`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// An action (`sql.query`) or a prefix ending in `.` (`key.`).
    pub action: Option<String>,
    pub limit: usize,
}

fn instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl Filter {
    fn matches(&self, r: &Record) -> bool {
        if self.tenant.as_deref().is_some_and(|t| r.tenant != t) {
            return false;
        }
        if let Some(a) = &self.action {
            let hit = if a.ends_with('.') {
                r.action.starts_with(a.as_str())
            } else {
                r.action == *a
            };
            if !hit {
                return false;
            }
        }
        let t = instant(&r.time);
        if self
            .from
            .as_deref()
            .and_then(instant)
            .is_some_and(|f| t.is_none_or(|t| t < f))
        {
            return false;
        }
        if self
            .to
            .as_deref()
            .and_then(instant)
            .is_some_and(|to| t.is_none_or(|t| t >= to))
        {
            return false;
        }
        true
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub records: u64,
    pub files: usize,
    pub last_hash: String,
}

/// The first record that does not verify.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file} line {line} (seq {seq}): {reason}")]
pub struct BadRecord {
    pub file: String,
    pub line: usize,
    /// The seq the record should have had.
    pub seq: u64,
    pub reason: String,
}

/// Walks the whole chain of `<data_dir>/audit/`.
pub fn verify(data_dir: &Path) -> Result<Verified, BadRecord> {
    let dir = data_dir.join("audit");
    let bad = |file: &Path, line: usize, seq: u64, reason: String| BadRecord {
        file: file.display().to_string(),
        line,
        seq,
        reason,
    };
    let files = month_files(&dir).map_err(|e| bad(&dir, 0, 0, e.to_string()))?;
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_string();
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| bad(path, 0, expected_seq, e.to_string()))?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let n = bytes.iter().filter(|b| **b == b'\n').count() + 1;
            return Err(bad(path, n, expected_seq, "the last line is incomplete".into()));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(path, 0, expected_seq, format!("not UTF-8: {e}")))?;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let here = |reason: String| bad(path, line_no, expected_seq, reason);
            let value: Value =
                serde_json::from_str(line).map_err(|e| here(format!("not a JSON record (edited?): {e}")))?;
            let record: Record =
                serde_json::from_value(value.clone()).map_err(|e| here(format!("not an audit record: {e}")))?;
            if record.seq != expected_seq {
                return Err(here(format!(
                    "seq is {}, expected {expected_seq}: record(s) deleted or reordered",
                    record.seq
                )));
            }
            if record.prev_hash != prev {
                return Err(here(
                    "prev_hash does not match the previous record's hash: a record before it was deleted or edited"
                        .into(),
                ));
            }
            if hash_of(&value) != record.hash {
                return Err(here("hash does not match the content: this record was edited".into()));
            }
            if file_name_for(&record.time) != path.file_name().and_then(|n| n.to_str()).unwrap_or("") {
                return Err(here("the record's time does not belong to this month file".into()));
            }
            prev = record.hash;
            expected_seq += 1;
        }
    }
    Ok(Verified {
        records: expected_seq - 1,
        files: files.len(),
        last_hash: prev,
    })
}

tokio::task_local! {
    /// The client address of the request being served.
    static SOURCE: Option<String>;
}

/// Runs `f` with `source` (the client address, and any proxy's
/// `X-Forwarded-For`) as the `source` of the audit records it makes.
pub async fn with_source<F: std::future::Future>(source: Option<String>, f: F) -> F::Output {
    SOURCE.scope(source, f).await
}

pub mod sql;

#[cfg(test)]
mod tests;
