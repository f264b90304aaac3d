//! `array_agg` and `string_agg` as window functions.
//!
//! Over a growing frame (`OVER (ORDER BY ts)`) these emit, for every row, a
//! value holding every row before it: n rows build n²/2 elements, in output
//! arrays no operator accounts for. `array_agg(event_id) OVER (ORDER BY
//! occurred_at)` over 47k events asks for tens of GB, and the process is
//! killed before the query's time limit. In an analyst session both are
//! replaced by wrappers whose accumulators reserve, in the session's memory
//! pool, the bytes of the values they emit past the first (a plain
//! aggregate emits one value per accumulator and is accounted by its
//! operator), so such a query fails with "resources exhausted" once its
//! values pass the session's memory bound, like any other operator.
//!
//! A growing frame's values stay reserved until the window partition ends
//! (all of them may sit in the partition's output); a sliding frame's only
//! for the last `batch_rows` rows (one output batch), so a bounded frame
//! over a long partition is not refused for memory it never holds at once.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams, WindowFunctionParams};
use datafusion::logical_expr::function::{AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator, Operator, ReversedUDAF,
    SetMonotonicity, Signature, StatisticsArgs,
};
use datafusion::prelude::SessionContext;

/// The aggregates whose window values grow with the frame.
const GROWING: [&str; 2] = ["array_agg", "string_agg"];

/// Replaces `array_agg` and `string_agg` of `ctx` with accounted wrappers.
pub(super) fn install(ctx: &SessionContext) {
    let state = ctx.state();
    let pool = ctx.runtime_env().memory_pool.clone();
    let batch_rows = state.config().batch_size().max(1);
    for name in GROWING {
        if let Some(inner) = state.aggregate_functions().get(name) {
            ctx.register_udaf(AggregateUDF::new_from_impl(Accounted {
                inner: inner.clone(),
                pool: pool.clone(),
                batch_rows,
            }));
        }
    }
}

#[derive(Debug)]
struct Accounted {
    inner: Arc<AggregateUDF>,
    pool: Arc<dyn MemoryPool>,
    batch_rows: usize,
}

impl PartialEq for Accounted {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && Arc::ptr_eq(&self.pool, &other.pool) && self.batch_rows == other.batch_rows
    }
}

impl Eq for Accounted {}

impl Hash for Accounted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.batch_rows.hash(state);
    }
}

impl Accounted {
    fn imp(&self) -> &Arc<dyn AggregateUDFImpl> {
        self.inner.inner()
    }

    /// The same accounting around another function (a reversed or
    /// reordered form of this one).
    fn around(&self, inner: Arc<AggregateUDF>) -> Accounted {
        Accounted {
            inner,
            pool: self.pool.clone(),
            batch_rows: self.batch_rows,
        }
    }

    fn accounted(&self, inner: Box<dyn Accumulator>, sliding: bool) -> Box<dyn Accumulator> {
        let reservation = MemoryConsumer::new(format!("{} window values", self.name())).register(&self.pool);
        Box::new(AccountedAccumulator {
            inner,
            name: self.name().to_string(),
            reservation,
            evaluations: 0,
            recent: sliding.then(|| (VecDeque::new(), self.batch_rows)),
        })
    }
}

impl AggregateUDFImpl for Accounted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.imp().schema_name(params)
    }
    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.imp().human_display(params)
    }
    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.imp().window_function_schema_name(params)
    }
    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.imp().display_name(params)
    }
    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.imp().window_function_display_name(params)
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.imp().return_type(arg_types)
    }
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.imp().return_field(arg_fields)
    }
    fn is_nullable(&self) -> bool {
        self.imp().is_nullable()
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.accounted(self.imp().accumulator(acc_args)?, false))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.imp().state_fields(args)
    }
    // Grouped aggregation accounts its groups' state itself.
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.imp().groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        self.imp().create_groups_accumulator(args)
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(self.accounted(self.imp().create_sliding_accumulator(args)?, true))
    }
    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let Some(inner) = self.imp().clone().with_beneficial_ordering(beneficial_ordering)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(
            self.around(Arc::new(AggregateUDF::new_from_shared_impl(inner))),
        )))
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.imp().order_sensitivity()
    }
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.imp().simplify()
    }
    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.imp()
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        match self.imp().reverse_expr() {
            ReversedUDAF::Reversed(inner) => {
                ReversedUDAF::Reversed(Arc::new(AggregateUDF::new_from_impl(self.around(inner))))
            }
            other => other,
        }
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.imp().coerce_types(arg_types)
    }
    fn is_descending(&self) -> Option<bool> {
        self.imp().is_descending()
    }
    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.imp().value_from_stats(statistics_args)
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.imp().default_value(data_type)
    }
    fn supports_null_handling_clause(&self) -> bool {
        self.imp().supports_null_handling_clause()
    }
    fn supports_within_group_clause(&self) -> bool {
        self.imp().supports_within_group_clause()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.imp().set_monotonicity(data_type)
    }
}

#[derive(Debug)]
struct AccountedAccumulator {
    inner: Box<dyn Accumulator>,
    name: String,
    reservation: MemoryReservation,
    evaluations: usize,
    /// Sliding frames: the sizes of the last values and how many an
    /// output batch holds.
    recent: Option<(VecDeque<usize>, usize)>,
}

impl Accumulator for AccountedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = self.inner.evaluate()?;
        self.evaluations += 1;
        // A plain aggregate evaluates once; its operator accounts for it.
        if self.evaluations > 1 {
            let bytes = value.size();
            self.reservation.try_grow(bytes).map_err(|e| {
                DataFusionError::ResourcesExhausted(format!(
                    "{} over a growing window frame builds one value per row holding every row before it \
                     ({} rows so far); this session's memory bound is reached: use a bounded frame \
                     (ROWS BETWEEN 100 PRECEDING AND CURRENT ROW), PARTITION BY, or GROUP BY instead ({e})",
                    self.name, self.evaluations
                ))
            })?;
            if let Some((recent, rows)) = &mut self.recent {
                recent.push_back(bytes);
                if recent.len() > *rows
                    && let Some(old) = recent.pop_front()
                {
                    self.reservation.shrink(old.min(self.reservation.size()));
                }
            }
        }
        Ok(value)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}
