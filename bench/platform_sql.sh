#!/usr/bin/env bash
# Platform-wide SQL over the facts: `SELECT channel, count(*) FROM
# conversations GROUP BY 1` with a platform-wide key over HTTP (/v1/sql),
# the first run after the server is ready and REPEAT more, against DuckDB
# running the same query over the same saved fact files
# (the files of `<data>/lake/facts/conversations`' current Delta version,
# read as Hive-partitioned Parquet),
# timed the same way (wall time of each run, in-process for DuckDB).
#
#   DATA=DIR BIN=target/release/cxlake [REPEAT=5] bash bench/platform_sql.sh
#
# DATA is a data directory made by bench/kpis.sh whose facts were saved
# (a server ran on it, e.g. bench/facts_build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?a data directory with saved facts}
BIN=${BIN:-target/release/cxlake}
PORT=${PORT:-18134}
REPEAT=${REPEAT:-5}
KEY=$("$BIN" key create --data "$DATA" --tenant '*' --role analyst 2>/dev/null | tail -1)
CXLAKE_LOG=warn CXLAKE_FACTS_WAIT_MS=3600000 "$BIN" serve --data "$DATA" --listen 127.0.0.1:$PORT --pg-listen off > /dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1200); do curl -sf -o /dev/null http://127.0.0.1:$PORT/readyz && break; sleep 0.1; done
SQL='SELECT channel, count(*) AS n FROM conversations GROUP BY 1 ORDER BY 1'
echo "== cxlake $(date -u +%FT%TZ) $BIN"
for i in $(seq 0 "$REPEAT"); do
    t=$(curl -s -o /tmp/platform_sql.json -w '%{time_total}' -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d "{\"sql\": \"$SQL\"}" http://127.0.0.1:$PORT/v1/sql)
    echo "run $i: ${t} s $(head -c 300 /tmp/platform_sql.json | tr -d '\n' | sed 's/.*"rows"://' | cut -c1-120)"
done
python3 - "$DATA/lake/facts/conversations" "$REPEAT" "$SQL" <<'PY'
import os, sys, time, duckdb
from deltalake import DeltaTable
path, repeat, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# The files of the table's current version (replaced ones may still lie
# there until vacuumed).
files = DeltaTable(path).file_uris()
con = duckdb.connect()
src = "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "], hive_partitioning = true)"
print("== duckdb", duckdb.__version__, len(files), "files")
for i in range(repeat + 1):
    t = time.perf_counter()
    rows = con.execute(sql.replace("FROM conversations", f"FROM {src}")).fetchall()
    print(f"run {i}: {time.perf_counter() - t:.3f} s {rows}")
sys.stdout.flush()
os._exit(0)
PY
