//! Forecasts on synthetic chat-like series whose truth is known
//! (`staffing::synthetic`): seasonality and trend, DST days, empty and sparse
//! queues, short histories, special days, small-queue groups.

use staffing::forecast::{
    ForecastConfig, HorizonSlot, Method, Point, Series, Special, forecast, forecast_group, forecast_method,
    forecast_method_with_aggregate, forecast_with_aggregate, poisson_noise_floor, wape,
};
use staffing::synthetic::{ChatSeriesSpec, SplitMix64, chat_mean, chat_series};

const SPD: u16 = 48;

fn spec(days: usize, mean: f64, seed: u64) -> ChatSeriesSpec {
    ChatSeriesSpec {
        days,
        interval_s: 1800,
        start_weekday: 0,
        mean_per_interval: mean,
        growth_per_week: 0.03,
        seed,
    }
}

/// `days` whole days following a history of `after_days` days, with the
/// true means and fresh Poisson draws for them.
fn future(s: &ChatSeriesSpec, after_days: usize, days: usize) -> (Vec<HorizonSlot>, Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64::new(s.seed ^ 0xDEAD_BEEF);
    let (mut h, mut truth, mut draws) = (Vec::new(), Vec::new(), Vec::new());
    for d in after_days..after_days + days {
        for slot in 0..SPD {
            let m = chat_mean(s, d, slot);
            h.push(HorizonSlot {
                weekday: ((usize::from(s.start_weekday) + d) % 7) as u8,
                slot,
                multiplier: 1.0,
            });
            truth.push(m);
            draws.push(rng.poisson(m) as f64);
        }
    }
    (h, truth, draws)
}

fn series(points: Vec<Point>) -> Series {
    Series {
        interval_s: 1800,
        points,
    }
}

#[test]
fn strong_model_beats_baselines_on_seasonal_series_with_trend() {
    let cfg = ForecastConfig::default();
    let s = spec(56, 20.0, 7);
    let hist = series(chat_series(&s).points);
    let (horizon, truth, draws) = future(&s, 56, 14);
    let fc = forecast(&hist, &horizon, &cfg).unwrap();
    assert_eq!(fc.method, Method::PoissonTrend, "{}", fc.note);
    assert_eq!(fc.points.len(), 14 * 48);

    // In the backtest the chosen model beats every baseline...
    let score = |m: Method| fc.backtest.iter().find(|s| s.method == m).unwrap().wape.unwrap();
    let strong = score(Method::PoissonTrend);
    for b in [Method::LastWeek, Method::MeanK, Method::MedianK] {
        assert!(strong < score(b), "{b:?}: {} vs {strong}", score(b));
    }
    // ...and out of sample, against the truth and against fresh draws.
    let means: Vec<f64> = fc.points.iter().map(|p| p.mean).collect();
    let strong_truth = wape(&truth, &means).unwrap();
    let strong_draws = wape(&draws, &means).unwrap();
    for b in [Method::LastWeek, Method::MeanK, Method::MedianK] {
        let base = forecast_method(&hist, &horizon, b, &cfg).unwrap();
        assert!(strong_truth < wape(&truth, &base).unwrap(), "{b:?} closer to truth");
        assert!(strong_draws < wape(&draws, &base).unwrap(), "{b:?} closer to draws");
    }
    // Close to the truth, and near the noise floor on draws.
    assert!(strong_truth < 0.08, "{strong_truth}");
    let floor = poisson_noise_floor(draws.iter().sum::<f64>() / draws.len() as f64).unwrap();
    assert!(strong_draws < floor * 1.25, "{strong_draws} vs floor {floor}");
    assert!(fc.noise_floor_wape.is_some());
}

#[test]
fn p90_covers_about_ninety_percent() {
    let s = spec(56, 20.0, 11);
    let hist = series(chat_series(&s).points);
    let (horizon, _, draws) = future(&s, 56, 14);
    let fc = forecast(&hist, &horizon, &ForecastConfig::default()).unwrap();
    let mut covered = 0usize;
    for (p, d) in fc.points.iter().zip(&draws) {
        assert!(p.p10 <= p.p50 && p.p50 <= p.p90);
        covered += usize::from(*d <= p.p90);
    }
    let rate = covered as f64 / draws.len() as f64;
    assert!((0.85..=0.97).contains(&rate), "P90 coverage {rate}");
    assert!(fc.dispersion >= 1.0);
}

