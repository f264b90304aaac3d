//! End to end: the experiment service over HTTP on generated traffic.
//!
//! `cxlake generate` writes a week of `dragon-mart` traffic in which the
//! `greeting_v2` experiment (customers split 50/50 by
//! `experiments::assign_variant("greeting_v2", customer, [0.5, 0.5])`) has a
//! real effect: `friendly` raises conversion by about 2 points. The test
//! defines that experiment over HTTP, starts it, checks assignment against
//! the library, the 409 on a variant change, the registry across a restart,
//! and that results ship `friendly` (with CUPED reported next to the plain
//! estimates, tighter once a pre-period has data). Then it runs an A/A experiment on the
//! same customers, logging exposures through `log=true`, and checks that it
//! neither ships nor flags a sample-ratio mismatch.

use crate::support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Server, create_key};

const TENANT: &str = "dragon-mart";

use support::run_cli as run;

/// A week of generated traffic of one tenant, ingested into `data`.
fn load_traffic(dir: &Path, data: &Path) {
    let all = dir.join("all.ndjson");
    let all_s = all.to_string_lossy().to_string();
    run(
        &[
            "generate",
            "--days",
            "8",
            "--start",
            "2026-03-01",
            "--conversations-per-day",
            "3000",
            "--seed",
            "7",
            "--out",
            &all_s,
        ],
        data,
    );
    // One tenant is enough and halves the ingest time.
    let text = std::fs::read_to_string(&all).unwrap_or_else(|e| panic!("{e}"));
    let needle = format!("\"tenant_id\":\"{TENANT}\"");
    let mine: String = text
        .lines()
        .filter(|l| l.contains(&needle))
        .flat_map(|l| [l, "\n"])
        .collect();
    let file = dir.join("tenant.ndjson");
    std::fs::write(&file, mine).unwrap_or_else(|e| panic!("{e}"));
    run(&["ingest", &file.to_string_lossy()], data);
}

struct Client<'a> {
    server: &'a Server,
    auth: String,
}

impl Client<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = self
            .server
            .request(
                method,
                path,
                &[("Authorization", &self.auth), ("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let value = if r.body.is_empty() { Value::Null } else { r.json() };
        if r.status >= 400 {
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{method} {path}"
            );
        }
        (r.status, value)
    }
}

fn client<'a>(server: &'a Server, key: &str) -> Client<'a> {
    Client {
        server,
        auth: format!("Bearer {key}"),
    }
}

fn greeting_v2() -> Value {
    json!({
        "key": "greeting_v2",
        "kind": "greeting",
        "description": "Friendlier bot greeting",
        "variants": [
            {"key": "control", "weight": 0.5, "payload": {"text": "Hello, how can I help?"}},
            {"key": "friendly", "weight": 0.5, "payload": {"text": "Hi there! 😊 What can I do for you?"}}
        ],
        "primary_metric": "conversion",
        "guardrail_metrics": ["csat", "transfer", "frt"],
        "planned_duration_days": 14
    })
}

