//! GDPR for one customer: everything held about them ([`Ingestor::customer_data`])
//! and its erasure ([`Ingestor::erase_customer`]).
//!
//! "About a customer" means: events whose `customer_id` or `unit_id` is
//! the customer (as sent, or as its pseudonym, see [`crate::privacy`]),
//! every event of those events' conversations (agent messages, tags and
//! resolutions carry no `customer_id`), and every event of their orders
//! (a refund may name only the order).
//!
//! Erasure, all under the flush lock (so it is the only lake writer):
//!
//! 1. tombstones for the customer (keyed hashes, fsynced) — from here on
//!    ingest drops their old events; the erasure gate makes sure no
//!    ingest call that checked before is still on its way to the WAL;
//! 2. the customer's conversations and orders are found in the lake and
//!    the buffer, and tombstoned too;
//! 3. a flush moves everything acknowledged so far into the lake, so the
//!    buffer holds nothing of the customer;
//! 4. the lake partitions holding their events are rewritten without
//!    them, in one commit whose predicate names only tenant and dates;
//! 5. the closed WAL segments (already in the lake, waiting for
//!    truncation) are rewritten without them;
//! 6. history is purged: a full vacuum with zero retention deletes the
//!    old files, a checkpoint of the new version replaces the log history
//!    before it, so time travel cannot reach the old files either.
//!
//! The in-memory KPI rollups notice the rewritten files (removed files
//! count as touched days) on their next refresh.
//!
//! If the process dies part way, the tombstones already hold; running the
//! erasure again completes it (every step is idempotent).

use std::collections::{BTreeSet, HashSet};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::Date32Type;
use serde::{Deserialize, Serialize};

use super::{IngestError, Ingestor, Result, lock};
use crate::contract::Event;
use crate::lake;
use crate::privacy::{Tombstone, TombstoneKind, hex};

/// Everything held about one customer.
#[derive(Debug, Clone)]
pub struct CustomerData {
    /// The values that identify the customer in the data: the id as sent
    /// and its pseudonym.
    pub forms: Vec<String>,
    pub conversations: BTreeSet<String>,
    pub orders: BTreeSet<String>,
    /// Their events, lake and buffer, in the `events` schema.
    pub batches: Vec<RecordBatch>,
}

/// What an erasure did; the receipt id is recorded in the audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErasureReceipt {
    pub receipt: String,
    pub tenant: String,
    /// Keyed hash of the customer id (the tombstone), never the id.
    pub customer_hash: String,
    pub erased_at: String,
    pub conversations: usize,
    pub orders: usize,
    /// Events removed from the lake files.
    pub lake_events: usize,
    /// Events removed from write-ahead log segments.
    pub wal_events: usize,
    pub partitions_rewritten: usize,
    pub data_files_deleted: usize,
    pub log_files_deleted: usize,
    pub lake_version: Option<u64>,
}

/// Which rows belong to the customer.
#[derive(Debug)]
struct Matcher {
    tenant: String,
    forms: HashSet<String>,
    conversations: HashSet<String>,
    orders: HashSet<String>,
}

const LOCATE_COLUMNS: [&str; 6] = [
    "tenant_id",
    "customer_id",
    "unit_id",
    "conversation_id",
    "order_id",
    "event_date",
];

/// The identifying columns of one batch (any of them may be absent).
struct Ids<'a> {
    tenant: Option<&'a StringArray>,
    customer: Option<&'a StringArray>,
    unit: Option<&'a StringArray>,
    conversation: Option<&'a StringArray>,
    order: Option<&'a StringArray>,
}

fn value(a: Option<&StringArray>, r: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(r)).map(|a| a.value(r))
}

impl<'a> Ids<'a> {
    fn of(b: &'a RecordBatch) -> Ids<'a> {
        let s = |name: &str| b.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
        Ids {
            tenant: s("tenant_id"),
            customer: s("customer_id"),
            unit: s("unit_id"),
            conversation: s("conversation_id"),
            order: s("order_id"),
        }
    }
}

impl Matcher {
    fn new(tenant: &str, forms: &[String]) -> Matcher {
        Matcher {
            tenant: tenant.to_string(),
            forms: forms.iter().cloned().collect(),
            conversations: HashSet::new(),
            orders: HashSet::new(),
        }
    }

