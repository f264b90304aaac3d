//! Arrival forecasts and staffing plans for the routing core, as
//! `/v1/forecast/*` answers them (the `api` crate's `forecast_routes` only
//! routes and frames) and the staffing page shows them ([`StaffingView`]).
//!
//! * `GET /v1/forecast/arrivals` — arrivals per interval of one queue, from
//!   the lake's history in the tenant's time zone, with quantiles, the method
//!   chosen by backtest and every method's backtest scores.
//! * `GET /v1/forecast/staffing` — the same forecast plus the agents each
//!   interval needs (Erlang C, or Erlang A with a patience), with handle
//!   time, human share and patience measured in the lake unless given.
//! * `POST /v1/forecast` — the same from a history the caller sends (what-if
//!   plans, history kept elsewhere); optionally with a staffing template.
//!
//! The models are `staffing::forecast` (pure); this module supplies the time
//! grid ([`crate::forecasts::slots`]: UTC interval starts → local weekday and slot, so DST days
//! have 46 or 50 half-hours) and the history (`lake`: SQL over the
//! `conversations` view, tenant-filtered, values as parameters; [`cache`]: one
//! such query per tenant, window and data version answers every queue).
//!
//! # Parameters (GET)
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `tenant` | the key's tenant | required with a platform-wide key |
//! | `queue` | `*` (every conversation) | `channel:whatsapp,language:en,team:billing` (any of `channel language team queue channel_account region customer_tier`), or a bare name for the `queue` column |
//! | `tz` | the tenant's `time_zone` setting (`UTC` without one) | IANA zone (or `+08:00`); slots and days are local |
//! | `interval` | `30` | minutes, 15 or 30 |
//! | `from` | start of tomorrow (local) | RFC 3339, or `YYYY-MM-DD` = start of that local day; on the interval grid |
//! | `to` | end of `from`'s local day | as `from`; at most 14 local days after `from` |
//! | `history_days` | 56 | days of history before `from` (7–366), clipped to where the tenant has data |
//! | `special_days` | — | `2026-12-24:0.5,2026-12-25:exclude`: in history a factor means "traffic was f × normal", `exclude` drops the day; in the horizon a factor is the expected multiplier |
//!
//! Staffing adds `service_level` (0.8), `target_s` (120), `concurrency`
//! (1), `shrinkage` (0), `max_occupancy`, `aht_s` (measured), `patience_s`
//! (measured; a number, or `none` for Erlang C), `human_share` (measured:
//! only conversations that need a human are staffed) and `staff_for`
//! (`mean`, `p50` or `p90`; default `mean`). What the lake measures is
//! defined in `services/src/forecasts/lake.rs`.
//!
//! **Asynchronous queues** (email, messaging with long response windows)
//! are staffed by workload and backlog against a response deadline, not by
//! Erlang (`staffing::erlang::backlog_staffing`): a queue is asynchronous
//! when the request gives `response_deadline_s`, or when its key has
//! `channel:email` (deadline 86400 s unless given). Then `backlog` (items
//! waiting at `from`, default 0), `aht_s`, `human_share`, `shrinkage`,
//! `max_occupancy` (default 1) and `staff_for` apply, and the live-queue
//! parameters `service_level`, `target_s`, `patience_s` and `concurrency`
//! are refused.
//!
//! History ends where the tenant's data ends (the interval holding its
//! latest conversation is left out: it may still be filling) or at `from`.
//! When it ends before `from`, the forecast runs through the gap, so trend
//! and positions stay right; a gap of more than 14 days is not bridged and
//! the `note` says so.

use serde::Deserialize;
use serde_json::{Value, json};
use staffing::erlang::{BacklogRequest, StaffingRequest, StaffingResult, backlog_staffing, staff};
use staffing::forecast::{self as fc, ForecastConfig, HorizonSlot, Point, Series, Special};

use crate::context::Services;
use crate::error::ServiceError;
use crate::forecasts::lake::{self, QueueKey};
use crate::forecasts::slots::{self, IntervalLength, Slot, SpecialDay, SpecialKind, Zone};
use crate::keys::{Principal, Role, TenantScope, require_role};

pub mod cache;

/// Roles that may read forecasts (DESIGN.md: `service` for the routing
/// core, managers through `supervisor` and `admin`).
const READERS: [Role; 3] = [Role::Service, Role::Admin, Role::Supervisor];
const DEFAULT_HISTORY_DAYS: i64 = 56;
const MAX_HISTORY_DAYS: i64 = 366;
const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn invalid(param: &'static str, detail: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid_parameter(param, detail)
}

pub fn require_reader(p: &Principal) -> Result<(), ServiceError> {
    require_role(p, &READERS, "reading forecasts")
}

