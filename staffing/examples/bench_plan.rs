//! Times a 14-day, 30-minute staffing plan (forecast with backtest-based
//! method selection + required agents per interval) for 100 queues of
//! synthetic chat history, and prints how it was obtained.
//!
//! Run: `cargo run --release -p staffing --example bench_plan`
//! Target: under 1 s for the 100 queues (not asserted anywhere).

use std::time::Instant;

use staffing::erlang::StaffingRequest;
use staffing::forecast::{ForecastConfig, HorizonSlot, Method, Series, forecast, wape};
use staffing::plan::{StaffFor, staffing_plan};
use staffing::synthetic::{ChatSeriesSpec, chat_mean, chat_series};

const QUEUES: usize = 100;
const HISTORY_DAYS: usize = 56;
const HORIZON_DAYS: usize = 14;

fn main() -> Result<(), staffing::Error> {
    let specs: Vec<ChatSeriesSpec> = (0..QUEUES)
        .map(|q| ChatSeriesSpec {
            days: HISTORY_DAYS,
            interval_s: 1800,
            start_weekday: (q % 7) as u8,
            // Queue sizes from 0.5 to ~50 arrivals per interval.
            mean_per_interval: 0.5 * 1.047_f64.powi(q as i32),
            growth_per_week: 0.01 * (q % 5) as f64 - 0.01,
            seed: q as u64,
        })
        .collect();
    let histories: Vec<Series> = specs
        .iter()
        .map(|s| Series {
            interval_s: 1800,
            points: chat_series(s).points,
        })
        .collect();
    let template = StaffingRequest {
        arrivals: 0.0,
        interval_s: 1800.0,
        aht_s: 420.0,
        target_s: 60.0,
        service_level: 0.8,
        patience_s: None,
        shrinkage: 0.3,
        max_occupancy: Some(0.85),
        concurrency: 2,
    };
    let cfg = ForecastConfig::default();

    let start = Instant::now();
    let mut agent_intervals = 0u64;
    let mut chosen = std::collections::BTreeMap::<String, usize>::new();
    let mut forecasts = Vec::with_capacity(QUEUES);
    for (s, hist) in specs.iter().zip(&histories) {
        let horizon: Vec<HorizonSlot> = (HISTORY_DAYS..HISTORY_DAYS + HORIZON_DAYS)
            .flat_map(|d| {
                (0..48u16).map(move |slot| HorizonSlot {
                    weekday: ((usize::from(s.start_weekday) + d) % 7) as u8,
                    slot,
                    multiplier: 1.0,
                })
            })
            .collect();
        let fc = forecast(hist, &horizon, &cfg)?;
        let plan = staffing_plan(&fc, &template, StaffFor::Mean)?;
        agent_intervals += plan.iter().map(|p| u64::from(p.staffing.agents)).sum::<u64>();
        *chosen.entry(format!("{:?}", fc.method)).or_default() += 1;
        forecasts.push(fc);
    }
    let elapsed = start.elapsed();

    println!(
        "staffing plan: {QUEUES} queues × {HORIZON_DAYS} days × 48 intervals \
         ({} intervals), {HISTORY_DAYS} days of history each",
        QUEUES * HORIZON_DAYS * 48
    );
    println!(
        "  wall time: {:.3} s (single thread, forecast with 3-window backtest of 4 methods + Erlang C per interval)",
        elapsed.as_secs_f64()
    );
    println!("  methods chosen: {chosen:?}; total agent-intervals: {agent_intervals}");

    // Backtest WAPE of the chosen method against the best baseline, pooled
    // over queues, and the Poisson noise floor for context.
    let (mut chosen_err, mut best_base_err, mut n, mut floor_sum) = (0.0, 0.0, 0usize, 0.0);
    for fc in &forecasts {
        let Some(sel) = fc.backtest.iter().find(|s| s.method == fc.method) else {
            continue;
        };
        let best_base = fc
            .backtest
            .iter()
            .filter(|s| matches!(s.method, Method::LastWeek | Method::MeanK | Method::MedianK))
            .filter_map(|s| s.wape)
            .fold(f64::INFINITY, f64::min);
        if let (Some(w), true) = (sel.wape, best_base.is_finite()) {
            chosen_err += w;
            best_base_err += best_base;
            floor_sum += fc.noise_floor_wape.unwrap_or(0.0);
            n += 1;
        }
    }
    if n > 0 {
        println!(
            "  backtest WAPE (mean over {n} queues): chosen {:.3}, best baseline {:.3}, Poisson noise floor {:.3}",
            chosen_err / n as f64,
            best_base_err / n as f64,
            floor_sum / n as f64
        );
    }
    // Out-of-sample check against the generator's true means.
    let mut truth_err = 0.0;
    for (s, fc) in specs.iter().zip(&forecasts) {
        let truth: Vec<f64> = (HISTORY_DAYS..HISTORY_DAYS + HORIZON_DAYS)
            .flat_map(|d| (0..48u16).map(move |slot| chat_mean(s, d, slot)))
            .collect();
        let means: Vec<f64> = fc.points.iter().map(|p| p.mean).collect();
        truth_err += wape(&truth, &means).unwrap_or(0.0);
    }
    println!(
        "  WAPE of the 14-day forecast against the true means: {:.3} (mean over queues)",
        truth_err / QUEUES as f64
    );
    Ok(())
}
