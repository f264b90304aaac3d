//! End to end: arrival forecasts and staffing plans for the routing core
//! (`/v1/forecast/*`) and `cxlake backtest`, against three weeks of traffic
//! from the real generator, ingested by the real binary.
//!
//! Europe/Berlin springs forward on 2026-03-29 (46 half-hours) and
//! America/New_York on 2026-03-08 (92 quarter hours, 46 half-hours).

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::{BIN, Server, create_key};

fn run(args: &[&str]) -> std::process::Output {
    support::run_cli_args(args)
}

fn get(server: &Server, key: Option<&str>, path: &str) -> support::Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    server
        .request("GET", path, &headers, b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn post(server: &Server, key: &str, path: &str, body: &str) -> support::Response {
    let auth = format!("Bearer {key}");
    server
        .request(
            "POST",
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn ok_json(r: &support::Response, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    r.json()
}

/// A 400 problem naming `param`.
fn assert_bad(r: &support::Response, param: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
    let v = r.json();
    assert_eq!(v["parameter"].as_str(), Some(param), "{what}: {v}");
    assert!(!v["detail"].as_str().unwrap_or("").is_empty(), "{what}: {v}");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn intervals(v: &Value) -> &Vec<Value> {
    v["intervals"].as_array().unwrap_or_else(|| panic!("no intervals: {v}"))
}

fn check_quantiles(v: &Value) {
    for i in intervals(v) {
        let (mean, p10, p50, p90) = (f(&i["mean"]), f(&i["p10"]), f(&i["p50"]), f(&i["p90"]));
        assert!(mean >= 0.0 && mean.is_finite(), "{i}");
        assert!(p10 <= p50 && p50 <= p90, "quantiles out of order: {i}");
    }
}

#[test]
fn forecasts_from_the_lake() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let file = dir.path().join("traffic.ndjson");
    let (data_s, file_s) = (data.to_string_lossy().to_string(), file.to_string_lossy().to_string());
    run(&[
        "generate",
        "--days",
        "21",
        "--conversations-per-day",
        "300",
        "--seed",
        "7",
        "--start",
        "2026-03-01",
        "--out",
        &file_s,
    ]);
    run(&["ingest", "--data", &data_s, &file_s]);

    // The accuracy report, read straight from the data directory.
    let out = run(&[
        "backtest",
        "--data",
        &data_s,
        "--tenant",
        "modehaus_eu",
        "--interval",
        "30",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "modehaus_eu · channel:",
        "held out",
        "aggregate_split",
        "at least as accurate as the best baseline in",
        "WAPE",
        "MAPE",
        "last_week",
        "mean_k",
        "median_k",
        "poisson_trend",
        "noise floor",
        "chosen",
    ] {
        assert!(report.contains(needle), "backtest report lacks {needle:?}:\n{report}");
    }
    assert!(!report.contains("streamly-us"), "--tenant filters:\n{report}");
    let bad = Command::new(BIN)
        .args(["backtest", "--data", &data_s, "--interval", "20"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.status.success(), "--interval 20 must fail");

    let service = create_key(&data, "modehaus_eu", "service");
    let platform = create_key(&data, "*", "admin");
    let agent = support::create_key_with(&data, "modehaus_eu", "agent", &["--agent", "a1"]);
    let analyst = create_key(&data, "modehaus_eu", "analyst");
    let server = Server::start(&data, &[]);

    // The busiest channel × language × team queue of the tenant.
    let top = server.sql(
        &platform,
        "SELECT channel, language, team, count(*) AS n FROM conversations \
         WHERE tenant_id = 'modehaus_eu' AND team IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3 LIMIT 1",
    );
    let row = &top["rows"][0];
    let queue = format!(
        "channel:{},language:{},team:{}",
        row[0].as_str().unwrap_or(""),
        row[1].as_str().unwrap_or(""),
        row[2].as_str().unwrap_or("")
    );
    let base = format!("queue={queue}&tz=Europe/Berlin&interval=30");
    // The queue's team's supervisor (the server reads keys made while it runs).
    let team = row[2].as_str().unwrap_or("");
    let supervisor = support::create_key_with(&data, "modehaus_eu", "supervisor", &["--team", team]);

    // The spring-forward day: 46 half-hours, 01:30 followed by 03:00.
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/arrivals?{base}&from=2026-03-29&to=2026-03-30"),
        ),
        "arrivals on the DST day",
    );
    let iv = intervals(&v);
    assert_eq!(iv.len(), 46, "{v}");
    assert_eq!(iv[0]["start"].as_str(), Some("2026-03-29T00:00:00+01:00"), "{v}");
    assert_eq!(iv[3]["start"].as_str(), Some("2026-03-29T01:30:00+01:00"), "{v}");
    assert_eq!(iv[4]["start"].as_str(), Some("2026-03-29T03:00:00+02:00"), "{v}");
    assert_eq!(v["queue"].as_str(), Some(queue.as_str()), "{v}");
    assert_eq!(v["tenant"].as_str(), Some("modehaus_eu"), "{v}");
    // What it counts, as `/v1/kpis` says it.
    assert!(v["data_as_of"]["seq"].as_u64().is_some(), "{v}");
    check_quantiles(&v);
    let total: f64 = iv.iter().map(|i| f(&i["mean"])).sum();
    assert!(total > 1.0, "a busy queue expects arrivals on a Sunday: {v}");
    // Every candidate is scored, baselines included; a queue narrower than
    // the tenant may be forecast as its share of the tenant's total.
    let methods = ["last_week", "mean_k", "median_k", "poisson_trend", "aggregate_split"];
    assert!(methods.contains(&v["method"].as_str().unwrap_or("")), "{v}");
    assert!(
        ["wape", "poisson_deviance"].contains(&v["selected_by"].as_str().unwrap_or("")),
        "{v}"
    );
    let scored: Vec<&str> = v["backtest"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["method"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(scored, methods, "three weeks of history allow a backtest: {v}");
    assert!(f(&v["noise_floor_wape"]) > 0.0, "{v}");
    assert!(f(&v["history"]["conversations"]) > 100.0, "{v}");

    // An ordinary day at 15 minutes; 14 days at 30 minutes across the DST switch.
    let v = ok_json(
        &get(
            &server,
            Some(&supervisor),
            &format!("/v1/forecast/arrivals?queue={queue}&tz=Europe/Berlin&interval=15&from=2026-03-28&to=2026-03-29"),
        ),
        "15-minute arrivals",
    );
    assert_eq!(intervals(&v).len(), 96, "{v}");
    check_quantiles(&v);
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/arrivals?{base}&from=2026-03-23&to=2026-04-06"),
        ),
        "14 days",
    );
    assert_eq!(intervals(&v).len(), 14 * 48 - 2, "{v}");
    // A platform-wide key names the tenant.
    let v = ok_json(
        &get(
            &server,
            Some(&platform),
            &format!("/v1/forecast/arrivals?tenant=modehaus_eu&{base}&from=2026-03-29&to=2026-03-30"),
        ),
        "platform key",
    );
    assert_eq!(intervals(&v).len(), 46);

    // Staffing: agents per interval agree with the single calculation.
    let sq = "service_level=0.8&target_s=60&concurrency=3&shrinkage=0.25";
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/staffing?{base}&from=2026-03-29&to=2026-03-30&{sq}"),
        ),
        "staffing",
    );
    assert!(v["data_as_of"]["seq"].as_u64().is_some(), "{v}");
    let a = &v["assumptions"];
    assert_eq!(a["aht_source"].as_str(), Some("lake"), "{v}");
    let aht = f(&a["aht_s"]);
    assert!(aht > 10.0 && aht < 86_400.0, "measured handle time: {a}");
    let share = f(&a["human_share"]);
    assert!(share > 0.0 && share <= 1.0, "{a}");
    let iv = intervals(&v);
    assert_eq!(iv.len(), 46);
    for i in iv {
        let staffed = f(&i["staffed_arrivals"]);
        assert!((staffed - f(&i["mean"]) * share).abs() < 1e-9, "{i}");
        if staffed == 0.0 {
            assert_eq!(i["agents"].as_u64(), Some(0), "no arrivals, no agents: {i}");
        }
    }
    // The four busiest intervals, against GET /v1/staffing/erlang. (JSON
    // numbers may come back one ulp off, so the floats are compared to 1e-9.)
    let mut busiest: Vec<&Value> = iv.iter().collect();
    busiest.sort_by(|a, b| f(&b["staffed_arrivals"]).total_cmp(&f(&a["staffed_arrivals"])));
    let mut compared = 0;
    for i in busiest.into_iter().take(4) {
        let staffed = f(&i["staffed_arrivals"]);
        if staffed == 0.0 {
            continue;
        }
        let mut q = format!("/v1/staffing/erlang?arrivals={staffed}&interval_s=1800&aht_s={aht}&{sq}");
        if let Some(p) = a["patience_s"].as_f64() {
            q.push_str(&format!("&patience_s={p}"));
        }
        let e = ok_json(&get(&server, Some(&service), &q), "erlang");
        assert_eq!(i["agents"], e["agents"], "{i} vs {e}");
        assert_eq!(i["productive_agents"], e["productive_agents"], "{i} vs {e}");
        for k in ["service_level", "occupancy", "p_wait"] {
            let (x, y) = (f(&i[k]), f(&e[k]));
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1e-12), "{k}: {i} vs {e}");
        }
        assert!(f(&i["service_level"]) >= 0.8, "{i}");
        for k in ["p_wait", "asa_s", "occupancy", "productive_agents"] {
            assert!(i.get(k).is_some(), "{k} missing: {i}");
        }
        compared += 1;
    }
    assert!(compared > 0, "some interval expects arrivals: {v}");
    // Overrides: a given handle time, Erlang A with a patience, staffing the P90.
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!(
                "/v1/forecast/staffing?{base}&from=2026-03-29&to=2026-03-30&{sq}&aht_s=600&patience_s=300&staff_for=p90&human_share=1"
            ),
        ),
        "staffing overrides",
    );
    assert_eq!(v["assumptions"]["aht_source"].as_str(), Some("request"), "{v}");
    for i in intervals(&v) {
        assert_eq!(f(&i["staffed_arrivals"]), f(&i["p90"]), "{i}");
        if f(&i["staffed_arrivals"]) > 0.0 {
            assert!(i["p_abandon"].as_f64().is_some(), "Erlang A reports p_abandon: {i}");
        }
    }

    // Asynchronous queues: email is staffed by workload and backlog against
    // a response deadline, not by Erlang.
    let email = "queue=channel:email&tz=Europe/Berlin&interval=30&from=2026-03-23&to=2026-03-25";
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/staffing?{email}&aht_s=600&shrinkage=0.2&backlog=5"),
        ),
        "email staffing",
    );
    let a = &v["assumptions"];
    assert_eq!(a["mode"].as_str(), Some("async"), "{a}");
    assert_eq!(a["mode_source"].as_str(), Some("queue channel:email"), "{a}");
    assert_eq!(f(&a["response_deadline_s"]), 86_400.0, "{a}");
    let iv = intervals(&v);
    assert_eq!(iv.len(), 96);
    let (mut arrived, mut handled) = (5.0, 0.0);
    for i in iv {
        assert_eq!(i["model"].as_str(), Some("backlog"), "{i}");
        arrived += f(&i["staffed_arrivals"]);
        handled += f(&i["handled"]);
        assert!(
            (arrived - handled - f(&i["backlog_end"])).abs() < 1e-6,
            "backlog balance: {i}"
        );
        assert!(i.get("service_level").is_none(), "{i}");
    }
    // Everything that arrived on the first day is due by the end of the
    // second: the backlog left is at most the second day's arrivals.
    let second_day: f64 = iv[48..].iter().map(|i| f(&i["staffed_arrivals"])).sum();
    assert!(f(&iv[95]["backlog_end"]) <= second_day + 1e-6, "{v}");
    assert!(iv.iter().any(|i| i["agents"].as_u64() > Some(0)), "{v}");
    // A deadline of one interval: every item is handled in its interval, by
    // at least its workload in agents (600 s each, whole agents, shrinkage).
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!(
                "/v1/forecast/staffing?{base}&from=2026-03-29&to=2026-03-30&aht_s=600&response_deadline_s=1800&shrinkage=0.2"
            ),
        ),
        "deadline of one interval",
    );
    assert_eq!(v["assumptions"]["mode"].as_str(), Some("async"), "{v}");
    for i in intervals(&v) {
        assert!(f(&i["backlog_end"]).abs() < 1e-9, "{i}");
        let workload = (f(&i["staffed_arrivals"]) * 600.0 / 1800.0 - 1e-9).ceil();
        assert_eq!(f(&i["productive_agents"]), workload.max(0.0), "{i}");
        assert_eq!(f(&i["agents"]), (workload / 0.8 - 1e-9).ceil().max(0.0), "{i}");
    }
    let staffing = |q: &str| get(&server, Some(&service), &format!("/v1/forecast/staffing?{q}"));
    assert_bad(
        &staffing(&format!("{email}&service_level=0.8")),
        "service_level",
        "Erlang target on email",
    );
    assert_bad(
        &staffing(&format!(
            "{base}&{day_}&backlog=3",
            day_ = "from=2026-03-29&to=2026-03-30"
        )),
        "backlog",
        "backlog on a live queue",
    );
    assert_bad(
        &staffing(&format!("{email}&response_deadline_s=0&aht_s=600")),
        "response_deadline_s",
        "zero deadline",
    );

    // The tenant's reporting time zone is the default grid.
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/arrivals?queue={queue}&from=2026-03-29&to=2026-03-30"),
        ),
        "default tz without settings",
    );
    assert_eq!(v["tz"].as_str(), Some("UTC"), "{v}");
    assert_eq!(intervals(&v).len(), 48, "{v}");
    let put = server
        .request(
            "PUT",
            "/v1/settings?tenant=modehaus_eu",
            &[
                ("Authorization", &format!("Bearer {platform}")),
                ("Content-Type", "application/json"),
            ],
            br#"{"time_zone": "Europe/Berlin"}"#,
        )
        .unwrap_or_else(|e| panic!("PUT /v1/settings: {e}"));
    assert!(put.status == 200 || put.status == 204, "{}", put.text());
    let v = ok_json(
        &get(
            &server,
            Some(&service),
            &format!("/v1/forecast/arrivals?queue={queue}&from=2026-03-29&to=2026-03-30"),
        ),
        "default tz from settings",
    );
    assert_eq!(v["tz"].as_str(), Some("Europe/Berlin"), "{v}");
    assert_eq!(intervals(&v).len(), 46, "the spring-forward day in Berlin: {v}");

    // Bad input: 400 naming the parameter.
    let day = "from=2026-03-29&to=2026-03-30";
    let arrivals = |q: &str| get(&server, Some(&service), &format!("/v1/forecast/arrivals?{q}"));
    assert_bad(
        &arrivals(&format!("queue={queue}&interval=20&{day}")),
        "interval",
        "interval 20",
    );
    assert_bad(
        &arrivals(&format!("{base}&from=2026-03-30&to=2026-03-29")),
        "to",
        "from after to",
    );
    assert_bad(
        &arrivals(&format!("{base}&from=2026-03-29&to=2026-03-29")),
        "to",
        "from equal to",
    );
    assert_bad(
        &arrivals(&format!("{base}&from=2026-03-23&to=2026-04-07")),
        "to",
        "15 days",
    );
    assert_bad(
        &arrivals(&format!("queue={queue}&tz=Mars/Base&{day}")),
        "tz",
        "unknown tz",
    );
    assert_bad(
        &arrivals(&format!("{base}&from=2026-03-29T00:10:00%2B01:00&to=2026-03-30")),
        "from",
        "off the grid",
    );
    assert_bad(
        &arrivals(&format!("queue=colour:red&{day}")),
        "queue",
        "unknown dimension",
    );
    assert_bad(
        &arrivals(&format!("queue=team:x'%20OR%201=1&{day}")),
        "queue",
        "bad value",
    );
    assert_bad(
        &arrivals(&format!("{base}&{day}&aht_s=300")),
        "aht_s",
        "staffing parameter on arrivals",
    );
    assert_bad(
        &arrivals(&format!("{base}&{day}&special_days=2026-03-29:exclude")),
        "special_days",
        "exclude in the horizon",
    );
    let r = arrivals(&format!("{base}&{day}&colour=red"));
    assert_eq!(r.status, 400, "{}", r.text());
    let staffing = |q: &str| {
        get(
            &server,
            Some(&service),
            &format!("/v1/forecast/staffing?{base}&{day}&{q}"),
        )
    };
    assert_bad(&staffing("aht_s=0"), "aht_s", "zero handle time");
    assert_bad(&staffing("service_level=1"), "service_level", "100 % target");
    assert_bad(&staffing("concurrency=0"), "concurrency", "zero concurrency");
    assert_bad(&staffing("staff_for=p99"), "staff_for", "unknown figure");
    assert_bad(
        &get(&server, Some(&platform), &format!("/v1/forecast/arrivals?{base}&{day}")),
        "tenant",
        "platform key without tenant",
    );
    assert_bad(
        &get(
            &server,
            Some(&platform),
            &format!("/v1/forecast/arrivals?tenant=Mode%20Haus&{base}&{day}"),
        ),
        "tenant",
        "malformed tenant",
    );

    // Keys and roles.
    let path = format!("/v1/forecast/arrivals?{base}&{day}");
    assert_eq!(get(&server, None, &path).status, 401);
    assert_eq!(get(&server, Some("cxk_0000000000000000_00"), &path).status, 401);
    for (key, role) in [(&agent, "agent"), (&analyst, "analyst")] {
        let r = get(&server, Some(key), &path);
        assert_eq!(r.status, 403, "{role}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let r = get(&server, Some(key), &format!("/v1/forecast/staffing?{base}&{day}"));
        assert_eq!(r.status, 403, "{role}: {}", r.text());
    }
    let r = get(
        &server,
        Some(&service),
        &format!("/v1/forecast/arrivals?tenant=streamly-us&{base}&{day}"),
    );
    assert_eq!(r.status, 403, "another tenant: {}", r.text());
}

