//! A rollup's facts persisted in the lake, so that a start reads them
//! instead of folding the tenant's whole history again.
//!
//! # Layout
//!
//! Delta tables next to `events` (`<lake>/facts/<table>`), each
//! partitioned by `tenant_id` and a day (UTC) of its key instant, sorted
//! by that instant and then by conversation within a partition (so a
//! start reads them back in order) ([`FACT_TABLES`]):
//!
//! | table | rows | day of |
//! |---|---|---|
//! | `conversations` | every column of `sql/views/conversations.sql` | `first_event_at` |
//! | `conversation_details` | customer-turn waits, replying agents, attributed orders per currency | `first_event_at` |
//! | `script_uses` | the `script_uses` view's rows | `first_event_at` |
//! | `exposure_events` | the `experiment.exposed` events `exposures` reads | `occurred_at` |
//! | `orders` | orders placed and the conversation credited | `placed_at` |
//! | `agent_online` | agents' online intervals | `started_at` |
//! | `costs` | `cost.incurred` amounts | `occurred_at` |
//!
//! They are plain Delta tables: DuckDB, Polars or Python `deltalake` read
//! them. The hourly cells are not stored: a start sums them from the
//! facts in memory (a pass over the facts, no events).
//!
//! # Consistency
//!
//! A save replaces, in each table, the tenant's partitions from the first
//! day its rollup changed since the last save (the rollup replaces
//! everything from an instant on, so those days are whole in memory),
//! each commit carrying the application transaction
//! `cxlake-facts/<tenant>` = the ingest sequence number the facts reflect
//! (the numbering of the `events` table's own `cxlake-wal` stamp). The
//! tables are written one after the other, so a crash can leave some of
//! them ahead of the others; the tenant's *manifest* (`<lake>/facts/_manifests/<tenant>.json`,
//! written last, atomically) names the version of each table that
//! belongs to one state, plus what the rollup needs to catch up from it:
//! the `events` files it had seen, the days of the buffered rows it
//! counted, the ingest sequence number and the settings. A start loads
//! each table at the version the manifest names, then refreshes from
//! there as after any other refresh: only what the lake gained or lost
//! since is recomputed. Older table versions stay loadable for
//! [`VACUUM_RETENTION`].

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Array, Float64Array, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::{col, lit};
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;
use ingest::faults::Faults;
use serde::{Deserialize, Serialize};
use url::Url;

use super::build::{cast, int64s, nullable_schema, script_uses_schema, strings};
use super::*;

/// One persisted table: its name, the instant column whose UTC day is its
/// partition, and that partition column's name.
#[derive(Debug, Clone, Copy)]
pub struct FactTable {
    pub name: &'static str,
    pub key: &'static str,
    pub day: &'static str,
    /// The columns with statistics in the Delta log: never a personal
    /// one (customer ids, order ids), so the log holds nobody's id.
    pub stats: &'static str,
}

/// The persisted tables (see the module docs).
pub const FACT_TABLES: [FactTable; 7] = [
    FactTable {
        name: "conversations",
        key: "first_event_at",
        day: "first_event_date",
        stats: "conversation_id,first_event_at,started_at,channel,channel_account,queue,team,agent_id",
    },
    FactTable {
        name: "conversation_details",
        key: "first_event_at",
        day: "first_event_date",
        stats: "conversation_id,first_event_at",
    },
    FactTable {
        name: "script_uses",
        key: "first_event_at",
        day: "first_event_date",
        stats: "conversation_id,first_event_at,kind",
    },
    FactTable {
        name: "exposure_events",
        key: "occurred_at",
        day: "event_date",
        stats: "experiment_key,variant_key,conversation_id,occurred_at",
    },
    FactTable {
        name: "orders",
        key: "placed_at",
        day: "placed_date",
        stats: "placed_at,attributed_conversation_id",
    },
    FactTable {
        name: "agent_online",
        key: "started_at",
        day: "started_date",
        stats: "agent_id,team,started_at",
    },
    FactTable {
        name: "costs",
        key: "occurred_at",
        day: "event_date",
        stats: "occurred_at,currency",
    },
];

/// Files of a table replaced longer ago than this are deleted.
pub const VACUUM_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// The application id prefix of a save's stamp ([`app_id`]).
pub const FACTS_APP_ID: &str = "cxlake-facts";

/// Layout of the manifest; a manifest of another format is ignored (the
/// facts are built anew).
const MANIFEST_FORMAT: u32 = 1;

