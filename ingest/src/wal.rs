//! The write-ahead log: the one place where "acknowledged" is decided.
//!
//! Promise: [`Wal::append_durable`] returns only after the bytes of the
//! batch are in a file that has been `fdatasync`ed. Requests that arrive
//! while a sync is in flight are written and synced together (group
//! commit), so one fsync serves many clients.
//!
//! ## On-disk format
//!
//! `wal/` holds segment files `wal-<first seq, 20 digits>.log`. A segment is
//! a sequence of records:
//!
//! ```text
//! magic u32 LE = 0x32575843 ("CXW2") | len u32 LE | crc32 u32 LE | seq u64 LE | group u64 LE | payload[len]
//! ```
//!
//! `crc32` covers `seq`, `group` and the payload. The payload is the batch
//! as NDJSON of [`Event`] in its canonical serde form. `seq` numbers batches
//! from 1, densely and strictly increasing across segments; `group` is the
//! first `seq` of the group commit the record was written and fsynced with.
//! Records of the first format (magic "CXLW", no `group` field) are still
//! read, each as a group of its own.
//!
//! ## Recovery
//!
//! [`Wal::open`] reads every segment in order and decides, for damage it
//! finds, whether it can only be a write that was never acknowledged:
//!
//! - A group is written and fsynced before the next one starts, so an intact
//!   record of a *later* group behind a damaged record proves the damaged
//!   one was fsynced, i.e. acknowledged: that is an error, never a cut.
//!   Damage followed only by records of its own group (a crash mid-write
//!   can persist a group's pages out of order) is a torn tail: cut off.
//! - A failed append gives its sequence numbers back and the next append
//!   starts a new segment with them. So in a segment followed by one that
//!   starts at `n`, records numbered `n` or more, and damage where record
//!   `n` or later would be, are such a failed group: cut off. Damage where
//!   an earlier number belongs is an error.
//! - Numbers go on after both the log's last record and the lake's
//!   checkpoint (the last segment may be gone or empty); a log whose
//!   records after the checkpoint do not start right after it has lost
//!   acknowledged batches, and the log refuses to open.
//!
//! ## Truncation
//!
//! [`Wal::rotate`] closes the active segment and returns the last sequence
//! number written; once the lake commit holding every batch up to it has
//! succeeded, [`Wal::remove_through`] deletes the closed segments.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use crate::contract::Event;
use crate::faults::{Fault, Faults};
use crate::metrics::Metrics;

/// "CXLW": records without a group field.
const MAGIC_V1: u32 = 0x574C_5843;
/// "CXW2": records carrying the first sequence number of their group.
const MAGIC: u32 = 0x3257_5843;
const HEADER_V1_BYTES: usize = 4 + 4 + 4 + 8;
const HEADER_BYTES: usize = HEADER_V1_BYTES + 8;
/// A segment is closed once it grows past this size.
const SEGMENT_TARGET_BYTES: u64 = 256 << 20;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log I/O error at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("write-ahead log segment {path} is damaged at byte {offset}: {detail}")]
    Corrupt { path: PathBuf, offset: u64, detail: String },
    #[error(
        "the write-ahead log in {dir} does not follow the lake: the lake holds batches through {lake_seq}, \
         the log's next batch is {next_seq}, so acknowledged batches {missing_from}..{missing_to} are missing; \
         restore the log or the lake from backup before starting"
    )]
    Gap {
        dir: PathBuf,
        lake_seq: u64,
        next_seq: u64,
        missing_from: u64,
        missing_to: u64,
    },
    #[error("the write-ahead log writer has stopped")]
    Stopped,
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A batch read back from the log at start-up.
#[derive(Debug)]
pub struct ReplayedBatch {
    pub seq: u64,
    pub events: Vec<Event>,
}

/// Called by the writer thread after a group is durable and before the
/// clients hear so: the hand-over into the queryable buffer happens here so
/// that no acknowledged batch can miss it (a client that hangs up after its
/// append does not leave a hole).
pub type OnDurable<P> = Box<dyn FnMut(u64, P) + Send>;

enum Command<P> {
    Append {
        bytes: Vec<u8>,
        payload: P,
        reply: tokio::sync::oneshot::Sender<Result<u64>>,
    },
    Rotate {
        reply: tokio::sync::oneshot::Sender<Result<u64>>,
    },
}

/// Handle to the log; cheap to clone. `P` travels with each batch to the
/// [`OnDurable`] hook (the ingest pipeline passes the batch's Arrow form).
pub struct Wal<P> {
    dir: PathBuf,
    tx: mpsc::Sender<Command<P>>,
}

impl<P> Clone for Wal<P> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            tx: self.tx.clone(),
        }
    }
}

