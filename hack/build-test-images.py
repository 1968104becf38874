#!/usr/bin/env python3
"""Builds the OCI images the node tests run, from Debian's busybox-static, as OCI archives
that `ctr -n k8s.io images import` loads (no registry is reachable from the test machines).

  busybox:   registry.k8s.io/e2e-test-images/busybox:1.36  (/bin/busybox + applet links)
  pause:     registry.k8s.io/pause:3.10                     (the sandbox image)

Usage: build-test-images.py OUT_DIR   -> OUT_DIR/busybox.tar, OUT_DIR/pause.tar
"""
import os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
import oci  # noqa: E402

BUSYBOX = "/bin/busybox"
BUSYBOX_REF = "registry.k8s.io/e2e-test-images/busybox:1.36"
PAUSE_REF = "registry.k8s.io/pause:3.10"


def busybox_layer(busybox_bin=BUSYBOX):
    """busybox, its applets as symlinks, and the usual dirs."""
    applets = subprocess.run([busybox_bin, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    l = oci.Layer()
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "usr", "usr/bin"]:
        l.dir(d, 0o1777 if d == "tmp" else 0o755)
    l.file("bin/busybox", open(busybox_bin, "rb").read(), 0o755)
    for a in sorted(set(applets)):
        if a != "busybox":
            l.symlink("bin/" + a, "busybox")
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    l.file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    return l.bytes()


# The sandbox holds the pod's namespaces; it exits on SIGTERM (PID 1 gets no default
# handlers) and otherwise sleeps.
PAUSE_CONFIG = {"Env": [oci.PATH_ENV],
                "Entrypoint": ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"]}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    data = busybox_layer()
    oci.write_archive(os.path.join(out, "busybox.tar"),
                      [(BUSYBOX_REF, [data], {"Env": [oci.PATH_ENV], "Cmd": ["sh"]})])
    oci.write_archive(os.path.join(out, "pause.tar"), [(PAUSE_REF, [data], PAUSE_CONFIG)])


if __name__ == "__main__":
    main()
