//! End to end: every route × every role, against the matrix of
//! `docs/roles.md`.
//!
//! One key per role for tenant `acme` (made over `POST /v1/keys`; the
//! supervisor's with a team, the agent's with an agent id), a few
//! events so the data routes have something to read, then each route is
//! called with each key: roles the matrix allows must not get 401 or 403
//! (a 400, 404 or 422 for a deliberately minimal request is fine: the
//! request got past authorization), the others must get 403. Every route
//! without a key gets 401 (pages: a redirect to `/login`). Last, every
//! route here must have its row in `docs/roles.md`.

use crate::support;

use serde_json::json;
use support::{Server, create_key};

const ROLES: [&str; 6] = ["admin", "supervisor", "agent", "operations", "analyst", "service"];

/// Who may call what. `ALL` is every role.
const ALL: &[&str] = &ROLES;
const READERS: &[&str] = &["admin", "supervisor", "analyst"];
/// KPIs: the readers, and agents (their own conversations only).
const KPI_READERS: &[&str] = &["admin", "supervisor", "agent", "analyst"];
const ADMIN: &[&str] = &["admin"];
const SQL: &[&str] = &["admin", "analyst"];
const INGEST: &[&str] = &["admin", "service"];
const FORECAST: &[&str] = &["admin", "supervisor", "service"];
const EXP_READ: &[&str] = &["admin", "supervisor", "operations", "analyst", "service"];
const EXP_MANAGE: &[&str] = &["admin", "operations"];
const EXP_RESULTS: &[&str] = &["admin", "supervisor", "operations", "analyst"];
const OPS_ANALYSES: &[&str] = &["admin", "supervisor", "operations", "analyst"];

/// (method, path, body, allowed roles). Paths are those of the router;
/// bodies are the smallest a handler accepts far enough to authorize.
fn api_routes() -> Vec<(&'static str, &'static str, String, &'static [&'static str])> {
    let exp = json!({
        "key": "greeting", "unit": "customer", "metric": "conversion",
        "variants": [{"name": "control", "weight": 0.5}, {"name": "friendly", "weight": 0.5}]
    })
    .to_string();
    let arm = json!({ "n": 100, "mean": 0.1, "sd": 0.3 });
    vec![
        ("GET", "/v1/schema/events", String::new(), ALL),
        ("POST", "/v1/events", String::new(), INGEST),
        ("POST", "/v1/webhooks/chatwoot", "{}".into(), INGEST),
        ("POST", "/v1/sql", json!({ "sql": "SELECT 1" }).to_string(), SQL),
        (
            "POST",
            "/v1/stats/compare",
            json!({ "control": arm, "treatment": arm }).to_string(),
            ALL,
        ),
        ("POST", "/v1/stats/sample-size", "{}".into(), ALL),
        ("GET", "/v1/staffing/erlang", String::new(), ALL),
        ("GET", "/v1/kpis", String::new(), KPI_READERS),
        ("GET", "/v1/conversations", String::new(), READERS),
        ("GET", "/v1/settings", String::new(), ADMIN),
        ("PUT", "/v1/settings", "{}".into(), ADMIN),
        ("GET", "/v1/analyses/scripts", String::new(), OPS_ANALYSES),
        ("GET", "/v1/analyses/bottlenecks", String::new(), OPS_ANALYSES),
        ("GET", "/v1/analyses/traffic", String::new(), READERS),
        ("GET", "/v1/analyses/channels", String::new(), READERS),
        ("GET", "/v1/forecast/arrivals", String::new(), FORECAST),
        ("GET", "/v1/forecast/staffing", String::new(), FORECAST),
        ("POST", "/v1/forecast", "{}".into(), FORECAST),
        ("GET", "/v1/experiments", String::new(), EXP_READ),
        ("POST", "/v1/experiments", exp.clone(), EXP_MANAGE),
        ("GET", "/v1/experiments/greeting", String::new(), EXP_READ),
        ("PUT", "/v1/experiments/greeting", exp.clone(), EXP_MANAGE),
        ("PATCH", "/v1/experiments/greeting", "{}".into(), EXP_MANAGE),
        ("GET", "/v1/experiments/greeting/history", String::new(), EXP_READ),
        ("POST", "/v1/experiments/greeting/start", String::new(), EXP_MANAGE),
        (
            "GET",
            "/v1/experiments/greeting/assignment?unit=cus1",
            String::new(),
            INGEST,
        ),
        (
            "POST",
            "/v1/experiments/greeting/assignments",
            json!({ "units": ["cus1"] }).to_string(),
            INGEST,
        ),
        ("GET", "/v1/experiments/greeting/results", String::new(), EXP_RESULTS),
        ("POST", "/v1/experiments/greeting/stop", String::new(), EXP_MANAGE),
        ("POST", "/v1/experiments/greeting/archive", String::new(), EXP_MANAGE),
        ("GET", "/v1/keys", String::new(), ADMIN),
        ("POST", "/v1/keys", json!({ "role": "agent" }).to_string(), ADMIN),
        ("POST", "/v1/keys/0000000000000000/rotate", String::new(), ADMIN),
        ("DELETE", "/v1/keys/0000000000000000", String::new(), ADMIN),
        ("GET", "/v1/audit", String::new(), ADMIN),
        ("GET", "/v1/customers/0000000000000000/export", String::new(), ADMIN),
        ("DELETE", "/v1/customers/0000000000000000", String::new(), ADMIN),
        ("GET", "/v1/erasures/{job}", String::new(), ADMIN),
    ]
}

