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
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;
use url::Url;

use crate::schema::{PARTITION_COLUMNS, events_schema};

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

/// Opens the table if it exists. `None` means no event was ever flushed.
pub async fn open(url: &Url) -> Result<Option<DeltaTable>> {
    // Asking the Delta kernel about a table that does not exist logs an
    // error; for a local lake, look for the log first.
    if let Ok(root) = url.to_file_path() {
        if !root.join("_delta_log").is_dir() {
            return Ok(None);
        }
    }
    let table = DeltaTable::try_from_url(url.clone()).await?;
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
pub async fn append(url: &Url, table: Option<DeltaTable>, batch: RecordBatch, through_seq: u64) -> Result<DeltaTable> {
    let table = match table {
        Some(t) => t,
        // First flush: an unloaded handle; the write creates the table.
        None => deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?,
    };
    let commit =
        CommitProperties::default().with_application_transaction(Transaction::new(WAL_APP_ID, through_seq as i64));
    let table = table
        .write(vec![batch])
        .with_save_mode(SaveMode::Append)
        .with_partition_columns(PARTITION_COLUMNS)
        .with_writer_properties(writer_properties())
        .with_commit_properties(commit)
        .await?;
    Ok(table)
}

/// Shared handle type for a loaded table version.
pub type TableRef = Arc<DeltaTable>;

/// `object_store`'s local filesystem does not fsync. Before the WAL that
/// backs a commit may be deleted, the commit must survive a power cut:
/// for a local lake, fsync the data files the commit added, their
/// directories, the new log entry and the log directory.
pub fn sync_local_commit(url: &Url, old: Option<&DeltaTable>, new: &DeltaTable) -> std::io::Result<()> {
    use std::collections::{BTreeSet, HashSet};
    if url.scheme() != "file" {
        return Ok(());
    }
    let Ok(root) = url.to_file_path() else { return Ok(()) };
    let files = |t: &DeltaTable| -> HashSet<String> {
        t.snapshot()
            .map(|s| {
                s.log_data()
                    .iter()
                    .map(|f| f.object_store_path().as_ref().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = old.map(files).unwrap_or_default();
    let mut dirs = BTreeSet::new();
    for rel in files(new).difference(&before) {
        let path = root.join(rel);
        std::fs::File::open(&path)?.sync_all()?;
        if let Some(parent) = path.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    let log = root.join("_delta_log");
    if let Some(v) = new.version() {
        let entry = log.join(format!("{v:020}.json"));
        if entry.exists() {
            std::fs::File::open(&entry)?.sync_all()?;
        }
    }
    dirs.insert(log);
    // Parent directories up to the table root hold new partition entries.
    let mut all_dirs = BTreeSet::new();
    for d in dirs {
        let mut cur = Some(d.as_path());
        while let Some(p) = cur {
            if !p.starts_with(&root) {
                break;
            }
            all_dirs.insert(p.to_path_buf());
            cur = p.parent();
        }
    }
    for d in all_dirs {
        std::fs::File::open(&d)?.sync_all()?;
    }
    Ok(())
}

/// One partition of the table: `(tenant_id, event_date as YYYY-MM-DD)`.
pub type Partition = (String, String);

/// Partitions holding at least `min_files` data files, most files first.
pub fn fragmented_partitions(table: &DeltaTable, min_files: usize) -> Vec<(Partition, usize)> {
    let mut counts: std::collections::HashMap<Partition, usize> = std::collections::HashMap::new();
    if let Ok(snapshot) = table.snapshot() {
        for f in snapshot.log_data().iter() {
            let path = f.object_store_path();
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
            if let (Some(t), Some(d)) = (tenant, date) {
                *counts.entry((t, d)).or_default() += 1;
            }
        }
    }
    let mut out: Vec<_> = counts.into_iter().filter(|(_, n)| *n >= min_files).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Rewrites one partition as a single sorted file set, atomically
/// (`replaceWhere` overwrite of exactly that partition). The caller must be
/// the table's only writer while this runs (the pipeline holds its flush
/// lock), so no append can slip between the read and the commit.
pub async fn compact_partition(table: &DeltaTable, partition: &Partition) -> Result<DeltaTable> {
    use deltalake::datafusion::prelude::{SessionContext, col, lit};
    let (tenant, date) = partition;
    let valid_date = date.len() == 10 && date.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if !crate::contract::valid_tenant_id(tenant) || !valid_date {
        return Err(LakeError::Location(
            format!("{tenant}/{date}"),
            "not a cxlake partition".into(),
        ));
    }
    let df_err = |e: deltalake::datafusion::error::DataFusionError| LakeError::Query(e.to_string());
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| LakeError::Location(format!("{tenant}/{date}"), e.to_string()))?;
    let epoch_days = (day - chrono::NaiveDate::default()).num_days() as i32;
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    let provider = table.table_provider().await.map_err(df_err)?;
    ctx.register_table("events", provider).map_err(df_err)?;
    let sql = format!("SELECT * FROM events WHERE tenant_id = '{tenant}' AND event_date = DATE '{date}'");
    let batches = ctx.sql(&sql).await.map_err(df_err)?.collect().await.map_err(df_err)?;
    let batches = batches
        .iter()
        .map(conform_to_events_schema)
        .collect::<Result<Vec<_>>>()?;
    let sorted = sort_for_lake(&batches)?;
    let predicate = col("tenant_id").eq(lit(tenant.as_str())).and(col("event_date").eq(lit(
        deltalake::datafusion::scalar::ScalarValue::Date32(Some(epoch_days)),
    )));
    let table = table
        .clone()
        .write(vec![sorted])
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        .with_partition_columns(PARTITION_COLUMNS)
        .with_writer_properties(writer_properties())
        .await?;
    Ok(table)
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
