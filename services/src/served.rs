//! What the API and the pages answer that needs the running service
//! ([`Services`](crate::Services)): experiment results, kept per data
//! version and warmed in the background ([`experiments`]), and forecasts
//! with staffing plans ([`forecasts`]). Each also has the typed reading of
//! its answer that the pages show, so a renamed field fails a test instead
//! of showing as 0.

use serde::{Deserialize, Deserializer};

pub mod experiments;
pub mod forecasts;

/// A field that must be present and may be `null`: serde would take a
/// missing `Option` for `None`, so a field renamed in the answer would read
/// as "no value" instead of failing.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}
