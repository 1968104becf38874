#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start the real binaries
# (built first: integration tests launch target/debug/<component>).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bins
cargo test --workspace "$@"
