//! # ingest — from the messaging core's events to the lake, losing nothing
//!
//! This crate owns the write path of cxlake:
//!
//! - [`contract`]: event contract v1 as Rust types, with validation that
//!   names the field and says what to change;
//! - [`chatwoot`]: Chatwoot webhooks mapped onto the contract;
//! - [`decode`]: request bodies (NDJSON or a JSON array; gzip or zstd) into
//!   validated events plus per-line rejections;
//! - [`wal`]: the write-ahead log with group commit — *nothing is
//!   acknowledged before it is fsynced*;
//! - [`pipeline`]: dedup by `(tenant_id, event_id)`, the queryable buffer,
//!   the flusher that commits to the lake and truncates the WAL;
//! - [`lake`]: the Delta Lake table on `object_store`;
//! - [`readers`]: the lake versions queries of this process read, which
//!   vacuum keeps;
//! - [`schema`]: the Arrow schema of `events`;
//! - [`privacy`]: tenant keys, pseudonyms, encrypted free text, erasure
//!   tombstones;
//! - [`metrics`]: counters for `GET /metrics`.
//!
//! It deliberately knows nothing of HTTP, keys or SQL: the `api` crate
//! authenticates and frames requests, the `warehouse` crate reads
//! [`pipeline::Ingestor::read_view`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ingest::{decode, pipeline::{IngestConfig, Ingestor}, metrics::Metrics};
//!
//! let ingestor = Ingestor::open(IngestConfig::new("./cxlake-data"), Arc::new(Metrics::default())).await?;
//! let body = br#"{"event_id":"e1","tenant_id":"acme","type":"conversation.started","occurred_at":"2026-03-01T09:30:00+08:00","conversation_id":"c1","channel":"whatsapp"}"#;
//! let decoded = decode::decode_events(body, &decode::DecodeLimits::default())?;
//! let outcome = ingestor.ingest(decoded.events).await?; // durable when this returns
//! assert_eq!(outcome.accepted, 1);
//! # Ok(()) }
//! ```

pub mod chatwoot;
pub mod contract;
pub mod decode;
pub mod faults;
pub mod json_schema;
pub mod lake;
pub mod metrics;
pub mod pipeline;
pub mod privacy;
pub mod readers;
pub mod schema;
pub mod store;
pub mod wal;

pub use contract::{Event, EventType, FieldError};
pub use pipeline::{IngestConfig, IngestOutcome, Ingestor, ReadView, Recent};

/// The JSON Schema (draft 2020-12) of one contract-v1 event, as served at
/// `GET /v1/schema/events`.
pub const EVENT_JSON_SCHEMA: &str = include_str!("../schema/events-v1.json");
