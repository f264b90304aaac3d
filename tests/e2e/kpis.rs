//! End to end: the KPI API against the real binary.
//!
//! Fixture: `sql/tests/overview.ndjson` (tenant `acme`, hand-worked in
//! `sql/tests/overview.slt` for the local day 2025-03-30 in Europe/Berlin,
//! the 23-hour day clocks jump forward) plus a few events of a second
//! tenant, `beta`, on the same day with the same conversation and agent ids,
//! which must never show up in `acme`'s numbers (and the other way round).
//!
//! The previous local day, 2025-03-29 ([03-28T23:00Z, 03-29T23:00Z)), holds
//! only d0: customer 22:59:59, bot 23:00:01 (frt 2 s), bot resolves
//! 23:00:30 (handling 31 s); agent g3 (team t2) is online 20:00-00:00Z, of
//! which 3 h fall in that day: 3 h x 10 EUR = 30 EUR for 1 conversation.

use crate::support;

use serde_json::Value;
use support::{Response, Server, create_key};

const ACME: &str = include_str!("../../sql/tests/overview.ndjson");

/// Tenant beta, same day, same ids as acme where a leak would be visible:
/// conversation d2 on LINE answered by an agent after 10 s, agent g1 online
/// 8 h, a 1000 EUR cost, an order by customer cu3.
const BETA: &str = r#"{"event_id":"b1","tenant_id":"beta","type":"conversation.started","occurred_at":"2025-03-30T09:00:00Z","conversation_id":"d2","customer_id":"cu3","channel":"line"}
{"event_id":"b2","tenant_id":"beta","type":"message.created","occurred_at":"2025-03-30T09:00:00Z","conversation_id":"d2","sender":"customer"}
{"event_id":"b3","tenant_id":"beta","type":"message.created","occurred_at":"2025-03-30T09:00:10Z","conversation_id":"d2","sender":"agent","agent_id":"g1"}
{"event_id":"b4","tenant_id":"beta","type":"agent.status_changed","occurred_at":"2025-03-30T08:00:00Z","agent_id":"g1","team":"t1","status":"online"}
{"event_id":"b5","tenant_id":"beta","type":"agent.status_changed","occurred_at":"2025-03-30T16:00:00Z","agent_id":"g1","status":"offline"}
{"event_id":"b6","tenant_id":"beta","type":"cost.incurred","occurred_at":"2025-03-30T12:00:00Z","cost_kind":"sms","amount":"1000.00","currency":"EUR"}
{"event_id":"b7","tenant_id":"beta","type":"order.placed","occurred_at":"2025-03-30T12:30:00Z","customer_id":"cu3","order_id":"o9","amount":"999.00","currency":"EUR"}
"#;

const BERLIN_SETTINGS: &str = r#"{"time_zone": "Europe/Berlin", "hourly_rates": [{"team": "t1", "rate": 20, "currency": "EUR"}, {"rate": 10, "currency": "EUR"}]}"#;

struct Client<'a> {
    server: &'a Server,
    auth: String,
}

impl Client<'_> {
    fn get(&self, path: &str) -> Response {
        self.server
            .request("GET", path, &[("Authorization", &self.auth)], b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    fn send(&self, method: &str, path: &str, body: &str) -> Response {
        self.server.send_json(&self.auth, method, path, body)
    }
}

fn client<'a>(server: &'a Server, key: &str) -> Client<'a> {
    Client {
        server,
        auth: format!("Bearer {key}"),
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[track_caller]
fn approx(v: &Value, expected: f64) {
    let got = num(v);
    assert!((got - expected).abs() < 1e-6, "expected {expected}, got {got}");
}

/// A started server with acme and beta ingested and acme's settings set to
/// Europe/Berlin with the rates of `overview.slt`.
struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    acme_admin: String,
    acme_analyst: String,
    beta_admin: String,
    platform_admin: String,
    acme_agent: String,
}

