use std::sync::Mutex;

use super::*;

fn ev(id: &str) -> Event {
    Event {
        event_id: id.into(),
        tenant_id: "t".into(),
        occurred_at_us: 1,
        ..Default::default()
    }
}

type Seen = Arc<Mutex<Vec<(u64, String)>>>;

fn open(dir: &Path) -> (Wal<String>, Vec<ReplayedBatch>, Seen) {
    open_after(dir, 0)
}

fn open_after(dir: &Path, replay_after: u64) -> (Wal<String>, Vec<ReplayedBatch>, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let (wal, replayed) = Wal::open(
        dir,
        Arc::default(),
        Box::new(move |seq, p: String| s.lock().unwrap_or_else(|p| p.into_inner()).push((seq, p))),
        replay_after,
    )
    .unwrap_or_else(|e| panic!("open: {e}"));
    (wal, replayed, seen)
}

#[tokio::test]
async fn batches_already_in_the_lake_are_not_replayed_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _, _) = open(dir.path());
        for id in ["a", "b", "c"] {
            wal.append_durable(&[ev(id)], id.into())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let (wal, replayed, _) = open_after(dir.path(), 2);
    let seqs: Vec<u64> = replayed.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, vec![3], "only the batch after the lake's last is replayed");
    assert_eq!(replayed[0].events.len(), 1);
    assert_eq!(wal.append_durable(&[ev("d")], "d".into()).await.ok(), Some(4));
}

#[tokio::test]
async fn appends_are_numbered_replayed_and_handed_over() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, replayed, seen) = open(dir.path());
        assert!(replayed.is_empty());
        assert_eq!(
            wal.append_durable(&[ev("a"), ev("b")], "first".into()).await.ok(),
            Some(1)
        );
        assert_eq!(wal.append_durable(&[ev("c")], "second".into()).await.ok(), Some(2));
        let handed: Vec<_> = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(handed, vec![(1, "first".to_string()), (2, "second".to_string())]);
    }
    let (wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(replayed[0].events, vec![ev("a"), ev("b")]);
    assert_eq!(
        wal.append_durable(&[ev("d")], String::new()).await.ok(),
        Some(3),
        "numbering continues"
    );
}

#[tokio::test]
async fn concurrent_appends_all_succeed_with_distinct_numbers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (wal, _, _) = open(dir.path());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            wal.append_durable(&[ev(&i.to_string())], String::new()).await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.ok().and_then(|r| r.ok()).unwrap_or(0));
    }
    seqs.sort();
    assert_eq!(seqs, (1..=64).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _, _) = open(dir.path());
        wal.append_durable(&[ev("a")], String::new()).await.ok();
        wal.append_durable(&[ev("b")], String::new()).await.ok();
    }
    let seg = list_segments(dir.path())
        .unwrap_or_default()
        .pop()
        .map(|s| s.1)
        .unwrap_or_default();
    let len = fs::metadata(&seg).map(|m| m.len()).unwrap_or(0);
    let f = OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap_or_else(|e| panic!("{e}"));
    f.set_len(len - 3).unwrap_or_else(|e| panic!("{e}"));
    let (wal, replayed, _) = open(dir.path());
    assert_eq!(replayed.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(wal.append_durable(&[ev("c")], String::new()).await.ok(), Some(2));
    drop(wal);
    let (_, replayed, _) = open(dir.path());
    assert_eq!(replayed.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn damage_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _, _) = open(dir.path());
        wal.append_durable(&[ev("a")], String::new()).await.ok();
        wal.rotate().await.ok();
        wal.append_durable(&[ev("b")], String::new()).await.ok();
    }
    let first = list_segments(dir.path()).unwrap_or_default().remove(0).1;
    let mut bytes = fs::read(&first).unwrap_or_default();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&first, bytes).unwrap_or_else(|e| panic!("{e}"));
    let r = Wal::<String>::open(dir.path(), Arc::default(), Box::new(|_, _| {}), 0);
    assert!(matches!(r, Err(WalError::Corrupt { .. })), "{r:?}");
}

#[tokio::test]
async fn rotate_and_remove_through_delete_only_covered_segments() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (wal, _, _) = open(dir.path());
    wal.append_durable(&[ev("a")], String::new()).await.ok();
    wal.append_durable(&[ev("b")], String::new()).await.ok();
    assert_eq!(wal.rotate().await.ok(), Some(2));
    wal.append_durable(&[ev("c")], String::new()).await.ok();
    assert_eq!(wal.rotate().await.ok(), Some(3));
    wal.append_durable(&[ev("d")], String::new()).await.ok();
    let firsts: Vec<u64> = list_segments(dir.path())
        .unwrap_or_default()
        .iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(firsts, vec![1, 3, 4]);
    assert_eq!(wal.remove_through(1).ok(), Some(0), "segment 1..=2 still holds 2");
    assert_eq!(wal.remove_through(2).ok(), Some(1));
    assert_eq!(wal.remove_through(3).ok(), Some(1));
    assert_eq!(wal.remove_through(4).ok(), Some(0), "the active segment stays");
    drop(wal);
    // Segments go only once the lake holds their batches: it is at 3.
    let (_, replayed, _) = open_after(dir.path(), 3);
    assert_eq!(replayed.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![4]);
}

