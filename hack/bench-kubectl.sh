#!/usr/bin/env bash
# kubectl benchmark: release builds of our kubectl and kube-apiserver, then
# hack/bench-kubectl.py (wall time and peak RSS, ours against the machine's kubectl).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kube-apiserver --bin kubectl
exec python3 hack/bench-kubectl.py --apiserver target/release/kube-apiserver --ours target/release/kubectl "$@"
