//! The write path end to end: dedup → WAL (durable) → buffer (queryable)
//! → periodic flush into the lake → WAL truncation.
//!
//! ```text
//! ingest(events) ─ dedup by (tenant_id, event_id)
//!                ─ Wal::append_durable ── fsync ── OnDurable: push into buffer ── ack
//! flusher task  ─ Wal::rotate → S ─ sort buffer ≤ S ─ Delta commit (txn = S)
//!               ─ swap (table, flushed_seq = S, buffer > S) ─ Wal::remove_through(S)
//! ```
//!
//! Readers call [`Ingestor::read_view`] and get, under one lock, the lake
//! version and exactly the buffered batches that version does not hold:
//! no event is seen twice or missed while a flush commits.
//!
//! Deduplication never answers ahead of durability: an event id is
//! *claimed* by the write that carries it and becomes *known* only once
//! that write is fsynced. A copy that arrives while the first is in flight
//! waits for the first write's outcome: "duplicate" if it became durable,
//! otherwise it is written itself. A write runs to its end in a task of
//! its own, so a client that hangs up cannot leave a claim behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;
use futures::StreamExt;
use url::Url;

use crate::contract::Event;
use crate::faults::Faults;
use crate::lake::{self, LakeError};
use crate::metrics::Metrics;
use crate::privacy::{Privacy, PrivacyError};
use crate::readers::{Pin, Readers};
use crate::schema::events_to_batch;
use crate::wal::{Wal, WalError};
use seen::{KeyMap, SeenSet, event_key};

/// Errors of the ingest pipeline.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("data directory {path}: {detail}")]
    DataDir { path: PathBuf, detail: String },
    #[error("reading event ids back from the lake: {0}")]
    Scan(String),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error("the write did not finish: {0}")]
    Aborted(String),
    #[error(
        "{buffered_bytes} bytes of acknowledged events are waiting for the lake (limit {limit_bytes}); \
         retry shortly"
    )]
    Backpressure { buffered_bytes: usize, limit_bytes: usize },
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// When and how the buffer goes to the lake.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Holds `wal/`, `lake/` (unless `lake_location` points elsewhere) and the lock file.
    pub data_dir: PathBuf,
    /// A directory path or an object-store URL; default `<data_dir>/lake/events`.
    pub lake_location: Option<String>,
    /// Flush once this many events are buffered.
    pub flush_max_events: usize,
    /// Flush once the buffered batches take this many bytes.
    pub flush_max_bytes: usize,
    /// Flush at least this often while anything is buffered.
    pub flush_max_age: Duration,
    /// After a flush, a partition with this many small files (under half
    /// of `compact_target_file_bytes`) of about one size (a tier, see
    /// [`lake::tiered_bin`]) has them merged into one sorted file, with
    /// every smaller one (0 turns compaction off).
    pub compact_min_files: usize,
    /// Files under half this size are small; compaction merges them into
    /// files of up to about this size.
    pub compact_target_file_bytes: u64,
    /// Files replaced by compaction stay on storage this long, for readers
    /// outside this process still scanning an older version, then are
    /// deleted. Queries of this process keep the files of the version they
    /// read in any case ([`Readers`]).
    pub vacuum_retention: Duration,
    /// Past this many bytes of acknowledged events not yet in the lake
    /// (the lake is slow or unreachable), ingest answers "retry later"
    /// instead of growing the buffer and the WAL without bound.
    pub max_buffered_bytes: usize,
    /// Events that occurred longer ago than this are refused at ingest
    /// (the timestamp window), so a retry of them can never be stored
    /// again: the dedup set loads only the keys of younger events. `None`
    /// loads every key.
    pub dedup_horizon: Option<Duration>,
    /// Faults to inject (tests); unarmed by default.
    pub faults: Faults,
}

impl IngestConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            lake_location: None,
            flush_max_events: 100_000,
            flush_max_bytes: 64 << 20,
            flush_max_age: Duration::from_secs(60),
            compact_min_files: 8,
            compact_target_file_bytes: 128 << 20,
            vacuum_retention: Duration::from_secs(3600),
            max_buffered_bytes: 1 << 30,
            dedup_horizon: None,
            faults: Faults::default(),
        }
    }
}