/// What names one consistent state of a tenant's persisted facts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub tenant: String,
    /// The `events` table version whose files the facts reflect.
    pub events_version: Option<u64>,
    /// Every batch acknowledged with this sequence number or a lower one
    /// is in the facts.
    pub through_seq: Option<u64>,
    pub sla_target_us: i64,
    pub attribution_window_days: u32,
    /// The tenant's `events` data files then: path → `event_date`.
    pub files: BTreeMap<String, String>,
    /// Days of buffered rows the facts counted (not in those files).
    pub buffer_days: BTreeSet<i32>,
    /// Table name → its version holding this state (absent: no rows).
    pub tables: BTreeMap<String, u64>,
    /// The `conversations` columns and types the rows were saved with: a
    /// manifest of other columns (the view changed since) is not read
    /// back, its facts are built anew.
    #[serde(default)]
    pub columns: Vec<String>,
}

/// The columns and types of the kept `conversations` rows, as a
/// [`Manifest`] records them.
fn rows_columns() -> Result<Vec<String>> {
    Ok(conversations_rows_schema()?
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect())
}

/// Rows of a kept table from an instant on, still encoded: decoded by
/// the writer, after the rollup's lock is released.
#[derive(Debug)]
pub struct KeptFrom {
    pub(super) schema: SchemaRef,
    pub(super) key: &'static str,
    pub(super) files: Vec<bytes::Bytes>,
    pub(super) from: i64,
}

impl KeptFrom {
    fn batches(&self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(self.files.len());
        for bytes in &self.files {
            let reader =
                datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?
                    .build()?;
            for b in reader {
                let b = RecordBatch::try_new(self.schema.clone(), b?.columns().to_vec())?;
                let keys = int64s(&b, self.key)?;
                let keys = keys.as_primitive::<Int64Type>();
                let mask: BooleanArray = keys.iter().map(|k| Some(k.is_some_and(|k| k >= self.from))).collect();
                let kept = filter_record_batch(&b, &mask)?;
                if kept.num_rows() > 0 {
                    out.push(kept);
                }
            }
        }
        Ok(out)
    }
}

/// One table's part of an [`Export`].
#[derive(Debug)]
pub enum ExportRows {
    Kept(KeptFrom),
    Built(RecordBatch),
}

/// What a save writes: each table's rows from `from_day` on (all when
/// `None`) and the manifest (its `tables` filled in by the save).
#[derive(Debug)]
pub struct Export {
    pub from_day: Option<i32>,
    pub tables: Vec<(FactTable, ExportRows)>,
    pub manifest: Manifest,
    /// What the rollup had marked unsaved, given back if the save fails.
    unsaved: i64,
    /// The rollup's count of marks when this was taken.
    marks: u64,
}

impl Export {
    /// What the rollup had marked unsaved: given back with
    /// [`TenantRollup::unsaved_from`] when the save fails.
    pub fn unsaved(&self) -> i64 {
        self.unsaved
    }
}

/// Where facts are persisted: Delta tables under one root URL.
#[derive(Debug)]
pub struct FactStore {
    root: Url,
    faults: Faults,
    /// One save at a time: tables are shared by tenants.
    writing: tokio::sync::Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    open: HashMap<&'static str, DeltaTable>,
    manifests: HashMap<String, Manifest>,
    vacuumed: Option<std::time::Instant>,
}

fn delta_err(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("persisted facts: {e}"))
}

impl FactStore {
    /// The facts next to the `events` table at `events_url` (its sibling
    /// `facts/`). Only a local lake for now.
    pub fn beside(events_url: &Url, faults: Faults) -> Result<Self> {
        if events_url.scheme() != "file" {
            return Err(delta_err(format!(
                "facts are persisted on a local lake only, not {events_url}"
            )));
        }
        let root = events_url.join("../facts/").map_err(delta_err)?;
        Ok(Self {
            root,
            faults,
            writing: Default::default(),
        })
    }

    fn table_url(&self, name: &str) -> Result<Url> {
        let url = self.root.join(&format!("{name}/")).map_err(delta_err)?;
        let path = url
            .to_file_path()
            .map_err(|_| delta_err(format!("not a path: {url}")))?;
        std::fs::create_dir_all(&path).map_err(delta_err)?;
        Ok(url)
    }

    fn manifest_path(&self, tenant: &str) -> Result<std::path::PathBuf> {
        let dir = self
            .root
            .to_file_path()
            .map_err(|_| delta_err(format!("not a path: {}", self.root)))?
            .join("_manifests");
        Ok(dir.join(format!("{tenant}.json")))
    }

