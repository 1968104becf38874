#!/usr/bin/env python3
"""kubectl speed, ours against upstream's, side by side in one run: wall time (median of
N runs) and peak RSS of `version --client`, `get pods` over 100 pods, and `apply -f` of
20 objects (unchanged, the steady state of a deploy pipeline), against one kube-apiserver
(ours, embedded store) on loopback. Run through hack/bench-kubectl.sh, which builds the
release binaries.

  bench-kubectl.py --apiserver target/release/kube-apiserver --ours target/release/kubectl \
      [--upstream kubectl] [--runs 15]
"""
import argparse, os, shutil, statistics, subprocess, tempfile, time, socket


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def measure(argv, env, stdin=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if stdin:
        p.stdin.write(stdin.encode())
        p.stdin.close()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("%s failed: %s" % (" ".join(argv), err))
    return wall, usage.ru_maxrss  # KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--apiserver", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--upstream", default=shutil.which("kubectl"))
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-kubectl-")
    port = free_port()
    with open(os.path.join(work, "tokens.csv"), "w") as f:
        f.write("bench-token,bench,0,system:masters\n")
    server = subprocess.Popen([a.apiserver, "--secure-port=%d" % port, "--bind-address=127.0.0.1",
                               "--cert-dir=" + os.path.join(work, "certs"), "--data-dir=" + os.path.join(work, "data"),
                               "--token-auth-file=" + os.path.join(work, "tokens.csv"),
                               "--disable-admission-plugins=ServiceAccount"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "apiserver.log"), "w"))
    try:
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:%d\n"
                    "    certificate-authority: %s\n  name: b\ncontexts:\n- context: {cluster: b, user: u}\n  name: b\n"
                    "current-context: b\nusers:\n- name: u\n  user:\n    token: bench-token\n"
                    % (port, os.path.join(work, "certs", "apiserver.crt")))
        deadline = time.time() + 30
        env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=work)
        while subprocess.run([a.upstream, "get", "--raw", "/readyz"], env=env, capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise SystemExit("apiserver not ready")
            time.sleep(0.2)
        pods = "".join("---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d, labels: {app: bench}}\n"
                       "spec: {containers: [{name: c, image: registry.example/app:1}]}\n" % i for i in range(100))
        subprocess.run([a.upstream, "create", "-f", "-"], input=pods.encode(), env=env, check=True, capture_output=True)
        cms = os.path.join(work, "cms.yaml")
        with open(cms, "w") as f:
            f.write("".join("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm%d}\ndata: {k: v%d}\n" % (i, i)
                            for i in range(20)))
        cases = [("version --client", ["version", "--client"]),
                 ("get pods (100 pods)", ["get", "pods"]),
                 ("apply -f (20 objects)", ["apply", "-f", cms])]
        print("| command | upstream kubectl wall (median) | ours wall (median) | upstream peak RSS | ours peak RSS |")
        print("|---|---|---|---|---|")
        for name, argv in cases:
            row = []
            for binary in (a.upstream, a.ours):
                # Warm the discovery cache and the apply state once, then measure.
                measure([binary] + argv, env)
                samples = [measure([binary] + argv, env) for _ in range(a.runs)]
                row.append((statistics.median(w for w, _ in samples), max(r for _, r in samples)))
            (uw, ur), (ow, orss) = row
            print("| `%s` | %.1f ms | %.1f ms (%.0f%%) | %.1f MiB | %.1f MiB |"
                  % (name, uw * 1000, ow * 1000, 100 * ow / uw, ur / 1024, orss / 1024))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
