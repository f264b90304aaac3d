//! SQL text with `$1, $2, …` placeholders and the values that fill them.
//!
//! This is how a value the service computed or a client sent reaches a
//! query: as a typed parameter bound after parsing, never spliced into the
//! text (lists of values a client sent go in as rows of an in-memory
//! table). So no value can change what a statement means, and none needs
//! quoting.

use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// A statement and the values of its placeholders, `params[0]` for `$1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<ScalarValue>,
}

impl Statement {
    /// A statement without parameters.
    pub fn text(sql: impl Into<String>) -> Self {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Plans the statement in `ctx` with its parameters bound.
    pub async fn plan(&self, ctx: &SessionContext) -> Result<DataFrame> {
        ctx.sql(&self.sql).await?.with_param_values(self.params.clone())
    }
}

/// A UTC instant as a parameter of the type of the `events` timestamps.
pub fn utc_micros(t_us: i64) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t_us), Some("UTC".into()))
}

/// Collects the parameters of a statement being written: each value gets
/// the next placeholder, which goes into the text in its place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Binder {
    params: Vec<ScalarValue>,
}

impl Binder {
    /// The placeholder (`$n`) that stands for `value`.
    pub fn bind(&mut self, value: ScalarValue) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// The statement `sql` with the values bound so far.
    pub fn statement(self, sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            params: self.params,
        }
    }
}
