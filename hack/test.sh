#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start the real binaries
# (built first: integration tests launch target/debug/<component>). Ends with one
# "N passed, N failed" line summing every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
