//! End to end: analyst SQL against the real binary, with the real
//! clients: Debian's `psql`, Python's `psycopg`, and HTTP `/v1/sql`.
//!
//! The lake holds a week of generated traffic of the three demo tenants
//! (`cxlake generate` + `cxlake ingest`), so isolation is tested against
//! real neighbours: every count an `dragon-mart` session sees must equal
//! what the platform-wide session sees with `WHERE tenant_id =
//! 'dragon-mart'`.
//!
//! `psql` and `psycopg` are required: a missing client is a failure, not a
//! skip (`.ci/run` installs both).

use crate::support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::{Server, create_key};

const TENANT: &str = "dragon-mart";
const NEIGHBOUR: &str = "modehaus_eu";
/// The third demo tenant; its analyst runs the runaway queries, so that
/// they hold its concurrency slots, not those the other tests use.
const THIRD: &str = "streamly-us";

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    pg: String,
    /// Analyst key of TENANT.
    analyst: String,
    /// Agent key of TENANT (may not run SQL).
    agent: String,
    /// Platform-wide analyst key.
    platform: String,
    /// Analyst key of THIRD, for the bound tests.
    third: String,
}

/// Bounds small enough that the hostile queries hit them in seconds.
const CONFIG: &str = r#"
[sql.analyst]
timeout_s = 3
max_rows = 50000
memory_mb = 64
concurrent_per_tenant = 2
"#;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let events = dir.path().join("events.ndjson");
        let run = |args: &[&str]| support::run_cli(args, &data);
        let ev = events.to_string_lossy().to_string();
        run(&[
            "generate",
            "--days",
            "7",
            "--start",
            "2026-03-02",
            "--conversations-per-day",
            "150",
            "--out",
            &ev,
        ]);
        run(&["ingest", &ev]);
        let config = dir.path().join("cxlake.toml");
        std::fs::write(&config, CONFIG).unwrap_or_else(|e| panic!("{e}"));
        let analyst = create_key(&data, TENANT, "analyst");
        let agent = support::create_key_with(&data, TENANT, "agent", &["--agent", "a1"]);
        let platform = create_key(&data, "*", "analyst");
        let third = create_key(&data, THIRD, "analyst");
        let server = Server::start_with_pg(&data, &config);
        // Every tenant's facts built before the tests run in parallel, so a
        // query is not held up by a build while the next one of its tenant
        // comes (each tenant and role runs two at once at most).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while server.request("GET", "/readyz", &[], b"").ok().map(|r| r.status) != Some(200) {
            assert!(
                std::time::Instant::now() < deadline,
                "facts not built within 10 minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (host, port) = server.pg_host_port();
        let pg = format!("{host}:{port}");
        Fixture {
            _dir: dir,
            server,
            pg,
            analyst,
            agent,
            platform,
            third,
        }
    })
}

/// Runs `psql` with `args`; returns (success, stdout, stderr).
fn psql(f: &Fixture, user: &str, password: &str, args: &[&str]) -> (bool, String, String) {
    let (host, port) = f.pg.rsplit_once(':').unwrap_or_else(|| panic!("{}", f.pg));
    let out = Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-U",
            user,
            "-d",
            "cxlake",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap_or_else(|e| panic!("psql must be installed (Debian package postgresql-client): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs one query through psql and returns the rows as CSV lines (no header).
fn psql_rows(f: &Fixture, sql: &str) -> Vec<String> {
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["--csv", "-t", "-c", sql]);
    assert!(ok, "psql {sql}: {err}");
    out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

fn http_sql(f: &Fixture, key: &str, sql: &str, accept: &str) -> support::Response {
    let body = serde_json::json!({ "sql": sql }).to_string();
    f.server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &format!("Bearer {key}")), ("Accept", accept)],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One query through HTTP as CSV rows (no header).
fn http_rows(f: &Fixture, key: &str, sql: &str) -> Vec<String> {
    let r = http_sql(f, key, sql, "text/csv");
    assert_eq!(r.status, 200, "{sql}: {}", r.text());
    r.text()
        .lines()
        .skip(1)
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

fn count(f: &Fixture, key: &str, sql: &str) -> i64 {
    let rows = http_rows(f, key, sql);
    rows.first()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: {rows:?}"))
}

#[test]
fn psql_connects_lists_tables_and_describes_conversations() {
    let f = fixture();
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["-c", "\\dt"]);
    assert!(ok, "\\dt: {err}");
    for table in ["events"] {
        assert!(out.contains(table), "\\dt lists {table}: {out}");
    }
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["-c", "\\dv"]);
    assert!(ok, "\\dv: {err}");
    for view in ["conversations", "messages", "orders", "agent_sessions", "exposures"] {
        assert!(out.contains(view), "\\dv lists {view}: {out}");
    }
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["-c", "\\d conversations"]);
    assert!(ok, "\\d conversations: {err}");
    for column in ["conversation_id", "channel", "first_reply_at", "csat_score", "sla_met"] {
        assert!(out.contains(column), "\\d conversations shows {column}: {out}");
    }
}

