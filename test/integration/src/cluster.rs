//! A whole cluster for end-to-end tests: the control plane (our apiserver,
//! controller-manager and scheduler) in one network namespace that holds the "LAN"
//! bridge 10.210.0.0/24, and each node in a namespace of its own (10.210.0.1x) joined to
//! it by a veth pair, with its own containerd, kubelet and kube-proxy; each node's pod
//! CIDR 10.244.<i>.0/24 is routed to it from the others, so pod-to-pod and
//! pod-to-service traffic crosses nodes for real. The calling thread moves into the
//! control plane's namespace: run it on a current-thread runtime.

use crate::apiserver::TestApiServer;
use crate::component::{TestComponent, TestControllerManager, TestScheduler};
use crate::netns::{NetNs, run};
use crate::node::{TestContainerd, TestKubelet, command_in};
use std::path::PathBuf;
use std::process::{Child, Stdio};

pub const CONTROL_PLANE_IP: &str = "10.210.0.1";
/// The cluster DNS Service's address (`kube-system/kube-dns`).
pub const DNS_IP: &str = "10.0.0.10";

pub struct ClusterNode {
    pub name: String,
    pub ip: String,
    pub kubelet: TestKubelet,
    proxy: Option<Child>,
    pub proxy_log: PathBuf,
    pub containerd: TestContainerd,
    pub ns: NetNs,
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

pub struct TestCluster {
    pub nodes: Vec<ClusterNode>,
    /// Kubeconfigs, tokens and component logs.
    pub dir: tempfile::TempDir,
    dns: Option<Child>,
    pub scheduler: TestComponent,
    pub controller_manager: TestComponent,
    pub apiserver: TestApiServer,
    pub cp: NetNs,
}

fn kubeconfig(dir: &std::path::Path, name: &str, port: u16, token: &str) -> PathBuf {
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://{CONTROL_PLANE_IP}:{port}\n    insecure-skip-tls-verify: true\n  name: c\ncontexts:\n- context: {{cluster: c, user: u}}\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n"
        ),
    )
    .unwrap();
    path
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(mut d) = self.dns.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

impl TestCluster {
    /// `nodes` nodes with kube-proxy in `proxy_mode` (iptables or nftables).
    pub async fn start(nodes: usize, proxy_mode: &str) -> TestCluster {
        Self::start_with_kubelet_args(nodes, proxy_mode, &[]).await
    }

