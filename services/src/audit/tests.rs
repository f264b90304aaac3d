use serde_json::json;

use super::*;

fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..n {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        log.append_blocking(
            Entry::anonymous(
                if i == 1 { "key.create" } else { "sql.query" },
                "http",
                json!({ "i": i, "x": 0.1 }),
            )
            .on_tenant(tenant),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    (dir, log)
}

fn the_file(dir: &Path) -> PathBuf {
    let files = month_files(&dir.join("audit")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn an_untouched_chain_verifies_and_continues_after_reopening() {
    let (dir, log) = log_with(3);
    drop(log);
    let log = AuditLog::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    log.append_blocking(Entry::anonymous("signin.failure", "page", json!({})))
        .unwrap_or_else(|e| panic!("{e}"));
    let v = verify(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((v.records, v.files), (4, 1));
    let recs: Vec<Record> = lines(&the_file(dir.path()))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(recs[0].prev_hash, GENESIS_HASH);
    assert_eq!(recs[3].prev_hash, recs[2].hash);
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[test]
fn an_empty_log_verifies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verify(dir.path()).map(|v| v.records), Ok(0));
}

#[test]
fn editing_one_record_is_detected_and_named() {
    let (dir, _log) = log_with(4);
    let path = the_file(dir.path());
    let mut l = lines(&path);
    l[2] = l[2].replace("\"i\":2", "\"i\":7");
    write_lines(&path, &l);
    let bad = verify(dir.path())
        .err()
        .unwrap_or_else(|| panic!("the edit went unnoticed"));
    assert_eq!((bad.line, bad.seq), (3, 3), "{bad}");
    assert!(bad.reason.contains("edited"), "{bad}");
}

#[test]
fn editing_a_record_and_its_hash_is_detected_at_the_next_record() {
    let (dir, _log) = log_with(4);
    let path = the_file(dir.path());
    let mut l = lines(&path);
    let mut v: Value = serde_json::from_str(&l[1]).unwrap_or_else(|e| panic!("{e}"));
    v["action"] = json!("sql.query");
    let h = hash_of(&v);
    v["hash"] = json!(h);
    l[1] = v.to_string();
    write_lines(&path, &l);
    let bad = verify(dir.path())
        .err()
        .unwrap_or_else(|| panic!("the edit went unnoticed"));
    assert_eq!((bad.line, bad.seq), (3, 3), "{bad}");
}

#[test]
fn deleting_one_record_is_detected_and_named() {
    let (dir, _log) = log_with(5);
    let path = the_file(dir.path());
    let mut l = lines(&path);
    l.remove(1);
    write_lines(&path, &l);
    let bad = verify(dir.path())
        .err()
        .unwrap_or_else(|| panic!("the deletion went unnoticed"));
    assert_eq!((bad.line, bad.seq), (2, 2), "{bad}");
    assert!(bad.reason.contains("deleted"), "{bad}");

    // Deleting the first record too.
    let (dir, _log) = log_with(2);
    let path = the_file(dir.path());
    let l = lines(&path);
    write_lines(&path, &l[1..]);
    let bad = verify(dir.path())
        .err()
        .unwrap_or_else(|| panic!("the deletion went unnoticed"));
    assert_eq!((bad.line, bad.seq), (1, 1), "{bad}");
}

#[test]
fn a_torn_last_line_is_cut_on_open() {
    let (dir, log) = log_with(2);
    drop(log);
    let path = the_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    bytes.extend_from_slice(b"{\"seq\":3,\"ti");
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(verify(dir.path()).is_err());
    let log = AuditLog::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    log.append_blocking(Entry::anonymous("x", "y", json!(null)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verify(dir.path()).map(|v| v.records), Ok(3));
}

#[test]
fn queries_filter_by_tenant_action_and_time() {
    let (_dir, log) = log_with(5);
    let all = |tenant: Option<&str>, action: Option<&str>| Filter {
        tenant: tenant.map(str::to_string),
        from: None,
        to: None,
        action: action.map(str::to_string),
        limit: 100,
    };
    let q = |f: &Filter| log.query(f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(q(&all(None, None)).len(), 5);
    assert_eq!(q(&all(Some("acme"), None)).len(), 3);
    assert_eq!(q(&all(None, Some("key."))).len(), 1);
    assert_eq!(q(&all(Some("acme"), Some("key.create"))).len(), 0);
    let mut f = all(None, None);
    f.limit = 2;
    assert_eq!(q(&f).iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5], "the newest");
    let mut f = all(None, None);
    f.from = Some("2100-01-01T00:00:00Z".into());
    assert!(q(&f).is_empty());
    f.from = Some("2000-01-01T00:00:00Z".into());
    f.to = Some("2100-01-01T00:00:00Z".into());
    assert_eq!(q(&f).len(), 5);
}

#[test]
fn concurrent_records_all_land_in_one_chain() {
    let (dir, log) = log_with(0);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    log.append_blocking(Entry::anonymous("sql.query", "t", json!([t, i])))
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap_or_else(|_| panic!("thread panicked"));
    }
    assert_eq!(verify(dir.path()).map(|v| v.records), Ok(80));
}

#[test]
fn a_presented_key_is_recorded_by_id_only() {
    assert_eq!(presented_key_id(" cxk_0123abcd_secretsecret "), "0123abcd");
    assert_eq!(presented_key_id("password"), "");
    assert_eq!(presented_key_id("cxk_not-hex_x"), "");
}
