//! End to end: the real `cxlake` binary, real HTTP, real files.
//!
//! - SIGKILL during ingest (and during flushes) loses no acknowledged event,
//!   stores none twice, and retried batches add nothing;
//! - the lake's files are plain Parquet that a second reader (the `parquet`
//!   crate alone, via the Delta log's file list) reads back;
//! - the HTTP contract of `/v1/events`, `/v1/sql`, `/v1/schema/events`,
//!   `/healthz` and `/metrics`.

use crate::support;

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::{Server, conversation_events, create_key};

const TENANT: &str = "acme";

fn batch_body(batch: usize, conversations: usize) -> (String, Vec<String>) {
    let mut lines = Vec::new();
    for c in 0..conversations {
        lines.extend(conversation_events(TENANT, batch * 1000 + c));
    }
    let ids = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["event_id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    (lines.join("\n"), ids)
}

fn post(server: &Server, key: &str, body: &[u8], extra: &[(&str, &str)]) -> std::io::Result<support::Response> {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-ndjson"),
    ];
    headers.extend_from_slice(extra);
    server.request("POST", "/v1/events", &headers, body)
}

fn count_events(server: &Server, key: &str) -> (u64, u64) {
    let v = server.sql(key, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events");
    (
        v["rows"][0][0].as_u64().unwrap_or(0),
        v["rows"][0][1].as_u64().unwrap_or(0),
    )
}

/// Files of the current Delta version, from the JSON commits of `_delta_log`.
fn active_lake_files(table: &Path) -> Vec<std::path::PathBuf> {
    let log = table.join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    assert!(
        !std::fs::read_dir(&log)
            .map(|d| d
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("checkpoint")))
            .unwrap_or(false),
        "this reader only follows JSON commits; keep the test below the checkpoint interval"
    );
    let mut files = BTreeSet::new();
    for c in commits {
        for line in std::fs::read_to_string(&c).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if let Some(p) = v["add"]["path"].as_str() {
                files.insert(percent_decode(p));
            }
            if let Some(p) = v["remove"]["path"].as_str() {
                files.remove(&percent_decode(p));
            }
        }
    }
    files.into_iter().map(|p| table.join(p)).collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `event_id` of every row of the given Parquet files with the
/// `parquet` crate alone.
fn read_event_ids(files: &[std::path::PathBuf]) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let mut ids = Vec::new();
    for f in files {
        let file = std::fs::File::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let reader = SerializedFileReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let meta = reader.metadata();
        for rg in meta.row_groups() {
            for col in rg.columns() {
                assert!(
                    matches!(col.compression(), parquet::basic::Compression::ZSTD(_)),
                    "{} is zstd-compressed",
                    f.display()
                );
            }
        }
        let schema = meta.file_metadata().schema_descr();
        let idx = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == "event_id")
            .unwrap_or_else(|| panic!("no event_id"));
        let projection = parquet::schema::types::Type::group_type_builder(schema.root_schema().name())
            .with_fields(vec![schema.column(idx).self_type_ptr()])
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        for row in reader.get_row_iter(Some(projection)).unwrap_or_else(|e| panic!("{e}")) {
            let row = row.unwrap_or_else(|e| panic!("{e}"));
            ids.push(row.get_string(0).cloned().unwrap_or_default());
        }
    }
    ids
}

