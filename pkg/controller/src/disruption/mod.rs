//! The disruption controller (upstream `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — expected pods (from the pods' controllers' scale when
//! the budget is relative), desired and current healthy pods, `disruptionsAllowed`, the
//! `DisruptionAllowed` condition — that the eviction subresource relies on. Pods the
//! apiserver recorded in `disruptedPods` count as unhealthy until they are deleted or
//! two minutes pass.

use crate::controller_utils::{controller_of, is_ready, reference, scaled_value};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::labels::Selector;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `DeletionTimeout`: an eviction not followed by a deletion this soon is
/// forgotten.
const DELETION_TIMEOUT: Duration = Duration::from_secs(2 * 60);

pub struct DisruptionController {
    client: kube::Client,
    budgets: Arc<Informer<PodDisruptionBudget>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

fn selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    // policy/v1: an empty selector selects every pod, an absent one none.
    let sel = serde_json::to_value(pdb.spec.as_ref()?.selector.as_ref()?).ok()?;
    Selector::from_label_selector(Some(&sel)).ok()
}

fn labels(p: &Pod) -> BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

impl DisruptionController {
    pub fn new(
        client: kube::Client,
        budgets: Arc<Informer<PodDisruptionBudget>>,
        pods: Arc<Informer<Pod>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("disruption");
        {
            let q = queue.clone();
            budgets.add_handler(move |pdb, deleted| {
                if !deleted {
                    q.add(key(pdb));
                }
            });
        }
        {
            let (q, budgets) = (queue.clone(), budgets.clone());
            pods.add_handler(move |pod, _| {
                for pdb in budgets.store.state() {
                    if pdb.metadata.namespace == pod.metadata.namespace
                        && selector(&pdb).is_some_and(|s| s.matches(&labels(pod)))
                    {
                        q.add(key(pdb.as_ref()));
                    }
                }
            });
        }
        Arc::new(DisruptionController {
            client,
            budgets,
            pods,
            queue,
            recorder,
        })
    }

