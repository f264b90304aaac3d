//! Ship, keep running, or stop: one verdict and one plain sentence with the
//! numbers behind it.
//!
//! Rules, in order (the first that applies wins):
//!
//! 1. **Sample-ratio mismatch** (`srm_p_value < 0.001`): keep running but
//!    make no decision; the split is broken, so no lift can be trusted.
//! 2. **Minimum sample**: any arm below `min_sample_per_variant` (default
//!    500): keep running.
//! 3. **Guardrail significantly worse** (its interval lies entirely on the
//!    harmful side of 0): stop. Guardrails should be passed with
//!    Holm-adjusted evidence when there are several.
//! 4. **Primary significantly better** (interval entirely on the good side of
//!    0): ship.
//! 5. **Primary significantly worse**: stop.
//! 6. **No useful effect**: the interval excludes the documented
//!    `minimum_useful_effect` (its good-side bound is below it): stop, more
//!    data would only confirm an effect too small to matter.
//! 7. Otherwise keep running until the planned duration; once it is reached,
//!    stop as inconclusive.
//!
//! When a [`MetricReading`] carries a sequential (always-valid) result, its
//! interval and p-value are used instead of the fixed-horizon ones, which is
//! what makes daily looks safe.

use serde::{Deserialize, Serialize};

use crate::stats::sequential::SequentialResult;
use crate::stats::{Comparison, SRM_P_THRESHOLD};

/// Default minimum units (conversations or customers) per variant before any decision.
pub const DEFAULT_MIN_SAMPLE_PER_VARIANT: u64 = 500;

/// Which way is good for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// E.g. conversion, CSAT, resolution.
    HigherIsBetter,
    /// E.g. first response time, transfer to human.
    LowerIsBetter,
}

/// How a metric's numbers read in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricScale {
    /// A fraction, shown in percentage points ("pp").
    Rate,
    /// A mean in the given unit ("s", "EUR", or empty).
    Mean {
        /// Unit label.
        unit: String,
    },
}

/// One metric's evidence as the decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReading {
    /// Human name, e.g. "conversion".
    pub name: String,
    /// Display scale.
    pub scale: MetricScale,
    /// Which way is good.
    pub direction: Direction,
    /// Fixed-horizon comparison.
    pub comparison: Comparison,
    /// Always-valid result; when present it replaces the fixed-horizon interval and p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialResult>,
    /// Smallest absolute improvement worth shipping, in metric units (> 0).
    /// Only used for the primary metric.
    pub minimum_useful_effect: f64,
}

impl MetricReading {
    fn evidence(&self) -> Evidence {
        let (ci, p_value) = match &self.sequential {
            Some(s) => (s.absolute_ci, s.p_value),
            None => (self.comparison.absolute_ci, self.comparison.p_value),
        };
        let alpha = self.sequential.as_ref().map_or(self.comparison.alpha, |s| s.alpha);
        // Orient so that positive is good: bounds swap when lower is better.
        let (good_low, good_high) = match self.direction {
            Direction::HigherIsBetter => (ci[0], ci[1]),
            Direction::LowerIsBetter => (-ci[1], -ci[0]),
        };
        Evidence {
            ci,
            p_value,
            alpha,
            good_low,
            good_high,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Evidence {
    ci: [f64; 2],
    p_value: f64,
    alpha: f64,
    /// Interval bounds on the "positive is good" scale.
    good_low: f64,
    good_high: f64,
}

/// Everything the decision needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionInput {
    /// Key of the treatment variant, e.g. "B".
    pub variant: String,
    /// The primary metric.
    pub primary: MetricReading,
    /// Metrics that must not get significantly worse.
    pub guardrails: Vec<MetricReading>,
    /// p-value of the sample-ratio-mismatch check.
    pub srm_p_value: f64,
    /// Minimum units per variant (see [`DEFAULT_MIN_SAMPLE_PER_VARIANT`]).
    pub min_sample_per_variant: u64,
    /// Whether the planned duration has elapsed.
    pub planned_duration_reached: bool,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Roll the variant out.
    Ship,
    /// Not enough evidence yet (or the data cannot be trusted yet).
    KeepRunning,
    /// End the experiment without shipping.
    Stop,
}

/// Machine-readable reason behind the verdict (rule of the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Rule 1.
    SampleRatioMismatch,
    /// Rule 2.
    BelowMinimumSample,
    /// Rule 3.
    GuardrailWorse,
    /// Rule 4.
    PrimaryBetter,
    /// Rule 5.
    PrimaryWorse,
    /// Rule 6.
    NoUsefulEffect,
    /// Rule 7, before the planned duration.
    Inconclusive,
    /// Rule 7, planned duration reached.
    InconclusiveAtPlannedDuration,
}

/// Verdict, reason and the sentence for managers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// Why, as a stable code.
    pub reason: Reason,
    /// One plain English sentence with the numbers.
    pub explanation: String,
}

