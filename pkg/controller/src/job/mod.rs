//! The Job controller (upstream `pkg/controller/job`), for NonIndexed and Indexed
//! jobs (each index `0..completions` run by pods named `<job>-<index>-`, with the
//! index as annotation, label, hostname and `JOB_COMPLETION_INDEX`, and counted once
//! in `completedIndexes`): up to
//! `parallelism` active pods until `completions` succeed, pods tracked with the
//! `batch.kubernetes.io/job-tracking` finalizer and counted through
//! `uncountedTerminatedPods` (so no pod is counted twice), failed pods replaced after an
//! exponential backoff (10 s doubling, 6 min cap) until `backoffLimit`,
//! `activeDeadlineSeconds`, suspension, and upstream's conditions (SuccessCriteriaMet /
//! FailureTarget then Complete / Failed) and events.

pub mod pod_failure_policy;

use crate::controller_utils::{Expectations, controller_of, is_ready, reference, update_status};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(360);

pub struct JobController {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<Queue>,
    expectations: Arc<Expectations>,
    recorder: Arc<Recorder>,
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn finished(j: &Job) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// Annotation and label carrying an Indexed job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// An Indexed job pod's index, when valid for the job's completions.
fn index_of(p: &Pod, completions: i32) -> Option<i32> {
    let i: i32 = p
        .metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()?;
    (0..completions).contains(&i).then_some(i)
}

/// Upstream's `completedIndexes` text ("1,3-5") to indexes.
fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

/// Indexes as upstream writes them: ascending, runs of two or more as `a-b`.
fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap_or(end);
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
    }
    parts.join(",")
}

