//! End to end: key management over HTTP and the CLI, and the audit log.
//!
//! An `acme` admin (made by `cxlake key create`) creates, lists, rotates
//! and revokes keys; revoked, rotated-away and expired keys get 401; a
//! tenant admin cannot reach another tenant's keys. An analyst's SQL query
//! and every key change land in the audit log with who, what and from
//! where; `GET /v1/audit` shows them to the tenant's admin; `cxlake audit
//! verify` passes, then fails naming the record after one byte is edited.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{BIN, Server, create_key};

fn call(server: &Server, key: &str, method: &str, path: &str, body: Option<Value>) -> support::Response {
    let auth = format!("Bearer {key}");
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    server
        .request(
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            bytes.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env("CXLAKE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

/// A fresh analyst key of the admin's tenant.
fn analyst3_key(server: &Server, admin: &str) -> String {
    let r = call(server, admin, "POST", "/v1/keys", Some(json!({ "role": "analyst" })));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["key"].as_str().unwrap_or_default().to_string()
}

#[test]
fn keys_are_managed_over_http_and_every_change_is_audited() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path();
    let admin = create_key(data, "acme", "admin");
    let other_admin = create_key(data, "globex", "admin");
    let server = Server::start(data, &[]);

    // Create: the secret comes back once, the listing never shows it.
    let r = call(
        &server,
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({ "role": "analyst", "label": "BI tool", "expires_in_days": 30 })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let analyst = created["key"].as_str().unwrap_or_default().to_string();
    let analyst_id = created["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        (created["tenant"].as_str(), created["role"].as_str()),
        (Some("acme"), Some("analyst"))
    );
    assert!(created["expires_at"].is_string());
    let r = call(
        &server,
        &analyst,
        "POST",
        "/v1/sql",
        Some(json!({ "sql": "SELECT 1 AS one" })),
    );
    assert_eq!(r.status, 200, "the new key works: {}", r.text());

    let listing = call(&server, &admin, "GET", "/v1/keys", None);
    assert_eq!(listing.status, 200, "{}", listing.text());
    let text = listing.text();
    let secret = analyst.rsplit('_').next().unwrap_or("-");
    assert!(!text.contains(secret) && !text.contains("sha256"), "{text}");
    let keys = listing.json()["keys"].as_array().cloned().unwrap_or_default();
    assert!(
        keys.iter().all(|k| k["tenant"] == "acme"),
        "a tenant admin lists its tenant only: {keys:?}"
    );
    let listed = keys
        .iter()
        .find(|k| k["id"] == analyst_id.as_str())
        .unwrap_or_else(|| panic!("the new key is listed: {keys:?}"));
    assert_eq!(listed["label"], "BI tool");
    assert_eq!(listed["revoked"], false);
    assert!(listed["last_used_at"].is_string(), "used once: {listed}");

    // Only admins manage keys; a tenant's admin only its own tenant's.
    assert_eq!(call(&server, &analyst, "GET", "/v1/keys", None).status, 403);
    assert_eq!(
        call(
            &server,
            &admin,
            "POST",
            "/v1/keys",
            Some(json!({ "role": "admin", "tenant": "globex" }))
        )
        .status,
        403
    );
    let globex_id = other_admin.split('_').nth(1).unwrap_or_default();
    assert_eq!(
        call(&server, &admin, "DELETE", &format!("/v1/keys/{globex_id}"), None).status,
        404
    );
    assert_eq!(
        call(&server, &other_admin, "GET", "/v1/keys", None).status,
        200,
        "globex's admin still works"
    );

    // Rotate: the new key works, the old one is refused.
    let r = call(&server, &admin, "POST", &format!("/v1/keys/{analyst_id}/rotate"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json();
    let analyst2 = rotated["key"].as_str().unwrap_or_default().to_string();
    let analyst2_id = rotated["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        (rotated["role"].as_str(), rotated["label"].as_str()),
        (Some("analyst"), Some("BI tool"))
    );
    assert_eq!(
        call(&server, &analyst, "POST", "/v1/sql", Some(json!({ "sql": "SELECT 1" }))).status,
        401
    );
    let r = call(
        &server,
        &analyst2,
        "POST",
        "/v1/sql",
        Some(json!({ "sql": "SELECT 2 AS two UNION ALL SELECT 3" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Revoke: 401 from now on; revoking twice is a conflict.
    let r = call(&server, &admin, "DELETE", &format!("/v1/keys/{analyst2_id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["revoked"], true);
    assert_eq!(
        call(
            &server,
            &analyst2,
            "POST",
            "/v1/sql",
            Some(json!({ "sql": "SELECT 1" }))
        )
        .status,
        401
    );
    assert_eq!(
        call(&server, &admin, "DELETE", &format!("/v1/keys/{analyst2_id}"), None).status,
        409
    );

    // Expiry: a key whose expires_at has passed is refused. (The store is
    // edited directly so the test need not wait; the server reloads it.)
    let r = call(
        &server,
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({ "role": "supervisor", "team": "billing", "expires_in_days": 1 })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sup = r.json()["key"].as_str().unwrap_or_default().to_string();
    let sup_id = r.json()["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(call(&server, &sup, "GET", "/v1/schema/events", None).status, 200);
    let store = data.join("keys.json");
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(&store).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    for k in file["keys"].as_array_mut().into_iter().flatten() {
        if k["id"] == sup_id.as_str() {
            k["expires_at"] = json!("2020-01-01T00:00:00Z");
        }
    }
    std::fs::write(&store, file.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        call(&server, &sup, "GET", "/v1/schema/events", None).status,
        401,
        "expired"
    );
    let r = call(
        &server,
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({ "role": "agent", "agent_id": "a1", "expires_at": "2020-01-01T00:00:00Z" })),
    );
    assert_eq!(r.status, 400, "an expiry in the past is refused: {}", r.text());

    // The audit log, as the tenant's admin sees it.
    let r = call(&server, &admin, "GET", "/v1/audit?from=2020-01-01", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let records = r.json()["records"].as_array().cloned().unwrap_or_default();
    assert!(records.iter().all(|r| r["tenant"] == "acme"), "{records:?}");
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    for a in ["key.create", "key.rotate", "key.revoke", "sql.query"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let cli_create = records
        .iter()
        .find(|r| r["action"] == "key.create" && r["source"].as_str().is_some_and(|s| s.starts_with("cli")));
    assert!(cli_create.is_some(), "`cxlake key create` is audited: {records:?}");
    let query = records
        .iter()
        .find(|r| r["action"] == "sql.query" && r["detail"]["sql"] == "SELECT 2 AS two UNION ALL SELECT 3")
        .unwrap_or_else(|| panic!("the query is recorded: {records:?}"));
    assert_eq!(query["detail"]["rows"], 2);
    assert_eq!(query["actor"]["key_id"], analyst2_id.as_str());
    assert_eq!(query["actor"]["role"], "analyst");
    assert!(
        query["source"].as_str().is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{query}"
    );
    let revoke = records
        .iter()
        .find(|r| r["action"] == "key.revoke")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(revoke["target"], analyst2_id.as_str());
    let only_keys = call(&server, &admin, "GET", "/v1/audit?action=key.", None).json();
    assert!(
        only_keys["records"].as_array().is_some_and(|rs| !rs.is_empty()
            && rs
                .iter()
                .all(|r| r["action"].as_str().is_some_and(|a| a.starts_with("key.")))),
        "{only_keys}"
    );
    assert_eq!(
        call(&server, &other_admin, "GET", "/v1/audit?tenant=acme", None).status,
        403
    );

    // The same records as SQL, for admins only, each tenant its own.
    let rows = server.sql(
        &admin,
        "SELECT action, target, detail, actor_role FROM audit_log WHERE action = 'key.revoke' ORDER BY seq",
    );
    assert_eq!(rows["row_count"], 1, "{rows}");
    assert!(rows.to_string().contains(&analyst2_id), "{rows}");
    let rows = server.sql(
        &other_admin,
        "SELECT count(*) AS n FROM audit_log WHERE tenant = 'acme'",
    );
    assert_eq!(rows["rows"][0][0], 0, "globex's admin sees no acme records: {rows}");
    let r = call(
        &server,
        &analyst3_key(&server, &admin),
        "POST",
        "/v1/sql",
        Some(json!({ "sql": "SELECT * FROM audit_log" })),
    );
    assert!(
        r.status == 400 || r.status == 404,
        "analysts have no audit_log: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(call(&server, &analyst2, "GET", "/v1/audit", None).status, 401);
    drop(server);

    // The CLI: list, rotate, revoke.
    let out = cli(data, &["key", "list", "--tenant", "globex"]);
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listing.contains(globex_id) && !listing.contains(&sup_id), "{listing}");
    let out = cli(data, &["key", "rotate", globex_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_globex = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let new_globex_id = new_globex.split('_').nth(1).unwrap_or_default().to_string();
    let out = cli(data, &["key", "revoke", &new_globex_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !cli(data, &["key", "revoke", &new_globex_id]).status.success(),
        "already revoked"
    );

    // The chain verifies; one edited byte makes it fail, naming the record.
    let out = cli(data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log OK"));
    let files: Vec<_> = std::fs::read_dir(data.join("audit"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap_or_default();
    let line_no = text
        .lines()
        .position(|l| l.contains("UNION ALL SELECT 3"))
        .unwrap_or_else(|| panic!("no query line"));
    let edited = text.replacen("UNION ALL SELECT 3", "UNION ALL SELECT 4", 1);
    std::fs::write(&files[0], edited).unwrap_or_else(|e| panic!("{e}"));
    let out = cli(data, &["audit", "verify"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "an edited record must fail verification");
    assert!(
        err.contains(&format!("line {}", line_no + 1)) && err.contains("edited"),
        "{err}"
    );
}
