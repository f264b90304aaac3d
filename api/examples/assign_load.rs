//! Load generator for the HTTP assignment benchmark.
//!
//! Sends `GET /v1/experiments/{key}/assignment?unit=cus_N` at a fixed
//! arrival rate (`--rate` requests per second, open loop) for `--seconds`
//! over `--connections` keep-alive HTTP/1.1 connections to a loopback
//! `cxlake serve`. Every connection owns an equal share of the schedule;
//! latency is measured from the *scheduled* send time to the full response,
//! so a stalled server shows up in the percentiles (no coordinated
//! omission). `--query` appends targeting attributes (e.g.
//! `channel=whatsapp`). Prints achieved requests/s, how many answers put the
//! unit in the experiment, and p50 / p90 / p99 / max latency as
//! JSON; any non-2xx answer aborts the run.
//!
//! ```text
//! cargo run --release -p api --example assign_load -- \
//!     --addr 127.0.0.1:8080 --key cxk_... --experiment greeting_v2 \
//!     --rate 5000 --seconds 20 --connections 32
//! ```

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Args {
    addr: String,
    key: String,
    experiment: String,
    tenant: Option<String>,
    query: String,
    rate: f64,
    seconds: f64,
    connections: usize,
    warmup: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        key: String::new(),
        experiment: String::new(),
        tenant: None,
        query: String::new(),
        rate: 5000.0,
        seconds: 20.0,
        connections: 32,
        warmup: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--key" => a.key = value()?,
            "--experiment" => a.experiment = value()?,
            "--tenant" => a.tenant = Some(value()?),
            "--query" => a.query = value()?,
            "--rate" => a.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--connections" => a.connections = value()?.parse().map_err(|e| format!("--connections: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.key.is_empty() || a.experiment.is_empty() {
        return Err(
            "usage: assign_load --addr HOST:PORT --key KEY --experiment KEY [--tenant T] \
             [--query channel=whatsapp] [--rate 5000] [--seconds 20] [--warmup 2] [--connections 32]"
                .into(),
        );
    }
    if !(a.rate > 0.0 && a.seconds > 0.0 && a.seconds <= 600.0 && a.connections > 0) {
        return Err("--rate must be > 0, --seconds in (0, 600], --connections > 0".into());
    }
    let host = a.addr.split(':').next().unwrap_or_default();
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err("assign_load only targets a loopback address".into());
    }
    Ok(a)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let auth = format!("Bearer {}", args.key);
    let mut tenant = args.tenant.as_ref().map(|t| format!("&tenant={t}")).unwrap_or_default();
    if !args.query.is_empty() {
        tenant = format!("{tenant}&{}", args.query);
    }
    // Each connection sends every `connections`-th request of the global
    // schedule, so the union is `rate` requests per second.
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let total_per_conn = ((args.rate * (args.seconds + args.warmup)) / args.connections as f64).ceil() as u64;
    let warmup = Duration::from_secs_f64(args.warmup);
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (auth, addr, tenant) = (auth.clone(), args.addr.clone(), tenant.clone());
        let path_prefix = format!("/v1/experiments/{}/assignment?unit=cus_", args.experiment);
        let offset = interval.mul_f64(c as f64 / args.connections as f64);
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(total_per_conn as usize);
            let mut assigned = 0usize;
            for i in 0..total_per_conn {
                let scheduled = start + offset + interval.mul_f64(i as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let unit = i * 1_000 + c as u64;
                let req = Request::get(format!("{path_prefix}{unit}{tenant}"))
                    .header("host", &addr)
                    .header("authorization", &auth)
                    .body(Empty::<Bytes>::new())?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                let done = Instant::now();
                if !status.is_success() {
                    return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
                }
                if scheduled >= start + warmup {
                    latencies.push((scheduled, done, done - scheduled));
                    let needle: &[u8] = b"\"in_experiment\":true";
                    assigned += usize::from(bytes.windows(needle.len()).any(|w| w == needle));
                }
            }
            Ok::<_, BoxError>((latencies, assigned))
        }));
    }
    let mut samples = Vec::new();
    let mut assigned = 0;
    for t in tasks {
        let (s, a) = t.await?.map_err(|e| e.to_string())?;
        samples.extend(s);
        assigned += a;
    }
    let first = samples.iter().map(|s| s.0).min().ok_or("no samples")?;
    let last = samples.iter().map(|s| s.1).max().ok_or("no samples")?;
    let elapsed = (last - first).as_secs_f64();
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.2).collect();
    latencies.sort();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(latencies.len().saturating_sub(1));
        latencies.get(idx).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    };
    let out = serde_json::json!({
        "target_rps": args.rate,
        "connections": args.connections,
        "measured_requests": latencies.len(),
        "in_experiment": assigned,
        "warmup_s": args.warmup,
        "elapsed_s": elapsed,
        "achieved_rps": latencies.len() as f64 / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
    });
    println!("{out}");
    Ok(())
}