/// Turns day `day` of the points into a DST day: spring-forward drops local
/// slots 4 and 5 (02:00–03:00), fall-back repeats them.
fn with_dst(points: &[Point], day: usize, spring: bool) -> Vec<Point> {
    let mut out = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let d = i / usize::from(SPD);
        if d == day && (p.slot == 4 || p.slot == 5) {
            if spring {
                continue;
            }
            out.push(*p);
        }
        out.push(*p);
    }
    out
}

#[test]
fn dst_days_neither_break_nor_shift_the_forecast() {
    let cfg = ForecastConfig::default();
    let s = spec(42, 20.0, 3);
    let base = chat_series(&s).points;
    // A spring-forward Sunday mid-history and a fall-back Sunday at its end.
    let points = with_dst(&with_dst(&base, 41, false), 20, true);
    assert_eq!(points.len(), base.len()); // −2 + 2 slots
    let hist = series(points);
    // Horizon: the next week, whose Sunday is again a 23-hour day.
    let (full, truth, _) = future(&s, 42, 7);
    let (horizon, truth): (Vec<HorizonSlot>, Vec<f64>) = full
        .iter()
        .zip(&truth)
        .enumerate()
        .filter(|(i, (h, _))| !(i / 48 == 6 && (h.slot == 4 || h.slot == 5)))
        .map(|(_, (h, t))| (*h, *t))
        .unzip();
    assert_eq!(horizon.len(), 7 * 48 - 2);
    let fc = forecast(&hist, &horizon, &cfg).unwrap();
    assert_eq!(fc.points.len(), horizon.len());
    let means: Vec<f64> = fc.points.iter().map(|p| p.mean).collect();
    let w = wape(&truth, &means).unwrap();
    assert!(w < 0.08, "WAPE against truth {w} ({})", fc.note);
    // Seasonality still aligned: Monday's 10:30 peak is forecast at slot 21.
    let monday: Vec<f64> = fc.points[..48].iter().map(|p| p.mean).collect();
    let peak = (0..48).max_by(|a, b| monday[*a].total_cmp(&monday[*b])).unwrap();
    assert!((20..=22).contains(&peak), "peak at slot {peak}");
}

#[test]
fn a_25_hour_day_in_the_horizon_gets_its_repeated_hour() {
    let s = spec(28, 10.0, 5);
    let hist = series(chat_series(&s).points);
    let mut horizon: Vec<HorizonSlot> = (0..SPD)
        .map(|slot| HorizonSlot {
            weekday: 6,
            slot,
            multiplier: 1.0,
        })
        .collect();
    horizon.insert(
        6,
        HorizonSlot {
            weekday: 6,
            slot: 4,
            multiplier: 1.0,
        },
    );
    horizon.insert(
        7,
        HorizonSlot {
            weekday: 6,
            slot: 5,
            multiplier: 1.0,
        },
    );
    let fc = forecast(&hist, &horizon, &ForecastConfig::default()).unwrap();
    assert_eq!(fc.points.len(), 50);
    assert_eq!((fc.points[6].slot, fc.points[7].slot), (4, 5));
    let rel = (fc.points[6].mean - fc.points[4].mean).abs() / fc.points[4].mean;
    assert!(rel < 1e-3, "repeated slot differs by {rel}");
}

#[test]
fn empty_series_forecasts_zero_and_says_so() {
    let horizon: Vec<HorizonSlot> = (0..SPD)
        .map(|slot| HorizonSlot {
            weekday: 2,
            slot,
            multiplier: 1.0,
        })
        .collect();
    let fc = forecast(&series(Vec::new()), &horizon, &ForecastConfig::default()).unwrap();
    assert_eq!(fc.method, Method::Zero);
    assert!(fc.note.contains("empty"));
    assert!(fc.points.iter().all(|p| p.mean == 0.0 && p.p90 == 0.0));
    // All-excluded history is treated the same way.
    let excluded = vec![Point {
        weekday: 0,
        slot: 0,
        count: 5.0,
        special: Special::Exclude,
    }];
    let fc = forecast(&series(excluded), &horizon, &ForecastConfig::default()).unwrap();
    assert_eq!(fc.method, Method::Zero);
}