fn start(env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let acme_admin = create_key(&data, "acme", "admin");
    let acme_analyst = create_key(&data, "acme", "analyst");
    let acme_agent = support::create_key_with(&data, "acme", "agent", &["--agent", "g1"]);
    let beta_admin = create_key(&data, "beta", "admin");
    let platform_admin = create_key(&data, "*", "admin");
    let server = Server::start(&data, env);
    let body = format!("{ACME}{BETA}");
    // Not waiting for the facts (as `Server::request` does) when the test
    // is about what a request meets before they are built.
    let auth = format!("Bearer {platform_admin}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = support::http(
        &server.addr,
        "POST",
        "/v1/events?atomic=true",
        &headers,
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("POST /v1/events: {e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = body.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(r.json()["accepted"], expected as u64, "{}", r.text());
    let seq = r.json()["seq"].as_u64().unwrap_or_else(|| panic!("{}", r.text()));
    let r = client(&server, &acme_admin).send("PUT", "/v1/settings", BERLIN_SETTINGS);
    assert_eq!(r.status, 200, "{}", r.text());
    if !env.contains(&(support::FACTS_WAIT.0, "0")) {
        server.wait_for_facts(&auth, seq);
    }
    Fixture {
        _dir: dir,
        server,
        acme_admin,
        acme_analyst,
        beta_admin,
        platform_admin,
        acme_agent,
    }
}

#[test]
fn overview_previous_period_and_csv_match_the_hand_worked_fixture() {
    let f = start(&[]);
    let acme = client(&f.server, &f.acme_analyst);
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31");

    // The local day across the DST change is 23 hours; the previous one 24.
    assert_eq!(v["window"]["from"], "2025-03-29T23:00:00Z", "{v}");
    assert_eq!(v["window"]["to"], "2025-03-30T22:00:00Z");
    assert_eq!(v["window"]["previous"]["from"], "2025-03-28T23:00:00Z");
    assert_eq!(v["window"]["previous"]["to"], "2025-03-29T23:00:00Z");
    assert_eq!(v["window"]["time_zone"], "Europe/Berlin");
    assert_eq!(v["window"]["tenant"], "acme");

    // The numbers of sql/tests/overview.slt for the same window and rates.
    let k = &v["kpis"];
    assert_eq!(k["conversations"]["value"], 4.0, "{k}");
    assert_eq!(k["conversations"]["n"], 4);
    approx(&k["frt_s"]["mean"], 61.0);
    approx(&k["frt_s"]["median"], 2.0);
    approx(&k["frt_s"]["p90"], 144.4);
    assert_eq!(k["frt_s"]["n"], 3);
    approx(&k["human_frt_s"]["mean"], 120.0);
    approx(&k["human_frt_s"]["p90"], 168.0);
    approx(&k["handling_s"]["mean"], 325.0);
    approx(&k["handling_s"]["p90"], 545.0);
    approx(&k["response_s"]["mean"], 63.25);
    approx(&k["response_s"]["median"], 36.0);
    approx(&k["response_s"]["p90"], 147.0);
    approx(&k["response_s"]["bot"]["mean"], 1.5);
    approx(&k["response_s"]["human"]["p90"], 169.0);
    approx(&k["sla_attainment"]["value"], 0.5);
    assert_eq!(k["sla_attainment"]["n"], 4);
    approx(&k["csat"]["mean"], 4.5);
    approx(&k["csat"]["top2_share"], 1.0);
    approx(&k["csat"]["response_rate"]["value"], 2.0 / 3.0);
    assert_eq!(k["csat"]["response_rate"]["n"], 3);
    approx(&k["csat"]["distribution"]["4"]["share"], 0.5);
    approx(&k["csat"]["distribution"]["3"]["share"], 0.0);
    approx(&k["resolution_rate"]["value"], 0.5);
    approx(&k["reopen_rate"]["value"], 1.0 / 3.0);
    approx(&k["transfer_rate"]["value"], 0.5);
    approx(&k["automation_rate"]["value"], 0.25);
    approx(&k["conversion_rate"]["value"], 0.5);
    approx(&k["aov"]["value"]["EUR"], 55.0);
    approx(&k["aov"]["value"]["USD"], 30.0);
    approx(&k["aov"]["orders"]["EUR"], 2.0);
    approx(&k["aov"]["net_amount"]["EUR"], 110.0);
    assert_eq!(k["aov"]["n"]["EUR"], 2);
    approx(&k["repurchase_rate"]["value"], 0.5);
    assert_eq!(k["repurchase_rate"]["n"], 2);
    approx(&k["conversations_per_agent"]["value"], 1.0);
    approx(&k["conversations_per_agent"]["per_online_hour"], 2.0 / 17.0);
    approx(&k["copilot_adoption"]["value"], 0.5);
    approx(&k["labor_cost"]["online_hours"], 17.0);
    approx(&k["labor_cost"]["unrated_hours"], 0.0);
    approx(&k["labor_cost"]["value"]["EUR"], 210.0);
    approx(&k["cost_per_conversation"]["value"]["EUR"], 53.75);
    approx(&k["cost_per_conversation"]["value"]["USD"], 0.375);
    assert!(v.get("notes").is_none(), "no dimension, nothing left out: {v}");

    // Previous local day: d0 only.
    let p = &v["previous"];
    assert_eq!(p["conversations"]["n"], 1, "{p}");
    approx(&p["frt_s"]["mean"], 2.0);
    approx(&p["handling_s"]["median"], 31.0);
    approx(&p["automation_rate"]["value"], 1.0);
    approx(&p["labor_cost"]["online_hours"], 3.0);
    approx(&p["labor_cost"]["value"]["EUR"], 30.0);
    approx(&p["cost_per_conversation"]["value"]["EUR"], 30.0);
    assert!(p["csat"]["mean"].is_null(), "no score in the previous day: {p}");

    // The same window as RFC 3339 instants: same numbers; the previous
    // period is then the same duration (23 h) before.
    let w = acme.get_json("/v1/kpis?from=2025-03-30T00:00:00%2B01:00&to=2025-03-30T22:00:00Z");
    assert_eq!(w["kpis"], v["kpis"]);
    assert_eq!(w["window"]["previous"]["from"], "2025-03-29T00:00:00Z");

    // CSV: long format, the same numbers.
    let r = acme.get("/v1/kpis?from=2025-03-30&to=2025-03-31&format=csv");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap_or("").starts_with("text/csv"));
    let csv = r.text();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("period,from,to,kpi,measure,segment,value,n"));
    assert!(
        csv.lines()
            .any(|l| l == "current,2025-03-29T23:00:00Z,2025-03-30T22:00:00Z,frt_s,mean,all,61,3"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l == "previous,2025-03-28T23:00:00Z,2025-03-29T23:00:00Z,conversations,value,all,1,1"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("current,") && l.ends_with(",labor_cost,value,EUR,210,4"))
    );
}