    /// Whether row `r` is the customer's own event (of this tenant).
    fn own(&self, ids: &Ids<'_>, r: usize) -> bool {
        value(ids.tenant, r) == Some(self.tenant.as_str())
            && [value(ids.customer, r), value(ids.unit, r)]
                .into_iter()
                .flatten()
                .any(|v| self.forms.contains(v))
    }

    /// Pass one: the conversations and orders of the customer's own events.
    fn learn(&mut self, b: &RecordBatch) {
        let ids = Ids::of(b);
        for r in 0..b.num_rows() {
            if self.own(&ids, r) {
                if let Some(c) = value(ids.conversation, r) {
                    self.conversations.insert(c.to_string());
                }
                if let Some(o) = value(ids.order, r) {
                    self.orders.insert(o.to_string());
                }
            }
        }
    }

    /// Pass two: every row of the customer.
    fn mask(&self, b: &RecordBatch) -> BooleanArray {
        let ids = Ids::of(b);
        (0..b.num_rows())
            .map(|r| {
                Some(
                    self.own(&ids, r)
                        || value(ids.tenant, r) == Some(self.tenant.as_str())
                            && (value(ids.conversation, r).is_some_and(|c| self.conversations.contains(c))
                                || value(ids.order, r).is_some_and(|o| self.orders.contains(o))),
                )
            })
            .collect()
    }

    fn event(&self, e: &Event) -> bool {
        e.tenant_id == self.tenant
            && ([&e.customer_id, &e.unit_id]
                .into_iter()
                .flatten()
                .any(|v| self.forms.contains(v))
                || e.conversation_id
                    .as_ref()
                    .is_some_and(|c| self.conversations.contains(c))
                || e.order_id.as_ref().is_some_and(|o| self.orders.contains(o)))
    }
}

fn scan_err(e: impl std::fmt::Display) -> IngestError {
    IngestError::Scan(e.to_string())
}

impl Ingestor {
    /// The id as sent and its pseudonym under the tenant key.
    fn customer_forms(&self, tenant: &str, customer_id: &str) -> Result<Vec<String>> {
        let key = self.privacy.key(tenant)?;
        Ok(vec![customer_id.to_string(), key.pseudonym(customer_id)])
    }