#[test]
fn very_sparse_queue_keeps_a_positive_mean_and_sane_quantiles() {
    let s = ChatSeriesSpec {
        growth_per_week: 0.0,
        ..spec(56, 0.05, 9)
    };
    let hist = series(chat_series(&s).points);
    let total: f64 = hist.points.iter().map(|p| p.count).sum();
    assert!(total > 20.0 && total < 300.0, "{total}");
    let (horizon, truth, _) = future(&s, 56, 14);
    let fc = forecast(&hist, &horizon, &ForecastConfig::default()).unwrap();
    assert!(fc.note.contains("deviance"), "{}", fc.note);
    let chosen = fc.backtest.iter().find(|s| s.method == fc.method).unwrap();
    assert!(chosen.eligible, "{:?}", fc.backtest);
    // The median of a few near-zero counts is mostly zero: it under-forecasts
    // and may not be chosen however good its WAPE.
    let median = fc.backtest.iter().find(|s| s.method == Method::MedianK).unwrap();
    assert!(!median.eligible && median.bias.unwrap() < -0.5, "{median:?}");
    // A zero forecast would win on WAPE but starve the queue: the chosen
    // model keeps the expected total within 30 % of the truth.
    let fc_total: f64 = fc.points.iter().map(|p| p.mean).sum();
    let true_total: f64 = truth.iter().sum();
    assert!((fc_total / true_total - 1.0).abs() < 0.3, "{fc_total} vs {true_total}");
    assert!(
        fc.points.iter().all(|p| p.p50 == 0.0 && p.p90 <= 2.0),
        "{:?} {:?}",
        fc.method,
        fc.backtest
    );
}

#[test]
fn history_shorter_than_a_week_falls_back_to_pooled_shapes() {
    // Wednesday to Friday only: forecast a whole week.
    let s = ChatSeriesSpec {
        start_weekday: 2,
        growth_per_week: 0.0,
        ..spec(3, 20.0, 13)
    };
    let hist = series(chat_series(&s).points);
    let (horizon, truth, _) = future(&s, 3, 7);
    let fc = forecast(&hist, &horizon, &ForecastConfig::default()).unwrap();
    assert_eq!(fc.method, Method::PoissonTrend);
    assert!(fc.note.contains("shorter"), "{}", fc.note);
    assert!(fc.backtest.is_empty());
    // Saturday (first horizon day, never seen) still has a daytime peak
    // far above the night.
    let sat = &fc.points[..48];
    assert!(sat[24].mean > 5.0 * sat[6].mean, "{} vs {}", sat[24].mean, sat[6].mean);
    // Seen weekdays are close to the truth.
    let wed_start = 4 * 48;
    let means: Vec<f64> = fc.points[wed_start..wed_start + 48].iter().map(|p| p.mean).collect();
    assert!(wape(&truth[wed_start..wed_start + 48], &means).unwrap() < 0.2);
    // And a single day of history still works.
    let one_day = series(chat_series(&ChatSeriesSpec { days: 1, ..s }).points);
    let fc = forecast(&one_day, &horizon, &ForecastConfig::default()).unwrap();
    assert!(fc.points.iter().all(|p| p.mean.is_finite() && p.mean >= 0.0));
}

