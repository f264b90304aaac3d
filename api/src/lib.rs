//! # api — the `cxlake` binary's library
//!
//! Wires everything together; nothing depends on it. `cli` parses the
//! command line, `config` merges defaults, file, environment and flags,
//! `keys` authenticates, `server` routes HTTP to the other crates,
//! `calc_routes` serves the stateless calculators, `problem` renders RFC
//! 9457 errors.

pub mod analysis_routes;
pub mod audit;
pub mod calc_routes;
pub mod chatwoot_routes;
pub mod cli;
pub mod config;
pub mod dashboard_routes;
pub mod erasure_jobs;
pub mod experiment_results;
pub mod experiment_routes;
pub mod experiment_store;
pub mod forecast_routes;
pub mod fsutil;
pub mod gdpr_routes;
pub mod key_routes;
pub mod keys;
pub mod kpi_routes;
pub(crate) mod per_ingestor;
pub mod pg_server;
pub mod problem;
pub(crate) mod scope;
pub mod server;
pub mod settings;
pub mod sql_routes;
pub mod sql_service;
pub mod stream_export;
pub mod tenant;
