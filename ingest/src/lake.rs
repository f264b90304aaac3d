//! The lake: one Delta Lake table `events` on `object_store`.
//!
//! Files are Parquet, zstd-compressed, partitioned by `tenant_id` and
//! `event_date` (Hive-style paths, so DuckDB, Polars, Spark and Trino read
//! them as plain Parquet too), each file sorted by conversation and time.
//!
//! Exactly-once: every append commits, in the same Delta transaction, an
//! application transaction (`txn` action) `cxlake-wal` whose version is the
//! last write-ahead-log sequence number the commit holds. After a crash the
//! WAL is replayed only past that number, so a batch is never committed
//! twice even if the process died between the commit and WAL truncation.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::Expr;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;
use url::Url;

use crate::faults::Faults;
use crate::schema::{PARTITION_COLUMNS, events_schema};
use crate::store::DurableStore;

/// The application id of the WAL checkpoint in the Delta log.
pub const WAL_APP_ID: &str = "cxlake-wal";

/// Errors of the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("arrow error while preparing lake files: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("reading the lake: {0}")]
    Query(String),
    #[error("invalid lake location {0:?}: {1}")]
    Location(String, String),
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// Where the lake lives: a local directory (the embedded default) or any
/// URL `object_store` understands.
pub fn table_url(location: &str) -> Result<Url> {
    if location.contains("://") {
        return Url::parse(location).map_err(|e| LakeError::Location(location.into(), e.to_string()));
    }
    let path = std::path::Path::new(location);
    std::fs::create_dir_all(path).map_err(|e| LakeError::Location(location.into(), e.to_string()))?;
    let abs = path
        .canonicalize()
        .map_err(|e| LakeError::Location(location.into(), e.to_string()))?;
    Url::from_directory_path(&abs).map_err(|_| LakeError::Location(location.into(), "not an absolute path".into()))
}

/// A handle on the table at `url` whose writes go through a
/// [`DurableStore`]: a local lake's files are fsynced before any commit
/// can publish them.
pub fn builder(url: &Url, faults: &Faults) -> Result<deltalake::DeltaTableBuilder> {
    let b = deltalake::DeltaTableBuilder::from_url(url.clone())?;
    Ok(if url.scheme() == "file" {
        b.with_storage_backend(Arc::new(DurableStore::local(faults.clone())), url.clone())
    } else {
        b
    })
}

/// Opens the table if it exists. `None` means no event was ever flushed.
pub async fn open(url: &Url, faults: &Faults) -> Result<Option<DeltaTable>> {
    // Asking the Delta kernel about a table that does not exist logs an
    // error; for a local lake, look for the log first.
    if let Ok(root) = url.to_file_path() {
        if !root.join("_delta_log").is_dir() {
            return Ok(None);
        }
    }
    let table = builder(url, faults)?.load().await?;
    Ok(table.version().map(|_| table))
}

/// The last WAL sequence number committed to the table (0 if none).
pub async fn flushed_seq(table: Option<&DeltaTable>) -> Result<u64> {
    let Some(table) = table else { return Ok(0) };
    let state = table.snapshot()?;
    let v = state
        .transaction_version(table.log_store().as_ref(), WAL_APP_ID)
        .await?;
    Ok(v.map(|v| v.max(0) as u64).unwrap_or(0))
}

/// Number of data files in the table's current version.
pub fn file_count(table: &DeltaTable) -> usize {
    table.snapshot().map(|s| s.log_data().num_files()).unwrap_or(0)
}

/// Bytes of the data files in the table's current version (what storage
/// would hold with every replaced file vacuumed).
pub fn live_bytes(table: &DeltaTable) -> u64 {
    table
        .snapshot()
        .map(|s| s.log_data().iter().map(|f| f.size().max(0) as u64).sum())
        .unwrap_or(0)
}

/// Sorts batches the way lake files are laid out: tenant, date,
/// conversation, time.
pub fn sort_for_lake(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let batch = concat_batches(&events_schema(), batches)?;
    let col = |name: &str| -> Result<SortColumn> {
        let idx = batch.schema().index_of(name)?;
        Ok(SortColumn {
            values: batch.column(idx).clone(),
            options: None,
        })
    };
    let columns = vec![
        col("tenant_id")?,
        col("event_date")?,
        col("conversation_id")?,
        col("occurred_at")?,
        col("event_id")?,
    ];
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(&batch, &indices)?)
}