#[tokio::test]
async fn scrub_removes_events_from_closed_segments_and_keeps_the_numbering() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _, _) = open(dir.path());
        for (events, p) in [(vec![ev("a"), ev("secret-b")], "1"), (vec![ev("secret-c")], "2")] {
            wal.append_durable(&events, p.into())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let through = wal.rotate().await.unwrap_or_else(|e| panic!("{e}"));
        let removed = wal.scrub_through(through, &|e| e.event_id.starts_with("secret"));
        assert_eq!(removed.ok(), Some(2));
        wal.append_durable(&[ev("d")], "3".into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (_, replayed, _) = open(dir.path());
    let got: Vec<(u64, Vec<String>)> = replayed
        .iter()
        .map(|b| (b.seq, b.events.iter().map(|e| e.event_id.clone()).collect()))
        .collect();
    assert_eq!(
        got,
        vec![(1, vec!["a".to_string()]), (2, vec![]), (3, vec!["d".to_string()])]
    );
    for entry in fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")) {
        let bytes = fs::read(entry.map(|e| e.path()).unwrap_or_default()).unwrap_or_default();
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
    }
}

fn open_faulty(dir: &Path, replay_after: u64, faults: Faults) -> Result<(Wal<String>, Vec<ReplayedBatch>)> {
    Wal::open_with_faults(dir, Arc::default(), Box::new(|_, _| {}), replay_after, faults)
}

fn replayed_ids(replayed: &[ReplayedBatch]) -> Vec<(u64, Vec<String>)> {
    replayed
        .iter()
        .map(|b| (b.seq, b.events.iter().map(|e| e.event_id.clone()).collect()))
        .collect()
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segments = list_segments(dir).unwrap_or_default();
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.remove(0).1
}

#[tokio::test]
async fn damage_before_acknowledged_records_of_the_newest_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _, _) = open(dir.path());
        // One append at a time: three groups, each fsynced and acknowledged.
        for id in ["a", "b", "c"] {
            wal.append_durable(&[ev(id)], String::new())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let seg = only_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap_or_default();
    // The first record's payload: a later group follows it intact.
    bytes[HEADER_BYTES + 2] ^= 0xff;
    fs::write(&seg, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let r = open_faulty(dir.path(), 0, Faults::default());
    assert!(matches!(r, Err(WalError::Corrupt { .. })), "{r:?}");
    assert_eq!(fs::read(&seg).unwrap_or_default(), bytes, "nothing was cut");
}

#[tokio::test]
async fn a_torn_group_is_cut_even_when_its_later_records_reached_the_disk() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let line = |id: &str| {
        let mut b = serde_json::to_vec(&ev(id)).unwrap_or_default();
        b.push(b'\n');
        b
    };
    // Group 1 = {1}, fsynced; group 2 = {2, 3}, in flight at the crash:
    // record 2's page was lost, record 3's survived.
    let mut bytes = Vec::new();
    encode_record(&mut bytes, 1, 1, &line("a"));
    let torn_at = bytes.len();
    encode_record(&mut bytes, 2, 2, &line("b"));
    encode_record(&mut bytes, 3, 2, &line("c"));
    bytes[torn_at + HEADER_BYTES + 1] ^= 0xff;
    fs::write(dir.path().join(format!("wal-{:020}.log", 1)), &bytes).unwrap_or_else(|e| panic!("{e}"));
    let (wal, replayed) = open_faulty(dir.path(), 0, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed_ids(&replayed), vec![(1, vec!["a".to_string()])]);
    assert_eq!(
        fs::metadata(only_segment(dir.path())).map(|m| m.len() as usize).ok(),
        Some(torn_at)
    );
    assert_eq!(wal.append_durable(&[ev("d")], String::new()).await.ok(), Some(2));
}

#[tokio::test]
async fn numbering_goes_on_after_the_lake_when_the_log_is_behind_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        // The lake holds batches through 100; the log's segments were
        // removed after that flush (or only an empty one was left).
        let (wal, replayed) = open_faulty(dir.path(), 100, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(replayed.is_empty());
        assert_eq!(wal.append_durable(&[ev("new")], String::new()).await.ok(), Some(101));
    }
    let (_, replayed) = open_faulty(dir.path(), 100, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed_ids(&replayed), vec![(101, vec!["new".to_string()])]);
}

#[tokio::test]
async fn a_log_that_does_not_follow_the_lake_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (wal, _) = open_faulty(dir.path(), 10, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
        wal.append_durable(&[ev("x")], String::new()).await.ok();
    }
    // The lake says 8: batches 9 and 10 were acknowledged but are nowhere.
    let r = open_faulty(dir.path(), 8, Faults::default());
    assert!(
        matches!(
            r,
            Err(WalError::Gap {
                missing_from: 9,
                missing_to: 10,
                ..
            })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn failed_writes_and_syncs_lose_nothing_acknowledged_and_the_log_recovers() {
    for fault in [Fault::WalWrite, Fault::WalShortWrite, Fault::WalSync, Fault::DiskFull] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let faults = Faults::default();
        {
            let (wal, _) = open_faulty(dir.path(), 0, faults.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(wal.append_durable(&[ev("a")], String::new()).await.ok(), Some(1));
            faults.arm(fault, if fault == Fault::DiskFull { u32::MAX } else { 1 });
            let failed = wal.append_durable(&[ev("lost")], String::new()).await;
            assert!(failed.is_err(), "{fault:?}: {failed:?}");
            if fault == Fault::DiskFull {
                assert!(wal.append_durable(&[ev("lost2")], String::new()).await.is_err());
                faults.clear();
            }
            assert_eq!(
                wal.append_durable(&[ev("b")], String::new()).await.ok(),
                Some(2),
                "{fault:?}: the failed numbers are handed out again"
            );
        }
        let (wal, replayed) = open_faulty(dir.path(), 0, Faults::default())
            .unwrap_or_else(|e| panic!("{fault:?}: the log must open after the fault: {e}"));
        assert_eq!(
            replayed_ids(&replayed),
            vec![(1, vec!["a".to_string()]), (2, vec!["b".to_string()])],
            "{fault:?}"
        );
        assert_eq!(wal.append_durable(&[ev("c")], String::new()).await.ok(), Some(3));
    }
}
