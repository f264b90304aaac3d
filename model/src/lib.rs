//! # model — the vocabulary every crate shares
//!
//! A tenant id, a dimension, a time bucket and a KPI key mean the same
//! thing in the event contract, the KPI API, the staffing forecast and the
//! pages; each is defined here once. The crate has no dependencies, so any
//! crate (including the ones kept free of Arrow and DataFusion) can use it.

mod bucket;
mod dimension;
mod kpi;
mod tenant;

pub use bucket::Bucket;
pub use dimension::Dimension;
pub use kpi::{Kpi, Measure};
pub use tenant::TenantId;
