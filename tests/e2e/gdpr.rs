//! GDPR end to end, on the real binary and a real data directory: export,
//! erasure (no byte of the customer left in any file under the data
//! directory, KPIs of everyone else intact, retries not resurrected, also
//! after a restart), and personal data at rest (encrypted or dropped free
//! text, pseudonymous ids: the raw bytes never reach a file).

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::{Response, Server, create_key, run_cli};

const TENANT: &str = "acme";
/// The customer to erase: distinctive bytes for the scan.
const GONE: &str = "zq-erase-me-4471";
const GONE_COMMENT: &str = "ZQ secret complaint about parcel 99";
const GONE_TEXT: &str = "ZQ my flat is at 12 Hidden Lane";
const KEEP: [&str; 2] = ["keep-cust-1", "keep-cust-2"];

/// One conversation of a customer on `day` (YYYY-MM-DD): started, a
/// customer message (its text lands in `attrs`), an agent reply without
/// `customer_id`, resolved, CSAT with a comment, an order, an exposure.
fn conversation(customer: &str, conv: &str, day: &str, score: u8, comment: &str, text: &str) -> Vec<String> {
    let at = |hms: &str| format!("{day}T{hms}Z");
    vec![
        format!(
            r#"{{"event_id":"{conv}-1","tenant_id":"{TENANT}","type":"conversation.started","occurred_at":"{}","conversation_id":"{conv}","customer_id":"{customer}","channel":"whatsapp"}}"#,
            at("09:00:00")
        ),
        format!(
            r#"{{"event_id":"{conv}-2","tenant_id":"{TENANT}","type":"message.created","occurred_at":"{}","conversation_id":"{conv}","customer_id":"{customer}","channel":"whatsapp","message_id":"{conv}-m1","sender":"customer","text":"{text}"}}"#,
            at("09:00:05")
        ),
        format!(
            r#"{{"event_id":"{conv}-3","tenant_id":"{TENANT}","type":"message.created","occurred_at":"{}","conversation_id":"{conv}","channel":"whatsapp","message_id":"{conv}-m2","sender":"agent","agent_id":"a1"}}"#,
            at("09:01:05")
        ),
        format!(
            r#"{{"event_id":"{conv}-4","tenant_id":"{TENANT}","type":"conversation.resolved","occurred_at":"{}","conversation_id":"{conv}","channel":"whatsapp","resolved_by":"agent","agent_id":"a1"}}"#,
            at("09:05:00")
        ),
        format!(
            r#"{{"event_id":"{conv}-5","tenant_id":"{TENANT}","type":"csat.submitted","occurred_at":"{}","conversation_id":"{conv}","customer_id":"{customer}","channel":"whatsapp","score":{score},"comment":"{comment}"}}"#,
            at("09:06:00")
        ),
        format!(
            r#"{{"event_id":"{conv}-6","tenant_id":"{TENANT}","type":"order.placed","occurred_at":"{}","conversation_id":"{conv}","customer_id":"{customer}","channel":"whatsapp","order_id":"{conv}-o","amount":"10.00","currency":"EUR"}}"#,
            at("09:07:00")
        ),
        format!(
            r#"{{"event_id":"{conv}-7","tenant_id":"{TENANT}","type":"experiment.exposed","occurred_at":"{}","conversation_id":"{conv}","channel":"whatsapp","experiment_key":"greeting","variant_key":"a","unit_id":"{customer}"}}"#,
            at("09:00:01")
        ),
    ]
}

/// Day one: a conversation of every customer; day two: the same again.
/// The erased customer scores 1, everyone else 5.
fn day(n: usize) -> Vec<String> {
    let date = format!("2026-03-0{}", n + 1);
    let mut out = conversation(GONE, &format!("zc{n}"), &date, 1, GONE_COMMENT, GONE_TEXT);
    for (i, c) in KEEP.iter().enumerate() {
        out.extend(conversation(c, &format!("kc{n}{i}"), &date, 5, "fine, thanks", "hello"));
    }
    out
}

const EVENTS_PER_CONVERSATION: u64 = 7;

