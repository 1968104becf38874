#!/usr/bin/env python3
"""Builds the cluster's images from this repository's binaries and Debian's packages, as
one OCI archive that `ctr -n k8s.io images import` loads (the images kubeadm's static Pod
manifests and add-ons name; no registry is needed):

  registry.k8s.io/kube-apiserver:VERSION           our binaries in /usr/local/bin, with
  registry.k8s.io/kube-controller-manager:VERSION  the shared libraries they link, in one
  registry.k8s.io/kube-scheduler:VERSION           layer all five images share (kube-proxy
  registry.k8s.io/kube-proxy:VERSION               also needs iptables, nft and conntrack,
  registry.k8s.io/cluster-dns:VERSION              which the layer carries; cluster-network
  registry.k8s.io/cluster-network:VERSION          needs ip)
  registry.k8s.io/metrics-server:VERSION           (cluster/addons/metrics-server)
  registry.k8s.io/csi-hostpath:VERSION             (cluster/addons/csi-hostpath; with
                                                   losetup, mount, blkid, mkfs.ext4,
                                                   resize2fs and, when installed, XFS's)
  registry.k8s.io/etcd:3.6.5-0                     Debian's etcd (etcd-server package; the
                                                   name is the one kubeadm v1.35 pins, the
                                                   binary is whatever Debian ships)
  registry.k8s.io/pause:3.10                       the sandbox image (busybox-static)

Usage: build-images.py OUT_DIR [--bin-dir target/release] [--version v1.35.0]
       -> OUT_DIR/kubernetes-images.tar
"""
import argparse, glob, os, shutil, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "hack"))
import oci  # noqa: E402

COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "cluster-dns",
              "cluster-network", "metrics-server", "csi-hostpath"]
# What kube-proxy runs (iptables and nftables modes, conntrack cleanup) and
# cluster-network runs (ip route).
PROXY_TOOLS = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
               "ip6tables-restore", "nft", "conntrack", "ip"]
# What csi-hostpath runs on the node (loop devices, filesystems, growing them); XFS's
# tools go in when the build machine has them.
CSI_TOOLS = ["losetup", "mount", "umount", "blkid", "mkfs.ext4", "resize2fs"]
CSI_OPTIONAL_TOOLS = ["mkfs.xfs", "xfs_growfs"]
ETCD_REF = "registry.k8s.io/etcd:3.6.5-0"


def base(l):
    for d in ["tmp", "var/run", "run", "proc", "sys", "dev", "etc", "root"]:
        l.dir(d, 0o1777 if d == "tmp" else 0o755)
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    l.file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    l.file("etc/nsswitch.conf", b"hosts: files dns\n")


def components_layer(bin_dir):
    l = oci.Layer()
    base(l)
    for c in COMPONENTS:
        path = os.path.join(bin_dir, c)
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: build the binaries first (cargo build --bins)")
        l.file("usr/local/bin/" + c, oci.stripped(path), 0o755)
        for lib in oci.shared_libraries(path):
            l.host_file(lib)
    for tool in PROXY_TOOLS:
        path = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path is None:
            sys.exit(f"{tool} is missing: install iptables, nftables and conntrack")
        l.host_executable(path)
    for tool in CSI_TOOLS + CSI_OPTIONAL_TOOLS:
        path = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path is None and tool in CSI_TOOLS:
            sys.exit(f"{tool} is missing: install util-linux, mount and e2fsprogs")
        if path is not None:
            l.host_executable(path)
    for module in sorted(glob.glob("/usr/lib/*/xtables/*.so")):
        l.host_executable(module)
    return l.bytes()


def etcd_layer():
    path = shutil.which("etcd")
    if path is None:
        sys.exit("etcd is missing: install etcd-server")
    l = oci.Layer()
    base(l)
    l.dir("var/lib/etcd", 0o700)
    l.file("usr/local/bin/etcd", open(path, "rb").read(), 0o755)
    for lib in oci.shared_libraries(path):
        l.host_file(lib)
    return l.bytes()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--bin-dir", default=os.path.join(HERE, "..", "target", "release"))
    p.add_argument("--version", default="v1.35.0")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    import importlib
    test_images = importlib.import_module("build-test-images")
    env = {"Env": [oci.PATH_ENV]}
    comp = components_layer(a.bin_dir)
    images = [(f"registry.k8s.io/{c}:{a.version}", [comp], dict(env, Entrypoint=[f"/usr/local/bin/{c}"]))
              for c in COMPONENTS]
    images.append((ETCD_REF, [etcd_layer()], dict(env, Entrypoint=["/usr/local/bin/etcd"])))
    images.append((test_images.PAUSE_REF, [test_images.busybox_layer()], test_images.PAUSE_CONFIG))
    oci.write_archive(os.path.join(a.out, "kubernetes-images.tar"), images)


if __name__ == "__main__":
    main()
