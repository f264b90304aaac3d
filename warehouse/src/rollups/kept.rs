//! Materialized rows kept in memory as compressed Parquet files.
//!
//! A rollup keeps every row of the `conversations` view. As Arrow arrays
//! they take about 520 bytes a row; as Parquet (dictionary and run-length
//! encoding, zstd) about a fifth of that, and DataFusion still reads them
//! with projection and row-group pruning: each scan is a `ListingTable`
//! over the current files in an in-memory object store that belongs to
//! this table (registered in the scanning session's runtime under this
//! table's own `memory://` URL).
//!
//! Rows are ordered by a key column (µs since the epoch, e.g.
//! `first_event_at`): [`KeptRows::cut`] and [`KeptRows::apply_cut`] remove
//! every row whose key is at or after a bound, and the rows of named
//! conversations (each with its key, so that only the files whose key
//! range holds it are read), re-encoding only the files they touch.
//! Paths are never reused, so a scan planned before a change reads the
//! files it listed: a dropped file leaves the store once no snapshot and
//! no plan of a scan holds it (each file has a lease that snapshots and
//! their scans' plans clone), at the next change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use bytes::Bytes;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::ExecutionPlan;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use url::Url;

/// Rows per file (and per row group) at most.
pub(super) const FILE_ROWS: usize = 65_536;

/// A trailing run of at least this many files that fit in [`MERGE_ROWS`] is merged.
const MERGE_RUN: usize = 4;

/// Rows of a file merged from a trailing run at most. The last of them
/// holds the newest rows, which the next cut re-encodes: small enough
/// that this stays cheap, large enough that files stay few.
const MERGE_ROWS: usize = 16_384;

#[derive(Debug, Clone)]
struct KeptFile {
    path: Path,
    bytes: Bytes,
    rows: usize,
    min_key: i64,
    max_key: i64,
    /// Cloned by every snapshot that lists the file and the plans of its
    /// scans: while another holder lives, the file stays in the store.
    lease: Arc<()>,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct KeptRows {
    key: &'static str,
    schema: Option<SchemaRef>,
    files: Vec<KeptFile>,
    store: Arc<InMemory>,
    url: Url,
    /// Dropped files, each with its lease: deleted once no one else holds it.
    dropped: Vec<(Path, Arc<()>)>,
    version: u64,
}

/// Rows to drop besides those from an instant on: those whose `column`
/// is one of `ids`; `keys` are their keys (the files to look in).
#[derive(Debug, Clone, Default)]
pub(super) struct Ids {
    pub column: &'static str,
    pub ids: std::collections::HashSet<Arc<str>>,
    pub keys: Vec<i64>,
}

impl Ids {
    fn in_file(&self, f: &KeptFile) -> bool {
        !self.ids.is_empty() && self.keys.iter().any(|k| (f.min_key..=f.max_key).contains(k))
    }
}

/// The files left once every row from an instant on, and the rows of
/// [`Ids`], are dropped, worked out ahead ([`KeptRows::cut`]).
#[derive(Debug)]
pub(super) struct Cut {
    /// The rows' version it was worked out from.
    version: u64,
    lo: i64,
    ids: Arc<Ids>,
    files: Vec<KeptFile>,
    /// Those of `files` encoded anew (not in the store yet).
    fresh: Vec<KeptFile>,
}

/// What one scan reads: the files of one moment.
#[derive(Debug, Clone)]
pub struct KeptSnapshot {
    schema: SchemaRef,
    store: Arc<InMemory>,
    url: Url,
    paths: Vec<Path>,
    leases: Arc<Vec<Arc<()>>>,
}

/// Versions are drawn from one counter for the whole process.
fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl KeptRows {
    /// Rows ordered by `key`, a timestamp or integer column of µs.
    pub(super) fn new(key: &'static str) -> Self {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let n = STORES.fetch_add(1, Ordering::Relaxed);
        Self {
            key,
            schema: None,
            files: Vec::new(),
            store: Arc::new(InMemory::new()),
            // A constant, valid URL: the host is a counter.
            url: Url::parse(&format!("memory://cxlake-kept-{n}/")).unwrap_or_else(|_| unreachable!()),
            dropped: Vec::new(),
            version: next_version(),
        }
    }

    /// The schema of the rows (every field nullable); `None` before the
    /// first [`Self::push`].
    pub(super) fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }

