//! Prints in-process assignments per second for `assign_variant`.
//!
//! Run: `cargo run --release -p experiments --example bench_assign`.
//! Method: 10 million pre-built unit ids of the form `customer-<n>` (so id
//! formatting is not measured), a 3-variant split, one thread, best of 5
//! passes; `std::hint::black_box` keeps the work from being optimised away.

use std::hint::black_box;
use std::time::Instant;

use experiments::assign_variant;

fn main() {
    const UNITS: usize = 10_000_000;
    let unit_ids: Vec<String> = (0..UNITS).map(|i| format!("customer-{i}")).collect();
    let weights = [0.5, 0.25, 0.25];
    let mut best_per_second = 0.0f64;
    for pass in 1..=5 {
        let start = Instant::now();
        let mut checksum = 0usize;
        for unit in &unit_ids {
            checksum += assign_variant(black_box("greeting-2025-06"), black_box(unit), &weights);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let per_second = UNITS as f64 / elapsed;
        best_per_second = best_per_second.max(per_second);
        println!(
            "pass {pass}: {UNITS} assignments in {elapsed:.3} s = {:.2} M/s (checksum {checksum})",
            per_second / 1e6
        );
    }
    println!(
        "best: {:.2} million assignments per second on one thread ({} variants, id length ~15 bytes)",
        best_per_second / 1e6,
        weights.len()
    );
}