#[test]
fn experiment_lifecycle_assignment_and_results() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    load_traffic(dir.path(), &data);
    let ops_key = create_key(&data, TENANT, "operations");
    let service_key = create_key(&data, "*", "service");
    let analyst_key = create_key(&data, TENANT, "analyst");
    let admin_key = create_key(&data, TENANT, "admin");
    let mut server = Server::start(&data, &[]);

    let ops = client(&server, &ops_key);
    let service = client(&server, &service_key);

    // Roles: the messaging core may not define experiments, operations may
    // not ask for assignments.
    let (status, _) = service.call("POST", "/v1/experiments?tenant=dragon-mart", Some(&greeting_v2()));
    assert_eq!(status, 403);

    // Invalid definitions name the field.
    let mut bad = greeting_v2();
    bad["variants"][1]["weight"] = json!(0);
    let (status, problem) = ops.call("POST", "/v1/experiments", Some(&bad));
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "variants[1].weight", "{problem}");
    let mut bad = greeting_v2();
    bad["guardrail_metrics"] = json!(["csat", "bounce_rate"]);
    let (status, problem) = ops.call("POST", "/v1/experiments", Some(&bad));
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "guardrail_metrics[1]", "{problem}");
    let mut bad = greeting_v2();
    bad["variants"][1]["key"] = json!("control");
    let (status, problem) = ops.call("POST", "/v1/experiments", Some(&bad));
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("variants[1].key")),
        "{problem}"
    );

    // Define, edit while draft, start.
    let (status, created) = ops.call("POST", "/v1/experiments", Some(&greeting_v2()));
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["state"].as_str(), created["version"].as_u64()),
        (Some("draft"), Some(1))
    );
    let (status, edited) = ops.call(
        "PATCH",
        "/v1/experiments/greeting_v2",
        Some(&json!({"description": "Friendlier bot greeting, v2 copy"})),
    );
    assert_eq!((status, edited["version"].as_u64()), (200, Some(2)), "{edited}");
    let (status, started) = ops.call("POST", "/v1/experiments/greeting_v2/start", None);
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        (started["state"].as_str(), started["version"].as_u64()),
        (Some("running"), Some(3))
    );

    // Assignment: deterministic and the library's split.
    let (status, _) = ops.call("GET", "/v1/experiments/greeting_v2/assignment?unit=cus_1", None);
    assert_eq!(status, 403, "operations do not assign");
    let units: Vec<String> = (0..40).map(|i| format!("cus_{i}")).collect();
    let mut seen = std::collections::BTreeSet::new();
    for unit in &units {
        let path = format!("/v1/experiments/greeting_v2/assignment?tenant=dragon-mart&unit={unit}&channel=whatsapp");
        let (status, first) = service.call("GET", &path, None);
        assert_eq!(status, 200, "{first}");
        let (_, again) = service.call("GET", &path, None);
        assert_eq!(first, again, "same unit, same answer");
        let expected = ["control", "friendly"][experiments::assign_variant("greeting_v2", unit, &[0.5, 0.5])];
        assert_eq!(first["variant"], expected, "{first}");
        assert_eq!(first["in_experiment"], true);
        assert_eq!(
            first["payload"],
            greeting_v2()["variants"][usize::from(expected == "friendly")]["payload"]
        );
        seen.insert(expected);
    }
    assert_eq!(seen.len(), 2, "40 customers see both variants");
    let (status, batch) = service.call(
        "POST",
        "/v1/experiments/greeting_v2/assignments?tenant=dragon-mart",
        Some(&json!({ "units": units })),
    );
    assert_eq!(status, 200, "{batch}");
    for (unit, answer) in units.iter().zip(batch["assignments"].as_array().into_iter().flatten()) {
        let expected = ["control", "friendly"][experiments::assign_variant("greeting_v2", unit, &[0.5, 0.5])];
        assert_eq!(answer["variant"], expected, "{answer}");
    }
    let (status, problem) = service.call("GET", "/v1/experiments/greeting_v2/assignment?tenant=dragon-mart", None);
    assert_eq!(
        (status, problem["parameter"].as_str()),
        (400, Some("unit")),
        "{problem}"
    );

    // A running experiment keeps its variants.
    let mut changed = greeting_v2();
    changed["variants"][1]["weight"] = json!(0.7);
    let (status, problem) = ops.call("PUT", "/v1/experiments/greeting_v2", Some(&changed));
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["field"], "variants");
    let (status, _) = ops.call(
        "PATCH",
        "/v1/experiments/greeting_v2",
        Some(&json!({"variants": [{"key": "control", "weight": 1}, {"key": "bold", "weight": 1}]})),
    );
    assert_eq!(status, 409);

    // The registry survives a restart.
    server.stop();
    let server = Server::start(&data, &[]);
    let ops = client(&server, &ops_key);
    let service = client(&server, &service_key);
    let analyst = client(&server, &analyst_key);
    let admin = client(&server, &admin_key);
    let (status, after) = ops.call("GET", "/v1/experiments/greeting_v2", None);
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        (after["state"].as_str(), after["version"].as_u64()),
        (Some("running"), Some(3))
    );
    assert_eq!(after["definition"]["description"], "Friendlier bot greeting, v2 copy");
    let (_, history) = ops.call("GET", "/v1/experiments/greeting_v2/history", None);
    let actions: Vec<&str> = history["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(actions, ["create", "edit", "start"]);

    // By default results cover the experiment's run (start to now): the
    // generated March traffic predates it.
    let (status, default_window) = analyst.call("GET", "/v1/experiments/greeting_v2/results", None);
    assert_eq!(status, 200, "{default_window}");
    assert_eq!(
        default_window["window"]["from"], after["started_at"],
        "{}",
        default_window["window"]
    );
    assert_eq!(
        default_window["variants"][0]["units"], 0,
        "{}",
        default_window["variants"]
    );
    let (status, problem) = analyst.call(
        "GET",
        "/v1/experiments/greeting_v2/results?from=2026-03-09&to=2026-03-01",
        None,
    );
    assert_eq!((status, problem["parameter"].as_str()), (400, Some("to")), "{problem}");

    // Results on traffic with a real +2 pp conversion effect: ship friendly.
    // The window holds every generated (local) day in UTC instants.
    let (status, results) = analyst.call(
        "GET",
        "/v1/experiments/greeting_v2/results?from=2026-02-27T00:00:00Z&to=2026-03-11T00:00:00Z",
        None,
    );
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["srm"]["mismatch"], false, "{results}");
    assert_eq!(results["decision"]["verdict"], "ship", "{}", results["decision"]);
    assert_eq!(results["decision"]["variant"], "friendly");
    let explanation = results["decision"]["explanation"].as_str().unwrap_or_default();
    assert!(explanation.contains("pp conversion"), "{explanation}");
    let conversion = &results["metrics"][0];
    assert_eq!(conversion["metric"], "conversion");
    assert_eq!(conversion["method"], "delta_ratio");
    let lift = conversion["comparisons"][0]["absolute_lift"]
        .as_f64()
        .unwrap_or_default();
    assert!(
        lift > 0.01 && lift < 0.04,
        "measured lift {lift} should be near the true 2 pp"
    );
    assert!(
        results["variants"][0]["units"].as_u64().unwrap_or_default() > 500,
        "{}",
        results["variants"]
    );
    // Next to the plain estimate, CUPED: nothing was generated before the
    // window, so no covariate and the same numbers.
    let cuped = &conversion["comparisons"][0]["cuped"];
    assert_eq!(cuped["units_with_pre_period"]["control"], 0, "{cuped}");
    let cuped_lift = cuped["absolute_lift"].as_f64().unwrap_or_default();
    assert!((cuped_lift - lift).abs() < 0.005, "{cuped}");
    assert_eq!(cuped["method"], "cuped_delta_ratio", "{cuped}");

    // CUPED: analysing the last four days with the four before as the
    // pre-period. Returning customers bring their earlier conversations, the
    // adjusted estimate is reported next to the plain one and is tighter.
    let (status, late) = analyst.call(
        "GET",
        "/v1/experiments/greeting_v2/results?from=2026-03-05&to=2026-03-09",
        None,
    );
    assert_eq!(status, 200, "{late}");
    assert_eq!(late["pre_period"]["to"], late["window"]["from"], "{late}");
    let late_units = late["variants"][0]["units"].as_u64().unwrap_or_default();
    assert!(
        late_units > 0 && late_units < results["variants"][0]["units"].as_u64().unwrap_or_default(),
        "{}",
        late["variants"]
    );
    // Every metric carries its CUPED reading; the generator's customers
    // return rarely within days, so the covariate is weak and the reduction
    // small, but on conversion the pre-period still tightens the interval
    // (strongly correlated pre-periods are in the unit tests).
    for metric in late["metrics"].as_array().into_iter().flatten() {
        let cuped = &metric["comparisons"][0]["cuped"];
        let name = &metric["metric"];
        assert!(
            cuped["p_value"].is_number() && cuped["sequential"]["p_value"].is_number(),
            "{name}: {cuped}"
        );
        assert!(
            cuped["theta"].is_number() && cuped["variance_reduction"].is_number(),
            "{name}: {cuped}"
        );
    }
    let c = &late["metrics"][0]["comparisons"][0];
    let cuped = &c["cuped"];
    assert!(
        cuped["units_with_pre_period"]["control"].as_u64().unwrap_or_default() > 50,
        "{cuped}"
    );
    let reduction = cuped["variance_reduction"].as_f64().unwrap_or(-1.0);
    let (plain_se, cuped_se) = (
        c["standard_error"].as_f64().unwrap_or_default(),
        cuped["standard_error"].as_f64().unwrap_or(f64::INFINITY),
    );
    assert!(reduction > 0.0 && cuped_se < plain_se, "plain SE {plain_se}, {cuped}");

    let (status, _) = service.call("GET", "/v1/experiments/greeting_v2/results?tenant=dragon-mart", None);
    assert_eq!(status, 403, "the messaging core does not read results");

    // A/A: a second split of the same customers, exposures logged through
    // the ingest path. No ship, no sample-ratio mismatch.
    let aa = json!({
        "key": "aa_check",
        "kind": "greeting",
        "variants": [{"key": "a", "weight": 1, "payload": {}}, {"key": "b", "weight": 1, "payload": {}}],
        "primary_metric": "conversion",
        "guardrail_metrics": ["resolution"]
    });
    assert_eq!(ops.call("POST", "/v1/experiments", Some(&aa)).0, 201);
    assert_eq!(ops.call("POST", "/v1/experiments/aa_check/start", None).0, 200);
    let exposed = admin.call(
        "POST",
        "/v1/sql",
        Some(&json!({"sql": "SELECT unit_id, conversation_id FROM exposures WHERE experiment_key = 'greeting_v2' ORDER BY conversation_id"})),
    );
    assert_eq!(exposed.0, 200, "{}", exposed.1);
    let rows: Vec<Value> = exposed.1["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"unit": r[0], "conversation_id": r[1], "channel": "webchat"}))
        .collect();
    assert!(rows.len() > 2000, "{} exposed conversations", rows.len());
    let mut logged = 0;
    for chunk in rows.chunks(5000) {
        let (status, out) = service.call(
            "POST",
            "/v1/experiments/aa_check/assignments?tenant=dragon-mart",
            Some(&json!({ "units": chunk, "log": true })),
        );
        assert_eq!(status, 200, "{out}");
        logged += out["logged_events"].as_u64().unwrap_or_default();
    }
    assert_eq!(logged as usize, rows.len(), "every exposure is logged once");
    let (status, aa_results) = analyst.call("GET", "/v1/experiments/aa_check/results", None);
    assert_eq!(status, 200, "{aa_results}");
    assert_eq!(aa_results["srm"]["mismatch"], false, "{}", aa_results["srm"]);
    // It says which acknowledged events it counts (the logged exposures too).
    assert!(aa_results["data_as_of"]["seq"].as_u64().is_some(), "{aa_results}");
    assert_ne!(aa_results["decision"]["verdict"], "ship", "{}", aa_results["decision"]);
    let units_aa: u64 = aa_results["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["units"].as_u64())
        .sum();
    let units_v2: u64 = results["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["units"].as_u64())
        .sum();
    assert_eq!(units_aa, units_v2, "the A/A split covers the same customers");

    // Lifecycle ends: stop, archive; a stopped experiment assigns nobody.
    assert_eq!(ops.call("POST", "/v1/experiments/aa_check/stop", None).0, 200);
    let (_, answer) = service.call(
        "GET",
        "/v1/experiments/aa_check/assignment?tenant=dragon-mart&unit=cus_1",
        None,
    );
    assert_eq!(
        (answer["in_experiment"].as_bool(), answer["reason"].as_str()),
        (Some(false), Some("not_running"))
    );
    assert_eq!(ops.call("POST", "/v1/experiments/aa_check/archive", None).0, 200);
    let (_, list) = ops.call("GET", "/v1/experiments?state=running", None);
    let running: Vec<&str> = list["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert_eq!(running, ["greeting_v2"]);

    // The same request again is answered from the results cache while the
    // tenant's data keep their version; a new exposure makes a new answer.
    let late_path = "/v1/experiments/greeting_v2/results?from=2026-03-05&to=2026-03-09";
    let (_, late) = analyst.call("GET", late_path, None);
    let (_, again) = analyst.call("GET", late_path, None);
    assert_eq!(again["computed_at"], late["computed_at"], "a cached answer");
    assert_eq!(again["variants"], late["variants"]);
    // So is the whole run of a running experiment, whose window ends now.
    let whole_path = "/v1/experiments/greeting_v2/results";
    let (_, whole) = analyst.call("GET", whole_path, None);
    let (_, whole_again) = analyst.call("GET", whole_path, None);
    assert_eq!(
        whole_again["computed_at"], whole["computed_at"],
        "a cached answer of the whole run"
    );
    let units = |r: &Value| -> u64 {
        r["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v["units"].as_u64().unwrap_or_default())
            .sum()
    };
    let probe = [
        r#"{"event_id":"cache-probe-1","tenant_id":"dragon-mart","type":"conversation.started","occurred_at":"2026-03-06T10:00:00Z","conversation_id":"cache-probe-c","customer_id":"cache-probe-u","channel":"whatsapp"}"#,
        r#"{"event_id":"cache-probe-2","tenant_id":"dragon-mart","type":"experiment.exposed","occurred_at":"2026-03-06T10:00:01Z","conversation_id":"cache-probe-c","customer_id":"cache-probe-u","experiment_key":"greeting_v2","variant_key":"control"}"#,
    ];
    let sent = server.send_json(
        &format!("Bearer {service_key}"),
        "POST",
        "/v1/events",
        &probe.join("\n"),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    let (_, fresh) = analyst.call("GET", late_path, None);
    assert_ne!(fresh["computed_at"], late["computed_at"], "new data, a new answer");
    assert_eq!(units(&fresh), units(&late) + 1, "{}", fresh["variants"]);
}
