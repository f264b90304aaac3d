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

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;
use futures::StreamExt;
use url::Url;

use crate::contract::Event;
use crate::lake::{self, LakeError};
use crate::metrics::Metrics;
use crate::privacy::{Privacy, PrivacyError};
use crate::schema::events_to_batch;
use crate::wal::{Wal, WalError};
use seen::{SeenSet, event_key};

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
    /// After a flush, partitions with at least this many files are
    /// rewritten as one sorted file set (0 turns compaction off).
    pub compact_min_files: usize,
}

impl IngestConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            lake_location: None,
            flush_max_events: 100_000,
            flush_max_bytes: 64 << 20,
            flush_max_age: Duration::from_secs(10),
            compact_min_files: 8,
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

/// A consistent view for readers: a lake version plus the buffered
/// batches it does not contain.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub table: Option<Arc<DeltaTable>>,
    pub buffered: Vec<RecordBatch>,
}

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
}

/// The ingest pipeline; one per data directory (enforced by a lock file).
pub struct Ingestor {
    cfg: IngestConfig,
    lake_url: Url,
    metrics: Arc<Metrics>,
    seen: Mutex<SeenSet>,
    shared: Arc<Mutex<Shared>>,
    wal: Wal<RecordBatch>,
    flush_wanted: Arc<tokio::sync::Notify>,
    flush_lock: tokio::sync::Mutex<()>,
    /// Keys, policies and tombstones of personal data.
    privacy: Privacy,
    /// Held shared by `ingest` from its tombstone check until its WAL
    /// append is done; an erasure takes it exclusively while it adds
    /// tombstones, so afterwards every event either was appended before
    /// (and the erasure sees it) or is checked against them.
    erase_gate: tokio::sync::RwLock<()>,
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
        let table = match lake::open(&lake_url).await? {
            Some(t) => Some(lake::ensure_stats_columns(t).await?),
            None => None,
        };
        let privacy = Privacy::open(&cfg.data_dir)?;
        let flushed_seq = lake::flushed_seq(table.as_ref()).await?;
        if let Some(t) = &table {
            metrics.lake_files.store(lake::file_count(t) as u64, Relaxed);
            metrics
                .lake_version
                .store(t.version().unwrap_or(0).max(0) as u64, Relaxed);
        }

        let mut seen = match &table {
            Some(t) => load_lake_keys(t).await?,
            None => SeenSet::default(),
        };

