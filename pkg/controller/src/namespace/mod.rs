//! The namespace controller (upstream `pkg/controller/namespace`): a namespace being
//! deleted has every namespaced resource the apiserver serves deleted from it
//! (deletecollection, then checking what remains), its deletion conditions reported,
//! and once it is empty its `kubernetes` finalizer removed through `finalize`, which
//! lets the apiserver delete it.

use crate::informer::Informer;
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub struct NamespaceController {
    client: kube::Client,
    namespaces: Arc<Informer<Namespace>>,
    queue: Arc<Queue>,
}

/// What is left after a deletion pass: instances per resource, and finalizers.
#[derive(Default)]
struct Remaining {
    resources: BTreeMap<String, usize>,
    finalizers: BTreeMap<String, usize>,
    errors: Vec<String>,
}

impl NamespaceController {
    pub fn new(client: kube::Client, namespaces: Arc<Informer<Namespace>>) -> Arc<Self> {
        let queue = Queue::named("namespace");
        let q = queue.clone();
        namespaces.add_handler(move |ns, deleted| {
            if !deleted && ns.metadata.deletion_timestamp.is_some() {
                q.add(ns.metadata.name.clone().unwrap_or_default());
            }
        });
        Arc::new(NamespaceController {
            client,
            namespaces,
            queue,
        })
    }

