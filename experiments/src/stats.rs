//! Pure statistics on summary statistics: no I/O, no clocks, no randomness.
//!
//! Every function takes sums (or, for winsorizing, raw values) and returns a
//! serde-serializable result with stable snake_case field names. Inputs that
//! come from outside (HTTP bodies, lake queries) are validated and rejected
//! with [`StatsError`], never with a panic.

pub mod bayes;
pub mod compare;
pub mod cuped;
pub mod dist;
pub mod multiple;
pub mod power;
pub mod ratio;
pub mod sequential;
pub mod srm;
pub mod summary;
pub mod winsor;

pub use bayes::{BayesianResult, LiftScale, bayesian_from_comparison, bayesian_normal};
pub use compare::{Comparison, Method, compare, two_proportion_z_test, welch_t_test};
pub use cuped::{CupedResult, RatioUnit, cuped_ratio_delta_test, cuped_welch_t_test};
pub use multiple::{benjamini_hochberg, holm};
pub use power::{
    MinimumEffect, SampleSizeResult, mde_means, mde_proportions, power_from_standard_error, power_means,
    power_proportions, sample_size_means, sample_size_proportions,
};
pub use ratio::ratio_delta_test;
pub use sequential::{
    SequentialMethod, SequentialResult, confidence_sequence, default_tau_squared, msprt, msprt_from_comparison,
};
pub use srm::{SRM_P_THRESHOLD, SrmResult, sample_ratio_mismatch};
pub use summary::{ArmSummary, BivariateSummary};
pub use winsor::{percentile_linear, pooled_cap, winsorize};

/// Invalid statistical input; names the field and says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// An input is out of its domain.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Name of the offending input (as in the HTTP body where applicable).
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
}

/// Result alias of this module.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StatsError {
    StatsError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// Significance level must be strictly inside (0, 1).
pub(crate) fn check_alpha(alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(invalid("alpha", format!("must be in (0, 1), got {alpha}")))
    }
}

#[cfg(test)]
mod tests;
