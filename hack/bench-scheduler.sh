#!/usr/bin/env bash
# kube-scheduler benchmark modelled on upstream's scheduler_perf: release builds of the
# apiserver, the scheduler and the load generator; 5000 nodes, 1000 initial pods, 10000
# measured pods per workload (see test/integration/src/bin/scheduler-bench.rs for the
# knobs: BENCH_NODES, BENCH_INIT_PODS, BENCH_PODS, BENCH_WORKLOADS).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kube-apiserver --bin kube-scheduler --bin scheduler-bench
exec target/release/scheduler-bench
