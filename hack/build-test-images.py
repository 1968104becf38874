#!/usr/bin/env python3
"""Builds the OCI images the node tests run, from Debian's busybox-static, as OCI archives
that `ctr -n k8s.io images import` loads (no registry is reachable from the test machines).

  busybox:   registry.k8s.io/e2e-test-images/busybox:1.36  (/bin/busybox + applet links)
  pause:     registry.k8s.io/pause:3.10                     (the sandbox image)

Usage: build-test-images.py OUT_DIR   -> OUT_DIR/busybox.tar, OUT_DIR/pause.tar
"""
import hashlib, io, json, os, subprocess, sys, tarfile, time

BUSYBOX = "/bin/busybox"


def layer(busybox_bin):
    """An uncompressed layer tar: busybox, its applets as symlinks, and the usual dirs."""
    applets = subprocess.run([busybox_bin, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add_dir(name, mode=0o755):
            i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = mode; i.mtime = 0
            t.addfile(i)
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "usr", "usr/bin"]:
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        data = open(busybox_bin, "rb").read()
        i = tarfile.TarInfo("bin/busybox"); i.size = len(data); i.mode = 0o755; i.mtime = 0
        t.addfile(i, io.BytesIO(data))
        for a in sorted(set(applets)):
            if a == "busybox":
                continue
            i = tarfile.TarInfo("bin/" + a); i.type = tarfile.SYMTYPE; i.linkname = "busybox"
            i.mtime = 0
            t.addfile(i)
        for name, text in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
                           ("etc/group", "root:x:0:\nnobody:x:65534:\n")]:
            b = text.encode(); i = tarfile.TarInfo(name); i.size = len(b); i.mode = 0o644; i.mtime = 0
            t.addfile(i, io.BytesIO(b))
    return buf.getvalue()


def blob(t, data):
    digest = hashlib.sha256(data).hexdigest()
    i = tarfile.TarInfo("blobs/sha256/" + digest); i.size = len(data); i.mode = 0o644; i.mtime = 0
    t.addfile(i, io.BytesIO(data))
    return "sha256:" + digest, len(data)


def image(out, ref, layer_data, config):
    with tarfile.open(out, "w") as t:
        ld, ls = blob(t, layer_data)
        cfg = {"architecture": "amd64", "os": "linux", "config": config,
               "rootfs": {"type": "layers", "diff_ids": [ld]},
               "created": "2020-01-01T00:00:00Z"}
        cd, cs = blob(t, json.dumps(cfg).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}
        md, ms = blob(t, json.dumps(manifest).encode())
        index = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
             "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]},
             "platform": {"architecture": "amd64", "os": "linux"}}]}
        for name, obj in [("index.json", index), ("oci-layout", {"imageLayoutVersion": "1.0.0"})]:
            b = json.dumps(obj).encode(); i = tarfile.TarInfo(name); i.size = len(b); i.mtime = 0
            t.addfile(i, io.BytesIO(b))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = layer(BUSYBOX)
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    image(os.path.join(out, "busybox.tar"), "registry.k8s.io/e2e-test-images/busybox:1.36", data,
          {"Env": env, "Cmd": ["sh"]})
    # The sandbox holds the pod's namespaces; it exits on SIGTERM (PID 1 gets no default
    # handlers) and otherwise sleeps.
    image(os.path.join(out, "pause.tar"), "registry.k8s.io/pause:3.10", data,
          {"Env": env, "Entrypoint": ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"]})


if __name__ == "__main__":
    main()
