#!/usr/bin/env bash
# KPI benchmark: /v1/kpis overview and group_by=channel,day,
# the conversation export, raw SQL over `conversations`, the same KPI SQL
# run by DuckDB on the same Parquet files, and the server's peak RSS, for
# lakes of 100k and 1M conversations (30 days, three demo tenants; the
# figures are for tenant dragon-mart, about 45 % of the conversations).
# Needs a release build and python3 with duckdb:
#   bash bench/kpis.sh [SIZES...]      # default: 100k 1m
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${*:-100k 1m}
# HEAVY_REPEAT (default 3): runs of the multi-second queries (raw SQL, DuckDB); PEER=0 skips DuckDB
WORK=${BENCH_DIR:-$PWD/bench-data/kpis}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p api --bin cxlake >/dev/null
BIN=${BIN:-$PWD/target/release/cxlake}
TENANT=dragon-mart
FROM=2026-09-01
TO=2026-10-01
mkdir -p "$WORK"
for size in $SIZES; do
    case $size in
        100k) per_day=3334 ;;
        1m) per_day=33334 ;;
        10m) per_day=333334 ;;
        *) echo "unknown size $size" >&2; exit 2 ;;
    esac
    data=$WORK/d$size
    if [ ! -d "$data/lake" ]; then
        echo "generating and ingesting $size conversations..." >&2
        # `cxlake ingest` flushes once at the end, holding a file's events in
        # memory: feed it about 3M events (1/6 of the 1M lake) at a time.
        "$BIN" generate --days 30 --start $FROM --conversations-per-day $per_day --out "$WORK/events.ndjson"
        parts=$(( per_day / 5000 + 1 ))
        split -n l/$parts -d "$WORK/events.ndjson" "$WORK/events.part."
        rm "$WORK/events.ndjson"
        for p in "$WORK"/events.part.*; do "$BIN" ingest --max-event-age-days 36500 --data "$data" "$p" >&2; rm "$p"; done
    fi
    KEY=$("$BIN" key create --data "$data" --tenant $TENANT --role admin 2>/dev/null | tail -1)
    CXLAKE_LOG=warn CXLAKE_FACTS_WAIT_MS=3600000 "$BIN" serve --data "$data" --listen 127.0.0.1:18090 --pg-listen off > "$WORK/serve-$size.log" 2>&1 &
    PID=$!
    for _ in $(seq 300); do curl -sf http://127.0.0.1:18090/healthz >/dev/null && break; sleep 0.1; done
    echo "== $size conversations ($data)" >&2
    python3 bench/kpis_bench.py 127.0.0.1:18090 "$KEY" "$data/lake" $TENANT $FROM $TO > "$WORK/result-$size.json"
    grep VmHWM /proc/$PID/status | tee -a "$WORK/result-$size.json"
    kill $PID
    wait $PID 2>/dev/null || true
    cat "$WORK/result-$size.json"
done