        let shared = Arc::new(Mutex::new(Shared {
            table: table.map(Arc::new),
            flushed_seq,
            buffer: Vec::new(),
            buffered_events: 0,
            buffered_bytes: 0,
        }));
        let flush_wanted = Arc::new(tokio::sync::Notify::new());
        let on_durable = {
            let shared = shared.clone();
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
            })
        };
        let (wal, replayed) = Wal::open(&cfg.data_dir.join("wal"), metrics.clone(), on_durable, flushed_seq)?;
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

        Ok(Arc::new(Ingestor {
            cfg,
            lake_url,
            metrics,
            seen: Mutex::new(seen),
            shared,
            wal,
            flush_wanted,
            flush_lock: tokio::sync::Mutex::new(()),
            privacy,
            erase_gate: tokio::sync::RwLock::new(()),
            _lock_file: lock_file,
        }))
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
    /// [`Ingestor::read_view`].
    pub async fn ingest(&self, events: Vec<(usize, Event)>) -> Result<IngestOutcome> {
        let mut outcome = IngestOutcome::default();
        let _no_erasure_in_between = self.erase_gate.read().await;
        let (mut events, erased_lines) = self.privacy.drop_erased(events)?;
        outcome.erased_lines = erased_lines;
        // Before the WAL: what a tenant does not want stored never reaches a file.
        self.privacy.protect(&mut events)?;
        let mut fresh = Vec::with_capacity(events.len());
        let mut keys = Vec::with_capacity(events.len());
        {
            let mut seen = lock(&self.seen);
            for (line, e) in events {
                let key = event_key(&e.tenant_id, &e.event_id);
                if seen.insert(key) {
                    keys.push(key);
                    fresh.push(e);
                } else {
                    outcome.duplicate_lines.push(line);
                }
            }
        }
        self.metrics
            .events_duplicate
            .fetch_add(outcome.duplicate_lines.len() as u64, Relaxed);
        if fresh.is_empty() {
            return Ok(outcome);
        }
        let batch = events_to_batch(fresh.iter());
        match self.wal.append_durable(&fresh, batch).await {
            Ok(seq) => {
                outcome.accepted = fresh.len();
                outcome.seq = seq;
                self.metrics.events_accepted.fetch_add(fresh.len() as u64, Relaxed);
                self.metrics.batches_accepted.fetch_add(1, Relaxed);
                Ok(outcome)
            }
            Err(e) => {
                // Not durable, so not accepted: a retry must not look like a duplicate.
                let mut seen = lock(&self.seen);
                for k in keys {
                    seen.remove(k);
                }
                Err(e.into())
            }
        }
    }

    /// The lake version and the buffered batches it does not hold.
    pub fn read_view(&self) -> ReadView {
        let s = lock(&self.shared);
        ReadView {
            table: s.table.clone(),
            buffered: s.buffer.iter().map(|(_, b)| b.clone()).collect(),
        }
    }

    /// Writes everything acknowledged so far into the lake.
    pub async fn flush(&self) -> Result<FlushOutcome> {
        let _one_at_a_time = self.flush_lock.lock().await;
        self.flush_locked().await
    }

    /// [`Ingestor::flush`] for a caller that holds the flush lock.
    async fn flush_locked(&self) -> Result<FlushOutcome> {
        let started = Instant::now();
        let through = self.wal.rotate().await?;
        let (table, flushed, batches) = {
            let s = lock(&self.shared);
            let batches: Vec<RecordBatch> = s
                .buffer
                .iter()
                .filter(|(seq, _)| *seq <= through)
                .map(|(_, b)| b.clone())
                .collect();
            (s.table.clone(), s.flushed_seq, batches)
        };
        if batches.is_empty() {
            self.wal.remove_through(flushed)?;
            // Idle rounds catch up on compaction.
            self.compact_fragmented(4).await;
            return Ok(FlushOutcome {
                events: 0,
                through_seq: flushed,
            });
        }
        let events: usize = batches.iter().map(|b| b.num_rows()).sum();
        let sorted = tokio::task::spawn_blocking(move || lake::sort_for_lake(&batches))
            .await
            .map_err(|e| IngestError::Scan(e.to_string()))??;
        let result = lake::append(&self.lake_url, table.as_ref().map(|t| (**t).clone()), sorted, through).await;
        let new_table = match result {
            Ok(t) => t,
            Err(e) => {
                self.metrics.flush_failures.fetch_add(1, Relaxed);
                return Err(e.into());
            }
        };
        // The WAL may go only once the commit would survive a power cut.
        let synced = lake::sync_local_commit(&self.lake_url, table.as_deref(), &new_table);
        let files = lake::file_count(&new_table);
        let version = new_table.version().unwrap_or(0).max(0) as u64;
        {
            let mut s = lock(&self.shared);
            s.table = Some(Arc::new(new_table));
            s.flushed_seq = through;
            s.buffer.retain(|(seq, _)| *seq > through);
            s.buffered_events = s.buffer.iter().map(|(_, b)| b.num_rows()).sum();
            s.buffered_bytes = s.buffer.iter().map(|(_, b)| batch_bytes(b)).sum();
            self.metrics.buffered_events.store(s.buffered_events as u64, Relaxed);
            self.metrics.buffered_bytes.store(s.buffered_bytes as u64, Relaxed);
        }
        match synced {
            Ok(()) => {
                self.wal.remove_through(through)?;
            }
            Err(e) => tracing::error!(error = %e, "could not fsync the lake commit; keeping the WAL segments"),
        }
        self.metrics.lake_files.store(files as u64, Relaxed);
        self.metrics.lake_version.store(version, Relaxed);
        self.metrics.flushed_events.fetch_add(events as u64, Relaxed);
        self.metrics.flush.observe(started.elapsed());
        tracing::info!(
            events,
            through_seq = through,
            files,
            version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed to lake"
        );
        // Still holding the flush lock: compaction is the only other writer.
        self.compact_fragmented(4).await;
        Ok(FlushOutcome {
            events,
            through_seq: through,
        })
    }

    /// Rewrites up to `max_partitions` fragmented partitions (see
    /// [`IngestConfig::compact_min_files`]). Failures are logged and left
    /// for the next round: the table stays valid either way.
    async fn compact_fragmented(&self, max_partitions: usize) {
        if self.cfg.compact_min_files == 0 {
            return;
        }
        let Some(mut table) = lock(&self.shared).table.clone() else {
            return;
        };
        let candidates = lake::fragmented_partitions(&table, self.cfg.compact_min_files);
        for (partition, files_before) in candidates.into_iter().take(max_partitions) {
            let started = Instant::now();
            let compacted = match lake::compact_partition(&table, &partition).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, tenant = %partition.0, date = %partition.1, "compaction failed; will retry");
                    return;
                }
            };
            if let Err(e) = lake::sync_local_commit(&self.lake_url, Some(&table), &compacted) {
                tracing::error!(error = %e, "could not fsync a compaction commit");
            }
            let compacted = Arc::new(compacted);
            let files = lake::file_count(&compacted);
            lock(&self.shared).table = Some(compacted.clone());
            self.metrics.lake_files.store(files as u64, Relaxed);
            self.metrics
                .lake_version
                .store(compacted.version().unwrap_or(0), Relaxed);
            self.metrics.compactions.fetch_add(1, Relaxed);
            tracing::info!(
                tenant = %partition.0,
                date = %partition.1,
                files_before,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compacted partition"
            );
            table = compacted;
        }
    }

    /// Runs until `shutdown` fires: flushes by size (as soon as a threshold
    /// is crossed) or by age, then flushes once more on the way out.
    pub async fn run_flusher(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.flush_wanted.notified() => {}
                _ = tokio::time::sleep(self.cfg.flush_max_age) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "flush failed; the events stay in the WAL and buffer and will be retried");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
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
        lock(&self.seen).len()
    }
}

mod erase;
mod seen;

pub use erase::{CustomerData, ErasureReceipt};

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Reads `(tenant_id, event_id)` of every event in the lake into the set.
async fn load_lake_keys(table: &DeltaTable) -> Result<SeenSet> {
    let scan_err = |e: &dyn std::fmt::Display| IngestError::Scan(e.to_string());
    let ctx = SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| scan_err(&e))?;
    let provider = table.table_provider().await.map_err(|e| scan_err(&e))?;
    ctx.register_table("events", provider).map_err(|e| scan_err(&e))?;
    let df = ctx
        .sql("SELECT tenant_id, event_id FROM events")
        .await
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
