//! ControllerRevisions (upstream `pkg/controller/history`): the history of a
//! StatefulSet's or DaemonSet's pod templates, one `apps/v1` ControllerRevision per
//! template (`<owner>-<hash>`, labelled like the pods so `kubectl rollout history`
//! finds them), numbered in order; a template that comes back (`kubectl rollout undo`)
//! makes its old revision the newest again; revisions beyond `revisionHistoryLimit`
//! that no pod uses are deleted, oldest first.

use crate::controller_utils::controller_of;
use crate::informer::Informer;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The owner of a history.
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub owner: OwnerReference,
    pub template: &'a PodTemplateSpec,
    pub history_limit: i32,
}

/// Upstream's revision data: the template to restore, replacing the current one.
pub fn revision_data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    t["$patch"] = serde_json::json!("replace");
    serde_json::json!({"spec": {"template": t}})
}

/// The owner's revisions, from the cache.
pub fn revisions_of(
    revisions: &Informer<ControllerRevision>,
    ns: &str,
    uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    let mut out: Vec<Arc<ControllerRevision>> = revisions
        .store
        .state()
        .into_iter()
        .filter(|r| {
            r.metadata.namespace.as_deref() == Some(ns)
                && controller_of(&r.metadata).is_some_and(|o| o.uid == uid)
        })
        .collect();
    out.sort_by_key(|r| r.revision);
    out
}

/// Makes sure the current template has the newest revision; returns its name (which
/// is `<owner>-<hash>`) and number.
pub async fn ensure_current(
    client: &kube::Client,
    revisions: &Informer<ControllerRevision>,
    o: &Owner<'_>,
    hash: &str,
    in_use: &BTreeSet<String>,
) -> Result<(String, i64), String> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), o.namespace);
    let name = format!("{}-{hash}", o.name);
    let history = revisions_of(revisions, o.namespace, &o.owner.uid);
    let newest = history.last().map(|r| r.revision).unwrap_or(0);
    let current = match history
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(&name))
    {
        Some(r) if r.revision == newest => (name.clone(), r.revision),
        Some(r) => {
            // A rolled-back template: its revision becomes the newest.
            let mut next = r.as_ref().clone();
            next.revision = newest + 1;
            api.replace(&name, &PostParams::default(), &next)
                .await
                .map_err(|e| e.to_string())?;
            (name.clone(), newest + 1)
        }
        None => {
            let labels: BTreeMap<String, String> = o
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let rev = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(o.namespace.into()),
                    labels: Some(labels),
                    owner_references: Some(vec![o.owner.clone()]),
                    ..Default::default()
                },
                data: Some(RawExtension(revision_data(o.template))),
                revision: newest + 1,
            };
            match api.create(&PostParams::default(), &rev).await {
                Ok(_) => {}
                // Created by an earlier sync the cache has not seen yet.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.to_string()),
            }
            (name.clone(), newest + 1)
        }
    };
    // Trim: unused revisions beyond the limit, oldest first.
    let unused: Vec<&Arc<ControllerRevision>> = history
        .iter()
        .filter(|r| {
            let n = r.metadata.name.as_deref().unwrap_or_default();
            n != name && !in_use.contains(n)
        })
        .collect();
    let excess = unused.len().saturating_sub(o.history_limit.max(0) as usize);
    for r in unused.into_iter().take(excess) {
        let _ = api
            .delete(
                r.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::background(),
            )
            .await;
    }
    Ok(current)
}
