//! KPIs from the lake: the request parameters ([`params`]), the SQL
//! definitions run over a tenant session ([`lake`]) and the served path
//! over the incrementally maintained rollups ([`fast`]), and the check of
//! the served rows against the views ([`verify`]).

use crate::keys::Role;

/// Roles that read KPIs and the analyses.
pub const READERS: [Role; 3] = [Role::Admin, Role::Supervisor, Role::Analyst];

pub mod answer;
pub mod fast;
pub mod lake;
pub mod params;
pub mod verify;