#[test]
fn sigkill_during_ingest_loses_nothing_acknowledged_and_retries_add_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, "*", "admin");
    // Frequent flushes (every ~5 batches, and by age), so kills also land
    // in the middle of lake commits.
    let env = [("CXLAKE_FLUSH_MAX_AGE_S", "0.2"), ("CXLAKE_FLUSH_MAX_EVENTS", "1000")];
    const BATCHES: usize = 90;
    const CONVS: usize = 50; // 200 events per batch
    let bodies: Vec<(String, Vec<String>)> = (0..BATCHES).map(|b| batch_body(b, CONVS)).collect();
    let all_ids: HashSet<String> = bodies.iter().flat_map(|(_, ids)| ids.iter().cloned()).collect();
    assert_eq!(all_ids.len(), BATCHES * CONVS * 4);

    let acked: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; BATCHES]));
    let mut killed_while_in_flight = 0;
    // Rounds: send every batch not yet acknowledged (plus, from round 2 on,
    // a few acknowledged ones again as retries), SIGKILL the server part-way.
    for round in 0..3 {
        let mut server = Server::start(&data, &env);
        let sent = Arc::new(AtomicUsize::new(0));
        let addr_key = (server.addr.clone(), key.clone());
        let mut workers = Vec::new();
        for w in 0..2 {
            let bodies = bodies.clone();
            let acked = acked.clone();
            let sent = sent.clone();
            let (addr, key) = addr_key.clone();
            workers.push(std::thread::spawn(move || {
                let mut dup_checks = 0;
                for (b, (body, ids)) in bodies.iter().enumerate().filter(|(b, _)| b % 2 == w) {
                    let was_acked = acked.lock().map(|a| a[b]).unwrap_or(false);
                    if was_acked && !(round > 0 && b % 5 == 0) {
                        continue;
                    }
                    let auth = format!("Bearer {key}");
                    let r = support::http(
                        &addr,
                        "POST",
                        "/v1/events",
                        &[("Authorization", &auth)],
                        body.as_bytes(),
                    );
                    sent.fetch_add(1, Ordering::SeqCst);
                    let Ok(r) = r else { break }; // the server died under us
                    if r.status != 200 {
                        break;
                    }
                    let v = r.json();
                    let accepted = v["accepted"].as_u64().unwrap_or(0) as usize;
                    let duplicates = v["duplicates"].as_u64().unwrap_or(0) as usize;
                    assert_eq!(accepted + duplicates, ids.len(), "{v}");
                    if was_acked {
                        assert_eq!(duplicates, ids.len(), "a retried acknowledged batch adds nothing: {v}");
                        dup_checks += 1;
                    }
                    if let Ok(mut a) = acked.lock() {
                        a[b] = true;
                    }
                }
                dup_checks
            }));
        }
        if round < 2 {
            // Kill once a third of this round's batches went out, mid-stream.
            while sent.load(Ordering::SeqCst) < 25 + 10 * round {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            server.kill();
            killed_while_in_flight += 1;
        }
        let dup_checks: usize = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .sum();
        if round == 2 {
            assert!(dup_checks > 0, "the last round re-sends acknowledged batches");
            // Every batch is acknowledged now; die without a graceful flush.
            server.kill();
        }
    }
    assert_eq!(killed_while_in_flight, 2);
    assert!(
        acked.lock().map(|a| a.iter().all(|&x| x)).unwrap_or(false),
        "every batch acknowledged in the end"
    );

    // After the last SIGKILL the WAL replay must bring back whatever the lake lacks.
    let mut server = Server::start(&data, &env);
    let (n, distinct) = count_events(&server, &key);
    assert_eq!(
        (n, distinct),
        (all_ids.len() as u64, all_ids.len() as u64),
        "each acknowledged event exactly once"
    );
    let v = server.sql(&key, "SELECT event_id FROM events");
    let got: HashSet<String> = v["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x[0].as_str().map(String::from)).collect())
        .unwrap_or_default();
    assert_eq!(got, all_ids);

    // Graceful stop flushes everything; the lake alone then holds each event once.
    server.stop();
    let ids = read_event_ids(&active_lake_files(&data.join("lake").join("events")));
    assert_eq!(ids.len(), all_ids.len(), "the lake holds every event once");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), all_ids);
}

