//! The apiserver's own objects (upstream's bootstrap controller and system namespaces
//! post-start hooks): the system namespaces, and the `default/kubernetes` Service with
//! Endpoints pointing at this server.

use crate::config::Config;
use crate::reconcilers::LeaseReconciler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the object unless one of that name exists (allocations happen only once).
async fn ensure(reg: &Registry, ns: Option<&str>, obj: Value) -> Result<(), String> {
    match reg.get(ns, meta::name(&obj)).await {
        Ok(_) => return Ok(()),
        Err(e) if e.code != 404 => return Err(e.message),
        Err(_) => {}
    }
    let (obj, _) = reg.strategy.decode(obj).map_err(|e| e.message)?;
    match reg.create(ns, obj, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e.message),
    }
}

/// Creates the object or replaces its `field` (what this server owns) with the desired one.
async fn overwrite(reg: &Registry, desired: Value, field: &str) -> Result<(), String> {
    let ns = desired["metadata"]["namespace"].as_str().map(String::from);
    let name = meta::name(&desired).to_string();
    ensure(reg, ns.as_deref(), desired.clone()).await?;
    let (desired, _) = reg.strategy.decode(desired).map_err(|e| e.message)?;
    reg.guaranteed_update(ns.as_deref(), &name, Part::Main, false, &mut |cur| {
        let mut next = match cur {
            Some(c) => c.clone(),
            None => desired.clone(),
        };
        next[field] = desired[field].clone();
        meta::meta_mut(&mut next).remove("resourceVersion");
        Ok(next)
    })
    .await
    .map_err(|e| e.message)?;
    Ok(())
}

/// `kube-system/extension-apiserver-authentication` (upstream's cluster authentication
/// trust controller): the CAs and front-proxy settings aggregated API servers and
/// webhooks read to authenticate requests the same way this server does.
fn authentication_trust(cfg: &Config) -> Result<Value, String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let mut data = serde_json::Map::new();
    if let Some(ca) = &cfg.client_ca_file {
        data.insert("client-ca-file".into(), json!(read(ca)?));
    }
    let rh = &cfg.request_header;
    if let Some(ca) = &rh.client_ca_file {
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        data.insert("requestheader-client-ca-file".into(), json!(read(ca)?));
        data.insert(
            "requestheader-allowed-names".into(),
            json!(list(&rh.allowed_names)),
        );
        data.insert(
            "requestheader-username-headers".into(),
            json!(list(&rh.username_headers)),
        );
        data.insert(
            "requestheader-uid-headers".into(),
            json!(list(&rh.uid_headers)),
        );
        data.insert(
            "requestheader-group-headers".into(),
            json!(list(&rh.group_headers)),
        );
        data.insert(
            "requestheader-extra-headers-prefix".into(),
            json!(list(&rh.extra_headers_prefix)),
        );
    }
    Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": data}))
}

async fn reconcile(
    regs: &HashMap<String, Arc<Registry>>,
    cfg: &Config,
    backend: &Arc<dyn apiserver::storage::interface::Backend>,
) -> Result<(), String> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            &regs["namespaces"],
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for pc in registry::scheduling::priorityclass::system_classes() {
        ensure(&regs["priorityclasses"], None, pc).await?;
    }
    let policy = registry::rbac::bootstrappolicy::objects()
        .into_iter()
        .chain(registry::rbac::component_roles::objects())
        .chain(registry::rbac::controller_roles::objects());
    for (resource, obj) in policy {
        let ns = obj["metadata"]["namespace"].as_str().map(String::from);
        ensure(&regs[resource], ns.as_deref(), obj).await?;
    }
    let flowcontrol = registry::flowcontrol::mandatory_objects()
        .into_iter()
        .chain(registry::flowcontrol::suggested_objects());
    for (resource, obj) in flowcontrol {
        ensure(&regs[resource], None, obj).await?;
    }
    let cidr = registry::core::service::ipallocator::Cidr::parse(&cfg.service_cluster_ip_range)?;
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": cidr.nth(1).to_string(), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.secure_port}], "sessionAffinity": "None", "type": "ClusterIP"}
    });
    ensure(&regs["services"], Some("default"), svc).await?;
    // The Endpoints and EndpointSlice exist; their addresses are the endpoint
    // reconciler's to keep (`crate::reconcilers`), unless it is `none`.
    let eps = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": []});
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": if cfg.advertise_ip().is_ipv6() { "IPv6" } else { "IPv4" },
        "endpoints": [],
        "ports": [{"name": "https", "port": cfg.secure_port, "protocol": "TCP"}]});
    if let Some(lease) = LeaseReconciler::for_config(backend, regs, cfg) {
        ensure(&regs["endpoints"], Some("default"), eps).await?;
        if let Some(reg) = regs.get("endpointslices") {
            ensure(reg, Some("default"), slice).await?;
        }
        lease.reconcile().await?;
    }
    overwrite(&regs["configmaps"], authentication_trust(cfg)?, "data").await?;
    // Upstream's legacy token tracking controller: the day from which this cluster
    // records the use of legacy (Secret-based) service-account tokens.
    let since = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let tracking = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-apiserver-legacy-service-account-token-tracking", "namespace": "kube-system"},
        "data": {"since": since}});
    ensure(&regs["configmaps"], Some("kube-system"), tracking).await?;
    Ok(())
}

/// Retries until the bootstrap objects exist, then marks the readiness flags.
pub async fn run(
    regs: HashMap<String, Arc<Registry>>,
    cfg: Config,
    backend: Arc<dyn apiserver::storage::interface::Backend>,
    done: Arc<AtomicBool>,
    caches_synced: Arc<AtomicBool>,
    lease: Option<Arc<LeaseReconciler>>,
) {
    loop {
        match reconcile(&regs, &cfg, &backend).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "bootstrap objects not created yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    tracing::info!("bootstrap objects in place");
    tokio::spawn(
        crate::apiserver_identity::IdentityLease::new(
            regs["leases"].clone(),
            component_base::hostname(),
            &uuid::Uuid::new_v4().to_string(),
        )
        .run(),
    );
    if let Some(lease) = lease {
        tokio::spawn(lease.run());
    }
    // The caches are in sync once each answers a read at the current revision.
    for reg in regs.values() {
        if let Some(c) = &reg.cacher {
            let filter = apiserver::storage::cacher::Filter {
                prefix: reg.store.prefix.clone(),
                ..Default::default()
            };
            while c.list(&filter, None).await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    caches_synced.store(true, Ordering::SeqCst);
}
