//! End to end: hostile analyst SQL against the real binary.
//!
//! One analyst of tenant `acme` sends statement after statement that tries
//! to write, escape the sandbox, read another tenant's rows, or exhaust the
//! process (huge values, runaway joins, endless recursion). Each must fail
//! cleanly (a problem document that says why) or answer within the bounds
//! and with acme's rows only; `/healthz` must answer after every one, and
//! meanwhile an analyst of `globex` queries in a loop and must always get
//! the right answer. The bounds are small (3 s, 32 MiB per session, 96 MiB
//! in all, 1 MiB of JSON) so the suite runs in seconds.
//!
//! A second server checks that a runaway query really stops: after its
//! timeout the process goes idle, and SIGTERM ends the process while one
//! runs.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, create_key};

const ATTACKER: &str = "acme";
const VICTIM: &str = "globex";
/// Conversations of each tenant (four events each).
const ATTACKER_CONVERSATIONS: usize = 100;
const VICTIM_CONVERSATIONS: usize = 60;

const CONFIG: &str = r#"
[sql]
memory_total_mb = 96
spill_max_mb = 64
threads = 2

[sql.analyst]
timeout_s = 3
max_rows = 20000
memory_mb = 32
concurrent_per_tenant = 2
max_json_mb = 1

# Admin queries may run for ten minutes: only their client going away
# stops them early.
[sql.admin]
timeout_s = 600
memory_mb = 32
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    attacker: String,
    victim: String,
    /// Admin key of the attacker's tenant (a ten-minute bound).
    admin: String,
}

/// Starts a server with `config` and ingests both tenants' conversations
/// through the API; returns it with the analyst keys of both tenants.
fn start(config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let config_path = dir.path().join("cxlake.toml");
    std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("{e}"));
    let service_a = create_key(&data, ATTACKER, "service");
    let service_v = create_key(&data, VICTIM, "service");
    let attacker = create_key(&data, ATTACKER, "analyst");
    let victim = create_key(&data, VICTIM, "analyst");
    let admin = create_key(&data, ATTACKER, "admin");
    let server = Server::start_with_pg(&data, &config_path);
    for (key, tenant, n) in [
        (&service_a, ATTACKER, ATTACKER_CONVERSATIONS),
        (&service_v, VICTIM, VICTIM_CONVERSATIONS),
    ] {
        let lines: Vec<String> = (0..n).flat_map(|c| support::conversation_events(tenant, c)).collect();
        let r = server.send_json(&format!("Bearer {key}"), "POST", "/v1/events", &lines.join("\n"));
        assert_eq!(r.status, 200, "ingest {tenant}: {}", r.text());
    }
    Fixture {
        _dir: dir,
        server,
        attacker,
        victim,
        admin,
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| start(CONFIG))
}

fn http_sql(server: &Server, key: &str, sql: &str) -> std::io::Result<support::Response> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    server.request(
        "POST",
        "/v1/sql",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

fn healthy(server: &Server) -> bool {
    server
        .request("GET", "/healthz", &[], b"")
        .is_ok_and(|r| r.status == 200)
}

/// What a statement must lead to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A client error (4xx) with a problem document and a detail.
    Refused,
    /// Refused with this problem type (`/problems/<kind>`).
    RefusedAs(&'static str),
    /// Answered (200), and no row mentions the other tenant.
    Answered,
    /// Answered, or refused cleanly: never a server error.
    AnsweredOrRefused,
}

fn problem_kind(r: &support::Response) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["type"].as_str().unwrap_or_default().to_string()
}

/// Checks one statement's answer; returns what is wrong with it.
fn judge(sql: &str, expect: Expect, r: &support::Response) -> Option<String> {
    let refused_cleanly = || {
        if !(400..500).contains(&r.status) {
            return Some(format!("{sql}: expected a 4xx problem, got {} {}", r.status, r.text()));
        }
        if r.header("content-type") != Some("application/problem+json") {
            return Some(format!("{sql}: not a problem document: {:?}", r.header("content-type")));
        }
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if v["detail"].as_str().is_none_or(str::is_empty) {
            return Some(format!("{sql}: a problem without a detail: {}", r.text()));
        }
        None
    };
    let answered = || {
        if r.status != 200 {
            return Some(format!("{sql}: expected an answer, got {} {}", r.status, r.text()));
        }
        if r.text().contains(VICTIM) {
            return Some(format!("{sql}: the answer mentions the other tenant: {}", r.text()));
        }
        None
    };
    match expect {
        Expect::Refused => refused_cleanly(),
        Expect::RefusedAs(kind) => refused_cleanly().or_else(|| {
            let got = problem_kind(r);
            (got != format!("/problems/{kind}")).then(|| format!("{sql}: expected {kind}, got {got}: {}", r.text()))
        }),
        Expect::Answered => answered(),
        Expect::AnsweredOrRefused => {
            if r.status == 200 {
                answered()
            } else {
                refused_cleanly()
            }
        }
    }
}

