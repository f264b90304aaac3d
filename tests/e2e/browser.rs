//! The dashboards in real headless Chromium.
//!
//! Starts the real `cxlake` binary on three weeks of generated traffic of
//! one tenant, registers and starts the generator's `greeting_v2`
//! experiment, checks sign-in and tenancy over plain HTTP (every page
//! needs a sign-in; the cookie is HttpOnly, SameSite=Strict, and Secure
//! behind `X-Forwarded-Proto: https`; platform-wide keys are refused; a
//! page shows only its key's tenant), then runs
//! `node --test tests/browser/dashboards.test.mjs`
//! (Playwright's `playwright-core` driving Debian's Chromium; no browser
//! download). What the browser checks is listed at the top of that file;
//! screenshots land in `target/browser-artifacts/`.
//!
//! Needs `node` and Chromium (`CHROMIUM`, default `/usr/bin/chromium`).
//! Under `CI=true` a missing one fails the test; elsewhere the test says
//! what is missing and passes without running the browser. A missing
//! `tests/browser/node_modules` is installed with `npm ci` (the pinned
//! `package-lock.json`).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::{Server, create_key};

const TENANT: &str = "dragon-mart";
/// A tenant with a key and no data.
const OTHER_TENANT: &str = "other-shop";

/// Every page of the dashboards (the experiment is registered below).
const PAGES: [&str; 9] = [
    "/",
    "/channels",
    "/teams",
    "/tags",
    "/traffic",
    "/scripts",
    "/experiments",
    "/experiments/greeting_v2",
    "/staffing",
];

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

/// The `Set-Cookie` of a sign-in with `key`, `extra` headers added.
fn sign_in_cookie(server: &Server, key: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend_from_slice(extra);
    let body = format!("key={key}&next=%2Fchannels");
    let r = server
        .request("POST", "/login", &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("POST /login: {e}"));
    (r.status, r.header("set-cookie").unwrap_or_default().to_string())
}

fn page_as(server: &Server, cookie: &str, path: &str) -> support::Response {
    server
        .request("GET", path, &[("Cookie", cookie)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Sign-in and tenancy over plain HTTP: every page needs a sign-in, the
/// cookie's attributes (`Secure` behind a TLS proxy), and a page shows the
/// key's tenant only.
fn sign_in_over_http(server: &Server, key: &str, other_key: &str, platform_key: &str) {
    for path in PAGES {
        let r = page_as(server, "cxlake_session=not_a_session", path);
        assert_eq!(r.status, 303, "{path} without a valid cookie");
        let to = r.header("location").unwrap_or_default();
        assert!(
            to.starts_with("/login?next=%2F"),
            "{path} sends to the sign-in, then back: {to}"
        );
    }

    let (status, cookie) = sign_in_cookie(server, key, &[]);
    assert_eq!(status, 303);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    let session = attributes[0].strip_prefix("cxlake_session=").unwrap_or_default();
    assert!(
        session.len() == 64 && !cookie.contains(key.rsplit('_').next().unwrap_or(key)),
        "the cookie holds a session id, never the key: {cookie}"
    );
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&wanted), "{wanted} in {cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain http: no Secure ({cookie})");
    let (_, behind_tls) = sign_in_cookie(server, key, &[("X-Forwarded-Proto", "https")]);
    let attributes: Vec<&str> = behind_tls.split(';').map(str::trim).collect();
    for wanted in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(&wanted), "{wanted} behind https: {behind_tls}");
    }

    // A platform-wide key is refused: a dashboard is one tenant's.
    let (status, cookie) = sign_in_cookie(server, platform_key, &[]);
    assert_eq!((status, cookie.as_str()), (401, ""));

    // Each key sees its own tenant: the other tenant has no conversations.
    let session_of = |k: &str| {
        server
            .dashboard_session(k)
            .unwrap_or_else(|| panic!("{k} cannot sign in"))
    };
    let (my_session, other_session) = (session_of(key), session_of(other_key));
    let mine = page_as(server, &my_session, "/");
    assert_eq!(mine.status, 200);
    assert!(mine.text().contains(&format!("<b>{TENANT}</b>")));
    let other = page_as(server, &other_session, "/");
    assert_eq!(other.status, 200);
    let other_page = other.text();
    assert!(other_page.contains(&format!("<b>{OTHER_TENANT}</b>")));
    assert!(
        !other_page.contains(TENANT),
        "nothing of {TENANT} on {OTHER_TENANT}'s page"
    );
    assert!(
        other_page.contains(r#"id="kpi-conversations"><h2>Conversations</h2><p class="big" data-value="0">"#),
        "{OTHER_TENANT} has no conversations"
    );
    for path in ["/channels?format=csv", "/scripts?format=csv"] {
        let csv = page_as(server, &other_session, path).text();
        assert_eq!(
            csv.lines().count(),
            1,
            "{path} of {OTHER_TENANT}: the header only, got {csv}"
        );
    }
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
    let other_key = create_key(&data, OTHER_TENANT, "admin");
    let platform_key = create_key(&data, "*", "admin");
    let server = Server::start(&data, &[]);
    sign_in_over_http(&server, &key, &other_key, &platform_key);

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
