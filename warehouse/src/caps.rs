//! Caps on functions that build values of a size the query names.
//!
//! `repeat('x', 2147483647)`, `array_repeat(1, 2147483647)` or
//! `range(1, 2147483647)` allocate their whole result in one call, outside
//! any memory pool, before any operator could account for it: one such
//! statement would take the process down for every tenant. In an analyst
//! session these functions are replaced by wrappers that first estimate,
//! from the arguments alone, how many bytes the call would build, and
//! refuse with [`BoundError::ValueTooLarge`] past a limit derived from the
//! session's memory bound ([`crate::bounds::Bounds::max_value_bytes`]).
//!
//! The estimate is an upper bound of the output of one call over a batch.
//! Growth proportional to what is already in memory (a `regexp_replace`
//! over long texts) is allowed: the limit applies to what the call adds
//! beyond a few times its input. Functions whose output is bounded by their
//! input (`concat`, `upper`, `array_concat`, ...) need no cap; with the
//! capped ones refused, nothing can feed them a huge value.
//!
//! `string_agg` grows its accumulator by the delimiter for every row before
//! the aggregate accounts for it, so [`check_aggregates`] refuses
//! delimiters that would add more than the limit over one batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::bounds::BoundError;

/// What a capped function builds, and so how its size is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `repeat(text, n)`: `len(text) × n` bytes.
    Repeat,
    /// `lpad`/`rpad(text, n [, fill])`: `n` characters.
    Pad,
    /// `array_repeat(element, n)`: `n` elements.
    ArrayRepeat,
    /// `array_resize(array, n [, value])`: `n` elements.
    ArrayResize,
    /// `range`/`generate_series(start, stop [, step])`.
    Range,
    /// `replace(text, from, to)`: every `from` becomes `to`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: a match can
    /// be empty, so up to `len(text) + 1` replacements.
    RegexpReplace,
    /// `array_to_string(array, delimiter [, null_string])`: a delimiter
    /// per element.
    ArrayToString,
    /// `levenshtein(a, b)`: `len(a) × len(b)` steps in one call that cannot
    /// be interrupted.
    Levenshtein,
}

const CAPPED: &[(&str, Kind)] = &[
    ("repeat", Kind::Repeat),
    ("lpad", Kind::Pad),
    ("rpad", Kind::Pad),
    ("array_repeat", Kind::ArrayRepeat),
    ("array_resize", Kind::ArrayResize),
    ("range", Kind::Range),
    ("generate_series", Kind::Range),
    ("replace", Kind::Replace),
    ("regexp_replace", Kind::RegexpReplace),
    ("array_to_string", Kind::ArrayToString),
    ("levenshtein", Kind::Levenshtein),
];

/// Replaces the value-building functions of `ctx` with capped wrappers
/// (see the module docs). Call after every function is registered.
pub fn install(ctx: &SessionContext, limit_bytes: usize) {
    growing::install(ctx);
    let state = ctx.state();
    for (name, kind) in CAPPED {
        if let Some(inner) = state.scalar_functions().get(*name) {
            ctx.register_udf(capped(inner.clone(), *kind, limit_bytes));
        }
    }
}

