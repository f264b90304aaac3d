#!/usr/bin/env bash
# Crash-safety soak: N SIGKILLs of the real binary at random moments while
# three clients post with retries (a quarter of their requests abandoned
# after 50 ms and sent again at once); at the end every acknowledged event
# must be in SQL exactly once. The same test runs 20 cycles in CI; this
# uses the same (dev) build as the tests: it checks safety, not speed.
#   bash bench/kill_loop.sh [CYCLES]     # default 1000
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-1000}
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
CXLAKE_KILL_CYCLES=$CYCLES cargo test -p api --test e2e_kill_loop -- --nocapture 2>&1 \
    | grep -E "kill loop:|test result|panicked|acknowledged but lost|stored"