/// The tenant a request is about: the key's own, or with a platform-wide
/// key the required `tenant` parameter.
fn resolve_tenant(p: &Principal, tenant: Option<&str>) -> Result<String, ServiceError> {
    if let Some(t) = tenant
        && !model::TenantId::is_valid(t)
    {
        return Err(invalid("tenant", format!("{t:?} must match [a-z0-9_-]{{1,64}}")));
    }
    match (&p.tenant, tenant) {
        (TenantScope::All, Some(t)) => Ok(t.to_string()),
        (TenantScope::All, None) => Err(invalid(
            "tenant",
            "this key is platform-wide: say which tenant, e.g. tenant=acme",
        )),
        (TenantScope::One(own), None) => Ok(own.clone()),
        (TenantScope::One(own), Some(t)) if own == t => Ok(own.clone()),
        (TenantScope::One(own), Some(t)) => Err(ServiceError::forbidden(format!(
            "this key is for tenant {own}; it cannot read forecasts of tenant {t}"
        ))),
    }
}

/// Query string of both GET endpoints; staffing-only fields are refused by
/// the arrivals endpoint. Numbers arrive as text so that errors can name the
/// parameter and say what to change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastQuery {
    pub tenant: Option<String>,
    pub queue: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub interval: Option<String>,
    pub tz: Option<String>,
    pub history_days: Option<String>,
    pub special_days: Option<String>,
    pub service_level: Option<String>,
    pub target_s: Option<String>,
    pub concurrency: Option<String>,
    pub shrinkage: Option<String>,
    pub max_occupancy: Option<String>,
    pub aht_s: Option<String>,
    pub patience_s: Option<String>,
    pub human_share: Option<String>,
    pub staff_for: Option<String>,
    pub response_deadline_s: Option<String>,
    pub backlog: Option<String>,
}