struct Api<'a> {
    server: &'a Server,
    auth: String,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, body: &str) -> Response {
        self.server.send_json(&self.auth, method, path, body)
    }

    fn json(&self, method: &str, path: &str, body: &str) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        r.json()
    }

    fn ingest(&self, lines: &[String]) -> Value {
        self.json("POST", "/v1/events", &lines.join("\n"))
    }

    /// Asks for an erasure (202 and a job URL) and waits for its receipt.
    fn erase(&self, customer: &str) -> Value {
        let r = self.call("DELETE", &format!("/v1/customers/{customer}"), "");
        assert_eq!(r.status, 202, "{}", r.text());
        let job = r.json();
        assert!(!job.to_string().contains(customer), "{job}");
        let url = r.header("location").unwrap_or_default().to_string();
        assert_eq!(Some(url.as_str()), job["url"].as_str(), "{job}");
        self.receipt_of(&url)
    }

    /// Waits until the erasure job at `url` is done; its receipt.
    fn receipt_of(&self, url: &str) -> Value {
        for _ in 0..600 {
            let job = self.json("GET", url, "");
            match job["state"].as_str() {
                Some("done") => return job["receipt"].clone(),
                Some("queued" | "running") => std::thread::sleep(std::time::Duration::from_millis(50)),
                _ => panic!("erasure job {url}: {job}"),
            }
        }
        panic!("erasure job {url} not done after 30 s");
    }
}

fn api<'a>(server: &'a Server, key: &str) -> Api<'a> {
    Api {
        server,
        auth: format!("Bearer {key}"),
    }
}

/// Every file under `dir` whose bytes contain one of `needles`.
fn files_containing(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    hits.push(format!("{} holds {n:?}", path.display()));
                }
            }
        }
    }
    hits
}

/// Every value of every Parquet file under `dir` (the persisted facts),
/// read with pyarrow: referenced by a Delta log or not.
fn facts_text(dir: &Path) -> String {
    if !dir.exists() {
        return String::new();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/facts/dump_parquet.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed: {e}"));
    assert!(
        out.status.success(),
        "pyarrow (pip install pyarrow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parquet pages are zstd-compressed; a plain byte scan could miss a value
/// inside them. So the lake check also reads every row back through SQL
/// (the text of these queries names no customer, so the audit log stays clean).
fn lake_text(admin: &Api<'_>) -> String {
    admin
        .json(
            "POST",
            "/v1/sql",
            r#"{"sql":"SELECT customer_id, unit_id, comment, attrs FROM events"}"#,
        )
        .to_string()
}

fn kpis(admin: &Api<'_>) -> Value {
    admin.json("GET", "/v1/kpis?from=2026-03-01&to=2026-03-03", "")["kpis"].clone()
}

fn approx(v: &Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((x - expected).abs() < 1e-9, "{x} != {expected}");
}

#[test]
fn erasure_leaves_no_byte_of_the_customer_and_keeps_everyone_else() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    // No flush by age: what is not flushed on purpose stays in WAL and buffer.
    let env = [("CXLAKE_FLUSH_MAX_AGE_S", "3600")];

    // Day one goes to the lake (a graceful stop flushes; the last WAL
    // segment stays behind until the next flush), day two stays in the
    // WAL and the buffer.
    let mut server = Server::start(&data, &env);
    assert_eq!(api(&server, &key).ingest(&day(0))["accepted"], 21);
    server.stop();
    let mut server = Server::start(&data, &env);
    let admin = api(&server, &key);
    assert_eq!(admin.ingest(&day(1))["accepted"], 21);
    assert!(!files_containing(&data, &[GONE, GONE_COMMENT]).is_empty());

    let before = kpis(&admin);
    assert_eq!(before["conversations"]["value"], 6.0, "{before}");
    approx(&before["csat"]["mean"], (2.0 * 1.0 + 4.0 * 5.0) / 6.0);
    // The facts saved to the lake hold the customer too, until the erasure.
    let facts = data.join("lake/facts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !facts_text(&facts).contains(GONE) {
        assert!(std::time::Instant::now() < deadline, "the facts were not saved");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let receipt = admin.erase(GONE);
    assert!(
        receipt["receipt"].as_str().is_some_and(|r| r.starts_with("er_")),
        "{receipt}"
    );
    assert_eq!(receipt["conversations"], 2, "{receipt}");
    assert_eq!(receipt["orders"], 2, "{receipt}");
    assert_eq!(receipt["lake_events"], 2 * EVENTS_PER_CONVERSATION, "{receipt}");
    assert!(receipt["wal_events"].as_u64().unwrap_or(0) > 0, "{receipt}");
    assert!(receipt["log_files_deleted"].as_u64().unwrap_or(0) > 0, "{receipt}");
    assert!(!receipt.to_string().contains(GONE));

    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT]);
    assert!(scan.is_empty(), "{scan:#?}");
    // No fact file, current or replaced, holds the customer any more.
    let facts = facts_text(&facts);
    assert!(!facts.contains(GONE) && facts.contains(KEEP[0]), "{facts}");
    let lake = lake_text(&admin);
    assert!(
        ![GONE, GONE_COMMENT, GONE_TEXT].iter().any(|s| lake.contains(s)),
        "{lake}"
    );
    assert!(lake.contains(KEEP[0]) && lake.contains(KEEP[1]));

    // Everyone else adds up as before, minus the erased conversations.
    let after = kpis(&admin);
    assert_eq!(after["conversations"]["value"], 4.0, "{after}");
    approx(&after["csat"]["mean"], 5.0);
    let count =
        |a: &Api<'_>| a.json("POST", "/v1/sql", r#"{"sql":"SELECT count(*) AS n FROM events"}"#)["rows"][0][0].clone();
    assert_eq!(count(&admin), 4 * EVENTS_PER_CONVERSATION);

    // A retry of the old events is not stored again: the erased ones are
    // reported as such, the others as duplicates.
    let mut retry = day(0);
    retry.extend(day(1));
    let r = admin.ingest(&retry);
    assert_eq!(r["accepted"], 0, "{r}");
    assert_eq!(r["erased"], 2 * EVENTS_PER_CONVERSATION, "{r}");
    assert_eq!(r["duplicates"], 4 * EVENTS_PER_CONVERSATION, "{r}");
    let export = admin.json("GET", &format!("/v1/customers/{GONE}/export"), "");
    assert_eq!(export["event_count"], 0, "{export}");

    // After a restart the dedup set no longer knows the erased events;
    // the tombstones still do.
    server.stop();
    let server = Server::start(&data, &env);
    let admin = api(&server, &key);
    let r = admin.ingest(&retry);
    assert_eq!(r["accepted"], 0, "{r}");
    assert_eq!(r["erased"], 2 * EVENTS_PER_CONVERSATION, "{r}");
    assert_eq!(count(&admin), 4 * EVENTS_PER_CONVERSATION);
    let after_restart = kpis(&admin);
    assert_eq!(after_restart["conversations"]["value"], 4.0, "{after_restart}");

    // The erasure and the export are in the audit log under the receipt
    // and a keyed hash, never the id; the chain verifies.
    let audit = admin.json("GET", "/v1/audit?action=customer.", "");
    let text = audit.to_string();
    assert!(text.contains(receipt["receipt"].as_str().unwrap_or("?")), "{text}");
    assert!(text.contains("customer.export"), "{text}");
    assert!(!text.contains(GONE));
    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT]);
    assert!(scan.is_empty(), "{scan:#?}");
    drop(server);
    run_cli(&["audit", "verify"], &data);
}