impl<P> std::fmt::Debug for Wal<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

impl<P: Send + 'static> Wal<P> {
    /// Opens (or creates) the log in `dir`, returns the handle and every
    /// batch found on disk after sequence number `replay_after` (oldest
    /// first; the older ones, already in the lake, are checked but not
    /// decoded). Starts the writer thread, which calls `on_durable` for
    /// every batch it makes durable.
    pub fn open(
        dir: &Path,
        metrics: Arc<Metrics>,
        on_durable: OnDurable<P>,
        replay_after: u64,
    ) -> Result<(Wal<P>, Vec<ReplayedBatch>)> {
        Self::open_with_faults(dir, metrics, on_durable, replay_after, Faults::default())
    }

    /// [`Wal::open`] with injected faults (tests).
    pub fn open_with_faults(
        dir: &Path,
        metrics: Arc<Metrics>,
        on_durable: OnDurable<P>,
        replay_after: u64,
        faults: Faults,
    ) -> Result<(Wal<P>, Vec<ReplayedBatch>)> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segments = list_segments(dir)?;
        let mut replayed = Vec::new();
        let mut last_seq = 0;
        for (i, (first, path)) in segments.iter().enumerate() {
            let next_first = segments.get(i + 1).map(|s| s.0);
            read_segment(path, *first, next_first, &mut |seq, payload| {
                if seq <= last_seq {
                    return Err(format!("sequence {seq} does not follow {last_seq}"));
                }
                if last_seq > replay_after && seq != last_seq + 1 {
                    return Err(format!("batches {}..{} are missing", last_seq + 1, seq - 1));
                }
                last_seq = seq;
                if seq <= replay_after {
                    return Ok(());
                }
                let events = payload
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(serde_json::from_slice::<Event>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("batch {seq} does not decode: {e}"))?;
                replayed.push(ReplayedBatch { seq, events });
                Ok(())
            })?;
        }
        if let Some(first) = replayed.first() {
            if first.seq != replay_after + 1 {
                return Err(WalError::Gap {
                    dir: dir.to_path_buf(),
                    lake_seq: replay_after,
                    next_seq: first.seq,
                    missing_from: replay_after + 1,
                    missing_to: first.seq - 1,
                });
            }
        }
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            file: None,
            file_bytes: 0,
            // The lake may be ahead of the log (its last segment removed
            // after a flush, or left empty by a failed write): numbers below
            // the lake's checkpoint would be skipped at the next start.
            next_seq: last_seq.max(replay_after) + 1,
            metrics,
            on_durable,
            faults,
        };
        std::thread::Builder::new()
            .name("cxlake-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                tx,
            },
            replayed,
        ))
    }

    /// Appends one batch (its events' canonical NDJSON) and returns its
    /// sequence number once it is on disk. `payload` travels with it to the
    /// [`OnDurable`] hook.
    pub async fn append_durable(&self, events: &[Event], payload: P) -> Result<u64> {
        let mut bytes = Vec::with_capacity(events.len() * 320);
        for e in events {
            // Serializing a plain struct of strings and numbers cannot fail.
            if serde_json::to_writer(&mut bytes, e).is_ok() {
                bytes.push(b'\n');
            }
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Command::Append { bytes, payload, reply })
            .map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Closes the active segment; returns the last sequence number written
    /// (0 when nothing was ever written). Every batch up to it has already
    /// passed through [`OnDurable`].
    pub async fn rotate(&self) -> Result<u64> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx.send(Command::Rotate { reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Deletes every segment all of whose batches have `seq <= through`.
    /// Call only after the lake commit holding them has succeeded.
    pub fn remove_through(&self, through: u64) -> Result<usize> {
        let segments = list_segments(&self.dir)?;
        let mut removed = 0;
        for (i, (_, path)) in segments.iter().enumerate() {
            // A segment's batches end just before the next segment's first.
            let Some((next_first, _)) = segments.get(i + 1) else {
                break;
            };
            if *next_first <= through + 1 {
                fs::remove_file(path).map_err(io_err(path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Rewrites every closed segment (first sequence `<= through`, where
    /// `through` came from [`Wal::rotate`]) without the events `erase`
    /// picks, keeping every record and its sequence number (a batch may
    /// become empty). Each segment is replaced atomically: temp file,
    /// fsync, rename, fsync of the directory. Returns the events removed.
    /// For erasure: the batches are in the lake already, the segments
    /// only wait for the next truncation.
    pub fn scrub_through(&self, through: u64, erase: &dyn Fn(&Event) -> bool) -> Result<usize> {
        let mut removed = 0;
        let segments = list_segments(&self.dir)?;
        for (i, (first, path)) in segments.iter().enumerate() {
            let (first, path) = (*first, path.clone());
            if first > through {
                continue;
            }
            let next_first = segments.get(i + 1).map(|s| s.0);
            let mut out = Vec::new();
            let mut dropped_here = 0;
            read_segment(&path, first, next_first, &mut |seq, payload| {
                let mut kept = Vec::with_capacity(payload.len());
                for line in payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let e: Event =
                        serde_json::from_slice(line).map_err(|e| format!("batch {seq} does not decode: {e}"))?;
                    if erase(&e) {
                        dropped_here += 1;
                    } else {
                        kept.extend_from_slice(line);
                        kept.push(b'\n');
                    }
                }
                // The group a record was fsynced with no longer matters once
                // it is in the lake: each rewritten record is its own group.
                encode_record(&mut out, seq, seq, &kept);
                Ok(())
            })?;
            if dropped_here == 0 {
                continue;
            }
            let tmp = self.dir.join(format!(".scrub-{first:020}.tmp"));
            let written = File::create(&tmp)
                .and_then(|mut f| f.write_all(&out).and_then(|()| f.sync_all()))
                .and_then(|()| fs::rename(&tmp, &path));
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io_err(&path)(e));
            }
            sync_dir(&self.dir)?;
            removed += dropped_here;
        }
        Ok(removed)
    }

    /// Total bytes of all segment files.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .map(|s| {
                s.iter()
                    .filter_map(|(_, p)| fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

struct Writer<P> {
    dir: PathBuf,
    file: Option<(File, PathBuf)>,
    file_bytes: u64,
    next_seq: u64,
    metrics: Arc<Metrics>,
    on_durable: OnDurable<P>,
    faults: Faults,
}

impl<P> Writer<P> {
    fn run(mut self, rx: mpsc::Receiver<Command<P>>) {
        while let Ok(first) = rx.recv() {
            // Group commit: take everything that queued up while we waited.
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
                if group.len() >= 4096 {
                    break;
                }
            }
            let mut appends = Vec::new();
            let mut buf = Vec::new();
            let group_first_seq = self.next_seq;
            let mut rotates = Vec::new();
            for cmd in group {
                match cmd {
                    Command::Append { bytes, payload, reply } => {
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        encode_record(&mut buf, seq, group_first_seq, &bytes);
                        appends.push((seq, payload, reply));
                    }
                    Command::Rotate { reply } => rotates.push(reply),
                }
            }
            if !appends.is_empty() {
                match self.write_and_sync(&buf, group_first_seq) {
                    Ok(()) => {
                        for (seq, payload, reply) in appends {
                            (self.on_durable)(seq, payload);
                            let _ = reply.send(Ok(seq));
                        }
                    }
                    Err(e) => {
                        // Nothing of this group is acknowledged. The file may
                        // hold part of it; start a fresh segment so a later
                        // success is not appended behind a torn record, and
                        // give the numbers back so sequences stay dense.
                        tracing::error!(error = %e, "write-ahead log append failed");
                        self.file = None;
                        let first_seq = appends.first().map(|a| a.0).unwrap_or(self.next_seq);
                        self.next_seq = first_seq;
                        let msg = e.to_string();
                        for (_, _, reply) in appends {
                            let _ = reply.send(Err(WalError::Io {
                                path: self.dir.clone(),
                                source: io::Error::other(msg.clone()),
                            }));
                        }
                    }
                }
            }
            for reply in rotates {
                self.file = None;
                let _ = reply.send(Ok(self.next_seq - 1));
            }
        }
    }

    /// Writes one group whose first record has sequence `first_seq`.
    fn write_and_sync(&mut self, buf: &[u8], first_seq: u64) -> Result<()> {
        if self.file.is_none() || self.file_bytes >= SEGMENT_TARGET_BYTES {
            self.open_segment(first_seq)?;
        }
        let Some((file, path)) = self.file.as_mut() else {
            return Err(WalError::Stopped);
        };
        let started = Instant::now();
        let faults = &self.faults;
        if faults.take(Fault::DiskFull) || faults.take(Fault::WalWrite) {
            return Err(io_err(path)(Faults::error(Fault::DiskFull)));
        }
        if faults.take(Fault::WalShortWrite) {
            let _ = file.write_all(&buf[..buf.len() / 2]);
            return Err(io_err(path)(Faults::error(Fault::WalShortWrite)));
        }
        file.write_all(buf).map_err(io_err(path))?;
        if faults.take(Fault::WalSync) {
            return Err(io_err(path)(Faults::error(Fault::WalSync)));
        }
        file.sync_data().map_err(io_err(path))?;
        self.metrics.observe_wal_fsync(started.elapsed());
        self.file_bytes += buf.len() as u64;
        Ok(())
    }

    /// Starts a new segment, named after the first sequence it will hold.
    fn open_segment(&mut self, first_seq: u64) -> Result<()> {
        let path = self.dir.join(format!("wal-{first_seq:020}.log"));
        // A file of that name can only hold a group that failed (and so was
        // never acknowledged) or a tail cut away at recovery: start it empty.
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // The new file's directory entry must be durable before anything in
        // it is acknowledged.
        sync_dir(&self.dir)?;
        self.file = Some((file, path));
        self.file_bytes = 0;
        Ok(())
    }
}

fn encode_record(buf: &mut Vec<u8>, seq: u64, group_first: u64, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&group_first.to_le_bytes());
    crc.update(payload);
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&group_first.to_le_bytes());
    buf.extend_from_slice(payload);
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix("wal-").and_then(|r| r.strip_suffix(".log")) {
            if let Ok(first) = n.parse::<u64>() {
                out.push((first, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one segment (named after sequence `first`; the next segment, if
/// any, starts at `next_first`), calling `f` per record it holds. Cuts off
/// what can only be an unacknowledged write (see the module docs) and
/// fails on damage that may hide an acknowledged one.
fn read_segment(
    path: &Path,
    first: u64,
    next_first: Option<u64>,
    f: &mut dyn FnMut(u64, &[u8]) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut data))
        .map_err(io_err(path))?;
    let corrupt = |offset: usize, detail: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        detail,
    };
    let mut off = 0usize;
    let mut last: Option<u64> = None;
    while off < data.len() {
        // The number the record at `off` has, or would have.
        let expected = last.map_or(first, |s| s + 1);
        let damage = match parse_record(&data[off..]) {
            Ok(rec) if next_first.is_some_and(|n| rec.seq >= n) => {
                tracing::warn!(path = %path.display(), offset = off, seq = rec.seq, "cutting a failed write-ahead log append (never acknowledged; its numbers were written again)");
                return cut(path, off);
            }
            Ok(rec) => {
                f(rec.seq, rec.payload).map_err(|detail| corrupt(off, detail))?;
                off += rec.used;
                last = Some(rec.seq);
                continue;
            }
            Err(detail) => detail,
        };
        let unacknowledged = match next_first {
            Some(n) => expected >= n,
            None => later_records(&data[off + 1..]).all(|group| group <= expected),
        };
        if unacknowledged {
            tracing::warn!(path = %path.display(), offset = off, %damage, "cutting a torn write-ahead log tail (never acknowledged)");
            return cut(path, off);
        }
        let why = match next_first {
            Some(n) => format!(
                "{damage}; batches {expected}..{} were acknowledged and are unreadable",
                n - 1
            ),
            None => format!("{damage}; intact records of a later group follow, so this one was acknowledged"),
        };
        return Err(corrupt(off, why));
    }
    Ok(())
}

/// Truncates a segment to `len` bytes, durably.
fn cut(path: &Path, len: usize) -> Result<()> {
    let file = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
    file.set_len(len as u64).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// The group of every intact record that starts anywhere in `data`.
fn later_records(data: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let magics = [MAGIC.to_le_bytes(), MAGIC_V1.to_le_bytes()];
    (0..data.len().saturating_sub(3))
        .filter(move |&i| magics.iter().any(|m| data[i..i + 4] == *m))
        .filter_map(move |i| parse_record(&data[i..]).ok())
        .map(|rec| rec.group)
}

/// One intact record.
struct Record<'a> {
    seq: u64,
    /// The first sequence number of the group commit it was written with.
    group: u64,
    payload: &'a [u8],
    /// Bytes the record takes, header included.
    used: usize,
}

fn parse_record(data: &[u8]) -> std::result::Result<Record<'_>, String> {
    if data.len() < HEADER_V1_BYTES {
        return Err(format!("{} bytes left, less than a record header", data.len()));
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let header = match word(0) {
        MAGIC => HEADER_BYTES,
        MAGIC_V1 => HEADER_V1_BYTES,
        _ => return Err("bad record magic".into()),
    };
    if data.len() < header {
        return Err(format!("{} bytes left, less than a record header", data.len()));
    }
    let len = word(4) as usize;
    let crc = word(8);
    let covered = &data[12..header];
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let seq = u64_at(12);
    let group = if header == HEADER_BYTES { u64_at(20) } else { seq };
    let Some(payload) = data.get(header..header + len) else {
        return Err(format!("record of {len} bytes is cut short"));
    };
    let mut h = crc32fast::Hasher::new();
    h.update(covered);
    h.update(payload);
    if h.finalize() != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Record {
        seq,
        group,
        payload,
        used: header + len,
    })
}

#[cfg(test)]
mod tests;
