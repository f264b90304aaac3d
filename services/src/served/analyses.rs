//! The analyses as `/v1/analyses/*` and the pages ask for them: a
//! request's parameters checked in the order `/v1/kpis` checks them
//! ([`request`]), the tenant's snapshot of the window with the filters
//! applied ([`prepare`]), and each analysis' tables from the queries of
//! [`crate::analyses`].

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use serde_json::{Map, Value, json};

use crate::analyses::{Table, add_comparisons, add_csat_intervals, analysis_sql, full_grid, pairs_table, run_sql};
use crate::context::Services;
use crate::error::ServiceError;
use crate::keys::{Principal, Role, require_role};
use crate::kpis::answer::param_error;
use crate::kpis::lake::{self, Constraint};
use crate::kpis::params::{self, Dimension, ParamError, Window, window_json};
use crate::settings::TenantSettings;
use crate::tenant::{TenantId, resolve_tenant};

/// Largest accepted `min_count`.
const MAX_MIN_COUNT: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    Scripts,
    Bottlenecks,
    Traffic,
    Channels,
}

impl Analysis {
    /// What its SQL reads besides `conversations` (see [`lake::snapshot`]).
    fn tables(self) -> &'static [&'static str] {
        match self {
            Analysis::Scripts => &["script_uses"],
            Analysis::Channels => &["events"],
            Analysis::Bottlenecks | Analysis::Traffic => &[],
        }
    }

    /// The default `min_count`, for the analyses that take one.
    fn default_min_count(self) -> Option<i64> {
        match self {
            Analysis::Scripts => Some(30),
            Analysis::Bottlenecks => Some(5),
            Analysis::Traffic | Analysis::Channels => None,
        }
    }

    /// The parameters it takes (`format` is the caller's: JSON or CSV).
    pub fn parameters(self) -> Vec<&'static str> {
        let mut accepted = vec!["from", "to", "tenant", "format"];
        if self.default_min_count().is_some() {
            accepted.push("min_count");
        }
        accepted.extend(Dimension::ALL.iter().map(|d| d.name()));
        accepted
    }
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub window: Window,
    pub min_count: Option<i64>,
    /// `window` and `filters` (and `min_count`) of the JSON answer.
    pub head: Map<String, Value>,
    pub tenant: TenantId,
    pub settings: TenantSettings,
    /// The dimension filters, the key's scope applied.
    pub filters: Vec<Constraint>,
}

/// A checked request with the session its SQL runs in.
pub struct Prepared {
    pub req: Request,
    ctx: SessionContext,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("req", &self.req).finish()
    }
}

fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    ServiceError::failed("analysis query failed", e)
}

fn parse_min_count(s: &str) -> Result<i64, ServiceError> {
    match s.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_MIN_COUNT).contains(&n) => Ok(n),
        _ => Err(param_error(ParamError::new(
            "min_count",
            format!("{s:?} is not a whole number from 1 to {MAX_MIN_COUNT}"),
        ))),
    }
}

/// Checks the parameters `q` (names already checked against
/// [`Analysis::parameters`]) in the order `/v1/kpis` does.
pub async fn request(
    analysis: Analysis,
    services: &Services,
    principal: &Principal,
    q: &BTreeMap<String, String>,
) -> Result<Request, ServiceError> {
    // DESIGN.md: operations owns tags and quick replies; these two are
    // aggregates over them (no conversation content, no customer ids).
    let operations_view =
        principal.role == Role::Operations && matches!(analysis, Analysis::Scripts | Analysis::Bottlenecks);
    if !operations_view {
        require_role(principal, &crate::kpis::READERS, "reading analyses")?;
    }
    let tenant = resolve_tenant(principal, q.get("tenant").map(String::as_str))?;
    let min_count = match (analysis.default_min_count(), q.get("min_count")) {
        (Some(_), Some(s)) => Some(parse_min_count(s)?),
        (default, _) => default,
    };
    let filters = Constraint::of_params(q).map_err(param_error)?;
    let filters = crate::scope::scoped_filters(principal, filters)?;
    let settings = services.load_settings(&tenant).await?;
    let window = params::windows(q, &settings).map_err(param_error)?.current;
    let mut window_head = window_json(&window);
    window_head["time_zone"] = json!(settings.time_zone);
    window_head["tenant"] = json!(tenant.as_str());
    let filters_json: Map<String, Value> = filters
        .iter()
        .map(|c| (c.dimension.name().to_string(), json!(c.values)))
        .collect();
    let mut head = Map::new();
    head.insert("window".into(), window_head);
    head.insert("filters".into(), Value::Object(filters_json));
    if let Some(n) = min_count {
        head.insert("min_count".into(), json!(n));
    }
    Ok(Request {
        window,
        min_count,
        head,
        tenant,
        settings,
        filters,
    })
}