/// What happened to one submitted batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events made durable by this call.
    pub accepted: usize,
    /// Line numbers of events already accepted earlier (retries) or
    /// repeated within the batch; they are not stored again.
    pub duplicate_lines: Vec<usize>,
    /// The WAL sequence number of the batch (0 when nothing was new).
    pub seq: u64,
    /// Line numbers of events of an erased customer or conversation
    /// (see [`crate::privacy`]); they are dropped, not stored.
    pub erased_lines: Vec<usize>,
}

/// How soon the flusher looks again for replaced files to delete, when a
/// vacuum was not due yet or kept some for running queries.
const VACUUM_RECHECK: Duration = Duration::from_secs(5);

/// A consistent view for readers: a lake version plus the buffered
/// batches it does not contain.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub table: Option<Arc<DeltaTable>>,
    pub buffered: Vec<RecordBatch>,
    /// Every acknowledged batch with a WAL sequence number up to this one
    /// is in the view (in `table` or in `buffered`): the number a client
    /// got back from ingest tells whether an answer includes its events.
    pub through_seq: u64,
    /// Holds `table`'s version against vacuum while the view (or a query
    /// plan given the pin) lives.
    pub pin: Option<Arc<Pin>>,
    /// What came in lately, for readers that follow the lake by what is
    /// new rather than by which files changed ([`ReadView::batches_after`]).
    pub recent: Recent,
}

/// The batches of the last moments, flushed or not, by sequence number.
/// Flushes and compactions move events between the buffer and the lake
/// files but never change them; only an erasure does (`rewrites` counts
/// them). So a reader that saw everything through sequence `s` and the
/// same `rewrites` sees what changed since in [`ReadView::batches_after`].
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// Flushed batches still held, in sequence order.
    flushed: Arc<Vec<(u64, RecordBatch)>>,
    /// Sequence numbers of [`ReadView::buffered`], one per batch.
    buffered_seqs: Vec<u64>,
    /// Every batch in the view with a greater sequence number is in
    /// `flushed` or buffered.
    floor: u64,
    /// Changes by erasures since the process started: a view of a table
    /// an erasure rewrote has another number than every view before.
    pub rewrites: u64,
}

impl ReadView {
    /// The batches of the view acknowledged after sequence `seq`, all
    /// tenants', in sequence order; `None` when some of them are no longer
    /// held apart (flushed longer ago than [`RECENT_KEEP`]).
    pub fn batches_after(&self, seq: u64) -> Option<Vec<&RecordBatch>> {
        if seq < self.recent.floor {
            return None;
        }
        let flushed = self.recent.flushed.iter().filter(|(s, _)| *s > seq).map(|(_, b)| b);
        let buffered = self
            .recent
            .buffered_seqs
            .iter()
            .zip(&self.buffered)
            .filter(|(s, _)| **s > seq)
            .map(|(_, b)| b);
        Some(flushed.chain(buffered).collect())
    }
}

/// How long flushed batches stay held apart for [`ReadView::batches_after`]
/// (readers catch up within seconds; this only bounds memory).
pub const RECENT_KEEP: Duration = Duration::from_secs(60);
/// ... and at most this many bytes of them.
const RECENT_MAX_BYTES: usize = 64 << 20;

/// Result of one flush.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushOutcome {
    pub events: usize,
    pub through_seq: u64,
}

struct Shared {
    table: Option<Arc<DeltaTable>>,
    flushed_seq: u64,
    buffer: Vec<(u64, RecordBatch)>,
    buffered_events: usize,
    buffered_bytes: usize,
    /// Flushed batches still held apart, with when they were flushed.
    recent: Arc<Vec<(u64, RecordBatch)>>,
    recent_at: std::collections::VecDeque<(u64, Instant, usize)>,
    recent_floor: u64,
    rewrites: u64,
}