    /// The same with more flags for every kubelet.
    pub async fn start_with_kubelet_args(
        nodes: usize,
        proxy_mode: &str,
        kubelet_args: &[&str],
    ) -> TestCluster {
        let cp = NetNs::new("cp");
        cp.enter();
        run(&["ip", "link", "add", "br0", "type", "bridge"]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{CONTROL_PLANE_IP}/24"),
            "dev",
            "br0",
        ]);
        run(&["ip", "link", "set", "br0", "up"]);
        run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut tokens = String::from(
            "test-admin-token,test-admin,0,system:masters\nproxy-token,system:kube-proxy,p,\n",
        );
        for i in 0..nodes {
            tokens.push_str(&format!(
                "node-{i}-token,system:node:node-{i},n{i},system:nodes\n"
            ));
        }
        let token_file = dir.join("tokens.csv");
        std::fs::write(&token_file, tokens).unwrap();
        let apiserver = TestApiServer::start_with_token(
            None,
            &[
                "--bind-address=0.0.0.0",
                &format!("--advertise-address={CONTROL_PLANE_IP}"),
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                &format!("--token-auth-file={}", token_file.display()),
                "--disable-admission-plugins=ServiceAccount",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ],
            Some("test-admin-token"),
        )
        .await;
        let controller_manager = TestControllerManager::start(&apiserver.kubeconfig(), &[]).await;
        let scheduler = TestScheduler::start(&apiserver.kubeconfig(), &[]).await;
        let proxy_kubeconfig = kubeconfig(&dir, "proxy", apiserver.port, "proxy-token");
        // The DNS add-on on the control plane's address, behind the kube-dns Service.
        let dns = std::process::Command::new(crate::binary("cluster-dns"))
            .arg(format!("--kubeconfig={}", apiserver.kubeconfig().display()))
            .arg(format!("--listen={CONTROL_PLANE_IP}:53"))
            // Tests send nothing outside their namespaces.
            .arg("--forward=none")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dns.log")).unwrap())
            .spawn()
            .unwrap();
        let c = &apiserver.client;
        c.create(
            "/api/v1/namespaces/kube-system/services",
            &serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
                "spec": {"clusterIP": DNS_IP, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}),
        )
        .await;
        c.create(
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
            &serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kube-dns-host", "labels": {"kubernetes.io/service-name": "kube-dns"}},
                "addressType": "IPv4", "endpoints": [{"addresses": [CONTROL_PLANE_IP], "conditions": {"ready": true}}],
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
        )
        .await;
        let mut out = Vec::new();
        for i in 0..nodes {
            let ns = NetNs::new("node");
            let ip = format!("10.210.0.{}", 10 + i);
            let host_end = format!("vn{i}-{}", std::process::id() % 10000);
            run(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns",
                &ns.name,
            ]);
            run(&["ip", "link", "set", &host_end, "master", "br0", "up"]);
            let inside = |args: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", ns.name.as_str()];
                v.extend(args);
                run(&v);
            };
            inside(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            inside(&["ip", "link", "set", "eth0", "up"]);
            inside(&["ip", "route", "add", "default", "via", CONTROL_PLANE_IP]);
            inside(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            // Bridged pod-to-pod replies must pass conntrack (upstream's node requirement).
            inside(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]);
            for j in 0..nodes {
                let via = format!("10.210.0.{}", 10 + j);
                let cidr = format!("10.244.{j}.0/24");
                if j != i {
                    inside(&["ip", "route", "add", &cidr, "via", &via]);
                }
            }
            run(&[
                "ip",
                "route",
                "add",
                &format!("10.244.{i}.0/24"),
                "via",
                &ip,
            ]);
            let name = format!("node-{i}");
            let containerd = TestContainerd::start_with(Some(&ns.name), i as u32).await;
            let kc = kubeconfig(&dir, &name, apiserver.port, &format!("node-{i}-token"));
            let dns_flag = format!("--cluster-dns={DNS_IP}");
            let mut args = vec![dns_flag.as_str(), "--cluster-domain=cluster.local"];
            args.extend(kubelet_args);
            let kubelet =
                TestKubelet::start_with(&kc, &containerd, &name, Some(&ns.name), &ip, &args).await;
            let proxy_log = dir.join(format!("{name}-proxy.log"));
            let proxy = command_in(Some(&ns.name), crate::binary("kube-proxy"))
                .arg(format!("--kubeconfig={}", proxy_kubeconfig.display()))
                .arg(format!("--proxy-mode={proxy_mode}"))
                .arg(format!("--hostname-override={name}"))
                .args([
                    "--cluster-cidr=10.244.0.0/16",
                    "--iptables-min-sync-period=0s",
                ])
                .arg(format!("--healthz-bind-address={ip}:10256"))
                .arg(format!("--metrics-bind-address={ip}:10249"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&proxy_log).unwrap())
                .spawn()
                .unwrap();
            out.push(ClusterNode {
                name,
                ip,
                kubelet,
                proxy: Some(proxy),
                proxy_log,
                containerd,
                ns,
            });
        }
        TestCluster {
            nodes: out,
            dir: tmp,
            dns: Some(dns),
            scheduler,
            controller_manager,
            apiserver,
            cp,
        }
    }

    /// A kubeconfig reaching the apiserver from the nodes' namespaces with `token`.
    pub fn kubeconfig_with_token(&self, name: &str, token: &str) -> PathBuf {
        kubeconfig(self.dir.path(), name, self.apiserver.port, token)
    }

    /// Runs a command inside node `i`'s namespace; returns (ok, stdout+stderr).
    pub fn on_node(&self, i: usize, args: &[&str]) -> (bool, String) {
        let out = command_in(Some(&self.nodes[i].ns.name), args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}