#[test]
fn export_returns_every_event_of_the_customer_and_their_conversations() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    let analyst = create_key(&data, TENANT, "analyst");
    let mut server = Server::start(&data, &[("CXLAKE_FLUSH_MAX_AGE_S", "3600")]);
    assert_eq!(api(&server, &key).ingest(&day(0))["accepted"], 21);
    server.stop();
    // One conversation in the lake, one in the buffer.
    let server = Server::start(&data, &[("CXLAKE_FLUSH_MAX_AGE_S", "3600")]);
    let admin = api(&server, &key);
    admin.ingest(&day(1));

    let export = admin.json("GET", &format!("/v1/customers/{GONE}/export"), "");
    assert_eq!(export["customer_id"], GONE);
    assert_eq!(export["event_count"], 2 * EVENTS_PER_CONVERSATION, "{export}");
    assert_eq!(export["conversations"], serde_json::json!(["zc0", "zc1"]));
    let events = export["events"].as_array().cloned().unwrap_or_default();
    // The agent's reply carries no customer id and is still theirs.
    assert!(
        events
            .iter()
            .any(|e| e["sender"] == "agent" && e.get("customer_id").is_none())
    );
    assert!(events.iter().any(|e| e["comment"] == GONE_COMMENT));
    assert!(events.iter().any(|e| e["attrs"]["text"] == GONE_TEXT), "{export}");
    assert!(
        events
            .iter()
            .all(|e| e["conversation_id"].as_str().is_some_and(|c| c.starts_with("zc")))
    );

    // Admin only.
    let r = api(&server, &analyst).call("GET", &format!("/v1/customers/{GONE}/export"), "");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = api(&server, &analyst).call("DELETE", &format!("/v1/customers/{GONE}"), "");
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn encrypted_and_pseudonymized_data_never_reaches_a_file_in_the_clear() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    let mut server = Server::start(&data, &[("CXLAKE_FLUSH_MAX_AGE_S", "3600")]);
    let admin = api(&server, &key);
    admin.json(
        "PUT",
        "/v1/settings",
        r#"{"free_text": "encrypt", "pseudonymize_customer_ids": true}"#,
    );
    assert_eq!(admin.ingest(&day(0))["accepted"], 21);

    // In the WAL (not flushed yet) ...
    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT, KEEP[0], "fine, thanks"]);
    assert!(scan.is_empty(), "{scan:#?}");
    // ... and in the lake.
    server.stop();
    let server = Server::start(&data, &[("CXLAKE_FLUSH_MAX_AGE_S", "3600")]);
    let admin = api(&server, &key);
    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT, KEEP[0], "fine, thanks"]);
    assert!(scan.is_empty(), "{scan:#?}");
    let lake = lake_text(&admin);
    assert!(lake.contains("psn_") && lake.contains("enc:v1:"), "{lake}");
    assert!(
        ![GONE, GONE_COMMENT, GONE_TEXT].iter().any(|s| lake.contains(s)),
        "{lake}"
    );
    let mode = std::fs::metadata(data.join("privacy/keys/acme.key"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);

    // KPIs still count customers: the same customer, the same pseudonym.
    let k = kpis(&admin);
    assert_eq!(k["conversations"]["value"], 3.0, "{k}");

    // The admin's export takes the id as the messaging core knows it and
    // shows the text decrypted.
    let export = admin.json("GET", &format!("/v1/customers/{GONE}/export"), "");
    assert_eq!(export["event_count"], EVENTS_PER_CONVERSATION, "{export}");
    let events = export["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["comment"] == GONE_COMMENT), "{export}");
    assert!(events.iter().any(|e| e["attrs"]["text"] == GONE_TEXT), "{export}");
    let pseudonym = export["identifiers"][1].as_str().unwrap_or("?").to_string();
    assert!(
        events.iter().any(|e| e["customer_id"] == pseudonym.as_str()),
        "{export}"
    );

    // `drop`: the text is not stored at all.
    admin.json("PUT", "/v1/settings", r#"{"free_text": "drop"}"#);
    assert_eq!(admin.ingest(&day(1))["accepted"], 21);
    let export = admin.json("GET", &format!("/v1/customers/{GONE}/export"), "");
    let dropped: Vec<&Value> = export["events"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["conversation_id"] == "zc1").collect())
        .unwrap_or_default();
    assert_eq!(dropped.len() as u64, EVENTS_PER_CONVERSATION);
    assert!(
        dropped
            .iter()
            .all(|e| e.get("comment").is_none() && e["attrs"].get("text").is_none()),
        "{export}"
    );
    // Unpseudonymized from here on: the raw id of day two is in the WAL.
    assert!(!files_containing(&data, &[GONE]).is_empty());

    // Erasure finds both forms of the id.
    let receipt = admin.erase(GONE);
    assert_eq!(receipt["conversations"], 2, "{receipt}");
    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT, &pseudonym]);
    assert!(scan.is_empty(), "{scan:#?}");
}

