#!/usr/bin/env python3
"""Generates staging/apimachinery/src/protobuf/k8s-1.35.pbschema: the field numbers, wire
types and JSON names of every Kubernetes 1.35 protobuf message.

The wire facts (tags, kinds, message types) come from the k8s-pb crate (prost code generated
from the 1.35 protos); the JSON names come from k8s-openapi's serde code for the same types,
and a protobuf field with no JSON counterpart is a Go struct embedded inline (Probe's
ProbeHandler, Volume's VolumeSource, ...). Both crates are fetched with cargo.

Usage: hack/gen-protobuf-schema.py [K8S_PB_SRC K8S_OPENAPI_SRC]
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "staging/apimachinery/src/protobuf/k8s-1.35.pbschema")


def fetch_sources():
    """Source directories of k8s-pb 0.9 and k8s-openapi 0.29 from cargo's registry."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "Cargo.toml"), "w") as f:
            f.write('[package]\nname="fetch"\nversion="0.0.0"\nedition="2021"\n'
                    '[dependencies]\nk8s-pb="=0.9.0"\nk8s-openapi={version="=0.29.0",features=["v1_35"]}\n')
        os.makedirs(os.path.join(d, "src"))
        open(os.path.join(d, "src/lib.rs"), "w").close()
        subprocess.run(["cargo", "fetch", "-q"], cwd=d, check=True)
        meta = subprocess.run(["cargo", "metadata", "--format-version=1", "-q"], cwd=d,
                              check=True, capture_output=True, text=True).stdout
    import json
    pkgs = {p["name"]: os.path.dirname(p["manifest_path"]) for p in json.loads(meta)["packages"]}
    return os.path.join(pkgs["k8s-pb"], "src"), os.path.join(pkgs["k8s-openapi"], "src/v1_35")


FIELD_ATTR = re.compile(r'#\[prost\((.*)\)\]')


def norm(name):
    """A Rust field name as both crates spell it: no raw-identifier prefix, no keyword suffix,
    no underscores (prost splits acronyms differently: `pod_cid_rs` for k8s-openapi's `pod_cidrs`)."""
    name = name.removeprefix("r#").rstrip("_")
    return {"ref_path": "ref"}.get(name, name).replace("_", "")


def resolve(module, rust_type):
    """The dotted message name a prost field type refers to, from the module it is used in."""
    t = rust_type.strip()
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<",
                    "::prost::alloc::boxed::Box<"):
        t = t.replace(wrapper, "")
    t = t.rstrip(",> ")
    if "BTreeMap<" in t:
        t = t.split(",", 1)[1].strip()
    parts = t.split("::")
    base = module.split(".")
    while parts and parts[0] == "super":
        parts.pop(0)
        base.pop()
    return ".".join(base + parts)


def parse_pb(src):
    """{message: [(tag, rust_name, kind, label, type)]}"""
    messages = {}
    for dirpath, _, files in os.walk(src):
        if "mod.rs" not in files:
            continue
        module = os.path.relpath(dirpath, src).replace(os.sep, ".")
        if module == ".":
            continue
        lines = open(os.path.join(dirpath, "mod.rs")).read().split("\n")
        current = None
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            m = re.match(r"pub struct (\w+) \{", line)
            if m:
                current = f"{module}.{m.group(1)}"
                messages[current] = []
            elif line == "}":
                current = None
            elif current and (a := FIELD_ATTR.match(line)):
                attr = a.group(1)
                decl = ""
                i += 1
                while True:
                    decl += lines[i].strip()
                    if decl.endswith(",") and decl.count("<") == decl.count(">"):
                        break
                    i += 1
                fname, ftype = decl[len("pub "):-1].split(":", 1)
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                if attr.startswith("btree_map"):
                    _, value = re.search(r'btree_map = "([^"]*)"', attr).group(1).split(", ")
                    kind, label = value, "map"
                else:
                    kind = attr.split(",")[0].split(" ")[0]
                    label = "repeated" if "repeated" in attr else "optional"
                typ = resolve(module, ftype) if kind == "message" else "-"
                messages[current].append((tag, fname.strip(), kind, label, typ))
            i += 1
    return messages


def parse_openapi(src):
    """({type: {rust_name: json_name}}, {type: (apiVersion, kind)}) keyed by lowercased name."""
    names, gvks = {}, {}
    for dirpath, _, files in os.walk(src):
        module = os.path.relpath(dirpath, src).replace(os.sep, ".")
        for f in files:
            if f in ("mod.rs", "list.rs"):
                continue
            text = open(os.path.join(dirpath, f)).read()
            m = re.search(r"^pub struct (\w+)", text, re.M)
            if not m:
                continue
            key = f"{module}.{m.group(1)}".lower()
            names[key] = {norm(r): j for j, r in
                          re.findall(r'"([^"]+)" => Field::Key_(\w+),', text)}
            v = re.search(r'const API_VERSION: &\'static str = "([^"]*)"', text)
            k = re.search(r'const KIND: &\'static str = "([^"]*)"', text)
            if v and k:
                gvks[key] = (v.group(1), k.group(1))
    return names, gvks


# Go initialisms in JSON names k8s-openapi cannot supply: messages it inlines into
# another type (VolumeSource, PersistentVolumeSource) or does not have at all.
JSON_INITIALISMS = {
    "downwardApi": "downwardAPI",
    "scaleIo": "scaleIO",
    "insecureSkipTlsVerifyBackend": "insecureSkipTLSVerifyBackend",
    "insecureSkipTlsVerify": "insecureSkipTLSVerify",
    "nodeId": "nodeID",
    "desiredApiVersion": "desiredAPIVersion",
    "openApiv3Schema": "openAPIV3Schema",
    "hostIp": "hostIP",
    "carpIp": "carpIP",
}


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def main():
    pb_src, oa_src = sys.argv[1:3] if len(sys.argv) == 3 else fetch_sources()
    messages = parse_pb(pb_src)
    names, gvks = parse_openapi(oa_src)
    out = ["# Kubernetes 1.35 protobuf messages, generated by hack/gen-protobuf-schema.py.",
           "# M <message> [<apiVersion> <kind>]: a message and the kind it encodes;",
           "# <tag> <json name> <kind> <label> [<message>]: kind is a scalar or message, label is",
           "# optional, repeated, map (string keys) or inline (a Go struct embedded in JSON)."]
    unmatched = 0
    for msg in sorted(messages):
        json_names = names.get(msg.lower())
        head = f"M {msg}"
        if msg.lower() in gvks:
            head += " %s %s" % gvks[msg.lower()]
        elif msg.endswith("List") and msg[:-4].lower() in gvks:
            v, k = gvks[msg[:-4].lower()]
            head += f" {v} {k}List"
        out.append(head)
        for tag, rust, kind, label, typ in sorted(messages[msg]):
            json = None
            if json_names is not None:
                json = json_names.get(norm(rust))
                if json is None and kind == "message" and label == "optional":
                    label, json = "inline", "-"
            if json is None:
                json = camel(rust.removeprefix("r#"))
                json = JSON_INITIALISMS.get(json, json)
                unmatched += json_names is not None
            out.append(f"{tag} {json} {kind} {label}" + ("" if typ == "-" else f" {typ}"))
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{len(messages)} messages, {unmatched} fields named without k8s-openapi", file=sys.stderr)


if __name__ == "__main__":
    main()
