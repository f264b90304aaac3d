//! Crash safety of the real binary: the server is SIGKILLed at random
//! moments while several clients post batches and retry them until they
//! are acknowledged, some giving up on a request after 50 ms and sending it
//! again at once (so a copy arrives while the first is still in flight).
//! At the end every acknowledged event is in SQL exactly once.
//!
//! `CXLAKE_KILL_CYCLES` sets the number of kills (default 20);
//! `bench/kill_loop.sh` runs a long series and prints the figures.

use crate::support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Server, chrono_like, create_key};

const TENANT: &str = "acme";
const CLIENTS: usize = 3;
const BATCH: usize = 20;

/// A small xorshift: the test needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn batch(client: usize, n: u64) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..BATCH).map(|i| format!("k{client}-{n}-{i}")).collect();
    let body = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                r#"{{"event_id":"{id}","tenant_id":"{TENANT}","type":"conversation.started","occurred_at":"{}","conversation_id":"{id}","channel":"webchat"}}"#,
                chrono_like(1_772_000_000 + (n as i64) * 60 + i as i64)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (ids, body)
}

/// Posts once; `Some(status)` when an answer came within `patience`.
fn post(addr: &str, key: &str, body: &str, patience: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(patience)).ok()?;
    let req = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let head = String::from_utf8_lossy(&raw);
    head.split(' ').nth(1)?.parse().ok()
}

#[derive(Default)]
struct Tally {
    acked: Mutex<HashSet<String>>,
    requests: AtomicU64,
    abandoned: AtomicU64,
}

#[test]
fn every_acknowledged_event_survives_random_kills_exactly_once() {
    let cycles: u64 = std::env::var("CXLAKE_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    // Small flushes so kills land before, during and after commits too.
    let env = [("CXLAKE_FLUSH_MAX_EVENTS", "200"), ("CXLAKE_FLUSH_MAX_AGE_S", "0.3")];
    let started = Instant::now();
    let mut server = Server::start(&data, &env);
    let addr = Arc::new(Mutex::new(server.addr.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, stop, tally, key) = (addr.clone(), stop.clone(), tally.clone(), key.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1) * 0x1234_5678);
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let (ids, body) = batch(c, n);
                    // Retry this batch until it is acknowledged.
                    loop {
                        let now = addr.lock().map(|a| a.clone()).unwrap_or_default();
                        let impatient = rng.below(4) == 0;
                        let patience = if impatient {
                            Duration::from_millis(50)
                        } else {
                            Duration::from_secs(30)
                        };
                        tally.requests.fetch_add(1, Ordering::Relaxed);
                        match post(&now, &key, &body, patience) {
                            Some(200) => {
                                let mut acked = tally.acked.lock().unwrap_or_else(|p| p.into_inner());
                                acked.extend(ids.iter().cloned());
                                break;
                            }
                            Some(status) => assert!(status == 503, "unexpected status {status}"),
                            None => {
                                if impatient {
                                    tally.abandoned.fetch_add(1, Ordering::Relaxed);
                                }
                                std::thread::sleep(Duration::from_millis(rng.below(20)));
                            }
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();

    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        server.kill();
        server = Server::start(&data, &env);
        *addr.lock().unwrap_or_else(|p| p.into_inner()) = server.addr.clone();
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap_or_else(|_| panic!("a client panicked"));
    }

    let acked = tally.acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let rows = server.sql(&key, "SELECT event_id, count(*) AS n FROM events GROUP BY event_id");
    let mut in_sql = HashSet::new();
    for row in rows["rows"].as_array().cloned().unwrap_or_default() {
        let id = row[0].as_str().unwrap_or_default().to_string();
        assert_eq!(row[1].as_i64(), Some(1), "{id} is stored more than once");
        in_sql.insert(id);
    }
    let lost: Vec<&String> = acked.difference(&in_sql).take(5).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Unacknowledged copies of an acknowledged batch are the same ids; an
    // id the server holds was always acknowledged in the end.
    let extra: Vec<&String> = in_sql.difference(&acked).take(5).collect();
    assert!(extra.is_empty(), "stored but never acknowledged: {extra:?}");
    // Each start moves what it replayed into the lake before it takes new
    // events, so the log does not pile up from one crash to the next.
    let segments = std::fs::read_dir(data.join("wal")).map(|d| d.count()).unwrap_or(0);
    assert!(
        segments <= 8,
        "{segments} WAL segments left: recovery does not converge"
    );
    println!(
        "kill loop: {cycles} SIGKILLs in {:.1} s, {} events acknowledged, {} requests ({} abandoned after 50 ms), every event in SQL exactly once, {} WAL segments left",
        started.elapsed().as_secs_f64(),
        acked.len(),
        tally.requests.load(Ordering::Relaxed),
        tally.abandoned.load(Ordering::Relaxed),
        segments,
    );
}
