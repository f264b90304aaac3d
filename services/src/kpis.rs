//! KPIs from the lake: the request parameters ([`params`]), the SQL
//! definitions run over a tenant session ([`lake`]) and the served path
//! over the incrementally maintained rollups ([`fast`]).

pub mod answer;
pub mod fast;
pub mod lake;
pub mod params;
