"""The peer of a facts build: DuckDB evaluating the repository's own
`sql/views/conversations.sql` (translated mechanically, with the views it
reads) over the Parquet files of the lake's current version, all tenants,
materialized into a table. Prints JSON: seconds (best of REPEAT) and rows.

    python3 bench/facts_duckdb.py LAKE_EVENTS_TABLE [REPEAT]
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from duckdb_views import active_files, connect  # noqa: E402

table = sys.argv[1]
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
files = active_files(table)
times = []
rows = None
for _ in range(repeat):
    con = connect(files)
    t = time.perf_counter()
    con.sql("CREATE TABLE materialized AS SELECT * FROM conversations")
    times.append(time.perf_counter() - t)
    rows = con.sql("SELECT count(*) FROM materialized").fetchall()[0][0]
    con.close()
print(json.dumps({"duckdb_files": len(files), "duckdb_conversations": rows, "duckdb_build_s": min(times)}))
