//! The CronJob controller (upstream `pkg/controller/cronjob`, the v2 controller): at
//! each activation of `spec.schedule` (in `spec.timeZone`) a Job named
//! `<cronjob>-<minutes since the epoch>` is created from the job template, subject to
//! `startingDeadlineSeconds`, `concurrencyPolicy` (Allow, Forbid, Replace) and
//! `suspend`; `status.active`, `lastScheduleTime` and `lastSuccessfulTime` follow the
//! owned jobs, and finished jobs beyond the history limits are deleted. The controller
//! sleeps until the next activation rather than polling.

use crate::controller_utils::{controller_of, reference};
use crate::informer::{Informer, key, split};
use crate::reconciler::{Action, Reconciler};
use crate::workqueue::Queue;
use apimachinery::cron::Schedule;
use client_go::events::Recorder;
use client_go::informer::HasSynced;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use std::sync::Arc;
use std::time::Duration;

/// Upstream stops counting missed activations past this and warns.
const TOO_MANY_MISSED: usize = 100;
/// Annotation carrying the activation a job was created for.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub struct CronJobController {
    client: kube::Client,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
}

/// The finished condition (Complete or Failed) of a job, if any.
fn finished(j: &Job) -> Option<&str> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// Upstream's job name: the cronjob's name and the activation in minutes.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

fn job_ref(j: &Job) -> ObjectReference {
    reference(j)
}

