//! What a staffing forecast reads from the lake: the history of a queue
//! per interval ([`lake`]) on the tenant's local interval grid ([`slots`]).
//! [`crate::served::forecasts`] answers with them.

pub mod lake;
pub mod slots;
