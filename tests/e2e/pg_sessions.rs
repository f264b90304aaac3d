//! End to end: the life of a Postgres connection, with real clients
//! (`psql`, Python's `psycopg`) against the real binary.
//!
//! - the key is checked before every statement and, while a connection
//!   is idle, twice a second: revoking or expiring it closes open
//!   connections too;
//! - what a connection `SET`s (time zone, statement timeout) is its own,
//!   and a bad value is refused when set;
//! - a statement stops on a cancel request (psql's Ctrl-C, psycopg's
//!   `conn.cancel()`), on the connection's `statement_timeout`, and when its
//!   client goes away, and its concurrency slot is free right after;
//! - a statement is parsed and planned on the SQL runtime, apart from the
//!   threads that acknowledge ingest.
//!
//! Each test uses tenants of its own: the bound of one query at a time per
//! tenant lets a test see whether its query still holds the slot (HTTP
//! `/v1/sql` answers 429 while it does). The role's own timeout is long
//! (60 s), so only the mechanisms under test can stop a query in time.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, create_key};

const CONFIG: &str = r#"
[sql.analyst]
timeout_s = 60
max_rows = 100000
memory_mb = 256
concurrent_per_tenant = 1
"#;

/// Runs until stopped (the role's 60 s bound at the latest).
const FOREVER: &str = "SELECT count(*) FROM generate_series(1, 1000000000000) a";

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    host: String,
    port: String,
    /// Platform-wide admin key, to create and revoke keys over HTTP.
    admin: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let config = dir.path().join("cxlake.toml");
        std::fs::write(&config, CONFIG).unwrap_or_else(|e| panic!("{e}"));
        let admin = create_key(&data, "*", "admin");
        let server = Server::start_with_pg(&data, &config);
        let (host, port) = server.pg_host_port();
        Fixture {
            host,
            port,
            _dir: dir,
            server,
            admin,
        }
    })
}