/// Go's RFC1123Z, as upstream's MissSchedule event prints the activation.
fn rfc1123z(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

impl CronJobController {
    pub fn new(
        client: kube::Client,
        cronjobs: Arc<Informer<CronJob>>,
        jobs: Arc<Informer<Job>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        let queue = Queue::named("cronjob");
        {
            let q = queue.clone();
            cronjobs.add_handler(move |cj, deleted| {
                if !deleted {
                    q.add(key(cj));
                }
            });
        }
        {
            let q = queue.clone();
            jobs.add_event_handler(move |change| {
                for k in crate::controller_utils::OwnerKeys::of(&change, "CronJob").all() {
                    q.add(k.clone());
                }
            });
        }
        Arc::new(CronJobController {
            client,
            cronjobs,
            jobs,
            queue,
            recorder,
        })
    }

    fn event(&self, cj: &CronJob, type_: &str, reason: &str, note: String) {
        self.recorder.eventf(reference(cj), type_, reason, "", note);
    }

    /// Reconciles one CronJob; Some(d) asks to be called again after d (the next
    /// activation).
    async fn sync(&self, k: &str) -> Result<Option<Duration>, String> {
        let (ns, name) = split(k);
        let Some(cj) = self.cronjobs.store.get_in(ns, name) else {
            return Ok(None);
        };
        let cj = cj.as_ref().clone();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Job>> = self
            .jobs
            .store
            .state()
            .into_iter()
            .filter(|j| {
                j.metadata.namespace.as_deref() == Some(ns)
                    && controller_of(&j.metadata).is_some_and(|o| o.uid == uid)
            })
            .collect();
        let mut status = cj.status.clone().unwrap_or_default();
        let before = status.clone();
        let mut active = status.active.take().unwrap_or_default();

        // status.active follows the owned jobs.
        for j in &owned {
            let juid = j.metadata.uid.as_deref();
            let listed = active.iter().any(|r| r.uid.as_deref() == juid);
            let jname = j.metadata.name.clone().unwrap_or_default();
            match finished(j) {
                None if !listed => {
                    self.event(
                        &cj,
                        "Normal",
                        "UnexpectedJob",
                        format!("Saw a job that the controller did not create or forgot: {jname}"),
                    );
                    active.push(job_ref(j));
                }
                Some(cond) if listed => {
                    active.retain(|r| r.uid.as_deref() != juid);
                    self.event(
                        &cj,
                        "Normal",
                        "SawCompletedJob",
                        format!("Saw completed job: {jname}, condition: {cond}"),
                    );
                }
                _ => {}
            }
            if finished(j) == Some("Complete")
                && let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.clone())
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|t| t.0 < done.0)
            {
                status.last_successful_time = Some(done);
            }
        }
        let mut gone = Vec::new();
        active.retain(|r| {
            let exists = owned.iter().any(|j| j.metadata.uid == r.uid);
            if !exists {
                gone.push(r.name.clone().unwrap_or_default());
            }
            exists
        });
        for g in gone {
            self.event(
                &cj,
                "Normal",
                "MissingJob",
                format!("Active job went missing: {g}"),
            );
        }

        let next = if cj.metadata.deletion_timestamp.is_some() {
            None
        } else {
            self.schedule(&cj, &owned, &mut active, &mut status).await?
        };
        status.active = (!active.is_empty()).then_some(active);
        if status != before {
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
            let patch = serde_json::json!({"status": {
                "active": status.active,
                "lastScheduleTime": status.last_schedule_time,
                "lastSuccessfulTime": status.last_successful_time,
            }});
            crate::controller_utils::update_status(&api, &cj, &patch).await?;
        }
        self.clean_history(&cj, &owned).await;
        Ok(next)
    }

    /// Starts the job of the most recent activation if it is due; returns the wait
    /// until the next activation.
    async fn schedule(
        &self,
        cj: &CronJob,
        owned: &[Arc<Job>],
        active: &mut Vec<ObjectReference>,
        status: &mut k8s_openapi::api::batch::v1::CronJobStatus,
    ) -> Result<Option<Duration>, String> {
        let spec = cj.spec.clone().unwrap_or_default();
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => tz,
                Err(e) => {
                    self.event(
                        cj,
                        "Warning",
                        "UnknownTimeZone",
                        format!("invalid timeZone: {name:?}: {e}"),
                    );
                    return Ok(None);
                }
            },
        };
        let sched = match Schedule::parse(&spec.schedule) {
            Ok(s) => s,
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok(None);
            }
        };
        let now = Timestamp::now();
        let until_next = |from: Timestamp| {
            sched.next(from, &tz).map(|t| {
                Duration::try_from(t.duration_since(now)).unwrap_or_default()
                    + Duration::from_millis(100)
            })
        };
        if spec.suspend == Some(true) {
            return Ok(None);
        }
        // The most recent activation since the last one run (or creation), bounded
        // by startingDeadlineSeconds.
        let mut earliest = status
            .last_schedule_time
            .as_ref()
            .or(cj.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
            .unwrap_or(now);
        if let Some(sds) = spec.starting_deadline_seconds {
            let deadline = now - jiff::SignedDuration::from_secs(sds);
            if deadline > earliest {
                earliest = deadline;
            }
        }
        let mut missed = 0usize;
        let mut scheduled = None;
        let mut t = earliest;
        while let Some(n) = sched.next(t, &tz) {
            if n > now {
                break;
            }
            missed += 1;
            scheduled = Some(n);
            t = n;
            if missed > 100_000 {
                break;
            }
        }
        if missed > TOO_MANY_MISSED {
            self.event(cj, "Warning", "TooManyMissedTimes", format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"));
        }
        let Some(scheduled) = scheduled else {
            return Ok(until_next(now));
        };
        if let Some(sds) = spec.starting_deadline_seconds
            && scheduled + jiff::SignedDuration::from_secs(sds) < now
        {
            self.event(
                cj,
                "Warning",
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    rfc1123z(scheduled, &tz)
                ),
            );
            return Ok(until_next(now));
        }
        let ns = cj.metadata.namespace.as_deref().unwrap_or_default();
        let name = job_name(cj.metadata.name.as_deref().unwrap_or_default(), scheduled);
        let already = active.iter().any(|r| r.name.as_deref() == Some(&name))
            || owned
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(&name))
            || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
        if already {
            return Ok(until_next(now));
        }
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                self.event(
                    cj,
                    "Normal",
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                );
                return Ok(until_next(now));
            }
            Some("Replace") => {
                for r in std::mem::take(active) {
                    let jname = r.name.clone().unwrap_or_default();
                    let dp = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..Default::default()
                    };
                    let result = match jobs.delete(&jname, &dp).await {
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                        other => other.map(|_| ()),
                    };
                    match result {
                        Ok(()) => {
                            self.event(
                                cj,
                                "Normal",
                                "SuccessfulDelete",
                                format!("Deleted job {jname}"),
                            );
                        }
                        Err(e) => {
                            active.push(r);
                            return Err(e.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
        let job = self.job_from_template(cj, &name, scheduled, &tz);
        let created = match jobs.create(&PostParams::default(), &job).await {
            Ok(j) => j,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Created by an earlier sync whose status write was lost.
                let j = jobs.get(&name).await.map_err(|e| e.to_string())?;
                if controller_of(&j.metadata).map(|o| &o.uid) != cj.metadata.uid.as_ref() {
                    return Err(format!(
                        "job {name} exists and is not owned by this cronjob"
                    ));
                }
                j
            }
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                );
                return Err(e.to_string());
            }
        };
        self.event(
            cj,
            "Normal",
            "SuccessfulCreate",
            format!("Created job {name}"),
        );
        active.push(job_ref(&created));
        status.last_schedule_time = Some(Time(scheduled));
        Ok(until_next(now))
    }

    fn job_from_template(
        &self,
        cj: &CronJob,
        name: &str,
        scheduled: Timestamp,
        tz: &TimeZone,
    ) -> Job {
        let tpl = cj.spec.clone().unwrap_or_default().job_template;
        let meta = tpl.metadata.unwrap_or_default();
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert(
            SCHEDULED_TIMESTAMP.into(),
            scheduled
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
                .replace("+00:00", "Z"),
        );
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: cj.metadata.namespace.clone(),
                labels: meta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![cj.controller_owner_ref(&()).unwrap_or_default()]),
                ..Default::default()
            },
            spec: tpl.spec,
            status: None,
        }
    }

    /// Deletes the oldest finished jobs beyond the successful/failed history limits.
    async fn clean_history(&self, cj: &CronJob, owned: &[Arc<Job>]) {
        let spec = cj.spec.clone().unwrap_or_default();
        let ns = cj.metadata.namespace.as_deref().unwrap_or_default();
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        for (cond, limit) in [
            ("Complete", spec.successful_jobs_history_limit),
            ("Failed", spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&Arc<Job>> = owned
                .iter()
                .filter(|j| finished(j) == Some(cond) && j.metadata.deletion_timestamp.is_none())
                .collect();
            if done.len() <= limit.max(0) as usize {
                continue;
            }
            done.sort_by_key(|j| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0)
            });
            let excess = done.len() - limit.max(0) as usize;
            for j in done.into_iter().take(excess) {
                let jname = j.metadata.name.clone().unwrap_or_default();
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..Default::default()
                };
                if jobs.delete(&jname, &dp).await.is_ok() {
                    self.event(
                        cj,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted job {jname}"),
                    );
                }
            }
        }
    }
}

