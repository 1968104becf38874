//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`):
//! a finished Job with `ttlSecondsAfterFinished` is deleted (foreground, so its pods go
//! first) that many seconds after its completion or failure.

use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::informer::HasSynced;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, PropagationPolicy};
use std::sync::Arc;
use std::time::Duration;

pub struct TtlAfterFinished {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    queue: Arc<Queue>,
}

/// When the job finished (its Complete or Failed condition).
fn finished_at(j: &Job) -> Option<jiff::Timestamp> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

impl TtlAfterFinished {
    pub fn new(client: kube::Client, jobs: Arc<Informer<Job>>) -> Arc<Self> {
        let queue = Queue::named("ttl_jobs_to_delete");
        let q = queue.clone();
        jobs.add_handler(move |j, deleted| {
            if !deleted
                && j.spec
                    .as_ref()
                    .and_then(|s| s.ttl_seconds_after_finished)
                    .is_some()
            {
                q.add(key(j));
            }
        });
        Arc::new(TtlAfterFinished {
            client,
            jobs,
            queue,
        })
    }

    /// Some(wait) while the job's time has not come.
    async fn sync(&self, k: &str) -> Option<Duration> {
        let (ns, name) = split(k);
        let job = self.jobs.store.get_in(ns, name)?;
        if job.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
        let done = finished_at(&job)?;
        let elapsed = jiff::Timestamp::now().duration_since(done).as_secs_f64();
        if elapsed < f64::from(ttl) {
            return Some(Duration::from_secs_f64(f64::from(ttl) - elapsed));
        }
        let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => None,
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(_) => Some(Duration::from_secs(1)),
        }
    }
}

impl Reconciler for TtlAfterFinished {
    type Error = String;

    fn name(&self) -> &str {
        "ttl-after-finished"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.jobs.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        Ok(TtlAfterFinished::sync(self, key).await.into())
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::{Patch, PatchParams};
    use serde_json::json;

    /// One sync: a finished Job past its TTL is deleted, one within it waits out the
    /// rest, an unfinished one is left alone.
    #[tokio::test]
    async fn sync_deletes_expired_jobs() {
        // (case, ttl seconds, finished, want kept, want requeue)
        let cases = [
            ("expired", 0, true, false, false),
            ("within-ttl", 3600, true, true, true),
            ("running", 0, false, true, false),
        ];
        for (name, ttl, finished, want_kept, want_requeue) in cases {
            let env = Env::new(&format!("ttl-{name}")).await;
            let jobs = env.informer::<Job>();
            let c = TtlAfterFinished::new(env.client.clone(), jobs.clone());
            env.start().await;
            let mut spec = pod_spec();
            spec["restartPolicy"] = json!("Never");
            let mut job: Job = env
                .create(json!({"metadata": {"name": "done"}, "spec": {
                    "ttlSecondsAfterFinished": ttl, "template": {"spec": spec}}}))
                .await;
            if finished {
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
                let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "lastProbeTime": now});
                job = env
                    .api::<Job>()
                    .patch_status(
                        "done",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {
                            "startTime": now, "completionTime": now, "succeeded": 1,
                            "conditions": [cond("SuccessCriteriaMet"), cond("Complete")]}})),
                    )
                    .await
                    .unwrap();
            }
            env.cached(&jobs, &[&job]).await;
            let action = env.sync(c.as_ref(), &env.key("done")).await;

            let kept = env
                .api::<Job>()
                .get_opt("done")
                .await
                .unwrap()
                .is_some_and(|j| j.metadata.deletion_timestamp.is_none());
            assert_eq!(kept, want_kept, "{name}: kept");
            assert_eq!(
                matches!(action, Action::RequeueAfter(_)),
                want_requeue,
                "{name}: {action:?}"
            );
        }
    }
}
