//! Admission plumbing (upstream `apiserver/pkg/admission`): plugins see every write after
//! decoding and defaulting, before storage. Every plugin's mutating phase runs first, in
//! the configured order, then every plugin's validating phase on the final object.

pub mod namespace_lifecycle;
pub mod plugin;

use crate::authentication::UserInfo;
use apimachinery::{GroupResource, StatusError};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The name webhooks and policies see (`CREATE`, `UPDATE`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

pub struct Attributes<'a> {
    pub operation: Operation,
    pub resource: GroupResource,
    /// The served version and kind of the object (`apps`, `v1`, `Deployment`).
    pub version: &'a str,
    pub kind: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub dry_run: bool,
    /// Who asks (None for the apiserver's own writes).
    pub user: Option<&'a UserInfo>,
    /// The stored object an update or delete acts on.
    pub old: Option<&'a Value>,
    /// The request's audit annotations (None when it is not audited).
    pub audit: Option<&'a crate::audit::Annotations>,
}

impl Attributes<'_> {
    /// Whether this is a write to the main resource of `group`/`resource`.
    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.resource.group == group && self.resource.resource == resource
    }
}

#[async_trait]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Mutating phase. `obj` is the incoming object for create/update, None for delete.
    async fn admit(
        &self,
        _attrs: &Attributes<'_>,
        _obj: Option<&mut Value>,
    ) -> Result<(), StatusError> {
        Ok(())
    }
    /// Validating phase, on the object every mutating plugin has seen. Warnings are
    /// returned to the client (`Warning` headers).
    async fn validate(
        &self,
        _attrs: &Attributes<'_>,
        _obj: Option<&Value>,
        _warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        Ok(())
    }
}

/// The configured plugins in order.
#[derive(Default, Clone)]
pub struct Chain(pub Vec<Arc<dyn Plugin>>);

impl Chain {
    /// Both phases at once, for writes whose object the store does not prepare
    /// (subresources, deletes).
    pub async fn run(
        &self,
        attrs: &Attributes<'_>,
        mut obj: Option<&mut Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        self.mutate(attrs, obj.as_deref_mut()).await?;
        self.validate(attrs, obj.as_deref(), warnings).await
    }

    /// The mutating phase of every plugin, in order.
    pub async fn mutate(
        &self,
        attrs: &Attributes<'_>,
        mut obj: Option<&mut Value>,
    ) -> Result<(), StatusError> {
        for p in &self.0 {
            p.admit(attrs, obj.as_deref_mut()).await?;
        }
        Ok(())
    }

    /// The validating phase of every plugin, in order, on the final object.
    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StatusError> {
        for p in &self.0 {
            p.validate(attrs, obj, warnings).await?;
        }
        Ok(())
    }
}

/// Upstream v1.35's default-on plugins (`kube-apiserver -h`, `--enable-admission-plugins`),
/// in the order they run.
pub const DEFAULT_ORDER: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "TaintNodesByCondition",
    "PodSecurity",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The plugins to run: upstream's defaults plus `enable`, minus `disable`, in the
/// recommended order; an unknown name is an error as upstream.
pub fn select<'a>(
    known: &[&'a str],
    enable: &[String],
    disable: &[String],
) -> Result<Vec<&'a str>, String> {
    for name in enable.iter().chain(disable) {
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "enable-admission-plugins plugin {name:?} is unknown (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(known
        .iter()
        .filter(|n| {
            (DEFAULT_ORDER.contains(n) || enable.iter().any(|e| e == *n))
                && !disable.iter().any(|d| d == *n)
        })
        .copied()
        .collect())
}
