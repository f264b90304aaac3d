//! `cxlake backtest`: how accurate the arrival forecast is, per queue, on
//! the lake's own history — so nobody is fooled by noise, or by a choice
//! scored on the same data it was made on.
//!
//! For every `channel × language × team` queue of each tenant the **last
//! 7 days are held out**. The service's own selection runs on the history
//! before them (`staffing::forecast::forecast_with_aggregate`, with the
//! tenant's total as the aggregate: a rolling-origin backtest over up to
//! three 7-day windows, each forecast from the data before it, choosing
//! among the three baselines, the Poisson model and the aggregate split by
//! WAPE — or by Poisson deviance for queues under one arrival per
//! interval). Then every candidate forecasts the held-out week from the
//! same history, and the report prints per method the selection score and
//! the held-out WAPE, MAPE, mean Poisson deviance and bias, the chosen
//! method's change against the best baseline *on the held-out week* (the
//! baseline that happened to do best there — a bar the chosen method did
//! not see), and the Poisson noise floor `Σ 0.8·√μᵢ / Σ μᵢ`: the WAPE a
//! perfect forecast of the mean would still have, because arrivals are
//! random. A WAPE near the floor cannot be improved by any model.
//!
//! The summary per tenant counts the queues where the chosen method was at
//! least as accurate as the best baseline on the held-out week (by the
//! criterion the queue is judged on, and by WAPE alone), and pools the
//! held-out WAPE over all queues of the tenant.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use staffing::forecast::{
    self as fc, Criterion, ForecastConfig, HorizonSlot, METHODS, Method, Point, Series, method_name,
};

use crate::config::Config;
use services::forecasts::lake;
use services::forecasts::slots::{self, IntervalLength, Zone};

/// What to backtest.
#[derive(Debug, Clone)]
pub struct BacktestArgs {
    /// One tenant, or every tenant.
    pub tenant: Option<String>,
    /// 15 or 30 minutes.
    pub interval_minutes: u32,
    /// Time zone of the weekday × slot grid; `None` = each tenant's
    /// reporting time zone from its settings (UTC without one).
    pub tz: Option<String>,
}

const BASELINES: [Method; 3] = [Method::LastWeek, Method::MeanK, Method::MedianK];

/// Held-out scores of one method.
#[derive(Debug, Clone, Copy)]
struct HeldOut {
    method: Method,
    wape: Option<f64>,
    abs_err: f64,
    mape: Option<f64>,
    deviance: f64,
    bias: Option<f64>,
}

fn held_out(method: Method, actual: &[f64], means: &[f64]) -> HeldOut {
    let total: f64 = actual.iter().sum();
    HeldOut {
        method,
        wape: fc::wape(actual, means),
        abs_err: actual.iter().zip(means).map(|(a, f)| (a - f).abs()).sum(),
        mape: fc::mape(actual, means).value,
        deviance: fc::poisson_deviance(actual, means),
        bias: (total > 0.0).then(|| means.iter().sum::<f64>() / total - 1.0),
    }
}

/// Per-tenant tallies.
#[derive(Debug, Default)]
struct Tally {
    queues: usize,
    /// Chosen ≤ best held-out baseline by the queue's criterion.
    not_worse: usize,
    /// Chosen ≤ best held-out baseline by WAPE.
    not_worse_wape: usize,
    actual: f64,
    chosen_abs_err: f64,
    best_baseline_abs_err: f64,
    baseline_abs_err: [f64; 3],
    chosen_methods: std::collections::BTreeMap<String, usize>,
}