    /// The tenant's last saved manifest, if any (one of another format or
    /// unreadable counts as none, with a warning).
    pub async fn manifest(&self, tenant: &str) -> Result<Option<Manifest>> {
        let path = self.manifest_path(tenant)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(delta_err(e)),
        };
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.format == MANIFEST_FORMAT && m.tenant == tenant && m.columns == rows_columns()? => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(tenant, error = %e, "persisted facts manifest unreadable; building anew");
                Ok(None)
            }
        }
    }

    /// The tenant's rows of each table at the versions `manifest` names,
    /// and whether a table holds a later save of the tenant than the
    /// manifest names (a save a crash cut before its manifest: those rows
    /// are overwritten only by a save of everything).
    pub async fn read(&self, manifest: &Manifest) -> Result<(HashMap<&'static str, Vec<RecordBatch>>, bool)> {
        let mut out = HashMap::new();
        let mut ahead = false;
        let app = app_id(&manifest.tenant);
        for t in FACT_TABLES {
            let url = self.table_url(t.name)?;
            let Some(mut table) = ingest::lake::open(&url, &self.faults).await.map_err(delta_err)? else {
                ahead |= manifest.tables.contains_key(t.name);
                out.insert(t.name, vec![]);
                continue;
            };
            let stamp = table
                .snapshot()
                .map_err(delta_err)?
                .transaction_version(table.log_store().as_ref(), &app)
                .await
                .map_err(delta_err)?;
            let Some(&version) = manifest.tables.get(t.name) else {
                ahead |= stamp.is_some();
                out.insert(t.name, vec![]);
                continue;
            };
            if table.version() != Some(version) {
                ahead |= stamp != manifest.through_seq.map(|s| s as i64);
                table.load_version(version).await.map_err(delta_err)?;
            }
            let ctx = SessionContext::new();
            table.update_datafusion_session(&ctx.state()).map_err(delta_err)?;
            let provider = table.table_provider().await.map_err(delta_err)?;
            let batches = ctx
                .read_table(provider)?
                .filter(col("tenant_id").eq(lit(manifest.tenant.as_str())))?
                .collect()
                .await?;
            out.insert(t.name, batches);
        }
        Ok((out, ahead))
    }

    /// Writes `export` (see the module docs); the manifest last.
    pub async fn save(&self, tenant: &str, export: Export) -> Result<Manifest> {
        let mut tables = self.writing.lock().await;
        let saved = self.save_locked(&mut tables, tenant, export).await;
        if saved.is_err() {
            // Its tables may be ahead of its manifest now: not a state a
            // purge may move the manifest onto.
            tables.manifests.remove(tenant);
            tables.open.clear();
        }
        saved
    }

    async fn save_locked(&self, tables: &mut Tables, tenant: &str, export: Export) -> Result<Manifest> {
        let mut manifest = export.manifest;
        let previous = match tables.manifests.get(tenant) {
            Some(m) => Some(m.clone()),
            None => self.manifest(tenant).await?,
        };
        manifest.tables = previous.map(|m| m.tables).unwrap_or_default();
        if export.tables.is_empty() {
            self.write_manifest(&manifest)?;
            tables.manifests.insert(tenant.to_string(), manifest.clone());
            return Ok(manifest);
        }
        let commit = || {
            CommitProperties::default().with_application_transaction(Transaction::new(
                app_id(tenant),
                manifest.through_seq.map_or(-1, |s| s as i64),
            ))
        };
        for (t, rows) in export.tables {
            let batches = match rows {
                ExportRows::Kept(k) => k.batches()?,
                ExportRows::Built(b) => vec![b],
            };
            let batch = with_day(&batches, t)?;
            let mut predicate = col("tenant_id").eq(lit(tenant));
            if let Some(d) = export.from_day {
                predicate = predicate.and(col(t.day).gt_eq(lit(ScalarValue::Date32(Some(d)))));
            }
            let table = match tables.open.remove(t.name) {
                Some(t) => Some(t),
                None => {
                    let url = self.table_url(t.name)?;
                    ingest::lake::open(&url, &self.faults).await.map_err(delta_err)?
                }
            };
            let table = match (table, batch) {
                (None, None) => continue,
                (Some(table), None) => {
                    let (table, _) = table
                        .delete()
                        .with_predicate(predicate)
                        .with_commit_properties(commit())
                        .await
                        .map_err(delta_err)?;
                    table
                }
                // The first save creates the table.
                (None, Some(batch)) => ingest::lake::builder(&self.table_url(t.name)?, &self.faults)
                    .map_err(delta_err)?
                    .build()
                    .map_err(delta_err)?
                    .write(vec![batch])
                    .with_save_mode(SaveMode::Append)
                    .with_configuration([(ingest::lake::STATS_COLUMNS_PROPERTY, Some(t.stats))])
                    .with_partition_columns(["tenant_id", t.day])
                    .with_writer_properties(writer_properties())
                    .with_commit_properties(commit())
                    .await
                    .map_err(delta_err)?,
                // A column the view gained since the table was made is
                // added to it (older rows read it as NULL until rewritten).
                (Some(table), Some(batch)) => table
                    .write(vec![batch])
                    .with_save_mode(SaveMode::Overwrite)
                    .with_schema_mode(deltalake::operations::write::SchemaMode::Merge)
                    .with_replace_where(predicate)
                    .with_partition_columns(["tenant_id", t.day])
                    .with_writer_properties(writer_properties())
                    .with_commit_properties(commit())
                    .await
                    .map_err(delta_err)?,
            };
            if let Some(v) = table.version() {
                manifest.tables.insert(t.name.to_string(), v);
            }
            tables.open.insert(t.name, table);
        }
        self.write_manifest(&manifest)?;
        tables.manifests.insert(tenant.to_string(), manifest.clone());
        if tables.vacuumed.is_none_or(|at| at.elapsed() >= VACUUM_RETENTION / 4) {
            tables.vacuumed = Some(std::time::Instant::now());
            for (name, table) in std::mem::take(&mut tables.open) {
                let table = match ingest::lake::vacuum(&table, VACUUM_RETENTION, &[]).await {
                    Ok((t, _)) => t,
                    Err(e) => {
                        tracing::warn!(table = name, error = %e, "vacuum of persisted facts failed");
                        table
                    }
                };
                tables.open.insert(name, table);
            }
        }
        Ok(manifest)
    }

    /// Waits for a save under way to finish and keeps any other from
    /// starting, for good: for a process that is stopping.
    pub async fn stop_saving(&self) {
        std::mem::forget(self.writing.lock().await);
    }

    /// Writes the manifest durably: a temporary file, fsynced, renamed
    /// over the old one, and the directory fsynced.
    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = self.manifest_path(&manifest.tenant)?;
        let dir = path.parent().ok_or_else(|| delta_err("manifest without a directory"))?;
        std::fs::create_dir_all(dir).map_err(delta_err)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(manifest).map_err(delta_err)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(delta_err)?;
            f.write_all(&bytes).map_err(delta_err)?;
            f.sync_all().map_err(delta_err)?;
        }
        std::fs::rename(&tmp, &path).map_err(delta_err)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(delta_err)?;
        Ok(())
    }

    /// Leaves only the current version of every table on storage (for an
    /// erasure: no older file, no log entry that could bring an erased
    /// row back; see `ingest::lake::purge_history`). The manifests of the
    /// tenants this process saved last are moved to the current versions,
    /// which hold the same rows for them; every other manifest is removed
    /// (its tables may hold the half of a save a crash cut), and those
    /// tenants are returned: their facts must be saved whole again.
    pub async fn purge_history(&self) -> Result<Vec<String>> {
        let mut tables = self.writing.lock().await;
        let mut current = BTreeMap::new();
        for t in FACT_TABLES {
            let table = match tables.open.remove(t.name) {
                Some(t) => Some(t),
                None => ingest::lake::open(&self.table_url(t.name)?, &self.faults)
                    .await
                    .map_err(delta_err)?,
            };
            let Some(table) = table else { continue };
            let (table, purged) = ingest::lake::purge_history(table).await.map_err(delta_err)?;
            tracing::debug!(table = t.name, ?purged, "history of persisted facts purged");
            if let Some(v) = table.version() {
                current.insert(t.name.to_string(), v);
            }
            tables.open.insert(t.name, table);
        }
        let dir = self
            .manifest_path("_")?
            .parent()
            .map(std::path::Path::to_path_buf)
            .ok_or_else(|| delta_err("manifest without a directory"))?;
        let mut dropped = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e.flatten().collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(delta_err(e)),
        };
        for entry in entries {
            let path = entry.path();
            let Some(tenant) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
            else {
                // A temporary file of an interrupted write.
                let _ = std::fs::remove_file(&path);
                continue;
            };
            match tables.manifests.get_mut(&tenant) {
                Some(m) => {
                    m.tables = current
                        .iter()
                        .filter(|(name, _)| m.tables.contains_key(*name))
                        .map(|(n, v)| (n.clone(), *v))
                        .collect();
                    self.write_manifest(m)?;
                }
                None => {
                    std::fs::remove_file(&path).map_err(delta_err)?;
                    dropped.push(tenant);
                }
            }
        }
        Ok(dropped)
    }
}

