#!/usr/bin/env bash
# The house rules CI checks before the tests: formatting and lints, warnings as errors,
# the architecture's crate boundaries, and generated files up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
hack/verify-deps.sh
hack/verify-generated.sh