fn hostile_statements(out_path: &str) -> Vec<(String, Expect)> {
    use Expect::*;
    let s = |sql: &str, e: Expect| (sql.to_string(), e);
    vec![
        // Writes, DDL, DML.
        s("INSERT INTO events (event_id) VALUES ('x')", RefusedAs("read-only")),
        s("UPDATE events SET channel = 'x'", RefusedAs("read-only")),
        s("DELETE FROM events", RefusedAs("read-only")),
        s("TRUNCATE events", Refused),
        s("DROP TABLE events", RefusedAs("read-only")),
        s("DROP VIEW conversations", RefusedAs("read-only")),
        s("ALTER TABLE events ADD COLUMN x INT", Refused),
        s("CREATE TABLE t AS SELECT * FROM events", RefusedAs("read-only")),
        s("CREATE TEMPORARY TABLE t (a INT)", Refused),
        s("CREATE VIEW leak AS SELECT * FROM events", RefusedAs("read-only")),
        s("CREATE SCHEMA s", Refused),
        s("CREATE DATABASE d", Refused),
        s("CREATE INDEX i ON events (channel)", Refused),
        s(
            "CREATE FUNCTION f() RETURNS INT AS 'SELECT 1' LANGUAGE SQL",
            RefusedAs("read-only"),
        ),
        s("GRANT SELECT ON events TO PUBLIC", Refused),
        s("SELECT * INTO t2 FROM events", RefusedAs("read-only")),
        s("WITH x AS (SELECT 1) INSERT INTO events SELECT * FROM x", Refused),
        s("EXPLAIN INSERT INTO events (event_id) VALUES ('x')", Refused),
        s("PREPARE p AS SELECT 1", Refused),
        s("SELECT 1; DROP TABLE events", Refused),
        // COPY and files.
        (format!("COPY events TO '{out_path}'"), Refused),
        (format!("COPY (SELECT * FROM events) TO '{out_path}'"), Refused),
        (format!("EXPLAIN COPY events TO '{out_path}'"), Refused),
        s("CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'", Refused),
        s("SELECT * FROM '/etc/passwd'", Refused),
        s("SELECT * FROM 'file:///etc/passwd'", Refused),
        s("SELECT * FROM 'https://example.com/data.csv'", Refused),
        s("SELECT * FROM read_csv('/etc/passwd')", Refused),
        s("SELECT * FROM read_parquet('/etc/passwd')", Refused),
        s("SELECT * FROM parquet_metadata('/etc/passwd')", Refused),
        s("SELECT pg_read_file('/etc/passwd')", Refused),
        // SET and session escapes.
        s("SET datafusion.execution.target_partitions = 1", RefusedAs("read-only")),
        s("SET datafusion.runtime.memory_limit = '100G'", RefusedAs("read-only")),
        s(
            "SET datafusion.execution.batch_size = 100000000",
            RefusedAs("read-only"),
        ),
        s("SET work_mem = '1GB'", RefusedAs("read-only")),
        s("SET ROLE admin", Refused),
        s("SET SESSION AUTHORIZATION 'admin'", Refused),
        s("RESET ALL", Refused),
        // Other catalogs and tenants.
        s("SELECT * FROM datafusion.public.events", Refused),
        s(
            "SELECT * FROM cxlake.information_schema.df_settings WHERE name LIKE '%memory%'",
            AnsweredOrRefused,
        ),
        s("SELECT count(*) FROM events WHERE tenant_id = 'globex'", Answered),
        s("SELECT DISTINCT tenant_id FROM events", Answered),
        s("SELECT DISTINCT tenant_id FROM cxlake.public.events", Answered),
        s("SELECT DISTINCT tenant_id FROM conversations", Answered),
        s("SELECT DISTINCT tenant_id FROM messages", Answered),
        s("SELECT DISTINCT tenant_id FROM orders", Answered),
        s("SELECT DISTINCT tenant_id FROM agent_sessions", Answered),
        s("SELECT DISTINCT tenant_id FROM exposures", Answered),
        s("SELECT DISTINCT tenant_id FROM script_uses", AnsweredOrRefused),
        s(
            "SELECT count(*) FROM events e WHERE EXISTS (SELECT 1 FROM events x WHERE x.tenant_id <> 'acme')",
            Answered,
        ),
        s(
            "SELECT tenant_id FROM events UNION SELECT tenant_id FROM conversations",
            Answered,
        ),
        s(
            "SELECT * FROM (SELECT tenant_id, event_id FROM events) t WHERE tenant_id <> 'acme'",
            Answered,
        ),
        s("SELECT tenant_id, count(*) OVER () FROM events LIMIT 5", Answered),
        s("SELECT * FROM information_schema.tables", Answered),
        s("SELECT * FROM information_schema.columns", Answered),
        s("SELECT * FROM information_schema.views", AnsweredOrRefused),
        s("SELECT * FROM pg_catalog.pg_class", Answered),
        s("SELECT * FROM pg_catalog.pg_namespace", Answered),
        s("SELECT * FROM pg_catalog.pg_database", Answered),
        s("SELECT * FROM pg_catalog.pg_tables", AnsweredOrRefused),
        s("SHOW TABLES", Answered),
        s("SHOW ALL", AnsweredOrRefused),
        s(
            "SELECT version(), current_database(), current_schema()",
            AnsweredOrRefused,
        ),
        s("SELECT pg_relation_size('events')", AnsweredOrRefused),
        // Values of a size the query names.
        s(
            "SELECT cardinality(array_repeat(1, 2147483647))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT cardinality(array_repeat(array_repeat(1, 100000), 100000))",
            RefusedAs("value-too-large"),
        ),
        s("SELECT length(repeat('x', 2147483647))", RefusedAs("value-too-large")),
        s(
            "SELECT length(repeat(event_id, 100000000)) FROM events",
            RefusedAs("value-too-large"),
        ),
        s("SELECT length(lpad('x', 2147483647))", RefusedAs("value-too-large")),
        s(
            "SELECT length(rpad('x', 2147483647, 'ab'))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT count(*) FROM (SELECT unnest(range(1, 2147483647)))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT count(*) FROM (SELECT unnest(generate_series(1, 2147483647)))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT cardinality(range(TIMESTAMP '1970-01-01', TIMESTAMP '2100-01-01', INTERVAL '1 second'))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT cardinality(array_resize([1], 2147483647, 0))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT length(replace(repeat('a', 100000), 'a', repeat('b', 100000)))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT length(regexp_replace(repeat('a', 100000), '', repeat('b', 1000), 'g'))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT length(array_to_string(array_repeat('', 100000), repeat('x', 100000)))",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT length(string_agg(event_id, repeat('x', 1000000))) FROM events",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT length(string_agg(repeat(event_id, 100000), ',')) FROM events",
            RefusedAs("value-too-large"),
        ),
        s(
            "SELECT levenshtein(repeat('a', 1000000), repeat('b', 1000000))",
            RefusedAs("value-too-large"),
        ),
        // Small values of the same functions still work.
        s(
            "SELECT repeat('ab', 3), lpad('x', 4, '-'), cardinality(array_repeat(0, 5)), cardinality(range(1, 10))",
            Answered,
        ),
        // Runaway time, rows, memory, result size.
        s(
            "SELECT count(*) FROM events a CROSS JOIN events b CROSS JOIN events c CROSS JOIN events d",
            RefusedAs("query-timeout"),
        ),
        s(
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            RefusedAs("query-timeout"),
        ),
        s(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            Refused,
        ),
        s(
            "SELECT a.event_id, b.event_id FROM events a, events b",
            RefusedAs("too-many-rows"),
        ),
        s(
            "SELECT a.event_id, b.event_id, c.event_id FROM events a, events b, events c ORDER BY 1, 2, 3",
            Refused,
        ),
        s(
            "SELECT array_agg(repeat(event_id, 2000)) FROM events a, events b",
            Refused,
        ),
        s(
            "SELECT repeat(event_id, 1000) FROM events",
            RefusedAs("result-too-large"),
        ),
        s("SELECT * FROM range(1, 1000000000000) LIMIT 5", Answered),
    ]
}