fn metric(server: &Server, name: &str) -> u64 {
    let text = server
        .request("GET", "/metrics", &[], b"")
        .map(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// Waits (bounded) until a counter reaches `at_least`; a condition, not a timing assertion.
fn wait_for_metric(server: &Server, name: &str, at_least: u64) {
    for _ in 0..600 {
        if metric(server, name) >= at_least {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{name} never reached {at_least} (now {})", metric(server, name));
}

#[test]
fn lake_files_are_plain_parquet_sorted_by_conversation_and_time_and_compacted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    // Every request of 20 events is flushed on its own, so one partition
    // collects small files until compaction rewrites it.
    let env = [("CXLAKE_FLUSH_MAX_EVENTS", "20"), ("CXLAKE_COMPACT_MIN_FILES", "3")];
    let mut server = Server::start(&data, &env);
    // Conversations arrive in reverse order so sorting is visible.
    for (i, chunk) in (0..30).rev().collect::<Vec<_>>().chunks(5).enumerate() {
        let lines: Vec<String> = chunk.iter().flat_map(|&c| conversation_events(TENANT, c)).collect();
        let r = post(&server, &key, lines.join("\n").as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{}", r.text());
        wait_for_metric(&server, "cxlake_flushed_events_total", 20 * (i as u64 + 1));
    }
    assert!(
        metric(&server, "cxlake_compactions_total") >= 1,
        "six flushes into one partition trigger compaction"
    );
    let (n, distinct) = count_events(&server, &key);
    assert_eq!(
        (n, distinct),
        (120, 120),
        "compaction neither loses nor duplicates rows"
    );
    server.stop();

    let table = data.join("lake").join("events");
    let files = active_lake_files(&table);
    assert!(files.len() < 6, "compaction merged the small files: {files:?}");
    for f in &files {
        let rel = f.strip_prefix(&table).unwrap_or(f).to_string_lossy().into_owned();
        assert!(
            rel.starts_with("tenant_id=acme/event_date="),
            "Hive-style partition path: {rel}"
        );
    }
    let ids = read_event_ids(&files);
    assert_eq!(ids.len(), 120);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 120);
    // Within each file: conversation c<n> rows are contiguous and in time order
    // (event ids c<n>-1..4 were written in occurrence order).
    for f in &files {
        let mut last: Option<(String, u32)> = None;
        for id in read_event_ids(std::slice::from_ref(f)) {
            let (conv, seq) = id
                .rsplit_once('-')
                .map(|(c, s)| (c.to_string(), s.parse::<u32>().unwrap_or(0)))
                .unwrap_or_default();
            if let Some((lc, ls)) = &last {
                assert!(
                    conv > *lc || (conv == *lc && seq > *ls),
                    "{}: {id} after {lc}-{ls}",
                    f.display()
                );
            }
            last = Some((conv, seq));
        }
    }
}

#[test]
fn http_contract() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let admin = create_key(&data, TENANT, "admin");
    let analyst = create_key(&data, TENANT, "analyst");
    let server = Server::start(&data, &[("CXLAKE_MAX_BODY_BYTES", "200000")]);
    let good = conversation_events(TENANT, 1);

    // Health and metrics need no key; everything under /v1 does.
    assert_eq!(
        server
            .request("GET", "/healthz", &[], b"")
            .map(|r| r.status)
            .unwrap_or(0),
        200
    );
    let r = server
        .request("POST", "/v1/events", &[], good[0].as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = post(&server, "cxk_0000_0000", good[0].as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401);
    let r = post(&server, &analyst, good[0].as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 403, "analysts do not send events");

    // Partial acceptance: the valid lines go in, the bad ones are reported.
    let other_tenant = good[1].replace("\"acme\"", "\"globex\"").replace("c1-2", "x1");
    let body = format!("{}\n{{oops\n{}\n{}", good[0], other_tenant, good[1]);
    let r = post(&server, &admin, body.as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"][0]["line"], 2);
    assert_eq!(v["rejected"][1]["line"], 3);
    assert_eq!(v["rejected"][1]["field"], "tenant_id");

    // Freshness: acknowledged events are queryable at once, before any flush.
    let v = server.sql(
        &admin,
        "SELECT event_id, type, occurred_at FROM events ORDER BY event_id",
    );
    assert_eq!(v["rows"][0][0], "c1-1");
    assert_eq!(v["rows"][1][1], "message.created");
    assert_eq!(v["columns"][2]["name"], "occurred_at");

    // Atomic batches: one bad line rejects all.
    let body = format!("{}\n{{\"event_id\":\"x\"}}", good[2]);
    let r = post(&server, &admin, body.as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    let r = server
        .request(
            "POST",
            "/v1/events?atomic=true",
            &[("Authorization", &format!("Bearer {admin}"))],
            format!("{}\n{{}}", good[3]).as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["accepted"], 0);
    let v = server.sql(&admin, "SELECT count(*) FROM events WHERE event_id = 'c1-4'");
    assert_eq!(v["rows"][0][0], 0, "nothing of the atomic batch was stored");

    // Compressed bodies.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(good[3].as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let gz = gz.finish().unwrap_or_default();
    let r = post(&server, &admin, &gz, &[("Content-Encoding", "gzip")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(1)));
    let more = conversation_events(TENANT, 2).join("\n");
    let zs = zstd::encode_all(more.as_bytes(), 3).unwrap_or_default();
    let r = post(&server, &admin, &zs, &[("Content-Encoding", "zstd")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(4)));
    let r = post(&server, &admin, &zs, &[("Content-Encoding", "br")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 415);

    // Body limits, raw and after decompression.
    let big = "x".repeat(300_000);
    let r = post(&server, &admin, big.as_bytes(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 413);
    let bomb = zstd::encode_all(&vec![b'\n'; 1_000_000][..], 3).unwrap_or_default();
    let r = post(&server, &admin, &bomb, &[("Content-Encoding", "zstd")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 413);

    // SQL: CSV, read-only, errors.
    let auth = format!("Bearer {admin}");
    let r = server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &auth), ("Accept", "text/csv")],
            br#"{"sql":"SELECT event_id, channel FROM events WHERE type = 'conversation.started' ORDER BY event_id"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "event_id,channel\nc1-1,whatsapp\nc2-1,whatsapp\n");
    // Every column type streams as CSV; a list (tags) as its JSON text.
    let r = server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &auth), ("Accept", "text/csv")],
            br#"{"sql":"SELECT * FROM events ORDER BY event_id"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let csv = r.text();
    assert!(csv.lines().next().is_some_and(|h| h.contains("tags")), "{csv}");
    assert!(csv.lines().count() > 2, "{csv}");
    for stmt in [
        "INSERT INTO events (event_id) VALUES ('x')",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "DROP TABLE events",
        "SET datafusion.execution.batch_size = 1",
        "COPY events TO '/tmp/out.parquet'",
    ] {
        let body = serde_json::json!({ "sql": stmt }).to_string();
        let r = server
            .request("POST", "/v1/sql", &[("Authorization", &auth)], body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.status == 403 || r.status == 400, "{stmt}: {} {}", r.status, r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{stmt}");
    }
    let r = server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &auth)],
            br#"{"sql":"SELECT nope FROM events"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap_or_default().contains("nope"));
    let r = server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &format!("Bearer {analyst}"))],
            br#"{"sql":"SELECT 1 AS one"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.status,
        200,
        "analyst keys run SQL over their own tenant: {}",
        r.text()
    );

    // The published schema and the metrics.
    let r = server
        .request("GET", "/v1/schema/events", &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["properties"]["channel"]["enum"][0], "whatsapp");
    let m = server
        .request("GET", "/metrics", &[], b"")
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    assert!(m.contains("cxlake_events_accepted_total 8"), "{m}");
    assert!(m.contains("cxlake_wal_fsync_seconds_count"), "{m}");

    // Chatwoot webhooks: the key may ride in the URL (Chatwoot sends no headers).
    let hook = br#"{"event":"message_created","id":77,"content":"hi","created_at":"2026-03-03 13:05:57 UTC","message_type":"incoming","private":false,"sender":{"id":9,"type":"contact"},"account":{"id":1,"name":"Acme"},"conversation":{"id":5,"inbox_id":2,"channel":"Channel::Whatsapp","contact_inbox":{"contact_id":9}}}"#;
    let path = format!("/v1/webhooks/chatwoot?key={admin}&account=1");
    let r = server
        .request("POST", &path, &[], hook)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(1)),
        "{}",
        r.text()
    );
    let r = server
        .request("POST", &path, &[], hook)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.json()["duplicates"], 1, "Chatwoot's retries are deduplicated");
    let r = server
        .request("POST", "/v1/webhooks/chatwoot", &[], hook)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401);
    let v = server.sql(
        &admin,
        "SELECT sender, channel, conversation_id FROM events WHERE event_id = 'cw-1-msg-77'",
    );
    assert_eq!(v["rows"][0], serde_json::json!(["customer", "whatsapp", "cw-1-5"]));
}

