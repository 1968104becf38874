//! One module per upstream plugin, named as `--enable-admission-plugins` names it.

pub mod certificates;
pub mod defaults;
pub mod limitranger;
pub mod noderestriction;
pub mod podsecurity;
pub mod priority;
pub mod resourcequota;
pub mod runtimeclass;
pub mod serviceaccount;
pub mod simple;

use apiserver::registry::generic::Registry;
use apiserver::registry::options::ListOptions;
use serde_json::Value;

/// Every object of a registry in a namespace (all namespaces for None), from the watch
/// cache when there is one.
pub(crate) async fn list(reg: &Registry, ns: Option<&str>) -> Vec<Value> {
    match reg.list(ns, &ListOptions::cached()).await {
        Ok(l) => l.items.iter().map(|o| o.value.clone()).collect(),
        Err(e) => {
            tracing::warn!(resource = %reg.strategy.info().resource, error = %e.message, "admission lookup failed");
            Vec::new()
        }
    }
}

/// One object, from the watch cache when there is one, else storage; None when absent.
pub(crate) async fn get(reg: &Registry, ns: Option<&str>, name: &str) -> Option<Value> {
    if let Some(o) = reg.cacher.as_ref().and_then(|c| c.get(&reg.key(ns, name))) {
        return Some(o.value.clone());
    }
    reg.get(ns, name).await.ok()
}