#[test]
fn special_days_in_history_and_horizon() {
    let cfg = ForecastConfig::default();
    let s = ChatSeriesSpec {
        growth_per_week: 0.0,
        ..spec(42, 20.0, 17)
    };
    let clean = chat_series(&s).points;
    // Last Monday: a campaign doubled traffic (marked); the Tuesday before a
    // holiday with almost no traffic (excluded).
    let mut marked = clean.clone();
    for p in &mut marked[35 * 48..36 * 48] {
        p.count *= 2.0;
        p.special = Special::Factor(2.0);
    }
    for p in &mut marked[29 * 48..30 * 48] {
        p.count = (p.count * 0.1).round();
        p.special = Special::Exclude;
    }
    let (mut horizon, _, _) = future(&s, 42, 7);
    let a = forecast(&series(clean), &horizon, &cfg).unwrap();
    let b = forecast(&series(marked.clone()), &horizon, &cfg).unwrap();
    let (ta, tb): (f64, f64) = (
        a.points.iter().map(|p| p.mean).sum(),
        b.points.iter().map(|p| p.mean).sum(),
    );
    assert!((tb / ta - 1.0).abs() < 0.03, "{ta} vs {tb}");
    // The same days unmarked distort the forecast far more.
    let unmarked: Vec<Point> = marked
        .iter()
        .map(|p| Point {
            special: Special::Normal,
            ..*p
        })
        .collect();
    let c = forecast(&series(unmarked), &horizon, &cfg).unwrap();
    let mon = |f: &staffing::forecast::Forecast| f.points[..48].iter().map(|p| p.mean).sum::<f64>();
    assert!((mon(&c) / mon(&a) - 1.0).abs() > (mon(&b) / mon(&a) - 1.0).abs());
    // A horizon multiplier scales the mean.
    for h in &mut horizon[..48] {
        h.multiplier = 0.5;
    }
    let d = forecast(&series(marked), &horizon, &cfg).unwrap();
    assert!((d.points[20].mean / b.points[20].mean - 0.5).abs() < 1e-9);
}

#[test]
fn small_queues_can_be_forecast_as_shares_of_their_total() {
    let cfg = ForecastConfig::default();
    let shares = [0.4, 0.25, 0.15, 0.12, 0.08];
    let total = ChatSeriesSpec {
        growth_per_week: 0.0,
        ..spec(56, 3.0, 21)
    };
    let group: Vec<Series> = shares
        .iter()
        .enumerate()
        .map(|(i, sh)| {
            let s = ChatSeriesSpec {
                mean_per_interval: total.mean_per_interval * sh,
                seed: 100 + i as u64,
                ..total
            };
            series(chat_series(&s).points)
        })
        .collect();
    let (horizon, _, _) = future(&total, 56, 7);
    let fcs = forecast_group(&group, &horizon, &cfg).unwrap();
    assert_eq!(fcs.len(), 5);
    let split = fcs.iter().filter(|f| f.method == Method::AggregateSplit).count();
    assert!(split >= 1, "{:?}", fcs.iter().map(|f| f.method).collect::<Vec<_>>());
    for (f, (sh, g)) in fcs.iter().zip(shares.iter().zip(&group)) {
        assert!(f.backtest.iter().any(|s| s.method == Method::AggregateSplit));
        let mean: f64 = f.points.iter().map(|p| p.mean).sum::<f64>() / f.points.len() as f64;
        let hist_mean = g.points.iter().map(|p| p.count).sum::<f64>() / g.points.len() as f64;
        assert!(
            (mean / hist_mean - 1.0).abs() < 0.25,
            "share {sh}: {mean} vs {hist_mean}"
        );
    }
    // Misaligned groups are refused, naming the parameter.
    let mut bad = group.clone();
    bad[1].points.pop();
    assert_eq!(forecast_group(&bad, &horizon, &cfg).unwrap_err().param(), "series");
}

