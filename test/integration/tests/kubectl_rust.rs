//! Our kubectl where the golden session cannot look: streaming output (`get --watch`)
//! read as it arrives, the discovery cache it shares with upstream's kubectl, and
//! `proxy` answering as upstream's does.

use integration_tests::apiserver::TestApiServer;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ours(s: &TestApiServer, home: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(integration_tests::binary("kubectl"));
    c.arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(args)
        .env("HOME", home);
    c
}

/// Our kubectl run to the end: (exit code, stdout, stderr).
fn output_of(s: &TestApiServer, home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = ours(s, home, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Upstream's kubectl and ours print the same and agree on success.
fn same_as_upstream(s: &TestApiServer, home: &std::path::Path, args: &[&str]) {
    let (ok, up_out, up_err) = s.kubectl(args, None);
    let (code, out, err) = output_of(s, home, args);
    assert_eq!(
        (code == 0, out.as_str(), err.as_str()),
        (ok, up_out.as_str(), up_err.as_str()),
        "{args:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_each_change_as_a_row_in_the_same_columns() {
    let s = TestApiServer::start(None, &[]).await;
    let home = tempfile::tempdir().unwrap();
    s.client
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}}),
        )
        .await;
    let mut child = ours(&s, home.path(), &["get", "configmaps", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let wait_for = |lines: &mut Vec<String>, needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !lines.iter().any(|l: &String| l.starts_with(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => panic!("no line starting {needle:?} in {lines:?}"),
            }
        }
    };
    wait_for(&mut lines, "first ");
    s.client
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second-with-a-longer-name"},
                    "data": {"k": "v"}}),
        )
        .await;
    wait_for(&mut lines, "second-with-a-longer-name ");
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].starts_with("NAME "), "{lines:?}");
    assert!(
        lines[0].contains("DATA") && lines[0].contains("AGE"),
        "{lines:?}"
    );
    // The header is printed once; the new row keeps the columns (DATA under DATA).
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("NAME")).count(),
        1,
        "{lines:?}"
    );
    let row = lines.iter().find(|l| l.starts_with("second")).unwrap();
    let data_col = lines[0].find("DATA").unwrap();
    let row_data = row.find(" 1 ").map(|i| i + 1).unwrap();
    assert!(row_data >= data_col, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_cached_in_upstreams_layout_and_refreshed_for_new_types() {
    let s = TestApiServer::start(None, &[]).await;
    let home = tempfile::tempdir().unwrap();
    let out = ours(&s, home.path(), &["get", "configmaps"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = home
        .path()
        .join(".kube/cache/discovery")
        .join(format!("127.0.0.1_{}", s.port));
    assert!(dir.join("servergroups.json").exists());
    assert!(dir.join("v1/serverresources.json").exists());
    assert!(dir.join("apps/v1/serverresources.json").exists());
    // Upstream's kubectl reads the cache we wrote (no error, same answer).
    let upstream = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(["get", "deploy"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(
        upstream.status.success(),
        "{}",
        String::from_utf8_lossy(&upstream.stderr)
    );
    // A CRD created after the cache was written is found: the miss re-reads discovery.
    s.client
        .create(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced",
                         "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                         "versions": [{"name": "v1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ours(&s, home.path(), &["get", "widgets"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.success() {
            assert_eq!(err.trim(), "No resources found in default namespace.");
            break;
        }
        assert!(Instant::now() < deadline, "widgets never resolved: {err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The interpreter with the official `kubernetes` package (`.ci/run` makes the venv).
fn python() -> String {
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/pyenv/bin/python3"
    );
    if std::path::Path::new(venv).exists() {
        venv.to_string()
    } else {
        "python3".to_string()
    }
}

/// Client-side apply as upstream's: the same three applies (fields, keyed lists such as
/// containers, env, ports and volumes, plain lists, maps, items added and removed), with
/// changes by others in between (`set env`, `label`, `scale`), leave the same objects —
/// `last-applied-configuration` and managed fields included — whether upstream's kubectl
/// or ours applied them, as the official Python client reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sequences_leave_the_same_objects_as_upstream_kubectl() {
    let s = TestApiServer::start(None, &[]).await;
    let home = tempfile::tempdir().unwrap();
    let steps = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/apply-steps");
    for ns in ["upstream", "ours"] {
        let (ok, _, err) = s.kubectl(&["create", "namespace", ns], None);
        assert!(ok, "{err}");
    }
    let read = |ns: &str| {
        let out = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/python/read_objects.py"
            ))
            .arg(s.kubeconfig())
            .arg(ns)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for step in 1..=3 {
        let file = format!("{steps}/{step}.yaml");
        let (ok, up_out, err) = s.kubectl(&["apply", "-n", "upstream", "-f", &file], None);
        assert!(ok, "upstream step {step}: {err}");
        let out = ours(&s, home.path(), &["apply", "-n", "ours", "-f", &file])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ours step {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), up_out, "step {step}");
        let (upstream, ours_seen) = (read("upstream"), read("ours"));
        assert_eq!(ours_seen, upstream, "objects after step {step}");
        if step == 1 {
            // Others change the objects between applies, with upstream's kubectl.
            for ns in ["upstream", "ours"] {
                for args in [
                    vec!["set", "env", "deployment/web", "C=3"],
                    vec!["label", "deployment", "web", "extra=1"],
                    vec!["scale", "deployment", "web", "--replicas=5"],
                    vec!["annotate", "configmap", "settings", "note=kept"],
                ] {
                    let mut a = args.clone();
                    a.extend(["-n", ns]);
                    let (ok, _, err) = s.kubectl(&a, None);
                    assert!(ok, "{a:?}: {err}");
                }
            }
        }
    }
    // The result is what a strategic merge makes of it: C, set by someone else, stays.
    let d: serde_json::Value = serde_json::from_str(&read("ours")).unwrap();
    let sidecar = &d["deployment"]["spec"]["template"]["spec"]["containers"];
    assert_eq!(sidecar.as_array().unwrap().len(), 1, "{sidecar}");
    assert_eq!(sidecar[0]["name"], "sidecar");
}

/// `rollout history` (the overview and one revision's pod template) prints what
/// upstream's prints for revisions our controller-manager made; `rollout undo` goes
/// back to the previous revision and to a given one, as upstream's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_and_undo_as_upstream() {
    use integration_tests::component::TestControllerManager;
    let s = TestApiServer::start(None, &[]).await;
    let _kcm =
        TestControllerManager::start(&s.kubeconfig(), &["--controllers=deployment,replicaset"])
            .await;
    let home = tempfile::tempdir().unwrap();
    let run_ours = |args: &[&str]| output_of(&s, home.path(), args);
    let (ok, _, err) = s.kubectl(
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.k8s.io/pause:3.10",
            "--port=80",
        ],
        None,
    );
    assert!(ok, "{err}");
    let revisions = |n: usize| {
        let c = s.client.clone();
        async move {
            integration_tests::wait_for(
                &format!("{n} revisions"),
                Duration::from_secs(30),
                || async {
                    let l = c
                        .get("/apis/apps/v1/namespaces/default/replicasets")
                        .await
                        .json();
                    (l["items"].as_array().map_or(0, |a| a.len()) >= n).then_some(())
                },
            )
            .await
        }
    };
    revisions(1).await;
    let (ok, _, err) = s.kubectl(
        &[
            "set",
            "image",
            "deployment/web",
            "pause=registry.k8s.io/pause:3.9",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = s.kubectl(
        &[
            "annotate",
            "deployment/web",
            "kubernetes.io/change-cause=image 3.9",
        ],
        None,
    );
    assert!(ok, "{err}");
    revisions(2).await;
    for args in [
        vec!["rollout", "history", "deployment/web"],
        vec!["rollout", "history", "deployment/web", "--revision=1"],
        vec!["rollout", "history", "deployment/web", "--revision=9"],
        vec!["rollout", "history", "deploy", "web", "--revision=2"],
        vec!["rollout", "undo", "deployment/web", "--dry-run=client"],
        vec!["rollout", "undo", "deployment/web", "--to-revision=9"],
        vec!["rollout", "history", "configmap/none"],
    ] {
        same_as_upstream(&s, home.path(), &args);
    }
    // Back to revision 1 (the previous one), then forward to 2 by number.
    let (code, out, err) = run_ours(&["rollout", "undo", "deployment/web"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "deployment.apps/web rolled back\n"),
        "{err}"
    );
    let image = || async {
        let d = s
            .client
            .get("/apis/apps/v1/namespaces/default/deployments/web")
            .await
            .json();
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(image().await, "registry.k8s.io/pause:3.10");
    revisions(2).await;
    // The rolled-back revision becomes revision 3; history agrees with upstream's.
    integration_tests::wait_for("revision 3", Duration::from_secs(30), || async {
        let (_, out, _) = s.kubectl(&["rollout", "history", "deployment/web"], None);
        out.contains("\n3 ").then_some(())
    })
    .await;
    let (_, up_out, _) = s.kubectl(&["rollout", "history", "deployment/web"], None);
    assert_eq!(
        run_ours(&["rollout", "history", "deployment/web"]).1,
        up_out
    );
    let (code, out, err) = run_ours(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "deployment.apps/web rolled back\n"),
        "{err}"
    );
    assert_eq!(image().await, "registry.k8s.io/pause:3.9");
    integration_tests::wait_for("revision 4", Duration::from_secs(30), || async {
        run_ours(&["rollout", "history", "deployment/web"])
            .1
            .contains("\n4 ")
            .then_some(())
    })
    .await;
    // Revision 4 is the template just restored: nothing to do.
    let (code, out, err) = run_ours(&["rollout", "undo", "deployment/web", "--to-revision=4"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "deployment.apps/web skipped rollback (current template already matches revision 4)\n"
        ),
        "{err}"
    );
}

/// The script `completion bash` prints completes in a real bash: commands, resource
/// types and object names, asking the binary through `__completeNoDesc`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_completion_script_completes_commands_types_and_names() {
    let s = TestApiServer::start(None, &[]).await;
    let home = tempfile::tempdir().unwrap();
    s.client
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}),
        )
        .await;
    let bin = integration_tests::binary("kubectl");
    let complete = |line: &[&str]| -> String {
        let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
        let script = format!(
            "source <('{bin}' completion bash)\nCOMP_WORDS=('{bin}' {})\nCOMP_CWORD={}\n__kubectl_complete\necho \"${{COMPREPLY[*]}}\"",
            words.join(" "),
            line.len(),
            bin = bin.display()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("HOME", home.path())
            .env("KUBECONFIG", s.kubeconfig())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete(&["ge"]), "get");
    assert_eq!(
        complete(&["get", "configm"]),
        "configmaps",
        "resource types come from discovery"
    );
    assert_eq!(complete(&["get", "configmaps", "sett"]), "settings");
    assert_eq!(complete(&["get", "--show-l"]), "--show-labels");
    assert_eq!(complete(&["completion", "z"]), "zsh");
}

/// DaemonSets roll back through their ControllerRevisions, as upstream's rollbacker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_undo_restores_a_controller_revision() {
    use integration_tests::component::TestControllerManager;
    let s = TestApiServer::start(None, &[]).await;
    let _kcm = TestControllerManager::start(&s.kubeconfig(), &["--controllers=daemonset"]).await;
    let home = tempfile::tempdir().unwrap();
    let run_ours = |args: &[&str]| output_of(&s, home.path(), args);
    s.client
        .create(
            "/apis/apps/v1/namespaces/default/daemonsets",
            &json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"containers": [{"name": "a", "image": "registry.k8s.io/pause:3.10"}]}}}}),
        )
        .await;
    let revisions = |n: usize| {
        let c = s.client.clone();
        async move {
            integration_tests::wait_for(
                &format!("{n} controller revisions"),
                Duration::from_secs(30),
                || async {
                    let l = c
                        .get("/apis/apps/v1/namespaces/default/controllerrevisions")
                        .await
                        .json();
                    (l["items"].as_array().map_or(0, |a| a.len()) >= n).then_some(())
                },
            )
            .await
        }
    };
    revisions(1).await;
    let (code, _, err) = run_ours(&["rollout", "undo", "daemonset/agent"]);
    assert_eq!(code, 1);
    assert_eq!(err, "error: no last revision to roll back to\n");
    let (ok, _, err) = s.kubectl(
        &[
            "set",
            "image",
            "daemonset/agent",
            "a=registry.k8s.io/pause:3.9",
        ],
        None,
    );
    assert!(ok, "{err}");
    revisions(2).await;
    for args in [
        vec!["rollout", "history", "daemonset/agent"],
        vec!["rollout", "history", "daemonset/agent", "--revision=1"],
        vec!["rollout", "undo", "daemonset/agent", "--dry-run=client"],
        vec!["rollout", "undo", "daemonset/agent", "--to-revision=9"],
    ] {
        same_as_upstream(&s, home.path(), &args);
    }
    let (code, out, err) = run_ours(&["rollout", "undo", "daemonset/agent"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "daemonset.apps/agent rolled back\n"),
        "{err}"
    );
    let ds = s
        .client
        .get("/apis/apps/v1/namespaces/default/daemonsets/agent")
        .await
        .json();
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.10"
    );
    // The restored revision is renumbered the newest (3); undoing to it changes nothing.
    integration_tests::wait_for("revision 3", Duration::from_secs(30), || async {
        let l = s
            .client
            .get("/apis/apps/v1/namespaces/default/controllerrevisions")
            .await
            .json();
        l["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["revision"] == 3))
            .then_some(())
    })
    .await;
    let (code, out, _) = run_ours(&["rollout", "undo", "daemonset/agent", "--to-revision=3"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "daemonset.apps/agent skipped rollback (current template already matches revision 3)\n"
        )
    );
}

