#!/usr/bin/env bash
# On-disk lake bytes against the live table's bytes during a steady ingest
# (compaction rewrites, vacuum deletes what it replaced after the
# retention). Prints a sample every 15 s and a JSON summary; the samples
# go to $WORK/samples.csv.
#   bash bench/lake_disk.sh [MINUTES=30] [RATE=1000 events/s]
# Env: BIN (default target/release/cxlake), PORT, RETENTION_S (the service's
# vacuum_retention_s, default 3600 as in production), WORK, HISTORY=1 to
# start from a lake holding the month of history first (as a production
# lake would) instead of an empty one. A reader queries one tenant's events
# back to back throughout; the summary counts its failed queries.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
RATE=${2:-1000}
WORK=${WORK:-$PWD/bench-data/lake_disk}
BIN=${BIN:-target/release/cxlake}
RETENTION_S=${RETENTION_S:-3600}
PORT=${PORT:-18081}
rm -rf "$WORK"; mkdir -p "$WORK"
$BIN generate --days 30 --out "$WORK/events.ndjson" >/dev/null
if [ -n "${HISTORY:-}" ]; then
  CXLAKE_LOG=warn $BIN ingest "$WORK/events.ndjson" --data "$WORK/data" >&2
fi
KEY=$($BIN key create --data "$WORK/data" --tenant '*' --role service 2>/dev/null | tail -1)
# The reader queries one demo tenant's events throughout.
READ_KEY=$($BIN key create --data "$WORK/data" --tenant dragon-mart --role analyst 2>/dev/null | tail -1)
CXLAKE_LOG=warn CXLAKE_PG_LISTEN=off CXLAKE_VACUUM_RETENTION_S=$RETENTION_S \
  $BIN serve --data "$WORK/data" --listen 127.0.0.1:$PORT > "$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
echo "retention ${RETENTION_S} s, ${RATE} events/s for ${MINUTES} min" >&2
python3 bench/lake_disk.py 127.0.0.1:$PORT "$KEY" "$WORK/events.ndjson" "$WORK/data/lake/events" \
  "$MINUTES" "$RATE" "$WORK/samples.csv" "$READ_KEY"
