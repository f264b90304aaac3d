//! End to end: supervisor keys see their team only, agent keys their own
//! conversations only (`docs/roles.md`, "Team and agent scope").
//!
//! Three days of generated traffic; the admin's own `team=X` and
//! `agent=A` answers are the reference. A supervisor key of team X must
//! get exactly the admin's `team=X` figures from the KPIs and every
//! analysis, export only team X's conversations, forecast only team X's
//! queues, and be refused (403) when it asks for another team; an agent
//! key likewise with its agent id. Keys without the scope their role needs
//! are refused at creation, over the API and the CLI.

use crate::support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{Response, Server, create_key, create_key_with};

const TENANT: &str = "modehaus_eu";
const WINDOW: &str = "from=2026-03-02&to=2026-03-05";

fn get(server: &Server, key: &str, path: &str) -> Response {
    let auth = format!("Bearer {key}");
    server
        .request("GET", path, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn get_json(server: &Server, key: &str, path: &str) -> Value {
    let r = get(server, key, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn create(server: &Server, admin: &str, body: Value) -> Response {
    let auth = format!("Bearer {admin}");
    server
        .request(
            "POST",
            "/v1/keys",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST /v1/keys: {e}"))
}

/// A 403 problem (a scope cannot be widened).
fn assert_forbidden(r: &Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
}

/// The values of dimension `d` among the groups of a grouped answer.
fn group_values(v: &Value, d: &str) -> BTreeSet<String> {
    v["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|g| g["key"][d].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Equal JSON, numbers within 1e-9 relative (parallel float sums may
/// differ in the last bit from one query to the next).
fn assert_same(a: &Value, b: &Value, what: &str) {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    assert!(same(a, b), "{what}:\n{a}\n!=\n{b}");
}

fn conversations(v: &Value) -> i64 {
    v["kpis"]["conversations"]["n"].as_i64().unwrap_or(-1)
}

#[test]
fn supervisor_and_agent_keys_see_only_their_scope() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    support::generate_and_ingest(&dir.path().join("traffic.ndjson"), &data, 3, "2026-03-02", 600, 11);
    let admin = create_key(&data, TENANT, "admin");
    let server = Server::start(&data, &[]);

    // The reference: the admin's view of the teams and their agents.
    let by_team = get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}&group_by=team"));
    let teams: Vec<String> = group_values(&by_team, "team").into_iter().collect();
    assert!(teams.len() >= 2, "the test needs two teams: {teams:?}");
    let (team, other_team) = (teams[0].clone(), teams[1].clone());
    let team_kpis = get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}&team={team}"));
    let all_kpis = get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}"));
    assert!(
        conversations(&team_kpis) > 0 && conversations(&team_kpis) < conversations(&all_kpis),
        "team {team} must hold some, not all, conversations"
    );
    let team_agents = group_values(
        &get_json(
            &server,
            &admin,
            &format!("/v1/kpis?{WINDOW}&team={team}&group_by=agent"),
        ),
        "agent",
    );
    let agent = team_agents.iter().next().cloned().unwrap_or_default();
    let other_agent = group_values(
        &get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}&group_by=agent")),
        "agent",
    )
    .into_iter()
    .find(|a| *a != agent)
    .unwrap_or_default();
    assert!(!agent.is_empty() && !other_agent.is_empty(), "two agents needed");

    // Creation: the scope a role needs is required, over the API ...
    for (body, field) in [
        (json!({ "role": "supervisor" }), "team"),
        (json!({ "role": "agent" }), "agent_id"),
        (json!({ "role": "agent", "team": team }), "team"),
        (json!({ "role": "analyst", "team": team }), "team"),
    ] {
        let r = create(&server, &admin, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["parameter"], field, "{body}: {}", r.text());
        assert!(r.text().contains(field), "the detail names {field}: {}", r.text());
    }
    let r = create(&server, &admin, json!({ "role": "supervisor", "team": team }));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["team"], team.as_str());
    let supervisor = r.json()["key"].as_str().unwrap_or_default().to_string();
    // ... and the CLI (the server picks up keys made while it runs).
    let out = std::process::Command::new(support::BIN)
        .args(["key", "create", "--tenant", TENANT, "--role", "supervisor", "--data"])
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "a supervisor key without --team is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--team"));
    let agent_key = create_key_with(&data, TENANT, "agent", &["--agent", &agent]);

    // KPIs: the supervisor's are the admin's team=X figures, whatever it asks.
    let sup_kpis = get_json(&server, &supervisor, &format!("/v1/kpis?{WINDOW}"));
    assert_same(&sup_kpis["kpis"], &team_kpis["kpis"], "supervisor KPIs");
    assert_same(&sup_kpis["previous"], &team_kpis["previous"], "supervisor previous");
    assert_eq!(
        sup_kpis["filters"],
        json!({ "team": [team] }),
        "the forced filter shows"
    );
    let explicit = get_json(&server, &supervisor, &format!("/v1/kpis?{WINDOW}&team={team}"));
    assert_same(&explicit["kpis"], &team_kpis["kpis"], "naming its own team is fine");
    let grouped = get_json(&server, &supervisor, &format!("/v1/kpis?{WINDOW}&group_by=team"));
    assert_eq!(group_values(&grouped, "team"), BTreeSet::from([team.clone()]));
    let grouped = get_json(&server, &supervisor, &format!("/v1/kpis?{WINDOW}&group_by=agent"));
    assert_eq!(group_values(&grouped, "agent"), team_agents, "only the team's agents");
    for widen in [format!("team={other_team}"), format!("team={team},{other_team}")] {
        assert_forbidden(
            &get(&server, &supervisor, &format!("/v1/kpis?{WINDOW}&{widen}")),
            &widen,
        );
    }

    // Analyses: each answer is the admin's with team=X, never wider.
    for name in ["scripts", "bottlenecks", "traffic", "channels"] {
        let sup = get_json(&server, &supervisor, &format!("/v1/analyses/{name}?{WINDOW}"));
        let reference = get_json(&server, &admin, &format!("/v1/analyses/{name}?{WINDOW}&team={team}"));
        assert_same(&sup, &reference, name);
        assert_forbidden(
            &get(
                &server,
                &supervisor,
                &format!("/v1/analyses/{name}?{WINDOW}&team={other_team}"),
            ),
            name,
        );
    }
    let traffic = get_json(&server, &supervisor, &format!("/v1/analyses/traffic?{WINDOW}"));
    let in_cells: i64 = traffic["cells"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["conversations"].as_i64()).sum())
        .unwrap_or(-1);
    assert_eq!(in_cells, conversations(&team_kpis), "the heatmap counts the team only");

    // The export holds team X's conversations, all of them, and no others.
    let export = |key: &str| -> Vec<Value> {
        let r = get(&server, key, &format!("/v1/conversations?{WINDOW}&format=ndjson"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let rows = export(&supervisor);
    assert_eq!(rows.len() as i64, conversations(&team_kpis));
    assert!(rows.iter().all(|r| r["team"] == team.as_str()), "only team {team}");
    let everyone = export(&admin);
    assert!(
        everyone.iter().any(|r| r["team"] == other_team.as_str()),
        "the admin's has others"
    );

    // Forecasts: the supervisor's queue is its team's.
    let r = get(
        &server,
        &supervisor,
        "/v1/forecast/arrivals?from=2026-03-05&to=2026-03-06",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queue"], format!("team:{team}"));
    let reference = get_json(
        &server,
        &admin,
        &format!("/v1/forecast/arrivals?queue=team:{team}&from=2026-03-05&to=2026-03-06"),
    );
    assert_same(&r.json()["intervals"], &reference["intervals"], "forecast");
    assert_forbidden(
        &get(
            &server,
            &supervisor,
            &format!("/v1/forecast/arrivals?queue=team:{other_team}&from=2026-03-05&to=2026-03-06"),
        ),
        "forecast of another team",
    );

    // The overview page shows the team's figures: its CSV equals the one
    // the admin gets with the team filter.
    let page_csv = |key: &str, filter: &str| {
        let cookie = server
            .dashboard_session(key)
            .unwrap_or_else(|| panic!("{key} cannot sign in"));
        let r = server
            .request(
                "GET",
                &format!("/?{WINDOW}&bucket=day&format=csv{filter}"),
                &[("Cookie", &cookie)],
                b"",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        (r.status, r.text())
    };
    let (status, sup_page) = page_csv(&supervisor, "");
    assert_eq!(status, 200, "{sup_page}");
    assert_eq!(sup_page, page_csv(&admin, &format!("&team={team}")).1);
    assert_eq!(page_csv(&supervisor, &format!("&team={other_team}")).0, 403);

    // An agent key: its own conversations' KPIs, nothing wider, no export.
    let agent_kpis = get_json(&server, &agent_key, &format!("/v1/kpis?{WINDOW}"));
    let reference = get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}&agent={agent}"));
    assert_same(&agent_kpis["kpis"], &reference["kpis"], "agent KPIs");
    assert!(conversations(&agent_kpis) > 0, "{agent_kpis}");
    let by_agent = get_json(&server, &agent_key, &format!("/v1/kpis?{WINDOW}&group_by=agent"));
    assert_eq!(group_values(&by_agent, "agent"), BTreeSet::from([agent.clone()]));
    assert_same(
        &get_json(&server, &agent_key, &format!("/v1/kpis?{WINDOW}&team={team}"))["kpis"],
        &get_json(&server, &admin, &format!("/v1/kpis?{WINDOW}&agent={agent}&team={team}"))["kpis"],
        "another dimension narrows within the scope",
    );
    assert_forbidden(
        &get(&server, &agent_key, &format!("/v1/kpis?{WINDOW}&agent={other_agent}")),
        "another agent",
    );
    assert_forbidden(
        &get(&server, &agent_key, &format!("/v1/conversations?{WINDOW}")),
        "agent export",
    );
    assert_forbidden(
        &get(&server, &agent_key, &format!("/v1/analyses/traffic?{WINDOW}")),
        "agent analyses",
    );
}