impl Shared {
    /// Moves the batches through `seq` from the buffer to the recent ones
    /// and lets go of recent ones past [`RECENT_KEEP`] or the byte bound.
    fn flushed_through(&mut self, seq: u64) {
        let now = Instant::now();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.buffer)
            .into_iter()
            .partition(|(s, _)| *s <= seq);
        self.buffer = kept;
        let recent = Arc::make_mut(&mut self.recent);
        for (s, b) in gone {
            self.recent_at.push_back((s, now, batch_bytes(&b)));
            recent.push((s, b));
        }
        let mut bytes: usize = self.recent_at.iter().map(|(_, _, n)| n).sum();
        let mut drop_through = None;
        while let Some(&(s, at, n)) = self.recent_at.front() {
            if now.duration_since(at) <= RECENT_KEEP && bytes <= RECENT_MAX_BYTES {
                break;
            }
            bytes -= n;
            drop_through = Some(s);
            self.recent_at.pop_front();
        }
        if let Some(s) = drop_through {
            recent.retain(|(r, _)| *r > s);
            self.recent_floor = self.recent_floor.max(s);
        }
    }

    /// Installs a table an erasure rewrote: a view of it has another
    /// `rewrites` than any view before.
    fn install_rewritten(&mut self, table: DeltaTable) {
        self.table = Some(Arc::new(table));
        self.rewrites += 1;
    }

    /// Before an erasure rewrites the lake: the recent batches may hold
    /// what is erased.
    fn forget_recent(&mut self) {
        let through = self.flushed_seq.max(self.recent_floor);
        self.recent = Arc::default();
        self.recent_at.clear();
        self.recent_floor = through;
        self.rewrites += 1;
    }
}

/// The ingest pipeline; one per data directory (enforced by a lock file).
pub struct Ingestor {
    cfg: IngestConfig,
    lake_url: Url,
    metrics: Arc<Metrics>,
    dedup: Mutex<Dedup>,
    shared: Arc<Mutex<Shared>>,
    wal: Wal<RecordBatch>,
    flush_wanted: Arc<tokio::sync::Notify>,
    flush_lock: tokio::sync::Mutex<()>,
    /// The sequence number of the latest batch in the buffer; also sent
    /// after an erasure ([`Ingestor::arrivals`]).
    arrivals: Arc<tokio::sync::watch::Sender<u64>>,
    /// Keys, policies and tombstones of personal data.
    privacy: Privacy,
    /// Held shared by `ingest` from its tombstone check until its WAL
    /// append is done; an erasure takes it exclusively while it adds
    /// tombstones, so afterwards every event either was appended before
    /// (and the erasure sees it) or is checked against them.
    erase_gate: tokio::sync::RwLock<()>,
    last_vacuum: Mutex<Option<Instant>>,
    /// Lake versions that queries of this process read.
    readers: Arc<Readers>,
    /// The latest version that removed files (compaction): only readers of
    /// older versions can still need removed files.
    last_removal: AtomicU64,
    /// `last_removal` when the last vacuum ran.
    vacuumed_through: AtomicU64,
    /// Replaced files may be waiting for a vacuum (a compaction replaced
    /// them, or a vacuum kept them for a query): look again soon, not only
    /// at the next flush.
    vacuum_due: AtomicBool,
    _lock_file: std::fs::File,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field("data_dir", &self.cfg.data_dir)
            .field("lake", &self.lake_url.as_str())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind; carry on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Event ids known durable, and those a write in flight has claimed.
#[derive(Default)]
struct Dedup {
    seen: SeenSet,
    /// Each claim's receiver turns `Some(true)` once its write is durable,
    /// `Some(false)` once it failed.
    in_flight: KeyMap<tokio::sync::watch::Receiver<Option<bool>>>,
}

/// The claims of one write: settled on success, given up on failure, and
/// given up as well if the write is torn down half way (a panic).
struct Claims<'a> {
    dedup: &'a Mutex<Dedup>,
    keys: Vec<u128>,
    outcome: tokio::sync::watch::Sender<Option<bool>>,
}

impl Claims<'_> {
    fn settle(mut self, durable: bool) {
        let keys = std::mem::take(&mut self.keys);
        {
            let mut d = lock(self.dedup);
            for k in keys {
                d.in_flight.remove(&k);
                if durable {
                    d.seen.insert(k);
                }
            }
        }
        self.outcome.send_replace(Some(durable));
    }
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            let mut d = lock(self.dedup);
            for k in &self.keys {
                d.in_flight.remove(k);
            }
            self.outcome.send_replace(Some(false));
        }
    }
}

fn batch_bytes(b: &RecordBatch) -> usize {
    b.get_array_memory_size()
}

