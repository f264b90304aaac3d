//! The crate's error type. Every variant names the offending parameter so the
//! HTTP layer can answer a 400 problem document that says what to change.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An invalid or impossible input. `param()` gives the parameter's name as the
/// caller spelled it (e.g. `aht_s`, `service_level`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// NaN or ±∞ where a finite number is required.
    #[error("`{param}` must be a finite number, got {value}")]
    NotFinite {
        /// Parameter name.
        param: &'static str,
        /// The value received.
        value: f64,
    },
    /// A finite number outside its admissible range.
    #[error("`{param}` must be {requirement}, got {value}")]
    OutOfRange {
        /// Parameter name.
        param: &'static str,
        /// The value received.
        value: f64,
        /// Human description of the admissible range, e.g. "in [0, 1)".
        requirement: &'static str,
    },
    /// The inputs are individually valid but the target cannot be met.
    #[error("`{param}`: {detail}")]
    Unreachable {
        /// Parameter whose target cannot be met.
        param: &'static str,
        /// Why.
        detail: String,
    },
    /// Structurally inconsistent input (lengths, intervals, ...).
    #[error("`{param}`: {detail}")]
    Invalid {
        /// Parameter name.
        param: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    /// Name of the parameter the error is about.
    pub fn param(&self) -> &'static str {
        match self {
            Error::NotFinite { param, .. }
            | Error::OutOfRange { param, .. }
            | Error::Unreachable { param, .. }
            | Error::Invalid { param, .. } => param,
        }
    }
}

/// Rejects NaN and infinities.
pub(crate) fn finite(param: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::NotFinite { param, value })
    }
}

/// Finite and strictly positive.
pub(crate) fn positive(param: &'static str, value: f64) -> Result<f64> {
    finite(param, value)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(Error::OutOfRange {
            param,
            value,
            requirement: "greater than 0",
        })
    }
}

/// Finite and ≥ 0.
pub(crate) fn non_negative(param: &'static str, value: f64) -> Result<f64> {
    finite(param, value)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::OutOfRange {
            param,
            value,
            requirement: "at least 0",
        })
    }
}

/// A fraction in the half-open range [0, 1).
pub(crate) fn fraction_below_one(param: &'static str, value: f64) -> Result<f64> {
    finite(param, value)?;
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::OutOfRange {
            param,
            value,
            requirement: "in [0, 1) (a fraction, not a percentage; 1 = 100 % is impossible)",
        })
    }
}

/// A fraction in (0, 1].
pub(crate) fn fraction_up_to_one(param: &'static str, value: f64) -> Result<f64> {
    finite(param, value)?;
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(Error::OutOfRange {
            param,
            value,
            requirement: "in (0, 1] (a fraction, not a percentage)",
        })
    }
}
