#!/usr/bin/env python3
"""Peer for the ingest benchmark: DuckDB converts the same NDJSON to sorted,
zstd-compressed Parquet (what cxlake's lake holds), timed end to end.

usage: duckdb_ingest.py EVENTS.ndjson OUT_DIR
prints one JSON object: events, seconds, events_per_s, parquet_bytes, bytes_per_event
"""
import json
import os
import sys
import time

import duckdb

src, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
out = os.path.join(out_dir, "events.parquet")
con = duckdb.connect()
con.execute("SET threads TO 2")
t = time.perf_counter()
n = con.execute(f"SELECT count(*) FROM read_json_auto('{src}', format='newline_delimited', union_by_name=true, sample_size=-1)").fetchone()[0]
con.execute(
    f"""COPY (SELECT * FROM read_json_auto('{src}', format='newline_delimited', union_by_name=true, sample_size=-1)
             ORDER BY tenant_id, occurred_at::DATE, conversation_id, occurred_at)
        TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""
)
seconds = time.perf_counter() - t
size = os.path.getsize(out)
print(json.dumps({"events": n, "seconds": seconds, "events_per_s": n / seconds, "parquet_bytes": size, "bytes_per_event": size / n}))