    /// Changes whenever the rows do; unique in the process (a table built
    /// anew never repeats an older table's version).
    pub(super) fn version(&self) -> u64 {
        self.version
    }

    pub(super) fn rows(&self) -> usize {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Encoded bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.bytes.len()).sum()
    }

    /// Sets the schema the rows are kept under (the first call wins).
    pub(super) fn set_schema(&mut self, schema: SchemaRef) {
        self.schema.get_or_insert(schema);
    }

    /// Adds rows (in the kept schema's column order and types), in files
    /// of their own: the next [`Self::cut`] merges the small ones.
    pub(super) async fn push(&mut self, batches: &[RecordBatch]) -> Result<()> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        let schema = self.schema_or_err()?;
        let batches: Vec<RecordBatch> = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<_, _>>()?;
        let all = concat_batches(&schema, &batches)?;
        drop(batches);
        for at in (0..all.num_rows()).step_by(FILE_ROWS) {
            let part = all.slice(at, FILE_ROWS.min(all.num_rows() - at));
            let file = self.encode(&part)?;
            self.put(file).await?;
        }
        self.version = next_version();
        self.sweep().await;
        Ok(())
    }

    /// Removes every row whose key is at or after `lo` (a NULL key counts
    /// as before everything): a cut worked out and applied at once (the
    /// rollup works cuts out ahead).
    #[cfg(test)]
    pub(super) async fn drop_from(&mut self, lo: i64) -> Result<()> {
        let cut = self.cut(lo, Arc::default())?;
        self.apply_cut(cut).await
    }

    /// What dropping every row whose key is at or after `lo` (a NULL key
    /// counts as before everything) and the rows of `ids` leaves, worked
    /// out from a shared borrow (the files that straddle `lo` or hold one
    /// of `ids` decoded, filtered and encoded again), so that
    /// [`Self::apply_cut`] only swaps files.
    pub(super) fn cut(&self, lo: i64, ids: Arc<Ids>) -> Result<Cut> {
        let mut files = Vec::with_capacity(self.files.len());
        let mut fresh = Vec::new();
        for f in &self.files {
            let named = ids.in_file(f);
            if f.max_key < lo && !named {
                files.push(f.clone());
            } else if f.min_key < lo {
                let rows = self.decode(f)?;
                let keys = self.keys(&rows)?;
                let named: Option<&arrow::array::StringArray> = match named {
                    true => Some(
                        rows.column_by_name(ids.column)
                            .and_then(|c| c.as_string_opt::<i32>())
                            .ok_or_else(|| {
                                DataFusionError::Internal(format!("kept rows lack text column {}", ids.column))
                            })?,
                    ),
                    false => None,
                };
                let mask: BooleanArray = (0..rows.num_rows())
                    .map(|r| {
                        let before = keys.is_null(r) || keys.value(r) < lo;
                        let gone = named.is_some_and(|n| n.is_valid(r) && ids.ids.contains(n.value(r)));
                        Some(before && !gone)
                    })
                    .collect();
                let rest = filter_record_batch(&rows, &mask)?;
                if rest.num_rows() == rows.num_rows() {
                    files.push(f.clone());
                    continue;
                }
                if rest.num_rows() > 0 {
                    let file = self.encode(&rest)?;
                    files.push(file.clone());
                    fresh.push(file);
                }
            }
        }
        // Merging the trailing small files is done here too, so that
        // applying the cut (under the rollup's exclusive hold) only swaps.
        if let Some((merged, gone)) = self.merge_run(&mut files)? {
            fresh.retain(|f| !gone.iter().any(|g| g.path == f.path));
            files.push(merged.clone());
            fresh.push(merged);
        }
        Ok(Cut {
            version: self.version,
            lo,
            ids,
            files,
            fresh,
        })
    }

    /// Applies a [`Self::cut`]; the rows changed since it was worked
    /// out, it is worked out again.
    pub(super) async fn apply_cut(&mut self, cut: Cut) -> Result<()> {
        let cut = if cut.version == self.version {
            cut
        } else {
            self.cut(cut.lo, cut.ids)?
        };
        for f in &cut.fresh {
            self.store_put(f).await?;
        }
        let kept: std::collections::HashSet<&Path> = cut.files.iter().map(|f| &f.path).collect();
        let gone: Vec<KeptFile> = self.files.iter().filter(|f| !kept.contains(&f.path)).cloned().collect();
        let changed = !gone.is_empty() || !cut.fresh.is_empty();
        for f in &gone {
            self.retire(f);
        }
        drop(gone);
        self.files = cut.files;
        if changed {
            self.version = next_version();
        }
        self.sweep().await;
        Ok(())
    }

    /// The rows whose key is at or after `lo` (every row when `lo` is
    /// `i64::MIN`), still encoded: the files that hold any, filtered when
    /// decoded; `None` before the first [`Self::push`].
    pub(super) fn kept_from(&self, lo: i64) -> Option<super::persist::KeptFrom> {
        Some(super::persist::KeptFrom {
            schema: self.schema.clone()?,
            key: self.key,
            files: self
                .files
                .iter()
                .filter(|f| lo == i64::MIN || f.max_key >= lo)
                .map(|f| f.bytes.clone())
                .collect(),
            from: lo,
        })
    }

    /// Every row, decoded (for tests and small tables).
    pub(super) fn batches(&self) -> Result<Vec<RecordBatch>> {
        self.files.iter().map(|f| self.decode(f)).collect()
    }

    /// The files of this moment, for a scan.
    pub(super) fn snapshot(&self) -> Option<KeptSnapshot> {
        Some(KeptSnapshot {
            schema: self.schema.clone()?,
            store: self.store.clone(),
            url: self.url.clone(),
            paths: self.files.iter().map(|f| f.path.clone()).collect(),
            leases: Arc::new(self.files.iter().map(|f| f.lease.clone()).collect()),
        })
    }

    fn schema_or_err(&self) -> Result<SchemaRef> {
        self.schema
            .clone()
            .ok_or_else(|| DataFusionError::Internal("kept rows need a schema first".into()))
    }

    fn keys(&self, rows: &RecordBatch) -> Result<arrow::array::PrimitiveArray<Int64Type>> {
        let column = rows
            .column_by_name(self.key)
            .ok_or_else(|| DataFusionError::Internal(format!("kept rows lack key column {}", self.key)))?;
        Ok(cast(column, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
    }

    fn encode(&self, rows: &RecordBatch) -> Result<KeptFile> {
        let keys = self.keys(rows)?;
        let (min_key, max_key) = (0..keys.len()).fold((i64::MAX, i64::MIN), |(lo, hi), i| {
            let k = if keys.is_valid(i) { keys.value(i) } else { i64::MIN };
            (lo.min(k), hi.max(k))
        });
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(FILE_ROWS))
            .build();
        let mut buf = Vec::with_capacity(rows.num_rows() * 128);
        let mut writer = ArrowWriter::try_new(&mut buf, rows.schema(), Some(props))?;
        writer.write(rows)?;
        writer.close()?;
        // Numbered for the whole process: files encoded apart from the
        // rows (a cut) never take a number twice.
        static NEXT_FILE: AtomicU64 = AtomicU64::new(0);
        let number = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        Ok(KeptFile {
            path: Path::from(format!("f{number:08}.parquet")),
            bytes: Bytes::from(buf),
            rows: rows.num_rows(),
            min_key,
            max_key,
            lease: Arc::new(()),
        })
    }

    fn decode(&self, f: &KeptFile) -> Result<RecordBatch> {
        let schema = self.schema_or_err()?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f.bytes.clone())?
            .with_batch_size(FILE_ROWS)
            .build()?;
        let batches: Vec<RecordBatch> = reader
            .map(|b| b.and_then(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec())))
            .collect::<std::result::Result<_, _>>()?;
        Ok(concat_batches(&schema, &batches)?)
    }

    async fn store_put(&self, f: &KeptFile) -> Result<()> {
        self.store
            .put(&f.path, PutPayload::from_bytes(f.bytes.clone()))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(())
    }

    async fn put(&mut self, f: KeptFile) -> Result<()> {
        self.store_put(&f).await?;
        self.files.push(f);
        Ok(())
    }

    fn retire(&mut self, f: &KeptFile) {
        self.dropped.push((f.path.clone(), f.lease.clone()));
    }

    /// The trailing run of `files` merged into one file, when there are
    /// [`MERGE_RUN`] or more that fit in [`MERGE_ROWS`]: the run is taken
    /// off `files` and given back with the merged file (not in `files`,
    /// nor in the store yet).
    fn merge_run(&self, files: &mut Vec<KeptFile>) -> Result<Option<(KeptFile, Vec<KeptFile>)>> {
        let mut run = 0;
        let mut rows = 0;
        for f in files.iter().rev() {
            if rows + f.rows > MERGE_ROWS {
                break;
            }
            rows += f.rows;
            run += 1;
        }
        if run < MERGE_RUN {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(run);
        for f in &files[files.len() - run..] {
            parts.push(self.decode(f)?);
        }
        let merged = self.encode(&concat_batches(&self.schema_or_err()?, &parts)?)?;
        let tail = files.split_off(files.len() - run);
        Ok(Some((merged, tail)))
    }

    /// Deletes dropped files no snapshot or scan holds any more.
    async fn sweep(&mut self) {
        let (free, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dropped)
            .into_iter()
            .partition(|(_, lease)| Arc::strong_count(lease) == 1);
        self.dropped = held;
        for (path, _) in free {
            // Already gone is fine.
            let _ = self.store.delete(&path).await;
        }
    }
}

