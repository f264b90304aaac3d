"""The repository's SQL views in DuckDB: `sql/views/*.sql` translated
mechanically from DataFusion's dialect, over the Parquet files of a Delta
table's current version. Shared by the peer benchmarks."""

import glob
import json
import os
import re
import urllib.parse

import duckdb

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# In dependency order, as warehouse/src/views.rs registers them.
VIEWS = [
    "tenant_settings",
    "messages",
    "orders",
    "exposure_events",
    "exposures",
    "agent_sessions",
    "team_hourly_rates",
    "conversations",
]


def active_files(table):
    """Data files of the current Delta version: adds minus removes."""
    log = os.path.join(table, "_delta_log")
    files = set()
    checkpoints = sorted(glob.glob(os.path.join(log, "*.checkpoint.parquet")))
    start = -1
    if checkpoints:
        cp = checkpoints[-1]
        start = int(os.path.basename(cp).split(".")[0])
        rows = duckdb.sql(f"SELECT add.path FROM read_parquet('{cp}') WHERE add IS NOT NULL").fetchall()
        files.update(r[0] for r in rows)
    for f in sorted(glob.glob(os.path.join(log, "*.json"))):
        if int(os.path.basename(f).split(".")[0]) <= start:
            continue
        for line in open(f):
            a = json.loads(line)
            if "add" in a:
                files.add(a["add"]["path"])
            if "remove" in a:
                files.discard(a["remove"]["path"])
    return [os.path.join(table, urllib.parse.unquote(p)) for p in files]


def match_paren(s, i):
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced")


def translate(sql):
    sql = re.sub(r"--[^\n]*", "", sql)
    # arrow_cast(expr, 'Int64') / arrow_cast(expr, 'Timestamp(...)')
    sql = sql.replace("""'Timestamp(Microsecond, Some("UTC"))'""", "'TSTZ'")
    while "arrow_cast(" in sql:
        i = sql.rindex("arrow_cast(")
        j = match_paren(sql, i + len("arrow_cast"))
        inner = sql[i + len("arrow_cast(") : j]
        expr, typ = inner.rsplit(",", 1)
        typ = typ.strip()
        if typ == "'Int64'":
            rep = f"epoch_us({expr})"
        else:
            rep = f"CAST({expr} AS TIMESTAMPTZ)"
        sql = sql[:i] + rep + sql[j + 1 :]
    # first_value / last_value as aggregates (not windows) -> first / last
    for fn, dd in (("first_value", "first"), ("last_value", "last")):
        pos = 0
        while True:
            i = sql.find(fn + "(", pos)
            if i < 0:
                break
            j = match_paren(sql, i + len(fn))
            after = sql[j + 1 : j + 20].lstrip().upper()
            if after.startswith("OVER") or after.startswith("IGNORE"):
                pos = j
                continue
            sql = sql[:i] + dd + sql[i + len(fn) :]
            pos = i
    # DuckDB puts IGNORE NULLS inside the call
    sql = re.sub(r"(\w+)\(([^()]*)\)\s+IGNORE NULLS\s+OVER", r"\1(\2 IGNORE NULLS) OVER", sql)
    sql = sql.replace("array_sort(", "list_sort(").replace("array_distinct(", "list_distinct(")
    sql = sql.replace("percentile_cont(", "quantile_cont(")
    return sql


def register_views(con):
    """Creates every view of `sql/views/` on `con`, which has `events`."""
    for name in VIEWS:
        con.sql(translate(open(os.path.join(ROOT, "sql/views", name + ".sql")).read()))


def connect(files):
    """A DuckDB connection (UTC, one thread a core) with `events` over the
    Parquet `files` and every view of `sql/views/` on top."""
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    con.sql(f"SET threads = {os.cpu_count()}")
    flist = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    con.sql(
        f"CREATE VIEW events AS SELECT * REPLACE (CAST(event_date AS DATE) AS event_date) "
        f"FROM read_parquet({flist}, hive_partitioning = true, union_by_name = true)"
    )
    register_views(con)
    return con