impl Ingestor {
    /// Opens the data directory: takes its lock, loads the lake, replays
    /// the WAL past the lake's checkpoint and rebuilds the dedup set.
    pub async fn open(cfg: IngestConfig, metrics: Arc<Metrics>) -> Result<Arc<Ingestor>> {
        let dir_err = |detail: String| IngestError::DataDir {
            path: cfg.data_dir.clone(),
            detail,
        };
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| dir_err(e.to_string()))?;
        let lock_path = cfg.data_dir.join("cxlake.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| dir_err(e.to_string()))?;
        lock_file.try_lock().map_err(|_| {
            dir_err("is in use by another cxlake process (serve, ingest or demo); stop it first".into())
        })?;

        let location = match &cfg.lake_location {
            Some(l) => l.clone(),
            None => path_str(&cfg.data_dir.join("lake").join("events")),
        };
        let lake_url = lake::table_url(&location)?;
        let table = match lake::open(&lake_url, &cfg.faults).await? {
            Some(t) => Some(lake::ensure_stats_columns(t).await?),
            None => None,
        };
        let privacy = Privacy::open(&cfg.data_dir)?;
        let flushed_seq = lake::flushed_seq(table.as_ref()).await?;
        if let Some(t) = &table {
            metrics.record_table(t);
        }

        let mut seen = match &table {
            Some(t) => load_lake_keys(t, cfg.dedup_horizon).await?,
            None => SeenSet::default(),
        };

        let shared = Arc::new(Mutex::new(Shared {
            table: table.map(Arc::new),
            flushed_seq,
            buffer: Vec::new(),
            buffered_events: 0,
            buffered_bytes: 0,
            recent: Arc::default(),
            recent_at: Default::default(),
            recent_floor: flushed_seq,
            rewrites: 0,
        }));
        let flush_wanted = Arc::new(tokio::sync::Notify::new());
        let arrivals = Arc::new(tokio::sync::watch::Sender::new(flushed_seq));
        let on_durable = {
            let shared = shared.clone();
            let arrivals = arrivals.clone();
            let metrics = metrics.clone();
            let flush_wanted = flush_wanted.clone();
            let (max_events, max_bytes) = (cfg.flush_max_events, cfg.flush_max_bytes);
            Box::new(move |seq: u64, batch: RecordBatch| {
                let mut s = lock(&shared);
                s.buffered_events += batch.num_rows();
                s.buffered_bytes += batch_bytes(&batch);
                metrics.buffered_events.store(s.buffered_events as u64, Relaxed);
                metrics.buffered_bytes.store(s.buffered_bytes as u64, Relaxed);
                if s.buffered_events >= max_events || s.buffered_bytes >= max_bytes {
                    flush_wanted.notify_one();
                }
                s.buffer.push((seq, batch));
                drop(s);
                arrivals.send_replace(seq);
            })
        };
        let (wal, replayed) = Wal::open_with_faults(
            &cfg.data_dir.join("wal"),
            metrics.clone(),
            on_durable,
            flushed_seq,
            cfg.faults.clone(),
        )?;
        {
            let mut s = lock(&shared);
            let mut replayed_events = 0usize;
            for b in replayed.into_iter().filter(|b| b.seq > flushed_seq) {
                for e in &b.events {
                    seen.insert(event_key(&e.tenant_id, &e.event_id));
                }
                let batch = events_to_batch(b.events.iter());
                replayed_events += batch.num_rows();
                s.buffered_events += batch.num_rows();
                s.buffered_bytes += batch_bytes(&batch);
                s.buffer.push((b.seq, batch));
            }
            metrics.buffered_events.store(s.buffered_events as u64, Relaxed);
            metrics.buffered_bytes.store(s.buffered_bytes as u64, Relaxed);
            tracing::info!(lake = %lake_url, flushed_seq, replayed_events, known_events = seen.len(), "ingest pipeline open");
        }

        let ingestor = Arc::new(Ingestor {
            cfg,
            lake_url,
            metrics,
            dedup: Mutex::new(Dedup {
                seen,
                in_flight: KeyMap::default(),
            }),
            shared,
            wal,
            flush_wanted,
            flush_lock: tokio::sync::Mutex::new(()),
            arrivals,
            privacy,
            erase_gate: tokio::sync::RwLock::new(()),
            last_vacuum: Mutex::new(None),
            readers: Arc::default(),
            last_removal: AtomicU64::new(0),
            vacuumed_through: AtomicU64::new(0),
            vacuum_due: AtomicBool::new(false),
            _lock_file: lock_file,
        });
        // Recovery ends with the replayed events in the lake, before any
        // new event is taken (as a database checkpoints after crash
        // recovery): a start then replays at most what one run took in,
        // so a process that keeps dying young still converges. If the lake
        // cannot take them now, they stay in the WAL and the buffer.
        if lock(&ingestor.shared).buffered_events > 0 {
            if let Err(e) = ingestor.flush().await {
                tracing::error!(error = %e, "could not flush the replayed events at start; they stay in the WAL");
            }
        }
        Ok(ingestor)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn lake_url(&self) -> &Url {
        &self.lake_url
    }

    pub fn data_dir(&self) -> &Path {
        &self.cfg.data_dir
    }

    /// Tenant keys, privacy policies and erasure tombstones.
    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }

