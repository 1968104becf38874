//! The admission chain `--enable-admission-plugins` / `--disable-admission-plugins` ask
//! for, built over the apiserver's registries.

use crate::config::Config;
use apiserver::admission::namespace_lifecycle::NamespaceLifecycle;
use apiserver::admission::plugin::{policy, webhook};
use apiserver::admission::{Chain, Plugin, select};
use apiserver::authorization::rbac::Rbac;
use apiserver::endpoints::ApiServer;
use apiserver::registry::generic::Registry;
use plugin::admission::{
    defaults, limitranger, noderestriction, podsecurity, priority, resourcequota, runtimeclass,
    serviceaccount,
};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

/// Plugins upstream knows; those not built here yet are accepted and logged.
const KNOWN: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "ClusterTrustBundleAttest",
    "DefaultIngressClass",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "NamespaceLifecycle",
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "PodNodeSelector",
    "PodSecurity",
    "PodTolerationRestriction",
    "Priority",
    "ResourceQuota",
    "RuntimeClass",
    "ServiceAccount",
    "StorageObjectInUseProtection",
    "TaintNodesByCondition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// Upstream's recommended order of every known plugin (defaults among them).
fn ordered() -> Vec<&'static str> {
    let defaults = apiserver::admission::DEFAULT_ORDER;
    let rest = KNOWN.iter().filter(|n| !defaults.contains(n));
    defaults.iter().chain(rest).copied().collect()
}

pub fn chain(
    cfg: &Config,
    regs: &HashMap<String, Arc<Registry>>,
    rbac: Option<&Arc<Rbac>>,
    served: Arc<OnceLock<Weak<ApiServer>>>,
) -> Result<Chain, String> {
    let r = |name: &str| regs[name].clone();
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    for name in select(
        &ordered(),
        &cfg.enable_admission_plugins,
        &cfg.disable_admission_plugins,
    )? {
        match name.as_str() {
            "NamespaceLifecycle" => plugins.push(Arc::new(NamespaceLifecycle {
                namespaces: r("namespaces"),
            })),
            "PodSecurity" => plugins.push(Arc::new(podsecurity::PodSecurity {
                namespaces: r("namespaces"),
                pods: r("pods"),
            })),
            "LimitRanger" => plugins.push(Arc::new(limitranger::LimitRanger {
                limitranges: r("limitranges"),
            })),
            "NodeRestriction" => plugins.push(Arc::new(noderestriction::NodeRestriction {
                pods: r("pods"),
            })),
            "TaintNodesByCondition" => plugins.push(Arc::new(defaults::TaintNodesByCondition)),
            "Priority" => plugins.push(Arc::new(priority::Priority {
                classes: r("priorityclasses"),
            })),
            "DefaultTolerationSeconds" => {
                plugins.push(Arc::new(defaults::DefaultTolerationSeconds {
                    seconds: 300,
                }))
            }
            "DefaultStorageClass" => plugins.push(Arc::new(defaults::DefaultStorageClass {
                classes: r("storageclasses"),
            })),
            "StorageObjectInUseProtection" => {
                plugins.push(Arc::new(defaults::StorageObjectInUseProtection))
            }
            "RuntimeClass" => plugins.push(Arc::new(runtimeclass::RuntimeClass {
                classes: r("runtimeclasses"),
            })),
            "DefaultIngressClass" => plugins.push(Arc::new(defaults::DefaultIngressClass {
                classes: r("ingressclasses"),
            })),
            "ServiceAccount" => plugins.push(Arc::new(serviceaccount::ServiceAccount {
                serviceaccounts: r("serviceaccounts"),
            })),
            "ResourceQuota" => plugins.push(Arc::new(resourcequota::ResourceQuota {
                quotas: r("resourcequotas"),
            })),
            "MutatingAdmissionWebhook" => plugins.push(Arc::new(
                webhook::mutating::MutatingWebhook(webhook::Source {
                    configurations: r("mutatingwebhookconfigurations"),
                    namespaces: r("namespaces"),
                    services: r("services"),
                }),
            )),
            "ValidatingAdmissionWebhook" => plugins.push(Arc::new(
                webhook::validating::ValidatingWebhook(webhook::Source {
                    configurations: r("validatingwebhookconfigurations"),
                    namespaces: r("namespaces"),
                    services: r("services"),
                }),
            )),
            "ValidatingAdmissionPolicy" => {
                plugins.push(Arc::new(policy::validating::ValidatingAdmissionPolicy {
                    policies: r("validatingadmissionpolicies"),
                    bindings: r("validatingadmissionpolicybindings"),
                    namespaces: r("namespaces"),
                    params: param_source(served.clone()),
                }))
            }
            other => tracing::debug!(plugin = other, "admission plugin not implemented yet"),
        }
    }
    // RBAC's own storage refuses grants the writer does not hold (not a plugin upstream).
    if let Some(rbac) = rbac {
        plugins.push(Arc::new(
            apiserver::authorization::escalation::EscalationCheck { rbac: rbac.clone() },
        ));
    }
    Ok(Chain(plugins))
}

/// Finds the registry serving `apiVersion`/`kind` among the served resources.
fn param_source(served: Arc<OnceLock<Weak<ApiServer>>>) -> policy::validating::ParamSource {
    Arc::new(move |api_version: &str, kind: &str| {
        let api = served.get()?.upgrade()?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        api.resources()
            .iter()
            .find(|((g, v, _), res)| g == group && v == version && res.info().gvk.kind == kind)
            .map(|(_, res)| res.registry.clone())
    })
}
