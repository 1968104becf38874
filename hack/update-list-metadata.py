#!/usr/bin/env python3
"""Regenerates api/openapi-spec/list-metadata.json: the merge and ownership markers of the
built-in types (+listType, +listMapKey, +patchMergeKey, +patchStrategy, +mapType on
fields; +structType on types), as upstream's generated.proto comments carry them.

Source: the k8s-pb crate (prost types generated from Kubernetes 1.35's .proto files, the
comments included). Usage: hack/update-list-metadata.py [path/to/k8s-pb/src]; without an
argument the crate is fetched into a scratch project with cargo.
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

VERSION = "0.9.0"


def k8s_pb_src() -> pathlib.Path:
    if len(sys.argv) > 1:
        return pathlib.Path(sys.argv[1])
    scratch = pathlib.Path(tempfile.mkdtemp())
    subprocess.run(["cargo", "init", "-q", "--name", "scratch", str(scratch)], check=True)
    subprocess.run(["cargo", "add", "-q", f"k8s-pb@{VERSION}"], cwd=scratch, check=True)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=scratch,
                                     check=True, capture_output=True, text=True).stdout)
    pkg = next(p for p in meta["packages"] if p["name"] == "k8s-pb")
    return pathlib.Path(pkg["manifest_path"]).parent / "src"


def definition_prefix(rel: pathlib.Path) -> str:
    """api/core/v1 -> io.k8s.api.core.v1, as the OpenAPI definition names go."""
    parts = list(rel.parts[:-1])
    top = {"apiextensions_apiserver": "apiextensions-apiserver", "kube_aggregator": "kube-aggregator"}
    parts[0] = top.get(parts[0], parts[0])
    return "io.k8s." + ".".join(parts)


MARKER = re.compile(r"^\s*///\s*\+(listType|listMapKey|patchMergeKey|patchStrategy|mapType|structType)=(\S+)")
STRUCT = re.compile(r"^pub struct (\w+) \{")
FIELD = re.compile(r"^\s*pub (\w+):")


def main() -> None:
    src = k8s_pb_src()
    out = {}
    for path in sorted(src.rglob("mod.rs")):
        rel = path.relative_to(src)
        if len(rel.parts) < 3:
            continue
        prefix = definition_prefix(rel)
        current, pending = None, {}
        for line in path.read_text().splitlines():
            m = MARKER.match(line)
            if m:
                key, value = m.groups()
                if key == "listMapKey":
                    pending.setdefault(key, []).append(value)
                else:
                    pending[key] = value
                continue
            m = STRUCT.match(line)
            if m:
                current = f"{prefix}.{m.group(1)}"
                if "structType" in pending:
                    out.setdefault(current, {})["."] = {"structType": pending["structType"]}
                pending = {}
                continue
            m = FIELD.match(line)
            if m and current:
                pending.pop("structType", None)
                if pending:
                    # Keyed by the field name without underscores, lowercased, so that the
                    # JSON name (volumeID, podIPs) finds it the same way.
                    out.setdefault(current, {})[m.group(1).replace("_", "")] = pending
                pending = {}
            elif line.startswith("}"):
                current, pending = None, {}
    target = pathlib.Path(__file__).resolve().parent.parent / "api/openapi-spec/list-metadata.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{target}: {len(out)} types, {sum(len(v) for v in out.values())} entries")


if __name__ == "__main__":
    main()
