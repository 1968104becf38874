#!/usr/bin/env bash
# The house rules CI checks before the tests: formatting and lints, warnings as errors,
# and the architecture's crate boundaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
hack/verify-deps.sh
