//! End-to-end tests: the real `cxlake` binary on temporary data
//! directories, driven over HTTP, the Postgres wire and headless Chromium
//! as users and their tools would. One test binary with a module per area,
//! so the suite links once instead of once per file.
//!
//! Run one area with a filter, e.g. `cargo test --workspace --test e2e
//! chatwoot::`.

mod support;

mod analyses;
mod browser;
mod calc;
mod chatwoot;
mod dashboards;
mod experiments;
mod forecast;
mod gdpr;
mod hostile_sql;
mod ingest;
mod keys_audit;
mod kill_loop;
mod kpis;
mod pg;
mod pg_sessions;
mod roles;
mod scopes;