#[test]
fn group_by_channel_and_day_across_dst_and_filters() {
    let f = start(&[]);
    let acme = client(&f.server, &f.acme_admin);

    // By channel: d1 webchat, d2 whatsapp, d3 email, d4 sms.
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&group_by=channel");
    assert_eq!(v["group_by"], serde_json::json!(["channel"]));
    let groups = v["groups"].as_array().unwrap_or_else(|| panic!("{v}"));
    let channels: Vec<&str> = groups.iter().filter_map(|g| g["key"]["channel"].as_str()).collect();
    assert_eq!(channels, ["email", "sms", "webchat", "whatsapp"], "{v}");
    let group = |ch: &str| {
        groups
            .iter()
            .find(|g| g["key"]["channel"] == ch)
            .unwrap_or_else(|| panic!("no group {ch}"))
    };
    let wa = group("whatsapp");
    assert_eq!(wa["kpis"]["conversations"]["n"], 1);
    approx(&wa["kpis"]["frt_s"]["mean"], 1.0);
    approx(&wa["kpis"]["human_frt_s"]["mean"], 60.0);
    approx(&wa["kpis"]["aov"]["value"]["EUR"], 60.0);
    assert_eq!(wa["previous"]["conversations"]["n"], 0);
    // d0 of the previous day was a webchat conversation.
    assert_eq!(group("webchat")["previous"]["conversations"]["n"], 1);
    approx(&group("email")["kpis"]["frt_s"]["mean"], 180.0);
    approx(&group("sms")["kpis"]["sla_attainment"]["value"], 0.0);
    // Agent time and costs belong to no channel: left out, and said so.
    assert!(wa["kpis"].get("labor_cost").is_none(), "{wa}");
    assert!(wa["kpis"].get("cost_per_conversation").is_none());
    assert!(wa["kpis"]["conversations_per_agent"].get("per_online_hour").is_none());
    assert!(v["notes"][0].as_str().unwrap_or("").contains("labor_cost"), "{v}");
    // The overall numbers stay whole.
    approx(&v["kpis"]["labor_cost"]["value"]["EUR"], 210.0);

    // By local day across the DST change: 29th (24 h), 30th (23 h), 31st.
    let v = acme.get_json("/v1/kpis?from=2025-03-29&to=2025-04-01&group_by=day");
    let days: Vec<(&str, &str, &str, i64)> = v["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|g| {
            (
                g["key"]["day"].as_str().unwrap_or(""),
                g["window"]["from"].as_str().unwrap_or(""),
                g["window"]["to"].as_str().unwrap_or(""),
                g["kpis"]["conversations"]["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (
                "2025-03-29T00:00:00+01:00",
                "2025-03-28T23:00:00Z",
                "2025-03-29T23:00:00Z",
                1
            ),
            (
                "2025-03-30T00:00:00+01:00",
                "2025-03-29T23:00:00Z",
                "2025-03-30T22:00:00Z",
                4
            ),
            (
                "2025-03-31T00:00:00+02:00",
                "2025-03-30T22:00:00Z",
                "2025-03-31T22:00:00Z",
                1
            ),
        ],
        "{v}"
    );
    // A time bucket alone keeps the time-based keys: the 30th is the slt day.
    let day30 = &v["groups"][1]["kpis"];
    approx(&day30["labor_cost"]["value"]["EUR"], 210.0);
    approx(&day30["frt_s"]["p90"], 144.4);
    assert!(v["groups"][1].get("previous").is_none());
    assert_eq!(v["kpis"]["conversations"]["n"], 6);

    // Channel x day: 4 channels seen in the window x 3 days.
    let v = acme.get_json("/v1/kpis?from=2025-03-29&to=2025-04-01&group_by=channel,day");
    let groups = v["groups"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(groups.len(), 12, "{v}");
    let webchat: Vec<i64> = groups
        .iter()
        .filter(|g| g["key"]["channel"] == "webchat")
        .map(|g| g["kpis"]["conversations"]["n"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(webchat, [1, 1, 1], "d0, d1, d5: {v}");

    // Filters: several values of one dimension.
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&channel=whatsapp,email");
    assert_eq!(v["filters"]["channel"], serde_json::json!(["whatsapp", "email"]));
    assert_eq!(v["kpis"]["conversations"]["n"], 2);
    approx(&v["kpis"]["frt_s"]["mean"], 90.5);
    approx(&v["kpis"]["conversion_rate"]["value"], 1.0);
    assert!(v["kpis"].get("labor_cost").is_none());
    assert_eq!(v["previous"]["conversations"]["n"], 0);
    // A filter and a group together; an agent filter.
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&agent=g1,g2&group_by=agent");
    assert_eq!(v["kpis"]["conversations"]["n"], 2);
    let agents: Vec<&str> = v["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|g| g["key"]["agent"].as_str())
        .collect();
    assert_eq!(agents, ["g1", "g2"]);
    // No fixture conversation has a tag: a tag filter matches nothing, and
    // grouping by tag puts everything in the "no tag" group.
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&tag=shipping");
    assert_eq!(v["kpis"]["conversations"]["n"], 0);
    assert!(v["kpis"]["frt_s"]["mean"].is_null());
    let v = acme.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&group_by=tag");
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(v["groups"][0]["key"]["tag"].is_null());
    assert_eq!(v["groups"][0]["kpis"]["conversations"]["n"], 4);

    // CSV with groups: a column per group_by entry.
    let r = acme.get("/v1/kpis?from=2025-03-30&to=2025-03-31&group_by=channel&format=csv");
    assert_eq!(r.status, 200, "{}", r.text());
    let csv = r.text();
    assert_eq!(
        csv.lines().next(),
        Some("period,from,to,channel,kpi,measure,segment,value,n")
    );
    assert!(
        csv.lines()
            .any(|l| l.ends_with(",whatsapp,human_frt_s,mean,all,60,1") && l.starts_with("current,")),
        "{csv}"
    );
}

#[track_caller]
fn assert_problem(r: &Response, status: u16, parameter: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    if status == 400 {
        assert_eq!(v["parameter"], parameter, "{v}");
        assert!(v["detail"].as_str().unwrap_or("").starts_with(parameter), "{v}");
    }
}

#[test]
fn bad_parameters_get_a_problem_naming_the_parameter() {
    let f = start(&[("CXLAKE_KPI_MAX_DAYS", "31")]);
    let acme = client(&f.server, &f.acme_admin);
    let day = "from=2025-03-30&to=2025-03-31";
    let cases: [(String, &str); 12] = [
        (format!("/v1/kpis?{day}&group_by=colour"), "group_by"),
        (format!("/v1/kpis?{day}&group_by=day,week"), "group_by"),
        (format!("/v1/kpis?{day}&colour=red"), "colour"),
        ("/v1/kpis?from=2025-03-31&to=2025-03-30".into(), "from"),
        ("/v1/kpis?from=2025-03-30&to=2025-03-30".into(), "from"),
        ("/v1/kpis?from=30.03.2025&to=2025-03-31".into(), "from"),
        ("/v1/kpis?from=2025-03-30&to=2025-03-31T00:00:00".into(), "to"),
        ("/v1/kpis?to=2025-03-31".into(), "from"),
        ("/v1/kpis?from=2025-01-01&to=2025-03-31".into(), "to"),
        (format!("/v1/kpis?{day}&channel=telegram"), "channel"),
        (format!("/v1/kpis?{day}&format=xml"), "format"),
        (format!("/v1/conversations?{day}&format=xlsx"), "format"),
    ];
    for (path, parameter) in &cases {
        assert_problem(&acme.get(path), 400, parameter);
    }
    // Within the configured maximum it is fine.
    assert_eq!(acme.get("/v1/kpis?from=2025-03-01&to=2025-03-31").status, 200);
    // 720 hour buckets are more groups than one request may ask for.
    assert_problem(
        &acme.get("/v1/kpis?from=2025-03-01&to=2025-03-31&group_by=hour"),
        400,
        "group_by",
    );

    // Settings: a malformed time zone and other bad values name the field.
    let r = acme.send("PUT", "/v1/settings", r#"{"time_zone": "Europe/Atlantis"}"#);
    assert_problem(&r, 400, "time_zone");
    let r = acme.send("PUT", "/v1/settings", r#"{"time_zone": "+08:00"}"#);
    assert_problem(&r, 400, "time_zone");
    let r = acme.send("PUT", "/v1/settings", r#"{"sla_target_s": -5}"#);
    assert_problem(&r, 400, "sla_target_s");
    let r = acme.send("PUT", "/v1/settings", r#"{"sla_target": 60}"#);
    assert_eq!(r.status, 400, "unknown field: {}", r.text());
    // The stored settings are unchanged.
    assert_eq!(acme.get_json("/v1/settings")["time_zone"], "Europe/Berlin");
}

#[test]
fn settings_are_durable_and_change_the_numbers() {
    let f = start(&[]);
    let admin = client(&f.server, &f.acme_admin);
    let analyst = client(&f.server, &f.acme_analyst);
    let s = admin.get_json("/v1/settings");
    assert_eq!(s["time_zone"], "Europe/Berlin");
    assert_eq!(s["sla_target_s"], 120.0);
    assert_eq!(s["attribution_window_days"], 7);
    let stored = std::fs::read_to_string(f.server.data.join("settings").join("acme.json"))
        .unwrap_or_else(|e| panic!("settings file: {e}"));
    assert!(stored.contains("Europe/Berlin"), "{stored}");
    // Beta has the defaults: UTC, no rates.
    let beta = client(&f.server, &f.beta_admin).get_json("/v1/settings");
    assert_eq!(beta["time_zone"], "UTC");
    assert_eq!(beta["hourly_rates"], serde_json::json!([]));

    // Only admins touch settings.
    assert_problem(&analyst.get("/v1/settings"), 403, "");
    assert_problem(&analyst.send("PUT", "/v1/settings", "{}"), 403, "");

    // An SLA target of 200 s: d3 (180 s) now meets it, d4 (never answered) not.
    let mut changed: Value = serde_json::from_str(BERLIN_SETTINGS).unwrap_or_else(|e| panic!("{e}"));
    changed["sla_target_s"] = 200.0.into();
    let r = admin.send("PUT", "/v1/settings", &changed.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = analyst.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31");
    approx(&v["kpis"]["sla_attainment"]["value"], 0.75);

    // Back to UTC: the same dates are now UTC days. [03-30T00Z, 03-31T00Z)
    // holds d2, d3, d4 and d5 (22:00Z), not d1 (23:00Z on the 29th).
    let r = admin.send("PUT", "/v1/settings", r#"{"time_zone": "UTC"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = analyst.get_json("/v1/kpis?from=2025-03-30&to=2025-03-31&group_by=channel");
    assert_eq!(v["window"]["from"], "2025-03-30T00:00:00Z");
    assert_eq!(v["kpis"]["conversations"]["n"], 4);
    // No rates any more: every online hour is unrated.
    assert!(
        v["kpis"]["labor_cost"]["value"]
            .as_object()
            .is_some_and(|m| m.is_empty()),
        "{v}"
    );
    assert!(num(&v["kpis"]["labor_cost"]["unrated_hours"]) > 0.0);

    // The settings survive a restart.
    let mut server = f.server;
    server.stop();
    let server = Server::start(&server.data, &[]);
    assert_eq!(
        client(&server, &f.acme_admin).get_json("/v1/settings")["time_zone"],
        "UTC"
    );
}

#[test]
fn a_key_never_sees_another_tenant() {
    let f = start(&[]);
    let day = "from=2025-03-30&to=2025-03-31";
    let beta = client(&f.server, &f.beta_admin);
    let acme = client(&f.server, &f.acme_admin);
    let platform = client(&f.server, &f.platform_admin);

    // Beta's own numbers: one LINE conversation answered after 10 s by g1
    // (beta's UTC day), 8 online hours without a rate, its own order.
    let v = beta.get_json(&format!("/v1/kpis?{day}"));
    assert_eq!(v["window"]["tenant"], "beta");
    assert_eq!(v["kpis"]["conversations"]["n"], 1, "{v}");
    approx(&v["kpis"]["frt_s"]["mean"], 10.0);
    approx(&v["kpis"]["labor_cost"]["online_hours"], 8.0);
    approx(&v["kpis"]["cost_per_conversation"]["value"]["EUR"], 1000.0);
    assert!(
        v["kpis"]["aov"]["value"].get("USD").is_none(),
        "acme's o4 must not leak: {v}"
    );
    // Acme's numbers are those of the slt, untouched by beta's events.
    let a = acme.get_json(&format!("/v1/kpis?{day}"));
    assert_eq!(a["kpis"]["conversations"]["n"], 4);
    approx(&a["kpis"]["labor_cost"]["online_hours"], 17.0);
    approx(&a["kpis"]["cost_per_conversation"]["value"]["EUR"], 53.75);
    let grouped = acme.get_json(&format!("/v1/kpis?{day}&group_by=channel"));
    let channels: Vec<&str> = grouped["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["key"]["channel"].as_str()).collect())
        .unwrap_or_default();
    assert!(!channels.contains(&"line"), "{channels:?}");

    // A tenant key cannot name another tenant, anywhere.
    assert_problem(&beta.get(&format!("/v1/kpis?{day}&tenant=acme")), 403, "");
    assert_problem(&beta.get(&format!("/v1/conversations?{day}&tenant=acme")), 403, "");
    assert_problem(&beta.get("/v1/settings?tenant=acme"), 403, "");
    // Naming its own tenant is fine.
    assert_eq!(beta.get(&format!("/v1/kpis?{day}&tenant=beta")).status, 200);
    // A platform-wide key must name the tenant, and then sees exactly it.
    assert_problem(&platform.get(&format!("/v1/kpis?{day}")), 400, "tenant");
    assert_problem(&platform.get(&format!("/v1/conversations?{day}")), 400, "tenant");
    assert_problem(&platform.get(&format!("/v1/kpis?{day}&tenant=Acme!")), 400, "tenant");
    let p = platform.get_json(&format!("/v1/kpis?{day}&tenant=acme"));
    assert_eq!(p["kpis"], a["kpis"]);
    // Roles: an agent key reads its own conversations' KPIs (g1 answered
    // d2), never another agent's, and exports nothing.
    let agent = client(&f.server, &f.acme_agent);
    let own = agent.get_json(&format!("/v1/kpis?{day}"));
    assert_eq!(own["kpis"], acme.get_json(&format!("/v1/kpis?{day}&agent=g1"))["kpis"]);
    assert_eq!(own["kpis"]["conversations"]["n"], 1, "{own}");
    assert_problem(&agent.get(&format!("/v1/kpis?{day}&agent=g2")), 403, "");
    assert_problem(&agent.get(&format!("/v1/conversations?{day}")), 403, "");

    // The export holds the tenant's conversations only.
    let r = beta.get(&format!("/v1/conversations?{day}&format=ndjson"));
    assert_eq!(r.status, 200, "{}", r.text());
    let rows: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["tenant_id"], "beta");
    assert_eq!(rows[0]["channel"], "line");
}

#[test]
fn conversations_export_as_csv_ndjson_and_parquet() {
    let f = start(&[]);
    let acme = client(&f.server, &f.acme_analyst);
    let day = "from=2025-03-30&to=2025-03-31";

    let r = acme.get(&format!("/v1/conversations?{day}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap_or("").starts_with("text/csv"));
    let csv = r.text();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let (id, frt, sla) = (col("conversation_id"), col("frt_s"), col("sla_met"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r[id]).collect();
    assert_eq!(ids, ["d1", "d2", "d3", "d4"], "{csv}");
    assert_eq!(rows[2][frt], "180.0", "{csv}");
    assert_eq!(rows[2][sla], "false");
    assert_eq!(rows[1][sla], "true");

    let r = acme.get(&format!("/v1/conversations?{day}&format=ndjson"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let rows: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["conversation_id"].as_str()).collect();
    assert_eq!(ids, ["d1", "d2", "d3", "d4"]);
    assert_eq!(rows[1]["channel"], "whatsapp");
    approx(&rows[1]["human_frt_s"], 60.0);
    approx(&rows[1]["order_net_amount"], 60.0);

    let r = acme.get(&format!("/v1/conversations?{day}&format=parquet"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"PAR1") && r.body.ends_with(b"PAR1"));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(r.body))
        .unwrap_or_else(|e| panic!("{e}"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let n: usize = reader.map(|b| b.map(|b| b.num_rows()).unwrap_or(0)).sum();
    assert_eq!(n, 4);

    // An empty window still has the CSV header.
    let r = acme.get("/v1/conversations?from=2024-01-01&to=2024-01-02");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("tenant_id,conversation_id,"), "{}", r.text());
    assert_eq!(r.text().lines().count(), 1);
}

/// The KPIs come from rollups kept up to date as events
/// arrive. A conversation whose events come in three requests, across
/// flushes (one event per flush) and across midnight UTC, comes out as if
/// all its events had come at once.
#[test]
fn rollups_follow_a_conversation_across_flushes_and_midnight() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let admin = create_key(&data, "gamma", "admin");
    let server = Server::start(&data, &[("CXLAKE_FLUSH_MAX_EVENTS", "1")]);
    let gamma = client(&server, &admin);
    let post = |lines: &str| {
        let r = gamma.send("POST", "/v1/events", lines);
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let kpis = || gamma.get_json("/v1/kpis?from=2025-03-30&to=2025-04-01")["kpis"].clone();
    post(concat!(
        r#"{"event_id":"g1","tenant_id":"gamma","type":"conversation.started","occurred_at":"2025-03-30T23:59:00Z","conversation_id":"c1","customer_id":"u1","channel":"webchat"}"#,
        "\n",
        r#"{"event_id":"g2","tenant_id":"gamma","type":"message.created","occurred_at":"2025-03-30T23:59:10Z","conversation_id":"c1","sender":"customer"}"#,
        "\n"
    ));
    let k = kpis();
    assert_eq!(k["conversations"]["n"], 1, "{k}");
    assert_eq!(k["frt_s"]["n"], 0, "{k}");
    assert_eq!(k["resolution_rate"]["value"], 0.0, "{k}");
    // the reply after midnight, then the resolve: other days, other flushes
    post(concat!(
        r#"{"event_id":"g3","tenant_id":"gamma","type":"message.created","occurred_at":"2025-03-31T00:00:40Z","conversation_id":"c1","sender":"agent","agent_id":"a1"}"#,
        "\n"
    ));
    let k = kpis();
    approx(&k["frt_s"]["median"], 90.0);
    approx(&k["human_frt_s"]["mean"], 90.0);
    assert_eq!(k["conversations"]["n"], 1, "{k}");
    post(concat!(
        r#"{"event_id":"g4","tenant_id":"gamma","type":"conversation.resolved","occurred_at":"2025-03-31T00:05:10Z","conversation_id":"c1","resolved_by":"agent","agent_id":"a1"}"#,
        "\n"
    ));
    let k = kpis();
    assert_eq!(k["resolution_rate"]["value"], 1.0, "{k}");
    approx(&k["handling_s"]["p90"], 360.0);
    assert_eq!(k["conversations"]["n"], 1, "{k}");
}

/// Groups are the combinations of dimension values that occur, not the
/// product of each dimension's values: 21 agents, each alone in a team of
/// their own, are 21 `team,agent` groups (the product, 441, would pass
/// the 400-group limit), and with a day bucket 21 series of 2 days, with
/// no series for a team and an agent that never met.
#[test]
fn grouping_by_several_dimensions_lists_the_combinations_that_occur() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "admin");
    let server = Server::start(&data, &[]);
    let acme = client(&server, &key);
    let mut body = String::new();
    for i in 0..21 {
        let (c, at) = (format!("c{i}"), format!("2025-05-0{}T10:{i:02}:00Z", 1 + i % 2));
        body.push_str(&format!(
            r#"{{"event_id":"{c}-1","tenant_id":"acme","type":"conversation.started","occurred_at":"{at}","conversation_id":"{c}","customer_id":"cu{i}","channel":"webchat"}}
{{"event_id":"{c}-2","tenant_id":"acme","type":"conversation.assigned","occurred_at":"{at}","conversation_id":"{c}","agent_id":"g{i}","team":"t{i}"}}
"#
        ));
    }
    let r = acme.send("POST", "/v1/events", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let window = "from=2025-05-01&to=2025-05-03";

    let v = acme.get_json(&format!("/v1/kpis?{window}&group_by=team,agent"));
    let groups = v["groups"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(groups.len(), 21, "{v}");
    for g in groups {
        let (team, agent) = (g["key"]["team"].as_str(), g["key"]["agent"].as_str());
        assert_eq!(team.map(|t| &t[1..]), agent.map(|a| &a[1..]), "{g}");
        assert_eq!(g["kpis"]["conversations"]["n"], 1, "{g}");
    }

    let v = acme.get_json(&format!("/v1/kpis?{window}&group_by=team,agent,day"));
    let groups = v["groups"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(groups.len(), 42, "21 pairs x 2 days: {v}");
    let total: i64 = groups
        .iter()
        .filter_map(|g| g["kpis"]["conversations"]["n"].as_i64())
        .sum();
    assert_eq!(total, 21, "{v}");
    assert!(
        groups
            .iter()
            .all(|g| g["key"]["team"].as_str().map(|t| &t[1..]) == g["key"]["agent"].as_str().map(|a| &a[1..])),
        "{v}"
    );
}

/// `cxlake facts verify` recomputes a sample of conversations with the views
/// and finds the served rows equal, for a tenant with the default settings
/// and one with its own attribution window and SLA target.
#[test]
fn facts_verify_finds_the_served_rows_equal_to_the_views() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, file) = (dir.path().join("data"), dir.path().join("traffic.ndjson"));
    support::generate_and_ingest(&file, &data, 7, "2026-03-26", 150, 5);
    std::fs::create_dir_all(data.join("settings")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        data.join("settings/modehaus_eu.json"),
        r#"{"attribution_window_days": 2, "sla_target_s": 30}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data_s = data.to_string_lossy().to_string();
    let out = support::run_cli_args(&["facts", "verify", "--data", &data_s, "--sample", "200"]);
    let report = String::from_utf8_lossy(&out.stdout);
    for tenant in ["dragon-mart", "modehaus_eu", "streamly-us"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{tenant}: ")))
            .unwrap_or_else(|| panic!("no line for {tenant}:\n{report}"));
        assert!(line.ends_with(", 0 differences"), "{line}");
        assert!(line.contains(": 200 of "), "{line}");
    }
}

/// `/readyz` is readiness, `/healthz` liveness: once a tenant's facts are
/// built (a KPI answer proves it) the tenant counts as ready; without a key
/// only the counts are shown, with one only the tenants the key may see.
#[test]
fn readyz_tells_whose_facts_are_built_to_whom_may_know() {
    let f = start(&[]);
    for key in [&f.acme_admin, &f.beta_admin] {
        client(&f.server, key).get_json("/v1/kpis?from=2025-03-30&to=2025-03-31");
    }
    let get = |headers: &[(&str, &str)]| {
        let r = f
            .server
            .request("GET", "/readyz", headers, b"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let anonymous = get(&[]);
    assert_eq!(anonymous["status"], "ready", "{anonymous}");
    assert_eq!(anonymous["tenants"], 2, "{anonymous}");
    assert_eq!(anonymous["facts"]["ready"], 2, "{anonymous}");
    assert!(
        anonymous.get("tenant_facts").is_none(),
        "no tenant names without a key: {anonymous}"
    );
    let acme = get(&[("Authorization", &format!("Bearer {}", f.acme_admin))]);
    assert_eq!(acme["tenant_facts"], serde_json::json!({"acme": "ready"}), "{acme}");
    let platform = get(&[("Authorization", &format!("Bearer {}", f.platform_admin))]);
    assert_eq!(
        platform["tenant_facts"],
        serde_json::json!({"acme": "ready", "beta": "ready"}),
        "{platform}"
    );
}

/// With no wait for first builds, a tenant whose facts are not built yet
/// is answered at once: 503 `facts-not-ready` with `Retry-After` from the
/// API, a page that reloads itself; retried, the same requests succeed.
#[test]
fn a_tenant_whose_facts_are_being_built_is_told_to_come_back() {
    let f = start(&[(support::FACTS_WAIT.0, "0"), ("CXLAKE_FACTS_BUILD_DELAY_MS", "3000")]);
    let acme = client(&f.server, &f.acme_analyst);
    let path = "/v1/kpis?from=2025-03-30&to=2025-03-31";
    let r = acme.get(path);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["type"], "/problems/facts-not-ready", "{}", r.text());
    assert!(r.text().contains("tenant acme"), "{}", r.text());
    let cookie = f.server.dashboard_session(&f.beta_admin).unwrap_or_default();
    let page = |cookie: &str| {
        f.server
            .request("GET", "/?from=2025-03-30&to=2025-03-31", &[("Cookie", cookie)], b"")
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let p = page(&cookie);
    assert_eq!(p.status, 503, "{}", p.text());
    assert_eq!(p.header("refresh"), Some("1"));
    assert!(p.text().contains("being built"), "{}", p.text());
    // The builds go on without the requests; retried, both are answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut answered = (false, false);
    while answered != (true, true) {
        assert!(std::time::Instant::now() < deadline, "the builds never finished");
        std::thread::sleep(std::time::Duration::from_millis(200));
        answered.0 |= acme.get(path).status == 200;
        answered.1 |= page(&cookie).status == 200;
    }
    assert_eq!(acme.get_json(path)["kpis"]["conversations"]["value"], 4.0);
}

/// Read your writes: ingest answers each batch's `seq`, and a KPI answer
/// says the `seq` it reflects (`data_as_of`); once that reaches the
/// batch's, the batch is counted.
#[test]
fn a_kpi_answer_says_which_acknowledged_events_it_counts() {
    let f = start(&[]);
    let acme = client(&f.server, &f.acme_admin);
    let path = "/v1/kpis?from=2025-03-30&to=2025-03-31";
    let before = acme.get_json(path);
    let seen = before["data_as_of"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("{before}"));
    assert_eq!(before["kpis"]["conversations"]["value"], 4.0, "{before}");
    let r = acme.send(
        "POST",
        "/v1/events",
        r#"{"event_id":"new-1","tenant_id":"acme","type":"conversation.started","occurred_at":"2025-03-30T10:00:00Z","conversation_id":"new1","customer_id":"cu9","channel":"webchat"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seq = r.json()["seq"].as_u64().unwrap_or_else(|| panic!("{}", r.text()));
    assert!(seq > seen, "a new batch's seq {seq} comes after {seen}");
    let after = acme.get_json(path);
    assert!(after["data_as_of"]["seq"].as_u64() >= Some(seq), "{after}");
    assert_eq!(after["kpis"]["conversations"]["value"], 5.0, "{after}");
    // A retry stores nothing new: seq 0.
    let again = acme.send(
        "POST",
        "/v1/events",
        r#"{"event_id":"new-1","tenant_id":"acme","type":"conversation.started","occurred_at":"2025-03-30T10:00:00Z","conversation_id":"new1","customer_id":"cu9","channel":"webchat"}"#,
    );
    assert_eq!(again.json()["seq"], 0, "{}", again.text());
}

/// The facts are saved to the lake as Delta tables that Python's
/// `deltalake` reads (the `conversations` rows analysts query, every
/// column); a restarted server reads them back instead of building them
/// from events (its manifest is not rewritten: nothing was recomputed)
/// and answers as before.
#[test]
fn facts_are_saved_to_the_lake_and_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (data, file) = (dir.path().join("data"), dir.path().join("traffic.ndjson"));
    support::generate_and_ingest(&file, &data, 3, "2026-03-27", 150, 13);
    // One tenant with an SLA target of its own.
    std::fs::create_dir_all(data.join("settings")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("settings/modehaus_eu.json"), r#"{"sla_target_s": 30}"#).unwrap_or_else(|e| panic!("{e}"));
    let key = create_key(&data, "dragon-mart", "admin");
    let keys: Vec<(&str, String)> = ["dragon-mart", "modehaus_eu", "streamly-us"]
        .into_iter()
        .map(|t| (t, create_key(&data, t, "analyst")))
        .collect();
    let platform = create_key(&data, "*", "analyst");
    let mut server = Server::start(&data, &[]);
    let kpis = "/v1/kpis?from=2026-03-27&to=2026-03-30&group_by=channel";
    let answer = |server: &Server| {
        let mut v = client(server, &key).get_json(kpis);
        v.as_object_mut().map(|o| o.remove("data_as_of"));
        v
    };
    let before = answer(&server);
    let rows_sql = "SELECT * FROM conversations ORDER BY conversation_id";
    let rows = |server: &Server| {
        let mut v = server.sql(&key, rows_sql);
        v.as_object_mut().map(|o| o.remove("elapsed_ms"));
        v
    };
    let rows_before = rows(&server);

    // Saved within a second or so of the build.
    let manifest = data.join("lake/facts/_manifests/dragon-mart.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !manifest.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no facts saved at {}",
            manifest.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let saved = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{e}"));

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/facts/read_facts.py");
    let table = data.join("lake/facts/conversations");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&table)
        .arg("dragon-mart")
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed: {e}"));
    assert!(
        out.status.success(),
        "reading the facts with deltalake (pip install deltalake pyarrow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&Value> = rows_before["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{rows_before}"))
        .iter()
        .map(|r| &r[1])
        .collect();
    assert_eq!(
        rows_before["columns"][1]["name"], "conversation_id",
        "{}",
        rows_before["columns"]
    );
    assert!(ids.len() > 100, "{} conversations", ids.len());
    assert_eq!(read["ids"].as_array().map(|a| a.iter().collect::<Vec<_>>()), Some(ids));
    let columns = read["columns"].as_array().unwrap_or_else(|| panic!("{read}"));
    for c in rows_before["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("{rows_before}"))
    {
        assert!(columns.contains(&c["name"]), "{c} missing from {read}");
    }
    assert_eq!(read["partitions"], serde_json::json!(["first_event_date", "tenant_id"]));

    server.stop();
    let server = Server::start(&data, &[]);
    assert_eq!(answer(&server), before);
    assert_eq!(rows(&server), rows_before);

    // Platform-wide, `conversations` is every tenant's rows, `sla_met`
    // against each tenant's own target.
    let sorted = "SELECT * FROM conversations ORDER BY conversation_id";
    let mut total = 0;
    for (tenant, key) in &keys {
        let own = server.sql(key, sorted)["rows"].clone();
        let seen = server.sql(
            &platform,
            &format!("SELECT * FROM conversations WHERE tenant_id = '{tenant}' ORDER BY conversation_id"),
        )["rows"]
            .clone();
        assert!(own.as_array().is_some_and(|r| !r.is_empty()), "{tenant}: {own}");
        assert_eq!(seen, own, "{tenant}");
        total += own.as_array().map_or(0, Vec::len);
    }
    let all = server.sql(&platform, "SELECT count(*) FROM conversations");
    assert_eq!(all["rows"][0][0], total, "{all}");
    // ... and the 30 s target decides some rows the default 120 s would not.
    let between = "SELECT count(*) FROM conversations WHERE NOT sla_met \
                   AND first_reply_at - first_customer_message_at <= INTERVAL '120 seconds'";
    let decided = server.sql(&keys[1].1, between);
    assert!(decided["rows"][0][0].as_u64() > Some(0), "{decided}");
    // Another save round passes with nothing to write.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{e}")),
        saved,
        "the facts were read back, not built anew"
    );
}