/// Parquet layout of lake files. Ids sorted by conversation share long
/// prefixes, so they are delta-encoded rather than dictionary-encoded;
/// timestamps, ascending within a conversation, are delta-packed; the rest
/// (low-cardinality strings) keeps dictionary encoding. Statistics are per
/// column chunk: the Delta log carries the file-level ones used for pruning,
/// and page indexes cost more bytes than they save on files this size.
fn writer_properties() -> WriterProperties {
    use deltalake::parquet::basic::Encoding;
    use deltalake::parquet::file::properties::EnabledStatistics;
    use deltalake::parquet::schema::types::ColumnPath;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_statistics_enabled(EnabledStatistics::Chunk);
    for (column, encoding) in [
        ("event_id", Encoding::DELTA_BYTE_ARRAY),
        ("message_id", Encoding::DELTA_BYTE_ARRAY),
        ("occurred_at", Encoding::DELTA_BINARY_PACKED),
    ] {
        let path = ColumnPath::from(column);
        b = b
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding);
    }
    b.build()
}

/// Appends the (already sorted) batch and records `through_seq` as the
/// WAL checkpoint, atomically. Creates the table on first use.
pub async fn append(
    url: &Url,
    faults: &Faults,
    table: Option<DeltaTable>,
    batch: RecordBatch,
    through_seq: u64,
) -> Result<DeltaTable> {
    let (table, creating) = match table {
        Some(t) => (t, false),
        // First flush: an unloaded handle; the write creates the table.
        None => (builder(url, faults)?.build()?, true),
    };
    let commit =
        CommitProperties::default().with_application_transaction(Transaction::new(WAL_APP_ID, through_seq as i64));
    let mut write = table
        .write(vec![batch])
        .with_save_mode(SaveMode::Append)
        .with_partition_columns(PARTITION_COLUMNS)
        .with_writer_properties(writer_properties())
        .with_commit_properties(commit);
    if creating {
        write = write.with_configuration([(STATS_COLUMNS_PROPERTY, Some(STATS_COLUMNS))]);
    }
    Ok(write.await?)
}

/// Shared handle type for a loaded table version.
pub type TableRef = Arc<DeltaTable>;

/// One partition of the table: `(tenant_id, event_date as YYYY-MM-DD)`.
pub type Partition = (String, String);

