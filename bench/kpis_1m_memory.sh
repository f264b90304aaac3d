#!/usr/bin/env bash
# Peak RSS of the server at 1M conversations over its whole life, with the
# KPI and page benchmarks on the built rollups (issues 3 and 6).
#
#   bash bench/kpis_1m_memory.sh [DATA_SOURCE] [OUT_PREFIX]
#
# Copies DATA_SOURCE (default bench-data/kpis/d1m, made by
# `bash bench/kpis.sh 1m`) so the original stays untouched, starts the
# release binary (BIN, default target/release/cxlake) on the copy, samples
# VmRSS/VmHWM every 10 s into OUT_PREFIX-rss.log, waits until every
# tenant's first build is done (three "KPI rollup refreshed" lines), then
# runs bench/kpis_bench.py (HEAVY_REPEAT=1) and bench/dashboards.sh (3
# runs, the session-3 page windows) and prints VmHWM after each step.
set -u
cd "$(dirname "$0")/.."
SRC=${1:-bench-data/kpis/d1m}
OUT=${2:-/tmp/kpis-1m}
BIN=${BIN:-$PWD/target/release/cxlake}
PORT=${PORT:-18190}
DATA=$OUT-data
rm -rf "$DATA"; cp -r "$SRC" "$DATA"; rm -f "$DATA/cxlake.lock"
KEY=$("$BIN" key create --data "$DATA" --tenant dragon-mart --role admin 2>/dev/null | tail -1)
CXLAKE_LOG=info CXLAKE_FACTS_WAIT_MS=3600000 "$BIN" serve --data "$DATA" --listen 127.0.0.1:$PORT --pg-listen off > "$OUT-serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
(while kill -0 $PID 2>/dev/null; do
    echo "$(date +%T) $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | awk '{printf "%s %d MiB ", $1, $2/1024}')"
    sleep 10
done) > "$OUT-rss.log" &
hwm() { grep -E 'VmHWM|VmRSS' /proc/$PID/status | tr -s ' \t\n' ' '; }
start=$(date +%s)
echo "started $(date +%T)"
while [ "$(grep -c 'KPI rollup refreshed' "$OUT-serve.log")" -lt 3 ]; do sleep 5; done
echo "all tenants built after $(( $(date +%s) - start )) s ($(date +%T)): $(hwm)"
grep 'KPI rollup refreshed' "$OUT-serve.log" | sed 's/\x1b\[[0-9;]*m//g; s/.*tenant=/tenant=/'
HEAVY_REPEAT=1 python3 bench/kpis_bench.py 127.0.0.1:$PORT "$KEY" "$DATA/lake" dragon-mart 2026-09-01 2026-10-01 > "$OUT-kpis.json" 2> "$OUT-kpis.err"
echo "KPI benchmark done $(date +%T): $(hwm)"
RUNNING=1 KEY=$KEY PORT=$PORT CXLAKE_BIN=$BIN FROM=2026-09-23 TO=2026-09-30 EXP_FROM=2026-09-01 EXP_TO=2026-10-01 \
    STAFF_FROM=2026-09-30 STAFF_TO=2026-10-01 bash bench/dashboards.sh "$DATA" dragon-mart 3 > "$OUT-pages.txt" 2>&1
echo "pages done $(date +%T): $(hwm)"
cat "$OUT-kpis.json" "$OUT-pages.txt"
