//! What the API and the pages answer that needs the running service
//! ([`Services`](crate::Services)): the analyses over a tenant's snapshot
//! of a window ([`analyses`]), experiment results, kept per data version
//! and warmed in the background ([`experiments`]), and forecasts with
//! staffing plans ([`forecasts`]). Results and staffing plans also have
//! the typed reading of their answers that the pages show, so a renamed
//! field fails a test instead of showing as 0; the analyses' pages read
//! typed rows of [`crate::analyses`].

use serde::{Deserialize, Deserializer};

pub mod analyses;
pub mod experiments;
pub mod forecasts;

/// A field that must be present and may be `null`: serde would take a
/// missing `Option` for `None`, so a field renamed in the answer would read
/// as "no value" instead of failing.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}
