#!/usr/bin/env bash
# Analyst SQL benchmark: latency over the Postgres wire vs HTTP
# for a small and a large result, rows per second streamed, and the
# overhead of tenant isolation. Needs a release build, python3 with psycopg:
#   pip install 'psycopg[binary]'
#   bash bench/sql.sh [DAYS]
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:-30}
WORK=${BENCH_DIR:-$PWD/bench-data/sql}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p api --bin cxlake >/dev/null
BIN=${CXLAKE_BIN:-$PWD/target/release/cxlake}
if [ ! -d "$WORK/data/lake" ]; then
    rm -rf "$WORK"; mkdir -p "$WORK"
    echo "generating and ingesting $DAYS days of demo traffic..." >&2
    $BIN generate --days "$DAYS" --start 2026-09-01 --out "$WORK/events.ndjson"
    # Fixed dates: a backfill, whatever today is.
    $BIN ingest --max-event-age-days 36500 --data "$WORK/data" "$WORK/events.ndjson" >&2
fi
TENANT_KEY=$($BIN key create --data "$WORK/data" --tenant dragon-mart --role admin 2>/dev/null | tail -1)
PLATFORM_KEY=$($BIN key create --data "$WORK/data" --tenant '*' --role admin 2>/dev/null | tail -1)
CXLAKE_LOG=warn $BIN serve --data "$WORK/data" --listen 127.0.0.1:18081 --pg-listen 127.0.0.1:15433 > "$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18081/healthz >/dev/null && break; sleep 0.1; done
python3 bench/sql_bench.py 127.0.0.1:18081 127.0.0.1:15433 dragon-mart "$TENANT_KEY" "$PLATFORM_KEY"
