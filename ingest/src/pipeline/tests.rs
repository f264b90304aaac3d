//! The write path under faults: nothing acknowledged is lost, nothing is
//! stored twice, and the pipeline recovers once the fault clears.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::contract::EventType;
use crate::faults::Fault;

fn ev(id: &str) -> Event {
    Event {
        event_id: id.into(),
        tenant_id: "t".into(),
        event_type: EventType::ConversationStarted,
        // 2026-03-01: inside any timestamp window a test server uses.
        occurred_at_us: 1_772_323_200_000_000,
        conversation_id: Some(format!("c-{id}")),
        ..Default::default()
    }
}

fn lines(ids: &[&str]) -> Vec<(usize, Event)> {
    ids.iter().enumerate().map(|(i, id)| (i + 1, ev(id))).collect()
}

fn config(dir: &Path, faults: &Faults) -> IngestConfig {
    let mut cfg = IngestConfig::new(dir);
    // Flushes happen only when a test asks for one.
    cfg.flush_max_age = Duration::from_secs(3600);
    cfg.faults = faults.clone();
    cfg
}

async fn open(cfg: IngestConfig) -> Arc<Ingestor> {
    Ingestor::open(cfg, Arc::default())
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

/// Every event id in the lake and the buffer, with how often it is there.
async fn stored(ingestor: &Ingestor) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let view = ingestor.read_view();
    let mut count = |batch: &RecordBatch| {
        let idx = batch.schema().index_of("event_id").unwrap_or_else(|e| panic!("{e}"));
        let ids = arrow::compute::cast(batch.column(idx), &arrow::datatypes::DataType::Utf8)
            .unwrap_or_else(|e| panic!("{e}"));
        for id in ids.as_string::<i32>().iter().flatten() {
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
    };
    for b in &view.buffered {
        count(b);
    }
    if let Some(t) = &view.table {
        lake::scan(t, Some(&["event_id"]), None, |b| {
            count(&b);
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    counts
}

fn exactly_once(counts: &HashMap<String, usize>, ids: &[&str]) {
    let mut want: Vec<&str> = ids.to_vec();
    want.sort();
    let mut got: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    got.sort();
    assert_eq!(got, want.iter().map(|id| (*id, 1)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_copy_of_an_event_in_flight_is_answered_only_after_the_first_write_and_written_if_it_failed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let faults = Faults::default();
    let ingestor = open(config(dir.path(), &faults)).await;
    // The first write's fsync fails. Its concurrent copy must not be told
    // "duplicate" on the strength of a claim that never became durable.
    faults.arm(Fault::WalSync, 1);
    let (a, b) = tokio::join!(ingestor.ingest(lines(&["e1"])), ingestor.ingest(lines(&["e1"])));
    let outcomes = [a, b];
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    let accepted: usize = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|o| o.accepted)
        .sum();
    let duplicates: usize = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|o| o.duplicate_lines.len())
        .sum();
    assert_eq!(failed, 1, "{outcomes:?}");
    assert_eq!(
        (accepted, duplicates),
        (1, 0),
        "the copy that waited wrote the event itself: {outcomes:?}"
    );
    exactly_once(&stored(&ingestor).await, &["e1"]);

    // With no fault, one of two concurrent copies is written, the other is
    // a duplicate answered after it is durable.
    let (a, b) = tokio::join!(ingestor.ingest(lines(&["e2"])), ingestor.ingest(lines(&["e2"])));
    let (a, b) = (a.unwrap_or_else(|e| panic!("{e}")), b.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(a.accepted + b.accepted, 1);
    assert_eq!(a.duplicate_lines.len() + b.duplicate_lines.len(), 1);
    exactly_once(&stored(&ingestor).await, &["e1", "e2"]);
}

#[tokio::test]
async fn a_write_whose_client_hung_up_still_settles_its_event_ids() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let faults = Faults::default();
    let ingestor = open(config(dir.path(), &faults)).await;
    faults.arm(Fault::WalSync, 1);
    // The client gives up at once; the write goes on and fails.
    let abandoned = ingestor.ingest(lines(&["x1", "x2"]));
    drop(tokio::time::timeout(Duration::from_millis(0), abandoned).await);
    // Its retry is written, not answered "duplicate" by a leftover claim.
    let mut retry = None;
    for _ in 0..100 {
        let r = ingestor.ingest(lines(&["x1", "x2"])).await;
        if let Ok(o) = r {
            retry = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let retry = retry.unwrap_or_else(|| panic!("the retry never succeeded"));
    assert_eq!(retry.accepted + retry.duplicate_lines.len(), 2);
    exactly_once(&stored(&ingestor).await, &["x1", "x2"]);
    // A retry after success is a duplicate.
    let again = ingestor
        .ingest(lines(&["x1", "x2"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.accepted, again.duplicate_lines), (0, vec![1, 2]));
}

#[tokio::test]
async fn store_faults_lose_nothing_and_the_flusher_recovers() {
    for fault in [
        Fault::StorePut,
        Fault::StoreCommitLandsThenFails,
        Fault::StoreRename,
        Fault::DiskFull,
    ] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let faults = Faults::default();
        let mut all = Vec::new();
        {
            let ingestor = open(config(dir.path(), &faults)).await;
            ingestor
                .ingest(lines(&["a1", "a2"]))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
            all.extend(["a1", "a2"]);

            ingestor
                .ingest(lines(&["b1", "b2"]))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            all.extend(["b1", "b2"]);
            faults.arm(fault, if fault == Fault::DiskFull { u32::MAX } else { 1 });
            let first = ingestor.flush().await;
            if fault == Fault::DiskFull {
                assert!(first.is_err(), "{fault:?}: a full disk fails the flush");
                // Acknowledged events stay readable meanwhile.
                exactly_once(&stored(&ingestor).await, &all);
                faults.clear();
            }
            // The next rounds go through: no wedge on the WAL checkpoint.
            for _ in 0..3 {
                if ingestor.flush().await.is_ok() {
                    break;
                }
            }
            ingestor.ingest(lines(&["c1"])).await.unwrap_or_else(|e| panic!("{e}"));
            all.push("c1");
            ingestor
                .flush()
                .await
                .unwrap_or_else(|e| panic!("{fault:?}: the flusher must recover: {e}"));
            let counts = stored(&ingestor).await;
            assert!(ingestor.read_view().buffered.is_empty(), "{fault:?}: all in the lake");
            exactly_once(&counts, &all);
        }
        // After a restart: the same, and nothing replayed twice.
        let ingestor = open(config(dir.path(), &Faults::default())).await;
        exactly_once(&stored(&ingestor).await, &all);
    }
}

#[tokio::test]
async fn a_lake_that_falls_behind_answers_retry_later_instead_of_growing_without_bound() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let faults = Faults::default();
    let mut cfg = config(dir.path(), &faults);
    cfg.max_buffered_bytes = 1;
    let ingestor = open(cfg).await;
    faults.arm(Fault::StorePut, u32::MAX);
    ingestor.ingest(lines(&["p1"])).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(ingestor.flush().await.is_err());
    let refused = ingestor.ingest(lines(&["p2"])).await;
    assert!(matches!(refused, Err(IngestError::Backpressure { .. })), "{refused:?}");
    faults.clear();
    ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    let ok = ingestor.ingest(lines(&["p2"])).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.accepted, 1, "accepted once the lake caught up");
    exactly_once(&stored(&ingestor).await, &["p1", "p2"]);
}

#[tokio::test]
async fn a_large_backlog_reaches_the_lake_in_steps_that_each_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    {
        let ingestor = open(config(dir.path(), &Faults::default())).await;
        for chunk in id_refs.chunks(5) {
            ingestor.ingest(lines(chunk)).await.unwrap_or_else(|e| panic!("{e}"));
        }
        // Dropped without a flush: a crash.
    }
    let mut cfg = config(dir.path(), &Faults::default());
    cfg.flush_max_events = 10;
    // Recovery itself moves the replayed events into the lake.
    let ingestor = open(cfg).await;
    assert!(ingestor.read_view().buffered.is_empty());
    let table = ingestor.read_view().table.unwrap_or_else(|| panic!("a lake"));
    let writes = table
        .history(None)
        .filter(|c| std::future::ready(c.as_ref().is_ok_and(|c| c.operation.as_deref() == Some("WRITE"))))
        .count()
        .await;
    assert_eq!(writes, 5, "five commits of ten events, each its own step");
    exactly_once(&stored(&ingestor).await, &id_refs);
}

fn parquet_files_on_disk(dir: &Path) -> usize {
    fn walk(d: &Path, n: &mut usize) {
        for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, n);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

#[tokio::test]
async fn files_replaced_by_compaction_are_deleted_after_the_retention() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config(dir.path(), &Faults::default());
    cfg.compact_min_files = 3;
    cfg.vacuum_retention = Duration::ZERO;
    let ingestor = open(cfg).await;
    let mut ids = Vec::new();
    for round in 0..3 {
        let batch: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        ingestor.ingest(lines(&refs)).await.unwrap_or_else(|e| panic!("{e}"));
        ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
        ids.extend(batch);
    }
    // Vacuums run at most once per tenth of the retention (and a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    let table = ingestor.read_view().table.unwrap_or_else(|| panic!("a lake"));
    assert_eq!(
        lake::file_count(&table),
        1,
        "the three flush files were compacted into one"
    );
    assert_eq!(
        parquet_files_on_disk(&dir.path().join("lake")),
        1,
        "the replaced files are gone from disk, not only from the table"
    );
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    exactly_once(&stored(&ingestor).await, &refs);
}

#[tokio::test]
async fn files_kept_for_a_query_go_soon_after_it_ends_without_waiting_for_a_flush() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config(dir.path(), &Faults::default());
    cfg.compact_min_files = 3;
    cfg.vacuum_retention = Duration::ZERO;
    let ingestor = open(cfg).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let flusher = tokio::spawn(ingestor.clone().run_flusher(stopped));
    let mut query = None;
    for round in 0..3 {
        let batch: Vec<String> = (0..5).map(|i| format!("q{round}-{i}")).collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        ingestor.ingest(lines(&refs)).await.unwrap_or_else(|e| panic!("{e}"));
        ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
        // A query reading the first flush's version, running meanwhile.
        query.get_or_insert_with(|| ingestor.read_view());
    }
    let lake = dir.path().join("lake");
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files_on_disk(&lake) > 2 {
        assert!(
            Instant::now() < deadline,
            "the replaced files are still there after a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        parquet_files_on_disk(&lake),
        2,
        "the merged file and the one the query reads"
    );
    drop(query);
    // No flush comes (the next is an hour away): the flusher looks again
    // on its own once a vacuum kept files.
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files_on_disk(&lake) > 1 {
        assert!(
            Instant::now() < deadline,
            "the kept file is still there a minute after the query ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    flusher.await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn files_are_durable_before_the_commit_that_publishes_them_and_a_checkpoint_before_the_history_it_replaces() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let faults = Faults::default();
    let ingestor = open(config(dir.path(), &faults)).await;
    ingestor
        .ingest(lines(&["f1", "f2"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    faults.start_trace();
    // Two days: two partitions, two new data files in one commit.
    let mut late = ev("f3");
    late.occurred_at_us += 86_400_000_000;
    ingestor
        .ingest(vec![(1, late), (2, ev("f4"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    let trace = faults.trace();
    let commit = trace
        .iter()
        .position(|s| s.starts_with("synced ") && s.ends_with("_delta_log/00000000000000000001.json"))
        .unwrap_or_else(|| panic!("the commit was not synced: {trace:#?}"));
    let data: Vec<usize> = trace
        .iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("synced ") && s.ends_with(".parquet"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(data.len(), 2, "{trace:#?}");
    assert!(
        data.iter().all(|&i| i < commit),
        "data files synced after the commit: {trace:#?}"
    );

    faults.start_trace();
    let table = ingestor.read_view().table.unwrap_or_else(|| panic!("a lake"));
    lake::purge_history((*table).clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let trace = faults.trace();
    let checkpoint = trace
        .iter()
        .position(|s| s.starts_with("synced ") && s.contains(".checkpoint.parquet"))
        .unwrap_or_else(|| panic!("no checkpoint synced: {trace:#?}"));
    let first_log_delete = trace
        .iter()
        .position(|s| s.starts_with("deleted ") && s.contains("_delta_log/"))
        .unwrap_or_else(|| panic!("no history deleted: {trace:#?}"));
    assert!(
        checkpoint < first_log_delete,
        "history deleted before the checkpoint was durable: {trace:#?}"
    );
}

#[tokio::test]
async fn files_already_large_are_never_rewritten() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config(dir.path(), &Faults::default());
    cfg.compact_min_files = 2;
    // Every flush file is "large" against a target of 2 bytes.
    cfg.compact_target_file_bytes = 2;
    let ingestor = open(cfg).await;
    for round in 0..4 {
        let id = format!("big{round}");
        ingestor
            .ingest(lines(&[id.as_str()]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    }
    let table = ingestor.read_view().table.unwrap_or_else(|| panic!("a lake"));
    assert_eq!(lake::file_count(&table), 4);
    assert_eq!(
        ingestor.metrics().compactions.load(Relaxed),
        0,
        "no partition was rewritten"
    );
}

#[tokio::test]
async fn the_dedup_set_holds_only_keys_the_timestamp_window_can_still_admit() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let now_us = chrono::Utc::now().timestamp_micros();
    let at = |id: &str, days_ago: i64| Event {
        occurred_at_us: now_us - days_ago * 86_400_000_000,
        ..ev(id)
    };
    {
        let ingestor = open(config(dir.path(), &Faults::default())).await;
        ingestor
            .ingest(vec![(1, at("recent", 1)), (2, at("old", 30))])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ingestor.flush().await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut cfg = config(dir.path(), &Faults::default());
    cfg.dedup_horizon = Some(Duration::from_secs(7 * 86_400));
    let ingestor = open(cfg).await;
    assert_eq!(ingestor.known_events(), 1, "only the event inside the window is kept");
    let retry = ingestor
        .ingest(vec![(1, at("recent", 1))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        retry.duplicate_lines,
        vec![1],
        "a retry inside the window is still a duplicate"
    );
}
