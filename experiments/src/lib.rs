//! Experiments for cxlake: deterministic assignment of customers to variants
//! (greetings, AI personas, quick-reply sets) and the statistics that turn
//! exposures and outcomes into a decision.
//!
//! # Design
//!
//! - **No state, no I/O.** [`assignment`] is a pure function of the
//!   experiment seed and the unit id (`cxlake-assign-v1`, specified exactly in
//!   its docs so other languages can reimplement it). [`stats`] functions are
//!   pure functions of *summary statistics* (`n`, `Σy`, `Σy²`, and for ratio
//!   metrics and CUPED `Σx`, `Σx²`, `Σxy`), so the lake aggregates in SQL and
//!   this crate never sees rows (except [`stats::winsor`], which needs the
//!   values to find a percentile). [`decision`] turns comparisons into
//!   `ship | keep_running | stop` and one sentence.
//! - **Serde-stable outputs.** Result structs serialize with snake_case
//!   field names that the HTTP layer returns as is.
//! - **Errors, not panics.** Inputs that came from outside are validated and
//!   rejected with [`stats::StatsError`] / [`assignment::AssignmentError`],
//!   naming the field.
//! - The registry and HTTP endpoints live elsewhere; this crate deliberately
//!   knows nothing about storage or transport.
//!
//! # Methods and references
//!
//! | Module | Method | Reference implementation in the tests |
//! |---|---|---|
//! | [`stats::compare`](mod@stats::compare) | Welch t (Welch–Satterthwaite df); two-proportion z (pooled test, Wald interval); delta-method relative lift | `scipy.stats.ttest_ind`, statsmodels `proportions_ztest`, `confint_proportions_2indep`, `NonlinearDeltaCov` |
//! | [`stats::ratio`] | Delta method for ratio metrics (Deng et al. 2018) | statsmodels `NonlinearDeltaCov` |
//! | [`stats::cuped`] | CUPED with pooled θ (Deng et al. 2013) | Welch on adjusted values |
//! | [`stats::sequential`] | mSPRT (Johari et al. 2017); asymptotic confidence sequences (Waudby-Smith et al. 2023) | the papers' formulas in numpy, with root finding |
//! | [`stats::bayes`] | Normal-approximation chance to win and expected loss (as GrowthBook) | `scipy.integrate.quad` |
//! | [`stats::multiple`] | Holm, Benjamini–Hochberg | statsmodels `multipletests` |
//! | [`stats::srm`] | Chi-square sample-ratio check, flag at p < 0.001 | `scipy.stats.chisquare` |
//! | [`stats::winsor`] | Pooled-percentile capping, numpy "linear" percentile | `numpy.percentile` |
//! | [`stats::power`] | Power, MDE, sample size for rates and means | statsmodels `power_proportions_2indep`, `NormalIndPower`, … |
//!
//! Reference values are produced by `tests/fixtures/gen_reference.py` into
//! `tests/fixtures/reference.json` and checked to 1e-6 relative by
//! `tests/reference.rs`.
//!
//! # Example
//!
//! ```
//! use experiments::assign_variant;
//! use experiments::stats::{ArmSummary, compare};
//!
//! // Which greeting does this customer see? Same answer every time.
//! let variant = assign_variant("greeting-2025-06", "customer-42", &[0.5, 0.5]);
//! assert!(variant < 2);
//!
//! // Conversion: 1,000 of 10,000 in control, 1,210 of 10,000 in treatment.
//! let result = compare(&ArmSummary::rate(10_000, 1_000), &ArmSummary::rate(10_000, 1_210), 0.05)?;
//! assert!(result.p_value < 0.001);
//! assert!(result.absolute_ci[0] > 0.0);
//! # Ok::<(), experiments::stats::StatsError>(())
//! ```

pub mod assignment;
pub mod decision;
pub mod stats;

pub use assignment::{ALGORITHM_VERSION, Layer, LayerSlot, VariantSplit, assign_variant, in_traffic, layer_bucket};