/// Pages (cookie sign-in): the dashboards are for readers; staffing shows
/// forecasts, which analysts do not read.
const PAGES: [(&str, &[&str]); 9] = [
    ("/", READERS),
    ("/channels", READERS),
    ("/teams", READERS),
    ("/tags", READERS),
    ("/traffic", READERS),
    ("/scripts", READERS),
    ("/experiments", READERS),
    ("/experiments/greeting", READERS),
    ("/staffing", &["admin", "supervisor"]),
];

#[test]
fn every_route_answers_each_role_as_the_matrix_says() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let auth = |k: &str| format!("Bearer {k}");

    let mut keys = Vec::new();
    for role in ROLES {
        let mut body = json!({ "role": role, "label": "roles test" });
        match role {
            "supervisor" => body["team"] = json!("t1"),
            "agent" => body["agent_id"] = json!("a1"),
            _ => {}
        }
        let r = server
            .request(
                "POST",
                "/v1/keys",
                &[("Authorization", &auth(&root)), ("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 201, "{}", r.text());
        keys.push((role, r.json()["key"].as_str().unwrap_or_default().to_string()));
    }
    let events = support::conversation_events("acme", 1).join("\n");
    let r = server
        .request(
            "POST",
            "/v1/events",
            &[("Authorization", &auth(&keys[5].1))],
            events.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());

    let mut wrong = Vec::new();
    for (method, path, body, allowed) in api_routes() {
        let r = server
            .request(method, path, &[("Content-Type", "application/json")], body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        if r.status != 401 {
            wrong.push(format!("{method} {path} without a key: {} (want 401)", r.status));
        }
        for (role, key) in &keys {
            let r = server
                .request(
                    method,
                    path,
                    &[("Authorization", &auth(key)), ("Content-Type", "application/json")],
                    body.as_bytes(),
                )
                .unwrap_or_else(|e| panic!("{e}"));
            let ok = if allowed.contains(role) {
                r.status != 401 && r.status != 403
            } else {
                r.status == 403
            };
            if !ok {
                let want = if allowed.contains(role) { "not 401/403" } else { "403" };
                wrong.push(format!(
                    "{method} {path} as {role}: {} (want {want}): {}",
                    r.status,
                    r.text().chars().take(200).collect::<String>()
                ));
            }
        }
    }

    for (path, allowed_roles) in PAGES {
        let r = server.request("GET", path, &[], b"").unwrap_or_else(|e| panic!("{e}"));
        let to_login = r.header("location").is_some_and(|l| l.starts_with("/login"));
        if !(r.status / 100 == 3 && to_login) {
            wrong.push(format!(
                "page {path} without a key: {} (want a redirect to /login)",
                r.status
            ));
        }
        for (role, key) in &keys {
            let allowed = allowed_roles.contains(role);
            // A role that reads no KPIs gets no session at all (401 at
            // sign-in); one that does is refused a page it may not see.
            let Some(cookie) = server.dashboard_session(key) else {
                if allowed || READERS.contains(role) {
                    wrong.push(format!("sign-in as {role} refused (want a session)"));
                }
                continue;
            };
            let r = server
                .request("GET", path, &[("Cookie", &cookie)], b"")
                .unwrap_or_else(|e| panic!("{e}"));
            let ok = if allowed {
                // A page of an experiment that does not exist is a 404 page.
                ![401, 403].contains(&r.status) && r.status / 100 != 3
            } else {
                r.status == 403
            };
            if !ok {
                wrong.push(format!(
                    "page {path} as {role}: {} (want {})",
                    r.status,
                    if allowed { "a page" } else { "403" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} mismatches:\n{}", wrong.len(), wrong.join("\n"));

    // The matrix in the docs lists exactly these routes.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/roles.md"))
        .unwrap_or_else(|e| panic!("docs/roles.md: {e}"));
    for (method, path, _, _) in api_routes() {
        let path = path
            .split('?')
            .next()
            .unwrap_or(path)
            .replace("greeting", "{key}")
            .replace("0000000000000000", "{id}");
        let row = format!("| `{method} {path}` |");
        assert!(doc.contains(&row), "docs/roles.md has no row {row}");
    }
    for (path, _) in PAGES {
        let row = format!("| `GET {}` (page) |", path.replace("greeting", "{key}"));
        assert!(doc.contains(&row), "docs/roles.md has no row {row}");
    }
}