fn capped(inner: Arc<ScalarUDF>, kind: Kind, limit_bytes: usize) -> ScalarUDF {
    ScalarUDF::new_from_impl(Capped {
        inner,
        kind,
        limit_bytes,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: Arc<ScalarUDF>,
    kind: Kind,
    limit_bytes: usize,
}

impl Capped {
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let values = &args.args;
        // With every argument a scalar, the function computes one value.
        let rows = if values.iter().all(|v| matches!(v, ColumnarValue::Scalar(_))) {
            1
        } else {
            args.number_rows
        };
        let arg = |i: usize| values.get(i);
        let estimate: u128 = match self.kind {
            Kind::Repeat => {
                let (text, n) = (lens(arg(0))?, ints(arg(1))?);
                sum_rows(rows, |i| text.at(i) * n.at(i))
            }
            Kind::Pad => {
                let n = ints(arg(1))?;
                // A character takes up to 4 bytes unless the text and the
                // fill are known to be ASCII.
                let width = if is_ascii_scalar(arg(0)) && arg(2).is_none_or(|f| is_ascii_scalar(Some(f))) {
                    1
                } else {
                    4
                };
                sum_rows(rows, |i| n.at(i) * width)
            }
            Kind::ArrayRepeat => {
                let n = ints(arg(1))?;
                let elem = arg(0);
                let mut total = 0u128;
                for i in 0..rows {
                    let count = n.at(i);
                    if count > 0 {
                        total = total.saturating_add(count.saturating_mul(element_bytes(elem, i)?));
                    }
                }
                total
            }
            Kind::ArrayResize => {
                let n = ints(arg(1))?;
                let mut total = 0u128;
                for i in 0..rows {
                    let count = n.at(i);
                    if count > 0 {
                        let each = match arg(2) {
                            Some(v) => element_bytes(Some(v), i)?,
                            None => 8,
                        };
                        total = total.saturating_add(count.saturating_mul(each));
                    }
                }
                total
            }
            Kind::Range => range_bytes(values, rows)?,
            Kind::Replace => {
                let (text, from, to) = (lens(arg(0))?, lens(arg(1))?, lens(arg(2))?);
                sum_rows(rows, |i| {
                    let (t, f, r) = (text.at(i), from.at(i), to.at(i));
                    if r <= f { t } else { t + (t / f.max(1) + 1) * r }
                })
            }
            Kind::RegexpReplace => {
                let (text, repl) = (lens(arg(0))?, lens(arg(2))?);
                // Each replacement may also copy the match (`\0`, `$1`).
                sum_rows(rows, |i| {
                    let (t, r) = (text.at(i), repl.at(i));
                    t + (2 * t + 1) * r
                })
            }
            Kind::ArrayToString => {
                let (sep, null) = (lens(arg(1))?, lens(arg(2))?);
                let per_element = sep.max(rows) + null.max(rows) + 24;
                match arg(0) {
                    Some(v) => {
                        let array = to_array(v)?;
                        (leaves(array.as_ref()) as u128) * per_element + array.get_array_memory_size() as u128
                    }
                    None => 0,
                }
            }
            Kind::Levenshtein => {
                let (a, b) = (lens(arg(0))?, lens(arg(1))?);
                let steps = sum_rows(rows, |i| a.at(i) * b.at(i));
                // Steps cost about a byte's worth of work each; the limit
                // keeps one uninterruptible call to a second or two.
                let limit = (self.limit_bytes as u128).saturating_mul(8);
                if steps > limit {
                    return Err(BoundError::ValueTooLarge {
                        function: format!("{} (length(a) × length(b) steps)", self.inner.name()),
                        estimate: steps,
                        limit: limit.min(usize::MAX as u128) as usize,
                    }
                    .into_df());
                }
                return Ok(());
            }
        };
        let input: u128 = values
            .iter()
            .map(|v| match v {
                ColumnarValue::Array(a) => a.get_array_memory_size() as u128,
                ColumnarValue::Scalar(s) => s.size() as u128,
            })
            .sum();
        if estimate > (self.limit_bytes as u128).saturating_add(input.saturating_mul(4)) {
            return Err(BoundError::ValueTooLarge {
                function: self.inner.name().to_string(),
                estimate,
                limit: self.limit_bytes,
            }
            .into_df());
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(capped(Arc::new(updated), self.kind, self.limit_bytes))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn simplify(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.inner().simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }

    fn evaluate_bounds(
        &self,
        input: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<datafusion::logical_expr::interval_arithmetic::Interval> {
        self.inner.inner().evaluate_bounds(input)
    }

    fn output_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<datafusion::logical_expr::sort_properties::SortProperties> {
        self.inner.inner().output_ordering(inputs)
    }

    fn preserves_lex_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<bool> {
        self.inner.inner().preserves_lex_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

/// One argument's numbers, row by row (a scalar stands for every row).
enum Col {
    Scalar(u128),
    Array(Vec<u128>),
}

impl Col {
    fn at(&self, i: usize) -> u128 {
        match self {
            Col::Scalar(v) => *v,
            Col::Array(v) => v.get(i).copied().unwrap_or(0),
        }
    }

    fn max(&self, rows: usize) -> u128 {
        match self {
            Col::Scalar(v) => *v,
            Col::Array(v) => v.iter().take(rows).copied().max().unwrap_or(0),
        }
    }
}

fn sum_rows(rows: usize, f: impl Fn(usize) -> u128) -> u128 {
    (0..rows).fold(0u128, |acc, i| acc.saturating_add(f(i)))
}

fn to_array(v: &ColumnarValue) -> Result<ArrayRef> {
    match v {
        ColumnarValue::Array(a) => Ok(a.clone()),
        ColumnarValue::Scalar(s) => s.to_array_of_size(1),
    }
}

/// Byte lengths of a string or binary argument; 0 for nulls, other types
/// and a missing argument.
fn lens(v: Option<&ColumnarValue>) -> Result<Col> {
    let Some(v) = v else { return Ok(Col::Scalar(0)) };
    let array = to_array(v)?;
    let lengths: Vec<u128> = match array.data_type() {
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|s| s.map_or(0, str::len) as u128)
            .collect(),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|s| s.map_or(0, str::len) as u128)
            .collect(),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .map(|s| s.map_or(0, str::len) as u128)
            .collect(),
        DataType::Binary => array
            .as_binary::<i32>()
            .iter()
            .map(|s| s.map_or(0, <[u8]>::len) as u128)
            .collect(),
        DataType::LargeBinary => array
            .as_binary::<i64>()
            .iter()
            .map(|s| s.map_or(0, <[u8]>::len) as u128)
            .collect(),
        DataType::BinaryView => array
            .as_binary_view()
            .iter()
            .map(|s| s.map_or(0, <[u8]>::len) as u128)
            .collect(),
        _ => return Ok(Col::Scalar(0)),
    };
    Ok(match v {
        ColumnarValue::Scalar(_) => Col::Scalar(lengths.first().copied().unwrap_or(0)),
        ColumnarValue::Array(_) => Col::Array(lengths),
    })
}

/// Non-negative integers of a numeric argument (negatives and nulls count
/// as 0); 0 for arguments that are not numbers.
fn ints(v: Option<&ColumnarValue>) -> Result<Col> {
    let Some(v) = v else { return Ok(Col::Scalar(0)) };
    let array = to_array(v)?;
    if !array.data_type().is_integer() && !array.data_type().is_floating() {
        return Ok(Col::Scalar(0));
    }
    let Ok(as_i64) = arrow::compute::cast(&array, &DataType::Int64) else {
        return Ok(Col::Scalar(0));
    };
    let values: Vec<u128> = as_i64
        .as_primitive::<Int64Type>()
        .iter()
        .map(|n| n.unwrap_or(0).max(0) as u128)
        .collect();
    Ok(match v {
        ColumnarValue::Scalar(_) => Col::Scalar(values.first().copied().unwrap_or(0)),
        ColumnarValue::Array(_) => Col::Array(values),
    })
}

fn is_ascii_scalar(v: Option<&ColumnarValue>) -> bool {
    match v {
        Some(ColumnarValue::Scalar(s)) => match s {
            ScalarValue::Utf8(Some(t)) | ScalarValue::LargeUtf8(Some(t)) | ScalarValue::Utf8View(Some(t)) => {
                t.is_ascii()
            }
            _ => true,
        },
        _ => false,
    }
}

/// Bytes one copy of row `i` of `v` takes in an array.
fn element_bytes(v: Option<&ColumnarValue>, i: usize) -> Result<u128> {
    let Some(v) = v else { return Ok(8) };
    if let Some(w) = v.data_type().primitive_width() {
        return Ok(w as u128);
    }
    let scalar = match v {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) if i < a.len() => ScalarValue::try_from_array(a, i)?,
        ColumnarValue::Array(_) => return Ok(8),
    };
    Ok((scalar.size() as u128).max(8))
}

/// Values at the bottom of nested lists.
fn leaves(array: &dyn Array) -> usize {
    match array.data_type() {
        DataType::List(_) => leaves(array.as_list::<i32>().values().as_ref()),
        DataType::LargeList(_) => leaves(array.as_list::<i64>().values().as_ref()),
        DataType::FixedSizeList(_, _) => leaves(array.as_fixed_size_list().values().as_ref()),
        _ => array.len(),
    }
}

/// Bytes of `range`/`generate_series`: 8 per element, elements from
/// `(stop - start) / step`. Dates and timestamps are measured in
/// nanoseconds, a month counted as 30 days.
fn range_bytes(values: &[ColumnarValue], rows: usize) -> Result<u128> {
    let (start, stop, step) = match values.len() {
        1 => (None, values.first(), None),
        2 => (values.first(), values.get(1), None),
        _ => (values.first(), values.get(1), values.get(2)),
    };
    let start = signed(start)?;
    let stop = signed(stop)?;
    let step = signed(step)?;
    let mut total = 0u128;
    for i in 0..rows {
        let (Some(a), Some(b)) = (start.at(i).or(Some(0)), stop.at(i)) else {
            continue;
        };
        // A zero step is the function's own error; count one element.
        let s = step
            .at(i)
            .unwrap_or(if start.temporal { 86_400_000_000_000 } else { 1 });
        let span = (b - a).unsigned_abs();
        let count = span / s.unsigned_abs().max(1) + 1;
        total = total.saturating_add(count.saturating_mul(8));
    }
    Ok(total)
}

/// Signed numbers of a `range` argument: integers as they are, dates and
/// timestamps in nanoseconds since the epoch, intervals in nanoseconds.
struct Signed {
    values: Vec<Option<i128>>,
    scalar: bool,
    temporal: bool,
}

impl Signed {
    fn at(&self, i: usize) -> Option<i128> {
        let i = if self.scalar { 0 } else { i };
        self.values.get(i).copied().flatten()
    }
}

fn signed(v: Option<&ColumnarValue>) -> Result<Signed> {
    let none = Signed {
        values: Vec::new(),
        scalar: true,
        temporal: false,
    };
    let Some(v) = v else { return Ok(none) };
    let scalar = matches!(v, ColumnarValue::Scalar(_));
    let array = to_array(v)?;
    const DAY_NS: i128 = 86_400_000_000_000;
    let (values, temporal): (Vec<Option<i128>>, bool) = match array.data_type() {
        t if t.is_integer() => {
            let Ok(a) = arrow::compute::cast(&array, &DataType::Int64) else {
                return Ok(none);
            };
            (
                a.as_primitive::<Int64Type>()
                    .iter()
                    .map(|n| n.map(i128::from))
                    .collect(),
                false,
            )
        }
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
            let target = DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None);
            let Ok(ts) = arrow::compute::cast(&array, &target) else {
                return Ok(none);
            };
            let Ok(a) = arrow::compute::cast(&ts, &DataType::Int64) else {
                return Ok(none);
            };
            (
                a.as_primitive::<Int64Type>()
                    .iter()
                    .map(|n| n.map(i128::from))
                    .collect(),
                true,
            )
        }
        DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano) => (
            array
                .as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>()
                .iter()
                .map(|iv| {
                    iv.map(|iv| {
                        i128::from(iv.months) * 30 * DAY_NS + i128::from(iv.days) * DAY_NS + i128::from(iv.nanoseconds)
                    })
                })
                .collect(),
            true,
        ),
        DataType::Interval(arrow::datatypes::IntervalUnit::DayTime) => (
            array
                .as_primitive::<arrow::datatypes::IntervalDayTimeType>()
                .iter()
                .map(|iv| iv.map(|iv| i128::from(iv.days) * DAY_NS + i128::from(iv.milliseconds) * 1_000_000))
                .collect(),
            true,
        ),
        DataType::Interval(arrow::datatypes::IntervalUnit::YearMonth) => (
            array
                .as_primitive::<arrow::datatypes::IntervalYearMonthType>()
                .iter()
                .map(|m| m.map(|m| i128::from(m) * 30 * DAY_NS))
                .collect(),
            true,
        ),
        _ => return Ok(none),
    };
    Ok(Signed {
        values,
        scalar,
        temporal,
    })
}

