#!/usr/bin/env python3
"""The kubectl golden comparison: one scripted session run with upstream's kubectl and
with ours against the same apiserver, in lockstep (command i with upstream, then with
ours), each session in its own HOME and namespace. Outputs are compared after masking
what legitimately differs (the session marker qa/qb, UIDs, resourceVersions,
timestamps); everything else must be byte for byte the same: stdout, stderr and the
exit code.

  kubectl-golden.py --server URL --token T --upstream KUBECTL --ours KUBECTL \
      [--script test/integration/testdata/kubectl-golden.txt] [--report FILE]

Script format: one kubectl command line per line (without "kubectl"), shell-quoted;
`{S}` is the session marker; `@env NAME=VALUE ... args` sets environment variables for
that command (a scripted $EDITOR for `edit`). `{HTTP}` is the URL of a local
HTTP server on 127.0.0.1 serving the session's working directory (`-f` URLs). A line ending in ` <<` takes the following lines up to a
line `<<` as stdin. `@file NAME` ... `@end` writes a file into the session's working
directory. `#` starts a comment.
"""
import argparse, os, re, shlex, shutil, subprocess, sys, json, time

MASKS = [
    (re.compile(r"\bq[ab]\b"), "qX"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UID"),
    (re.compile(r'(resourceVersion"?:\s*)"\d+"'), r'\1"RV"'),
    # Go's %v of a map (go-template errors print the object that way).
    (re.compile(r"(\bresourceVersion:)\d+\b"), r"\1RV"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "TIME"),
    # describe's RFC 1123 times (the two sessions create their objects seconds apart).
    (re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"), "RFC1123TIME"),
    (re.compile(r"(?<![\w.-])\d{1,3}s(?![\w.-])"), "AGE"),
    (re.compile(r"kubectl-edit-[0-9a-z-]+\.yaml"), "kubectl-edit-N.yaml"),
    # kubectl debug's generated pod and container names (five random characters).
    (re.compile(r"\b((?:node-)?debugger-(?:[A-Za-z0-9.-]+-)?)[bcdfghjklmnpqrstvwxz2456789]{5}\b"), r"\1XXXXX"),
    # kubectl diff's temporary directories and diff's file times.
    (re.compile(r"/(LIVE|MERGED)-\d+/"), r"/\1-N/"),
    (re.compile(r"\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4}"), "\tFILETIME"),
    # klog's line header (severity, date, time, pid).
    (re.compile(r"(?m)^([IWE])\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ "), r"\1KLOG "),
]


def mask(text):
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text


def parse(path):
    steps, files = [], []
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("@file "):
            name, body = line[6:].strip(), []
            while lines[i] != "@end":
                body.append(lines[i])
                i += 1
            i += 1
            steps.append(("file", name, "\n".join(body) + "\n"))
            continue
        stdin = None
        if line.endswith(" <<"):
            line, body = line[:-3], []
            while lines[i] != "<<":
                body.append(lines[i])
                i += 1
            i += 1
            stdin = "\n".join(body) + "\n"
        steps.append(("cmd", line, stdin))
    return steps


def session_env(root, marker, server, token):
    home = os.path.join(root, "golden-" + marker)
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(os.path.join(home, ".kube"))
    with open(os.path.join(home, ".kube", "config"), "w") as f:
        f.write(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: %s\n    insecure-skip-tls-verify: true\n  name: golden\n"
            "contexts:\n- context:\n    cluster: golden\n    namespace: golden-%s\n    user: admin\n  name: golden\n"
            "current-context: golden\nusers:\n- name: admin\n  user:\n    token: %s\n" % (server, marker, token)
        )
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBECACHEDIR", "EDITOR", "KUBE_EDITOR")}
    env["HOME"] = home
    return home, env


HTTP_ROOT = None


def serve_workdir(workdir):
    """A local HTTP server over the work directory; returns its base URL."""
    import functools, http.server, threading
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=workdir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % server.server_address[1]


def run(binary, line, stdin, home, env, marker):
    cmd = line.replace("{S}", marker).replace("{HTTP}", "%s/golden-%s" % (HTTP_ROOT, marker))
    words = shlex.split(cmd)
    # `@env NAME=VALUE ... args`: environment for this command alone ($EDITOR for edit).
    if words and words[0] == "@env":
        env = dict(env)
        words = words[1:]
        while words and "=" in words[0] and not words[0].startswith("-"):
            k, v = words.pop(0).split("=", 1)
            env[k] = v
    try:
        p = subprocess.run([binary] + words, input=(stdin or "").replace("{S}", marker),
                           capture_output=True, text=True, cwd=home, env=env, timeout=60)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return -1, "", "timed out"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--script", default=os.path.join(os.path.dirname(__file__), "..", "test", "integration", "testdata", "kubectl-golden.txt"))
    ap.add_argument("--workdir", default="/tmp/kubectl-golden")
    ap.add_argument("--report")
    ap.add_argument("--json")
    args = ap.parse_args()
    steps = parse(args.script)
    # Absolute paths: steps may set their own PATH (`plugin list`).
    resolve = lambda b: shutil.which(b) or os.path.abspath(b)
    sessions = [(resolve(args.upstream), "qa"), (resolve(args.ours), "qb")]
    homes = {m: session_env(args.workdir, m, args.server, args.token) for _, m in sessions}
    global HTTP_ROOT
    HTTP_ROOT = serve_workdir(args.workdir)
    results = []
    for step in steps:
        if step[0] == "file":
            for _, m in sessions:
                path = os.path.join(homes[m][0], step[1])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(step[2].replace("{S}", m))
            continue
        _, line, stdin = step
        outs, took = [], []
        for b, m in sessions:
            t0 = time.monotonic()
            outs.append(run(b, line, stdin, homes[m][0], homes[m][1], m))
            took.append(time.monotonic() - t0)
        (c1, o1, e1), (c2, o2, e2) = outs
        same = c1 == c2 and mask(o1) == mask(o2) and mask(e1) == mask(e2)
        results.append({"command": line, "same": same, "upstream": [c1, mask(o1), mask(e1)], "ours": [c2, mask(o2), mask(e2)],
                        "seconds": took})
    matched = sum(r["same"] for r in results)
    print("%d of %d commands match exactly" % (matched, len(results)))
    slow = sorted(results, key=lambda r: -max(r["seconds"]))[:3]
    print("slowest: " + "; ".join("%s (upstream %.1fs, ours %.1fs)" % (r["command"], *r["seconds"]) for r in slow))
    report = []
    for r in results:
        if r["same"]:
            continue
        report.append("## kubectl %s\n" % r["command"])
        for side in ("upstream", "ours"):
            c, o, e = r[side]
            report.append("%s (exit %d):\n```\n%s%s```\n" % (side, c, o, ("--- stderr\n" + e) if e else ""))
    text = "\n".join(report)
    if args.report:
        with open(args.report, "w") as f:
            f.write("%d of %d commands match exactly\n\n%s" % (matched, len(results), text))
    else:
        print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matched": matched, "total": len(results), "differ": [r["command"] for r in results if not r["same"]]}, f, indent=1)


if __name__ == "__main__":
    main()