/// `kubectl proxy --port=0`, running until dropped; its address.
struct Proxy {
    child: std::process::Child,
    addr: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_proxy(mut cmd: Command) -> Proxy {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("Starting to serve on ")
        .unwrap_or_else(|| panic!("proxy said {line:?}"))
        .to_string();
    Proxy { child, addr }
}

/// One HTTP/1.1 request with this Host header: (status, head and body as text).
fn http_get(addr: &str, host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_filters_and_forwards_as_upstreams_does() {
    let s = TestApiServer::start(None, &[]).await;
    let home = tempfile::tempdir().unwrap();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("hello.txt"), "static hello\n").unwrap();
    let www_flag = format!("--www={}", www.path().display());
    let mut upstream_cmd = Command::new("kubectl");
    upstream_cmd
        .arg(format!("--kubeconfig={}", s.kubeconfig().display()))
        .args(["proxy", "--port=0", &www_flag])
        .env("HOME", home.path());
    let upstream = start_proxy(upstream_cmd);
    let theirs = start_proxy(ours(&s, home.path(), &["proxy", "--port=0", &www_flag]));
    let prefixed = start_proxy(ours(
        &s,
        home.path(),
        &[
            "proxy",
            "--port=0",
            "--api-prefix=/k8s",
            "--reject-methods=POST",
        ],
    ));
    let ns = "/api/v1/namespaces/default";
    // The same answers from both proxies: forwarded, filtered, static, not found.
    for (host, path) in [
        ("localhost", ns),
        (
            "127.0.0.1",
            "/api/v1/namespaces/default/pods/p/exec?command=ls",
        ),
        ("evil.example.com", ns),
        ("localhost", "/static/hello.txt"),
        ("localhost", "/static/missing.txt"),
    ] {
        let (want, want_text) = http_get(&upstream.addr, host, path);
        let (got, got_text) = http_get(&theirs.addr, host, path);
        assert_eq!(got, want, "{host} {path}:\n{got_text}\n---\n{want_text}");
        let body = |t: &str| t.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        if want != 200 || path.starts_with("/static") {
            assert_eq!(body(&got_text), body(&want_text), "{host} {path}");
        } else {
            assert!(got_text.contains("\"kind\":\"Namespace\""), "{got_text}");
        }
    }
    // A prefix outside /api is stripped before forwarding.
    let (code, text) = http_get(&prefixed.addr, "localhost", &format!("/k8s{ns}"));
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("\"name\":\"default\""), "{text}");
    assert_eq!(http_get(&prefixed.addr, "localhost", ns).0, 404);
    // A watch streams through: from the list's resourceVersion, the event for a
    // ConfigMap created after it (whenever the watch connects).
    let (ok, rv, err) = s.kubectl(
        &[
            "get",
            "configmaps",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = s.kubectl(&["create", "configmap", "through-proxy"], None);
    assert!(ok, "{err}");
    let addr = theirs.addr.clone();
    let watcher = std::thread::spawn(move || {
        http_get(
            &addr,
            "localhost",
            &format!(
                "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=3&resourceVersion={}",
                rv.trim()
            ),
        )
    });
    let (code, text) = watcher.join().unwrap();
    assert_eq!(code, 200);
    assert!(
        text.contains("\"type\":\"ADDED\"") && text.contains("through-proxy"),
        "{text}"
    );
}
