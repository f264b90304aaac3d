#!/usr/bin/env python3
"""Live traffic against a running cxlake: one tenant's events posted at a
steady rate, stamped with the time they are sent (orders without a
conversation included, as `cxlake generate` makes them), while three
readers time what managers and analysts see:

- `/v1/kpis` for the WINDOW_DAYS (default 30) days up to today, back to
  back;
- the overview page `/` for the same days, back to back;
- freshness: once a second a marker conversation (its own queue) is
  posted; the time from the acknowledgement until `/v1/sql` sees it in
  `conversations`, and until `/v1/kpis?queue=<marker>` counts it.

A request answered 503 (facts not built yet) is counted, waited out and
retried, not timed. Prints one JSON object: p50, p95, p99 and max of each.

usage: live.py ADDR INGEST_KEY READ_KEY TENANT EVENTS.ndjson SECONDS RATE
(INGEST_KEY may post the tenant's events; READ_KEY is an admin or analyst
key of the tenant.)
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

addr, ingest_key, read_key, tenant, events_path, seconds, rate = sys.argv[1:8]
seconds, rate = float(seconds), float(rate)
host, port = addr.split(":")
BATCH_EVERY = 0.25
stop = threading.Event()
lock = threading.Lock()
timings = {"kpis_ms": [], "page_ms": [], "fresh_sql_ms": [], "fresh_kpis_ms": []}
counts = {"events": 0, "retried_batches": 0, "unavailable": 0, "errors": 0, "error_samples": []}


def now_z():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def request(method, path, body=None, headers=None, timeout=120):
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def note_error(status, data):
    with lock:
        counts["errors"] += 1
        if len(counts["error_samples"]) < 3:
            counts["error_samples"].append(f"{status}: {data[:200]!r}")


def timed_get(path, headers):
    """Milliseconds of one GET answered 200, or None (503 waited out)."""
    t = time.perf_counter()
    status, h, data = request("GET", path, headers=headers)
    ms = (time.perf_counter() - t) * 1000
    if status == 200:
        return ms
    if status == 503:
        with lock:
            counts["unavailable"] += 1
        time.sleep(float(h.get("Retry-After", "1")))
    else:
        note_error(status, data)
        time.sleep(0.5)
    return None


def post_events(lines):
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/x-ndjson"}
    body = "\n".join(json.dumps(e) for e in lines).encode()
    while True:
        status, _, data = request("POST", "/v1/events", body=body, headers=headers)
        if status == 200:
            return
        with lock:
            counts["retried_batches"] += 1
        time.sleep(1)


WINDOW_DAYS = int(os.environ.get("WINDOW_DAYS", "30"))


def today():
    """Today, UTC: its start and the next day's."""
    d = datetime.now(timezone.utc).date()
    return d.isoformat(), (d + timedelta(days=1)).isoformat()


def window():
    """The WINDOW_DAYS days up to and including today, as a manager reads them."""
    d = datetime.now(timezone.utc).date()
    return (d - timedelta(days=WINDOW_DAYS - 1)).isoformat(), (d + timedelta(days=1)).isoformat()


def kpi_reader():
    auth = {"Authorization": f"Bearer {read_key}"}
    while not stop.is_set():
        f, t = window()
        ms = timed_get(f"/v1/kpis?from={f}&to={t}", auth)
        if ms is not None:
            timings["kpis_ms"].append(ms)


def page_reader():
    status, h, _ = request(
        "POST", "/login", body=f"key={read_key}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    cookie = h.get("Set-Cookie", h.get("set-cookie", "")).split(";")[0]
    if not cookie:
        note_error(status, b"no session cookie from /login")
        return
    while not stop.is_set():
        f, t = window()
        ms = timed_get(f"/?from={f}&to={t}", {"Cookie": cookie})
        if ms is not None:
            timings["page_ms"].append(ms)


def freshness():
    auth = {"Authorization": f"Bearer {read_key}"}
    n = 0
    while not stop.is_set():
        n += 1
        marker = f"fresh-{int(time.time())}-{n}"
        at = now_z()
        post_events([
            {"event_id": f"{marker}-s", "tenant_id": tenant, "type": "conversation.started", "occurred_at": at,
             "conversation_id": marker, "customer_id": marker, "channel": "webchat", "queue": marker},
            {"event_id": f"{marker}-m", "tenant_id": tenant, "type": "message.created", "occurred_at": at,
             "conversation_id": marker, "sender": "customer", "message_id": f"{marker}-m"},
        ])
        acked = time.perf_counter()
        sql = json.dumps({"sql": f"SELECT count(*) AS n FROM conversations WHERE conversation_id = '{marker}'"})
        seen_sql = seen_kpis = None
        f, t = today()
        kpis = f"/v1/kpis?from={f}&to={t}&queue={urllib.parse.quote(marker)}"
        while (seen_sql is None or seen_kpis is None) and time.perf_counter() - acked < 60 and not stop.is_set():
            if seen_sql is None:
                status, _, data = request("POST", "/v1/sql", body=sql.encode(),
                                          headers={**auth, "Content-Type": "application/json",
                                                   "Accept": "application/json"})
                if status == 200 and json.loads(data)["rows"] == [[1]]:
                    seen_sql = (time.perf_counter() - acked) * 1000
                elif status not in (200, 503, 429):
                    note_error(status, data)
            if seen_kpis is None:
                status, _, data = request("GET", kpis, headers=auth)
                if status == 200:
                    n = json.loads(data)["kpis"]["conversations"]["value"] or 0
                    if n >= 1:
                        seen_kpis = (time.perf_counter() - acked) * 1000
                elif status not in (503, 429):
                    note_error(status, data)
            time.sleep(0.05)
        if seen_sql is not None:
            timings["fresh_sql_ms"].append(seen_sql)
        if seen_kpis is not None:
            timings["fresh_kpis_ms"].append(seen_kpis)
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - acked)))


def ingest():
    per_batch = max(1, int(rate * BATCH_EVERY))
    rounds = 0
    started = time.time()
    next_at = started
    with open(events_path) as f:
        while time.time() - started < seconds:
            lines, at = [], now_z()
            while len(lines) < per_batch:
                line = f.readline()
                if not line:
                    f.seek(0)
                    rounds += 1
                    continue
                e = json.loads(line)
                if e["tenant_id"] != tenant:
                    continue
                e["occurred_at"] = at
                for k in ("event_id", "conversation_id", "order_id"):
                    if e.get(k):
                        e[k] = f"live{rounds}-{e[k]}"
                lines.append(e)
            post_events(lines)
            counts["events"] += len(lines)
            next_at += BATCH_EVERY
            time.sleep(max(0.0, next_at - time.time()))


def summary(xs):
    if not xs:
        return None
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    return {"n": len(xs), "p50": round(q(0.5), 1), "p95": round(q(0.95), 1), "p99": round(q(0.99), 1),
            "max": round(xs[-1], 1)}


readers = [threading.Thread(target=fn, daemon=True) for fn in (kpi_reader, page_reader, freshness)]
for r in readers:
    r.start()
ingest()
stop.set()
time.sleep(1)
print(json.dumps({"seconds": seconds, "rate": rate, **counts, **{k: summary(v) for k, v in timings.items()}}))