    /// Finds the customer's conversations and orders in the lake and the
    /// buffer, and the UTC days of the lake partitions holding their rows.
    async fn locate(&self, m: &mut Matcher) -> Result<BTreeSet<i32>> {
        let view = self.read_view();
        let rows = lake::tenant_rows(&m.tenant, None);
        if let Some(t) = &view.table {
            lake::scan(t, Some(&LOCATE_COLUMNS), Some(rows.clone()), |b| {
                m.learn(&b);
                Ok(())
            })
            .await?;
        }
        for b in &view.buffered {
            m.learn(b);
        }
        let mut days = BTreeSet::new();
        if let Some(t) = &view.table {
            lake::scan(t, Some(&LOCATE_COLUMNS), Some(rows), |b| {
                let mask = m.mask(&b);
                if let Some(d) = b
                    .column_by_name("event_date")
                    .and_then(|c| c.as_primitive_opt::<Date32Type>())
                {
                    for r in 0..b.num_rows() {
                        if mask.value(r) && d.is_valid(r) {
                            days.insert(d.value(r));
                        }
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(days)
    }

    /// Everything held about one customer (see the module docs), as sent
    /// for export; free text stays as stored (the caller decrypts).
    pub async fn customer_data(&self, tenant: &str, customer_id: &str) -> Result<CustomerData> {
        let forms = self.customer_forms(tenant, customer_id)?;
        let mut m = Matcher::new(tenant, &forms);
        let days = self.locate(&mut m).await?;
        let view = self.read_view();
        let mut batches = Vec::new();
        if let (Some(t), false) = (&view.table, days.is_empty()) {
            lake::scan(t, None, Some(lake::tenant_rows(tenant, Some(&days))), |b| {
                let mask = m.mask(&b);
                batches.push(arrow::compute::filter_record_batch(&b, &mask)?);
                Ok(())
            })
            .await?;
        }
        for b in &view.buffered {
            let mask = m.mask(b);
            batches.push(arrow::compute::filter_record_batch(b, &mask).map_err(scan_err)?);
        }
        batches.retain(|b| b.num_rows() > 0);
        Ok(CustomerData {
            forms,
            conversations: m.conversations.into_iter().collect(),
            orders: m.orders.into_iter().collect(),
            batches,
        })
    }

    /// Erases one customer from the WAL, the buffer and the lake, with its
    /// history (see the module docs). Returns once every step is durable.
    pub async fn erase_customer(&self, tenant: &str, customer_id: &str) -> Result<ErasureReceipt> {
        let forms = self.customer_forms(tenant, customer_id)?;
        let key = self.privacy.key(tenant)?;
        let now = chrono::Utc::now();
        let erased_at_us = now.timestamp_micros();
        let receipt = format!("er_{}", uuid::Uuid::new_v4().simple());
        let tombstone = |kind, hash: [u8; 32]| Tombstone {
            tenant: tenant.to_string(),
            kind,
            hash: hex(&hash),
            erased_at_us,
            receipt: receipt.clone(),
        };
        let _only_writer = self.flush_lock.lock().await;

        let customers: Vec<Tombstone> = forms
            .iter()
            .map(|f| tombstone(TombstoneKind::Customer, key.customer_hash(f)))
            .collect();
        {
            let _gate = self.erase_gate.write().await;
            self.privacy.add_tombstones(&customers)?;
        }

        let mut m = Matcher::new(tenant, &forms);
        self.locate(&mut m).await?;
        let conversations: Vec<Tombstone> = m
            .conversations
            .iter()
            .map(|c| tombstone(TombstoneKind::Conversation, key.conversation_hash(c)))
            .collect();
        {
            let _gate = self.erase_gate.write().await;
            self.privacy.add_tombstones(&conversations)?;
        }

        // Everything acknowledged so far goes to the lake; what arrives from
        // now on has passed every tombstone.
        let flushed = self.flush_locked().await?;
        let days = self.locate(&mut m).await?;

        let mut lake_events = 0;
        lock(&self.shared).forget_recent();
        let old = lock(&self.shared).table.clone();
        let mut table = old.as_deref().cloned();
        if let Some(t) = &old {
            // One day per commit: memory holds one partition, not all the
            // customer's days at once. A crash in between is resumed by the
            // job that runs the erasure again.
            let mut current = (**t).clone();
            for day in &days {
                let one = std::collections::BTreeSet::from([*day]);
                let (rewritten, removed) = match lake::rewrite_partitions(&current, tenant, &one, |b| m.mask(b)).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The commit may have landed all the same; the next
                        // writer must start from what the log says.
                        self.reload_table().await;
                        return Err(e.into());
                    }
                };
                lake_events += removed;
                lock(&self.shared).install_rewritten(rewritten.clone());
                current = rewritten;
            }
            table = Some(current);
        }

        let wal_events = self
            .wal
            .scrub_through(flushed.through_seq.max(lock(&self.shared).flushed_seq), &|e| m.event(e))?;

        let mut purged = lake::Purged::default();
        let mut version = None;
        if let Some(t) = table {
            let (t, p) = lake::purge_history(t).await?;
            purged = p;
            version = t.version();
            self.metrics.record_table(&t);
            lock(&self.shared).install_rewritten(t);
        }
        self.arrivals.send_modify(|_| {});
        tracing::info!(
            %receipt,
            tenant,
            conversations = m.conversations.len(),
            lake_events,
            wal_events,
            partitions = days.len(),
            data_files_deleted = purged.data_files,
            log_files_deleted = purged.log_files,
            "customer erased"
        );
        Ok(ErasureReceipt {
            receipt,
            tenant: tenant.to_string(),
            customer_hash: hex(&key.customer_hash(customer_id)),
            erased_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            conversations: m.conversations.len(),
            orders: m.orders.len(),
            lake_events,
            wal_events,
            partitions_rewritten: days.len(),
            data_files_deleted: purged.data_files,
            log_files_deleted: purged.log_files,
            lake_version: version,
        })
    }
}
