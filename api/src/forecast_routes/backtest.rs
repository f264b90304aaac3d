//! `cxlake backtest`: how accurate the arrival forecast is, per queue, on
//! the lake's own history — so nobody is fooled by noise.
//!
//! For every `channel × language × team` queue of each tenant it runs the
//! rolling-origin backtest of `staffing::forecast` (up to three 7-day
//! windows at the end of the history, each forecast from the data before
//! it) and prints the pooled WAPE and the MAPE of each method, the chosen
//! method's change against the best baseline, and the Poisson noise floor
//! `Σ 0.8·√μᵢ / Σ μᵢ`: the WAPE a perfect forecast of the mean would still
//! have, because arrivals are random. A WAPE near the floor cannot be
//! improved by any model.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use staffing::forecast::{self as fc, ForecastConfig, Method, Point, Series};

use super::lake;
use super::slots::{self, IntervalLength, Zone};
use crate::config::Config;

/// What to backtest.
#[derive(Debug, Clone)]
pub struct BacktestArgs {
    /// One tenant, or every tenant.
    pub tenant: Option<String>,
    /// 15 or 30 minutes.
    pub interval_minutes: u32,
    /// Time zone of the weekday × slot grid.
    pub tz: String,
}

/// Opens the data directory (the server must not be running on it), runs
/// the backtest and prints the report to `out`.
pub async fn run(cfg: &Config, args: &BacktestArgs, out: &mut dyn Write) -> Result<()> {
    let interval = IntervalLength::from_minutes(i64::from(args.interval_minutes))
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    let zone = Zone::parse(&args.tz).map_err(|e| anyhow::anyhow!("--tz: {e}"))?;
    if let Some(t) = &args.tenant
        && !lake::valid_tenant(t)
    {
        bail!("--tenant {t:?} must match [a-z0-9_-]{{1,64}}");
    }
    let ingestor = crate::cli::open_ingestor(cfg).await?;
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
        "backtest: rolling origin, up to {} windows of 7 days at the end of each history; {}-minute intervals in {}",
        fc_cfg.backtest_folds,
        interval.minutes(),
        zone.name
    )?;
    writeln!(
        out,
        "WAPE = Σ|actual − forecast| / Σ actual; MAPE over intervals with arrivals; baselines: last_week, mean_k and median_k (K = {}); noise floor = WAPE of a perfect mean forecast (Poisson)",
        fc_cfg.k_weeks
    )?;
    let step = interval.micros();
    let (mut queues_scored, mut chosen_not_worse) = (0usize, 0usize);
    for (tenant, first_us, last_us) in ranges {
        let origin = slots::slot_at(&zone, interval, first_us)
            .and_then(|s| zone.start_of_day(s.local_date))
            .context("first conversation out of range")?;
        let end = origin + ((last_us - origin) / step + 1) * step;
        let queues = lake::queue_counts(&ctx, &tenant, origin, end, step)
            .await
            .with_context(|| format!("counting arrivals of tenant {tenant}"))?;
        let grid = slots::grid(&zone, interval, origin, end);
        for q in queues {
            let series = Series {
                interval_s: interval.seconds(),
                points: grid
                    .iter()
                    .zip(&q.counts)
                    .map(|(s, c)| Point {
                        weekday: s.weekday,
                        slot: s.slot,
                        count: *c,
                        special: Default::default(),
                    })
                    .collect(),
            };
            let f = fc::forecast(&series, &[], &fc_cfg)?;
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
            if f.backtest.is_empty() {
                writeln!(out, "  no backtest: {}", f.note)?;
                continue;
            }
            let best_baseline = f
                .backtest
                .iter()
                .filter(|s| matches!(s.method, Method::LastWeek | Method::MeanK | Method::MedianK))
                .filter_map(|s| s.wape)
                .fold(f64::INFINITY, f64::min);
            writeln!(
                out,
                "  {:<15} {:>7} {:>7}  {:>16}",
                "method", "WAPE", "MAPE", "vs best baseline"
            )?;
            for s in &f.backtest {
                let vs = match s.wape {
                    Some(w) if best_baseline.is_finite() && best_baseline > 0.0 => {
                        format!("{:+.1} %", (w / best_baseline - 1.0) * 100.0)
                    }
                    _ => "-".into(),
                };
                writeln!(
                    out,
                    "  {:<15} {:>7} {:>7}  {:>16}{}",
                    method_name(s.method),
                    fmt3(s.wape),
                    fmt3(s.mape),
                    vs,
                    if s.method == f.method { "  chosen" } else { "" }
                )?;
            }
            writeln!(out, "  {:<15} {:>7}", "noise floor", fmt3(f.noise_floor_wape))?;
            let chosen = f.backtest.iter().find(|s| s.method == f.method).and_then(|s| s.wape);
            if let Some(w) = chosen {
                queues_scored += 1;
                if w <= best_baseline + 1e-12 {
                    chosen_not_worse += 1;
                }
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "chosen method at least as accurate (WAPE) as the best baseline in {chosen_not_worse} of {queues_scored} queues"
    )?;
    Ok(())
}

fn method_name(m: Method) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{m:?}"))
}

fn fmt3(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}
