#!/usr/bin/env bash
# Facts after a start: for each NAME:BINARY in turn, `cxlake serve` on
# the data directory DATA, then one `/v1/kpis` call per tenant (a request
# waits for its tenant's first build: CXLAKE_FACTS_WAIT_MS is set to an
# hour) and the time from start until every tenant has answered; each
# tenant's build from events, or read of its saved facts, from the
# server's log; the time until every tenant's facts are saved; peak RSS.
# Then the peer: DuckDB materializing `sql/views/conversations.sql` over
# the same files (bench/facts_duckdb.py).
#
#   DATA=DIR [COLD=1] [PEER=0] bash bench/facts_build.sh NAME:BINARY ...
#
# DATA is a data directory made by bench/kpis.sh (100k or 1m). With
# COLD=1 the saved facts are removed before each run (a build from
# events); without, a run after another reads what that one saved.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?a data directory with a lake}
PORT=${PORT:-18133}
TENANTS="dragon-mart modehaus_eu streamly-us"
for run in "$@"; do
    name=${run%%:*}; bin=${run#*:}
    ALL=$("$bin" key create --data "$DATA" --tenant '*' --role admin 2>/dev/null | tail -1)
    log=$(mktemp)
    if [ "${COLD:-0}" = 1 ]; then rm -rf "$DATA/lake/facts"; fi
    start=$(date +%s.%N)
    CXLAKE_LOG=${LOG:-info,warehouse=debug} CXLAKE_LOG_FORMAT=json CXLAKE_FACTS_WAIT_MS=3600000 "$bin" serve --data "$DATA" --listen 127.0.0.1:$PORT --pg-listen off > "$log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.05; done
    for t in $TENANTS; do
        curl -sf -o /dev/null -H "Authorization: Bearer $ALL" "http://127.0.0.1:$PORT/v1/kpis?tenant=$t&from=2026-09-01&to=2026-10-01"
    done
    end=$(date +%s.%N)
    echo "== $name $(date -u +%FT%TZ) $bin"
    echo "start → every tenant answered: $(echo "$end - $start" | bc) s"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    f = e.get("fields", {})
    if f.get("message") == "KPI rollup refreshed" and f.get("full"):
        print("  build %s: %s conversations, %s ms" % (f.get("tenant"), f.get("conversations"), f.get("elapsed_ms")))
    if f.get("message") == "facts restored":
        print("  restored %s: phases %s" % (f.get("tenant"), f.get("phases_ms")))
    if f.get("message") == "KPI facts read from the lake":
        print("  read %s: %s conversations, %s ms (tables %s ms)" % (f.get("tenant"), f.get("conversations"), f.get("elapsed_ms"), f.get("read_ms")))
' "$log"
    # Every tenant's facts saved since this start (at most 10 minutes).
    for _ in $(seq 6000); do
        saved=0
        for t in $TENANTS; do
            m="$DATA/lake/facts/_manifests/$t.json"
            [ -f "$m" ] && [ "$(stat -c %Y "$m")" -ge "${start%.*}" ] && saved=$((saved + 1))
        done
        [ $saved = 3 ] && break
        # read back, nothing to save: the manifests stay as they were
        grep -q "KPI facts read from the lake" "$log" && break
        sleep 0.1
    done
    echo "start → every tenant's facts saved (or read): $(echo "$(date +%s.%N) - $start" | bc) s"
    grep VmHWM /proc/$PID/status
    kill $PID; wait $PID 2>/dev/null || true
    rm -f "$log"
done
if [ "${PEER:-1}" != 0 ]; then
    python3 bench/facts_duckdb.py "$DATA/lake/events" "${REPEAT:-1}"
fi