#[test]
fn a_small_queue_is_forecast_as_its_share_of_the_tenant_total() {
    let cfg = ForecastConfig::default();
    // A tenant with 20 arrivals per half hour; one queue takes 3 % of them
    // (0.6 per interval): thinning a Poisson process keeps it Poisson.
    let tenant = ChatSeriesSpec {
        growth_per_week: 0.0,
        ..spec(56, 20.0, 31)
    };
    let total = chat_series(&tenant).points;
    let mut rng = SplitMix64::new(77);
    let queue: Vec<Point> = total
        .iter()
        .map(|p| {
            let mut k = 0.0;
            for _ in 0..p.count as u64 {
                if rng.next_f64() < 0.03 {
                    k += 1.0;
                }
            }
            Point { count: k, ..*p }
        })
        .collect();
    let (horizon, truth, _) = future(&tenant, 56, 14);
    let queue_truth: Vec<f64> = truth.iter().map(|m| m * 0.03).collect();
    let agg = series(total);
    let own = forecast(&series(queue.clone()), &horizon, &cfg).unwrap();
    let split = forecast_with_aggregate(&series(queue.clone()), Some(&agg), &horizon, &cfg).unwrap();
    assert_eq!(split.method, Method::AggregateSplit, "{}", split.note);
    assert!(split.note.contains("share"), "{}", split.note);
    // Every candidate was scored, baselines included, and the chosen one has
    // the lowest deviance of the eligible ones (sparse queue).
    assert_eq!(split.backtest.len(), 5);
    let chosen = split.backtest.iter().find(|s| s.method == split.method).unwrap();
    for s in split.backtest.iter().filter(|s| s.eligible) {
        assert!(chosen.poisson_deviance <= s.poisson_deviance, "{:?}", split.backtest);
    }
    // Closer to the true means than the queue on its own.
    let means = |f: &staffing::forecast::Forecast| f.points.iter().map(|p| p.mean).collect::<Vec<_>>();
    let (e_split, e_own) = (
        wape(&queue_truth, &means(&split)).unwrap(),
        wape(&queue_truth, &means(&own)).unwrap(),
    );
    assert!(e_split < e_own, "split {e_split} vs own {e_own}");
    assert!(e_split < 0.15, "{e_split}");
    // The method can be asked for directly, and needs the aggregate.
    let direct = forecast_method_with_aggregate(
        &series(queue.clone()),
        Some(&agg),
        &horizon,
        Method::AggregateSplit,
        &cfg,
    )
    .unwrap();
    assert!((direct[10] - split.points[10].mean).abs() < 1e-9);
    assert_eq!(
        forecast_method(&series(queue.clone()), &horizon, Method::AggregateSplit, &cfg)
            .unwrap_err()
            .param(),
        "method"
    );
    // A misaligned or smaller aggregate is refused, naming the parameter.
    let mut short = agg.clone();
    short.points.pop();
    let err = forecast_with_aggregate(&series(queue.clone()), Some(&short), &horizon, &cfg).unwrap_err();
    assert_eq!(err.param(), "aggregate");
    let busy = queue.iter().position(|p| p.count >= 1.0).unwrap();
    let mut smaller = agg.clone();
    smaller.points[busy].count = queue[busy].count - 1.0;
    let err = forecast_with_aggregate(&series(queue), Some(&smaller), &horizon, &cfg).unwrap_err();
    assert_eq!(err.param(), "aggregate");
}

#[test]
fn invalid_series_name_the_parameter() {
    let cfg = ForecastConfig::default();
    let h = [HorizonSlot {
        weekday: 0,
        slot: 0,
        multiplier: 1.0,
    }];
    let bad_interval = Series {
        interval_s: 600,
        points: Vec::new(),
    };
    assert_eq!(forecast(&bad_interval, &h, &cfg).unwrap_err().param(), "interval_s");
    let p = |weekday, slot, count| Point {
        weekday,
        slot,
        count,
        special: Special::Normal,
    };
    assert_eq!(
        forecast(&series(vec![p(7, 0, 1.0)]), &h, &cfg).unwrap_err().param(),
        "weekday"
    );
    assert_eq!(
        forecast(&series(vec![p(0, 48, 1.0)]), &h, &cfg).unwrap_err().param(),
        "slot"
    );
    assert_eq!(
        forecast(&series(vec![p(0, 0, f64::NAN)]), &h, &cfg)
            .unwrap_err()
            .param(),
        "count"
    );
    let neg = [HorizonSlot {
        weekday: 0,
        slot: 0,
        multiplier: -1.0,
    }];
    assert_eq!(
        forecast(&series(vec![p(0, 0, 1.0)]), &neg, &cfg).unwrap_err().param(),
        "multiplier"
    );
}
