//! Namespaces (upstream `pkg/registry/core/namespace`): deletion moves a namespace to
//! `Terminating` until its `spec.finalizers` are cleared through `finalize` (by the
//! namespace controller), then it leaves storage.

use crate::typed::{Typed, info};
use apimachinery::StatusError;
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};
use std::sync::Arc;

pub const FINALIZER_KUBERNETES: &str = "kubernetes";

pub fn strategy() -> Typed<Namespace> {
    let mut i = info("", "v1", "Namespace", "namespaces", false, "namespaces");
    i.short_names = vec!["ns".into()];
    i.subresources = vec!["finalize".into(), "status".into()];
    // Upstream's namespace REST has no DeleteCollection: one `kubectl delete ns --all`
    // would otherwise take every namespace's content with it.
    i.delete_collection = false;
    let mut t = Typed::new(i);
    t.name_rule = apimachinery::validation::dns1123_label;
    t.return_deleted_object = true;
    t.default = |ns: &mut Namespace| {
        // Upstream labels every namespace with its own name (for namespaceSelectors).
        let name = ns.metadata.name.clone().unwrap_or_default();
        if !name.is_empty() {
            ns.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("kubernetes.io/metadata.name".into(), name);
        }
    };
    t.prepare_for_create = |o| {
        o["spec"] = json!({"finalizers": [FINALIZER_KUBERNETES]});
        o["status"] = json!({"phase": "Active"});
    };
    t.prepare_for_update = |new, old| {
        new["spec"] = old["spec"].clone();
    };
    t.begin_delete = |o| {
        let has_spec_finalizers = has_spec_finalizers(o);
        if has_spec_finalizers {
            o["status"]["phase"] = json!("Terminating");
        }
        has_spec_finalizers
    };
    t.holds_deletion = has_spec_finalizers;
    t.fields = |o| {
        [(
            "status.phase".to_string(),
            o["status"]["phase"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )]
        .into_iter()
        .collect()
    };
    t.supported_fields = &["status.phase", "name"];
    t.columns = Some(|| {
        vec![
            crate::typed::col("Status", "string", "The status of the namespace", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| vec![o["status"]["phase"].clone(), crate::typed::age_cell(o)];
    t
}

/// A namespace's own finalizers (`kubernetes`) hold its deletion until `finalize`
/// clears them.
fn has_spec_finalizers(o: &Value) -> bool {
    o["spec"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// `PUT namespaces/<name>/finalize`: replaces `spec.finalizers`; a terminating namespace
/// with none left is deleted by the update (upstream's finalize REST is an update too).
pub struct Finalize {
    pub registry: Arc<Registry>,
}

#[async_trait]
impl SubresourceHandler for Finalize {
    async fn update(
        &self,
        _ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
        _manager: &str,
    ) -> Result<Value, StatusError> {
        let finalizers = body["spec"]["finalizers"].clone();
        let (obj, _) = self
            .registry
            .guaranteed_update(None, name, Part::Whole, dry_run, &mut |cur| {
                let mut next = cur.cloned().unwrap_or_default();
                next["spec"]["finalizers"] = if finalizers.is_null() {
                    json!([])
                } else {
                    finalizers.clone()
                };
                meta::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            })
            .await?;
        // A terminating namespace left without finalizers is deleted by the update
        // itself (the strategy's holds_deletion).
        Ok(obj)
    }
}
