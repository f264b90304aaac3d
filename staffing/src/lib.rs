//! Staffing math for cxlake: how many conversations will arrive per queue and
//! interval, and how many agents that takes.
//!
//! This crate is **pure**: functions of numbers and series, no I/O, no clock,
//! no time zones. The API crate reads the lake, turns timestamps into the
//! tenant's local weekday and slot of day, and calls in here.
//!
//! * [`erlang`] — Erlang B/C/A queueing for live channels, the smallest agent
//!   count for a service-level and/or occupancy target, shrinkage, chat
//!   concurrency, and workload/backlog staffing for asynchronous channels.
//!   The module docs give every formula and its reference.
//! * [`forecast`] — arrival forecasts per queue and interval with quantiles:
//!   seasonal baselines, a Poisson regression on weekday × slot with trend,
//!   and aggregate-and-split for small queues, chosen per series by
//!   rolling-origin backtest (WAPE; Poisson deviance for sparse series) with
//!   the baselines among the candidates; special days; accuracy metrics
//!   with the Poisson noise floor.
//! * [`plan`] — forecast + required agents per interval, the shape the
//!   routing core asks for.
//! * [`synthetic`] — deterministic chat-like arrival series for tests and the
//!   benchmark (`examples/bench_plan.rs`).
//!
//! # Invariants
//!
//! * Every public function validates its inputs and returns
//!   [`Error`] naming the offending parameter; nothing panics on caller input.
//! * Probabilities come from ratios of positive terms (Erlang B recurrence,
//!   log-scaled series), never from factorials or powers, so the math holds
//!   for thousands of agents.
//! * Forecasts never depend on the position of a point within a day, only on
//!   the caller-supplied `(weekday, slot)`: a 23- or 25-hour DST day is just a
//!   day with fewer or repeated slots.
//!
//! # Example
//!
//! ```
//! use staffing::erlang::{StaffingRequest, staff};
//! let req = StaffingRequest {
//!     arrivals: 100.0, interval_s: 1800.0, aht_s: 180.0, target_s: 20.0,
//!     service_level: 0.8, patience_s: None, shrinkage: 0.3,
//!     max_occupancy: Some(0.85), concurrency: 1,
//! };
//! let r = staff(&req)?;
//! // 10 erlangs: 14 agents answer 88.8 % within 20 s (13 would give 79.6 %);
//! // 30 % shrinkage makes that 20 to schedule.
//! assert_eq!((r.productive_agents, r.agents), (14, 20));
//! assert!(r.service_level >= 0.8);
//! # Ok::<(), staffing::Error>(())
//! ```

pub mod erlang;
mod error;
pub mod forecast;
pub mod plan;
pub mod synthetic;

pub use error::{Error, Result};
