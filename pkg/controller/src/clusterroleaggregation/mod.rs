//! The ClusterRole aggregation controller (upstream `clusterroleaggregation`): a
//! ClusterRole with an `aggregationRule` holds the rules of every ClusterRole its
//! selectors match (by name order, duplicates dropped), kept current as they change.

use crate::informer::{Informer, key};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::labels::Selector;
use client_go::informer::HasSynced;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, Patch, PatchParams};
use std::sync::Arc;

pub struct AggregationController {
    client: kube::Client,
    roles: Arc<Informer<ClusterRole>>,
    queue: Arc<Queue>,
}

impl AggregationController {
    pub fn new(client: kube::Client, roles: Arc<Informer<ClusterRole>>) -> Arc<Self> {
        let queue = Queue::named("ClusterRoleAggregator");
        let (q, r) = (queue.clone(), roles.clone());
        // Any role change may change any aggregate: requeue the aggregating ones.
        roles.add_handler(move |_, _| {
            for role in r.store.state() {
                if role.aggregation_rule.is_some() {
                    q.add(key(role.as_ref()));
                }
            }
        });
        Arc::new(AggregationController {
            client,
            roles,
            queue,
        })
    }

    async fn sync(&self, name: &str) -> Result<(), String> {
        let all = self.roles.store.state();
        let Some(role) = all
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
        else {
            return Ok(());
        };
        let Some(rule) = &role.aggregation_rule else {
            return Ok(());
        };
        let selectors: Vec<Selector> = rule
            .cluster_role_selectors
            .iter()
            .flatten()
            .filter_map(|s| {
                Selector::from_label_selector(Some(&serde_json::to_value(s).ok()?)).ok()
            })
            .collect();
        let mut sources: Vec<&Arc<ClusterRole>> = all
            .iter()
            .filter(|r| r.metadata.name.as_deref() != Some(name))
            .filter(|r| {
                let labels = r.metadata.labels.clone().unwrap_or_default();
                selectors
                    .iter()
                    .any(|s| !s.is_empty() && s.matches(&labels))
            })
            .collect();
        sources.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut rules: Vec<PolicyRule> = Vec::new();
        for r in sources.iter().flat_map(|r| r.rules.iter().flatten()) {
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(());
        }
        let api: Api<ClusterRole> = Api::all(self.client.clone());
        let patch = serde_json::json!({"rules": rules});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Reconciler for AggregationController {
    type Error = String;

    fn name(&self) -> &str {
        "clusterrole-aggregation"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.roles.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        AggregationController::sync(self, key)
            .await
            .map(Action::from)
    }

    fn on_synced(self: &Arc<Self>) {
        for role in self.roles.store.state() {
            if role.aggregation_rule.is_some() {
                self.queue.add(key(role.as_ref()));
            }
        }
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of an aggregated ClusterRole: the rules of the roles its selectors
    /// match, and none of the others'.
    #[tokio::test]
    async fn sync_aggregates_selected_rules() {
        let env = Env::new("aggregation").await;
        let roles = env.cluster_informer::<ClusterRole>();
        let c = AggregationController::new(env.client.clone(), roles.clone());
        env.start().await;
        let label = format!("aggregate-to-{}", env.ns);
        let rule = |resource: &str| json!([{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]);
        // (role, labelled for aggregation, its resource)
        let sources = [
            ("a", true, "pods"),
            ("b", true, "services"),
            ("c", false, "secrets"),
        ];
        let mut created = Vec::new();
        for (suffix, selected, resource) in sources {
            let mut meta = json!({"name": format!("{}-{suffix}", env.ns)});
            if selected {
                meta["labels"] = json!({label.clone(): "true"});
            }
            created.push(
                env.create_cluster::<ClusterRole>(
                    json!({"metadata": meta, "rules": rule(resource)}),
                )
                .await,
            );
        }
        let aggregate_name = format!("{}-aggregate", env.ns);
        let aggregate: ClusterRole = env
            .create_cluster(json!({"metadata": {"name": aggregate_name},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}}))
            .await;
        created.push(aggregate);
        env.cached(&roles, &created.iter().collect::<Vec<_>>())
            .await;
        env.sync(c.as_ref(), &aggregate_name).await;

        let got = env
            .cluster_api::<ClusterRole>()
            .get(&aggregate_name)
            .await
            .unwrap();
        let resources: Vec<String> = got
            .rules
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.resources.unwrap_or_default())
            .collect();
        assert_eq!(resources, ["pods", "services"]);
    }
}
