#!/usr/bin/env bash
# kube-apiserver benchmark: release builds of the apiserver and the load generator, then
# the embedded store and real etcd in turn (see test/integration/src/bin/apiserver-bench.rs
# for the knobs: BENCH_PODS, BENCH_CLIENTS, BENCH_WATCHERS, BENCH_WATCH_EVENTS,
# BENCH_BACKENDS). Prints throughput, p50/p99 per verb and the apiserver's RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kube-apiserver --bin apiserver-bench
exec target/release/apiserver-bench
