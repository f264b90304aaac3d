//! The answer of `GET /v1/kpis`, typed: every glossary KPI of a window and
//! of the period before it, and of each group of `group_by` (every
//! combination of dimension values that occurs, times each time bucket),
//! from the tenant's rollup ([`super::fast`]). The API renders it as JSON
//! or CSV; the pages read its rows.

use model::{Dimension, Kpi};
use warehouse::Warehouse;

use super::fast;
use super::lake::{Constraint, KpiRow, is_time_based};
use super::params::{self, BucketWindow, GroupBy, ParamError, Window, Windows};
use crate::error::ServiceError;
use crate::settings::TenantSettings;
use crate::tenant::TenantId;

/// Most groups one answer computes (combinations of dimension values ×
/// buckets). Each group is one pass over the rollup cells (channel, time
/// buckets) or the facts of the window (other dimensions).
pub const MAX_GROUPS: usize = 400;

/// A parameter the request got wrong, as the error every endpoint answers:
/// 400 `invalid-parameter` naming it.
pub fn param_error(e: ParamError) -> ServiceError {
    ServiceError::invalid_parameter(&e.parameter, e.detail)
}

fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    ServiceError::failed("KPI query failed", e)
}

/// A KPI request, parsed and checked.
#[derive(Debug, Clone)]
pub struct KpiRequest {
    pub tenant: TenantId,
    pub settings: TenantSettings,
    pub windows: Windows,
    /// The conversations counted: the asked filters and the key's scope.
    pub filters: Vec<Constraint>,
    pub group_by: GroupBy,
}

/// How much of the answer a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// All of `GET /v1/kpis`.
    Whole,
    /// The groups' current KPIs alone (the pages' breakdowns and trends):
    /// no totals and no previous period, which would cost passes they do
    /// not show (`current` and `previous` are empty).
    GroupsOnly,
}

/// One group: its key (dimension or bucket name, value; `None` for a
/// conversation without one), window and rows, and the previous period's
/// when the answer has one.
#[derive(Debug, Clone)]
pub struct GroupResult {
    pub key: Vec<(String, Option<String>)>,
    pub window: Window,
    pub current: Vec<KpiRow>,
    pub previous: Option<(Window, Vec<KpiRow>)>,
}

/// The KPIs of a request.
#[derive(Debug, Clone)]
pub struct KpiAnswer {
    pub current: Vec<KpiRow>,
    pub previous: Vec<KpiRow>,
    pub groups: Vec<GroupResult>,
    /// A dimension filters or groups: the time-based KPIs are left out
    /// ([`is_time_based`]).
    pub dimension_scoped: bool,
    /// The ingest sequence number the answer reflects: every batch
    /// acknowledged with this `seq` or a lower one is counted.
    pub as_of_seq: Option<u64>,
}

/// The value of `measure` of `kpi` over all segments of `rows` (`value`
/// for rates and counts, `mean`, `median`, `p90` for durations and CSAT).
pub fn value_of(rows: &[KpiRow], kpi: Kpi, measure: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.kpi == kpi.key() && r.measure == measure && r.segment == "all")
        .and_then(|r| r.value)
}

/// The conversations of `rows` (0 when none).
pub fn conversations_of(rows: &[KpiRow]) -> i64 {
    rows.iter()
        .find(|row| row.kpi == Kpi::Conversations.key())
        .map_or(0, |row| row.n)
}

/// One overview run: a window and the constraints on its conversations.
#[derive(Debug)]
struct Run {
    window: Window,
    constraints: Vec<Constraint>,
    /// Leave out the time-based keys (a dimension restricts the run).
    dimension_scoped: bool,
}

/// What every run of one request reads.
struct Source<'a> {
    rollup: &'a warehouse::rollups::TenantRollup,
    settings: &'a TenantSettings,
    now_us: i64,
}

impl Source<'_> {
    /// The overview of one run from the rollup: what
    /// `sql/kpis/overview.sql` answers.
    fn run(&self, r: &Run) -> Vec<KpiRow> {
        let mut rows = fast::run_overview(
            self.rollup,
            self.settings,
            &r.window,
            &r.constraints,
            !r.dimension_scoped,
            self.now_us,
        );
        if r.dimension_scoped {
            rows.retain(|row| !is_time_based(row));
        }
        rows
    }
}

/// A group's rows as a dimension-scoped run gives them.
fn scoped(mut rows: Vec<KpiRow>) -> Vec<KpiRow> {
    rows.retain(|row| !is_time_based(row));
    rows
}

/// `filters` and, for each dimension of a group's key, its value.
fn combo_constraints(filters: &[Constraint], combo: &[(Dimension, Option<String>)]) -> Vec<Constraint> {
    let mut constraints = filters.to_vec();
    constraints.extend(combo.iter().map(|(d, v)| Constraint {
        dimension: *d,
        values: v.clone().map(|v| vec![v]),
    }));
    constraints
}

/// The buckets of `group_by` over the request's window, refused when they
/// alone would be more than [`MAX_GROUPS`].
pub fn bucket_windows(req: &KpiRequest) -> Result<Option<Vec<BucketWindow>>, ServiceError> {
    let Some(b) = req.group_by.bucket else {
        return Ok(None);
    };
    if params::bucket_count(&req.windows.current, b) > MAX_GROUPS as i64 + 2 {
        return Err(param_error(ParamError::new(
            "group_by",
            format!(
                "{} buckets over this window would be more than {MAX_GROUPS} groups; use a coarser bucket or a shorter window",
                b.name()
            ),
        )));
    }
    Ok(Some(params::buckets(&req.windows.current, b, &req.settings.tz())))
}