impl Reconciler for CronJobController {
    type Error = String;

    fn name(&self) -> &str {
        "cronjob"
    }

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    fn informers(&self) -> Vec<Arc<dyn HasSynced>> {
        vec![self.cronjobs.clone(), self.jobs.clone()]
    }

    async fn sync(&self, key: &str) -> Result<Action, String> {
        CronJobController::sync(self, key).await.map(Action::from)
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::testing::{Env, pod_spec};
    use kube::api::{Patch, PatchParams};
    use serde_json::json;

    /// One sync: a Job for the missed minute, nothing before the schedule is due or
    /// while suspended.
    #[tokio::test]
    async fn sync_runs_what_is_due() {
        // (case, schedule, suspend, last scheduled minutes ago, want jobs, want requeue)
        let cases = [
            ("due", "* * * * *", false, Some(2), 1, true),
            ("not-due", "0 0 1 1 *", false, None, 0, true),
            ("suspended", "* * * * *", true, Some(2), 0, false),
        ];
        for (name, schedule, suspend, last, want_jobs, want_requeue) in cases {
            let env = Env::new(&format!("cj-{name}")).await;
            let (cronjobs, jobs) = (env.informer::<CronJob>(), env.informer::<Job>());
            let c = CronJobController::new(
                env.client.clone(),
                cronjobs.clone(),
                jobs.clone(),
                env.recorder("cronjob-controller"),
            );
            env.start().await;
            let mut spec = pod_spec();
            spec["restartPolicy"] = json!("OnFailure");
            let mut cj: CronJob = env
                .create(json!({"metadata": {"name": "tick"}, "spec": {
                    "schedule": schedule, "suspend": suspend,
                    "jobTemplate": {"spec": {"template": {"spec": spec}}}}}))
                .await;
            if let Some(minutes) = last {
                let at = Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
                cj = env
                    .api::<CronJob>()
                    .patch_status(
                        "tick",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"lastScheduleTime": at.strftime("%Y-%m-%dT%H:%M:00Z").to_string()}})),
                    )
                    .await
                    .unwrap();
            }
            env.cached(&cronjobs, &[&cj]).await;
            jobs.synced().await;
            let action = env.sync(c.as_ref(), &env.key("tick")).await;

            let got = env.list::<Job>().await;
            assert_eq!(got.len(), want_jobs, "{name}: jobs");
            for j in &got {
                assert!(
                    j.metadata.name.as_deref().unwrap().starts_with("tick-"),
                    "{name}"
                );
                assert_eq!(
                    controller_of(&j.metadata)
                        .map(|o| o.name.clone())
                        .as_deref(),
                    Some("tick")
                );
            }
            assert_eq!(
                matches!(action, Action::RequeueAfter(_)),
                want_requeue,
                "{name}: {action:?}"
            );
        }
    }
}