/// [`request`], and the tenant's snapshot of its window.
pub async fn prepare(
    analysis: Analysis,
    services: &Services,
    principal: &Principal,
    q: &BTreeMap<String, String>,
) -> Result<Prepared, ServiceError> {
    let mut req = request(analysis, services, principal, q).await?;
    let (ctx, as_of) = session(analysis, services, &req).await?;
    // What the answer counts: every batch acknowledged up to this `seq`,
    // as `/v1/kpis` says it.
    if let Some(seq) = as_of {
        req.head.insert("data_as_of".into(), json!({ "seq": seq }));
    }
    Ok(Prepared { req, ctx })
}

/// The tenant's snapshot of the request's window, the filters applied.
async fn session(
    analysis: Analysis,
    services: &Services,
    req: &Request,
) -> Result<(SessionContext, Option<u64>), ServiceError> {
    let (tenant, settings, window) = (&req.tenant, &req.settings, &req.window);
    // Conversations come materialized; what else the analysis reads is
    // computed from the events since the window's start (the conversations
    // it counts started there, so all their events are in).
    let range = warehouse::rollups::EventRange {
        since_us: Some(window.from.timestamp_micros()),
        ..Default::default()
    };
    // Only `events` and the materialized tables: the analyses read no other
    // view, and planning them all would take longer than the query.
    let tctx = lake::tenant_events_session(&services.warehouse, tenant, range, None)
        .await
        .map_err(internal)?;
    let pinned = crate::kpis::fast::use_materialized(
        &tctx,
        &services.warehouse,
        tenant,
        settings,
        crate::kpis::fast::Rows::Pinned,
    )
    .await
    .map_err(internal)?;
    let as_of = pinned;
    let pinned = pinned.is_some();
    if !pinned {
        lake::register_tenant_views(&tctx, tenant, settings)
            .await
            .map_err(internal)?;
    }
    let ctx = lake::snapshot(&tctx, tenant, settings, window, analysis.tables(), pinned)
        .await
        .map_err(internal)?;
    lake::restrict_conversations(&ctx, &req.filters)
        .await
        .map_err(internal)?;
    Ok((ctx, as_of))
}

impl Prepared {
    /// Runs one analysis query over the snapshot.
    async fn run(&self, sql: &str, with_min_count: bool) -> Result<Table, ServiceError> {
        let min_count = with_min_count.then_some(self.req.min_count).flatten();
        run_sql(&self.ctx, sql, &self.req.window, min_count).await
    }

    /// The groups of `scripts.sql`, with their CSAT intervals.
    pub async fn scripts(&self) -> Result<Table, ServiceError> {
        let mut groups = self.run(analysis_sql("scripts")?, true).await?;
        add_csat_intervals(&mut groups);
        Ok(groups)
    }

    /// The tags of `bottlenecks_tags.sql`.
    pub async fn bottleneck_tags(&self) -> Result<Table, ServiceError> {
        self.run(analysis_sql("bottlenecks_tags")?, false).await
    }

    /// Every cell of the traffic heatmap's grid.
    pub async fn traffic(&self) -> Result<Table, ServiceError> {
        Ok(full_grid(&self.run(analysis_sql("traffic")?, false).await?))
    }

    /// Each channel against the rest, with the tests of the difference.
    pub async fn channels(&self) -> Result<Table, ServiceError> {
        let mut rows = self.run(analysis_sql("channels")?, false).await?;
        add_comparisons(&mut rows);
        Ok(rows)
    }
}

/// The rows of `bottlenecks_pairs.sql` for `req`, counted in one pass over
/// the KPI rollup's facts (what the SQL would read from the snapshot;
/// `services/src/kpis/fast/tests.rs` compares both).
pub async fn pairs(services: &Services, req: &Request) -> Result<Table, ServiceError> {
    let rollup = crate::kpis::fast::serving_rollup(&services.warehouse, &req.tenant, &req.settings)
        .await
        .map_err(internal)?;
    let counts = crate::kpis::fast::tag_counts(&rollup, &req.window, &req.filters);
    Ok(pairs_table(&counts, req.min_count.unwrap_or(1)))
}