/// The application id of a tenant's saves in the tables' Delta logs;
/// its version is the ingest sequence number the facts reflect (the
/// numbering of `events`' own `cxlake-wal` transaction).
pub fn app_id(tenant: &str) -> String {
    format!("{FACTS_APP_ID}/{tenant}")
}

/// Parquet layout of fact files.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

/// `batches` as one batch sorted by conversation (when the table has
/// one) and key, with the table's day partition column; `None` when
/// there are no rows.
fn with_day(batches: &[RecordBatch], t: FactTable) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(None) };
    let batch = concat_batches(&first.schema(), batches)?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let key = int64s(&batch, t.key)?;
    let key = key.as_primitive::<Int64Type>();
    let days: Date32Array = key.iter().map(|k| k.map(|k| k.div_euclid(DAY_US) as i32)).collect();
    // By key, then conversation: each day's file is in key order, so a
    // start reads the files back in order without sorting rows.
    let mut sort = vec![SortColumn {
        values: batch
            .column_by_name(t.key)
            .ok_or_else(|| delta_err(format!("{} lacks {}", t.name, t.key)))?
            .clone(),
        options: None,
    }];
    if let Some(c) = batch.column_by_name("conversation_id") {
        sort.push(SortColumn {
            values: c.clone(),
            options: None,
        });
    }
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(t.day, DataType::Date32, true));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(days));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let order = lexsort_to_indices(&sort, None)?;
    Ok(Some(take_record_batch(&batch, &order)?))
}