#[test]
fn wrong_password_and_wrong_user_are_refused() {
    let f = fixture();
    let (ok, _, err) = psql(f, TENANT, "not-a-key", &["-c", "SELECT 1"]);
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");
    let (ok, _, err) = psql(f, NEIGHBOUR, &f.analyst, &["-c", "SELECT 1"]);
    assert!(!ok, "a key of {TENANT} cannot log in as {NEIGHBOUR}");
    assert!(err.contains(&format!("connect with user name \"{TENANT}\"")), "{err}");
    let (ok, _, err) = psql(f, TENANT, &f.agent, &["-c", "SELECT 1"]);
    assert!(!ok, "agent keys may not run SQL");
    assert!(err.contains("analyst or admin"), "{err}");
}

#[test]
fn psql_and_http_give_the_same_answers_to_a_join() {
    let f = fixture();
    let sql = "SELECT c.channel, count(DISTINCT c.conversation_id) AS conversations, count(m.message_id) AS messages \
               FROM conversations c JOIN messages m ON m.conversation_id = c.conversation_id \
               GROUP BY c.channel ORDER BY c.channel";
    let via_pg = psql_rows(f, sql);
    let via_http = http_rows(f, &f.analyst, sql);
    assert!(via_pg.len() >= 3, "several channels: {via_pg:?}");
    assert_eq!(via_pg, via_http);
}