    /// Makes the new events of a validated batch durable. Returns after the
    /// WAL fsync; the events are then already visible through
    /// [`Ingestor::read_view`]. An event whose id a concurrent write holds
    /// is answered once that write's outcome is known.
    pub async fn ingest(self: &Arc<Self>, events: Vec<(usize, Event)>) -> Result<IngestOutcome> {
        let this = self.clone();
        // Runs to its end even when the caller stops waiting, so every
        // claim it makes is settled one way or the other.
        tokio::spawn(async move { this.ingest_to_the_end(events).await })
            .await
            .map_err(|e| IngestError::Aborted(e.to_string()))?
    }

    async fn ingest_to_the_end(&self, events: Vec<(usize, Event)>) -> Result<IngestOutcome> {
        let mut outcome = IngestOutcome::default();
        let buffered_bytes = lock(&self.shared).buffered_bytes;
        if buffered_bytes >= self.cfg.max_buffered_bytes {
            self.metrics.ingest_backpressure.fetch_add(1, Relaxed);
            self.flush_wanted.notify_one();
            return Err(IngestError::Backpressure {
                buffered_bytes,
                limit_bytes: self.cfg.max_buffered_bytes,
            });
        }
        let _no_erasure_in_between = self.erase_gate.read().await;
        let (mut events, erased_lines) = self.privacy.drop_erased(events)?;
        outcome.erased_lines = erased_lines;
        // Before the WAL: what a tenant does not want stored never reaches a file.
        self.privacy.protect(&mut events)?;
        let mut pending = events;
        while !pending.is_empty() {
            let (outcome_tx, outcome_rx) = tokio::sync::watch::channel(None);
            let mut claims = Claims {
                dedup: &self.dedup,
                keys: Vec::with_capacity(pending.len()),
                outcome: outcome_tx,
            };
            let mut fresh = Vec::with_capacity(pending.len());
            let mut waits = Vec::new();
            {
                let mut d = lock(&self.dedup);
                for (line, e) in pending.drain(..) {
                    let key = event_key(&e.tenant_id, &e.event_id);
                    if d.seen.contains(key) {
                        outcome.duplicate_lines.push(line);
                    } else if let Some(other) = d.in_flight.get(&key) {
                        if other.same_channel(&outcome_rx) {
                            // Repeated within this very batch.
                            outcome.duplicate_lines.push(line);
                        } else {
                            waits.push((line, e, other.clone()));
                        }
                    } else {
                        d.in_flight.insert(key, outcome_rx.clone());
                        claims.keys.push(key);
                        fresh.push(e);
                    }
                }
            }
            if fresh.is_empty() {
                drop(claims);
            } else {
                let batch = events_to_batch(fresh.iter());
                match self.wal.append_durable(&fresh, batch).await {
                    Ok(seq) => {
                        claims.settle(true);
                        outcome.accepted += fresh.len();
                        outcome.seq = seq;
                        self.metrics.events_accepted.fetch_add(fresh.len() as u64, Relaxed);
                        self.metrics.batches_accepted.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        // Not durable, so not accepted: a retry must not look like a duplicate.
                        claims.settle(false);
                        return Err(e.into());
                    }
                }
            }
            // Copies of events another write holds: a duplicate once that
            // write is durable; if it failed, this request writes them.
            for (line, e, mut other) in waits {
                let durable = other
                    .wait_for(Option::is_some)
                    .await
                    .map(|v| *v == Some(true))
                    .unwrap_or(false);
                if durable {
                    outcome.duplicate_lines.push(line);
                } else {
                    pending.push((line, e));
                }
            }
        }
        outcome.duplicate_lines.sort_unstable();
        self.metrics
            .events_duplicate
            .fetch_add(outcome.duplicate_lines.len() as u64, Relaxed);
        Ok(outcome)
    }