/// `batches` (as read back) in `schema`: columns by name, cast to its
/// types (a scan gives view types, lists with other item names).
fn conform(batches: &[RecordBatch], schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| cast(b, f.name(), f.data_type()))
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}

/// One batch of `batches` sorted by the instant column `key`.
fn sorted_by(batches: &[RecordBatch], schema: &SchemaRef, key: &str) -> Result<Vec<RecordBatch>> {
    // Saved files are in key order and one per day: ordering whole
    // batches by their first key is enough, unless they overlap.
    let mut spans = Vec::with_capacity(batches.len());
    let mut in_order = true;
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let keys = int64s(b, key)?;
        let keys = keys.as_primitive::<Int64Type>();
        let k = |i: usize| if keys.is_valid(i) { keys.value(i) } else { i64::MIN };
        in_order &= (1..keys.len()).all(|i| k(i - 1) <= k(i));
        spans.push((k(0), k(keys.len() - 1), b.clone()));
    }
    spans.sort_by_key(|(first, _, _)| *first);
    in_order &= spans.windows(2).all(|w| w[0].1 <= w[1].0);
    if in_order {
        return Ok(spans.into_iter().map(|(_, _, b)| b).collect());
    }
    let all = concat_batches(schema, batches)?;
    let order = lexsort_to_indices(
        &[SortColumn {
            values: int64s(&all, key)?,
            options: None,
        }],
        None,
    )?;
    Ok(vec![take_record_batch(&all, &order)?])
}

fn instant_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )
}

fn text_field(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn list_field(name: &str, item: DataType) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("item", item, true))), true)
}

fn details_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("tenant_id"),
        text_field("conversation_id"),
        instant_field("first_event_at"),
        list_field("turn_waits_s", DataType::Float64),
        list_field("turn_answered_by_human", DataType::Boolean),
        list_field("replying_agents", DataType::Utf8),
        list_field("order_currencies", DataType::Utf8),
        list_field("order_net_amounts", DataType::Float64),
        list_field("order_counts", DataType::Int64),
    ]))
}

fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("tenant_id"),
        text_field("order_id"),
        instant_field("placed_at"),
        text_field("customer_id"),
        text_field("attributed_conversation_id"),
    ]))
}

fn online_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("tenant_id"),
        text_field("agent_id"),
        text_field("team"),
        instant_field("started_at"),
        instant_field("ended_at"),
    ]))
}

fn costs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text_field("tenant_id"),
        instant_field("occurred_at"),
        text_field("currency"),
        Field::new("amount", DataType::Float64, true),
    ]))
}

