//! Generator throughput: events per second on one core, written to a sink
//! that discards the bytes (or to stdout with `--stdout`).
//!
//! `cargo run --release -p datagen --example bench_gen -- [conversations_per_day] [days]`
//! (defaults 100000 and 3). Prints figures; asserts nothing.

use std::io::{self, Write};
use std::time::Instant;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let to_stdout = args.iter().any(|a| a == "--stdout");
    let nums: Vec<f64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let per_day = nums.first().copied().unwrap_or(100_000.0);
    let days = nums.get(1).copied().unwrap_or(3.0) as u32;
    let cfg = datagen::GenConfig::demo_with(1, days, per_day);
    let start = Instant::now();
    let stats = if to_stdout {
        let stdout = io::stdout();
        let mut lock = io::BufWriter::with_capacity(1 << 20, stdout.lock());
        datagen::generate(&cfg, &mut lock)?
    } else {
        datagen::generate(&cfg, &mut io::sink())?
    };
    let secs = start.elapsed().as_secs_f64();
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "datagen bench: demo tenants, {per_day} conversations/day x {days} days, seed 1, one thread, output {}",
        if to_stdout { "stdout" } else { "discarded (io::sink)" }
    )?;
    write!(err, "{stats}")?;
    writeln!(
        err,
        "{:.2} s, {:.0} events/s, {:.0} conversations/s, {:.1} MB/s, {:.0} bytes/event",
        secs,
        stats.events as f64 / secs,
        stats.conversations as f64 / secs,
        stats.bytes as f64 / secs / 1e6,
        stats.bytes as f64 / stats.events.max(1) as f64
    )?;
    Ok(())
}
