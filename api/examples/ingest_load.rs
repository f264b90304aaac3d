//! Load generator for the durable-ingest benchmark (`bench/ingest.sh`).
//!
//! Reads an NDJSON file, cuts it into batches of `--batch` lines and sends
//! every batch once to `POST /v1/events` over `--connections` keep-alive
//! HTTP/1.1 connections. Prints events/s acknowledged and the p50 / p99 /
//! max acknowledgement latency (send to full response) as JSON.
//!
//! ```text
//! cargo run --release -p api --example ingest_load -- \
//!     --addr 127.0.0.1:8080 --key cxk_... --file events.ndjson
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

struct Args {
    addr: String,
    key: String,
    file: String,
    batch: usize,
    connections: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        key: String::new(),
        file: String::new(),
        batch: 1000,
        connections: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--key" => a.key = value()?,
            "--file" => a.file = value()?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--connections" => a.connections = value()?.parse().map_err(|e| format!("--connections: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.key.is_empty() || a.file.is_empty() {
        return Err(
            "usage: ingest_load --addr HOST:PORT --key KEY --file EVENTS.ndjson [--batch 1000] [--connections 16]"
                .into(),
        );
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let text = std::fs::read(&args.file)?;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let bodies: Vec<(Bytes, usize)> = lines
        .chunks(args.batch)
        .map(|c| (Bytes::from(c.join(&b'\n')), c.len()))
        .collect();
    let total_events: usize = bodies.iter().map(|b| b.1).sum();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let auth = format!("Bearer {}", args.key);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (bodies, next, auth, addr) = (bodies.clone(), next.clone(), auth.clone(), args.addr.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut accepted = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, _)) = bodies.get(i) else { break };
                let req = Request::post("/v1/events")
                    .header("host", &addr)
                    .header("authorization", &auth)
                    .header("content-type", "application/x-ndjson")
                    .body(Full::new(body.clone()))?;
                let t = Instant::now();
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                latencies.push(t.elapsed());
                if !status.is_success() {
                    return Err(format!("batch {i}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
                }
                let v: serde_json::Value = serde_json::from_slice(&bytes)?;
                accepted += v["accepted"].as_u64().unwrap_or(0) as usize;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((latencies, accepted))
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut accepted = 0;
    for t in tasks {
        let (l, a) = t.await?.map_err(|e| e.to_string())?;
        latencies.extend(l);
        accepted += a;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(latencies.len().saturating_sub(1));
        latencies.get(idx).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    };
    let out = serde_json::json!({
        "events_sent": total_events,
        "events_accepted": accepted,
        "requests": latencies.len(),
        "batch": args.batch,
        "connections": args.connections,
        "elapsed_s": elapsed,
        "events_per_s": accepted as f64 / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    });
    println!("{out}");
    Ok(())
}