#[test]
fn psycopg_prepared_statements_match_http() {
    let f = fixture();
    let (host, port) = f.pg.rsplit_once(':').unwrap_or_else(|| panic!("{}", f.pg));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pg/psycopg_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([host, port, TENANT, &f.analyst])
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed: {e}"));
    assert!(
        out.status.success(),
        "psycopg client (pip install 'psycopg[binary]'): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    // The script counts conversations per channel with a bound parameter.
    let by_channel = got["by_channel"].as_object().unwrap_or_else(|| panic!("{got}"));
    assert!(!by_channel.is_empty());
    for (channel, n) in by_channel {
        let want = count(
            f,
            &f.analyst,
            &format!("SELECT count(*) FROM conversations WHERE channel = '{channel}'"),
        );
        assert_eq!(n.as_i64(), Some(want), "{channel}");
    }
    assert_eq!(got["tenants"], serde_json::json!([TENANT]));
    assert_eq!(got["wrong_password_refused"], Value::Bool(true));
}

#[test]
fn every_sql_construct_sees_only_the_sessions_tenant() {
    let f = fixture();
    let own = count(
        f,
        &f.platform,
        &format!("SELECT count(*) FROM events WHERE tenant_id = '{TENANT}'"),
    );
    let all = count(f, &f.platform, "SELECT count(*) FROM events");
    assert!(
        own > 0 && all > own,
        "the lake has {TENANT} and neighbours: {own} of {all}"
    );
    let convs_own = count(
        f,
        &f.platform,
        &format!("SELECT count(*) FROM conversations WHERE tenant_id = '{TENANT}'"),
    );
    for (sql, want) in [
        ("SELECT count(*) FROM events".to_string(), own),
        (format!("SELECT count(*) FROM events WHERE tenant_id <> '{TENANT}'"), 0),
        ("SELECT count(*) FROM cxlake.public.events".to_string(), own),
        ("SELECT count(*) FROM (SELECT * FROM events) e".to_string(), own),
        (
            format!(
                "SELECT count(*) FROM events WHERE conversation_id IN (SELECT conversation_id FROM events WHERE tenant_id = '{NEIGHBOUR}')"
            ),
            0,
        ),
        (
            "SELECT count(*) FROM events a JOIN events b ON a.event_id = b.event_id AND a.tenant_id = b.tenant_id"
                .to_string(),
            own,
        ),
        (
            "WITH e AS (SELECT tenant_id FROM events) SELECT count(*) FROM e".to_string(),
            own,
        ),
        (
            "SELECT count(*) FROM (SELECT event_id FROM events UNION ALL SELECT conversation_id FROM conversations) u"
                .to_string(),
            own + convs_own,
        ),
        (
            "SELECT max(n) FROM (SELECT count(*) OVER (PARTITION BY tenant_id) AS n FROM events) w".to_string(),
            own,
        ),
        ("SELECT count(DISTINCT tenant_id) FROM conversations".to_string(), 1),
        ("SELECT count(*) FROM conversations".to_string(), convs_own),
    ] {
        assert_eq!(count(f, &f.analyst, &sql), want, "HTTP: {sql}");
        assert_eq!(psql_rows(f, &sql), vec![want.to_string()], "psql: {sql}");
    }
    // A platform-wide key names a tenant as the user name, or * for all.
    let (ok, out, err) = psql(
        f,
        NEIGHBOUR,
        &f.platform,
        &["--csv", "-t", "-c", "SELECT DISTINCT tenant_id FROM events"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), NEIGHBOUR);
    let (ok, out, err) = psql(
        f,
        "*",
        &f.platform,
        &["--csv", "-t", "-c", "SELECT count(*) FROM events"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), all.to_string());
}

#[test]
fn hostile_statements_fail_cleanly_and_change_nothing() {
    let f = fixture();
    let before = count(f, &f.analyst, "SELECT count(*) FROM events");
    let out_file = std::env::temp_dir().join(format!("cxlake-hostile-{}.csv", std::process::id()));
    let out_path = out_file.to_string_lossy().to_string();
    let hostile = [
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        format!("COPY (SELECT * FROM events) TO '{out_path}'"),
        format!("COPY events TO '{out_path}'"),
        "INSERT INTO events (event_id) VALUES ('x')".to_string(),
        "DELETE FROM events".to_string(),
        "DROP TABLE events".to_string(),
        "DROP VIEW conversations".to_string(),
        "CREATE VIEW leak AS SELECT 1".to_string(),
        "CREATE TABLE t AS SELECT * FROM events".to_string(),
        "SELECT * INTO t2 FROM events".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "SET datafusion.runtime.memory_limit = '100G'".to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
        "SELECT * FROM 'file:///etc/passwd'".to_string(),
        "CREATE FUNCTION f() RETURNS INT AS 'SELECT 1' LANGUAGE SQL".to_string(),
    ];
    for sql in &hostile {
        let (ok, _, err) = psql(f, TENANT, &f.analyst, &["-c", sql]);
        assert!(!ok, "psql accepted: {sql}");
        assert!(err.contains("ERROR"), "psql {sql}: a clear error, got {err}");
        let r = http_sql(f, &f.analyst, sql, "application/json");
        assert!(matches!(r.status, 400 | 403), "HTTP {sql}: {} {}", r.status, r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    assert!(!out_file.exists(), "COPY wrote {out_path}");
    // The session still has its tables, and nothing changed.
    assert_eq!(count(f, &f.analyst, "SELECT count(*) FROM events"), before);
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["-c", "\\dv"]);
    assert!(
        ok && out.contains("conversations") && !out.contains("leak"),
        "{out}{err}"
    );
}

#[test]
fn bounds_stop_runaway_queries_and_the_server_keeps_serving() {
    let f = fixture();
    // A query that never ends: stopped by the 3 s timeout.
    let forever = "SELECT count(*) FROM generate_series(1, 1000000000000) a";
    let r = http_sql(f, &f.third, forever, "application/json");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["type"], "/problems/query-timeout", "{}", r.text());
    let (ok, _, err) = psql(f, THIRD, &f.third, &["-c", forever]);
    assert!(!ok && err.contains("ran longer than the 3 s limit"), "{err}");
    // A cartesian join that would need far more than 64 MiB.
    let cartesian = "SELECT a.event_id, b.event_id, c.event_id FROM events a, events b, events c ORDER BY 1, 2, 3";
    let r = http_sql(f, &f.third, cartesian, "application/json");
    assert_eq!(r.status, 422, "{}", r.text());
    let kind = r.json()["type"].as_str().unwrap_or_default().to_string();
    assert!(
        ["/problems/memory-limit", "/problems/query-timeout"].contains(&kind.as_str()),
        "{}",
        r.text()
    );
    let (ok, _, err) = psql(f, THIRD, &f.third, &["-c", cartesian]);
    assert!(!ok && err.contains("ERROR"), "{err}");
    // Too many rows.
    let too_many = "SELECT * FROM generate_series(1, 60000)";
    let r = http_sql(f, &f.third, too_many, "application/json");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["type"], "/problems/too-many-rows");
    // A streamed result that crosses the bound after its first rows ends
    // without the closing chunk, so no client takes it for complete.
    let body = serde_json::json!({ "sql": too_many }).to_string();
    let streamed = f.server.request(
        "POST",
        "/v1/sql",
        &[
            ("Authorization", &format!("Bearer {}", f.third)),
            ("Accept", "text/csv"),
        ],
        body.as_bytes(),
    );
    assert!(streamed.is_err(), "a cut stream must not parse as a complete response");
    let (ok, _, err) = psql(f, THIRD, &f.third, &["-c", too_many]);
    assert!(!ok && err.contains("more than 50000 rows"), "{err}");
    // Everyone else is still served.
    assert!(count(f, &f.analyst, "SELECT count(*) FROM conversations") > 0);
    assert_eq!(psql_rows(f, "SELECT 1 + 1"), vec!["2".to_string()]);
}

