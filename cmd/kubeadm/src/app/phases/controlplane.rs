//! `kubeadm init phase control-plane` and `kubeadm init phase etcd local` (upstream
//! `phases/controlplane/manifests.go` and `phases/etcd/local.go`): static pod manifests
//! in `/etc/kubernetes/manifests` for kube-apiserver, kube-controller-manager,
//! kube-scheduler and stacked etcd — host network, `system-node-critical`, the PKI and
//! kubeconfigs mounted from the host, probes on `/livez` `/readyz` (`/healthz` for
//! etcd), and the flags kubeadm passes that this repository's components implement.

use crate::app::apis::kubeadm::{InitConfig, KUBERNETES_DIR};
use crate::app::util::{etcd, pkiutil};
use serde_json::{Value, json};
use std::path::Path;

/// The etcd image kubeadm v1.35 pins (its tag; the repository is `imageRepository`).
pub const ETCD_TAG: &str = "3.6.5-0";

fn host_path(name: &str, path: &str, kind: &str, read_only: bool) -> (Value, Value) {
    (
        json!({"name": name, "hostPath": {"path": path, "type": kind}}),
        json!({"name": name, "mountPath": path, "readOnly": read_only}),
    )
}

fn probe(
    host: &str,
    path: &str,
    port: &str,
    scheme: &str,
    failures: u32,
    period: u32,
    delay: u32,
) -> Value {
    // A number is a port, a string a container port's name (IntOrString).
    let port = port
        .parse::<u16>()
        .map_or_else(|_| json!(port), |n| json!(n));
    let mut p = json!({"failureThreshold": failures, "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "periodSeconds": period, "timeoutSeconds": 15});
    if delay > 0 {
        p["initialDelaySeconds"] = json!(delay);
    }
    p
}

/// A kubeadm static pod.
fn pod(
    name: &str,
    command: Vec<String>,
    image: String,
    mounts: Vec<(Value, Value)>,
    container: Value,
    cpu: &str,
) -> Value {
    let (volumes, volume_mounts): (Vec<Value>, Vec<Value>) = mounts.into_iter().unzip();
    let mut c = json!({"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "command": command, "resources": {"requests": {"cpu": cpu}}, "volumeMounts": volume_mounts});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system",
            "labels": {"component": name, "tier": "control-plane"}},
        "spec": {"containers": [c], "hostNetwork": true, "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes}})
}

fn flags(pairs: Vec<(&str, String)>) -> Vec<String> {
    let mut v: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("--{k}={v}"))
        .collect();
    v.sort();
    v
}

pub fn apiserver(cfg: &InitConfig) -> Value {
    let pki = &cfg.cluster.certificates_dir;
    let f = |n: &str| format!("{pki}/{n}");
    let ep = &cfg.init.local_api_endpoint;
    let mut args = vec![
        ("advertise-address", ep.advertise_address.clone()),
        ("allow-privileged", "true".into()),
        ("authorization-mode", "Node,RBAC".into()),
        ("client-ca-file", f("ca.crt")),
        ("enable-admission-plugins", "NodeRestriction".into()),
        ("enable-bootstrap-token-auth", "true".into()),
        (
            "kubelet-client-certificate",
            f("apiserver-kubelet-client.crt"),
        ),
        ("kubelet-client-key", f("apiserver-kubelet-client.key")),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
        ("proxy-client-cert-file", f("front-proxy-client.crt")),
        ("proxy-client-key-file", f("front-proxy-client.key")),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        ("requestheader-client-ca-file", f("front-proxy-ca.crt")),
        (
            "requestheader-extra-headers-prefix",
            "X-Remote-Extra-".into(),
        ),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("secure-port", ep.bind_port.to_string()),
        (
            "service-account-issuer",
            format!(
                "https://kubernetes.default.svc.{}",
                cfg.cluster.networking.dns_domain
            ),
        ),
        ("service-account-key-file", f("sa.pub")),
        ("service-account-signing-key-file", f("sa.key")),
        (
            "service-cluster-ip-range",
            cfg.cluster.networking.service_subnet.clone(),
        ),
        ("tls-cert-file", f("apiserver.crt")),
        ("tls-private-key-file", f("apiserver.key")),
    ];
    match &cfg.cluster.etcd.external {
        Some(x) => {
            args.push(("etcd-servers", x.endpoints.join(",")));
            for (k, v) in [
                ("etcd-cafile", &x.ca_file),
                ("etcd-certfile", &x.cert_file),
                ("etcd-keyfile", &x.key_file),
            ] {
                if !v.is_empty() {
                    args.push((k, v.clone()));
                }
            }
        }
        None => {
            args.push(("etcd-servers", "https://127.0.0.1:2379".into()));
            args.push(("etcd-cafile", f("etcd/ca.crt")));
            args.push(("etcd-certfile", f("apiserver-etcd-client.crt")));
            args.push(("etcd-keyfile", f("apiserver-etcd-client.key")));
        }
    }
    let mut command = vec!["kube-apiserver".to_string()];
    command.extend(flags(args));
    let host = &ep.advertise_address;
    let mut p = pod(
        "kube-apiserver",
        command,
        cfg.image("kube-apiserver"),
        vec![
            host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
            host_path("k8s-certs", pki, "DirectoryOrCreate", true),
        ],
        json!({"ports": [{"containerPort": ep.bind_port, "name": "probe-port", "protocol": "TCP"}],
            "livenessProbe": probe(host, "/livez", "probe-port", "HTTPS", 8, 10, 10),
            "readinessProbe": probe(host, "/readyz", "probe-port", "HTTPS", 3, 1, 0),
            "startupProbe": probe(host, "/livez", "probe-port", "HTTPS", 24, 10, 10)}),
        "250m",
    );
    p["metadata"]["annotations"] = json!({"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint":
        format!("{}:{}", ep.advertise_address, ep.bind_port)});
    p
}

pub fn controller_manager(cfg: &InitConfig) -> Value {
    let pki = &cfg.cluster.certificates_dir;
    let f = |n: &str| format!("{pki}/{n}");
    let kubeconfig = format!("{KUBERNETES_DIR}/controller-manager.conf");
    let mut args = vec![
        ("authentication-kubeconfig", kubeconfig.clone()),
        ("authorization-kubeconfig", kubeconfig.clone()),
        ("bind-address", "127.0.0.1".into()),
        ("client-ca-file", f("ca.crt")),
        ("cluster-signing-cert-file", f("ca.crt")),
        ("cluster-signing-key-file", f("ca.key")),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
        ("kubeconfig", kubeconfig.clone()),
        ("leader-elect", "true".into()),
        ("requestheader-client-ca-file", f("front-proxy-ca.crt")),
        ("root-ca-file", f("ca.crt")),
        ("service-account-private-key-file", f("sa.key")),
        (
            "service-cluster-ip-range",
            cfg.cluster.networking.service_subnet.clone(),
        ),
        ("use-service-account-credentials", "true".into()),
    ];
    if !cfg.cluster.networking.pod_subnet.is_empty() {
        args.push(("allocate-node-cidrs", "true".into()));
        args.push(("cluster-cidr", cfg.cluster.networking.pod_subnet.clone()));
    }
    let mut command = vec!["kube-controller-manager".to_string()];
    command.extend(flags(args));
    pod(
        "kube-controller-manager",
        command,
        cfg.image("kube-controller-manager"),
        vec![
            host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
            host_path("k8s-certs", pki, "DirectoryOrCreate", true),
            host_path("kubeconfig", &kubeconfig, "FileOrCreate", true),
        ],
        json!({"livenessProbe": probe("127.0.0.1", "/healthz", "10257", "HTTPS", 8, 10, 10),
            "startupProbe": probe("127.0.0.1", "/healthz", "10257", "HTTPS", 24, 10, 10)}),
        "200m",
    )
}

pub fn scheduler(cfg: &InitConfig) -> Value {
    let kubeconfig = format!("{KUBERNETES_DIR}/scheduler.conf");
    let mut command = vec!["kube-scheduler".to_string()];
    command.extend(flags(vec![
        ("authentication-kubeconfig", kubeconfig.clone()),
        ("authorization-kubeconfig", kubeconfig.clone()),
        ("bind-address", "127.0.0.1".into()),
        ("kubeconfig", kubeconfig.clone()),
        ("leader-elect", "true".into()),
    ]));
    pod(
        "kube-scheduler",
        command,
        cfg.image("kube-scheduler"),
        vec![host_path("kubeconfig", &kubeconfig, "FileOrCreate", true)],
        json!({"livenessProbe": probe("127.0.0.1", "/livez", "10259", "HTTPS", 8, 10, 10),
            "readinessProbe": probe("127.0.0.1", "/readyz", "10259", "HTTPS", 3, 1, 0),
            "startupProbe": probe("127.0.0.1", "/livez", "10259", "HTTPS", 24, 10, 10)}),
        "100m",
    )
}

/// The stacked etcd's image.
pub fn etcd_image(cfg: &InitConfig) -> String {
    format!("{}/etcd:{ETCD_TAG}", cfg.cluster.image_repository)
}

pub fn etcd(cfg: &InitConfig, node: &str) -> Value {
    etcd_member(cfg, node, None)
}

/// The stacked etcd manifest; `initial_cluster` (`name=peerURL,...`, this member
/// included) when the member joins an existing cluster (`--initial-cluster-state=existing`).
pub fn etcd_member(cfg: &InitConfig, node: &str, initial_cluster: Option<&str>) -> Value {
    let pki = &cfg.cluster.certificates_dir;
    let f = |n: &str| format!("{pki}/etcd/{n}");
    let ip = &cfg.init.local_api_endpoint.advertise_address;
    let data_dir = cfg.cluster.etcd.local.clone().unwrap_or_default().data_dir;
    let (client_url, peer_url) = (etcd::client_url(ip), etcd::peer_url(ip));
    let mut command = vec!["etcd".to_string()];
    let mut args = vec![
        ("advertise-client-urls", client_url.clone()),
        ("cert-file", f("server.crt")),
        ("client-cert-auth", "true".into()),
        ("data-dir", data_dir.clone()),
        ("initial-advertise-peer-urls", peer_url.clone()),
        (
            "initial-cluster",
            initial_cluster
                .map(String::from)
                .unwrap_or_else(|| format!("{node}={peer_url}")),
        ),
        ("key-file", f("server.key")),
        (
            "listen-client-urls",
            format!("{},{client_url}", etcd::client_url("127.0.0.1")),
        ),
        ("listen-metrics-urls", "http://127.0.0.1:2381".into()),
        ("listen-peer-urls", peer_url),
        ("name", node.to_string()),
        ("peer-cert-file", f("peer.crt")),
        ("peer-client-cert-auth", "true".into()),
        ("peer-key-file", f("peer.key")),
        ("peer-trusted-ca-file", f("ca.crt")),
        ("snapshot-count", "10000".into()),
        ("trusted-ca-file", f("ca.crt")),
    ];
    if initial_cluster.is_some() {
        args.push(("initial-cluster-state", "existing".into()));
    }
    command.extend(flags(args));
    let mut p = pod(
        "etcd",
        command,
        etcd_image(cfg),
        vec![
            host_path("etcd-data", &data_dir, "DirectoryOrCreate", false),
            host_path(
                "etcd-certs",
                &format!("{pki}/etcd"),
                "DirectoryOrCreate",
                false,
            ),
        ],
        json!({"livenessProbe": probe("127.0.0.1", "/health?exclude=NOSPACE&serializable=true", "2381", "HTTP", 8, 10, 10),
            "startupProbe": probe("127.0.0.1", "/health?serializable=false", "2381", "HTTP", 24, 10, 10)}),
        "100m",
    );
    p["metadata"]["annotations"] = json!({ (etcd::ADVERTISE_CLIENT_URLS): client_url });
    p["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("100Mi");
    p
}

/// Writes one manifest as YAML.
pub fn write(dir: &Path, name: &str, pod: &Value) -> Result<(), String> {
    let yaml = serde_saphyr::to_string(pod).map_err(|e| e.to_string())?;
    pkiutil::write_file(&dir.join(format!("{name}.yaml")), &yaml, 0o600)
}

/// `kubeadm init phase control-plane [all|apiserver|controller-manager|scheduler]`.
pub fn create(cfg: &InitConfig, which: &str, dir: &Path) -> Result<(), String> {
    println!(
        "[control-plane] Using manifest folder {:?}",
        dir.display().to_string()
    );
    let all = [
        ("apiserver", "kube-apiserver", apiserver(cfg)),
        (
            "controller-manager",
            "kube-controller-manager",
            controller_manager(cfg),
        ),
        ("scheduler", "kube-scheduler", scheduler(cfg)),
    ];
    let mut done = false;
    for (phase, name, pod) in all {
        if which == "all" || which == phase {
            println!("[control-plane] Creating static Pod manifest for {name:?}");
            write(dir, name, &pod)?;
            done = true;
        }
    }
    if !done {
        return Err(format!(
            "unknown control-plane phase {which:?}: all, apiserver, controller-manager or scheduler"
        ));
    }
    Ok(())
}

/// `kubeadm init phase etcd local`.
pub fn create_etcd(cfg: &InitConfig, node: &str, dir: &Path) -> Result<(), String> {
    if !cfg.local_etcd() {
        return Err("the etcd local phase needs a local etcd (etcd.external is set)".into());
    }
    println!(
        "[etcd] Creating static Pod manifest for local etcd in {:?}",
        dir.display().to_string()
    );
    write(dir, "etcd", &etcd(cfg, node))
}