/// A new analyst key of `tenant`: (key text, key id).
fn analyst_key(f: &Fixture, tenant: &str, expires_at: Option<&str>) -> (String, String) {
    let mut body = serde_json::json!({ "role": "analyst", "tenant": tenant });
    if let Some(at) = expires_at {
        body["expires_at"] = Value::from(at);
    }
    let r = f
        .server
        .send_json(&format!("Bearer {}", f.admin), "POST", "/v1/keys", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    let text = |k: &str| j[k].as_str().unwrap_or_else(|| panic!("{k} in {j}")).to_string();
    (text("key"), text("id"))
}

fn http_sql(f: &Fixture, key: &str, sql: &str) -> support::Response {
    let body = serde_json::json!({ "sql": sql }).to_string();
    f.server
        .request(
            "POST",
            "/v1/sql",
            &[("Authorization", &format!("Bearer {key}"))],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls until the tenant of `key` has no free query slot (its one slot is
/// held by a running query), or `ended()` says the client running it is
/// gone (then false); panics after 30 s.
fn wait_busy(f: &Fixture, key: &str, mut ended: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ended() {
            return false;
        }
        let r = http_sql(f, key, "SELECT 1");
        if r.status == 429 {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "the query never started: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `psql -c FOREVER` and returns once its query holds the tenant's
/// slot. A probe of [`wait_busy`] may hold the slot just when the query
/// starts, which then fails at once (53000, too many queries): it is
/// started again.
fn start_forever(f: &Fixture, user: &str, key: &str) -> Child {
    for _ in 0..10 {
        let mut child = psql_command(f, user, key, &["-c", FOREVER])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("psql must be installed (Debian package postgresql-client): {e}"));
        if wait_busy(f, key, || matches!(child.try_wait(), Ok(Some(_)))) {
            return child;
        }
        let err = wait_exit(child);
        assert!(
            err.contains("53000"),
            "psql ended before its query held the slot: {err}"
        );
    }
    panic!("the query of {user} never got its slot");
}

/// Whether the tenant of `key` gets its slot back within 20 s (the role's
/// own bound would free it only after 60 s).
fn slot_frees(f: &Fixture, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http_sql(f, key, "SELECT 1");
        if r.status == 200 {
            return true;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `psql` with `args`: (success, stdout, stderr).
fn psql(f: &Fixture, user: &str, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = psql_command(f, user, key, args)
        .output()
        .unwrap_or_else(|e| panic!("psql must be installed (Debian package postgresql-client): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn psql_command(f: &Fixture, user: &str, key: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-h", &f.host, "-p", &f.port, "-U", user, "-d", "cxlake", "-X"])
        // VERBOSITY=verbose prints the SQLSTATE of errors.
        .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
        .args(args)
        .env("PGPASSWORD", key)
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// Waits for `child` to exit (panics after 90 s); returns its stderr.
fn wait_exit(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("psql did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A Python script run with psycopg, talking one JSON line at a time.
struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Shared by the scripts: connection parameters from argv, and a watchdog
/// so a hung server fails the test instead of hanging it.
const PY_PRELUDE: &str = r#"
import json, os, sys, threading
import psycopg
watchdog = threading.Timer(120, lambda: os._exit(3))
watchdog.daemon = True
watchdog.start()
HOST, PORT = sys.argv[1], int(sys.argv[2])
def connect(user, key, **kw):
    return psycopg.connect(host=HOST, port=PORT, user=user, password=key, dbname="cxlake",
                           autocommit=True, connect_timeout=10, **kw)
def error(e):
    return {"sqlstate": e.sqlstate, "message": str(e)}
def say(obj):
    print(json.dumps(obj), flush=True)
def wait():
    sys.stdin.readline()
"#;

impl Py {
    fn start(f: &Fixture, script: &str, args: &[&str]) -> Py {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{script}"))
            .args([f.host.as_str(), f.port.as_str()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 with psycopg must be installed: {e}"));
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
        let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout")));
        Py { child, stdin, stdout }
    }

    /// The next JSON line the script says.
    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            n > 0,
            "the psycopg script ended early (pip install 'psycopg[binary]'): {:?}",
            self.child.try_wait()
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Lets the script go on past its next `wait()`.
    fn go(&mut self) {
        writeln!(self.stdin).unwrap_or_else(|e| panic!("{e}"));
        self.stdin.flush().unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlstate(v: &Value) -> &str {
    v["sqlstate"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

#[test]
fn revoked_and_expired_keys_close_open_connections_even_idle_ones() {
    let f = fixture();
    let (revoked, revoked_id) = analyst_key(f, "keys-a", None);
    // Far enough ahead for both connections to log in on a busy machine.
    let expiry = chrono::Utc::now() + chrono::Duration::seconds(15);
    let expiry_s = expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (expiring, _) = analyst_key(f, "keys-a", Some(&expiry_s));
    // After the lapse the connections stay idle: the server must close them
    // on its own (the client sees the end of its socket without sending),
    // and nothing runs on them afterwards.
    let script = r#"
import socket, time
conns = [connect(sys.argv[3], sys.argv[4]), connect(sys.argv[3], sys.argv[5])]
say([c.execute("SELECT 1").fetchone()[0] for c in conns])
wait()
def closed_by_server(c):
    s = socket.socket(fileno=os.dup(c.fileno()))
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    finally:
        s.close()
deadline = time.monotonic() + 30
closed = [False, False]
while not all(closed) and time.monotonic() < deadline:
    closed = [closed_by_server(c) for c in conns]
    time.sleep(0.1)
out = []
for c, was_closed in zip(conns, closed):
    r = {"closed": was_closed}
    try:
        c.execute("SELECT 1").fetchone()
        r["next"] = "ran"
    except psycopg.Error as e:
        r["next"] = error(e)
    out.append(r)
say(out)
"#;
    let mut py = Py::start(f, script, &["keys-a", &revoked, &expiring]);
    assert_eq!(py.read(), serde_json::json!([1, 1]), "both keys work at first");
    let r = f.server.send_json(
        &format!("Bearer {}", f.admin),
        "DELETE",
        &format!("/v1/keys/{revoked_id}"),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The expiry is to the second: wait until it has surely passed.
    while chrono::Utc::now() < expiry + chrono::Duration::seconds(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    py.go();
    let out = py.read();
    for (i, lapse) in [(0, "revoked"), (1, "expired")] {
        assert_eq!(out[i]["closed"], true, "{lapse}: the idle connection stays open: {out}");
        assert_ne!(out[i]["next"], "ran", "{lapse}: {out}");
    }
    // New connections with either key are refused at login.
    for key in [&revoked, &expiring] {
        let (ok, _, err) = psql(f, "keys-a", key, &["-c", "SELECT 1"]);
        assert!(!ok && err.contains("password authentication failed"), "{err}");
    }
}

#[test]
fn time_zone_set_on_one_connection_stays_in_it() {
    let f = fixture();
    let (key, _) = analyst_key(f, "tz-a", None);
    let script = r#"
def offset(c):
    # None: a timestamp without zone, the default (UTC).
    off = c.execute("SELECT now()").fetchone()[0].utcoffset()
    return None if off is None else off.total_seconds()
a, b = connect(sys.argv[3], sys.argv[4]), connect(sys.argv[3], sys.argv[4])
out = {}
a.execute("SET timezone = 'Asia/Tokyo'")
out["a"] = offset(a)
out["a_show"] = a.execute("SHOW TimeZone").fetchone()[0]
out["a_status"] = a.info.parameter_status("TimeZone")
out["b"] = offset(b)
c = connect(sys.argv[3], sys.argv[4])
out["c"] = offset(c)
c.execute("SET TIME ZONE 'America/New_York'")
out["c_ny"] = offset(c)
out["a_again"] = offset(a)
try:
    b.execute("SET timezone = 'Mars/Olympus_Mons'")
    out["bad"] = "accepted"
except psycopg.Error as e:
    out["bad"] = error(e)
out["b_after_bad"] = offset(b)
say(out)
"#;
    let mut py = Py::start(f, script, &["tz-a", &key]);
    let out = py.read();
    assert_eq!(out["a"], 9.0 * 3600.0, "{out}");
    assert_eq!(out["a_show"], "Asia/Tokyo", "{out}");
    assert_eq!(out["a_status"], "Asia/Tokyo", "{out}");
    assert_eq!(out["b"], Value::Null, "another connection keeps the default: {out}");
    assert_eq!(out["c"], Value::Null, "a new connection starts with the default: {out}");
    let ny = out["c_ny"].as_f64().unwrap_or_default();
    assert!(ny == -5.0 * 3600.0 || ny == -4.0 * 3600.0, "{out}");
    assert_eq!(out["a_again"], 9.0 * 3600.0, "{out}");
    assert_eq!(sqlstate(&out["bad"]), "22023", "{out}");
    assert!(
        message(&out["bad"]).contains("invalid value for parameter \"TimeZone\""),
        "{out}"
    );
    assert_eq!(out["b_after_bad"], Value::Null, "{out}");
    // HTTP sessions of the tenant are untouched.
    let r = http_sql(f, &key, "SELECT now() AS t");
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["rows"][0][0].as_str().unwrap_or_default().to_string();
    assert!(
        !t.contains("+09:00") && !t.contains("-05:00") && !t.contains("-04:00"),
        "{t}"
    );
}

#[test]
fn an_invalid_time_zone_is_refused_and_harms_nobody() {
    let f = fixture();
    let (key, _) = analyst_key(f, "tz-b", None);
    let (ok, _, err) = psql(f, "tz-b", &key, &["-c", "SET timezone = 'Not/AZone'"]);
    assert!(!ok, "psql accepted an unknown zone");
    assert!(
        err.contains("22023") && err.contains("invalid value for parameter \"TimeZone\""),
        "{err}"
    );
    let (ok, _, err) = psql(f, "tz-b", &key, &["-c", "SET TIME ZONE 'Not/AZone'"]);
    assert!(!ok && err.contains("invalid value for parameter \"TimeZone\""), "{err}");
    // Every session of the tenant still works.
    let r = http_sql(f, &key, "SELECT now() AS t, count(*) AS n FROM generate_series(1, 10)");
    assert_eq!(r.status, 200, "{}", r.text());
    let (ok, out, err) = psql(f, "tz-b", &key, &["--csv", "-t", "-c", "SELECT 1 + 1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "2");
    // A bad zone in the startup packet refuses the connection, as in Postgres.
    let out = psql_command(f, "tz-b", &key, &["-c", "SELECT 1"])
        .env("PGOPTIONS", "-c timezone=Not/AZone")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("invalid value for parameter \"TimeZone\""),
        "{err}"
    );
}

#[test]
fn psycopg_cancel_stops_only_the_statement_of_its_connection() {
    let f = fixture();
    let (key_a, _) = analyst_key(f, "cancel-a", None);
    let (key_b, _) = analyst_key(f, "cancel-b", None);
    let script = r#"
a, b = connect("cancel-a", sys.argv[3]), connect("cancel-b", sys.argv[4])
results = {}
def run(c, name):
    while True:
        try:
            c.execute(sys.argv[5]).fetchone()
            results[name] = "finished"
        except psycopg.Error as e:
            # The test's probe held the slot just then: start again.
            if e.sqlstate == "53000":
                continue
            results[name] = error(e)
        return
ta = threading.Thread(target=run, args=(a, "a"))
tb = threading.Thread(target=run, args=(b, "b"))
ta.start(); tb.start()
wait()
a.cancel()
ta.join(90)
say({"a": results.get("a"), "b_running": tb.is_alive()})
wait()
b.cancel()
tb.join(90)
say({"b": results.get("b"), "a_next": a.execute("SELECT 42").fetchone()[0]})
"#;
    let mut py = Py::start(f, script, &[&key_a, &key_b, FOREVER]);
    assert!(wait_busy(f, &key_a, || false));
    assert!(wait_busy(f, &key_b, || false));
    py.go();
    let first = py.read();
    assert_eq!(sqlstate(&first["a"]), "57014", "{first}");
    assert!(
        message(&first["a"]).contains("canceling statement due to user request"),
        "{first}"
    );
    assert!(slot_frees(f, &key_a), "the cancelled query still holds its slot");
    // B's query was not touched by A's cancel request.
    assert_eq!(first["b_running"], true, "{first}");
    assert_eq!(http_sql(f, &key_b, "SELECT 1").status, 429);
    py.go();
    let second = py.read();
    assert_eq!(sqlstate(&second["b"]), "57014", "{second}");
    assert_eq!(
        second["a_next"], 42,
        "the cancelled connection goes on serving: {second}"
    );
    assert!(slot_frees(f, &key_b));
}

#[test]
fn psql_ctrl_c_cancels_the_running_query() {
    let f = fixture();
    let (key, _) = analyst_key(f, "ctrlc-a", None);
    let child = start_forever(f, "ctrlc-a", &key);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let err = wait_exit(child);
    assert!(
        err.contains("57014") && err.contains("canceling statement due to user request"),
        "{err}"
    );
    assert!(slot_frees(f, &key), "the cancelled query still holds its slot");
}

#[test]
fn statement_timeout_is_honoured_per_connection() {
    let f = fixture();
    let (key, _) = analyst_key(f, "timeout-a", None);
    // SET in the session, as psql users and tools do.
    let (ok, _, err) = psql(
        f,
        "timeout-a",
        &key,
        &["-c", "SET statement_timeout = '1s'", "-c", FOREVER],
    );
    assert!(!ok, "the query must not finish");
    assert!(
        err.contains("57014") && err.contains("canceling statement due to statement timeout"),
        "{err}"
    );
    assert!(slot_frees(f, &key), "the timed-out query still holds its slot");
    // In the startup packet, as drivers and pools do; and per connection.
    let script = r#"
a = connect(sys.argv[3], sys.argv[4], options="-c statement_timeout=1500")
out = {"a_show": a.execute("SHOW statement_timeout").fetchone()[0]}
try:
    a.execute(sys.argv[5]).fetchone()
    out["a"] = "finished"
except psycopg.Error as e:
    out["a"] = error(e)
b = connect(sys.argv[3], sys.argv[4])
out["b_show"] = b.execute("SHOW statement_timeout").fetchone()[0]
try:
    b.execute("SET statement_timeout = 'soon'")
    out["bad"] = "accepted"
except psycopg.Error as e:
    out["bad"] = error(e)
a.execute("SET statement_timeout = 0")
out["a_off"] = a.execute("SHOW statement_timeout").fetchone()[0]
out["a_next"] = a.execute("SELECT count(*) FROM generate_series(1, 1000)").fetchone()[0]
say(out)
"#;
    let mut py = Py::start(f, script, &["timeout-a", &key, FOREVER]);
    let out = py.read();
    assert_eq!(out["a_show"], "1500ms", "{out}");
    assert_eq!(sqlstate(&out["a"]), "57014", "{out}");
    assert!(
        message(&out["a"]).contains("canceling statement due to statement timeout"),
        "{out}"
    );
    assert_eq!(out["b_show"], "0", "another connection has no timeout: {out}");
    assert_eq!(sqlstate(&out["bad"]), "22023", "{out}");
    assert_eq!(out["a_off"], "0", "{out}");
    assert_eq!(out["a_next"], 1000, "{out}");
}

#[test]
fn the_query_of_a_vanished_client_is_stopped() {
    let f = fixture();
    let (key, _) = analyst_key(f, "gone-a", None);
    let mut child = start_forever(f, "gone-a", &key);
    // SIGKILL: the client cannot say goodbye; its socket just closes.
    child.kill().unwrap_or_else(|e| panic!("{e}"));
    let _ = child.wait();
    assert!(
        slot_frees(f, &key),
        "the query of a vanished client still holds its slot"
    );
}

/// CPU seconds used so far by the server's threads: (the main runtime's
/// workers, which acknowledge ingest and answer HTTP; the SQL runtime's).
fn runtime_cpu(pid: u32) -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let (mut main, mut sql) = (0.0, 0.0);
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap_or_else(|e| panic!("{e}"));
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the command in parentheses: state, then utime and stime
        // as the 12th and 13th fields.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let used = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
        let cpu = used(11) + used(12);
        match comm.trim() {
            "tokio-runtime-w" => main += cpu,
            "cxlake-sql" => sql += cpu,
            _ => {}
        }
    }
    (main, sql)
}

/// A statement that costs seconds to plan and nothing to run: a long
/// `IN` list the optimizer works through.
fn slow_to_plan() -> String {
    let list: Vec<String> = (0..SLOW_PLAN_ITEMS).map(|i| i.to_string()).collect();
    format!("SELECT count(*) FROM (SELECT 1 AS x) t WHERE x IN ({})", list.join(","))
}

const SLOW_PLAN_ITEMS: usize = 200_000;

#[test]
fn statements_are_planned_on_the_sql_runtime_not_on_the_one_that_acknowledges_ingest() {
    let f = fixture();
    let (key, _) = analyst_key(f, "plan-a", None);
    let pid = f.server.child.id();
    // Too long for one command-line argument: psql reads it from a file.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("slow.sql");
    std::fs::write(&file, slow_to_plan() + ";\n").unwrap_or_else(|e| panic!("{e}"));
    let file = file.to_string_lossy().to_string();
    let (main_before, sql_before) = runtime_cpu(pid);
    let (ok, out, err) = psql(f, "plan-a", &key, &["-At", "-f", &file]);
    let (main_after, sql_after) = runtime_cpu(pid);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1");
    let (main, sql) = (main_after - main_before, sql_after - sql_before);
    assert!(
        main + sql > 0.5,
        "the statement cost {:.2} s of CPU; make it cost more to plan",
        main + sql
    );
    assert!(
        main < sql / 4.0,
        "the main runtime spent {main:.2} s of CPU on it, the SQL runtime {sql:.2} s: planning ran on the threads that acknowledge ingest"
    );
}
