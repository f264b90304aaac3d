#!/usr/bin/env bash
# Server time and bytes of every dashboard page.
#
#   bench/dashboards.sh DATA_DIR TENANT [RUNS]
#
# Starts target/release/cxlake on a copy-free DATA_DIR (it must not be
# served by anything else; or see RUNNING below), creates an admin key of TENANT, registers and
# starts the generator's greeting_v2 experiment (ignored if it exists),
# then requests each page RUNS times (default 5) over loopback with the
# sign-in cookie and prints, per page, the median and max of curl's
# time_total (loopback: server time plus a few tens of microseconds) and
# the bytes of the HTML (uncompressed; the server does not compress).
set -euo pipefail
DATA=${1:?data dir}
TENANT=${2:?tenant}
RUNS=${3:-5}
BIN=${CXLAKE_BIN:-target/release/cxlake}
PORT=${PORT:-18086}
# KEY and RUNNING=1: use a server already serving DATA on PORT (e.g. to
# measure pages and the KPI benchmark on one 1M build) instead of starting one.
if [ -z "${RUNNING:-}" ]; then
    KEY=$("$BIN" key create --tenant "$TENANT" --role admin --data "$DATA" | tail -1)
    CXLAKE_LOG=warn CXLAKE_PG_LISTEN=off CXLAKE_FACTS_WAIT_MS=3600000 "$BIN" serve --data "$DATA" --listen 127.0.0.1:$PORT >/tmp/dash-bench-serve.log 2>&1 &
    PID=$!
    trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
fi
KEY=${KEY:?an admin key of TENANT}
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.5; done
AUTH="Authorization: Bearer $KEY"
curl -s -o /dev/null -H "$AUTH" -H 'Content-Type: application/json' -X POST http://127.0.0.1:$PORT/v1/experiments -d '{
  "key": "greeting_v2", "kind": "greeting",
  "variants": [{"key": "control", "weight": 0.5, "payload": {}}, {"key": "friendly", "weight": 0.5, "payload": {}}],
  "primary_metric": "conversion", "guardrail_metrics": ["csat", "transfer", "frt"]}'
curl -s -o /dev/null -H "$AUTH" -X POST http://127.0.0.1:$PORT/v1/experiments/greeting_v2/start
# The view: FROM/TO (dates, tenant zone; default: the pages' own default,
# the last 7 days); the experiment over EXP_FROM..EXP_TO (default: its run);
# staffing forecasts STAFF_FROM..STAFF_TO (default: tomorrow).
Q=""; [ -n "${FROM:-}" ] && Q="?from=$FROM&to=$TO"
EQ=""; [ -n "${EXP_FROM:-}" ] && EQ="?from=$EXP_FROM&to=$EXP_TO"
SQ=""; [ -n "${STAFF_FROM:-}" ] && SQ="?from=$STAFF_FROM&to=$STAFF_TO"
# The server builds every tenant's materialized facts in the background at
# start; wait for the tenant's (a KPI call waits on that build) and say how
# long it took, so the page timings below are the steady state.
t=$(curl -s -o /dev/null -w '%{time_total}' -H "$AUTH" "http://127.0.0.1:$PORT/v1/kpis${Q:-?from=2000-01-01&to=2000-01-02}")
echo "rollups ready ${t}s after the server answered /healthz"
# Sign in once, as a browser does: the cookie holds a session id.
COOKIE=$(curl -s -o /dev/null -D - --data-urlencode "key=$KEY" http://127.0.0.1:$PORT/login \
    | sed -n 's/^[Ss]et-[Cc]ookie: \(cxlake_session=[0-9a-f]*\).*/\1/p' | head -1)
[ -n "$COOKIE" ] || { echo "sign-in failed"; exit 1; }
printf '%-26s %10s %10s %10s %10s\n' page first_ms median_ms max_ms bytes
for p in "/$Q" "/channels$Q" "/teams$Q" "/tags$Q" "/traffic$Q" "/scripts$Q" "/experiments$EQ" "/experiments/greeting_v2$EQ" "/staffing$SQ"; do
    url="http://127.0.0.1:$PORT$p"
    times=()
    bytes=0
    for _ in $(seq 1 "$RUNS"); do
        out=$(curl -s -o /tmp/dash-bench-page.html -w '%{http_code} %{time_total} %{size_download}' -b "$COOKIE" "$url")
        read -r code t b <<<"$out"
        [ "$code" = 200 ] || { echo "$p: HTTP $code"; head -c 600 /tmp/dash-bench-page.html; echo; }
        times+=("$t")
        bytes=$b
    done
    first=$(awk -v t="${times[0]}" 'BEGIN{printf "%.0f", t*1000}')
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    median=$(echo "$sorted" | awk -v n="$RUNS" 'NR==int((n+1)/2){printf "%.0f", $1*1000}')
    max=$(echo "$sorted" | tail -1 | awk '{printf "%.0f", $1*1000}')
    printf '%-26s %10s %10s %10s %10s\n' "${p%%\?*}" "$first" "$median" "$max" "$bytes"
done
