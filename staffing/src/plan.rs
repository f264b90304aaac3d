//! Forecast → required agents per interval: the plan the routing core asks
//! for. Each interval is staffed independently (Erlang assumes steady state
//! within the interval), from the forecast mean or, to buy insurance against
//! under-staffing, from a forecast quantile.

use serde::{Deserialize, Serialize};

use crate::erlang::{StaffingRequest, StaffingResult, staff};
use crate::error::{Error, Result};
use crate::forecast::Forecast;

/// Which forecast figure to staff for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StaffFor {
    /// The expected arrivals.
    #[default]
    Mean,
    /// The median.
    P50,
    /// The 90th percentile: under-staffing costs more than over-staffing.
    P90,
}

/// One interval of a staffing plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInterval {
    /// Local weekday.
    pub weekday: u8,
    /// Local slot of day.
    pub slot: u16,
    /// Arrivals the interval was staffed for.
    pub arrivals: f64,
    /// The staffing answer for those arrivals.
    pub staffing: StaffingResult,
}

/// Required agents for every interval of `forecast`. `template` supplies
/// everything but the arrivals (its `arrivals` field is ignored).
pub fn staffing_plan(
    forecast: &Forecast,
    template: &StaffingRequest,
    staff_for: StaffFor,
) -> Result<Vec<PlanInterval>> {
    let mut out = Vec::with_capacity(forecast.points.len());
    // Consecutive intervals often ask the same question (nights, zero
    // traffic, quantiles that are whole counts): reuse the last answer.
    let mut last: Option<(f64, StaffingResult)> = None;
    for p in &forecast.points {
        let arrivals = match staff_for {
            StaffFor::Mean => p.mean,
            StaffFor::P50 => p.p50,
            StaffFor::P90 => p.p90,
        };
        let staffing = match &last {
            Some((a, r)) if *a == arrivals => r.clone(),
            _ => {
                let req = StaffingRequest {
                    arrivals,
                    ..template.clone()
                };
                let r = staff(&req).map_err(|e| match e {
                    Error::Unreachable { param, detail } => Error::Unreachable {
                        param,
                        detail: format!("weekday {} slot {}: {detail}", p.weekday, p.slot),
                    },
                    other => other,
                })?;
                last = Some((arrivals, r.clone()));
                r
            }
        };
        out.push(PlanInterval {
            weekday: p.weekday,
            slot: p.slot,
            arrivals,
            staffing,
        });
    }
    Ok(out)
}