/// Opens the data directory (the server must not be running on it), runs
/// the backtest and prints the report to `out`.
pub async fn run(cfg: &Config, args: &BacktestArgs, out: &mut dyn Write) -> Result<()> {
    let interval = IntervalLength::from_minutes(i64::from(args.interval_minutes))
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    let fixed_zone = match &args.tz {
        Some(tz) => Some(Zone::parse(tz).map_err(|e| anyhow::anyhow!("--tz: {e}"))?),
        None => None,
    };
    if let Some(t) = &args.tenant
        && !model::TenantId::is_valid(t)
    {
        bail!("--tenant {t:?} must match [a-z0-9_-]{{1,64}}");
    }
    let ingestor = crate::config::open_ingestor(cfg).await?;
    let warehouse = warehouse::Warehouse::new(Arc::clone(&ingestor));
    let ctx = warehouse.session().context("opening a SQL session")?;
    let ranges = lake::tenant_ranges(&ctx, args.tenant.as_deref())
        .await
        .context("reading the tenants' data ranges")?;
    if ranges.is_empty() {
        bail!(
            "no conversations{} in {}",
            args.tenant
                .as_deref()
                .map(|t| format!(" of tenant {t}"))
                .unwrap_or_default(),
            cfg.data_dir.display()
        );
    }
    let fc_cfg = ForecastConfig::default();
    writeln!(
        out,
        "backtest: the last 7 days of each queue are held out; the method is chosen on the history before them \
         (rolling origin, up to {} windows of 7 days) among the baselines last_week, mean_k, median_k (K = {}), \
         poisson_trend and aggregate_split (share of the tenant's total); {}-minute intervals",
        fc_cfg.backtest_folds,
        fc_cfg.k_weeks,
        interval.minutes(),
    )?;
    writeln!(
        out,
        "WAPE = Σ|actual − forecast| / Σ actual; MAPE over intervals with arrivals; dev = mean Poisson deviance; \
         bias = forecast total / actual total − 1; queues under 1 arrival per interval are chosen and judged by \
         deviance, the others by WAPE; noise floor = held-out WAPE of a perfect mean forecast (Poisson)"
    )?;
    let step = interval.micros();
    let mut all = Tally::default();
    for (tenant, first_us, last_us) in ranges {
        let zone = match &fixed_zone {
            Some(z) => z.clone(),
            None => tenant_zone(cfg, &tenant)?,
        };
        let origin = slots::slot_at(&zone, interval, first_us)
            .and_then(|s| zone.start_of_day(s.local_date))
            .context("first conversation out of range")?;
        // Whole local days up to the last one with data (it may be partial:
        // the interval of the latest conversation is still filling).
        let last_day = slots::slot_at(&zone, interval, last_us)
            .map(|s| s.local_date)
            .context("last conversation out of range")?;
        let end = zone.start_of_day(last_day).context("no start of the last day")?;
        let (queues, totals) = lake::queue_counts(&ctx, &tenant, origin, end, step)
            .await
            .with_context(|| format!("counting arrivals of tenant {tenant}"))?;
        let grid = slots::grid(&zone, interval, origin, end);
        let to_points = |counts: &[f64]| -> Vec<Point> {
            grid.iter()
                .zip(counts)
                .map(|(s, c)| Point {
                    weekday: s.weekday,
                    slot: s.slot,
                    count: *c,
                    special: Default::default(),
                })
                .collect()
        };
        let total_points = to_points(&totals);
        // The held-out week: the last 7 local days.
        let holdout_start = slots::slot_at(&zone, interval, end - 1)
            .map(|s| s.local_date - chrono::Days::new(6))
            .and_then(|d| zone.start_of_day(d))
            .context("held-out week out of range")?;
        let cut = grid
            .iter()
            .position(|s| s.start_us >= holdout_start)
            .unwrap_or(grid.len());
        writeln!(out)?;
        writeln!(
            out,
            "== {tenant}: {} queues; grid in {}; held out {} .. {}",
            queues.len(),
            zone.name,
            zone.rfc3339(holdout_start),
            zone.rfc3339(end)
        )?;
        let mut tally = Tally::default();
        for q in queues {
            let points = to_points(&q.counts);
            let (train, test) = points.split_at(cut);
            let series = Series {
                interval_s: interval.seconds(),
                points: train.to_vec(),
            };
            let aggregate = Series {
                interval_s: interval.seconds(),
                points: total_points[..cut].to_vec(),
            };
            let horizon: Vec<HorizonSlot> = test
                .iter()
                .map(|p| HorizonSlot {
                    weekday: p.weekday,
                    slot: p.slot,
                    multiplier: 1.0,
                })
                .collect();
            let actual: Vec<f64> = test.iter().map(|p| p.count).collect();
            let f = fc::forecast_with_aggregate(&series, Some(&aggregate), &horizon, &fc_cfg)?;
            let total: f64 = q.counts.iter().sum();
            writeln!(out)?;
            writeln!(
                out,
                "{} · {} · {} conversations, {:.2} per interval",
                q.tenant,
                q.key.canonical(),
                total,
                total / q.counts.len().max(1) as f64
            )?;
            let Some(criterion) = f.selected_by else {
                writeln!(out, "  no backtest: {}", f.note)?;
                continue;
            };
            let mut rows = Vec::new();
            for m in METHODS.iter().copied().chain([Method::AggregateSplit]) {
                let means = fc::forecast_method_with_aggregate(&series, Some(&aggregate), &horizon, m, &fc_cfg)?;
                rows.push(held_out(m, &actual, &means));
            }
            let judged = |h: &HeldOut| match criterion {
                Criterion::Wape => h.wape.unwrap_or(f64::INFINITY),
                Criterion::PoissonDeviance => h.deviance,
            };
            let best_baseline = rows
                .iter()
                .filter(|h| BASELINES.contains(&h.method))
                .min_by(|a, b| judged(a).total_cmp(&judged(b)))
                .copied()
                .context("no baseline scored")?;
            let best_baseline_wape = rows
                .iter()
                .filter(|h| BASELINES.contains(&h.method))
                .filter_map(|h| h.wape)
                .fold(f64::INFINITY, f64::min);
            let chosen = rows
                .iter()
                .find(|h| h.method == f.method)
                .copied()
                .context("chosen method not scored")?;
            writeln!(
                out,
                "  {:<16} {:>8} {:>8} {:>8} {:>8} {:>7}  {:>13}",
                "method",
                match criterion {
                    Criterion::Wape => "sel.WAPE",
                    Criterion::PoissonDeviance => "sel.dev",
                },
                "WAPE",
                "MAPE",
                "dev",
                "bias",
                "vs best base."
            )?;
            for h in &rows {
                let sel = f.backtest.iter().find(|s| s.method == h.method);
                let sel_score = sel.map(|s| fc::criterion(s, criterion == Criterion::PoissonDeviance));
                let vs = {
                    let (x, b) = (judged(h), judged(&best_baseline));
                    if x.is_finite() && b.is_finite() && b > 0.0 {
                        format!("{:+.1} %", (x / b - 1.0) * 100.0)
                    } else {
                        "-".into()
                    }
                };
                let flags = match (h.method == f.method, sel.is_some_and(|s| !s.eligible)) {
                    (true, _) => "  chosen",
                    (false, true) => "  (under-forecast: not eligible)",
                    _ => "",
                };
                writeln!(
                    out,
                    "  {:<16} {:>8} {:>8} {:>8} {:>8.3} {:>7}  {:>13}{flags}",
                    method_name(h.method),
                    fmt3(sel_score),
                    fmt3(h.wape),
                    fmt3(h.mape),
                    h.deviance,
                    h.bias.map_or_else(|| "-".into(), |b| format!("{:+.1}%", b * 100.0)),
                    vs,
                )?;
            }
            let chosen_means =
                fc::forecast_method_with_aggregate(&series, Some(&aggregate), &horizon, f.method, &fc_cfg)?;
            writeln!(
                out,
                "  {:<16} {:>8} {:>8}",
                "noise floor",
                "",
                fmt3(fc::poisson_noise_floor_pooled(&chosen_means))
            )?;
            for t in [&mut tally, &mut all] {
                t.queues += 1;
                if judged(&chosen) <= judged(&best_baseline) + 1e-12 {
                    t.not_worse += 1;
                }
                if chosen.wape.unwrap_or(f64::INFINITY) <= best_baseline_wape + 1e-12 {
                    t.not_worse_wape += 1;
                }
                t.actual += actual.iter().sum::<f64>();
                t.chosen_abs_err += chosen.abs_err;
                t.best_baseline_abs_err += rows
                    .iter()
                    .filter(|h| BASELINES.contains(&h.method))
                    .map(|h| h.abs_err)
                    .fold(f64::INFINITY, f64::min);
                for (i, b) in BASELINES.iter().enumerate() {
                    t.baseline_abs_err[i] += rows.iter().find(|h| h.method == *b).map_or(0.0, |h| h.abs_err);
                }
                *t.chosen_methods.entry(method_name(f.method)).or_default() += 1;
            }
        }
        summary(out, &tenant, &tally)?;
    }
    if args.tenant.is_none() {
        summary(out, "all tenants", &all)?;
    }
    Ok(())
}