#[test]
fn hostile_statements_fail_cleanly_while_another_tenant_is_served() {
    let f = fixture();
    let victim_events = (VICTIM_CONVERSATIONS * 4) as i64;
    let attacker_events = (ATTACKER_CONVERSATIONS * 4) as i64;

    // The other tenant queries in a loop the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let victim = {
        let (stop, failures, key) = (stop.clone(), failures.clone(), f.victim.clone());
        std::thread::spawn(move || {
            let f = fixture();
            let mut answered = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let sql = "SELECT count(*) AS n FROM events";
                match http_sql(&f.server, &key, sql) {
                    Ok(r) if r.status == 200 && r.json()["rows"][0][0].as_i64() == Some(victim_events) => answered += 1,
                    Ok(r) => {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("{} {}", r.status, r.text()))
                    }
                    Err(e) => failures.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            answered
        })
    };

    let out_file = std::env::temp_dir().join(format!("cxlake-hostile-sql-{}.csv", std::process::id()));
    let statements = hostile_statements(&out_file.to_string_lossy());
    assert!(statements.len() >= 60, "{} statements", statements.len());
    let mut wrong = Vec::new();
    for (sql, expect) in &statements {
        match http_sql(&f.server, &f.attacker, sql) {
            Ok(r) => wrong.extend(judge(sql, *expect, &r)),
            Err(e) => wrong.push(format!("{sql}: no answer: {e}")),
        }
        if !healthy(&f.server) {
            wrong.push(format!("{sql}: /healthz failed afterwards"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let answered = victim.join().unwrap_or_else(|_| panic!("the victim thread panicked"));

    assert!(
        wrong.is_empty(),
        "{} statements misbehaved:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(!out_file.exists(), "COPY wrote {}", out_file.display());
    let failures = failures.lock().unwrap_or_else(|p| p.into_inner());
    assert!(failures.is_empty(), "the other tenant's queries failed: {failures:?}");
    assert!(answered > 0, "the other tenant was never answered");
    // Nothing changed, and the attacker still sees its own rows.
    let r = http_sql(&f.server, &f.attacker, "SELECT count(*) FROM events").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.json()["rows"][0][0].as_i64(), Some(attacker_events), "{}", r.text());
}

#[test]
fn huge_values_are_refused_over_the_postgres_wire_too() {
    let f = fixture();
    let (host, port) = f.server.pg_host_port();
    for sql in [
        "SELECT cardinality(array_repeat(1, 2147483647))",
        "SELECT length(repeat('x', 2147483647))",
        "SELECT count(*) FROM (SELECT unnest(range(1, 2147483647))) t",
        "SELECT length(string_agg(event_id, repeat('x', 1000000))) FROM events",
    ] {
        let out = std::process::Command::new("psql")
            .args(["-h", &host, "-p", &port, "-U", ATTACKER, "-d", "cxlake", "-X"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", &f.attacker)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap_or_else(|e| panic!("psql must be installed (Debian package postgresql-client): {e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "psql accepted {sql}");
        assert!(err.contains("would build about"), "{sql}: {err}");
        assert!(healthy(&f.server), "{sql}: /healthz failed afterwards");
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("{e}"));
    // The fields after the command name, which may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Waits (up to a minute) for a 2-second window in which the server used
/// less than a fifth of a core: a query still running would use both.
fn goes_idle(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs(2));
        if cpu_ticks(pid) - before < 40 {
            return true;
        }
    }
    false
}

#[test]
fn a_runaway_query_stops_at_its_timeout_and_sigterm_stops_the_server() {
    let mut f = start(CONFIG);
    let pid = f.server.child.id();
    let runaway = "SELECT count(*) FROM events a CROSS JOIN events b CROSS JOIN events c CROSS JOIN events d";

    let r = http_sql(&f.server, &f.attacker, runaway).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(problem_kind(&r), "/problems/query-timeout", "{}", r.text());
    assert!(goes_idle(pid), "the query went on after its timeout");
    // Its concurrency slots are free again.
    let r = http_sql(&f.server, &f.attacker, "SELECT 1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.text());

    // A client that goes away stops its query, though its bound is ten
    // minutes away.
    {
        use std::io::Write;
        let body = serde_json::json!({ "sql": runaway }).to_string();
        let mut client = std::net::TcpStream::connect(&f.server.addr).unwrap_or_else(|e| panic!("{e}"));
        let head = format!(
            "POST /v1/sql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            f.admin,
            body.len()
        );
        client.write_all(head.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        client.write_all(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(goes_idle(pid), "the query went on after its client went away");

    // SIGTERM while two such queries run: the server stops (`stop` fails
    // the test when it takes more than a minute).
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (addr, key) = (f.server.addr.clone(), f.attacker.clone());
            std::thread::spawn(move || {
                let body = serde_json::json!({ "sql": runaway }).to_string();
                support::http(
                    &addr,
                    "POST",
                    "/v1/sql",
                    &[("Authorization", &format!("Bearer {key}"))],
                    body.as_bytes(),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    f.server.stop();
    for t in running {
        // Answered with a problem (shutdown or timeout) or cut off; never
        // a success.
        if let Ok(Ok(r)) = t.join() {
            assert_ne!(r.status, 200, "{}", r.text());
        }
    }
}