    /// Deletes everything in the namespace; `Some(delay)` while content remains.
    async fn sync(&self, name: &str) -> Result<Option<Duration>, String> {
        let Some(ns) = self.namespaces.store.get(name) else {
            return Ok(None);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let has_finalizer = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == "kubernetes"));
        if !has_finalizer {
            return Ok(None);
        }
        let discovery = Discovery::new(self.client.clone()).run().await;
        let remaining = match &discovery {
            Ok(d) => self.delete_content(d, name).await,
            Err(e) => Remaining {
                errors: vec![format!("discovery failed: {e}")],
                ..Default::default()
            },
        };
        self.report(&ns, &remaining, discovery.is_ok()).await;
        if !remaining.errors.is_empty() {
            return Err(remaining.errors.join("; "));
        }
        if !remaining.resources.is_empty() {
            return Ok(Some(Duration::from_secs(1)));
        }
        // Empty: drop the `kubernetes` finalizer so the apiserver deletes the namespace.
        let mut finalized = (*ns).clone();
        if let Some(f) = finalized.spec.as_mut().and_then(|s| s.finalizers.as_mut()) {
            f.retain(|f| f != "kubernetes");
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api
            .replace_subresource("finalize", name, &PostParams::default(), &finalized)
            .await
        {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn delete_content(&self, discovery: &Discovery, ns: &str) -> Remaining {
        let mut out = Remaining::default();
        for group in discovery.groups() {
            for (res, caps) in group.recommended_resources() {
                if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                    continue;
                }
                let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &res);
                if caps.supports_operation(verbs::DELETE_COLLECTION) {
                    let r = api
                        .delete_collection(&DeleteParams::background(), &ListParams::default())
                        .await;
                    match r {
                        Err(kube::Error::Api(a)) if a.code == 404 || a.code == 405 => {}
                        Err(e) => out.errors.push(format!("deleting {}: {e}", res.plural)),
                        Ok(_) => {}
                    }
                } else if caps.supports_operation(verbs::DELETE)
                    && let Ok(list) = api.list(&ListParams::default()).await
                {
                    for o in list.items {
                        let name = o.metadata.name.as_deref().unwrap_or_default();
                        let _ = api.delete(name, &DeleteParams::background()).await;
                    }
                }
                match api.list(&ListParams::default()).await {
                    Ok(list) if !list.items.is_empty() => {
                        let key = if res.group.is_empty() {
                            res.plural.clone()
                        } else {
                            format!("{}.{}", res.plural, res.group)
                        };
                        out.resources.insert(key, list.items.len());
                        for o in &list.items {
                            for f in o.metadata.finalizers.iter().flatten() {
                                *out.finalizers.entry(f.clone()).or_default() += 1;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => out.errors.push(format!("listing {}: {e}", res.plural)),
                }
            }
        }
        out
    }

    /// Upstream's deletion conditions on the namespace status.
    async fn report(&self, ns: &Namespace, r: &Remaining, discovered: bool) {
        let now = Time(jiff::Timestamp::now());
        let cond =
            |type_: &str, ok: bool, good: (&str, &str), bad: (&str, String)| NamespaceCondition {
                type_: type_.into(),
                status: if ok { "False".into() } else { "True".into() },
                reason: Some(if ok { good.0.into() } else { bad.0.into() }),
                message: Some(if ok { good.1.into() } else { bad.1 }),
                last_transition_time: Some(now.clone()),
            };
        let list = |m: &BTreeMap<String, usize>, what: &str| {
            m.iter()
                .map(|(k, n)| format!("{k} has {n} {what}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let conditions = vec![
            cond(
                "NamespaceDeletionDiscoveryFailure",
                discovered,
                (
                    "ResourcesDiscovered",
                    "All resources successfully discovered",
                ),
                ("DiscoveryFailed", "Discovery failed for some groups".into()),
            ),
            cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                true,
                (
                    "ParsedGroupVersions",
                    "All legacy kube types successfully parsed",
                ),
                ("GroupVersionParsingFailed", String::new()),
            ),
            cond(
                "NamespaceDeletionContentFailure",
                r.errors.is_empty(),
                (
                    "ContentDeleted",
                    "All content successfully deleted, may be waiting on finalization",
                ),
                ("ContentDeletionFailed", r.errors.join("; ")),
            ),
            cond(
                "NamespaceContentRemaining",
                r.resources.is_empty(),
                ("ContentRemoved", "All content successfully removed"),
                (
                    "SomeResourcesRemain",
                    format!(
                        "Some resources are remaining: {}",
                        list(&r.resources, "resource instances")
                    ),
                ),
            ),
            cond(
                "NamespaceFinalizersRemaining",
                r.finalizers.is_empty(),
                (
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished",
                ),
                (
                    "SomeFinalizersRemain",
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        list(&r.finalizers, "resource instances").replace(" has ", " in ")
                    ),
                ),
            ),
        ];
        let unchanged = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|old| {
                old.len() == conditions.len()
                    && old.iter().zip(&conditions).all(|(a, b)| {
                        a.type_ == b.type_
                            && a.status == b.status
                            && a.reason == b.reason
                            && a.message == b.message
                    })
            });
        if unchanged {
            return;
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let patch = serde_json::json!({"status": {"conditions": conditions}});
        let _ = crate::controller_utils::update_status(&api, ns, &patch).await;
    }
}

impl Reconciler for NamespaceController {
    type Error = String;

    fn name(&self) -> &str {
        "namespace"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.namespaces.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        NamespaceController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    /// One sync of a terminating namespace: its content deleted and the namespace
    /// finalized, or, while something cannot go yet, kept with the reason and retried.
    #[tokio::test]
    async fn sync_empties_and_finalizes_terminating_namespaces() {
        // (case, content, want the namespace gone)
        let cases = [
            ("empty", None, true),
            ("configmap", Some("configmap"), true),
            ("held", Some("held-pod"), false),
        ];
        for (name, content, want_gone) in cases {
            let env = Env::new(&format!("ns-{name}")).await;
            let namespaces = env.cluster_informer::<Namespace>();
            let c = NamespaceController::new(env.client.clone(), namespaces.clone());
            env.start().await;
            match content {
                Some("configmap") => {
                    env.create::<ConfigMap>(
                        json!({"metadata": {"name": "cm"}, "data": {"a": "b"}}),
                    )
                    .await;
                }
                Some(_) => {
                    env.create::<Pod>(json!({"metadata": {"name": "held", "finalizers": ["test.k8s.io/hold"]}, "spec": pod_spec()}))
                        .await;
                }
                None => {}
            }
            env.cluster_api::<Namespace>()
                .delete(&env.ns, &Default::default())
                .await
                .unwrap();
            let terminating = env.namespace().await;
            assert!(terminating.metadata.deletion_timestamp.is_some());
            env.cached(&namespaces, &[&terminating]).await;
            let action = env.sync(c.as_ref(), &env.ns).await;

            let now = env
                .cluster_api::<Namespace>()
                .get_opt(&env.ns)
                .await
                .unwrap();
            assert_eq!(now.is_none(), want_gone, "{name}: {now:?}");
            if let Some(ns) = now {
                assert!(
                    matches!(action, Action::RequeueAfter(_)),
                    "{name}: {action:?}"
                );
                let conditions = ns.status.and_then(|s| s.conditions).unwrap_or_default();
                let remaining = conditions
                    .iter()
                    .find(|c| c.type_ == "NamespaceContentRemaining");
                assert_eq!(
                    remaining.map(|c| c.status.as_str()),
                    Some("True"),
                    "{name}: {conditions:?}"
                );
                // Let the namespace go.
                env.api::<Pod>()
                    .patch(
                        "held",
                        &Default::default(),
                        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .unwrap();
            }
        }
    }
}