/// Applies the rules of the module docs.
pub fn decide(input: &DecisionInput) -> Decision {
    let variant = &input.variant;
    let primary = &input.primary;
    let decision = |verdict, reason, explanation: String| Decision {
        verdict,
        reason,
        explanation,
    };

    // NaN compares false, so a missing SRM p-value does not block.
    if input.srm_p_value < SRM_P_THRESHOLD {
        return decision(
            Verdict::KeepRunning,
            Reason::SampleRatioMismatch,
            format!(
                "No decision: sample ratio mismatch ({}, below {SRM_P_THRESHOLD}), the units per variant do not match the weights; fix assignment or exposure logging before reading results.",
                format_p(input.srm_p_value)
            ),
        );
    }

    let c = &primary.comparison;
    let smallest = c.control_n.min(c.treatment_n);
    if smallest < input.min_sample_per_variant {
        return decision(
            Verdict::KeepRunning,
            Reason::BelowMinimumSample,
            format!(
                "Keep running: {variant} has {} and control {} units, {} per variant are needed before deciding.",
                c.treatment_n, c.control_n, input.min_sample_per_variant
            ),
        );
    }

    for guardrail in &input.guardrails {
        let e = guardrail.evidence();
        if e.good_high < 0.0 {
            return decision(
                Verdict::Stop,
                Reason::GuardrailWorse,
                format!(
                    "{variant} harms guardrail {}: {}, stop it.",
                    guardrail.name,
                    describe(guardrail, &e)
                ),
            );
        }
    }

    let e = primary.evidence();
    if e.good_low > 0.0 {
        return decision(
            Verdict::Ship,
            Reason::PrimaryBetter,
            format!("{variant} wins: {}, ship it.", describe(primary, &e)),
        );
    }
    if e.good_high < 0.0 {
        return decision(
            Verdict::Stop,
            Reason::PrimaryWorse,
            format!("{variant} loses: {}, stop it.", describe(primary, &e)),
        );
    }
    if e.good_high < primary.minimum_useful_effect {
        return decision(
            Verdict::Stop,
            Reason::NoUsefulEffect,
            format!(
                "No useful effect from {variant}: {}, which rules out the minimum useful {}; stop it.",
                describe(primary, &e),
                format_amount(primary, primary.minimum_useful_effect, primary.minimum_useful_effect)
            ),
        );
    }
    if input.planned_duration_reached {
        return decision(
            Verdict::Stop,
            Reason::InconclusiveAtPlannedDuration,
            format!(
                "Inconclusive at the planned duration: {}; stop without shipping {variant}.",
                describe(primary, &e)
            ),
        );
    }
    decision(
        Verdict::KeepRunning,
        Reason::Inconclusive,
        format!("Keep running: {} so far for {variant}.", describe(primary, &e)),
    )
}

/// "+2.1 pp conversion (95 % CI 0.8–3.4), p = 0.002".
fn describe(metric: &MetricReading, e: &Evidence) -> String {
    let lift = metric.comparison.absolute_lift;
    let magnitude = lift.abs().max(e.ci[0].abs()).max(e.ci[1].abs());
    let amount = format_amount(metric, lift, magnitude);
    let low = format_value(metric, e.ci[0], magnitude);
    let high = format_value(metric, e.ci[1], magnitude);
    let range = if e.ci[0] < 0.0 || e.ci[1] < 0.0 {
        format!("{low} to {high}")
    } else {
        format!("{low}–{high}")
    };
    let level = format_level(e.alpha);
    let kind = if metric.sequential.is_some() {
        "always-valid CI"
    } else {
        "CI"
    };
    format!(
        "{amount} {} ({level} % {kind} {range}), {}",
        metric.name,
        format_p(e.p_value)
    )
}

/// Confidence level in percent without trailing zeros (95, 99, 97.5).
fn format_level(alpha: f64) -> String {
    let level = (1.0 - alpha) * 100.0;
    let text = format!("{level:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_string)
}

/// Signed amount with its unit: "+2.1 pp", "-12 s".
fn format_amount(metric: &MetricReading, value: f64, magnitude: f64) -> String {
    let sign = if value > 0.0 { "+" } else { "" };
    let number = format_value(metric, value, magnitude);
    match &metric.scale {
        MetricScale::Rate => format!("{sign}{number} pp"),
        MetricScale::Mean { unit } if unit.is_empty() => format!("{sign}{number}"),
        MetricScale::Mean { unit } => format!("{sign}{number} {unit}"),
    }
}

/// Number in display units (pp for rates), with two significant digits of
/// the largest number in the sentence so all of them line up.
fn format_value(metric: &MetricReading, value: f64, magnitude: f64) -> String {
    let scale = match metric.scale {
        MetricScale::Rate => 100.0,
        MetricScale::Mean { .. } => 1.0,
    };
    let magnitude = magnitude * scale;
    let decimals = if magnitude > 0.0 && magnitude.is_finite() {
        (1 - magnitude.log10().floor() as i32).clamp(0, 6) as usize
    } else {
        1
    };
    format!("{:.*}", decimals, value * scale)
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p:.3}")
    }
}

#[cfg(test)]
mod tests;