/// A deterministic weekly pattern: a daytime hump peaking at 14:00 local,
/// weekends at half the weekday level.
fn expected(weekday: u32, slot: u32) -> f64 {
    let hour = f64::from(slot) / 2.0;
    let hump = (-((hour - 14.0) / 3.5).powi(2)).exp();
    let level = if weekday >= 5 { 0.5 } else { 1.0 };
    (2.0 + 30.0 * hump) * level
}

#[test]
fn what_if_forecast_from_a_supplied_history() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let service = create_key(&data, "acme", "service");
    let operations = create_key(&data, "acme", "operations");
    let server = Server::start(&data, &[]);

    // Four weeks of half-hours from Monday 2026-02-02 in New York (-05:00, no
    // DST until 2026-03-08), with a marked outage day.
    let t0 = 1_770_008_400i64; // 2026-02-02T05:00:00Z = 00:00 -05:00
    let mut history = Vec::new();
    for i in 0..(28 * 48) {
        let (day, slot) = (i / 48, i % 48);
        let mut count = expected(day % 7, slot).round();
        if day == 9 {
            count = 0.0; // outage, excluded below
        }
        history.push(format!(
            r#"{{"start": "{}", "count": {count}}}"#,
            support::chrono_like(t0 + i64::from(i) * 1800)
        ));
    }
    let body = |horizon: &str, extra: &str| {
        format!(
            r#"{{"interval_minutes": 30, "tz": "America/New_York", "history": [{}], "horizon": {horizon}, "special_days": [{{"date": "2026-02-11", "exclude": true}}, {{"date": "2026-03-03", "factor": 2.0}}]{extra}}}"#,
            history.join(",")
        )
    };
    // Horizon Monday 2026-03-02 and Tuesday 2026-03-03 (a campaign day, ×2).
    let v = ok_json(
        &post(
            &server,
            &service,
            "/v1/forecast",
            &body(r#"{"from": "2026-03-02", "to": "2026-03-04"}"#, ""),
        ),
        "what-if",
    );
    let iv = intervals(&v);
    assert_eq!(iv.len(), 96, "{v}");
    assert_eq!(iv[0]["start"].as_str(), Some("2026-03-02T00:00:00-05:00"), "{v}");
    check_quantiles(&v);
    let means: Vec<f64> = iv.iter().map(|i| f(&i["mean"])).collect();
    for slot in 0..48u32 {
        let want = expected(0, slot);
        let got = means[slot as usize];
        assert!(
            (got - want).abs() <= 0.15 * want + 1.0,
            "Monday slot {slot}: forecast {got}, pattern {want}: {v}"
        );
        let got_campaign = means[48 + slot as usize];
        assert!(
            (got_campaign - 2.0 * expected(1, slot)).abs() <= 0.15 * 2.0 * expected(1, slot) + 2.0,
            "Tuesday slot {slot} (×2): forecast {got_campaign}: {v}"
        );
    }
    let peak = (0..48).max_by(|a, b| means[*a].total_cmp(&means[*b])).unwrap_or(0);
    assert_eq!(peak, 28, "the peak is at 14:00: {means:?}");
    assert!(!v["backtest"].as_array().map(Vec::is_empty).unwrap_or(true), "{v}");

    // The New York spring-forward day, a week after the history: 46 half-hours,
    // with agents when a staffing template is given.
    let v = ok_json(
        &post(
            &server,
            &service,
            "/v1/forecast",
            &body(
                r#"{"from": "2026-03-08", "to": "2026-03-09"}"#,
                r#", "staffing": {"aht_s": 300, "service_level": 0.8, "target_s": 30}"#,
            ),
        ),
        "what-if staffing on the DST day",
    );
    let iv = intervals(&v);
    assert_eq!(iv.len(), 46, "{v}");
    assert_eq!(iv[4]["start"].as_str(), Some("2026-03-08T03:00:00-04:00"), "{v}");
    assert!(iv.iter().any(|i| i["agents"].as_u64().unwrap_or(0) > 0), "{v}");

    // Bad input.
    let horizon = r#"{"from": "2026-03-02", "to": "2026-03-03"}"#;
    let r = post(
        &server,
        &service,
        "/v1/forecast",
        &body(horizon, r#", "staffing": {"aht_s": 0}"#),
    );
    assert_bad(&r, "aht_s", "zero handle time");
    let r = post(
        &server,
        &service,
        "/v1/forecast",
        &body(horizon, "").replace(r#""interval_minutes": 30"#, r#""interval_minutes": 45"#),
    );
    assert_bad(&r, "interval_minutes", "45 minutes");
    let r = post(
        &server,
        &service,
        "/v1/forecast",
        &body(r#"{"from": "2026-03-02", "to": "2026-03-20"}"#, ""),
    );
    assert_bad(&r, "to", "18-day horizon");
    let r = post(
        &server,
        &service,
        "/v1/forecast",
        &body(r#"{"from": "2026-02-20", "to": "2026-02-21"}"#, ""),
    );
    assert_bad(&r, "history", "history overlapping the horizon");
    let r = post(
        &server,
        &service,
        "/v1/forecast",
        &body(horizon, "").replace("America/New_York", "Atlantis/Capital"),
    );
    assert_bad(&r, "tz", "unknown tz");
    let r = post(&server, &service, "/v1/forecast", r#"{"interval_minutes": 30}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    let r = post(&server, &operations, "/v1/forecast", &body(horizon, ""));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = server
        .request("POST", "/v1/forecast", &[], body(horizon, "").as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401);
}

/// The history of every queue comes from one cached scan per tenant and
/// data version: conversations acknowledged after a forecast show up in the
/// next one, and each history is what SQL counts over the same range.
#[test]
fn forecasts_see_newly_ingested_conversations() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let service = create_key(&data, "acme", "service");
    let other = create_key(&data, "globex", "service");
    let platform = create_key(&data, "*", "admin");
    let server = Server::start(&data, &[]);
    let ingest = |key: &str, tenant: &str, conversations: std::ops::Range<usize>| {
        let lines: Vec<String> = conversations
            .flat_map(|n| support::conversation_events(tenant, n))
            .collect();
        let r = server.send_json(&format!("Bearer {key}"), "POST", "/v1/events", &lines.join("\n"));
        assert_eq!(r.status, 200, "{}", r.text());
    };
    // The conversations start every 37 s from 2026-02-25T06:13:20Z.
    let path = "/v1/forecast/arrivals?queue=channel:whatsapp&tz=UTC&interval=30&from=2026-02-26&to=2026-02-27";
    let history = |what: &str| -> (f64, f64) {
        let v = ok_json(&get(&server, Some(&service), path), what);
        let (from, to) = (
            v["history"]["from"].as_str().unwrap_or_default(),
            v["history"]["to"].as_str().unwrap_or_default(),
        );
        let counted = server.sql(
            &platform,
            &format!(
                "SELECT count(*) FROM conversations WHERE tenant_id = 'acme' AND channel = 'whatsapp' \
                 AND started_at >= TIMESTAMP '{from}' AND started_at < TIMESTAMP '{to}'"
            ),
        );
        (f(&v["history"]["conversations"]), f(&counted["rows"][0][0]))
    };
    ingest(&service, "acme", 0..150);
    let (first, counted) = history("first forecast");
    assert!(first > 0.0, "{first}");
    assert_eq!(first, counted, "the history is what SQL counts");
    assert_eq!(history("same data again"), (first, counted));
    // Another tenant's data changes nothing of acme's.
    ingest(&other, "globex", 0..150);
    assert_eq!(history("after another tenant's ingest"), (first, counted));
    // Later conversations of acme: the next forecast has them.
    ingest(&service, "acme", 150..300);
    let (second, counted) = history("after more conversations");
    assert!(second > first, "{second} after {first}");
    assert_eq!(second, counted);
    // The queue of a dimension these conversations lack (no team) is empty,
    // and so is one of a value nobody has.
    for queue in ["team:billing", "channel:sms"] {
        let v = ok_json(
            &get(
                &server,
                Some(&service),
                &format!("/v1/forecast/arrivals?queue={queue}&tz=UTC&interval=30&from=2026-02-26&to=2026-02-27"),
            ),
            queue,
        );
        assert_eq!(f(&v["history"]["conversations"]), 0.0, "{queue}: {v}");
    }
}
