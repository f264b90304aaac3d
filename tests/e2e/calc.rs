//! End to end: the stateless calculators (`/v1/stats/*`, `/v1/staffing/erlang`)
//! answer over HTTP with the library's numbers and reject bad input with a
//! problem naming the parameter. Reference values: statsmodels 0.14
//! (`proportions_ztest`, `confint_proportions_2indep(method="wald")`) and
//! pyworkforce 0.5.1 (`ErlangC.required_positions`).

use crate::support;

use support::{Server, create_key};

fn close(a: f64, b: f64) -> bool {
    ((a - b) / b).abs() < 1e-6
}

#[test]
fn calculators_over_http() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "analyst");
    let server = Server::start(&data, &[]);
    let auth = format!("Bearer {key}");
    let post = |path: &str, body: &str| {
        server
            .request("POST", path, &[("Authorization", &auth)], body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
    };

    let r = post(
        "/v1/stats/compare",
        r#"{"control": {"n": 1000, "sum": 100}, "treatment": {"n": 1000, "sum": 130}, "sequential": true, "bayesian": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(close(v["absolute_lift"].as_f64().unwrap_or(0.0), 0.03), "{v}");
    assert!(close(v["relative_lift"].as_f64().unwrap_or(0.0), 0.3), "{v}");
    assert!(
        close(v["p_value"].as_f64().unwrap_or(0.0), 0.035_488_450_466_474_71),
        "{v}"
    );
    assert!(
        close(v["absolute_ci"][0].as_f64().unwrap_or(0.0), 0.002_067_934_439_376_358_7),
        "{v}"
    );
    assert!(
        close(v["absolute_ci"][1].as_f64().unwrap_or(0.0), 0.057_932_065_560_623_636),
        "{v}"
    );
    let seq_p = v["sequential"]["p_value"].as_f64().unwrap_or(0.0);
    assert!(
        seq_p > v["p_value"].as_f64().unwrap_or(1.0),
        "always-valid p-values are more conservative: {v}"
    );
    let ctw = v["bayesian"]["chance_to_beat_control"].as_f64().unwrap_or(0.0);
    assert!(ctw > 0.95 && ctw < 1.0, "{v}");

    let r = post(
        "/v1/stats/compare",
        r#"{"control": {"n": 0, "sum": 0}, "treatment": {"n": 10, "sum": 1}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = post("/v1/stats/compare", r#"{"control": 5}"#);
    assert_eq!(r.status, 400);

    let r = post(
        "/v1/stats/sample-size",
        r#"{"baseline": 0.10, "minimum_effect": 0.02, "daily_units": 1000}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let per_arm = v["units_per_arm"].as_u64().unwrap_or(0);
    // 2 arms × n / 1000 per day, rounded up.
    assert_eq!(v["days"].as_f64(), Some(((2 * per_arm) as f64 / 1000.0).ceil()), "{v}");
    assert!(
        (3000..4500).contains(&per_arm),
        "about 3,800 per arm for 10 % → 12 % at 80 % power: {v}"
    );
    let r = post(
        "/v1/stats/sample-size",
        r#"{"baseline": 0.10, "minimum_effect": 0.02, "power": 1.5}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["parameter"], "power");

    let get = |q: &str| {
        server
            .request(
                "GET",
                &format!("/v1/staffing/erlang?{q}"),
                &[("Authorization", &auth)],
                b"",
            )
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let r = get("arrivals=120&interval_s=1800&aht_s=240&target_s=20&service_level=0.8");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["agents"], 20, "pyworkforce: 20 positions");
    assert!(
        close(v["service_level"].as_f64().unwrap_or(0.0), 0.816_512_242_771_655_2),
        "{v}"
    );
    assert!(
        close(v["p_wait"].as_f64().unwrap_or(0.0), 0.256_077_793_839_057_8),
        "{v}"
    );
    assert!(close(v["occupancy"].as_f64().unwrap_or(0.0), 0.8), "{v}");
    let r = get("arrivals=120&interval_s=1800&aht_s=240&target_s=20&service_level=0.8&patience_s=300");
    assert!(r.json()["p_abandon"].as_f64().is_some(), "Erlang A answers p_abandon");
    let r = get("arrivals=120&interval_s=1800&aht_s=0&target_s=20&service_level=0.8");
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("aht_s")));
    let r = get("arrivals=120&interval_s=1800&aht_s=240&target_s=20&service_level=1");
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("service_level")));
    let r = get("arrivals=120&aht_s=240&target_s=20");
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("service_level")));
    let r = get("arrivals=lots&aht_s=240&target_s=20&service_level=0.8");
    assert_eq!(r.status, 400);

    let r = server
        .request("GET", "/v1/staffing/erlang?arrivals=1", &[], b"")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 401, "calculators need a key too");
}
