"""Times the same queries over the Postgres wire (psycopg) and HTTP /v1/sql,
and a tenant-scoped session against the platform session with the same
tenant filter written by hand. Prints a markdown table.

Usage: sql_bench.py HTTP_ADDR PG_ADDR TENANT TENANT_KEY PLATFORM_KEY
"""
import json
import statistics
import sys
import time
import urllib.request

import psycopg

http_addr, pg_addr, tenant, key, platform_key = sys.argv[1:6]
pg_host, pg_port = pg_addr.rsplit(":", 1)
REPEAT = 15


def http(sql, k=key, accept="text/csv", tenant_param=None):
    url = f"http://{http_addr}/v1/sql" + (f"?tenant={tenant_param}" if tenant_param else "")
    req = urllib.request.Request(
        url,
        data=json.dumps({"sql": sql}).encode(),
        headers={"Authorization": f"Bearer {k}", "Accept": accept, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += chunk.count(b"\n")
        return max(n - 1, 0)  # minus the header line


def timed(fn, repeat=REPEAT):
    fn()  # warm-up
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


conn = psycopg.connect(host=pg_host, port=int(pg_port), user=tenant, password=key, dbname="cxlake", autocommit=True)


def pg(sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return len(cur.fetchall())


SMALL = "SELECT channel, count(*) AS n FROM conversations GROUP BY channel ORDER BY channel"
LARGE = "SELECT event_id, conversation_id, type, occurred_at, channel FROM events"
EVENTS_BY_CHANNEL = "SELECT channel, count(*) AS n, count(DISTINCT conversation_id) AS c FROM events {w} GROUP BY channel"

rows = []
t_pg, n = timed(lambda: pg(SMALL))
t_http, _ = timed(lambda: http(SMALL))
rows.append(("small result (conversations per channel), p50", f"{t_pg*1e3:.1f} ms", f"{t_http*1e3:.1f} ms", n))
t_pg, n_large = timed(lambda: pg(LARGE), repeat=3)
t_http, n_http = timed(lambda: http(LARGE), repeat=3)
assert n_large == n_http, (n_large, n_http)
rows.append(("large result (every event of the tenant, 5 columns), p50", f"{t_pg:.2f} s", f"{t_http:.2f} s", n_large))
rows.append(("rows per second streamed", f"{n_large/t_pg:,.0f}", f"{n_large/t_http:,.0f}", ""))

scoped, n1 = timed(lambda: http(EVENTS_BY_CHANNEL.format(w="")))
manual, n2 = timed(lambda: http(EVENTS_BY_CHANNEL.format(w=f"WHERE tenant_id = '{tenant}'"), k=platform_key))
assert n1 == n2

print(f"events of {tenant}: {n_large:,}")
print("| measure | Postgres wire (psycopg) | HTTP /v1/sql (CSV) | rows |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
print()
print("| isolation | p50 |")
print("|---|---|")
print(f"| tenant session: `{EVENTS_BY_CHANNEL.format(w='')}` | {scoped*1e3:.1f} ms |")
print(f"| platform session, same query with `WHERE tenant_id = '{tenant}'` by hand | {manual*1e3:.1f} ms |")
print(f"| overhead of isolation | {100*(scoped/manual-1):+.1f} % (target < 5 %) |")
