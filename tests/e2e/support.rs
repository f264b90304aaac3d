//! Helpers for end-to-end tests: start the real `cxlake` binary on a temp
//! data directory and talk HTTP/1.1 to it over a plain TCP socket, as any
//! client would.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cxlake");

/// The binary the helpers start: `CXLAKE_TEST_BIN` when set (a long soak
/// runs a copy, so rebuilding meanwhile does not swap it), else the one
/// Cargo built for these tests.
pub fn bin() -> String {
    std::env::var("CXLAKE_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// Fixtures are dated (March 2026, generated months at fixed starts) and
/// must keep passing as the clock moves on: every server and CLI run of the
/// tests accepts events up to a century old. A test about the window itself
/// passes its own `CXLAKE_MAX_EVENT_AGE_DAYS` to [`Server::start`].
pub const WIDE_EVENT_WINDOW: (&str, &str) = ("CXLAKE_MAX_EVENT_AGE_DAYS", "36500");

/// How long a request waits for a tenant's first build before it is
/// answered 503 (`CXLAKE_FACTS_WAIT_MS`).
pub const FACTS_WAIT: (&str, &str) = ("CXLAKE_FACTS_WAIT_MS", "600000");

/// Runs `cxlake key create` and returns the key (the last line printed).
pub fn create_key(data: &Path, tenant: &str, role: &str) -> String {
    create_key_with(data, tenant, role, &[])
}

/// [`create_key`] with more arguments, e.g. `&["--team", "billing"]` for a
/// supervisor key, `&["--agent", "a1"]` for an agent key.
pub fn create_key_with(data: &Path, tenant: &str, role: &str, more: &[&str]) -> String {
    let bin = bin();
    let out = Command::new(&bin)
        .args(["key", "create", "--tenant", tenant, "--role", role])
        .args(more)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    assert!(
        out.status.success(),
        "key create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Runs `cxlake ARGS --data DATA` to completion; panics with its stderr
/// when it fails.
pub fn run_cli(args: &[&str], data: &Path) {
    let data = data.to_str().expect("a UTF-8 temp path");
    let mut all = args.to_vec();
    all.extend(["--data", data]);
    run_cli_args(&all);
}

/// Generates `days` days of traffic from `start` (`per_day` conversations
/// a day, generator seed `seed`) into `file` and ingests it into `data`.
pub fn generate_and_ingest(file: &Path, data: &Path, days: u32, start: &str, per_day: u32, seed: u64) {
    let file = file.to_string_lossy().to_string();
    let (days, per_day, seed) = (days.to_string(), per_day.to_string(), seed.to_string());
    run_cli(
        &[
            "generate",
            "--days",
            &days,
            "--start",
            start,
            "--conversations-per-day",
            &per_day,
            "--seed",
            &seed,
            "--out",
            &file,
        ],
        data,
    );
    run_cli(&["ingest", &file], data);
}

/// Runs `cxlake ARGS` and returns its output; panics when it fails.
pub fn run_cli_args(args: &[&str]) -> std::process::Output {
    let bin = bin();
    let out = Command::new(&bin)
        .args(args)
        .env("CXLAKE_LOG", "warn")
        .env(WIDE_EVENT_WINDOW.0, WIDE_EVENT_WINDOW.1)
        .output()
        .unwrap_or_else(|e| panic!("running {bin} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The Postgres wire address, when the test turned it on with
    /// `CXLAKE_PG_LISTEN=127.0.0.1:0` (it is off by default in tests).
    pub pg_addr: Option<String>,
    pub data: PathBuf,
}

impl Server {
    /// Starts `cxlake serve` on an ephemeral port and waits until it listens.
    pub fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        let bin = bin();
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("CXLAKE_LOG", "warn")
            .env("CXLAKE_PG_LISTEN", "off")
            .env(WIDE_EVENT_WINDOW.0, WIDE_EVENT_WINDOW.1)
            // Tests of answers wait for a tenant's first build however long
            // it takes on a loaded machine; the bounded wait and its 503
            // have tests of their own (`services::kpis::fast`).
            .env(FACTS_WAIT.0, FACTS_WAIT.1)
            // The server exits when this pipe closes, i.e. when the test
            // process ends, even if the `Server` is never dropped (statics).
            .env("CXLAKE_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = BufReader::new(stdout).lines();
        let mut pg_addr = None;
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("postgres on ") {
                        pg_addr = a.split_whitespace().next().map(str::to_string);
                    }
                    if let Some(a) = line.strip_prefix("listening on http://") {
                        break a.trim().to_string();
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!("server exited before listening: {status:?}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            pg_addr,
            data: data.to_path_buf(),
        }
    }

    /// [`Server::start`] with the TOML file `config` and the Postgres wire
    /// on an ephemeral port.
    pub fn start_with_pg(data: &Path, config: &Path) -> Server {
        let config = config.to_string_lossy().to_string();
        Server::start(
            data,
            &[("CXLAKE_PG_LISTEN", "127.0.0.1:0"), ("CXLAKE_CONFIG", config.as_str())],
        )
    }

    /// Host and port of the Postgres wire (see [`Server::start_with_pg`]).
    pub fn pg_host_port(&self) -> (String, String) {
        let pg = self
            .pg_addr
            .clone()
            .unwrap_or_else(|| panic!("the server did not start the Postgres wire"));
        let (host, port) = pg.rsplit_once(':').unwrap_or_else(|| panic!("{pg}"));
        (host.to_string(), port.to_string())
    }

    /// SIGKILL: no flush, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path, which flushes.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!("server did not stop within 60 s of SIGTERM");
    }

    /// One request. After events were taken in (an answer with their
    /// `seq`), it returns once the served facts reflect them
    /// (see [`Server::wait_for_facts`]), as a client that reads its own
    /// writes would.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let r = http(&self.addr, method, path, headers, body)?;
        let seq = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["seq"].as_u64());
        if method == "POST" && seq.is_some() && r.status / 100 == 2 {
            let key = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.to_string())
                .or_else(|| {
                    let query = path.split_once('?')?.1;
                    let key = query.split('&').find_map(|p| p.strip_prefix("key="))?;
                    Some(format!("Bearer {key}"))
                });
            if let Some(key) = key {
                self.wait_for_facts(&key, seq.unwrap_or(0));
            }
        }
        Ok(r)
    }

    /// Waits until every tenant `auth` may see has its facts built and
    /// reflecting every batch acknowledged with sequence number `seq` or
    /// before this call (`/readyz`: `facts_as_of_seq`, `acknowledged_seq`).
    pub fn wait_for_facts(&self, auth: &str, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut target = None;
        loop {
            let r = http(&self.addr, "GET", "/readyz", &[("Authorization", auth)], b"")
                .unwrap_or_else(|e| panic!("GET /readyz: {e}"));
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let target = *target.get_or_insert_with(|| seq.max(v["acknowledged_seq"].as_u64().unwrap_or(0)));
            let states = v["tenant_facts"].as_object().cloned().unwrap_or_default();
            let current = states
                .iter()
                .all(|(t, state)| state == "ready" && v["facts_as_of_seq"][t].as_u64().is_some_and(|s| s >= target));
            if current {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "facts did not catch up with seq {target}: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A JSON request with `Authorization: <auth>` (e.g. `Bearer cxk_…`);
    /// panics when the server cannot be reached.
    pub fn send_json(&self, auth: &str, method: &str, path: &str, body: &str) -> Response {
        self.request(
            method,
            path,
            &[("Authorization", auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Signs in to the dashboards with `key` (`POST /login`) and returns
    /// the `Cookie` header value of the session, or `None` when the sign-in
    /// is refused (401: a key that cannot use the dashboards).
    pub fn dashboard_session(&self, key: &str) -> Option<String> {
        let body = format!("key={key}");
        let r = self
            .request(
                "POST",
                "/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("POST /login: {e}"));
        if r.status == 401 {
            return None;
        }
        assert_eq!(r.status, 303, "sign-in: {}", r.text());
        let cookie = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| v.split(';').next().filter(|c| c.starts_with("cxlake_session=")))
            .unwrap_or_else(|| panic!("a session cookie in {:?}", r.headers));
        Some(cookie.to_string())
    }

    /// Runs SQL with an admin key; panics on an error status.
    pub fn sql(&self, key: &str, sql: &str) -> serde_json::Value {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let auth = format!("Bearer {key}");
        let r = self
            .request(
                "POST",
                "/v1/sql",
                &[("Authorization", &auth), ("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("sql request: {e}"));
        assert_eq!(r.status, 200, "{sql}: {}", r.text());
        r.json()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::other(format!("malformed response: {}", String::from_utf8_lossy(&raw))))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Response { status, headers, body })
}

/// A small deterministic conversation: started, customer message, bot
/// reply, resolved. `n` picks ids; `tenant` the tenant.
pub fn conversation_events(tenant: &str, n: usize) -> Vec<String> {
    let t0 = 1_772_000_000 + (n as i64) * 37;
    let ts = |s: i64| chrono_like(t0 + s);
    let conv = format!("c{n}");
    vec![
        format!(
            r#"{{"event_id":"{conv}-1","tenant_id":"{tenant}","type":"conversation.started","occurred_at":"{}","conversation_id":"{conv}","customer_id":"cus{}","channel":"whatsapp","language":"en","customer_tier":"regular"}}"#,
            ts(0),
            n % 97
        ),
        format!(
            r#"{{"event_id":"{conv}-2","tenant_id":"{tenant}","type":"message.created","occurred_at":"{}","conversation_id":"{conv}","sender":"customer","chars":42}}"#,
            ts(1)
        ),
        format!(
            r#"{{"event_id":"{conv}-3","tenant_id":"{tenant}","type":"message.created","occurred_at":"{}","conversation_id":"{conv}","sender":"bot","chars":80}}"#,
            ts(3)
        ),
        format!(
            r#"{{"event_id":"{conv}-4","tenant_id":"{tenant}","type":"conversation.resolved","occurred_at":"{}","conversation_id":"{conv}","resolved_by":"bot"}}"#,
            ts(60)
        ),
    ]
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp (no chrono needed).
pub fn chrono_like(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
