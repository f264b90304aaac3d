"""KPI benchmark: times /v1/kpis (overview, group_by=channel,day),
the conversation export and raw SQL over `conversations` against a running
cxlake, and the same KPI SQL run by DuckDB on the same Parquet files (the
files of the lake's current Delta version, read straight from disk).

The DuckDB side runs the repository's own `sql/views/*.sql` and
`sql/kpis/overview.sql`, translated mechanically from DataFusion's dialect
(`arrow_cast(x, 'Int64')` -> `epoch_us(x)`, `first_value(.. ORDER BY ..)`
aggregate -> `first(..)`, `array_sort` -> `list_sort`,
`percentile_cont` -> `quantile_cont`), so both engines compute the same
definitions from the same events.

Usage: kpis_bench.py HTTP_ADDR KEY LAKE_DIR TENANT FROM TO [REPEAT]
Prints one JSON object.
"""
import json
import os
import statistics
import sys
import time
import urllib.request

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from duckdb_views import active_files, connect, translate  # noqa: E402

addr, key, lake, tenant, day_from, day_to = sys.argv[1:7]
REPEAT = int(sys.argv[7]) if len(sys.argv) > 7 else 15
# repeats of the queries that take seconds (raw SQL, DuckDB)
HEAVY = int(os.environ.get("HEAVY_REPEAT", "3"))
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

RAW_SQL = f"""SELECT channel, count(*) AS conversations, avg(frt_s) AS frt_mean, median(frt_s) AS frt_median,
       avg(CASE WHEN is_resolved THEN 1.0 ELSE 0.0 END) AS resolution_rate, avg(csat_score) AS csat
FROM conversations
WHERE started_at >= TIMESTAMP '{day_from} 00:00:00' AND started_at < TIMESTAMP '{day_to} 00:00:00'
GROUP BY channel ORDER BY channel"""


def get(path, data=None, accept="application/json", save=None):
    req = urllib.request.Request(
        f"http://{addr}{path}",
        data=data,
        headers={"Authorization": f"Bearer {key}", "Accept": accept, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=7200) as r:
        n = 0
        out = open(save, "wb") if save else None
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
            if out:
                out.write(chunk)
        if out:
            out.close()
        return n


# The window's materialized conversations as Parquet (cxlake's export), for
# the like-for-like peer: DuckDB over the same materialized rows.
EXPORT_PARQUET = os.path.join(os.path.dirname(os.path.abspath(lake)), "conversations-export.parquet")


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


out = {}
window = f"from={day_from}&to={day_to}"


def http_side():
    t = time.perf_counter()
    get(f"/v1/kpis?{window}")
    out["overview_first_call_s"] = time.perf_counter() - t  # builds the rollups
    out["overview_p50_ms"], out["overview_min_ms"], out["overview_max_ms"] = (
        x * 1e3 for x in timed(lambda: get(f"/v1/kpis?{window}"), REPEAT)
    )
    out["group_by_channel_day_p50_ms"] = timed(lambda: get(f"/v1/kpis?{window}&group_by=channel,day"), 5)[0] * 1e3
    out["filter_team_p50_ms"] = timed(lambda: get(f"/v1/kpis?{window}&team=cn_service"), 5)[0] * 1e3
    t = time.perf_counter()
    out["export_csv_bytes"] = get(f"/v1/conversations?{window}&format=csv", accept="text/csv")
    out["export_csv_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out["export_parquet_bytes"] = get(f"/v1/conversations?{window}&format=parquet", save=EXPORT_PARQUET)
    out["export_parquet_s"] = time.perf_counter() - t
    body = json.dumps({"sql": RAW_SQL}).encode()
    if HEAVY > 1:
        get("/v1/sql", body, "text/csv")  # warm-up
    out["raw_sql_p50_s"] = timed(lambda: get("/v1/sql", body, "text/csv"), max(HEAVY, 5))[0]


if addr != "-":
    http_side()

# ---------------------------------------------------------------- DuckDB


if os.environ.get("PEER", "1") == "0":
    print(json.dumps(out, indent=1))
    sys.exit(0)
table = os.path.join(lake, "events")
files = [f for f in active_files(table) if f"tenant_id={tenant}/" in f]
con = connect(files)
overview = translate(open(os.path.join(ROOT, "sql/kpis/overview.sql")).read())
overview = overview.replace("$1", f"TIMESTAMPTZ '{day_from} 00:00:00+00'").replace(
    "$2", f"TIMESTAMPTZ '{day_to} 00:00:00+00'"
)
out["duckdb_files"] = len(files)
out["duckdb_raw_sql_p50_s"] = timed(lambda: con.sql(RAW_SQL).fetchall(), HEAVY)[0]
if os.path.exists(EXPORT_PARQUET):
    mat = duckdb.connect()
    mat.sql("SET TimeZone = 'UTC'")
    mat.sql(f"SET threads = {os.cpu_count()}")
    mat.sql(f"CREATE VIEW conversations AS SELECT * FROM read_parquet('{EXPORT_PARQUET}')")
    mat.sql(RAW_SQL).fetchall()  # warm-up
    out["duckdb_materialized_raw_sql_p50_s"] = timed(lambda: mat.sql(RAW_SQL).fetchall(), max(HEAVY, 5))[0]
out["duckdb_overview_p50_s"] = timed(lambda: con.sql(overview).fetchall(), HEAVY)[0]
out["duckdb_conversations"] = con.sql(
    f"SELECT count(*) FROM conversations WHERE started_at >= TIMESTAMPTZ '{day_from} 00:00:00+00' "
    f"AND started_at < TIMESTAMPTZ '{day_to} 00:00:00+00'"
).fetchall()[0][0]
print(json.dumps(out, indent=1))