impl ForecastQuery {
    /// The parameters only staffing takes, and whether each was given.
    pub fn staffing_fields(&self) -> [(&'static str, bool); 11] {
        [
            ("service_level", self.service_level.is_some()),
            ("target_s", self.target_s.is_some()),
            ("concurrency", self.concurrency.is_some()),
            ("shrinkage", self.shrinkage.is_some()),
            ("max_occupancy", self.max_occupancy.is_some()),
            ("aht_s", self.aht_s.is_some()),
            ("patience_s", self.patience_s.is_some()),
            ("human_share", self.human_share.is_some()),
            ("staff_for", self.staff_for.is_some()),
            ("response_deadline_s", self.response_deadline_s.is_some()),
            ("backlog", self.backlog.is_some()),
        ]
    }
}

fn number(param: &'static str, text: Option<&str>) -> Result<Option<f64>, ServiceError> {
    let Some(t) = text else { return Ok(None) };
    let v: f64 = t
        .trim()
        .parse()
        .map_err(|_| invalid(param, format!("{t:?} is not a number")))?;
    if !v.is_finite() {
        return Err(invalid(param, format!("{t:?} is not a finite number")));
    }
    Ok(Some(v))
}

/// A validated forecast horizon.
#[derive(Debug, Clone)]
struct Horizon {
    zone: Zone,
    interval: IntervalLength,
    from_us: i64,
    to_us: i64,
    special: Vec<SpecialDay>,
}

fn parse_interval(text: Option<&str>) -> Result<IntervalLength, ServiceError> {
    let minutes = match text {
        None => 30,
        Some(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid("interval", format!("{t:?} is not a whole number of minutes (15 or 30)")))?,
    };
    IntervalLength::from_minutes(minutes).map_err(|e| invalid("interval", e))
}

fn parse_horizon(
    tz: Option<&str>,
    interval: IntervalLength,
    from: Option<&str>,
    to: Option<&str>,
    special: Vec<SpecialDay>,
) -> Result<Horizon, ServiceError> {
    let zone = Zone::parse(tz.unwrap_or("UTC")).map_err(|e| invalid("tz", e))?;
    let from_us = match from {
        Some(t) => slots::parse_instant(&zone, t).map_err(|e| invalid("from", e))?,
        None => {
            let tomorrow = slots::slot_at(&zone, interval, chrono::Utc::now().timestamp_micros())
                .map(|s| s.local_date + chrono::Days::new(1))
                .ok_or_else(|| ServiceError::internal("the clock is out of range"))?;
            zone.start_of_day(tomorrow)
                .ok_or_else(|| ServiceError::internal("no start of tomorrow"))?
        }
    };
    let to_us = match to {
        Some(t) => slots::parse_instant(&zone, t).map_err(|e| invalid("to", e))?,
        None => slots::slot_at(&zone, interval, from_us)
            .and_then(|s| zone.start_of_day(s.local_date + chrono::Days::new(1)))
            .ok_or_else(|| invalid("from", "out of range"))?,
    };
    slots::check_horizon(&zone, interval, from_us, to_us).map_err(|(p, d)| invalid(p, d))?;
    Ok(Horizon {
        zone,
        interval,
        from_us,
        to_us,
        special,
    })
}

/// A forecast over the requested horizon, with the slots it covers.
#[derive(Debug)]
struct Forecasted {
    forecast: fc::Forecast,
    slots: Vec<Slot>,
}

/// Runs `staffing::forecast` on `counts` (consecutive intervals from
/// `history_start_us`) for the horizon, bridging any gap between the end
/// of history and `from`.
fn forecast_counts(
    h: &Horizon,
    history_start_us: i64,
    counts: &[f64],
    aggregate: Option<&[f64]>,
) -> Result<Forecasted, ServiceError> {
    let step = h.interval.micros();
    let history_end_us = history_start_us + counts.len() as i64 * step;
    let history_slots = slots::grid(&h.zone, h.interval, history_start_us, history_end_us);
    let points: Vec<Point> = history_slots
        .iter()
        .zip(counts)
        .map(|(s, c)| Point {
            weekday: s.weekday,
            slot: s.slot,
            count: *c,
            special: match slots::special_on(&h.special, s.local_date) {
                None => Special::Normal,
                Some(SpecialKind::Exclude) => Special::Exclude,
                Some(SpecialKind::Factor(f)) => Special::Factor(f),
            },
        })
        .collect();
    let horizon_slots = slots::grid(&h.zone, h.interval, h.from_us, h.to_us);
    for s in &horizon_slots {
        if slots::special_on(&h.special, s.local_date) == Some(SpecialKind::Exclude) {
            return Err(invalid(
                "special_days",
                format!(
                    "{} is in the horizon: exclude only drops history; give the expected factor instead, e.g. {}:0.3",
                    s.local_date, s.local_date
                ),
            ));
        }
    }
    let gap_us = h.from_us - history_end_us;
    let bridged = !counts.is_empty() && gap_us > 0 && gap_us <= slots::MAX_HORIZON_DAYS * MICROS_PER_DAY;
    let gap_slots = if bridged {
        slots::grid(&h.zone, h.interval, history_end_us, h.from_us)
    } else {
        Vec::new()
    };
    let multiplier = |s: &Slot| match slots::special_on(&h.special, s.local_date) {
        Some(SpecialKind::Factor(f)) => f,
        _ => 1.0,
    };
    let horizon: Vec<HorizonSlot> = gap_slots
        .iter()
        .chain(&horizon_slots)
        .map(|s| HorizonSlot {
            weekday: s.weekday,
            slot: s.slot,
            multiplier: multiplier(s),
        })
        .collect();
    let aggregate = aggregate.map(|totals| Series {
        interval_s: h.interval.seconds(),
        points: points
            .iter()
            .zip(totals)
            .map(|(p, t)| Point {
                count: t.max(p.count),
                ..*p
            })
            .collect(),
    });
    let series = Series {
        interval_s: h.interval.seconds(),
        points,
    };
    let mut forecast = fc::forecast_with_aggregate(&series, aggregate.as_ref(), &horizon, &ForecastConfig::default())
        .map_err(|e| invalid(e.param(), e.to_string()))?;
    forecast.points.drain(..gap_slots.len());
    if !counts.is_empty() && gap_us > 0 && !bridged {
        forecast.note.push_str(&format!(
            "; history ends {:.1} days before `from`: the forecast follows on from the end of history without trend over the gap",
            gap_us as f64 / MICROS_PER_DAY as f64
        ));
    }
    Ok(Forecasted {
        forecast,
        slots: horizon_slots,
    })
}

fn interval_json(h: &Horizon, s: &Slot, p: &fc::ForecastPoint) -> serde_json::Map<String, Value> {
    let mut o = serde_json::Map::new();
    o.insert("start".into(), json!(h.zone.rfc3339(s.start_us)));
    o.insert("mean".into(), json!(p.mean));
    o.insert("p10".into(), json!(p.p10));
    o.insert("p50".into(), json!(p.p50));
    o.insert("p90".into(), json!(p.p90));
    o
}

/// The response body shared by every forecast endpoint.
fn forecast_body(h: &Horizon, f: &Forecasted, history: Value, intervals: Vec<Value>) -> Result<Value, ServiceError> {
    Ok(json!({
        "tz": h.zone.name,
        "interval_minutes": h.interval.minutes(),
        "from": h.zone.rfc3339(h.from_us),
        "to": h.zone.rfc3339(h.to_us),
        "method": to_json(&f.forecast.method)?,
        "selected_by": to_json(&f.forecast.selected_by)?,
        "note": f.forecast.note,
        "dispersion": f.forecast.dispersion,
        "backtest": to_json(&f.forecast.backtest)?,
        "noise_floor_wape": f.forecast.noise_floor_wape,
        "history": history,
        "intervals": intervals,
    }))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(v).map_err(|e| ServiceError::internal(e.to_string()))
}

/// Forecast of one queue from the lake.
#[derive(Debug)]
struct LakeForecast {
    tenant: String,
    key: QueueKey,
    horizon: Horizon,
    forecasted: Forecasted,
    history_from_us: i64,
    history_to_us: i64,
    conversations: f64,
    measured: lake::Measured,
    /// Every batch acknowledged with this `seq` or before is counted.
    as_of_seq: Option<u64>,
}

async fn lake_forecast(
    state: &Services,
    principal: &Principal,
    q: &ForecastQuery,
) -> Result<LakeForecast, ServiceError> {
    require_reader(principal)?;
    let tenant = resolve_tenant(principal, q.tenant.as_deref())?;
    let key = QueueKey::parse(q.queue.as_deref().unwrap_or("")).map_err(|e| invalid("queue", e))?;
    // A supervisor forecasts its team's queues only.
    let key = crate::scope::scoped_queue(principal, key)?;
    let interval = parse_interval(q.interval.as_deref())?;
    let special = match &q.special_days {
        Some(t) => slots::parse_special_days(t).map_err(|e| invalid("special_days", e))?,
        None => Vec::new(),
    };
    // Slots and days are local to the tenant's reporting time zone unless
    // the request names one.
    let tz = match &q.tz {
        Some(tz) => tz.clone(),
        None => {
            let id = crate::tenant::TenantId::parse(&tenant)
                .ok_or_else(|| invalid("tenant", format!("{tenant:?} is not a tenant id")))?;
            state.load_settings(&id).await?.time_zone
        }
    };
    let horizon = parse_horizon(Some(&tz), interval, q.from.as_deref(), q.to.as_deref(), special)?;
    let history_days = match number("history_days", q.history_days.as_deref())? {
        None => DEFAULT_HISTORY_DAYS,
        Some(d) if d.fract() == 0.0 && (7.0..=MAX_HISTORY_DAYS as f64).contains(&d) => d as i64,
        Some(d) => {
            return Err(invalid(
                "history_days",
                format!("must be a whole number of days from 7 to {MAX_HISTORY_DAYS}, got {d}"),
            ));
        }
    };
    let step = interval.micros();
    let window_from = horizon.from_us - history_days * MICROS_PER_DAY;
    let (history, as_of_seq) = cache::history(state, &tenant, &key, window_from, horizon.from_us, step).await?;
    // Clip to where the tenant has data; leave out the interval holding its
    // latest conversation unless it is the last one before `from`.
    let n = history.tenant_counts.len();
    let first = history.tenant_counts.iter().position(|c| *c > 0.0);
    let last = history.tenant_counts.iter().rposition(|c| *c > 0.0);
    let (start, end) = match (first, last) {
        (Some(f), Some(l)) => (f, if l + 1 == n { n } else { l.max(f) }),
        _ => (n, n),
    };
    let counts = &history.counts[start..end];
    let history_from_us = window_from + start as i64 * step;
    // A queue narrower than the whole tenant may be forecast as its share
    // of the tenant's total (method `aggregate_split`) when that backtests
    // better.
    let aggregate = (!key.parts.is_empty()).then(|| &history.tenant_counts[start..end]);
    let forecasted = forecast_counts(&horizon, history_from_us, counts, aggregate)?;
    Ok(LakeForecast {
        tenant,
        key,
        horizon,
        forecasted,
        history_from_us,
        history_to_us: window_from + end as i64 * step,
        conversations: counts.iter().sum(),
        measured: history.measured_over(start..end),
        as_of_seq,
    })
}

fn lake_body(f: &LakeForecast, intervals: Vec<Value>) -> Result<Value, ServiceError> {
    let z = &f.horizon.zone;
    let history = json!({
        "from": z.rfc3339(f.history_from_us),
        "to": z.rfc3339(f.history_to_us),
        "intervals": (f.history_to_us - f.history_from_us) / f.horizon.interval.micros(),
        "conversations": f.conversations,
    });
    let mut body = forecast_body(&f.horizon, &f.forecasted, history, intervals)?;
    body["tenant"] = json!(f.tenant);
    body["queue"] = json!(f.key.canonical());
    body["queue_key"] = f.key.to_json();
    if let Some(seq) = f.as_of_seq {
        body["data_as_of"] = json!({ "seq": seq });
    }
    Ok(body)
}

/// `GET /v1/forecast/arrivals`: the forecast of one queue from the lake.
pub async fn arrivals(state: &Services, principal: &Principal, q: &ForecastQuery) -> Result<Value, ServiceError> {
    require_reader(principal)?;
    if let Some((name, _)) = q.staffing_fields().into_iter().find(|(_, given)| *given) {
        return Err(invalid(
            name,
            "is a parameter of /v1/forecast/staffing, not of /v1/forecast/arrivals",
        ));
    }
    let f = lake_forecast(state, principal, q).await?;
    let intervals = f
        .forecasted
        .slots
        .iter()
        .zip(&f.forecasted.forecast.points)
        .map(|(s, p)| Value::Object(interval_json(&f.horizon, s, p)))
        .collect();
    lake_body(&f, intervals)
}

/// Which forecast figure is staffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaffFor {
    Mean,
    P50,
    P90,
}

