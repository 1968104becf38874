"""OCI image archives without a registry or a container build tool: layers as tar files
built in memory, and an OCI image layout (`index.json`, `oci-layout`, `blobs/sha256/...`)
that `ctr -n k8s.io images import` loads, several image names sharing one layer blob.
Used by build/build-images.py (the cluster's images) and hack/build-test-images.py."""
import hashlib, io, json, os, subprocess, tarfile, tempfile

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Layer:
    """An uncompressed layer tar with reproducible entries (mtime 0, root-owned)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.names = set()

    def _parents(self, name):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name, mode=0o755):
        name = name.strip("/")
        if not name or name in self.names:
            return
        self._parents(name)
        i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = mode; i.mtime = 0
        self.tar.addfile(i); self.names.add(name)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        if name in self.names:
            return
        self._parents(name)
        i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; i.mtime = 0
        self.tar.addfile(i, io.BytesIO(data)); self.names.add(name)

    def symlink(self, name, target):
        name = name.strip("/")
        if name in self.names:
            return
        self._parents(name)
        i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; i.mtime = 0
        self.tar.addfile(i); self.names.add(name)

    def host_file(self, path, strip=False):
        """`path` from this machine at the same place (symlinks kept as symlinks, their
        targets added too), executables stripped of debug info when asked."""
        if os.path.islink(path):
            target = os.readlink(path)
            self.symlink(path, target)
            self.host_file(os.path.join(os.path.dirname(path), target), strip)
            return
        if path.strip("/") in self.names:
            return
        data = stripped(path) if strip else open(path, "rb").read()
        self.file(path, data, os.stat(path).st_mode & 0o7777)

    def host_executable(self, path, strip=False):
        """An executable with the shared libraries `ldd` finds for it."""
        self.host_file(path, strip)
        for lib in shared_libraries(path):
            self.host_file(lib)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def stripped(path):
    """An executable's bytes without debug info (debug builds shrink tenfold)."""
    with tempfile.NamedTemporaryFile() as tmp:
        if subprocess.run(["objcopy", "--strip-debug", path, tmp.name]).returncode == 0:
            return open(tmp.name, "rb").read()
    return open(path, "rb").read()


def shared_libraries(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def _blob(t, data, written):
    digest = hashlib.sha256(data).hexdigest()
    if digest not in written:
        i = tarfile.TarInfo("blobs/sha256/" + digest); i.size = len(data); i.mode = 0o644; i.mtime = 0
        t.addfile(i, io.BytesIO(data))
        written.add(digest)
    return "sha256:" + digest, len(data)


def write_archive(out, images):
    """`images`: (reference, [layer bytes], image config) triples, written as one OCI
    archive; a layer shared by several images is stored once."""
    written, manifests = set(), []
    with tarfile.open(out + ".tmp", "w") as t:
        for ref, layers, config in images:
            descs = [_blob(t, l, written) for l in layers]
            cfg = {"architecture": "amd64", "os": "linux", "config": config,
                   "rootfs": {"type": "layers", "diff_ids": [d for d, _ in descs]},
                   "created": "2020-01-01T00:00:00Z"}
            cd, cs = _blob(t, json.dumps(cfg).encode(), written)
            manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                                   for d, s in descs]}
            md, ms = _blob(t, json.dumps(manifest).encode(), written)
            manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                              "annotations": {"io.containerd.image.name": ref,
                                              "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]},
                              "platform": {"architecture": "amd64", "os": "linux"}})
        index = {"schemaVersion": 2, "manifests": manifests}
        for name, obj in [("index.json", index), ("oci-layout", {"imageLayoutVersion": "1.0.0"})]:
            b = json.dumps(obj).encode(); i = tarfile.TarInfo(name); i.size = len(b); i.mtime = 0
            t.addfile(i, io.BytesIO(b))
    os.replace(out + ".tmp", out)
