//! Erlang C and Erlang A against `fixtures/reference.json`, written by
//! `fixtures/gen_reference.py` (pyworkforce 0.5.1 for Erlang C; textbook
//! M/M/n+M formulas in 50-digit mpmath for Erlang A, since pyworkforce has no
//! Erlang A). Everything must match to 1e-6 relative.

use serde::Deserialize;
use staffing::erlang::{QueueMetrics, Target, Workload, erlang_a_metrics, erlang_c_metrics, required_servers};

#[derive(Debug, Deserialize)]
struct Reference {
    erlang_c: Vec<CCase>,
    erlang_c_required: Vec<CRequired>,
    erlang_a: Vec<ACase>,
    erlang_a_required: Vec<ARequired>,
}

#[derive(Debug, Deserialize)]
struct CCase {
    arrivals: f64,
    interval_s: f64,
    aht_s: f64,
    target_s: f64,
    servers: u32,
    p_wait: f64,
    service_level: f64,
    occupancy: f64,
    asa_s: f64,
}

#[derive(Debug, Deserialize)]
struct CRequired {
    arrivals: f64,
    interval_s: f64,
    aht_s: f64,
    target_s: f64,
    service_level_target: f64,
    max_occupancy: f64,
    servers: u32,
    service_level: f64,
    p_wait: f64,
    occupancy: f64,
}

#[derive(Debug, Deserialize)]
struct ACase {
    arrivals: f64,
    interval_s: f64,
    aht_s: f64,
    patience_s: f64,
    target_s: f64,
    servers: u32,
    p_wait: f64,
    p_abandon: f64,
    service_level: f64,
    asa_s: f64,
    mean_wait_s: f64,
    occupancy: f64,
}

#[derive(Debug, Deserialize)]
struct ARequired {
    #[serde(flatten)]
    case: ACase,
    service_level_target: f64,
}

fn reference() -> Reference {
    let text = include_str!("fixtures/reference.json");
    serde_json::from_str(text).unwrap()
}

#[track_caller]
fn close(what: &str, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(rel < 1e-6, "{what}: got {got}, reference {want} (rel {rel:e})");
}

fn check_a(c: &ACase, m: &QueueMetrics) {
    let what = format!("erlang A {c:?}");
    close(&format!("{what} p_wait"), m.p_wait, c.p_wait);
    close(&format!("{what} p_abandon"), m.p_abandon.unwrap(), c.p_abandon);
    close(&format!("{what} service_level"), m.service_level, c.service_level);
    close(&format!("{what} asa_s"), m.asa_s, c.asa_s);
    close(&format!("{what} mean_wait_s"), m.mean_wait_s, c.mean_wait_s);
    close(&format!("{what} occupancy"), m.occupancy, c.occupancy);
}

#[test]
fn erlang_c_matches_pyworkforce() {
    let r = reference();
    assert!(r.erlang_c.len() >= 9);
    for c in &r.erlang_c {
        let load = c.arrivals / c.interval_s * c.aht_s;
        let m = erlang_c_metrics(c.servers, load, c.aht_s, c.target_s).unwrap();
        let what = format!("erlang C {c:?}");
        close(&format!("{what} p_wait"), m.p_wait, c.p_wait);
        close(&format!("{what} service_level"), m.service_level, c.service_level);
        close(&format!("{what} occupancy"), m.occupancy, c.occupancy);
        close(&format!("{what} asa_s"), m.asa_s, c.asa_s);
    }
}

#[test]
fn erlang_c_required_servers_match_pyworkforce() {
    for c in &reference().erlang_c_required {
        let w = Workload::new(c.arrivals, c.interval_s, c.aht_s, None).unwrap();
        let t = Target {
            target_s: c.target_s,
            service_level: Some(c.service_level_target),
            max_occupancy: Some(c.max_occupancy),
        };
        let m = required_servers(&w, &t).unwrap();
        assert_eq!(m.servers, c.servers, "{c:?}");
        close("service_level", m.service_level, c.service_level);
        close("p_wait", m.p_wait, c.p_wait);
        close("occupancy", m.occupancy, c.occupancy);
    }
}

#[test]
fn erlang_a_matches_textbook_reference() {
    let r = reference();
    assert!(r.erlang_a.len() >= 8);
    for c in &r.erlang_a {
        let m = erlang_a_metrics(c.servers, c.arrivals / c.interval_s, c.aht_s, c.patience_s, c.target_s).unwrap();
        check_a(c, &m);
    }
}

#[test]
fn erlang_a_required_servers_match_reference() {
    for r in &reference().erlang_a_required {
        let c = &r.case;
        let w = Workload::new(c.arrivals, c.interval_s, c.aht_s, Some(c.patience_s)).unwrap();
        let t = Target {
            target_s: c.target_s,
            service_level: Some(r.service_level_target),
            max_occupancy: None,
        };
        let m = required_servers(&w, &t).unwrap();
        assert_eq!(m.servers, c.servers, "{c:?}");
        check_a(c, &m);
    }
}
