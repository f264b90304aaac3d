//! The dashboards in real headless Chromium (issue 6).
//!
//! Starts the real `cxlake` binary on three weeks of generated traffic of
//! one tenant, registers and starts the generator's `greeting_v2`
//! experiment, then runs `node --test tests/browser/dashboards.test.mjs`
//! (Playwright's `playwright-core` driving Debian's Chromium; no browser
//! download). What the browser checks is listed at the top of that file;
//! screenshots land in `target/browser-artifacts/`.
//!
//! Needs `node` and Chromium (`CHROMIUM`, default `/usr/bin/chromium`).
//! Under `CI=true` a missing one fails the test; elsewhere the test says
//! what is missing and passes without running the browser. A missing
//! `tests/browser/node_modules` is installed with `npm ci` (the pinned
//! `package-lock.json`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::{Server, create_key};

const TENANT: &str = "dragon-mart";

use support::run_cli as run;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn found(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dashboards_in_headless_chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let mut missing = Vec::new();
    if !found("node", &["--version"]) {
        missing.push("node".to_string());
    }
    if !Path::new(&chromium).exists() {
        missing.push(format!("Chromium at {chromium}"));
    }
    if !missing.is_empty() {
        let msg = format!(
            "the browser tests need {} (Debian: apt-get install chromium nodejs npm)",
            missing.join(" and ")
        );
        assert!(!ci, "{msg}");
        eprintln!("SKIPPED outside CI: {msg}");
        return;
    }
    let root = workspace_root();
    let browser_dir = root.join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir)
            .status()
            .unwrap_or_else(|e| panic!("running npm ci in {}: {e}", browser_dir.display()));
        assert!(status.success(), "npm ci in tests/browser failed");
    }

    // Three weeks up to yesterday (the pages default to the last 7 days,
    // staffing forecasts tomorrow from the history).
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let all = dir.path().join("all.ndjson");
    run(
        &[
            "generate",
            "--days",
            "21",
            "--conversations-per-day",
            "150",
            "--seed",
            "11",
            "--out",
            &all.to_string_lossy(),
        ],
        &data,
    );
    let text = std::fs::read_to_string(&all).unwrap_or_else(|e| panic!("{e}"));
    let needle = format!("\"tenant_id\":\"{TENANT}\"");
    let mine: String = text
        .lines()
        .filter(|l| l.contains(&needle))
        .flat_map(|l| [l, "\n"])
        .collect();
    let file = dir.path().join("tenant.ndjson");
    std::fs::write(&file, mine).unwrap_or_else(|e| panic!("{e}"));
    run(&["ingest", &file.to_string_lossy()], &data);
    let key = create_key(&data, TENANT, "admin");
    let server = Server::start(&data, &[]);

    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let definition = json!({
        "key": "greeting_v2",
        "kind": "greeting",
        "description": "Friendlier bot greeting",
        "variants": [
            {"key": "control", "weight": 0.5, "payload": {"text": "Hello, how can I help?"}},
            {"key": "friendly", "weight": 0.5, "payload": {"text": "Hi there! What can I do for you?"}}
        ],
        "primary_metric": "conversion",
        "guardrail_metrics": ["csat", "transfer", "frt"],
        "planned_duration_days": 14
    })
    .to_string();
    for (path, body) in [
        ("/v1/experiments", definition.as_bytes()),
        ("/v1/experiments/greeting_v2/start", b"".as_slice()),
    ] {
        let r = server
            .request("POST", path, &headers, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(r.status < 300, "POST {path}: {} {}", r.status, r.text());
    }

    let artifacts = root.join("target/browser-artifacts");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "dashboards.test.mjs"])
        .current_dir(&browser_dir)
        .env("CXLAKE_URL", format!("http://{}", server.addr))
        .env("CXLAKE_KEY", &key)
        .env("CXLAKE_EXPERIMENT", "greeting_v2")
        .env("CXLAKE_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "browser tests failed:\n{report}");
    drop(server);
}