/// Rows in a `/v1/sql` body of the given format, read back with the
/// format's own reader (CSV with quoted newlines, NDJSON line by line,
/// Arrow IPC and Parquet with arrow-rs).
fn rows_in(format: &str, body: &[u8]) -> usize {
    match format {
        "text/csv" => {
            let (schema, _) = arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(std::io::Cursor::new(body), None)
                .unwrap_or_else(|e| panic!("CSV header: {e}"));
            // Every column as text: the test checks the framing, not the types.
            let text = arrow::datatypes::Schema::new(
                schema
                    .fields()
                    .iter()
                    .map(|f| arrow::datatypes::Field::new(f.name(), arrow::datatypes::DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            arrow::csv::ReaderBuilder::new(Arc::new(text))
                .with_header(true)
                .build(std::io::Cursor::new(body))
                .unwrap_or_else(|e| panic!("CSV: {e}"))
                .map(|b| b.unwrap_or_else(|e| panic!("CSV row: {e}")).num_rows())
                .sum()
        }
        "application/x-ndjson" => body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .inspect(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_else(|e| panic!("NDJSON line: {e}"));
                assert!(v.is_object(), "{v}");
            })
            .count(),
        "application/vnd.apache.arrow.stream" => {
            let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
                .unwrap_or_else(|e| panic!("Arrow IPC: {e}"));
            reader
                .map(|b| b.unwrap_or_else(|e| panic!("Arrow batch: {e}")).num_rows())
                .sum()
        }
        "application/vnd.apache.parquet" => {
            let bytes = bytes::Bytes::copy_from_slice(body);
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap_or_else(|e| panic!("Parquet: {e}"))
                .build()
                .unwrap_or_else(|e| panic!("Parquet: {e}"))
                .map(|b| b.unwrap_or_else(|e| panic!("Parquet batch: {e}")).num_rows())
                .sum()
        }
        other => panic!("unknown format {other}"),
    }
}

#[test]
fn every_table_and_column_type_exports_in_every_format_or_fails_before_the_first_byte() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let admin = create_key(&data, TENANT, "admin");
    support::generate_and_ingest(&dir.path().join("traffic.ndjson"), &data, 2, "2026-03-02", 60, 5);
    let server = Server::start(&data, &[]);
    let tenant_key = create_key(&data, "dragon-mart", "analyst");
    let formats = [
        "text/csv",
        "application/x-ndjson",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    ];
    let query = |key: &str, accept: &str, sql: &str| {
        let body = serde_json::json!({ "sql": sql }).to_string();
        server
            .request(
                "POST",
                "/v1/sql",
                &[("Authorization", &format!("Bearer {key}")), ("Accept", accept)],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
    };
    for table in [
        "events",
        "conversations",
        "messages",
        "orders",
        "agent_sessions",
        "exposures",
    ] {
        let n = query(
            &tenant_key,
            "application/json",
            &format!("select count(*) from {table}"),
        )
        .json()["rows"][0][0]
            .as_u64()
            .unwrap_or_else(|| panic!("count of {table}")) as usize;
        assert!(n > 0 || table == "exposures", "{table} holds rows to export");
        for format in formats {
            eprintln!("export {table} as {format}");
            let r = query(&tenant_key, format, &format!("select * from {table}"));
            assert_eq!(r.status, 200, "{table} as {format}: {}", r.text());
            assert_eq!(rows_in(format, &r.body), n, "{table} as {format}");
        }
    }
    // Types no table has today but a query can build: each format either
    // streams the row or refuses with a problem before the first byte.
    let odd = "select interval '1 day 2 hours' as i, arrow_cast(5, 'Duration(Second)') as d, \
               arrow_cast(1.25, 'Decimal128(10,2)') as m, map(['a'], [1]) as mp, \
               named_struct('x', 1, 'y', 'z') as s, [[1, 2], [3]] as l, arrow_cast('ab', 'Binary') as b, \
               date '2026-01-01' as dt, arrow_cast(0, 'Time64(Microsecond)') as t, \
               arrow_cast(now(), 'Timestamp(Microsecond, Some(\"+08:00\"))') as ts, \
               true as ok, arrow_cast('NaN', 'Float64') as f, null as nothing";
    for format in formats {
        eprintln!("export of unusual types as {format}");
        let r = query(&admin, format, odd);
        match r.status {
            200 => assert_eq!(rows_in(format, &r.body), 1, "{format}: {}", r.text()),
            _ => assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{format}: {}",
                r.text()
            ),
        }
    }
}
