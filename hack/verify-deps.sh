#!/usr/bin/env bash
# The one architectural rule, held by the compiler: components reach storage only
# through the apiserver, so the node and scheduling binaries link neither the apiserver's
# library nor a storage engine. Fails naming every forbidden edge.
set -euo pipefail
cd "$(dirname "$0")/.."
server=(apiserver apiserver-storage controlplane registry redb)
# package: crates it must not depend on (normal dependencies, transitively). kubeadm
# manages etcd members itself, as upstream's does.
declare -A rules=(
  [kube-controller-manager]="${server[*]} etcd-client"
  [controller]="${server[*]} etcd-client"
  [kubelet-cmd]="${server[*]} etcd-client"
  [kubelet]="${server[*]} etcd-client"
  [kube-scheduler]="${server[*]} etcd-client"
  [scheduler]="${server[*]} etcd-client"
  [kube-proxy]="${server[*]} etcd-client"
  [proxy]="${server[*]} etcd-client"
  [cluster-dns]="${server[*]} etcd-client"
  [metrics-server]="${server[*]} etcd-client"
  [kubectl-cmd]="${server[*]} etcd-client client-go component-base"
  [kubectl]="${server[*]} etcd-client client-go component-base"
  [cli-runtime]="${server[*]} etcd-client client-go component-base"
  [kubeadm]="${server[*]}"
)
failed=0
for pkg in "${!rules[@]}"; do
  deps=$(cargo tree -p "$pkg" -e normal --prefix none --offline 2>/dev/null | awk '{print $1}' | sort -u)
  [ -n "$deps" ] || { echo "cargo tree -p $pkg failed" >&2; failed=1; continue; }
  for f in ${rules[$pkg]}; do
    if grep -qx "$f" <<<"$deps"; then
      echo "forbidden dependency: $pkg -> $f (see: cargo tree -p $pkg -i $f)" >&2
      failed=1
    fi
  done
done
exit $failed