    /// The scale (spec.replicas) of a pod's controller, following a ReplicaSet up to
    /// its Deployment as upstream's finders do; the key dedups pods of one controller.
    async fn scale_of(&self, ns: &str, owner: &OwnerReference) -> Option<(String, i32)> {
        let c = self.client.clone();
        let owner_uid_matches = |uid: Option<&String>| uid == Some(&owner.uid);
        match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => {
                let rs = Api::<ReplicaSet>::namespaced(c.clone(), ns)
                    .get_opt(&owner.name)
                    .await
                    .ok()??;
                if !owner_uid_matches(rs.metadata.uid.as_ref()) {
                    return None;
                }
                if let Some(d) = controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") {
                    let dep = Api::<Deployment>::namespaced(c, ns)
                        .get_opt(&d.name)
                        .await
                        .ok()??;
                    if dep.metadata.uid.as_deref() == Some(d.uid.as_str()) {
                        let n = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        return Some((d.uid.clone(), n));
                    }
                    return None;
                }
                Some((
                    owner.uid.clone(),
                    rs.spec.and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            ("apps/v1", "StatefulSet") => {
                let s = Api::<StatefulSet>::namespaced(c, ns)
                    .get_opt(&owner.name)
                    .await
                    .ok()??;
                owner_uid_matches(s.metadata.uid.as_ref()).then(|| {
                    (
                        owner.uid.clone(),
                        s.spec.and_then(|s| s.replicas).unwrap_or(1),
                    )
                })
            }
            ("v1", "ReplicationController") => {
                let rc = Api::<ReplicationController>::namespaced(c, ns)
                    .get_opt(&owner.name)
                    .await
                    .ok()??;
                owner_uid_matches(rc.metadata.uid.as_ref()).then(|| {
                    (
                        owner.uid.clone(),
                        rc.spec.and_then(|s| s.replicas).unwrap_or(1),
                    )
                })
            }
            _ => None,
        }
    }

    /// (expectedCount, desiredHealthy) as upstream's `getExpectedPodCount`.
    async fn expected(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, i32), String> {
        let spec = pdb.spec.clone().unwrap_or_default();
        // An absolute minAvailable counts the pods; anything relative needs the scale.
        match (&spec.max_unavailable, &spec.min_available) {
            (None, Some(IntOrString::Int(n))) => return Ok((pods.len() as i32, *n)),
            (None, None) => return Ok((pods.len() as i32, 0)),
            _ => {}
        }
        let ns = pdb.metadata.namespace.as_deref().unwrap_or_default();
        let mut scales: HashMap<String, i32> = HashMap::new();
        for p in pods {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            let Some(owner) = controller_of(&p.metadata) else {
                return Err(format!("found no controller ref for pod {name:?}"));
            };
            match self.scale_of(ns, owner).await {
                Some((uid, n)) => {
                    scales.insert(uid, n);
                }
                None => return Err(format!("found no controllers for pod {name:?}")),
            }
        }
        let expected: i32 = scales.values().sum();
        let desired = match (&spec.max_unavailable, &spec.min_available) {
            (Some(max), _) => (expected - scaled_value(max, expected, true)).max(0),
            (None, Some(min)) => scaled_value(min, expected, true),
            (None, None) => 0,
        };
        Ok((expected, desired))
    }

    async fn sync(&self, k: &str) -> Result<Option<Duration>, String> {
        let (ns, name) = split(k);
        let Some(pdb) = self.budgets.store.get_in(ns, name) else {
            return Ok(None);
        };
        let sel = selector(&pdb);
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && sel.as_ref().is_some_and(|s| s.matches(&labels(p)))
            })
            .collect();
        if pods.is_empty() {
            self.recorder.eventf(
                reference(pdb.as_ref()),
                "Normal",
                "NoPods",
                "",
                "No matching pods found".into(),
            );
        }
        let (expected, desired) = match self.expected(&pdb, &pods).await {
            Ok(v) => v,
            Err(e) => {
                self.recorder.eventf(
                    reference(pdb.as_ref()),
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    "",
                    format!("Failed to calculate the number of expected pods: {e}"),
                );
                // Fail safe: no disruption is allowed while the count is unknown.
                self.write_status(&pdb, None, 0, 0, 0, Some(&e)).await?;
                return Ok(Some(Duration::from_secs(30)));
            }
        };
        // Evictions the apiserver granted that have not turned into deletions yet.
        let now = jiff::Timestamp::now();
        let mut disrupted = BTreeMap::new();
        let mut recheck: Option<Duration> = None;
        let recorded = pdb
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.clone())
            .unwrap_or_default();
        for (pod_name, at) in recorded {
            let pod = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(&pod_name));
            let Some(pod) = pod else { continue };
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let expires = at.0 + jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap();
            if expires <= now {
                tracing::info!(
                    pdb = k,
                    pod = pod_name,
                    "eviction did not delete the pod in time"
                );
                continue;
            }
            let left = Duration::try_from(expires.duration_since(now)).unwrap_or_default();
            recheck = Some(recheck.map_or(left, |r: Duration| r.min(left)));
            disrupted.insert(pod_name, at);
        }
        let healthy = pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && is_ready(p)
                    && !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default())
            })
            .count() as i32;
        self.write_status(&pdb, Some(disrupted), expected, desired, healthy, None)
            .await?;
        Ok(recheck)
    }

    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        disrupted: Option<BTreeMap<String, Time>>,
        expected: i32,
        desired: i32,
        healthy: i32,
        failure: Option<&str>,
    ) -> Result<(), String> {
        let allowed = if failure.is_some() || expected <= 0 {
            0
        } else {
            (healthy - desired).max(0)
        };
        let (status, reason, message) = match failure {
            Some(e) => ("False", "SyncFailed", e.to_string()),
            None if allowed > 0 => ("True", "SufficientPods", String::new()),
            None => ("False", "InsufficientPods", String::new()),
        };
        let old = pdb.status.clone().unwrap_or_default();
        let generation = pdb.metadata.generation.unwrap_or(0);
        let old_cond = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionAllowed");
        let disrupted = disrupted.unwrap_or_else(|| old.disrupted_pods.clone().unwrap_or_default());
        let unchanged = old.observed_generation == Some(generation)
            && old.expected_pods == expected
            && old.desired_healthy == desired
            && old.current_healthy == healthy
            && old.disruptions_allowed == allowed
            && old.disrupted_pods.clone().unwrap_or_default() == disrupted
            && old_cond.is_some_and(|c| c.status == status && c.reason == reason);
        if unchanged {
            return Ok(());
        }
        let transition = match old_cond {
            Some(c) if c.status == status => c.last_transition_time.0.to_string(),
            _ => jiff::Timestamp::now().to_string(),
        };
        // A full status (resourceVersion-guarded) so that removed disruptedPods go too.
        let mut next = pdb.clone();
        next.metadata.managed_fields = None;
        let mut st = serde_json::to_value(&old).map_err(|e| e.to_string())?;
        st["observedGeneration"] = json!(generation);
        st["expectedPods"] = json!(expected);
        st["desiredHealthy"] = json!(desired);
        st["currentHealthy"] = json!(healthy);
        st["disruptionsAllowed"] = json!(allowed);
        st["disruptedPods"] = json!(disrupted);
        st["conditions"] = json!([{"type": "DisruptionAllowed", "status": status, "reason": reason,
            "message": message, "observedGeneration": generation, "lastTransitionTime": transition}]);
        next.status = Some(serde_json::from_value(st).map_err(|e| e.to_string())?);
        let ns = pdb.metadata.namespace.as_deref().unwrap_or_default();
        let name = pdb.metadata.name.as_deref().unwrap_or_default();
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
        match api
            .replace_status(name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Reconciler for DisruptionController {
    type Error = String;

    fn name(&self) -> &str {
        "disruption"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.budgets.clone(), self.pods.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        DisruptionController::sync(self, key)
            .await
            .map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::Env;
    use serde_json::json;

    /// One sync of a PodDisruptionBudget: healthy, desired and expected pods and the
    /// disruptions allowed.
    #[tokio::test]
    async fn sync_computes_disruptions_allowed() {
        // (case, minAvailable, pods' readiness, want (current, desired, expected, allowed))
        let cases = [
            ("room-for-one", 1, vec![true, true], (2, 1, 2, 1)),
            ("at-minimum", 2, vec![true, false], (1, 2, 2, 0)),
        ];
        for (name, min_available, ready, want) in cases {
            let env = Env::new(&format!("pdb-{name}")).await;
            let (budgets, pods) = (env.informer::<PodDisruptionBudget>(), env.informer::<Pod>());
            let c = DisruptionController::new(
                env.client.clone(),
                budgets.clone(),
                pods.clone(),
                env.recorder("disruption-controller"),
            );
            env.start().await;
            let mut created = Vec::new();
            for (i, r) in ready.iter().enumerate() {
                let ip = format!("10.2.0.{}", i + 1);
                created.push(
                    env.running_pod(&format!("p{i}"), json!({"app": "db"}), Some(&ip), *r)
                        .await,
                );
            }
            let pdb: PodDisruptionBudget = env
                .create(json!({"metadata": {"name": "db"}, "spec": {
                    "minAvailable": min_available, "selector": {"matchLabels": {"app": "db"}}}}))
                .await;
            env.cached(&pods, &created.iter().collect::<Vec<_>>()).await;
            env.cached(&budgets, &[&pdb]).await;
            env.sync(c.as_ref(), &env.key("db")).await;

            let s = env
                .api::<PodDisruptionBudget>()
                .get("db")
                .await
                .unwrap()
                .status
                .unwrap();
            assert_eq!(
                (
                    s.current_healthy,
                    s.desired_healthy,
                    s.expected_pods,
                    s.disruptions_allowed
                ),
                want,
                "{name}"
            );
            assert_eq!(s.observed_generation, Some(1), "{name}");
        }
    }
}
