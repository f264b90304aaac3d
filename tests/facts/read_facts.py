"""Reads a tenant's persisted conversation facts with Python's `deltalake`
(delta-rs), as an analyst's notebook would, and prints what it found as
JSON: the column names and the conversation ids. Used by
tests/e2e/kpis.rs (the facts are a plain Delta table, readable without
cxlake)."""

import json
import os
import sys

from deltalake import DeltaTable

path, tenant = sys.argv[1], sys.argv[2]
table = DeltaTable(path)
rows = table.to_pyarrow_table(filters=[("tenant_id", "=", tenant)])
print(
    json.dumps(
        {
            "version": table.version(),
            "columns": rows.column_names,
            "ids": sorted(rows.column("conversation_id").to_pylist()),
            "partitions": sorted(table.metadata().partition_columns),
        }
    )
)
sys.stdout.flush()
# deltalake's runtime threads can abort the interpreter's shutdown
# ("terminate called without an active exception"); the answer is out.
os._exit(0)
