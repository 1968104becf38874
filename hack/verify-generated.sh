#!/usr/bin/env bash
# Generated files are what their generators make today (upstream's hack/verify-codegen.sh):
# the protobuf schema and the list/merge markers, both derived from the k8s-pb crate
# (fetched with cargo). Fails naming the stale file and the command that refreshes it.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A generators=(
  [staging/apimachinery/src/protobuf/k8s-1.35.pbschema]=hack/gen-protobuf-schema.py
  [api/openapi-spec/list-metadata.json]=hack/update-list-metadata.py
)
saved=$(mktemp -d)
restore() {
  for f in "${!generators[@]}"; do cp "$saved/$(basename "$f")" "$f"; done
  rm -rf "$saved"
}
for f in "${!generators[@]}"; do cp "$f" "$saved/$(basename "$f")"; done
trap restore EXIT
failed=0
for f in "${!generators[@]}"; do
  # The generators fetch k8s-pb from crates.io; without the network the check cannot
  # run, which it says rather than failing the whole verification.
  if ! python3 "${generators[$f]}" >/dev/null; then
    echo "WARNING: ${generators[$f]} failed (crates.io unreachable?): $f not verified" >&2
    continue
  fi
  if ! cmp -s "$f" "$saved/$(basename "$f")"; then
    echo "stale generated file: $f (run ${generators[$f]})" >&2
    failed=1
  fi
done
exit $failed