/// Partitions whose small files (under `small_bytes`) hold a size tier
/// of at least `min_files` files (see [`tiered_bin`]), most small files
/// first. A partition compaction left without such a tier is not picked
/// again until new data arrives.
pub fn fragmented_partitions(table: &DeltaTable, min_files: usize, small_bytes: u64) -> Vec<(Partition, usize)> {
    let mut sizes: std::collections::HashMap<Partition, Vec<i64>> = std::collections::HashMap::new();
    if let Ok(snapshot) = table.snapshot() {
        for f in snapshot.log_data().iter() {
            if f.size().max(0) as u64 >= small_bytes {
                continue;
            }
            if let Some(p) = partition_of(&f.object_store_path()) {
                sizes.entry(p).or_default().push(f.size());
            }
        }
    }
    let cap = small_bytes as i64;
    let mut out: Vec<_> = sizes
        .into_iter()
        .filter_map(|(p, mut s)| {
            s.sort_unstable();
            (tiered_bin(&s, min_files, cap) >= 2).then_some((p, s.len()))
        })
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Size-tiered compaction: how many of a partition's small files
/// (`sizes`, ascending) to merge into one, 0 when none need it.
///
/// Files whose sizes lie within a factor of two of a tier's smallest form
/// a tier; the first tier holding `min_files` files is merged, with every
/// smaller file. A byte is therefore rewritten only when its file is
/// merged with about `min_files` files of its size, so it is rewritten a
/// logarithmic number of times as a partition grows, not once per round
/// (merging everything small each round rewrites today's partition after
/// every few flushes). When the merged file would itself complete the
/// next tier, or another tier is full too, it is merged in the same pass,
/// so a partition is never rewritten twice without new data. `cap` bounds
/// the merged bytes (and so the memory a merge takes).
pub fn tiered_bin(sizes: &[i64], min_files: usize, cap: i64) -> usize {
    let min_files = min_files.max(2);
    let mut taken = 0;
    let mut merged: Option<i64> = None;
    loop {
        // The partition as it would be after merging `taken` files.
        let mut files: Vec<(i64, bool)> = sizes[taken..].iter().map(|&s| (s, false)).collect();
        if let Some(m) = merged {
            let at = files.partition_point(|&(s, _)| s < m);
            files.insert(at, (m, true));
        }
        let mut tier_end = None;
        let mut start = 0;
        while start < files.len() {
            let floor = files[start].0.max(1);
            let end = start
                + files[start..]
                    .iter()
                    .take_while(|(s, _)| *s <= floor.saturating_mul(2))
                    .count();
            if end - start >= min_files {
                tier_end = Some(end);
                break;
            }
            start = end;
        }
        let Some(end) = tier_end else { break };
        let merging = &files[..end];
        // The merged file so far goes into this pass's one output file
        // even when it sits above the tier.
        let total: i64 = merging.iter().map(|&(s, _)| s).sum::<i64>()
            + merged.filter(|_| !merging.iter().any(|&(_, v)| v)).unwrap_or(0);
        if total > cap {
            break;
        }
        taken += merging.iter().filter(|&&(_, v)| !v).count();
        merged = Some(total);
    }
    taken
}

/// Merges the small files of one partition that [`tiered_bin`] picks
/// (files under half of `target_bytes`) into one sorted file, in one
/// commit that removes exactly them. Large files are never read again,
/// and memory holds one bin, at most half of `target_bytes`, not the
/// partition.
/// `None` when no tier needs merging. The caller must be the table's only
/// writer (the pipeline holds its flush lock).
pub async fn compact_partition(
    table: &DeltaTable,
    partition: &Partition,
    target_bytes: u64,
    min_files: usize,
) -> Result<Option<DeltaTable>> {
    use deltalake::kernel::Action;
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::DeltaOperation;
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};
    use object_store::ObjectStoreExt;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let (tenant, date) = partition;
    let day = (date.len() == 10)
        .then(|| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| LakeError::Location(format!("{tenant}/{date}"), "not a cxlake partition".into()))?;
    let epoch_days = (day - chrono::NaiveDate::default()).num_days() as i32;
    let half = (target_bytes / 2).max(1) as i64;

    let mut small: Vec<(i64, deltalake::Path, deltalake::kernel::Remove)> = table
        .snapshot()?
        .log_data()
        .iter()
        .filter(|f| f.size() < half && partition_of(&f.object_store_path()).as_ref() == Some(partition))
        .map(|f| (f.size(), f.object_store_path(), f.remove_action(false)))
        .collect();
    small.sort_by_key(|(size, ..)| *size);
    let sizes: Vec<i64> = small.iter().map(|(size, ..)| *size).collect();
    let take = tiered_bin(&sizes, min_files, half);
    let bin: Vec<_> = small.into_iter().take(take).collect();
    if bin.len() < 2 {
        return Ok(None);
    }

    let store = table.object_store();
    let mut batches = Vec::new();
    for (_, path, _) in &bin {
        let read_err = |e: &dyn std::fmt::Display| LakeError::Query(format!("{path}: {e}"));
        // Small files by construction: read whole, decode in memory.
        let bytes = store
            .get(path)
            .await
            .map_err(|e| read_err(&e))?
            .bytes()
            .await
            .map_err(|e| read_err(&e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| read_err(&e))?
            .build()
            .map_err(|e| read_err(&e))?;
        for b in reader {
            batches.push(with_partition_values(&b?, tenant, epoch_days)?);
        }
    }
    let sorted = sort_for_lake(&batches)?;
    drop(batches);

    let mut writer = RecordBatchWriter::for_table(table)?
        .with_writer_properties(writer_properties())
        .with_target_file_size(target_bytes);
    writer.write(sorted).await?;
    let mut actions: Vec<Action> = writer
        .flush()
        .await?
        .into_iter()
        .map(|mut add| {
            add.data_change = false;
            Action::Add(add)
        })
        .collect();
    actions.extend(bin.into_iter().map(|(_, _, remove)| Action::Remove(remove)));
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: target_bytes as i64,
    };
    let commit = CommitBuilder::default()
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    let mut table = table.clone();
    table.update_state().await?;
    if table.version() < Some(commit.version) {
        table.load_version(commit.version).await?;
    }
    Ok(Some(table))
}