fn summary(out: &mut dyn Write, who: &str, t: &Tally) -> Result<()> {
    if t.queues == 0 || t.actual <= 0.0 {
        writeln!(out, "\n{who}: no queue with a backtest")?;
        return Ok(());
    }
    let pooled = |e: f64| e / t.actual;
    writeln!(out)?;
    writeln!(
        out,
        "{who}: on the held-out week the chosen method is at least as accurate as the best baseline in {} of {} queues \
         (by the queue's criterion; by WAPE alone: {} of {})",
        t.not_worse, t.queues, t.not_worse_wape, t.queues
    )?;
    writeln!(
        out,
        "{who}: held-out WAPE pooled over the queues: chosen {:.3}; best baseline per queue (picked after the fact) {:.3}; \
         last_week {:.3}, mean_k {:.3}, median_k {:.3}; chosen methods: {}",
        pooled(t.chosen_abs_err),
        pooled(t.best_baseline_abs_err),
        pooled(t.baseline_abs_err[0]),
        pooled(t.baseline_abs_err[1]),
        pooled(t.baseline_abs_err[2]),
        t.chosen_methods
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(())
}

/// The tenant's reporting time zone from its settings (UTC without any).
fn tenant_zone(cfg: &Config, tenant: &str) -> Result<Zone> {
    let id = services::tenant::TenantId::parse(tenant).with_context(|| format!("tenant id {tenant:?}"))?;
    let settings =
        services::settings::load(&cfg.data_dir, &id).with_context(|| format!("settings of tenant {tenant}"))?;
    Zone::parse(&settings.time_zone).map_err(|e| anyhow::anyhow!("time zone of tenant {tenant}: {e}"))
}

fn fmt3(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}
