//! The apiserver's own objects (upstream's bootstrap controller and system namespaces
//! post-start hooks): the system namespaces, and the `default/kubernetes` Service with
//! Endpoints pointing at this server.

use crate::config::Config;
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

async fn reconcile(regs: &HashMap<String, Arc<Registry>>, cfg: &Config) -> Result<(), String> {
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
        .chain(registry::rbac::component_roles::objects());
    for (resource, obj) in policy {
        ensure(&regs[resource], None, obj).await?;
    }
    for (resource, obj) in registry::flowcontrol::mandatory_objects() {
        ensure(&regs[resource], None, obj).await?;
    }
    let cidr = registry::core::service::ipallocator::Cidr::parse(&cfg.service_cluster_ip_range)?;
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": cidr.nth(1).to_string(), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.secure_port}], "sessionAffinity": "None", "type": "ClusterIP"}
    });
    ensure(&regs["services"], Some("default"), svc).await?;
    let subsets = json!([{"addresses": [{"ip": cfg.advertise_ip().to_string()}], "ports": [{"name": "https", "port": cfg.secure_port, "protocol": "TCP"}]}]);
    let eps = &regs["endpoints"];
    let desired = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": subsets});
    let (desired, _) = eps.strategy.decode(desired).map_err(|e| e.message)?;
    eps.guaranteed_update(
        Some("default"),
        "kubernetes",
        Part::Main,
        false,
        &mut |cur| {
            let mut next = match cur {
                Some(c) => c.clone(),
                None => desired.clone(),
            };
            next["subsets"] = desired["subsets"].clone();
            meta::meta_mut(&mut next).remove("resourceVersion");
            Ok(next)
        },
    )
    .await
    .map_err(|e| e.message)?;
    Ok(())
}

/// Retries until the bootstrap objects exist, then marks the readiness flags.
pub async fn run(
    regs: HashMap<String, Arc<Registry>>,
    cfg: Config,
    done: Arc<AtomicBool>,
    caches_synced: Arc<AtomicBool>,
) {
    loop {
        match reconcile(&regs, &cfg).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "bootstrap objects not created yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    tracing::info!("bootstrap objects in place");
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