    /// The lake version and the buffered batches it does not hold.
    pub fn read_view(&self) -> ReadView {
        // Pinned under the same lock that installs new versions: a vacuum
        // after the next install sees this pin.
        let s = lock(&self.shared);
        ReadView {
            pin: s.table.as_ref().and_then(|t| t.version()).map(|v| self.readers.pin(v)),
            table: s.table.clone(),
            buffered: s.buffer.iter().map(|(_, b)| b.clone()).collect(),
            // Batches reach the buffer in sequence order, from the one
            // thread that makes them durable, and leave it only into the lake.
            through_seq: s
                .buffer
                .last()
                .map_or(s.flushed_seq, |(seq, _)| (*seq).max(s.flushed_seq)),
            recent: Recent {
                flushed: s.recent.clone(),
                buffered_seqs: s.buffer.iter().map(|(seq, _)| *seq).collect(),
                floor: s.recent_floor,
                rewrites: s.rewrites,
            },
        }
    }

    /// Changes when a batch becomes readable (to its sequence number) and
    /// after an erasure: for readers that follow new data.
    pub fn arrivals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.arrivals.subscribe()
    }

    /// Writes everything acknowledged so far into the lake.
    pub async fn flush(&self) -> Result<FlushOutcome> {
        let _one_at_a_time = self.flush_lock.lock().await;
        self.flush_locked().await
    }

    /// [`Ingestor::flush`] for a caller that holds the flush lock. Commits
    /// at most `flush_max_events` events at a time, oldest first, so a
    /// large backlog (a long replay) reaches the lake in steps that each
    /// survive a crash.
    async fn flush_locked(&self) -> Result<FlushOutcome> {
        let through = self.wal.rotate().await?;
        let mut done = FlushOutcome {
            events: 0,
            through_seq: lock(&self.shared).flushed_seq,
        };
        loop {
            let step = self.flush_step(through).await?;
            if step.events == 0 {
                break;
            }
            done = FlushOutcome {
                events: done.events + step.events,
                through_seq: step.through_seq,
            };
        }
        // Still holding the flush lock: compaction is the only other writer.
        self.compact_fragmented(4).await;
        self.vacuum_if_due().await;
        Ok(done)
    }

    /// Commits the oldest buffered batches up to `through`, at most about
    /// `flush_max_events` events; nothing when none is left.
    async fn flush_step(&self, through: u64) -> Result<FlushOutcome> {
        let started = Instant::now();
        let (table, flushed, batches, step_through) = {
            let s = lock(&self.shared);
            let mut batches = Vec::new();
            let mut events = 0;
            let mut step_through = s.flushed_seq;
            // The buffer is in sequence order (the WAL writer hands batches
            // over in order, and the replay comes first).
            for (seq, b) in s.buffer.iter().filter(|(seq, _)| *seq <= through) {
                if events >= self.cfg.flush_max_events {
                    break;
                }
                events += b.num_rows();
                step_through = *seq;
                batches.push(b.clone());
            }
            (s.table.clone(), s.flushed_seq, batches, step_through)
        };
        if batches.is_empty() {
            self.wal.remove_through(flushed)?;
            return Ok(FlushOutcome {
                events: 0,
                through_seq: flushed,
            });
        }
        let events: usize = batches.iter().map(|b| b.num_rows()).sum();
        let sorted = tokio::task::spawn_blocking(move || lake::sort_for_lake(&batches))
            .await
            .map_err(|e| IngestError::Scan(e.to_string()))??;
        let base = table.as_ref().map(|t| (**t).clone());
        let new_table = match lake::append(&self.lake_url, &self.cfg.faults, base, sorted, step_through).await {
            Ok(t) => t,
            Err(e) => {
                self.metrics.flush_failures.fetch_add(1, Relaxed);
                // A commit can land and still report an error (a lost
                // answer from the store, a failing step after the commit).
                // Retrying it from the old version would conflict on the
                // WAL checkpoint forever: ask the log what it holds.
                match self.reload_table().await {
                    Some(t) if lake::flushed_seq(Some(&t)).await.unwrap_or(0) >= step_through => {
                        tracing::warn!(error = %e, through_seq = step_through, "the lake commit reported an error but landed");
                        t
                    }
                    _ => return Err(e.into()),
                }
            }
        };
        let (files, version) = self.metrics.record_table(&new_table);
        {
            let mut s = lock(&self.shared);
            s.table = Some(Arc::new(new_table));
            s.flushed_seq = step_through;
            s.flushed_through(step_through);
            s.buffered_events = s.buffer.iter().map(|(_, b)| b.num_rows()).sum();
            s.buffered_bytes = s.buffer.iter().map(|(_, b)| batch_bytes(b)).sum();
            self.metrics.buffered_events.store(s.buffered_events as u64, Relaxed);
            self.metrics.buffered_bytes.store(s.buffered_bytes as u64, Relaxed);
        }
        // The lake's store fsyncs every file before the commit that
        // publishes it returns: the segments are no longer needed.
        self.wal.remove_through(step_through)?;
        self.metrics.flushed_events.fetch_add(events as u64, Relaxed);
        self.metrics.flush.observe(started.elapsed());
        tracing::info!(
            events,
            through_seq = step_through,
            files,
            version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed to lake"
        );
        Ok(FlushOutcome {
            events,
            through_seq: step_through,
        })
    }

    /// Reloads the table from its log after a write whose outcome is not
    /// known, so the next writer starts from what the log holds. `None`
    /// when the log cannot be read now (the next round tries again).
    async fn reload_table(&self) -> Option<DeltaTable> {
        match lake::open(&self.lake_url, &self.cfg.faults).await {
            Ok(Some(t)) => {
                lock(&self.shared).table = Some(Arc::new(t.clone()));
                Some(t)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not reload the lake table");
                None
            }
        }
    }

    /// Merges the small files of up to `max_partitions` fragmented
    /// partitions (see [`IngestConfig::compact_min_files`] and
    /// [`lake::compact_partition`]). Failures are logged and left for the
    /// next round: the table stays valid either way.
    async fn compact_fragmented(&self, max_partitions: usize) {
        if self.cfg.compact_min_files == 0 {
            return;
        }
        let Some(table) = lock(&self.shared).table.clone() else {
            return;
        };
        let target = self.cfg.compact_target_file_bytes;
        let candidates = lake::fragmented_partitions(&table, self.cfg.compact_min_files, target / 2);
        let mut table = (*table).clone();
        for (partition, small_files) in candidates.into_iter().take(max_partitions) {
            let started = Instant::now();
            let compacted = match lake::compact_partition(&table, &partition, target, self.cfg.compact_min_files).await
            {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, tenant = %partition.0, date = %partition.1, "compaction failed; will retry");
                    self.reload_table().await;
                    return;
                }
            };
            lock(&self.shared).table = Some(Arc::new(compacted.clone()));
            if let Some(v) = compacted.version() {
                self.last_removal.fetch_max(v, Relaxed);
            }
            self.vacuum_due.store(true, Relaxed);
            self.metrics.record_table(&compacted);
            self.metrics.compactions.fetch_add(1, Relaxed);
            tracing::info!(
                tenant = %partition.0,
                date = %partition.1,
                small_files,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compacted partition"
            );
            // Replaced files can go before the next partition is merged, so
            // a round never holds the old and new bytes of every partition.
            self.vacuum_if_due().await;
            match lock(&self.shared).table.clone() {
                Some(t) => table = (*t).clone(),
                None => return,
            }
        }
    }

    /// Deletes files that left the table more than `vacuum_retention` ago
    /// (and files of commits that never landed), at most once per tenth of
    /// the retention (at zero retention, after every compaction too), except
    /// files of versions that queries of this process still read
    /// ([`Readers`]). The caller holds the flush lock.
    async fn vacuum_if_due(&self) {
        let interval = (self.cfg.vacuum_retention / 10).max(Duration::from_secs(1));
        let removal = self.last_removal.load(Relaxed);
        // Only at zero retention can a file replaced just now go at once.
        let at_once = self.cfg.vacuum_retention.is_zero() && removal > self.vacuumed_through.load(Relaxed);
        {
            let mut last = lock(&self.last_vacuum);
            if !at_once && last.is_some_and(|t| t.elapsed() < interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.vacuumed_through.store(removal, Relaxed);
        let Some(table) = lock(&self.shared).table.clone() else {
            return;
        };
        // Versions from the latest removal on list none of the removed files.
        let held: Vec<u64> = self.readers.versions().into_iter().filter(|v| *v < removal).collect();
        self.vacuum_due.store(!held.is_empty(), Relaxed);
        match lake::vacuum(&table, self.cfg.vacuum_retention, &held).await {
            Ok((t, deleted)) => {
                if deleted > 0 {
                    self.metrics.vacuumed_files.fetch_add(deleted as u64, Relaxed);
                    tracing::info!(deleted, "vacuumed replaced lake files");
                }
                lock(&self.shared).table = Some(Arc::new(t));
            }
            Err(e) => {
                self.vacuum_due.store(true, Relaxed);
                tracing::warn!(error = %e, "vacuum failed; will retry");
            }
        }
    }

    /// Runs until `shutdown` fires: flushes by size (as soon as a threshold
    /// is crossed) or by age, then flushes once more on the way out.
    pub async fn run_flusher(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut next_flush = tokio::time::Instant::now() + self.cfg.flush_max_age;
        loop {
            tokio::select! {
                _ = self.flush_wanted.notified() => {}
                _ = tokio::time::sleep_until(next_flush) => {}
                _ = shutdown.changed() => break,
                // Replaced files, maybe kept for a query that has ended by now.
                _ = tokio::time::sleep(VACUUM_RECHECK) => {
                    if self.vacuum_due.load(Relaxed) {
                        let _one_at_a_time = self.flush_lock.lock().await;
                        self.vacuum_if_due().await;
                    }
                    continue;
                }
            }
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "flush failed; the events stay in the WAL and buffer and will be retried");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            next_flush = tokio::time::Instant::now() + self.cfg.flush_max_age;
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "final flush failed; the WAL keeps the events for the next start");
        }
        // Leave the lake tidy: compact what the last rounds left fragmented.
        let _one_at_a_time = self.flush_lock.lock().await;
        self.compact_fragmented(64).await;
    }

    /// Number of distinct `(tenant_id, event_id)` known.
    pub fn known_events(&self) -> usize {
        lock(&self.dedup).seen.len()
    }
}

