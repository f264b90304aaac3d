#!/usr/bin/env bash
# Live traffic: for each NAME:BINARY in turn, a fresh copy of the lake
# DATA0, `cxlake serve`, every tenant's facts built, then bench/live.py
# posting TENANT's events at RATE events/s for SECONDS while timing
# /v1/kpis, the overview page and freshness; peak RSS at the end.
#
#   DATA0=DIR [TENANT=dragon-mart RATE=200 SECONDS=120 LOG=warn] bash bench/live.sh NAME:BINARY ...
# (LOG=info,warehouse=debug: every refresh in bench-data/live/serve-NAME.log)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA0=${DATA0:?a data directory with a lake}
OUT=${OUT:-$PWD/bench-data/live}
TENANT=${TENANT:-dragon-mart}
RATE=${RATE:-200}
SECONDS_=${SECONDS:-120}
PORT=${PORT:-18135}
mkdir -p "$OUT"
for run in "$@"; do
    name=${run%%:*}; bin=${run#*:}
    data=$OUT/run-$name
    rm -rf "$data"; cp -a "$DATA0" "$data"
    [ -f "$OUT/events.ndjson" ] || "$bin" generate --days 3 --start 2026-09-01 --conversations-per-day 3000 --out "$OUT/events.ndjson"
    ALL=$("$bin" key create --data "$data" --tenant '*' --role admin 2>/dev/null | tail -1)
    READ=$("$bin" key create --data "$data" --tenant "$TENANT" --role admin 2>/dev/null | tail -1)
    # Start-up builds are waited for here, not timed.
    CXLAKE_LOG=${LOG:-warn} CXLAKE_FACTS_WAIT_MS=3600000 "$bin" serve --data "$data" --listen 127.0.0.1:$PORT --pg-listen off > "$OUT/serve-$name.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
    for t in dragon-mart modehaus_eu streamly-us; do
        curl -s -o /dev/null -H "Authorization: Bearer $ALL" "http://127.0.0.1:$PORT/v1/kpis?tenant=$t&from=2026-09-01&to=2026-10-01"
    done
    echo "== $name $(date -u +%FT%TZ) $bin"
    python3 bench/live.py 127.0.0.1:$PORT "$ALL" "$READ" "$TENANT" "$OUT/events.ndjson" "$SECONDS_" "$RATE"
    grep VmHWM /proc/$PID/status
    kill $PID; wait $PID 2>/dev/null || true
done
