//! End to end: the optimization analyses (`/v1/analyses/*`)
//! against the real binary.
//!
//! Each test ingests one fixture of `sql/tests/analyses_*.ndjson` (tenant
//! `acme`, hand-worked in the `.slt` next to it, so the numbers here are
//! those of the slt) plus [`BETA`]: events of a second tenant that reuse
//! acme's conversation ids on the same days, which would change acme's
//! numbers if they leaked (and the other way round).

use crate::support;

use serde_json::Value;
use support::{Response, Server, create_key};

const SCRIPTS: &str = include_str!("../../sql/tests/analyses_scripts.ndjson");
const BOTTLENECKS: &str = include_str!("../../sql/tests/analyses_bottlenecks.ndjson");
const TRAFFIC: &str = include_str!("../../sql/tests/analyses_traffic.ndjson");
const CHANNELS: &str = include_str!("../../sql/tests/analyses_channels.ndjson");

/// Tenant beta, reusing acme's ids: s1 (06-02, LINE, qr_hello, answered
/// after 7 s, CSAT 1), b1 (06-03, tags complaint + refund, resolved after
/// 50 s), w1 (06-04, LINE, converted, a 1000 EUR fee).
const BETA: &str = r#"{"event_id":"s1-1","tenant_id":"beta","type":"conversation.started","occurred_at":"2025-06-02T09:30:00Z","conversation_id":"s1","customer_id":"cu_s1","channel":"line"}
{"event_id":"s1-2","tenant_id":"beta","type":"message.created","occurred_at":"2025-06-02T09:30:00Z","conversation_id":"s1","sender":"customer"}
{"event_id":"s1-m1","tenant_id":"beta","type":"message.created","occurred_at":"2025-06-02T09:30:07Z","conversation_id":"s1","sender":"bot","quick_reply_id":"qr_hello"}
{"event_id":"s1-c10","tenant_id":"beta","type":"csat.submitted","occurred_at":"2025-06-02T09:40:00Z","conversation_id":"s1","score":1}
{"event_id":"b1-1","tenant_id":"beta","type":"conversation.started","occurred_at":"2025-06-03T08:00:00Z","conversation_id":"b1","customer_id":"cu_b1","channel":"line"}
{"event_id":"b1-2","tenant_id":"beta","type":"message.created","occurred_at":"2025-06-03T08:00:00Z","conversation_id":"b1","sender":"customer"}
{"event_id":"b1-t0","tenant_id":"beta","type":"conversation.tagged","occurred_at":"2025-06-03T08:00:10Z","conversation_id":"b1","tags":["complaint","refund"]}
{"event_id":"b1-r","tenant_id":"beta","type":"conversation.resolved","occurred_at":"2025-06-03T08:00:50Z","conversation_id":"b1","resolved_by":"bot"}
{"event_id":"w1-1","tenant_id":"beta","type":"conversation.started","occurred_at":"2025-06-04T01:00:00Z","conversation_id":"w1","customer_id":"cu_w1","channel":"line"}
{"event_id":"w1-o","tenant_id":"beta","type":"order.placed","occurred_at":"2025-06-04T01:30:00Z","conversation_id":"w1","customer_id":"cu_w1","order_id":"o_w1","amount":"5.00","currency":"EUR"}
{"event_id":"w1-k","tenant_id":"beta","type":"cost.incurred","occurred_at":"2025-06-04T01:40:00Z","conversation_id":"w1","channel":"line","cost_kind":"channel_fee","amount":"1000.00","currency":"EUR"}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    /// The `seq` the fixture's events were acknowledged with.
    ingested_seq: u64,
    server: Server,
    acme_admin: String,
    acme_analyst: String,
    acme_agent: String,
    beta_admin: String,
    platform_admin: String,
}

