//! # api — the `cxlake` binary's library
//!
//! Wires everything together; nothing depends on it. `cli` parses the
//! command line, `config` merges defaults, file, environment and flags,
//! `keys` authenticates, `server` routes HTTP to the other crates,
//! `calc_routes` serves the stateless calculators, `problem` renders RFC
//! 9457 errors.

pub mod calc_routes;
pub mod cli;
pub mod config;
pub mod keys;
pub mod problem;
pub mod server;
