#!/usr/bin/env bash
# Durable HTTP ingest benchmark. Prints the figures that go
# into docs/benchmarks.md. Needs a release build and python3 with duckdb:
#   pip install duckdb
#   bash bench/ingest.sh [DAYS]
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:-30}
WORK=${BENCH_DIR:-$PWD/bench-data/ingest}
rm -rf "$WORK"; mkdir -p "$WORK"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p api --bin cxlake --example ingest_load >/dev/null
BIN=${BIN:-target/release/cxlake}
LOAD=target/release/examples/ingest_load

echo "generating $DAYS days of demo traffic..." >&2
$BIN generate --days "$DAYS" --out "$WORK/events.ndjson"
EVENTS=$(wc -l < "$WORK/events.ndjson")
NDJSON_BYTES=$(stat -c %s "$WORK/events.ndjson")

KEY=$($BIN key create --data "$WORK/data" --tenant '*' --role service 2>/dev/null | tail -1)
CXLAKE_LOG=${CXLAKE_LOG:-warn} $BIN serve --data "$WORK/data" --listen 127.0.0.1:18080 > "$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done

# VmHWM (peak RSS) only grows; sample it until the process is gone, so
# the final flush on shutdown is included.
( while [ -e /proc/$PID/status ]; do
    grep VmHWM /proc/$PID/status 2>/dev/null | awk '{print $2}' > "$WORK/hwm.tmp"
    [ -s "$WORK/hwm.tmp" ] && mv "$WORK/hwm.tmp" "$WORK/hwm"
    sleep 0.1
  done ) &
SAMPLER=$!
LOADJSON=$($LOAD --addr 127.0.0.1:18080 --key "$KEY" --file "$WORK/events.ndjson" --batch 1000 --connections "${CONNECTIONS:-4}")
# Graceful stop flushes the buffer into the lake.
kill -TERM $PID; wait $PID || true
wait $SAMPLER 2>/dev/null || true
PEAK_KB=$(cat "$WORK/hwm")
trap - EXIT
# Bytes of the files in the table's current version (Delta log adds minus removes).
LAKE_BYTES=$(python3 - "$WORK/data/lake/events/_delta_log" <<'PY'
import glob, json, sys
files = {}
for c in sorted(glob.glob(sys.argv[1] + "/*.json")):
    for line in open(c):
        a = json.loads(line)
        if "add" in a: files[a["add"]["path"]] = a["add"]["size"]
        if "remove" in a: files.pop(a["remove"]["path"], None)
print(sum(files.values()))
PY
)
LAKE_FILES=$(ls "$WORK/data/lake/events/_delta_log/"*.json | wc -l)
PEER=$(python3 bench/duckdb_ingest.py "$WORK/events.ndjson" "$WORK/duckdb")

python3 - "$LOADJSON" "$PEER" "$EVENTS" "$NDJSON_BYTES" "$LAKE_BYTES" "$PEAK_KB" "$LAKE_FILES" <<'PY'
import json, sys
load, peer = json.loads(sys.argv[1]), json.loads(sys.argv[2])
events, ndjson, lake, peak_kb, commits = map(int, sys.argv[3:8])
print(f"events: {events:,}  ndjson: {ndjson/events:.0f} B/event  lake commits: {commits}")
print("| measure | cxlake (HTTP, durable) | DuckDB (NDJSON -> sorted zstd Parquet) | target |")
print("|---|---|---|---|")
print(f"| events/s | {load['events_per_s']:,.0f} | {peer['events_per_s']:,.0f} | >= 150,000 |")
print(f"| ack latency p50 / p99 / max | {load['p50_ms']:.1f} / {load['p99_ms']:.1f} / {load['max_ms']:.1f} ms | n/a (batch job) | p99 <= 50 ms |")
print(f"| bytes per event in Parquet | {lake/events:.1f} | {peer['bytes_per_event']:.1f} | <= 15 |")
print(f"| peak RSS | {peak_kb/1024:.0f} MiB | - | <= 1024 MiB |")
print(f"| cxlake/DuckDB throughput ratio | {load['events_per_s']/peer['events_per_s']:.2f} | | |")
PY
