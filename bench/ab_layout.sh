#!/usr/bin/env bash
# Two builds compared on one lake, alternately: the KPI benchmark
# (bench/kpis_bench.py, DuckDB peer off) and the dashboard pages
# (bench/dashboards.sh, RUNS requests per page), each on a fresh copy of
# the lake, after every tenant's rollup is built.
#
#   DATA0=LAKE_DATA_DIR OUT=DIR bash bench/ab_layout.sh NAME:BINARY NAME:BINARY ...
#
# DATA0 is a data directory made with `cxlake generate` and `cxlake ingest`
# (see bench/kpis.sh); results are appended to $OUT/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA0=${DATA0:?a data directory with a lake}
OUT=${OUT:-$PWD/bench-data/ab}
mkdir -p "$OUT"
PORT=${PORT:-18131}
for run in "$@"; do
    name=${run%%:*}; bin=${run#*:}
    data=$OUT/run-$name
    rm -rf "$data"; cp -a "$DATA0" "$data"
    KEY=$("$bin" key create --data "$data" --tenant dragon-mart --role admin 2>/dev/null | tail -1)
    # The build requests below wait for each first build, however long.
    CXLAKE_LOG=warn CXLAKE_FACTS_WAIT_MS=3600000 "$bin" serve --data "$data" --listen 127.0.0.1:$PORT --pg-listen off > $OUT/serve-$name.log 2>&1 &
    PID=$!
    for _ in $(seq 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
    # Every tenant's rollup built first, so the timings are the steady state.
    ALL=$("$bin" key create --data "$data" --tenant '*' --role admin 2>/dev/null | tail -1)
    for t in dragon-mart modehaus_eu streamly-us; do
        curl -s -o /dev/null -H "Authorization: Bearer $ALL" "http://127.0.0.1:$PORT/v1/kpis?tenant=$t&from=2026-09-01&to=2026-10-01"
    done
    echo "== $name $(date -u +%H:%M:%S) $bin" | tee -a $OUT/results.txt
    PEER=0 HEAVY_REPEAT=3 python3 bench/kpis_bench.py 127.0.0.1:$PORT "$KEY" "$data/lake" dragon-mart 2026-09-01 2026-10-01 2>&1 | tee -a $OUT/results.txt
    RUNNING=1 KEY="$KEY" PORT=$PORT CXLAKE_BIN="$bin" FROM=2026-09-23 TO=2026-09-30 EXP_FROM=2026-09-01 EXP_TO=2026-10-01 STAFF_FROM=2026-09-30 STAFF_TO=2026-10-01 \
        bash bench/dashboards.sh "$data" dragon-mart ${RUNS:-15} 2>&1 | tee -a $OUT/results.txt
    grep VmHWM /proc/$PID/status | tee -a $OUT/results.txt
    kill $PID; wait $PID 2>/dev/null || true
done