/// The KPIs of `req` from the tenant's rollup, brought up to date first.
pub async fn answer(warehouse: &Warehouse, req: &KpiRequest, answer: Answer) -> Result<KpiAnswer, ServiceError> {
    let whole = answer == Answer::Whole;
    let buckets = bucket_windows(req)?;
    let rollup = fast::serving_rollup(warehouse, &req.tenant, &req.settings)
        .await
        .map_err(internal)?;
    let source = Source {
        rollup: &rollup,
        settings: &req.settings,
        now_us: chrono::Utc::now().timestamp_micros(),
    };
    let (windows, filters, group_by) = (&req.windows, &req.filters, &req.group_by);

    let filtered = !filters.is_empty();
    let overall = Run {
        window: windows.current,
        constraints: filters.clone(),
        dimension_scoped: filtered,
    };
    let (current, previous) = if whole {
        let current = source.run(&overall);
        let previous = source.run(&Run {
            window: windows.previous,
            ..overall
        });
        (current, previous)
    } else {
        (Vec::new(), Vec::new())
    };

    // Groups: every combination of dimension values that occurs in the
    // window (a NULL / empty value is a value of its own), times each
    // bucket; combinations that never occur are not enumerated (teams ×
    // agents is about as many groups as agents, not their product).
    let mut groups: Vec<GroupResult> = Vec::new();
    if !group_by.is_empty() {
        let bucket_windows: Vec<Option<BucketWindow>> = match &buckets {
            Some(b) => b.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        let too_many = || {
            param_error(ParamError::new(
                "group_by",
                format!(
                    "more than {MAX_GROUPS} groups (combinations of dimension values × {} buckets); filter, group by fewer dimensions or use a coarser bucket",
                    bucket_windows.len()
                ),
            ))
        };
        let limit = MAX_GROUPS / bucket_windows.len();
        let spans: Vec<Window> = bucket_windows
            .iter()
            .map(|bw| bw.as_ref().map_or(windows.current, |b| b.window))
            .collect();
        // Every group of every bucket in one pass over the window's facts,
        // found as they occur (except groups of the channel alone, which
        // read the hourly cells, a run each); `batched[c][b]`.
        let dims = &group_by.dimensions;
        let one_pass = dims.iter().any(|d| *d != Dimension::Channel);
        let (values, mut batched): (Vec<Vec<Option<String>>>, Option<Vec<Vec<Vec<KpiRow>>>>) = if one_pass {
            let all = fast::run_occurring(&rollup, &spans, filters, dims, limit, source.now_us).ok_or_else(too_many)?;
            let (values, rows) = all.into_iter().unzip();
            (values, Some(rows))
        } else if dims.is_empty() {
            (vec![Vec::new()], None)
        } else {
            let values =
                fast::occurring_groups(&rollup, &windows.current, filters, dims, limit).ok_or_else(too_many)?;
            (values, None)
        };
        let combos: Vec<Vec<(Dimension, Option<String>)>> = values
            .iter()
            .map(|g| dims.iter().copied().zip(g.iter().cloned()).collect())
            .collect();
        let dimension_scoped = filtered || !dims.is_empty();
        let with_previous = whole && buckets.is_none();
        let mut batched_previous = if with_previous {
            fast::run_groups(&rollup, &windows.previous, filters, dims, &values, source.now_us)
        } else {
            None
        };
        for (c, combo) in combos.iter().enumerate() {
            let constraints = combo_constraints(filters, combo);
            for (b, bw) in bucket_windows.iter().enumerate() {
                let window = bw.as_ref().map_or(windows.current, |b| b.window);
                let r = Run {
                    window,
                    constraints: constraints.clone(),
                    dimension_scoped,
                };
                let current = match batched.as_mut() {
                    Some(all) => scoped(std::mem::take(&mut all[c][b])),
                    None => source.run(&r),
                };
                // Combinations of several dimensions that never occur together.
                if bw.is_none() && conversations_of(&current) == 0 {
                    continue;
                }
                let previous = if with_previous {
                    let p = Run {
                        window: windows.previous,
                        ..r
                    };
                    let rows = match batched_previous.as_mut() {
                        Some(all) => scoped(std::mem::take(&mut all[c])),
                        None => source.run(&p),
                    };
                    Some((windows.previous, rows))
                } else {
                    None
                };
                let mut key: Vec<(String, Option<String>)> =
                    combo.iter().map(|(d, v)| (d.name().to_string(), v.clone())).collect();
                if let (Some(b), Some(bw)) = (group_by.bucket, bw) {
                    key.push((b.name().to_string(), Some(bw.label.clone())));
                }
                groups.push(GroupResult {
                    key,
                    window,
                    current,
                    previous,
                });
            }
        }
    }
    Ok(KpiAnswer {
        current,
        previous,
        groups,
        dimension_scoped: filtered || !group_by.dimensions.is_empty(),
        as_of_seq: rollup.as_of_seq(),
    })
}