mod erase;
mod seen;

pub use erase::{CustomerData, ErasureReceipt};

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Reads `(tenant_id, event_id)` of the lake's events into the set: every
/// event, or those of the days a `horizon` back from now still reaches
/// (one day more, so no edge of the window is missed).
async fn load_lake_keys(table: &DeltaTable, horizon: Option<Duration>) -> Result<SeenSet> {
    let scan_err = |e: &dyn std::fmt::Display| IngestError::Scan(e.to_string());
    let ctx = SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| scan_err(&e))?;
    let provider = table.table_provider().await.map_err(|e| scan_err(&e))?;
    ctx.register_table("events", provider).map_err(|e| scan_err(&e))?;
    let df = match horizon.and_then(|h| chrono::Duration::from_std(h).ok()) {
        Some(h) => {
            let since = (chrono::Utc::now() - h - chrono::Duration::days(1)).date_naive();
            let days = (since - chrono::DateTime::UNIX_EPOCH.date_naive()).num_days();
            ctx.sql("SELECT tenant_id, event_id FROM events WHERE event_date >= $1")
                .await
                .and_then(|df| {
                    df.with_param_values(vec![deltalake::datafusion::common::ScalarValue::Date32(
                        i32::try_from(days).ok(),
                    )])
                })
        }
        None => ctx.sql("SELECT tenant_id, event_id FROM events").await,
    }
    .map_err(|e| scan_err(&e))?;
    let mut stream = df.execute_stream().await.map_err(|e| scan_err(&e))?;
    // Per batch, then copied once into a vector of the exact size: a
    // vector grown by doubling would, at its last growth, hold nearly
    // three times the keys' size at once (the old and the new buffer).
    let mut chunks: Vec<Vec<u128>> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| scan_err(&e))?;
        let tenant =
            arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).map_err(|e| scan_err(&e))?;
        let event =
            arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).map_err(|e| scan_err(&e))?;
        let (tenant, event) = (tenant.as_string::<i32>(), event.as_string::<i32>());
        chunks.push(
            (0..batch.num_rows())
                .filter(|&i| !tenant.is_null(i) && !event.is_null(i))
                .map(|i| event_key(tenant.value(i), event.value(i)))
                .collect(),
        );
    }
    let mut keys = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for chunk in chunks {
        keys.extend_from_slice(&chunk);
    }
    Ok(SeenSet::from_keys(keys))
}

#[cfg(test)]
mod tests;
