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
    let (_, replayed, _) = open(dir.path());
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
