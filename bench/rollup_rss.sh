#!/usr/bin/env bash
# Peak RSS of the server once every tenant's first rollup build is done.
#
#   BIN=target/release/cxlake bash bench/rollup_rss.sh DATA_DIR [ENV=VALUE ...]
#
# Starts BIN on DATA_DIR (not served by anything else) with the given
# environment (e.g. MIMALLOC_PURGE_DELAY=0), waits for the three demo
# tenants' builds ("KPI rollup refreshed" three times) and prints the time
# they took and the server's VmHWM and VmRSS; then stops the server.
DATA=${1:?data dir}; shift
B=${BIN:-target/release/cxlake}
PORT=${PORT:-18097}
KEY=$($B key create --data "$DATA" --tenant dragon-mart --role admin 2>/dev/null | tail -1)
env "$@" CXLAKE_LOG=info CXLAKE_FACTS_WAIT_MS=3600000 "$B" serve --data "$DATA" --listen 127.0.0.1:$PORT --pg-listen off > /tmp/rollup-rss-serve.log 2>&1 &
PID=$!
for _ in $(seq 300); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
curl -s -o /dev/null -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/kpis?from=2026-09-01&to=2026-10-01"
while [ "$(grep -c 'KPI rollup refreshed' /tmp/rollup-rss-serve.log)" -lt 3 ]; do sleep 1; done
end=$(date +%s.%N)
echo "built in $(echo "$end - $start" | bc) s; $(grep -E 'VmHWM|VmRSS' /proc/$PID/status | tr -s ' \t\n' ' ')"
kill $PID; wait $PID 2>/dev/null
