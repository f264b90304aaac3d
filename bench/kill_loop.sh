#!/usr/bin/env bash
# Crash-safety soak: N SIGKILLs of the real binary at random moments while
# three clients post with retries (a quarter of their requests abandoned
# after 50 ms and sent again at once); at the end every acknowledged event
# must be in SQL exactly once. The same test runs 20 cycles in CI. It runs
# a copy of the dev binary (safety, not speed), so rebuilding meanwhile
# does not change what is tested.
#   bash bench/kill_loop.sh [CYCLES]     # default 1000
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-1000}
SOAK=$(mktemp -d)
cargo test --workspace --test e2e --no-run 2>&1 | grep -o 'target/debug/deps/e2e-[0-9a-f]*' | tail -1 > "$SOAK/test"
cp target/debug/cxlake "$SOAK/cxlake"
cp "$(cat "$SOAK/test")" "$SOAK/kill_loop"
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $CYCLES cycles"
CXLAKE_TEST_BIN="$SOAK/cxlake" CXLAKE_KILL_CYCLES=$CYCLES "$SOAK/kill_loop" kill_loop:: --nocapture 2>&1 \
    | grep -E "kill loop:|test result|panicked|acknowledged but lost|stored"
rm -rf "$SOAK"
