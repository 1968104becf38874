#!/usr/bin/env bash
# Pod startup latency benchmark (upstream's density SLO: create-to-Running p99 <= 5 s):
# release builds of the apiserver, the kubelet and the load generator; a real containerd
# with the test images imported (needs root, containerd, runc, CNI plugins, busybox-static
# as .ci/run installs). Knobs: BENCH_PODS (30), BENCH_RUNTIME (containerd | fake).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kube-apiserver --bin kubelet --bin pod-startup-bench
exec target/release/pod-startup-bench