#[test]
fn concurrent_queries_per_tenant_are_limited() {
    let f = fixture();
    // A tenant of its own: the other tests, running meanwhile, query the
    // fixture's tenants and would meet the limit this test fills.
    let own = create_key(&f.server.data, "pg-limits", "analyst");
    let slow = "SELECT count(*) FROM generate_series(1, 1000000000000) a";
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let key = own.clone();
            std::thread::spawn(move || {
                let f = fixture();
                let r = http_sql(f, &key, slow, "application/json");
                (r.status, r.json()["type"].as_str().unwrap_or_default().to_string())
            })
        })
        .collect();
    let results: Vec<(u16, String)> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| panic!()))
        .collect();
    assert!(
        results
            .iter()
            .any(|(s, t)| *s == 429 && t == "/problems/too-many-queries"),
        "limit 2: one of three is refused: {results:?}"
    );
    // Another tenant is not affected by this tenant's queries.
    assert!(count(f, &f.analyst, "SELECT count(*) FROM events") > 0);
}

#[test]
fn explain_and_explain_analyze_work() {
    let f = fixture();
    let (ok, out, err) = psql(
        f,
        TENANT,
        &f.analyst,
        &["-c", "EXPLAIN SELECT count(*) FROM conversations"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("physical_plan") && out.contains("BoundedExec"), "{out}");
    let (ok, out, err) = psql(
        f,
        TENANT,
        &f.analyst,
        &["-c", "EXPLAIN ANALYZE SELECT count(*) FROM events"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("output_rows"), "{out}");
}

#[test]
fn http_streams_arrow_ipc_parquet_and_ndjson() {
    let f = fixture();
    let sql = "SELECT conversation_id, channel FROM conversations ORDER BY conversation_id";
    let want = http_rows(f, &f.analyst, sql);
    assert!(want.len() > 100);

    let r = http_sql(f, &f.analyst, sql, "application/vnd.apache.arrow.stream");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vnd.apache.arrow.stream"));
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(r.body.clone()), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let rows: usize = reader.map(|b| b.unwrap_or_else(|e| panic!("{e}")).num_rows()).sum();
    assert_eq!(rows, want.len());

    let r = http_sql(f, &f.analyst, sql, "application/vnd.apache.parquet");
    assert_eq!(r.status, 200, "{}", r.text());
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(r.body.clone()))
            .unwrap_or_else(|e| panic!("{e}"))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
    let rows: usize = reader.map(|b| b.unwrap_or_else(|e| panic!("{e}")).num_rows()).sum();
    assert_eq!(rows, want.len());

    let r = http_sql(f, &f.analyst, sql, "application/x-ndjson");
    assert_eq!(r.status, 200);
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(lines.len(), want.len());
    assert_eq!(
        format!(
            "{},{}",
            lines[0]["conversation_id"].as_str().unwrap_or(""),
            lines[0]["channel"].as_str().unwrap_or("")
        ),
        want[0]
    );
}

#[test]
fn sql_examples_run_and_agree_between_psql_and_http() {
    let f = fixture();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/examples");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for path in names {
        let sql = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let via_http = http_rows(f, &f.analyst, &sql);
        assert!(!via_http.is_empty(), "{} returns rows", path.display());
        let via_pg = psql_rows(f, &sql);
        assert_eq!(via_pg, via_http, "{}", path.display());
    }
}