#[test]
fn an_erasure_accepted_before_a_crash_is_finished_after_the_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    let env = [("CXLAKE_FLUSH_MAX_AGE_S", "3600")];
    let mut server = Server::start(&data, &env);
    assert_eq!(api(&server, &key).ingest(&day(0))["accepted"], 21);
    // Accepted, then the process dies at once: the job was on disk before
    // the 202, whatever the worker had done by then.
    let r = api(&server, &key).call("DELETE", &format!("/v1/customers/{GONE}"), "");
    assert_eq!(r.status, 202, "{}", r.text());
    let url = r.header("location").unwrap_or_default().to_string();
    server.kill();

    // A job recorded by a process that died before its worker ran at all,
    // as it lies on disk.
    let pending = serde_json::json!({
        "id": "ej_0000000000000000000000000000beef",
        "tenant": TENANT,
        "customer_id": KEEP[1],
        "customer_hash": "unknown",
        "requested_at": "2026-03-05T00:00:00.000Z",
        "requested_by": { "key_id": null, "tenant": TENANT, "role": "admin" },
        "state": "queued",
        "attempts": 0
    });
    std::fs::write(
        data.join("erasures").join("ej_0000000000000000000000000000beef.json"),
        pending.to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let server = Server::start(&data, &env);
    let admin = api(&server, &key);
    let receipt = admin.receipt_of(&url);
    assert_eq!(receipt["conversations"], 1, "{receipt}");
    let resumed = admin.receipt_of("/v1/erasures/ej_0000000000000000000000000000beef");
    assert_eq!(resumed["conversations"], 1, "{resumed}");
    let scan = files_containing(&data, &[GONE, GONE_COMMENT, GONE_TEXT, KEEP[1]]);
    assert!(scan.is_empty(), "{scan:#?}");
    let lake = lake_text(&admin);
    assert!(lake.contains(KEEP[0]) && !lake.contains(KEEP[1]), "{lake}");
}
