#!/usr/bin/env bash
# The lake of the live benchmark (bench/live.sh): a month of the three
# demo tenants ending yesterday, so that live traffic stamped "now" lands
# next to it; then one server start and stop, so that its facts are saved
# in the lake (the benchmark's starts read them back, as a deploy would).
#
#   BIN=target/release/cxlake bash bench/live_lake.sh 100k|1m   # → bench-data/live/d<size>-now
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/target/release/cxlake}
size=${1:?100k or 1m}
case $size in
    100k) per_day=3334 ;;
    1m) per_day=33334 ;;
    *) echo "unknown size $size" >&2; exit 2 ;;
esac
data=$PWD/bench-data/live/d$size-now
[ ! -e "$data" ] || { echo "$data exists" >&2; exit 2; }
mkdir -p "$(dirname "$data")"
work=$(mktemp -d)
start=$(date -u -d '30 days ago' +%F)
"$BIN" generate --days 30 --start "$start" --conversations-per-day $per_day --out "$work/events.ndjson"
# `cxlake ingest` holds a file's events in memory until its one flush.
split -n l/$(( per_day / 1500 + 1 )) -d "$work/events.ndjson" "$work/events.part."
rm "$work/events.ndjson"
for p in "$work"/events.part.*; do "$BIN" ingest --max-event-age-days 36500 --data "$data" "$p" >&2; rm "$p"; done
rmdir "$work"
ALL=$("$BIN" key create --data "$data" --tenant '*' --role admin 2>/dev/null | tail -1)
CXLAKE_LOG=warn "$BIN" serve --data "$data" --listen 127.0.0.1:18136 --pg-listen off &
PID=$!
for _ in $(seq 600); do curl -sf http://127.0.0.1:18136/healthz >/dev/null && break; sleep 0.1; done
until curl -sf -o /dev/null -H "Authorization: Bearer $ALL" http://127.0.0.1:18136/readyz; do sleep 1; done
sleep 3 # a save round after the builds
kill $PID; wait $PID 2>/dev/null || true
ls "$data/lake/facts/_manifests"