fn start(acme: &str, env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let acme_admin = create_key(&data, "acme", "admin");
    let acme_analyst = create_key(&data, "acme", "analyst");
    let acme_agent = support::create_key_with(&data, "acme", "agent", &["--agent", "a1"]);
    let beta_admin = create_key(&data, "beta", "admin");
    let platform_admin = create_key(&data, "*", "admin");
    let server = Server::start(&data, env);
    let body = format!("{acme}{BETA}");
    let auth = format!("Bearer {platform_admin}");
    let r = server
        .request(
            "POST",
            "/v1/events?atomic=true",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST /v1/events: {e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = body.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(r.json()["accepted"], expected as u64, "{}", r.text());
    let ingested_seq = r.json()["seq"].as_u64().unwrap_or_else(|| panic!("{}", r.text()));
    Fixture {
        ingested_seq,
        _dir: dir,
        server,
        acme_admin,
        acme_analyst,
        acme_agent,
        beta_admin,
        platform_admin,
    }
}

fn get(f: &Fixture, key: &str, path: &str) -> Response {
    let auth = format!("Bearer {key}");
    f.server
        .request("GET", path, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn get_json(f: &Fixture, key: &str, path: &str) -> Value {
    let r = get(f, key, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "GET {path}");
    r.json()
}

fn get_csv(f: &Fixture, key: &str, path: &str) -> String {
    let r = get(f, key, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert!(
        r.header("content-type").unwrap_or("").starts_with("text/csv"),
        "GET {path}: {:?}",
        r.header("content-type")
    );
    r.text()
}

#[track_caller]
fn approx(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - expected).abs() < 1e-6, "expected {expected}, got {got}");
}

/// The row of `rows` whose `field` values are `values`.
#[track_caller]
fn row<'a>(rows: &'a Value, fields: &[(&str, &str)]) -> &'a Value {
    rows.as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| fields.iter().all(|(k, v)| r[*k].as_str() == Some(*v)))
        })
        .unwrap_or_else(|| panic!("no row {fields:?} in {rows}"))
}

fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

#[track_caller]
fn assert_problem(r: &Response, status: u16, parameter: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    if status == 400 {
        let v = r.json();
        assert_eq!(v["parameter"], parameter, "{v}");
        assert!(v["detail"].as_str().unwrap_or("").starts_with(parameter), "{v}");
    }
}