/// Refuses `string_agg` delimiters that would add more than `limit_bytes`
/// over one batch of `batch_rows` rows: the aggregate appends the delimiter
/// for every row before it accounts for its memory.
pub fn check_aggregates(plan: &Arc<dyn ExecutionPlan>, limit_bytes: usize, batch_rows: usize) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::aggregates::AggregateExec;
    use datafusion::physical_plan::expressions::Literal;
    let mut found = None;
    plan.apply(|node| {
        if let Some(agg) = node.downcast_ref::<AggregateExec>() {
            for f in agg.aggr_expr() {
                if f.fun().name() != "string_agg" {
                    continue;
                }
                let Some(delimiter) = f.expressions().get(1).cloned() else {
                    continue;
                };
                let Some(lit) = delimiter.downcast_ref::<Literal>() else {
                    continue;
                };
                let len = match lit.value() {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                        s.len()
                    }
                    _ => 0,
                };
                let growth = (len as u128) * (batch_rows.max(1) as u128);
                if growth > limit_bytes as u128 {
                    found = Some(growth);
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match found {
        Some(estimate) => Err(BoundError::ValueTooLarge {
            function: "string_agg (its delimiter, once per row)".into(),
            estimate,
            limit: limit_bytes,
        }
        .into_df()),
        None => Ok(()),
    }
}

mod growing;

#[cfg(test)]
mod tests;