fn condition(type_: &str, reason: &str, message: &str) -> JobCondition {
    let now = Time(Timestamp::now());
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

impl JobController {
    pub fn new(
        client: kube::Client,
        jobs: Arc<Informer<Job>>,
        pods: Arc<Informer<Pod>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("job");
        let expectations = Arc::new(Expectations::default());
        let q = queue.clone();
        jobs.add_handler(move |j, _| q.add(key(j)));
        let (q, exp) = (queue.clone(), expectations.clone());
        pods.add_event_handler(move |change| {
            let owners = crate::controller_utils::OwnerKeys::of(&change, "Job");
            // The Job expects creations only (deletions are not waited for).
            if let (Some(k), crate::controller_utils::Observed::Created) =
                (&owners.current, crate::controller_utils::observed(&change))
            {
                exp.creation_observed(k);
            }
            for k in owners.all() {
                q.add(k.clone());
            }
        });
        Arc::new(JobController {
            client,
            jobs,
            pods,
            queue,
            expectations,
            recorder,
        })
    }

    async fn sync(&self, k: &str) -> Result<Option<Duration>, String> {
        let (ns, name) = split(k);
        let Some(job) = self.jobs.store.get_in(ns, name) else {
            self.expectations.delete(k);
            return Ok(None);
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
            })
            .collect();
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let status = job.status.clone().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        // Indexed jobs: the number of indexes (completions is required for them).
        let indexed = (spec.completion_mode.as_deref() == Some("Indexed"))
            .then(|| spec.completions.unwrap_or(1));

        // Count finished pods exactly once: record, release the finalizer, then add.
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let (mut un_ok, mut un_fail): (BTreeSet<String>, BTreeSet<String>) = (
            uncounted
                .succeeded
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted
                .failed
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        );
        // Upstream's `onlyReplaceFailedPods`: with `podReplacementPolicy: Failed` (the
        // default under a pod failure policy) a terminating pod is neither counted as
        // failed nor replaced until it reaches the Failed phase, so that the policy sees
        // its final status (a DisruptionTarget condition, an exit code).
        let only_failed = spec.pod_replacement_policy.as_deref() == Some("Failed")
            || spec.pod_failure_policy.is_some();
        let terminating = pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_some()
                    && !matches!(phase(p), "Succeeded" | "Failed")
            })
            .count() as i32;
        let mut newly = false;
        for p in &pods {
            let tracked = p
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == TRACKING_FINALIZER);
            let puid = p.metadata.uid.clone().unwrap_or_default();
            if !tracked || un_ok.contains(&puid) || un_fail.contains(&puid) {
                continue;
            }
            match phase(p) {
                "Succeeded" => newly |= un_ok.insert(puid),
                "Failed" => newly |= un_fail.insert(puid),
                _ if p.metadata.deletion_timestamp.is_some() && !only_failed => {
                    newly |= un_fail.insert(puid)
                }
                _ => {}
            }
        }
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        if newly {
            let patch = serde_json::json!({"status": {"uncountedTerminatedPods": {"succeeded": un_ok, "failed": un_fail}}});
            update_status(&jobs_api, job.as_ref(), &patch).await?;
            return Ok(Some(Duration::ZERO));
        }
        if !un_ok.is_empty() || !un_fail.is_empty() {
            for p in pods.iter().filter(|p| {
                let u = p.metadata.uid.clone().unwrap_or_default();
                un_ok.contains(&u) || un_fail.contains(&u)
            }) {
                let rest: Vec<&String> = p
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .filter(|f| *f != TRACKING_FINALIZER)
                    .collect();
                let patch = serde_json::json!({"metadata": {"finalizers": rest}});
                match pods_api
                    .patch(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            // The pod failure policy may ignore a failure or fail the whole Job.
            let mut ignored = 0;
            let mut fail_job = None;
            if let Some(policy) = &spec.pod_failure_policy {
                for p in pods.iter().filter(|p| {
                    un_fail.contains(p.metadata.uid.as_deref().unwrap_or_default())
                        && phase(p) == "Failed"
                }) {
                    match pod_failure_policy::matching_rule(policy, p) {
                        Some((action, _)) if action == "Ignore" => ignored += 1,
                        Some((action, message)) if action == "FailJob" => {
                            fail_job.get_or_insert(message);
                        }
                        _ => {}
                    }
                }
            }
            let mut patch = serde_json::json!({"status": {
                "succeeded": status.succeeded.unwrap_or(0) + un_ok.len() as i32,
                "failed": status.failed.unwrap_or(0) + un_fail.len() as i32 - ignored,
                "uncountedTerminatedPods": {"succeeded": [], "failed": []}}});
            if let Some(message) = fail_job {
                let mut conditions = status.conditions.clone().unwrap_or_default();
                if !conditions.iter().any(|c| c.type_ == "FailureTarget") {
                    conditions.push(condition("FailureTarget", "PodFailurePolicy", &message));
                    patch["status"]["conditions"] = serde_json::json!(conditions);
                }
            }
            if let Some(completions) = indexed {
                // Each index counts once, however many of its pods succeeded.
                let mut done =
                    parse_indexes(status.completed_indexes.as_deref().unwrap_or_default());
                done.extend(
                    pods.iter()
                        .filter(|p| un_ok.contains(p.metadata.uid.as_deref().unwrap_or_default()))
                        .filter_map(|p| index_of(p, completions)),
                );
                patch["status"]["completedIndexes"] = serde_json::json!(format_indexes(&done));
                patch["status"]["succeeded"] = serde_json::json!(done.len() as i32);
            }
            update_status(&jobs_api, job.as_ref(), &patch).await?;
            return Ok(Some(Duration::ZERO));
        }
        if finished(&job) {
            return Ok(None);
        }

        let active: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !matches!(phase(p), "Succeeded" | "Failed")
            })
            .collect();
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let completions = spec.completions;
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let start = status
            .start_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(Timestamp::now);
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let mut terminal: Option<(&str, &str, &str, &str)> = None;
        // A pod failure policy's FailJob verdict, recorded when the pod was counted.
        let policy_failure = conditions
            .iter()
            .find(|c| c.type_ == "FailureTarget" && c.reason.as_deref() == Some("PodFailurePolicy"))
            .map(|c| c.message.clone().unwrap_or_default());
        // An Indexed job's successPolicy: the first rule whose indexes (or count) have
        // succeeded completes it.
        let success_rule = match (indexed, &spec.success_policy) {
            (Some(_), Some(policy)) => {
                let done = parse_indexes(status.completed_indexes.as_deref().unwrap_or_default());
                policy.rules.iter().position(|r| {
                    let wanted = r.succeeded_indexes.as_deref().map(parse_indexes);
                    let hits = match &wanted {
                        Some(w) => w.intersection(&done).count() as i32,
                        None => done.len() as i32,
                    };
                    match (r.succeeded_count, &wanted) {
                        (Some(n), _) => hits >= n,
                        (None, Some(w)) => !w.is_empty() && w.is_subset(&done),
                        (None, None) => false,
                    }
                })
            }
            _ => None,
        }
        .map(|i| format!("Matched rules at index {i}"));
        if let Some(message) = &policy_failure {
            terminal = Some((
                "FailureTarget",
                "Failed",
                "PodFailurePolicy",
                message.as_str(),
            ));
        } else if let Some(message) = &success_rule {
            terminal = Some((
                "SuccessCriteriaMet",
                "Complete",
                "SuccessPolicy",
                message.as_str(),
            ));
        } else if failed > backoff_limit {
            terminal = Some((
                "FailureTarget",
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
        } else if spec
            .active_deadline_seconds
            .is_some_and(|d| Timestamp::now().duration_since(start).as_secs() >= d)
        {
            terminal = Some((
                "FailureTarget",
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        } else {
            let done = match completions {
                Some(c) => succeeded >= c,
                None => succeeded > 0 && active.is_empty(),
            };
            if done {
                terminal = Some((
                    "SuccessCriteriaMet",
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            }
        }
        if let Some((interim, final_type, reason, message)) = terminal {
            for p in &active {
                let _ = pods_api
                    .delete(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::background(),
                    )
                    .await;
            }
            if !active.is_empty() {
                return Ok(Some(Duration::from_millis(200)));
            }
            conditions.retain(|c| c.type_ != interim && c.type_ != final_type);
            conditions.push(condition(interim, reason, message));
            conditions.push(condition(final_type, reason, message));
            let mut patch = serde_json::json!({"status": {"conditions": conditions, "active": 0, "ready": 0,
                "startTime": Time(start)}});
            if final_type == "Complete" {
                patch["status"]["completionTime"] = serde_json::json!(Time(Timestamp::now()));
                self.recorder.eventf(
                    reference(job.as_ref()),
                    "Normal",
                    "Completed",
                    "Completed",
                    "Job completed".into(),
                );
            } else {
                self.recorder.eventf(
                    reference(job.as_ref()),
                    "Warning",
                    reason,
                    "Failed",
                    message.into(),
                );
            }
            update_status(&jobs_api, job.as_ref(), &patch).await?;
            return Ok(None);
        }

        let suspended = spec.suspend.unwrap_or(false);
        let mut requeue = None;
        // As upstream's manageJob: the active count reported includes the pods this sync
        // created and excludes those it deleted.
        let mut active_count = active.len() as i32;
        if suspended {
            for p in &active {
                let deleted = pods_api
                    .delete(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::background(),
                    )
                    .await;
                if deleted.is_ok() {
                    active_count -= 1;
                }
            }
        } else if self.expectations.satisfied(k) {
            let remaining = completions
                .map(|c| (c - succeeded).max(0))
                .unwrap_or(parallelism);
            let mut want = parallelism.min(remaining) as usize;
            if only_failed {
                want = want.saturating_sub(terminating as usize);
            }
            if active.len() < want {
                // Failed pods come back after the backoff.
                let delay = if failed > 0 {
                    DEFAULT_BACKOFF
                        .saturating_mul(1 << (failed - 1).min(10) as u32)
                        .min(MAX_BACKOFF)
                } else {
                    Duration::ZERO
                };
                let last_failure = pods
                    .iter()
                    .filter(|p| phase(p) == "Failed")
                    .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                    .max();
                let waited = last_failure
                    .map(|t| Timestamp::now().duration_since(t).as_secs_f64())
                    .unwrap_or(f64::MAX);
                if waited >= delay.as_secs_f64() {
                    let n = want - active.len();
                    // Indexed: the lowest indexes neither completed nor running.
                    let indexes: Vec<Option<i32>> = match indexed {
                        Some(completions) => {
                            let done = parse_indexes(
                                status.completed_indexes.as_deref().unwrap_or_default(),
                            );
                            let running: BTreeSet<i32> = active
                                .iter()
                                .filter_map(|p| index_of(p, completions))
                                .collect();
                            (0..completions)
                                .filter(|i| !done.contains(i) && !running.contains(i))
                                .take(n)
                                .map(Some)
                                .collect()
                        }
                        None => vec![None; n],
                    };
                    self.expectations.expect(k, indexes.len() as i64, 0);
                    for index in indexes {
                        if let Err(e) = self.create_pod(&job, &pods_api, index).await {
                            self.expectations.creation_observed(k);
                            return Err(e);
                        }
                        active_count += 1;
                    }
                } else {
                    requeue = Some(Duration::from_secs_f64(delay.as_secs_f64() - waited));
                }
            }
        }
        let ready = active.iter().filter(|p| is_ready(p)).count() as i32;
        let mut patch = serde_json::json!({"status": {"active": active_count, "ready": ready,
            "terminating": terminating, "startTime": Time(start)}});
        if suspended
            && !conditions
                .iter()
                .any(|c| c.type_ == "Suspended" && c.status == "True")
        {
            conditions.push(condition("Suspended", "JobSuspended", "Job suspended"));
            patch["status"]["conditions"] = serde_json::json!(conditions);
        }
        let same = status.active == Some(active_count)
            && status.ready == Some(ready)
            && status.terminating.unwrap_or(0) == terminating
            && status.start_time.is_some()
            && !suspended;
        if !same {
            update_status(&jobs_api, job.as_ref(), &patch).await?;
        }
        Ok(requeue)
    }

    async fn create_pod(
        &self,
        job: &Job,
        api: &Api<Pod>,
        index: Option<i32>,
    ) -> Result<(), String> {
        let template = job
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let tm = template.metadata.unwrap_or_default();
        let mut finalizers = tm.finalizers.unwrap_or_default();
        finalizers.push(TRACKING_FINALIZER.into());
        let job_name = job.metadata.name.as_deref().unwrap_or_default();
        let (mut labels, mut annotations) = (
            tm.labels.unwrap_or_default(),
            tm.annotations.unwrap_or_default(),
        );
        let mut spec = template.spec;
        let generate_name = match index {
            Some(i) => {
                // Upstream: the index as annotation and label, `<job>-<index>` as
                // hostname, and JOB_COMPLETION_INDEX in every container.
                labels.insert(COMPLETION_INDEX.into(), i.to_string());
                annotations.insert(COMPLETION_INDEX.into(), i.to_string());
                if let Some(ps) = spec.as_mut() {
                    ps.hostname = Some(format!("{job_name}-{i}"));
                    let env = k8s_openapi::api::core::v1::EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                            field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    for c in ps
                        .containers
                        .iter_mut()
                        .chain(ps.init_containers.iter_mut().flatten())
                    {
                        let list = c.env.get_or_insert_with(Vec::new);
                        if !list.iter().any(|e| e.name == env.name) {
                            list.push(env.clone());
                        }
                    }
                }
                format!("{job_name}-{i}-")
            }
            None => format!("{job_name}-"),
        };
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(generate_name),
                namespace: job.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: Some(annotations),
                finalizers: Some(finalizers),
                owner_references: Some(vec![OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "Job".into(),
                    name: job.metadata.name.clone().unwrap_or_default(),
                    uid: job.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec,
            status: None,
        };
        match api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                self.recorder.eventf(
                    reference(job),
                    "Normal",
                    "SuccessfulCreate",
                    "Create",
                    format!(
                        "Created pod: {}",
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.recorder.eventf(
                    reference(job),
                    "Warning",
                    "FailedCreate",
                    "Create",
                    format!("Error creating: {e}"),
                );
                Err(e.to_string())
            }
        }
    }
}

impl Reconciler for JobController {
    type Error = String;

    fn name(&self) -> &str {
        "job"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.jobs.clone(), self.pods.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        JobController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_round_trip_upstreams_format() {
        let set = parse_indexes("0,2-4,7");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 2, 3, 4, 7]);
        assert_eq!(format_indexes(&set), "0,2-4,7");
        assert_eq!(format_indexes(&BTreeSet::from([1, 2])), "1-2");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use serde_json::json;

    /// One sync of a new Job: as many pods as may run at once (parallelism, bounded by
    /// the completions left), none while suspended.
    #[tokio::test]
    async fn sync_starts_the_parallel_pods() {
        // (case, parallelism, completions, suspend, want pods)
        let cases = [
            ("parallel", 2, 4, false, 2),
            ("bounded-by-completions", 3, 2, false, 2),
            ("suspended", 2, 4, true, 0),
        ];
        for (name, parallelism, completions, suspend, want) in cases {
            let env = Env::new(&format!("job-{name}")).await;
            let (jobs, pods) = (env.informer::<Job>(), env.informer::<Pod>());
            let c = JobController::new(
                env.client.clone(),
                jobs.clone(),
                pods.clone(),
                env.recorder("job-controller"),
            );
            env.start().await;
            let mut spec = pod_spec();
            spec["restartPolicy"] = json!("Never");
            let job: Job = env
                .create(json!({"metadata": {"name": "work"}, "spec": {
                    "parallelism": parallelism, "completions": completions, "suspend": suspend,
                    "template": {"spec": spec}}}))
                .await;
            env.cached(&jobs, &[&job]).await;
            pods.synced().await;
            env.sync(c.as_ref(), &env.key("work")).await;

            let pods = env.list::<Pod>().await;
            assert_eq!(pods.len(), want, "{name}: pods");
            for p in &pods {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                assert_eq!(
                    labels.get("job-name").map(String::as_str),
                    Some("work"),
                    "{name}"
                );
            }
            let status = env
                .api::<Job>()
                .get("work")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            assert_eq!(
                status.active.unwrap_or(0),
                want as i32,
                "{name}: status.active"
            );
        }
    }
}
