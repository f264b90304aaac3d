//! # services — what cxlake does, without HTTP
//!
//! Everything a handler, a page, the Postgres wire or the CLI asks for,
//! as functions over the lake and the stores, with errors of
//! [`ServiceError`] (which `api` maps to `application/problem+json`).
//! No module here knows about axum or the wire protocol.
//!
//! Layers, bottom up (a module imports only modules above it in this
//! list; `layout/tests/rules.rs` checks there are no cycles):
//!
//! - [`error`], [`fsutil`], [`cache`]: the error type, atomic file
//!   replacement, answers kept per tenant data version;
//! - [`keys`], [`audit`], [`settings`], [`tenant`]: who is asking, what
//!   they did, each tenant's knobs, which tenant a request is about;
//! - [`kpis`], [`analyses`], [`forecasts`], [`experiment`]: KPI parameters
//!   and their computation from the lake and the rollups, the analyses'
//!   tables, the lake history a staffing forecast reads, the experiment
//!   registry and results;
//! - [`scope`]: the conversations a key may see, as KPI filters and queue
//!   keys;
//! - [`sql`]: sandboxed analyst SQL sessions;
//! - [`context`]: [`Services`], what one running service holds, and the
//!   per-tenant data every feature reads through;
//! - [`served`]: experiment results and forecasts as the API and the pages
//!   answer them, over [`Services`].

pub mod analyses;
pub mod audit;
pub mod cache;
pub mod context;
pub mod error;
pub mod experiment;
pub mod forecasts;
pub mod fsutil;
pub mod keys;
pub mod kpis;
pub mod scope;
pub mod served;
pub mod settings;
pub mod sql;
pub mod tenant;

pub use context::Services;
pub use error::{FactsNotReady, ServiceError};
