#!/usr/bin/env python3
"""Times 14-day, 30-minute staffing plans for 100 queues over HTTP.

The routing core's path: one `GET /v1/forecast/staffing` per queue (history
read from the lake with SQL, method chosen by rolling-origin backtest,
quantiles, Erlang C/A or backlog staffing per interval), against a running
`cxlake serve`. Queues are the 100 busiest distinct queue keys of the
lake's tenants (channel × language × team, then coarser keys).

    bench/forecast_plan.py URL KEY [--queues 100] [--connections 2] [--mode lake|what-if]

`--mode lake` (default): `GET /v1/forecast/staffing` per queue, history
read from the lake by the server. `--mode what-if`: `POST /v1/forecast`
per queue with the queue's history (read once from the lake with one SQL
query before the clock starts) and a staffing template: the same forecast
and staffing code without the lake read.

KEY must be a platform-wide key (`cxlake key create --tenant '*' --role admin`).
Prints the wall time for all plans, per-request latency percentiles and
how the plans were made (methods chosen, intervals, agents).
"""

import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)


def call(conn, key, method, path, body=None):
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def sql(conn, key, query):
    status, data = call(conn, key, "POST", "/v1/sql", json.dumps({"sql": query}))
    if status != 200:
        raise SystemExit(f"SQL failed ({status}): {data[:300]!r}")
    return json.loads(data)["rows"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("key")
    ap.add_argument("--queues", type=int, default=100)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--mode", choices=["lake", "what-if"], default="lake")
    args = ap.parse_args()

    conn = connect(args.url)
    ends = {
        t: last
        for t, last in sql(
            conn,
            args.key,
            "SELECT tenant_id, CAST(date_trunc('day', max(started_at)) AS VARCHAR) FROM conversations GROUP BY 1",
        )
    }
    keys = []
    for dims in (("channel", "language", "team"), ("channel", "language"), ("channel", "team"), ("channel",), ("team",), ("language",)):
        cols = ", ".join(dims)
        rows = sql(
            conn,
            args.key,
            f"SELECT tenant_id, {cols}, count(*) AS n FROM conversations "
            f"WHERE {' AND '.join(d + ' IS NOT NULL' for d in dims)} GROUP BY tenant_id, {cols} ORDER BY n DESC",
        )
        for row in rows:
            tenant, values = row[0], row[1 : 1 + len(dims)]
            queue = ",".join(f"{d}:{v}" for d, v in zip(dims, values))
            if (tenant, queue) not in keys:
                keys.append((tenant, queue))
    keys = keys[: args.queues]
    if len(keys) < args.queues:
        raise SystemExit(f"only {len(keys)} distinct queues in the lake")

    def path(tenant, queue):
        # The day after the tenant's data ends, for `days` days, in UTC dates;
        # the grid itself is the tenant's reporting time zone (its settings).
        start = ends[tenant][:10]
        t0 = time.mktime(time.strptime(start, "%Y-%m-%d")) + 86400
        frm = time.strftime("%Y-%m-%d", time.localtime(t0))
        to = time.strftime("%Y-%m-%d", time.localtime(t0 + args.days * 86400))
        q = urllib.parse.urlencode(
            {
                "tenant": tenant,
                "queue": queue,
                "from": frm,
                "to": to,
                "interval": "30",
                "aht_s": "420",
                "service_level": "0.8",
                "target_s": "60",
                "concurrency": "2",
                "shrinkage": "0.3",
            }
        )
        if queue.startswith("channel:email"):
            q = urllib.parse.urlencode(
                {"tenant": tenant, "queue": queue, "from": frm, "to": to, "interval": "30", "aht_s": "420", "shrinkage": "0.3"}
            )
        return f"/v1/forecast/staffing?{q}"

    work = [("GET", path(t, q), None) for t, q in keys]
    if args.mode == "what-if":
        work = what_if_work(conn, args, keys, ends)
    results = [None] * len(work)
    latencies = [0.0] * len(work)
    next_index = [0]
    lock = threading.Lock()

    def worker():
        c = connect(args.url)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(work):
                return
            t = time.perf_counter()
            method, p, body = work[i]
            status, data = call(c, args.key, method, p, body)
            latencies[i] = time.perf_counter() - t
            results[i] = (status, data)

    # One warm-up request (first query plans, caches).
    call(conn, args.key, *work[0])
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started

    methods, modes, intervals, agent_intervals = {}, {}, 0, 0
    for (status, data), (_, p, _) in zip(results, work):
        if status != 200:
            raise SystemExit(f"{p}: {status} {data[:300]!r}")
        v = json.loads(data)
        methods[v["method"]] = methods.get(v["method"], 0) + 1
        mode = v.get("assumptions", {}).get("mode", "none")
        modes[mode] = modes.get(mode, 0) + 1
        intervals += len(v["intervals"])
        agent_intervals += sum(i["agents"] for i in v["intervals"])
    lat = sorted(latencies)
    print(f"staffing plans over HTTP ({args.mode}): {len(work)} queues x {args.days} days x 30 min = {intervals} intervals, "
          f"{args.connections} connections")
    print(f"  wall time for all plans: {wall:.3f} s")
    print(f"  per request: p50 {statistics.median(lat) * 1000:.1f} ms, p90 {lat[int(0.9 * len(lat))] * 1000:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms")
    print(f"  methods chosen: {methods}; modes: {modes}; agent-intervals planned: {agent_intervals}")


def what_if_work(conn, args, keys, ends):
    """POST bodies: each queue's whole-day history in UTC from the lake."""
    rows = sql(
        conn,
        args.key,
        "SELECT tenant_id, channel, language, team, "
        "CAST(date_bin(INTERVAL '30 minutes', started_at, TIMESTAMP '2000-01-01T00:00:00') AS VARCHAR) AS b, count(*) "
        "FROM conversations WHERE started_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5",
    )
    work = []
    for tenant, queue in keys:
        want = dict(part.split(":", 1) for part in queue.split(","))
        counts = {}
        for t, ch, lang, team, b, n in rows:
            have = {"channel": ch, "language": lang, "team": team}
            if t == tenant and all(have[d] == v for d, v in want.items()):
                counts[b] = counts.get(b, 0) + n
        last_day = ends[tenant][:10]
        history = [
            {"start": b[:19].replace(" ", "T") + "Z", "count": n}
            for b, n in sorted(counts.items())
            if b[:10] < last_day
        ]
        t0 = time.mktime(time.strptime(last_day, "%Y-%m-%d"))
        frm = time.strftime("%Y-%m-%d", time.localtime(t0))
        to = time.strftime("%Y-%m-%d", time.localtime(t0 + args.days * 86400))
        staffing = {"aht_s": 420, "shrinkage": 0.3}
        if not queue.startswith("channel:email"):
            staffing.update({"service_level": 0.8, "target_s": 60, "concurrency": 2})
        else:
            staffing["response_deadline_s"] = 86400
        body = {
            "interval_minutes": 30,
            "tz": "UTC",
            "history": history,
            "horizon": {"from": frm, "to": to},
            "staffing": staffing,
        }
        work.append(("POST", "/v1/forecast", json.dumps(body)))
    return work


if __name__ == "__main__":
    main()