impl StaffFor {
    fn parse(text: Option<&str>) -> Result<Self, ServiceError> {
        match text.unwrap_or("mean") {
            "mean" => Ok(Self::Mean),
            "p50" => Ok(Self::P50),
            "p90" => Ok(Self::P90),
            other => Err(invalid("staff_for", format!("{other:?} must be mean, p50 or p90"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::P50 => "p50",
            Self::P90 => "p90",
        }
    }

    fn pick(self, p: &fc::ForecastPoint) -> f64 {
        match self {
            Self::Mean => p.mean,
            Self::P50 => p.p50,
            Self::P90 => p.p90,
        }
    }
}

/// How a queue is staffed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum QueueMode {
    /// Live (chat, voice): Erlang C / A per interval.
    Live,
    /// Asynchronous (email): workload and backlog against a deadline.
    Async {
        response_deadline_s: f64,
        backlog_at_start: f64,
    },
}

/// Deadline of an asynchronous queue when the request names none.
const DEFAULT_RESPONSE_DEADLINE_S: f64 = 86_400.0;

/// Everything a staffing plan needs besides the forecast.
#[derive(Debug, Clone)]
struct StaffingPlan {
    template: StaffingRequest,
    human_share: f64,
    staff_for: StaffFor,
    mode: QueueMode,
    assumptions: Value,
}

impl StaffingPlan {
    /// Validates the template once (so a zero handle time is a 400 even on a
    /// horizon without arrivals).
    fn checked(self) -> Result<Self, ServiceError> {
        match self.mode {
            QueueMode::Live => {
                staff(&self.template).map_err(|e| invalid(e.param(), e.to_string()))?;
            }
            QueueMode::Async { .. } => {
                self.backlog_request(Vec::new())?;
            }
        }
        if !(self.human_share > 0.0 && self.human_share <= 1.0) {
            return Err(invalid(
                "human_share",
                format!("must be in (0, 1], got {}", self.human_share),
            ));
        }
        Ok(self)
    }

    /// The backlog-staffing request of an asynchronous queue.
    fn backlog_request(&self, arrivals: Vec<f64>) -> Result<BacklogRequest, ServiceError> {
        let QueueMode::Async {
            response_deadline_s,
            backlog_at_start,
        } = self.mode
        else {
            return Err(ServiceError::internal("backlog staffing of a live queue"));
        };
        let req = BacklogRequest {
            arrivals,
            interval_s: self.template.interval_s,
            aht_s: self.template.aht_s,
            response_deadline_s,
            backlog_at_start,
            max_occupancy: self.template.max_occupancy.unwrap_or(1.0),
            shrinkage: self.template.shrinkage,
        };
        backlog_staffing(&req).map_err(|e| {
            let param = match e.param() {
                "backlog_at_start" => "backlog",
                other => other,
            };
            invalid(param, e.to_string())
        })?;
        Ok(req)
    }

    /// The intervals of an asynchronous queue: agents to clear each
    /// interval's due work, the items handled and the backlog left.
    fn async_intervals(&self, h: &Horizon, f: &Forecasted) -> Result<Vec<Value>, ServiceError> {
        let arrivals: Vec<f64> = f
            .forecast
            .points
            .iter()
            .map(|p| self.staff_for.pick(p) * self.human_share)
            .collect();
        let req = self.backlog_request(arrivals.clone())?;
        let plan = backlog_staffing(&req).map_err(|e| invalid(e.param(), e.to_string()))?;
        let mut out = Vec::with_capacity(plan.len());
        for ((s, p), (a, b)) in f.slots.iter().zip(&f.forecast.points).zip(arrivals.iter().zip(&plan)) {
            let mut o = interval_json(h, s, p);
            o.insert("staffed_arrivals".into(), json!(a));
            o.insert("agents".into(), json!(b.agents));
            o.insert("productive_agents".into(), json!(b.productive_agents));
            o.insert("model".into(), json!("backlog"));
            o.insert("handled".into(), json!(b.handled));
            o.insert("backlog_end".into(), json!(b.backlog_end));
            let capacity = f64::from(b.productive_agents) * req.interval_s;
            o.insert(
                "occupancy".into(),
                json!(if capacity > 0.0 {
                    b.handled * req.aht_s / capacity
                } else {
                    0.0
                }),
            );
            out.push(Value::Object(o));
        }
        Ok(out)
    }

    /// The intervals with their staffing fields.
    fn intervals(&self, h: &Horizon, f: &Forecasted) -> Result<Vec<Value>, ServiceError> {
        if matches!(self.mode, QueueMode::Async { .. }) {
            return self.async_intervals(h, f);
        }
        let mut out = Vec::with_capacity(f.slots.len());
        let mut last: Option<(f64, StaffingResult)> = None;
        for (s, p) in f.slots.iter().zip(&f.forecast.points) {
            let arrivals = self.staff_for.pick(p) * self.human_share;
            let result = match &last {
                Some((a, r)) if *a == arrivals => r.clone(),
                _ => {
                    let req = StaffingRequest {
                        arrivals,
                        ..self.template.clone()
                    };
                    let r = staff(&req)
                        .map_err(|e| invalid(e.param(), format!("interval {}: {e}", h.zone.rfc3339(s.start_us))))?;
                    last = Some((arrivals, r.clone()));
                    r
                }
            };
            let mut o = interval_json(h, s, p);
            o.insert("staffed_arrivals".into(), json!(arrivals));
            if let Value::Object(r) =
                serde_json::to_value(&result).map_err(|e| ServiceError::internal(e.to_string()))?
            {
                o.extend(r);
            }
            out.push(Value::Object(o));
        }
        Ok(out)
    }
}

/// `GET /v1/forecast/staffing`: the forecast of one queue from the lake
/// and the agents each interval needs.
pub async fn staffing(state: &Services, principal: &Principal, q: &ForecastQuery) -> Result<Value, ServiceError> {
    require_reader(principal)?;
    // Cheap checks before the lake is read.
    let key = QueueKey::parse(q.queue.as_deref().unwrap_or("")).map_err(|e| invalid("queue", e))?;
    let deadline_given = number("response_deadline_s", q.response_deadline_s.as_deref())?;
    let is_email = key
        .parts
        .iter()
        .any(|(d, v)| *d == lake::Dimension::Channel && v == "email");
    let mode = if deadline_given.is_some() || is_email {
        for (name, given) in [
            ("service_level", q.service_level.is_some()),
            ("target_s", q.target_s.is_some()),
            ("patience_s", q.patience_s.is_some()),
            ("concurrency", q.concurrency.is_some()),
        ] {
            if given {
                return Err(invalid(
                    name,
                    format!(
                        "queue {} is staffed as asynchronous (by workload and backlog against response_deadline_s); {name} applies to live queues only",
                        key.canonical()
                    ),
                ));
            }
        }
        QueueMode::Async {
            response_deadline_s: deadline_given.unwrap_or(DEFAULT_RESPONSE_DEADLINE_S),
            backlog_at_start: number("backlog", q.backlog.as_deref())?.unwrap_or(0.0),
        }
    } else {
        if q.backlog.is_some() {
            return Err(invalid(
                "backlog",
                "applies to asynchronous queues only: give response_deadline_s (or a channel:email queue)",
            ));
        }
        QueueMode::Live
    };
    let concurrency = match q.concurrency.as_deref() {
        None => 1,
        Some(t) => t.trim().parse::<u32>().map_err(|_| {
            invalid(
                "concurrency",
                format!("{t:?} must be a whole number of conversations, 1 or more"),
            )
        })?,
    };
    let aht_given = number("aht_s", q.aht_s.as_deref())?;
    let patience_given = match q.patience_s.as_deref() {
        Some("none") => Some(None),
        other => number("patience_s", other)?.map(Some),
    };
    let human_share_given = number("human_share", q.human_share.as_deref())?;
    let staff_for = StaffFor::parse(q.staff_for.as_deref())?;
    let service_level = number("service_level", q.service_level.as_deref())?.unwrap_or(0.8);
    let target_s = number("target_s", q.target_s.as_deref())?.unwrap_or(120.0);
    let shrinkage = number("shrinkage", q.shrinkage.as_deref())?.unwrap_or(0.0);
    let max_occupancy = number("max_occupancy", q.max_occupancy.as_deref())?;
    let interval = parse_interval(q.interval.as_deref())?;
    // Validate the caller's figures before reading the lake; the measured
    // ones are filled in after.
    let probe = StaffingRequest {
        arrivals: 0.0,
        interval_s: f64::from(interval.seconds()),
        aht_s: aht_given.unwrap_or(1.0),
        target_s,
        service_level,
        patience_s: patience_given.flatten(),
        shrinkage,
        max_occupancy,
        concurrency,
    };
    let probe_plan = StaffingPlan {
        template: probe.clone(),
        human_share: human_share_given.unwrap_or(1.0),
        staff_for,
        mode,
        assumptions: Value::Null,
    };
    probe_plan.checked()?;

    let f = lake_forecast(state, principal, q).await?;
    let m = &f.measured;
    let (aht_s, aht_source) = match (aht_given, m.aht_s()) {
        (Some(a), _) => (a, "request"),
        (None, Some(a)) => (a, "lake"),
        (None, None) => {
            return Err(invalid(
                "aht_s",
                format!(
                    "the lake has no human-handled conversation resolved once in the history of queue {} to measure a handle time from; pass aht_s",
                    f.key.canonical()
                ),
            ));
        }
    };
    let (patience_s, patience_source) = match (patience_given, m.patience_s()) {
        (Some(p), _) => (p, "request"),
        (None, Some(p)) => (Some(p), "lake"),
        (None, None) => (None, "not measurable (too few abandons): Erlang C"),
    };
    let (human_share, human_share_source) = match (human_share_given, m.human_share()) {
        (Some(s), _) => (s, "request"),
        (None, Some(s)) if s > 0.0 => (s, "lake"),
        _ => (1.0, "default: no conversation needing a human in the history"),
    };
    let template = StaffingRequest {
        aht_s,
        patience_s,
        ..probe
    };
    let assumptions = match mode {
        QueueMode::Live => json!({
            "mode": "live",
            "interval_s": template.interval_s,
            "aht_s": aht_s,
            "aht_source": aht_source,
            "aht_sample": m.hold_n,
            "patience_s": patience_s,
            "patience_source": patience_source,
            "abandons": m.abandons,
            "human_share": human_share,
            "human_share_source": human_share_source,
            "service_level": service_level,
            "target_s": target_s,
            "concurrency": concurrency,
            "shrinkage": shrinkage,
            "max_occupancy": max_occupancy,
            "staff_for": staff_for.name(),
        }),
        QueueMode::Async {
            response_deadline_s,
            backlog_at_start,
        } => json!({
            "mode": "async",
            "mode_source": if deadline_given.is_some() { "request: response_deadline_s" } else { "queue channel:email" },
            "interval_s": template.interval_s,
            "aht_s": aht_s,
            "aht_source": aht_source,
            "aht_sample": m.hold_n,
            "human_share": human_share,
            "human_share_source": human_share_source,
            "response_deadline_s": response_deadline_s,
            "backlog": backlog_at_start,
            "shrinkage": shrinkage,
            "max_occupancy": max_occupancy.unwrap_or(1.0),
            "staff_for": staff_for.name(),
        }),
    };
    let plan = StaffingPlan {
        assumptions,
        template,
        human_share,
        staff_for,
        mode,
    }
    .checked()?;
    let intervals = plan.intervals(&f.horizon, &f.forecasted)?;
    let mut body = lake_body(&f, intervals)?;
    body["assumptions"] = plan.assumptions;
    Ok(body)
}

/// Body of `POST /v1/forecast`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhatIfRequest {
    interval_minutes: i64,
    #[serde(default)]
    pub tz: Option<String>,
    history: Vec<HistoryCount>,
    horizon: HorizonBounds,
    #[serde(default)]
    special_days: Vec<SpecialDayJson>,
    #[serde(default)]
    staffing: Option<StaffingTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryCount {
    start: String,
    count: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HorizonBounds {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialDayJson {
    date: chrono::NaiveDate,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    exclude: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffingTemplate {
    aht_s: f64,
    #[serde(default = "default_service_level")]
    service_level: f64,
    #[serde(default = "default_target_s")]
    target_s: f64,
    #[serde(default)]
    patience_s: Option<f64>,
    #[serde(default)]
    shrinkage: f64,
    #[serde(default)]
    max_occupancy: Option<f64>,
    #[serde(default = "one")]
    concurrency: u32,
    #[serde(default)]
    pub staff_for: Option<String>,
    /// Given: the queue is asynchronous (workload and backlog staffing).
    #[serde(default)]
    response_deadline_s: Option<f64>,
    /// Items waiting at `from` (asynchronous queues).
    #[serde(default)]
    backlog: Option<f64>,
}

fn default_service_level() -> f64 {
    0.8
}

fn default_target_s() -> f64 {
    120.0
}

fn one() -> u32 {
    1
}

/// Longest caller-supplied history: a year of quarter hours.
const MAX_HISTORY_POINTS: usize = 366 * 96;

/// `POST /v1/forecast`: the forecast (and optionally the staffing) of a
/// history the caller sends.
pub async fn what_if(state: &Services, principal: &Principal, body: &[u8]) -> Result<Value, ServiceError> {
    require_reader(principal)?;
    let example = r#"{"interval_minutes": 30, "tz": "Europe/Berlin", "history": [{"start": "2026-03-02T00:00:00+01:00", "count": 3}], "horizon": {"from": "2026-03-29", "to": "2026-03-30"}, "special_days": [{"date": "2026-03-10", "exclude": true}]}"#;
    let req: WhatIfRequest = serde_json::from_slice(body)
        .map_err(|e| ServiceError::bad_request("bad-body", format!("the body must be JSON like {example}: {e}")))?;
    let interval = IntervalLength::from_minutes(req.interval_minutes).map_err(|e| invalid("interval_minutes", e))?;
    let mut special = Vec::with_capacity(req.special_days.len());
    for d in &req.special_days {
        let kind = match (d.factor, d.exclude) {
            (Some(f), false) => {
                slots::special_factor(f).map_err(|e| invalid("special_days", format!("{}: {e}", d.date)))?
            }
            (None, true) => SpecialKind::Exclude,
            _ => {
                return Err(invalid(
                    "special_days",
                    format!("{}: give either a factor or \"exclude\": true", d.date),
                ));
            }
        };
        special.push(SpecialDay { date: d.date, kind });
    }
    // Default grid: the key's tenant's reporting time zone (UTC for a
    // platform-wide key).
    let tz = match (&req.tz, &principal.tenant) {
        (Some(tz), _) => tz.clone(),
        (None, TenantScope::One(t)) => match crate::tenant::TenantId::parse(t) {
            Some(id) => state.load_settings(&id).await?.time_zone,
            None => "UTC".into(),
        },
        (None, TenantScope::All) => "UTC".into(),
    };
    let h = parse_horizon(
        Some(&tz),
        interval,
        Some(&req.horizon.from),
        Some(&req.horizon.to),
        special,
    )?;
    if req.history.len() > MAX_HISTORY_POINTS {
        return Err(invalid(
            "history",
            format!("at most {MAX_HISTORY_POINTS} points (a year of quarter hours)"),
        ));
    }
    // Sort, check, and lay the points on the grid; missing intervals are zero.
    let mut points = Vec::with_capacity(req.history.len());
    for (i, p) in req.history.iter().enumerate() {
        let t = chrono::DateTime::parse_from_rfc3339(&p.start)
            .map_err(|e| invalid("history", format!("point {i}: start {:?}: {e}", p.start)))?
            .timestamp_micros();
        if !slots::is_aligned(&h.zone, interval, t) {
            return Err(invalid(
                "history",
                format!(
                    "point {i}: {} does not start a {}-minute interval in {}",
                    p.start,
                    interval.minutes(),
                    h.zone.name
                ),
            ));
        }
        if !(p.count.is_finite() && p.count >= 0.0) {
            return Err(invalid(
                "history",
                format!("point {i}: count must be 0 or more, got {}", p.count),
            ));
        }
        points.push((t, p.count));
    }
    points.sort_by_key(|p| p.0);
    if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid(
            "history",
            format!("two points start at {}", h.zone.rfc3339(w[0].0)),
        ));
    }
    let step = interval.micros();
    let (start_us, counts) = match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            let len = usize::try_from((last.0 - first.0) / step + 1).unwrap_or(usize::MAX);
            if len > MAX_HISTORY_POINTS {
                return Err(invalid("history", "spans more than a year"));
            }
            let mut counts = vec![0.0; len];
            for (t, c) in &points {
                counts[usize::try_from((t - first.0) / step).unwrap_or(0)] = *c;
            }
            (first.0, counts)
        }
        _ => (h.from_us, Vec::new()),
    };
    let history_end = start_us + counts.len() as i64 * step;
    if history_end > h.from_us {
        return Err(invalid(
            "history",
            format!(
                "ends at {}, after horizon.from {}: history must come before the horizon",
                h.zone.rfc3339(history_end),
                h.zone.rfc3339(h.from_us)
            ),
        ));
    }
    let f = forecast_counts(&h, start_us, &counts, None)?;
    let history = json!({
        "from": h.zone.rfc3339(start_us),
        "to": h.zone.rfc3339(history_end),
        "intervals": counts.len(),
        "conversations": counts.iter().sum::<f64>(),
    });
    let (intervals, assumptions) = match req.staffing {
        None => (
            f.slots
                .iter()
                .zip(&f.forecast.points)
                .map(|(s, p)| Value::Object(interval_json(&h, s, p)))
                .collect(),
            None,
        ),
        Some(t) => {
            let staff_for = StaffFor::parse(t.staff_for.as_deref())?;
            let template = StaffingRequest {
                arrivals: 0.0,
                interval_s: f64::from(interval.seconds()),
                aht_s: t.aht_s,
                target_s: t.target_s,
                service_level: t.service_level,
                patience_s: t.patience_s,
                shrinkage: t.shrinkage,
                max_occupancy: t.max_occupancy,
                concurrency: t.concurrency,
            };
            let (mode, assumptions) = match t.response_deadline_s {
                None => {
                    if t.backlog.is_some() {
                        return Err(invalid(
                            "backlog",
                            "applies to asynchronous queues only: give staffing.response_deadline_s",
                        ));
                    }
                    (
                        QueueMode::Live,
                        json!({
                            "mode": "live",
                            "interval_s": template.interval_s,
                            "aht_s": t.aht_s,
                            "patience_s": t.patience_s,
                            "human_share": 1.0,
                            "service_level": t.service_level,
                            "target_s": t.target_s,
                            "concurrency": t.concurrency,
                            "shrinkage": t.shrinkage,
                            "max_occupancy": t.max_occupancy,
                            "staff_for": staff_for.name(),
                        }),
                    )
                }
                Some(deadline) => (
                    QueueMode::Async {
                        response_deadline_s: deadline,
                        backlog_at_start: t.backlog.unwrap_or(0.0),
                    },
                    json!({
                        "mode": "async",
                        "mode_source": "request: response_deadline_s",
                        "interval_s": template.interval_s,
                        "aht_s": t.aht_s,
                        "human_share": 1.0,
                        "response_deadline_s": deadline,
                        "backlog": t.backlog.unwrap_or(0.0),
                        "shrinkage": t.shrinkage,
                        "max_occupancy": t.max_occupancy.unwrap_or(1.0),
                        "staff_for": staff_for.name(),
                    }),
                ),
            };
            let plan = StaffingPlan {
                assumptions,
                template,
                human_share: 1.0,
                staff_for,
                mode,
            }
            .checked()?;
            (plan.intervals(&h, &f)?, Some(plan.assumptions))
        }
    };
    let mut body = forecast_body(&h, &f, history, intervals)?;
    if let Some(a) = assumptions {
        body["assumptions"] = a;
    }
    Ok(body)
}

/// The parts of a staffing answer the staffing page shows, read with their
/// types: a field renamed in [`staffing`] fails here (and in its test).
#[derive(Debug, Clone, Deserialize)]
pub struct StaffingView {
    pub queue: String,
    pub interval_minutes: u32,
    pub from: String,
    pub to: String,
    /// The method backtesting chose (its JSON form).
    pub method: Value,
    pub assumptions: AssumptionsView,
    pub intervals: Vec<IntervalView>,
}

/// Service-level figures of a live queue (an asynchronous one has none).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct AssumptionsView {
    #[serde(default)]
    pub service_level: Option<f64>,
    #[serde(default)]
    pub target_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntervalView {
    /// RFC 3339 in the forecast's time zone.
    pub start: String,
    #[serde(deserialize_with = "super::present")]
    pub mean: Option<f64>,
    #[serde(deserialize_with = "super::present")]
    pub p10: Option<f64>,
    #[serde(deserialize_with = "super::present")]
    pub p50: Option<f64>,
    #[serde(deserialize_with = "super::present")]
    pub p90: Option<f64>,
    #[serde(deserialize_with = "super::present")]
    pub agents: Option<f64>,
}

impl StaffingView {
    /// Reads an answer of [`staffing`]; an error names what did not match.
    pub fn read(answer: &Value) -> Result<Self, ServiceError> {
        Self::deserialize(answer).map_err(|e| ServiceError::failed("reading the staffing plan", e))
    }
}
