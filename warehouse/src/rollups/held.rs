//! What a rollup holds besides facts and cells (orders, agents' online
//! intervals) and the lake as it last saw it.

use super::*;

/// An order placed, for repurchase and for refund look-ups.
#[derive(Debug, Clone)]
pub(super) struct OrderRec {
    pub(super) order_id: Arc<str>,
    pub(super) placed_us: i64,
    /// Interned in [`TenantRollup::customers`]; [`NONE`] without one.
    pub(super) customer: u32,
    pub(super) attributed: Option<Arc<str>>,
}

/// An online interval of an agent.
#[derive(Debug, Clone)]
pub(super) struct OnlineInterval {
    pub(super) agent: u32,
    pub(super) team: u32,
    pub(super) start_us: i64,
    pub(super) end_us: Option<i64>,
}

/// The lake as a rollup last saw it, for one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LakeMark {
    /// Data file path → its `event_date` partition (`YYYY-MM-DD`).
    pub(super) files: BTreeMap<String, String>,
    /// Identity of the buffered batches holding the tenant's rows.
    pub(super) buffer: Vec<(usize, usize)>,
    /// UTC days (since the epoch) of the tenant's buffered rows.
    pub(super) buffer_days: BTreeSet<i32>,
}

pub(super) fn lake_mark(view: &ReadView, tenant: &str) -> LakeMark {
    let mut mark = LakeMark::default();
    if let Some(table) = &view.table {
        if let Ok(snapshot) = table.snapshot() {
            for f in snapshot.log_data().iter() {
                let path = f.object_store_path();
                let mut tenant_ok = false;
                let mut date = None;
                for part in path.parts() {
                    let p = part.as_ref();
                    if let Some(t) = p.strip_prefix("tenant_id=") {
                        tenant_ok = t == tenant;
                    } else if let Some(d) = p.strip_prefix("event_date=") {
                        date = Some(d.to_string());
                    }
                }
                if let (true, Some(d)) = (tenant_ok, date) {
                    mark.files.insert(path.to_string(), d);
                }
            }
        }
    }
    for b in &view.buffered {
        let (Some(t), Some(d)) = (b.column_by_name("tenant_id"), b.column_by_name("event_date")) else {
            continue;
        };
        let (Some(t), Some(d)) = (
            t.as_string_opt::<i32>(),
            d.as_primitive_opt::<arrow::datatypes::Date32Type>(),
        ) else {
            continue;
        };
        let mut any = false;
        for r in 0..b.num_rows() {
            if t.is_valid(r) && t.value(r) == tenant {
                any = true;
                if d.is_valid(r) {
                    mark.buffer_days.insert(d.value(r));
                }
            }
        }
        if any {
            mark.buffer.push((t.values().as_ptr() as usize, b.num_rows()));
        }
    }
    mark
}

/// The tenants with rows in the lake or the buffer of `view`.
pub fn tenants(view: &ReadView) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(table) = &view.table {
        if let Ok(snapshot) = table.snapshot() {
            for f in snapshot.log_data().iter() {
                for part in f.object_store_path().parts() {
                    if let Some(t) = part.as_ref().strip_prefix("tenant_id=") {
                        out.insert(t.to_string());
                    }
                }
            }
        }
    }
    for b in &view.buffered {
        if let Some(t) = b.column_by_name("tenant_id").and_then(|t| t.as_string_opt::<i32>()) {
            out.extend(t.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// Days since the epoch of a `YYYY-MM-DD` partition value.
pub(super) fn partition_day(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days() as i32)
}