/// Scans read the snapshot's files through a `ListingTable`, after
/// registering the table's store in the scanning session's runtime.
#[async_trait::async_trait]
impl TableProvider for KeptSnapshot {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Base
    }

    /// Filters prune files and row groups by their statistics (the rows
    /// are kept in the order of their key, so ranges of time prune well);
    /// DataFusion still applies them to the rows read.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        Ok(vec![
            datafusion::logical_expr::TableProviderFilterPushDown::Inexact;
            filters.len()
        ])
    }

    /// Plans a scan of the snapshot's files in `state`'s session.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        state.runtime_env().register_object_store(&self.url, self.store.clone());
        if self.paths.is_empty() {
            return datafusion::datasource::MemTable::try_new(self.schema.clone(), vec![vec![]])?
                .scan(state, projection, filters, limit)
                .await;
        }
        let urls = self
            .paths
            .iter()
            .map(|p| ListingTableUrl::parse(format!("{}{}", self.url, p)))
            .collect::<Result<Vec<_>>>()?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(self.schema.clone());
        let plan = ListingTable::try_new(config)?
            .scan(state, projection, filters, limit)
            .await?;
        let what = format!("{} kept files", self.paths.len());
        Ok(crate::pinned::holding(plan, self.leases.clone(), what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::prelude::SessionContext;

    fn batch(schema: &SchemaRef, keys: std::ops::Range<i64>) -> RecordBatch {
        let k: Int64Array = keys.clone().map(Some).collect();
        let s: StringArray = keys.map(|i| Some(format!("c{i}"))).collect();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(s)]).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn sql_count(kept: &KeptRows, sql: &str) -> Vec<(i64, i64)> {
        let ctx = SessionContext::new();
        let snap = kept.snapshot().unwrap_or_else(|| panic!("no schema"));
        ctx.register_table("t", Arc::new(snap))
            .unwrap_or_else(|e| panic!("{e}"));
        let batches = ctx
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        for b in batches {
            let a = cast(b.column(0), &DataType::Int64).unwrap_or_else(|e| panic!("{e}"));
            let c = cast(b.column(1), &DataType::Int64).unwrap_or_else(|e| panic!("{e}"));
            for i in 0..b.num_rows() {
                out.push((
                    a.as_primitive::<Int64Type>().value(i),
                    c.as_primitive::<Int64Type>().value(i),
                ));
            }
        }
        out
    }

    /// Rows `k` (the key) and `name` (`c<k>`) for each of `keys`, pushed.
    async fn kept_of(keys: std::ops::Range<i64>) -> (SchemaRef, KeptRows) {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut kept = KeptRows::new("k");
        kept.set_schema(schema.clone());
        kept.push(&[batch(&schema, keys)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (schema, kept)
    }

    #[tokio::test]
    async fn rows_survive_pushes_drops_and_merges_and_scans_see_one_moment() {
        let (schema, mut kept) = kept_of(0..100_000).await;
        assert_eq!(kept.files.len(), 2, "split at FILE_ROWS");
        assert_eq!(kept.rows(), 100_000);
        let before = kept.snapshot();
        // Drop a tail that straddles the second file, then refresh it in
        // small steps as incremental loads do.
        kept.drop_from(90_000).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.rows(), 90_000);
        for step in 0..6 {
            let lo = 90_000 + step * 1_000;
            kept.drop_from(lo).await.unwrap_or_else(|e| panic!("{e}"));
            kept.push(&[batch(&schema, lo..lo + 2_000)])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(kept.rows(), 97_000);
        assert!(
            kept.files.len() <= 2 + MERGE_RUN,
            "the tail is merged: {} files",
            kept.files.len()
        );
        // Files a snapshot still lists stay readable; those no snapshot
        // holds are gone from the store at once.
        assert_eq!(kept.dropped.len(), 1, "the one listed file that was rewritten");
        let stored = {
            use futures::TryStreamExt;
            use object_store::ObjectStore;
            kept.store
                .list(None)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(stored.len(), kept.files.len() + 1);
        let rows = sql_count(&kept, "SELECT count(*), count(DISTINCT k) FROM t").await;
        assert_eq!(rows, vec![(97_000, 97_000)]);
        let rows = sql_count(
            &kept,
            "SELECT min(k), max(k) FROM t WHERE name LIKE 'c9%' AND k >= 95000",
        )
        .await;
        assert_eq!(rows, vec![(95_000, 96_999)]);
        // A snapshot taken before the changes still reads its own files.
        let ctx = SessionContext::new();
        let snap = before.unwrap_or_else(|| panic!("no schema"));
        ctx.register_table("t", Arc::new(snap))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = ctx
            .sql("SELECT count(*) FROM t")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n[0].column(0).as_primitive::<Int64Type>().value(0), 100_000);
        // Once that snapshot is gone, so is its file, at the next change.
        drop(ctx);
        kept.push(&[batch(&schema, 97_000..97_001)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(kept.dropped.is_empty(), "{:?}", kept.dropped);
        kept.drop_from(97_000).await.unwrap_or_else(|e| panic!("{e}"));
        // Everything decodes back, in key order.
        let all = kept.batches().unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<i64> = all
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(keys, (0..97_000).collect::<Vec<_>>());
        kept.drop_from(i64::MIN).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.rows(), 0);
        assert!(kept.bytes() == 0 && kept.version() > 0);
    }

    /// A cut worked out ahead drops what `drop_from` would; one worked out
    /// before the rows changed is worked out again when applied.
    #[tokio::test]
    async fn a_cut_worked_out_ahead_is_a_drop() {
        let (schema, mut kept) = kept_of(0..70_000).await;
        let cut = kept.cut(69_000, Arc::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.rows(), 70_000, "nothing dropped yet");
        kept.apply_cut(cut).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sql_count(&kept, "SELECT count(*), max(k) FROM t").await,
            vec![(69_000, 68_999)]
        );
        let stale = kept.cut(60_000, Arc::default()).unwrap_or_else(|e| panic!("{e}"));
        kept.push(&[batch(&schema, 69_000..69_500)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        kept.apply_cut(stale).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sql_count(&kept, "SELECT count(*), max(k) FROM t").await,
            vec![(60_000, 59_999)]
        );
    }

    /// A cut drops the named rows wherever their files are, besides those
    /// from its instant on; a file that holds none of them is kept as it was.
    #[tokio::test]
    async fn a_cut_drops_named_rows_too() {
        let (_, mut kept) = kept_of(0..100_000).await;
        let first = kept.files[0].path.clone();
        let ids = Ids {
            column: "name",
            ids: ["c70000", "c70001", "c5"].into_iter().map(Arc::from).collect(),
            // "c5" is named with a key no file holds: it is not looked for.
            keys: vec![70_000, 70_001, 200_000],
        };
        let cut = kept.cut(99_000, Arc::new(ids)).unwrap_or_else(|e| panic!("{e}"));
        kept.apply_cut(cut).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sql_count(&kept, "SELECT count(*), max(k) FROM t").await,
            vec![(98_998, 98_999)]
        );
        assert_eq!(
            sql_count(
                &kept,
                "SELECT count(*), min(k) FROM t WHERE name IN ('c5', 'c69999', 'c70002')"
            )
            .await,
            vec![(3, 5)]
        );
        assert_eq!(kept.files[0].path, first, "the first file holds none of them");
    }
}