#[test]
fn scripts_match_the_fixture_with_intervals_best_and_worst() {
    let f = start(SCRIPTS, &[]);
    let key = &f.acme_analyst;
    let day = "from=2025-06-02&to=2025-06-03";
    let v = get_json(&f, key, &format!("/v1/analyses/scripts?{day}&min_count=2"));
    assert_eq!(v["window"]["from"], "2025-06-02T00:00:00Z", "{v}");
    assert_eq!(v["window"]["time_zone"], "UTC");
    assert_eq!(v["window"]["tenant"], "acme");
    // It counts the fixture's events, and says so.
    let as_of = v["data_as_of"]["seq"].as_u64().unwrap_or_else(|| panic!("{v}"));
    assert!(as_of >= f.ingested_seq, "{v}");
    assert_eq!(v["min_count"], 2);
    let groups = &v["groups"];
    let keys: Vec<&str> = groups
        .as_array()
        .map(|g| g.iter().filter_map(|r| r["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["qr_hello", "qr_refund", "tpl_order"], "{v}");

    // The numbers of sql/tests/analyses_scripts.slt.
    let hello = row(groups, &[("kind", "quick_reply"), ("key", "qr_hello")]);
    assert_eq!(hello["conversations"], 3);
    assert_eq!(hello["csat_n"], 3);
    approx(&hello["csat_mean"], 11.0 / 3.0);
    approx(&hello["csat_sd"], (7.0_f64 / 3.0).sqrt());
    // t(0.975, 2) · sd / √3 = 3.794583
    approx(&hello["csat_low"], -0.127916);
    approx(&hello["csat_high"], 7.461250);
    approx(&hello["top2_share"], 2.0 / 3.0);
    approx(&hello["top2_low"], 0.207660);
    approx(&hello["top2_high"], 0.938508);
    approx(&hello["resolution_rate"], 2.0 / 3.0);
    assert_eq!(hello["small_sample"], false);
    let refund = row(groups, &[("key", "qr_refund")]);
    approx(&refund["csat_mean"], 1.5);
    approx(&refund["csat_low"], -4.853102);
    approx(&refund["top2_high"], 0.657620);
    approx(&refund["resolution_low"], 0.061492);
    assert_eq!(refund["small_sample"], false, "2 scores, min_count 2");
    let order = row(groups, &[("kind", "template"), ("key", "tpl_order")]);
    assert_eq!(order["conversations"], 2);
    approx(&order["csat_mean"], 5.0);
    assert!(order["csat_low"].is_null(), "one score has no interval: {order}");
    approx(&order["resolution_low"], 0.342380);
    assert_eq!(order["small_sample"], true);
    assert_eq!(v["best"]["quick_reply"], "qr_hello");
    assert_eq!(v["worst"]["quick_reply"], "qr_refund");
    assert!(v["best"]["template"].is_null(), "tpl_order is small: {v}");

    // Default min_count 30: everything is small, so nothing is best.
    let v = get_json(&f, key, &format!("/v1/analyses/scripts?{day}"));
    assert_eq!(v["min_count"], 30);
    assert!(
        v["groups"]
            .as_array()
            .is_some_and(|g| g.iter().all(|r| r["small_sample"] == true))
    );
    assert!(v["best"]["quick_reply"].is_null());

    // A filter: every acme conversation is on WhatsApp.
    let v = get_json(&f, key, &format!("/v1/analyses/scripts?{day}&channel=webchat"));
    assert_eq!(len(&v["groups"]), 0, "{v}");
    assert_eq!(v["filters"]["channel"], serde_json::json!(["webchat"]));
    let v = get_json(
        &f,
        key,
        &format!("/v1/analyses/scripts?{day}&channel=whatsapp&min_count=2"),
    );
    assert_eq!(len(&v["groups"]), 3, "{v}");

    // CSV: the same rows, the interval columns after csat_sd.
    let csv = get_csv(&f, key, &format!("/v1/analyses/scripts?{day}&min_count=2&format=csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "kind,key,conversations,csat_n,csat_mean,csat_sd,csat_low,csat_high,top2_n,top2_share,top2_low,\
             top2_high,resolved_n,resolution_rate,resolution_low,resolution_high,small_sample"
        )
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("quick_reply,qr_hello,3,3,3.6666"), "{csv}");
    assert!(lines[2].starts_with("template,tpl_order,2,1,5.0,,,,1,"), "{csv}");
    assert!(lines[2].ends_with(",true"), "{csv}");
}

#[test]
fn bottlenecks_match_the_fixture_and_filters_narrow_them() {
    let f = start(BOTTLENECKS, &[]);
    let key = &f.acme_analyst;
    let day = "from=2025-06-03&to=2025-06-04";
    let v = get_json(&f, key, &format!("/v1/analyses/bottlenecks?{day}&min_count=1"));
    let tags: Vec<(&str, i64)> = v["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|r| {
                    (
                        r["tag"].as_str().unwrap_or(""),
                        r["conversations"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        tags,
        [
            ("complaint", 3),
            ("shipping_delay", 3),
            ("order_status", 2),
            ("refund", 1)
        ],
        "{v}"
    );
    let complaint = row(&v["tags"], &[("tag", "complaint")]);
    approx(&complaint["share"], 0.5);
    approx(&complaint["handling_mean_s"], 700.0);
    approx(&complaint["handling_median_s"], 600.0);
    approx(&complaint["handling_p90_s"], 1080.0);
    approx(&complaint["csat_mean"], 2.0);
    let refund = row(&v["tags"], &[("tag", "refund")]);
    assert!(refund["handling_mean_s"].is_null(), "{refund}");
    assert_eq!(refund["handling_n"], 0);

    let pairs = &v["pairs"];
    assert_eq!(len(pairs), 4, "{v}");
    assert_eq!(pairs[0]["tag"], "complaint");
    assert_eq!(pairs[0]["other_tag"], "shipping_delay");
    assert_eq!(pairs[0]["conversations"], 2);
    approx(&pairs[0]["support"], 1.0 / 3.0);
    approx(&pairs[0]["confidence"], 2.0 / 3.0);
    approx(&pairs[0]["lift"], 4.0 / 3.0);
    let o = row(pairs, &[("tag", "order_status"), ("other_tag", "shipping_delay")]);
    approx(&o["confidence"], 0.5);
    approx(&o["lift"], 1.0);

    // The default minimum count (5) leaves no pair of this small day.
    let v = get_json(&f, key, &format!("/v1/analyses/bottlenecks?{day}"));
    assert_eq!(v["min_count"], 5);
    assert_eq!(len(&v["pairs"]), 0, "{v}");
    assert_eq!(len(&v["tags"]), 4);

    // Only complaints (b1 b2 b3): N = 3; complaint ∧ shipping_delay in 2,
    // lift 2 · 3 / (3 · 2) = 1: among complaints, delays are no surprise.
    let v = get_json(
        &f,
        key,
        &format!("/v1/analyses/bottlenecks?{day}&min_count=1&tag=complaint"),
    );
    let c = row(&v["tags"], &[("tag", "complaint")]);
    assert_eq!(c["conversations"], 3);
    approx(&c["share"], 1.0);
    let s = row(&v["tags"], &[("tag", "shipping_delay")]);
    assert_eq!(s["conversations"], 2);
    approx(&row(&v["pairs"], &[("tag", "complaint")])["lift"], 1.0);

    // CSV: both tables, told apart by a section column.
    let csv = get_csv(
        &f,
        key,
        &format!("/v1/analyses/bottlenecks?{day}&min_count=2&format=csv"),
    );
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.starts_with("section,tag,conversations,share,"), "{csv}");
    assert!(header.contains(",other_tag,"), "{csv}");
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("tags,")).count(), 4, "{csv}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("pairs,")).count(), 2, "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tags,complaint,3,0.5,3,700.0,600.0,1080.0,")),
        "{csv}"
    );
}

#[test]
fn traffic_heatmap_is_in_the_tenant_time_zone() {
    let f = start(TRAFFIC, &[]);
    let key = &f.acme_analyst;
    let week = "from=2025-06-02&to=2025-06-09";
    let cell = |v: &Value, weekday: i64, hour: i64| -> Value {
        v["cells"]
            .as_array()
            .and_then(|c| c.iter().find(|r| r["weekday"] == weekday && r["hour"] == hour).cloned())
            .unwrap_or_else(|| panic!("no cell {weekday} {hour}: {v}"))
    };
    let total = |v: &Value| -> i64 {
        v["cells"]
            .as_array()
            .map_or(0, |c| c.iter().filter_map(|r| r["conversations"].as_i64()).sum())
    };

    // UTC (the default): the cells of sql/tests/analyses_traffic.slt.
    let v = get_json(&f, key, &format!("/v1/analyses/traffic?{week}"));
    assert_eq!(len(&v["cells"]), 168, "every cell of the grid");
    let mon9 = cell(&v, 1, 9);
    assert_eq!(mon9["conversations"], 3, "{mon9}");
    assert_eq!(mon9["wait_n"], 2);
    approx(&mon9["wait_mean_s"], 62.0);
    approx(&mon9["wait_p90_s"], 108.4);
    approx(&cell(&v, 7, 23)["wait_mean_s"], 60.0);
    assert_eq!(cell(&v, 3, 12)["conversations"], 0);
    assert!(cell(&v, 3, 12)["wait_mean_s"].is_null());
    assert_eq!(total(&v), 5);

    // Europe/Berlin (CEST, UTC+2): the local week [06-01T22:00Z, 06-08T22:00Z)
    // takes in t6 (Sunday 22:30Z = Monday 00:30) and loses t5 (Sunday 23:30Z =
    // Monday 01:30 of the next week); the Monday 09:xxZ cell moves to 11:00.
    let r = f
        .server
        .request(
            "PUT",
            "/v1/settings",
            &[
                ("Authorization", &format!("Bearer {}", f.acme_admin)),
                ("Content-Type", "application/json"),
            ],
            br#"{"time_zone": "Europe/Berlin"}"#,
        )
        .unwrap_or_else(|e| panic!("PUT /v1/settings: {e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = get_json(&f, key, &format!("/v1/analyses/traffic?{week}"));
    assert_eq!(v["window"]["from"], "2025-06-01T22:00:00Z", "{v}");
    assert_eq!(v["window"]["time_zone"], "Europe/Berlin");
    let mon0 = cell(&v, 1, 0);
    assert_eq!(mon0["conversations"], 1, "{mon0}");
    approx(&mon0["wait_mean_s"], 10.0);
    assert_eq!(cell(&v, 1, 11)["conversations"], 3);
    approx(&cell(&v, 1, 11)["wait_median_s"], 62.0);
    assert_eq!(cell(&v, 1, 9)["conversations"], 0);
    assert_eq!(cell(&v, 2, 16)["conversations"], 1);
    assert_eq!(cell(&v, 7, 23)["conversations"], 0);
    assert_eq!(total(&v), 5);

    let csv = get_csv(&f, key, &format!("/v1/analyses/traffic?{week}&format=csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 168, "{csv}");
    assert_eq!(
        lines[0],
        "weekday,hour,conversations,wait_n,wait_mean_s,wait_median_s,wait_p90_s"
    );
    assert_eq!(lines[1], "1,0,1,1,10.0,10.0,10.0");
    assert_eq!(lines[2], "1,1,0,0,,,");
}

#[test]
fn channels_against_the_overall_with_p_values() {
    let f = start(CHANNELS, &[]);
    let key = &f.acme_analyst;
    let day = "from=2025-06-04&to=2025-06-05";
    let v = get_json(&f, key, &format!("/v1/analyses/channels?{day}"));
    approx(&v["alpha"], 0.05);

    // The tenant rows of sql/tests/analyses_channels.slt.
    let overall = &v["overall"];
    assert_eq!(len(overall), 4, "{v}");
    let conv = row(overall, &[("metric", "conversion_rate")]);
    assert_eq!(conv["n"], 9);
    assert_eq!(conv["successes"], 4);
    approx(&conv["value"], 4.0 / 9.0);
    approx(&row(overall, &[("metric", "frt_s")])["median"], 40.0);
    approx(
        &row(overall, &[("metric", "cost_per_conversation"), ("currency", "EUR")])["value"],
        2.1 / 9.0,
    );
    assert!(conv["p_value"].is_null());

    let channels = &v["channels"];
    assert_eq!(len(channels), 12, "3 channels × 4 metrics: {v}");
    // whatsapp against webchat + sms (scipy / statsmodels):
    let wa = |metric: &str| row(channels, &[("channel", "whatsapp"), ("metric", metric)]).clone();
    let c = wa("conversion_rate");
    approx(&c["value"], 0.75);
    approx(&c["overall_value"], 4.0 / 9.0);
    approx(&c["difference"], 0.75 - 4.0 / 9.0);
    assert_eq!(c["test"], "two_proportion_z");
    approx(&c["p_value"], 0.098943);
    assert_eq!(c["significant"], false);
    let s = wa("csat");
    approx(&s["value"], 14.0 / 3.0);
    assert_eq!(s["test"], "welch_t");
    approx(&s["p_value"], 0.036567);
    assert_eq!(s["significant"], true);
    let frt = wa("frt_s");
    approx(&frt["median"], 25.0);
    approx(&frt["p_value"], 0.065489);
    assert_eq!(frt["significant"], false);
    let cost = wa("cost_per_conversation");
    assert_eq!(cost["currency"], "EUR");
    approx(&cost["value"], 0.5);
    approx(&cost["p_value"], 0.000018);
    assert_eq!(cost["significant"], true);
    // webchat answers slower than the rest: FRT mean 250 s, p = 0.037448.
    let web = row(channels, &[("channel", "webchat"), ("metric", "frt_s")]);
    approx(&web["p_value"], 0.037448);
    assert_eq!(web["significant"], true);
    // sms: one conversation is enough for the z-test, not for Welch.
    approx(
        &row(channels, &[("channel", "sms"), ("metric", "conversion_rate")])["p_value"],
        0.342782,
    );
    let sms_csat = row(channels, &[("channel", "sms"), ("metric", "csat")]);
    assert!(sms_csat["p_value"].is_null(), "{sms_csat}");
    assert!(sms_csat["significant"].is_null());

    // A filter restricts both sides: only WhatsApp and SMS.
    let v = get_json(&f, key, &format!("/v1/analyses/channels?{day}&channel=whatsapp,sms"));
    assert_eq!(row(&v["overall"], &[("metric", "conversion_rate")])["n"], 5);

    let csv = get_csv(&f, key, &format!("/v1/analyses/channels?{day}&format=csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "scope,channel,metric,currency,n,successes,value,sd,median,overall_value,difference,test,p_value,significant"
        )
    );
    let lines: Vec<&str> = lines.collect();
    assert_eq!(lines.len(), 16, "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("channel,whatsapp,conversion_rate,,4,3,0.75,,,0.4444")
                && l.contains(",two_proportion_z,0.0989")
                && l.ends_with(",false")),
        "{csv}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("tenant,,frt_s,,9,,122.7777")),
        "{csv}"
    );
}

#[test]
fn bad_parameters_get_a_problem_naming_the_parameter() {
    let f = start(SCRIPTS, &[("CXLAKE_KPI_MAX_DAYS", "31")]);
    let key = &f.acme_admin;
    let day = "from=2025-06-02&to=2025-06-03";
    let cases: [(String, &str); 14] = [
        ("/v1/analyses/scripts?from=2025-06-03&to=2025-06-02".into(), "from"),
        ("/v1/analyses/traffic?from=2025-06-02&to=2025-06-02".into(), "from"),
        ("/v1/analyses/channels?from=02.06.2025&to=2025-06-03".into(), "from"),
        (
            "/v1/analyses/bottlenecks?from=2025-06-02&to=2025-06-03T00:00:00".into(),
            "to",
        ),
        ("/v1/analyses/scripts?to=2025-06-03".into(), "from"),
        ("/v1/analyses/traffic?from=2025-01-01&to=2025-06-03".into(), "to"),
        (format!("/v1/analyses/scripts?{day}&min_count=0"), "min_count"),
        (format!("/v1/analyses/bottlenecks?{day}&min_count=many"), "min_count"),
        (format!("/v1/analyses/traffic?{day}&min_count=3"), "min_count"),
        (format!("/v1/analyses/channels?{day}&group_by=channel"), "group_by"),
        (format!("/v1/analyses/scripts?{day}&colour=red"), "colour"),
        (format!("/v1/analyses/channels?{day}&channel=telegram"), "channel"),
        (format!("/v1/analyses/traffic?{day}&format=xml"), "format"),
        (
            format!("/v1/analyses/scripts?{day}&min_count=2&min_count=3"),
            "min_count",
        ),
    ];
    for (path, parameter) in &cases {
        assert_problem(&get(&f, key, path), 400, parameter);
    }
    // Within the configured maximum it is fine, for every analysis.
    for name in ["scripts", "bottlenecks", "traffic", "channels"] {
        let r = get(&f, key, &format!("/v1/analyses/{name}?from=2025-05-04&to=2025-06-03"));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
    }
    // An unknown analysis is not found.
    assert_eq!(get(&f, key, &format!("/v1/analyses/agents?{day}")).status, 404);
}

#[test]
fn a_key_never_sees_another_tenant() {
    let f = start(CHANNELS, &[]);
    let day = "from=2025-06-04&to=2025-06-05";
    // Beta: its one LINE conversation w1, converted, 1000 EUR of fees; none
    // of acme's nine (acme's numbers above are the slt's, untouched by beta).
    let v = get_json(&f, &f.beta_admin, &format!("/v1/analyses/channels?{day}"));
    assert_eq!(v["window"]["tenant"], "beta");
    let channels: Vec<&str> = v["channels"]
        .as_array()
        .map(|c| c.iter().filter_map(|r| r["channel"].as_str()).collect())
        .unwrap_or_default();
    assert!(channels.iter().all(|c| *c == "line"), "{v}");
    let conv = row(&v["overall"], &[("metric", "conversion_rate")]);
    assert_eq!(conv["n"], 1, "{v}");
    approx(
        &row(&v["overall"], &[("metric", "cost_per_conversation")])["value"],
        1000.0,
    );
    let acme = get_json(&f, &f.acme_analyst, &format!("/v1/analyses/channels?{day}"));
    assert_eq!(row(&acme["overall"], &[("metric", "conversion_rate")])["n"], 9);
    approx(
        &row(&acme["overall"], &[("metric", "cost_per_conversation")])["value"],
        2.1 / 9.0,
    );
    assert!(
        acme["channels"]
            .as_array()
            .is_some_and(|c| c.iter().all(|r| r["channel"] != "line")),
        "{acme}"
    );
    // Scripts on 06-02: beta's s1 used qr_hello; acme has no events that day
    // in this fixture, so acme sees nothing and beta only its own.
    let b = get_json(
        &f,
        &f.beta_admin,
        "/v1/analyses/scripts?from=2025-06-02&to=2025-06-03&min_count=1",
    );
    assert_eq!(len(&b["groups"]), 1, "{b}");
    assert_eq!(b["groups"][0]["conversations"], 1);
    approx(&b["groups"][0]["csat_mean"], 1.0);
    let a = get_json(&f, &f.acme_admin, "/v1/analyses/scripts?from=2025-06-02&to=2025-06-03");
    assert_eq!(len(&a["groups"]), 0, "{a}");

    // A tenant key cannot name another tenant; a platform key must name one.
    for name in ["scripts", "bottlenecks", "traffic", "channels"] {
        assert_problem(
            &get(&f, &f.beta_admin, &format!("/v1/analyses/{name}?{day}&tenant=acme")),
            403,
            "",
        );
        assert_problem(
            &get(&f, &f.platform_admin, &format!("/v1/analyses/{name}?{day}")),
            400,
            "tenant",
        );
        // Roles: an agent key reads no analyses.
        assert_problem(&get(&f, &f.acme_agent, &format!("/v1/analyses/{name}?{day}")), 403, "");
    }
    let p = get_json(
        &f,
        &f.platform_admin,
        &format!("/v1/analyses/channels?{day}&tenant=acme"),
    );
    // The same rows; floats may differ in the last bits (parallel sums).
    assert_same_rows(&p["overall"], &acme["overall"]);
    assert_same_rows(&p["channels"], &acme["channels"]);
}

#[track_caller]
fn assert_same_rows(a: &Value, b: &Value) {
    assert_eq!(len(a), len(b), "{a}\n{b}");
    for (x, y) in a
        .as_array()
        .into_iter()
        .flatten()
        .zip(b.as_array().into_iter().flatten())
    {
        let (Some(x), Some(y)) = (x.as_object(), y.as_object()) else {
            panic!("rows are not objects: {x} {y}");
        };
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (k, v) in x {
            match (v.as_f64(), y[k].as_f64()) {
                (Some(v), Some(w)) => assert!((v - w).abs() <= 1e-9 * v.abs().max(1.0), "{k}: {v} vs {w}"),
                _ => assert_eq!(v, &y[k], "{k}"),
            }
        }
    }
}
