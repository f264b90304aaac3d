//! The sketch against exact `percentile_cont`, and merging.

use super::sketch::{RELATIVE_ERROR, Sketch, SketchAcc, ZERO_BELOW};

/// PostgreSQL's `percentile_cont` over exact values.
fn percentile_cont(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let h = q * (v.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// A small deterministic generator (xorshift), no dependency.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn close(estimate: f64, exact: f64) -> bool {
    (estimate - exact).abs() <= RELATIVE_ERROR * exact.abs() + ZERO_BELOW + 1e-12
}

#[test]
fn quantiles_are_within_the_documented_relative_error() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for (name, n) in [("tiny", 1), ("two", 2), ("small", 7), ("large", 20_000)] {
        // bot replies of 1–5 s mixed with human replies of minutes to hours
        let values: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    1.0 + 4.0 * rng.next_f64()
                } else {
                    (rng.next_f64() * 10.0).exp() * 0.5
                }
            })
            .collect();
        let mut acc = SketchAcc::default();
        for v in &values {
            acc.add(*v);
        }
        let mut exact = acc.clone();
        acc.approximate();
        for q in [0.0, 0.5, 0.9, 0.37, 1.0] {
            assert_eq!(
                exact.quantile(q),
                Some(percentile_cont(&values, q)),
                "exact while small"
            );
        }
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let (est, exact) = (acc.quantile(q).unwrap(), percentile_cont(&values, q));
            assert!(close(est, exact), "{name} q={q}: {est} vs {exact}");
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((acc.mean().unwrap() - mean).abs() <= 1e-9 * mean.abs());
    }
}

#[test]
fn merged_sparse_sketches_answer_like_one_sketch_of_all_values() {
    let mut rng = Rng(42);
    let values: Vec<f64> = (0..5000).map(|_| (rng.next_f64() * 8.0).exp() - 3.0).collect();
    let mut parts = vec![Sketch::default(); 24];
    let mut whole = SketchAcc::default();
    for (i, v) in values.iter().enumerate() {
        parts[i % 24].add(*v);
        whole.add(*v);
    }
    whole.approximate();
    let mut merged = SketchAcc::default();
    for p in &parts {
        merged.merge(p);
    }
    assert_eq!(merged.count(), values.len() as u64);
    for q in [0.1, 0.5, 0.9] {
        assert_eq!(merged.quantile(q), whole.quantile(q));
        let exact = percentile_cont(&values, q);
        // negative and positive values: the interpolation can straddle 0
        let est = merged.quantile(q).unwrap();
        assert!(
            (est - exact).abs() <= RELATIVE_ERROR * exact.abs().max(1.0) + ZERO_BELOW,
            "q={q}: {est} vs {exact}"
        );
    }
}

#[test]
fn zero_and_empty() {
    let mut acc = SketchAcc::default();
    assert_eq!(acc.quantile(0.5), None);
    assert_eq!(acc.mean(), None);
    let mut acc = SketchAcc::default();
    for v in [0.0, 0.0, 0.0000001, 2.0] {
        acc.add(v);
    }
    acc.approximate();
    assert_eq!(acc.quantile(0.5), Some(0.0));
    assert!(close(acc.quantile(1.0).unwrap(), 2.0));
}

/// A rollup holds a fact per conversation, a million of them at once at
/// the 1M benchmark: NULLs are sentinels and the id lists one allocation
/// (it was 264 bytes with `Option`s and three lists).
#[test]
fn a_fact_stays_small() {
    assert!(
        std::mem::size_of::<super::Fact>() <= 184,
        "{}",
        std::mem::size_of::<super::Fact>()
    );
}
