//! # api — the `cxlake` binary's library
//!
//! HTTP, pages, the Postgres wire and the CLI over [`services`]; nothing
//! depends on it. `cli` parses the command line, `config` merges defaults,
//! file, environment and flags, `server` holds the router, authentication
//! and [`state::AppState`] (the [`services::Services`] plus what only HTTP
//! needs), the `*_routes` modules are the handlers of one area each,
//! `problem` renders a [`services::ServiceError`] as RFC 9457 problem
//! details, `pg_server` speaks the Postgres wire protocol.

pub mod analysis_routes;
pub mod calc_routes;
pub mod chatwoot_routes;
pub mod cli;
pub mod config;
pub mod dashboard_routes;
pub mod erasure_jobs;
pub mod experiment_routes;
pub mod forecast_routes;
pub mod gdpr_routes;
pub mod key_routes;
pub mod kpi_routes;
pub mod page_sessions;
pub mod pg_server;
pub mod problem;
pub mod server;
pub mod settings_routes;
pub mod sql_routes;
pub mod state;
pub mod stream_export;