#[test]
fn catalog_queries_of_client_tools_are_answered() {
    let f = fixture();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pg/tool_catalog_queries.sql");
    let file = file.to_string_lossy().to_string();
    let (ok, out, err) = psql(f, TENANT, &f.analyst, &["-f", &file]);
    assert!(ok, "{err}\n{out}");
    for want in [
        "cxlake",
        "pg_catalog",
        "conversations",
        "events",
        "int4",
        "event_id",
        "| VIEW",
        "net_amount",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

#[test]
fn tls_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl must be installed: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.path().join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "pg_tls_cert = {:?}\npg_tls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let analyst = create_key(&data, "acme", "analyst");
    let server = Server::start_with_pg(&data, &config);
    let (host, port) = server.pg_host_port();
    let out = Command::new("psql")
        .arg(format!(
            "host={host} port={port} user=acme dbname=cxlake sslmode=require"
        ))
        .args(["-X", "-c", "\\conninfo"])
        .env("PGPASSWORD", &analyst)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("SSL connection"), "{text}");
}

#[test]
fn tenant_settings_shape_the_views_of_sql_sessions() {
    let f = fixture();
    let admin = create_key(&f.server.data, THIRD, "admin");
    let r = f
        .server
        .request(
            "PUT",
            "/v1/settings",
            &[
                ("Authorization", &format!("Bearer {admin}")),
                ("Content-Type", "application/json"),
            ],
            br#"{"hourly_rates": [{"team": "t1", "rate": 20, "currency": "EUR"}], "sla_target_s": 30,
                "attribution_window_days": 3, "time_zone": "Europe/Berlin"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    // The settings the views read are a row of the session, not SQL text.
    let sql = "SELECT sla_target_us, time_zone, attribution_window = INTERVAL '3 days' FROM tenant_settings";
    assert_eq!(http_rows(f, &f.third, sql), ["30000000,Europe/Berlin,true"]);
    let (ok, out, err) = psql(
        f,
        THIRD,
        &f.third,
        &["--csv", "-t", "-c", "SELECT * FROM tenant_settings"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "3 days,30000000,Europe/Berlin");
    assert_eq!(http_rows(f, &f.analyst, sql), ["120000000,UTC,false"]);
    let sql = "SELECT tenant_id, team, hourly_rate, currency FROM team_hourly_rates";
    let want = vec![format!("{THIRD},t1,20.0,EUR")];
    assert_eq!(http_rows(f, &f.third, sql), want);
    let (ok, out, err) = psql(f, THIRD, &f.third, &["--csv", "-t", "-c", sql]);
    assert!(ok, "{err}");
    assert_eq!(vec![out.trim().to_string()], want);
    // Other tenants keep theirs (none).
    assert!(http_rows(f, &f.analyst, sql).is_empty());
}
