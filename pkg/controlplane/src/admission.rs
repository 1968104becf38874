//! The admission chain `--enable-admission-plugins` / `--disable-admission-plugins` ask
//! for, built over the apiserver's registries.

use crate::config::Config;
use apiserver::admission::namespace_lifecycle::NamespaceLifecycle;
use apiserver::admission::plugin::{policy, webhook};
use apiserver::admission::{Chain, Plugin, select};
use apiserver::endpoints::ApiServer;
use apiserver::registry::generic::Registry;
use plugin::admission::{
    certificates, defaults, limitranger, noderestriction, podsecurity, priority, resourcequota,
    runtimeclass, serviceaccount, simple,
};
use plugin::auth::authorizer::rbac::Rbac;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

/// Every plugin upstream v1.35 knows, in its recommended order (`AllOrderedPlugins`).
pub const ALL_ORDERED: &[&str] = &[
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceLifecycle",
    "NamespaceExists",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "TaintNodesByCondition",
    "AlwaysPullImages",
    "ImagePolicyWebhook",
    "PodSecurity",
    "PodNodeSelector",
    "Priority",
    "DefaultTolerationSeconds",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DenyServiceExternalIPs",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "AlwaysDeny",
];

/// Default-on plugins whose API is off by default upstream (behind a feature gate) and not
/// served here: they have nothing to act on, exactly as upstream's with the gate off.
const API_NOT_SERVED: &[&str] = &["ClusterTrustBundleAttest", "MutatingAdmissionPolicy"];

pub fn chain(
    cfg: &Config,
    regs: &HashMap<String, Arc<Registry>>,
    rbac: Option<&Arc<Rbac>>,
    authorizer: &Arc<apiserver::authorization::Chain>,
    served: Arc<OnceLock<Weak<ApiServer>>>,
) -> Result<Chain, String> {
    let r = |name: &str| regs[name].clone();
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    for name in select(
        ALL_ORDERED,
        &cfg.enable_admission_plugins,
        &cfg.disable_admission_plugins,
    )? {
        match name {
            "AlwaysAdmit" => plugins.push(Arc::new(simple::AlwaysAdmit)),
            "AlwaysDeny" => plugins.push(Arc::new(simple::AlwaysDeny)),
            "AlwaysPullImages" => plugins.push(Arc::new(simple::AlwaysPullImages)),
            "DenyServiceExternalIPs" => plugins.push(Arc::new(simple::DenyServiceExternalIPs)),
            "LimitPodHardAntiAffinityTopology" => {
                plugins.push(Arc::new(simple::LimitPodHardAntiAffinityTopology))
            }
            "NamespaceExists" => plugins.push(Arc::new(simple::NamespaceExists {
                namespaces: r("namespaces"),
            })),
            "NamespaceAutoProvision" => plugins.push(Arc::new(simple::NamespaceAutoProvision {
                namespaces: r("namespaces"),
            })),
            "ExtendedResourceToleration" => {
                plugins.push(Arc::new(simple::ExtendedResourceToleration))
            }
            "PodTopologyLabels" => {
                plugins.push(Arc::new(simple::PodTopologyLabels { nodes: r("nodes") }))
            }
            "PersistentVolumeClaimResize" => {
                plugins.push(Arc::new(simple::PersistentVolumeClaimResize {
                    classes: r("storageclasses"),
                }))
            }
            "CertificateApproval" => plugins.push(Arc::new(certificates::CertificateApproval {
                authorizer: authorizer.clone(),
            })),
            "CertificateSigning" => plugins.push(Arc::new(certificates::CertificateSigning {
                authorizer: authorizer.clone(),
            })),
            "CertificateSubjectRestriction" => {
                plugins.push(Arc::new(certificates::CertificateSubjectRestriction))
            }
            n if API_NOT_SERVED.contains(&n) => plugins.push(Arc::new(simple::ApiNotServed(n))),
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
            // Upstream plugins not built here yet (EventRateLimit, ImagePolicyWebhook,
            // OwnerReferencesPermissionEnforcement, PodNodeSelector, PodTolerationRestriction):
            // an error at start rather than a plugin that silently does nothing.
            other => {
                return Err(format!(
                    "admission plugin {other:?} is not supported by this kube-apiserver yet; remove it from --enable-admission-plugins"
                ));
            }
        }
    }
    // As upstream's plugin initializer logs it.
    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    tracing::info!(
        "Loaded {} admission controller(s) successfully in the following order: {}.",
        names.len(),
        names.join(",")
    );
    // RBAC's own storage refuses grants the writer does not hold (not a plugin upstream).
    if let Some(rbac) = rbac {
        plugins.push(Arc::new(
            plugin::auth::authorizer::escalation::EscalationCheck { rbac: rbac.clone() },
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