fn instants(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

impl TenantRollup {
    /// Marks everything from `lo` on as not yet saved (`i64::MIN`:
    /// everything; `i64::MAX`: the manifest only).
    pub fn unsaved_from(&mut self, lo: i64) {
        self.unsaved = Some(self.unsaved.map_or(lo, |u| u.min(lo)));
        self.unsaved_marks += 1;
    }

    /// What a save of the changes since the last one writes; `None` when
    /// nothing changed. Taken under a shared hold (readers go on); then
    /// [`Self::exported`] counts them as saved, until
    /// [`Self::unsaved_from`] gives them back if the save fails.
    pub fn export(&self, tenant: &str) -> Result<Option<Export>> {
        let Some(unsaved) = self.unsaved else {
            return Ok(None);
        };
        let marks = self.unsaved_marks;
        let config = self.config.unwrap_or(super::build::DEFAULT_CONFIG);
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            tenant: tenant.to_string(),
            events_version: self.events_version,
            through_seq: self.as_of_seq,
            sla_target_us: config.sla_target_us,
            attribution_window_days: config.attribution_window_days,
            files: self.mark.files.clone(),
            buffer_days: self.mark.buffer_days.clone(),
            tables: BTreeMap::new(),
            columns: rows_columns()?,
        };
        // Only the mark or the settings changed: the manifest alone.
        if unsaved == i64::MAX {
            return Ok(Some(Export {
                from_day: None,
                tables: vec![],
                manifest,
                unsaved,
                marks,
            }));
        }
        let (from_day, lo) = if unsaved == i64::MIN {
            (None, i64::MIN)
        } else {
            let d = unsaved.div_euclid(DAY_US);
            (Some(d as i32), d * DAY_US)
        };
        let mut tables = Vec::new();
        for t in FACT_TABLES {
            let rows = match t.name {
                "conversations" => self.rows.kept_from(lo).map(ExportRows::Kept),
                "script_uses" => self.script_uses.kept_from(lo).map(ExportRows::Kept),
                "exposure_events" => self.exposure_events.kept_from(lo).map(ExportRows::Kept),
                "conversation_details" => Some(ExportRows::Built(self.details_from(tenant, lo)?)),
                "orders" => Some(ExportRows::Built(self.orders_from(tenant, lo)?)),
                "agent_online" => Some(ExportRows::Built(self.online_from(tenant, lo)?)),
                "costs" => Some(ExportRows::Built(self.costs_from(tenant, lo)?)),
                _ => None,
            };
            if let Some(rows) = rows {
                tables.push((t, rows));
            }
        }
        Ok(Some(Export {
            from_day,
            tables,
            manifest,
            unsaved,
            marks,
        }))
    }

    /// Counts what `export` holds as saved, unless the rollup changed
    /// since it was taken (then the next save writes it again, with the
    /// changes).
    pub fn exported(&mut self, export: &Export) {
        if self.unsaved_marks == export.marks {
            self.unsaved = None;
        }
    }

    fn details_from(&self, tenant: &str, lo: i64) -> Result<RecordBatch> {
        let (mut tenants, mut ids, mut firsts) = (StringBuilder::new(), StringBuilder::new(), Vec::new());
        let mut waits = ListBuilder::new(Float64Builder::new());
        let mut human = ListBuilder::new(BooleanBuilder::new());
        let mut agents = ListBuilder::new(StringBuilder::new());
        let mut currencies = ListBuilder::new(StringBuilder::new());
        let mut amounts = ListBuilder::new(Float64Builder::new());
        let mut counts = ListBuilder::new(Int64Builder::new());
        for &(first, i) in self.by_first_event.range((lo, 0)..) {
            let Some(f) = self.facts[i].as_ref() else { continue };
            if f.turns.is_empty() && f.replying_agents().is_empty() && f.orders.is_empty() {
                continue;
            }
            tenants.append_value(tenant);
            ids.append_value(&f.id);
            firsts.push(Some(first));
            for (w, by) in f.turns.iter() {
                waits.values().append_value(*w);
                human.values().append_value(*by == SEG_HUMAN);
            }
            waits.append(true);
            human.append(true);
            for a in f.replying_agents() {
                agents.values().append_value(self.names.name(*a));
            }
            agents.append(true);
            for (c, amount, n) in f.orders.iter() {
                if *c == NONE {
                    currencies.values().append_null();
                } else {
                    currencies.values().append_value(self.names.name(*c));
                }
                amounts.values().append_value(*amount);
                counts.values().append_value(i64::from(*n));
            }
            currencies.append(true);
            amounts.append(true);
            counts.append(true);
        }
        Ok(RecordBatch::try_new(
            details_schema(),
            vec![
                Arc::new(tenants.finish()),
                Arc::new(ids.finish()),
                instants(firsts.into_iter()),
                Arc::new(waits.finish()),
                Arc::new(human.finish()),
                Arc::new(agents.finish()),
                Arc::new(currencies.finish()),
                Arc::new(amounts.finish()),
                Arc::new(counts.finish()),
            ],
        )?)
    }

    fn orders_from(&self, tenant: &str, lo: i64) -> Result<RecordBatch> {
        let from = self.orders.partition_point(|o| o.placed_us < lo);
        let orders = &self.orders[from..];
        let name = |id: u32| (id != NONE).then(|| self.customers.name(id));
        Ok(RecordBatch::try_new(
            orders_schema(),
            vec![
                Arc::new(StringArray::from(vec![tenant; orders.len()])),
                Arc::new(StringArray::from_iter_values(
                    orders.iter().map(|o| o.order_id.as_ref()),
                )),
                instants(orders.iter().map(|o| Some(o.placed_us))),
                Arc::new(StringArray::from_iter(orders.iter().map(|o| name(o.customer)))),
                Arc::new(StringArray::from_iter(orders.iter().map(|o| o.attributed.as_deref()))),
            ],
        )?)
    }

    fn online_from(&self, tenant: &str, lo: i64) -> Result<RecordBatch> {
        let from = self.online.partition_point(|s| s.start_us < lo);
        let online = &self.online[from..];
        let name = |id: u32| (id != NONE).then(|| self.names.name(id));
        Ok(RecordBatch::try_new(
            online_schema(),
            vec![
                Arc::new(StringArray::from(vec![tenant; online.len()])),
                Arc::new(StringArray::from_iter(online.iter().map(|s| name(s.agent)))),
                Arc::new(StringArray::from_iter(online.iter().map(|s| name(s.team)))),
                instants(online.iter().map(|s| Some(s.start_us))),
                instants(online.iter().map(|s| s.end_us)),
            ],
        )?)
    }

    fn costs_from(&self, tenant: &str, lo: i64) -> Result<RecordBatch> {
        let from = self.costs.partition_point(|c| c.0 < lo);
        let costs = &self.costs[from..];
        Ok(RecordBatch::try_new(
            costs_schema(),
            vec![
                Arc::new(StringArray::from(vec![tenant; costs.len()])),
                instants(costs.iter().map(|c| Some(c.0))),
                Arc::new(StringArray::from_iter(
                    costs.iter().map(|c| (c.1 != NONE).then(|| self.names.name(c.1))),
                )),
                Arc::new(Float64Array::from_iter_values(costs.iter().map(|c| c.2))),
            ],
        )?)
    }

    /// Replaces the rollup with the facts a [`FactStore`] read for
    /// `manifest`; the next refresh catches up from there.
    pub async fn restore(
        &mut self,
        manifest: &Manifest,
        mut tables: HashMap<&'static str, Vec<RecordBatch>>,
    ) -> Result<()> {
        let mut fresh = TenantRollup {
            exact_below: self.exact_below,
            slice_conversations: self.slice_conversations,
            ..TenantRollup::default()
        };
        fresh.config = Some(TenantConfig {
            sla_target_us: manifest.sla_target_us,
            attribution_window_days: manifest.attribution_window_days,
        });
        fresh.mark = LakeMark {
            files: manifest.files.clone(),
            buffer: vec![],
            buffer_days: manifest.buffer_days.clone(),
        };
        fresh.as_of_seq = manifest.through_seq;
        fresh.events_version = manifest.events_version;
        let mut take = |name: &str| tables.remove(name).unwrap_or_default();
        // Where a start's time goes, for the log.
        let mut phases: Vec<(&str, u128)> = Vec::new();
        let mut clock = std::time::Instant::now();
        let mut lap = |name: &'static str, phases: &mut Vec<(&str, u128)>| {
            phases.push((name, clock.elapsed().as_millis()));
            clock = std::time::Instant::now();
        };

        // conversations: the kept rows and, read from them, the facts
        let schema = conversations_rows_schema()?;
        let rows = sorted_by(&conform(&take("conversations"), &schema)?, &schema, "first_event_at")?;
        fresh.rows.set_schema(schema);
        lap("conform and order", &mut phases);
        let mut loaded = fresh.facts_of_rows(&rows, i64::MIN).await?;
        lap("facts", &mut phases);
        fresh.rows.push(&rows).await?;
        drop(rows);
        lap("kept rows", &mut phases);
        for b in conform(&take("conversation_details"), &details_schema())? {
            let ids = strings(&b, "conversation_id")?;
            let ids = ids.as_string::<i32>();
            let lists = |name: &str| -> Result<arrow::array::ListArray> {
                Ok(b.column_by_name(name)
                    .ok_or_else(|| delta_err(format!("details lack {name}")))?
                    .as_list::<i32>()
                    .clone())
            };
            let (waits, human, agents) = (
                lists("turn_waits_s")?,
                lists("turn_answered_by_human")?,
                lists("replying_agents")?,
            );
            let (currencies, amounts, counts) = (
                lists("order_currencies")?,
                lists("order_net_amounts")?,
                lists("order_counts")?,
            );
            for r in 0..b.num_rows() {
                let Some(f) = ids.is_valid(r).then(|| loaded.get_mut(ids.value(r))).flatten() else {
                    continue;
                };
                let (w, h) = (waits.value(r), human.value(r));
                let (w, h) = (w.as_primitive::<Float64Type>(), h.as_boolean());
                f.turns = (0..w.len())
                    .map(|k| (w.value(k), if h.value(k) { SEG_HUMAN } else { SEG_BOT }))
                    .collect();
                let a = agents.value(r);
                let a = a.as_string::<i32>();
                let ids: Vec<u32> = (0..a.len()).map(|k| fresh.names.intern(a.value(k))).collect();
                f.set_replying_agents(&ids);
                let (c, m, n) = (currencies.value(r), amounts.value(r), counts.value(r));
                let (c, m, n) = (
                    c.as_string::<i32>(),
                    m.as_primitive::<Float64Type>(),
                    n.as_primitive::<Int64Type>(),
                );
                f.orders = (0..c.len())
                    .map(|k| {
                        let currency = fresh.names.opt(c.is_valid(k).then(|| c.value(k)));
                        (currency, m.value(k), n.value(k).max(0) as u32)
                    })
                    .collect();
            }
        }
        for (_, f) in loaded.drain() {
            fresh.insert_fact(f);
        }
        lap("details", &mut phases);

        let uses = script_uses_schema();
        let rows = sorted_by(&conform(&take("script_uses"), &uses)?, &uses, "first_event_at")?;
        fresh.script_uses.set_schema(uses);
        fresh.script_uses.push(&rows).await?;

        let exposures = nullable_schema(crate::views::view_schema("exposure_events")?.as_ref());
        let rows = sorted_by(
            &conform(&take("exposure_events"), &exposures)?,
            &exposures,
            "occurred_at",
        )?;
        fresh.exposure_events.set_schema(exposures);
        fresh.exposure_events.push(&rows).await?;

        for b in conform(&take("orders"), &orders_schema())? {
            let (id, placed, customer, credited) = (
                strings(&b, "order_id")?,
                int64s(&b, "placed_at")?,
                strings(&b, "customer_id")?,
                strings(&b, "attributed_conversation_id")?,
            );
            let (id, placed, customer, credited) = (
                id.as_string::<i32>(),
                placed.as_primitive::<Int64Type>(),
                customer.as_string::<i32>(),
                credited.as_string::<i32>(),
            );
            for r in 0..b.num_rows() {
                if id.is_null(r) || placed.is_null(r) {
                    continue;
                }
                fresh.orders.push(OrderRec {
                    order_id: Arc::from(id.value(r)),
                    placed_us: placed.value(r),
                    customer: fresh.customers.opt(customer.is_valid(r).then(|| customer.value(r))),
                    attributed: credited.is_valid(r).then(|| Arc::from(credited.value(r))),
                });
            }
        }
        fresh.orders.sort_by_key(|o| o.placed_us);
        fresh.index_orders();

        let mut online = Vec::new();
        for b in conform(&take("agent_online"), &online_schema())? {
            fresh.read_online(&b, i64::MIN, &mut online)?;
        }
        online.sort_by_key(|s| s.start_us);
        fresh.online = online;
        let mut costs = Vec::new();
        for b in conform(&take("costs"), &costs_schema())? {
            fresh.read_costs(&b, i64::MIN, &mut costs)?;
        }
        costs.sort_by_key(|c| c.0);
        fresh.costs = costs;

        lap("uses, exposures, orders, online, costs", &mut phases);
        fresh.rebuild_cells(i64::MIN);
        lap("cells", &mut phases);
        tracing::debug!(tenant = %manifest.tenant, phases_ms = ?phases, "facts restored");
        *self = fresh;
        Ok(())
    }
}
