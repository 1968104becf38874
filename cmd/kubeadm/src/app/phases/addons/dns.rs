//! `kubeadm init phase addon coredns` (upstream `phases/addons/dns/dns.go`): the
//! cluster DNS add-on as upstream kubeadm lays it out — the `coredns` Deployment (two
//! replicas, `system-cluster-critical`, tolerating the control-plane taint) and the
//! `kube-dns` Service at the tenth address of the service subnet, the address every
//! kubelet's `clusterDNS` names — running this repository's `cluster-dns` server, which
//! serves the cluster domain from Services and EndpointSlices and forwards the rest to
//! the node's resolvers. (CoreDNS's Corefile is not read: there is no `coredns`
//! ConfigMap.)

use crate::app::apis::kubeadm::InitConfig;
use crate::app::phases::certs::nth_service_ip;
use crate::app::util::apiclient::{create_or_update, from_json};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::Api;
use serde_json::{Value, json};

pub fn deployment(cfg: &InitConfig) -> Value {
    json!({
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    "containers": [{
                        "name": "coredns",
                        "image": cfg.image("cluster-dns"),
                        "imagePullPolicy": "IfNotPresent",
                        "args": [format!("--cluster-domain={}", cfg.cluster.networking.dns_domain), "--listen=0.0.0.0:53"],
                        "ports": [
                            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                        ],
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": true},
                    }],
                    "dnsPolicy": "Default",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    ],
                },
            },
        },
    })
}

pub fn service(cfg: &InitConfig) -> Result<Value, String> {
    let ip = nth_service_ip(&cfg.cluster.networking.service_subnet, 10)?;
    Ok(json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}},
        "spec": {
            "clusterIP": ip.to_string(),
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    }))
}

pub async fn ensure(client: &kube::Client, cfg: &InitConfig) -> Result<(), String> {
    let ns = "kube-system";
    create_or_update(
        &Api::<ServiceAccount>::namespaced(client.clone(), ns),
        &from_json(json!({"metadata": {"name": "coredns", "namespace": ns}})),
    )
    .await?;
    create_or_update(
        &Api::<ClusterRole>::all(client.clone()),
        &from_json(json!({"metadata": {"name": "system:coredns"},
            "rules": [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ]})),
    )
    .await?;
    create_or_update(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &from_json(json!({"metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}]})),
    )
    .await?;
    create_or_update(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        &from_json(deployment(cfg)),
    )
    .await?;
    // The Service keeps its ClusterIP: replace only when it is not there yet.
    let services = Api::<Service>::namespaced(client.clone(), ns);
    if services
        .get_opt("kube-dns")
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        create_or_update(&services, &from_json(service(cfg)?)).await?;
    }
    println!("[addons] Applied essential addon: CoreDNS");
    Ok(())
}