/// `(tenant, date)` of a data file's Hive-style path.
fn partition_of(path: &deltalake::Path) -> Option<Partition> {
    let mut tenant = None;
    let mut date = None;
    for part in path.parts() {
        let p = part.as_ref();
        if let Some(t) = p.strip_prefix("tenant_id=") {
            tenant = Some(t.to_string());
        } else if let Some(d) = p.strip_prefix("event_date=") {
            date = Some(d.to_string());
        }
    }
    Some((tenant?, date?))
}

/// A batch read from a data file, with the partition columns its path
/// holds, in the `events` schema.
fn with_partition_values(batch: &RecordBatch, tenant: &str, epoch_days: i32) -> Result<RecordBatch> {
    let schema = events_schema();
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let column: arrow::array::ArrayRef = match f.name().as_str() {
            "tenant_id" => Arc::new(arrow::array::StringArray::from(vec![tenant; rows])),
            "event_date" => Arc::new(arrow::array::Date32Array::from(vec![epoch_days; rows])),
            name => arrow::compute::cast(batch.column(batch.schema().index_of(name)?), f.data_type())?,
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Deletes data files that left the table more than `retention` ago,
/// and files no commit references (left by writes that never committed)
/// once they are as old, except the files of the versions in `keep`
/// (older versions that readers still hold). Returns the table and how
/// many files were deleted.
pub async fn vacuum(table: &DeltaTable, retention: std::time::Duration, keep: &[u64]) -> Result<(DeltaTable, usize)> {
    use deltalake::operations::vacuum::VacuumMode;
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::hours(1));
    let mut vacuum = table
        .clone()
        .vacuum()
        .with_mode(VacuumMode::Full)
        .with_retention_period(retention)
        .with_enforce_retention_duration(false);
    if !keep.is_empty() {
        let versions: Vec<_> = keep.iter().map(|v| *v as _).collect();
        vacuum = vacuum.with_keep_versions(&versions);
    }
    let (table, metrics) = vacuum.await?;
    Ok((table, metrics.files_deleted.len()))
}

/// Casts a batch read back from the lake (view types, dictionary-encoded
/// partition values, any column order) to the `events` schema.
fn conform_to_events_schema(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = events_schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let idx = batch.schema().index_of(f.name())?;
        columns.push(arrow::compute::cast(batch.column(idx), f.data_type())?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The table property naming the columns whose statistics go into the
/// Delta log.
pub const STATS_COLUMNS_PROPERTY: &str = "delta.dataSkippingStatsColumns";

/// Columns with min/max statistics in the Delta log: what pruning uses
/// (time, type, the routing dimensions, conversations). Personal columns
/// (`customer_id`, `unit_id`, `comment`, `attrs`, `order_id`, ...) are left
/// out, so the log never holds a customer's id or words; the Parquet files
/// themselves are rewritten by an erasure.
pub const STATS_COLUMNS: &str =
    "type,occurred_at,conversation_id,channel,channel_account,queue,team,agent_id,experiment_key,variant_key";

/// Sets [`STATS_COLUMNS_PROPERTY`] on a table created before it existed
/// (files written from then on carry no personal statistics; older files
/// keep theirs until compaction or an erasure rewrites them).
pub async fn ensure_stats_columns(table: DeltaTable) -> Result<DeltaTable> {
    let current = table
        .snapshot()?
        .metadata()
        .configuration()
        .get(STATS_COLUMNS_PROPERTY)
        .cloned();
    if current.as_deref() == Some(STATS_COLUMNS) {
        return Ok(table);
    }
    let properties = std::collections::HashMap::from([(STATS_COLUMNS_PROPERTY.to_string(), STATS_COLUMNS.to_string())]);
    Ok(table.set_tbl_properties().with_properties(properties).await?)
}

/// The rows of a tenant's partitions: `tenant_id = tenant` and, when
/// `days` is given, `event_date` in it (days since the epoch). Values are
/// typed literals, never SQL text, so partitions are pruned on them.
pub fn tenant_rows(tenant: &str, days: Option<&std::collections::BTreeSet<i32>>) -> Expr {
    use deltalake::datafusion::prelude::{col, lit};
    use deltalake::datafusion::scalar::ScalarValue;
    let rows = col("tenant_id").eq(lit(tenant));
    match days {
        None => rows,
        Some(days) => rows
            .and(col("event_date").in_list(days.iter().map(|d| lit(ScalarValue::Date32(Some(*d)))).collect(), false)),
    }
}

/// Reads `columns` (all when `None`) of the table's rows that meet
/// `filter` and hands each batch, cast to the `events` types where it has
/// those columns, to `visit`.
pub async fn scan(
    table: &DeltaTable,
    columns: Option<&[&str]>,
    filter: Option<Expr>,
    mut visit: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    use deltalake::datafusion::prelude::SessionContext;
    use futures::StreamExt;
    let df_err = |e: deltalake::datafusion::error::DataFusionError| LakeError::Query(e.to_string());
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    let provider = table.table_provider().await.map_err(df_err)?;
    let mut df = ctx.read_table(provider).map_err(df_err)?;
    if let Some(filter) = filter {
        df = df.filter(filter).map_err(df_err)?;
    }
    if let Some(columns) = columns {
        df = df.select_columns(columns).map_err(df_err)?;
    }
    let mut stream = df.execute_stream().await.map_err(df_err)?;
    while let Some(batch) = stream.next().await {
        visit(conform_columns(&batch.map_err(df_err)?)?)?;
    }
    Ok(())
}

/// Casts each column that the `events` schema knows to its type there
/// (view types and dictionary-encoded partition values come back plain).
fn conform_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = events_schema();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        match schema.field_with_name(f.name()) {
            Ok(target) => {
                columns.push(arrow::compute::cast(c, target.data_type())?);
                fields.push(target.clone());
            }
            Err(_) => {
                columns.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}

/// Rewrites the tenant's partitions `days` (days since the epoch) without
/// the rows `remove` marks, in one commit: a `replaceWhere` overwrite (or,
/// when nothing is left, a delete) whose predicate names only the tenant
/// and the dates, so no personal value is written into the Delta log.
/// The caller must be the only writer (the pipeline's flush lock).
/// Returns the new table and the number of rows removed.
pub async fn rewrite_partitions(
    table: &DeltaTable,
    tenant: &str,
    days: &std::collections::BTreeSet<i32>,
    remove: impl Fn(&RecordBatch) -> arrow::array::BooleanArray,
) -> Result<(DeltaTable, usize)> {
    if !model::TenantId::is_valid(tenant) {
        return Err(LakeError::Location(tenant.into(), "not a tenant id".into()));
    }
    if days.is_empty() {
        return Ok((table.clone(), 0));
    }
    let predicate = tenant_rows(tenant, Some(days));
    let mut kept = Vec::new();
    let mut removed = 0usize;
    scan(table, None, Some(predicate.clone()), |batch| {
        let batch = conform_to_events_schema(&batch)?;
        let gone = remove(&batch);
        removed += gone.true_count();
        let keep = arrow::compute::not(&gone)?;
        kept.push(arrow::compute::filter_record_batch(&batch, &keep)?);
        Ok(())
    })
    .await?;
    if kept.iter().all(|b| b.num_rows() == 0) {
        let (table, _) = table.clone().delete().with_predicate(predicate).await?;
        return Ok((table, removed));
    }
    let sorted = sort_for_lake(&kept)?;
    let table = table
        .clone()
        .write(vec![sorted])
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        .with_partition_columns(PARTITION_COLUMNS)
        .with_writer_properties(writer_properties())
        .await?;
    Ok((table, removed))
}

/// What [`purge_history`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub data_files: usize,
    pub log_files: usize,
}

/// Leaves nothing but the current version on storage: deletes every data
/// file the current version does not reference (a full vacuum with zero
/// retention), writes a checkpoint of the current version, and deletes
/// every log file (commits, checkpoints) before it, so neither time travel
/// nor a stray file can bring removed rows back. Readers holding an older
/// version lose it. The caller must be the only writer. The table's store
/// makes the checkpoint durable before any log file it replaces is deleted.
pub async fn purge_history(table: DeltaTable) -> Result<(DeltaTable, Purged)> {
    use deltalake::operations::vacuum::VacuumMode;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let (table, metrics) = table
        .vacuum()
        .with_mode(VacuumMode::Full)
        .with_retention_period(chrono::Duration::zero())
        .with_enforce_retention_duration(false)
        .await?;
    let mut table = table;
    table.update_state().await?;
    let Some(version) = table.version() else {
        return Ok((table, Purged::default()));
    };
    deltalake::checkpoints::create_checkpoint(&table, None).await?;
    let store = table.log_store().object_store(None);
    let log_path = deltalake::Path::from("_delta_log");
    let entries: Vec<deltalake::ObjectMeta> = store
        .list(Some(&log_path))
        .try_collect()
        .await
        .map_err(|e| LakeError::Query(e.to_string()))?;
    let mut log_files = 0;
    for meta in entries {
        let Some(name) = meta.location.filename() else { continue };
        let older = name
            .get(..20)
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v < version);
        // Temp files of interrupted commits may hold anything.
        let stray = name.starts_with('.') || name.contains(".tmp");
        if older || stray {
            store
                .delete(&meta.location)
                .await
                .map_err(|e| LakeError::Query(e.to_string()))?;
            log_files += 1;
        }
    }
    table.update_state().await?;
    Ok((
        table,
        Purged {
            data_files: metrics.files_deleted.len(),
            log_files,
        },
    ))
}

#[cfg(test)]
mod tiering_tests {
    use super::tiered_bin;

    /// Applies compaction to a partition's file sizes as the pipeline
    /// does after a flush; returns the bytes rewritten.
    fn compact(files: &mut Vec<i64>, min_files: usize, cap: i64) -> i64 {
        files.sort_unstable();
        let take = tiered_bin(files, min_files, cap);
        if take < 2 {
            return 0;
        }
        let merged: i64 = files.drain(..take).sum();
        files.push(merged);
        merged
    }

    #[test]
    fn a_tier_is_merged_once_it_holds_min_files_with_every_smaller_file() {
        assert_eq!(tiered_bin(&[10, 10, 10], 4, 1 << 30), 0);
        assert_eq!(tiered_bin(&[10, 10, 11, 12], 4, 1 << 30), 4);
        // A tier of four 100s, with the two tiny files below it.
        assert_eq!(tiered_bin(&[1, 3, 100, 110, 120, 130, 1000], 4, 1 << 30), 6);
        // Files of ever larger sizes are no tier.
        assert_eq!(tiered_bin(&[10, 25, 60, 150, 400], 2, 1 << 30), 0);
        // The cap leaves the tier for later rather than reading too much.
        assert_eq!(tiered_bin(&[10, 10, 10, 10], 4, 39), 0);
    }

    #[test]
    fn steady_ingest_rewrites_each_byte_a_logarithmic_number_of_times() {
        let (min_files, flush) = (8, 40_000);
        let mut files = Vec::new();
        let mut written = 0;
        let mut rewritten = 0;
        for _ in 0..4_096 {
            files.push(flush);
            written += flush;
            rewritten += compact(&mut files, min_files, i64::MAX);
            assert!(files.len() <= 4 * min_files, "{} files: {files:?}", files.len());
        }
        // 4,096 flushes = 8^4: each byte is rewritten about four times
        // (merging every small file each round would rewrite it hundreds).
        assert!(rewritten <= 5 * written, "rewrote {rewritten} bytes of {written}");
        assert!(
            rewritten >= 3 * written,
            "the tiers did merge: {rewritten} of {written}"
        );
    }

    #[test]
    fn without_new_data_a_compacted_partition_is_not_rewritten_again() {
        let mut seed: u64 = 7;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for _ in 0..2_000 {
            let n = 2 + (next() % 30) as usize;
            let mut files: Vec<i64> = (0..n).map(|_| 1 + next() % 5_000).collect();
            let min_files = 2 + (next() % 7) as usize;
            compact(&mut files, min_files, i64::MAX);
            files.sort_unstable();
            assert_eq!(
                tiered_bin(&files, min_files, i64::MAX),
                0,
                "{files:?} min_files {min_files}"
            );
        }
    }
}
