//! Experiments as the service keeps them: the registry of definitions and
//! their history ([`store`]) and results from the lake ([`results`]),
//! served by [`crate::served::experiments`]. The statistics are the
//! `experiments` crate's.

pub mod results;
pub mod store;
