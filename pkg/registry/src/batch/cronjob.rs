//! CronJobs (upstream `pkg/registry/batch/cronjob` and the batch/v1 defaults).

use crate::core::pod::{default_pod_spec, validate_pod_spec};
use crate::printers::{age, cols, containers_images, or_none, selector, since};
use crate::typed::{Typed, info};
use apimachinery::Cause;
use k8s_openapi::api::batch::v1::CronJob;
use serde_json::json;

/// A standard 5-field cron schedule or one of the `@` descriptors, read as the
/// controller reads it.
pub fn validate_schedule(s: &str) -> Result<(), String> {
    apimachinery::cron::Schedule::parse(s).map(|_| ())
}

pub fn strategy() -> Typed<CronJob> {
    let mut i = info("batch", "v1", "CronJob", "cronjobs", true, "cronjobs");
    i.short_names = vec!["cj".into()];
    i.categories = vec!["all".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |c: &mut CronJob| {
        let Some(spec) = c.spec.as_mut() else { return };
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".into());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        if let Some(js) = spec.job_template.spec.as_mut() {
            if js.completions.is_none() && js.parallelism.is_none() {
                js.completions = Some(1);
                js.parallelism = Some(1);
            }
            js.parallelism.get_or_insert(1);
            js.backoff_limit.get_or_insert(6);
            js.completion_mode
                .get_or_insert_with(|| "NonIndexed".into());
            js.suspend.get_or_insert(false);
            if js.pod_replacement_policy.is_none() {
                js.pod_replacement_policy = Some("TerminatingOrFailed".into());
            }
            if let Some(ps) = js.template.spec.as_mut() {
                default_pod_spec(ps);
            }
        }
    };
    t.validate = |cj: &CronJob| {
        let Some(spec) = &cj.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        if spec.schedule.is_empty() {
            c.push(Cause::required("spec.schedule", ""));
        } else if let Err(e) = validate_schedule(&spec.schedule) {
            c.push(Cause::invalid("spec.schedule", &json!(spec.schedule), &e));
        }
        if let Some(tz) = &spec.time_zone
            && (tz.is_empty() || jiff::tz::TimeZone::get(tz).is_err())
        {
            c.push(Cause::invalid(
                "spec.timeZone",
                &json!(tz),
                "unknown time zone",
            ));
        }
        match spec.concurrency_policy.as_deref() {
            Some("Allow" | "Forbid" | "Replace") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "spec.concurrencyPolicy",
                &json!(other),
                &["Allow", "Forbid", "Replace"],
            )),
        }
        c.extend(apimachinery::validation::non_negative(
            "spec.startingDeadlineSeconds",
            spec.starting_deadline_seconds,
        ));
        if cj.metadata.name.as_deref().is_some_and(|n| n.len() > 52) {
            c.push(Cause::invalid(
                "metadata.name",
                &json!(cj.metadata.name),
                "must be no more than 52 characters",
            ));
        }
        if let Some(ps) = spec
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
        {
            c.extend(validate_pod_spec("spec.jobTemplate.spec.template.spec", ps));
            match ps.restart_policy.as_deref() {
                Some("OnFailure" | "Never") => {}
                other => c.push(Cause::not_supported(
                    "spec.jobTemplate.spec.template.spec.restartPolicy",
                    &json!(other),
                    &["OnFailure", "Never"],
                )),
            }
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ])
    });
    t.row = |o| {
        let s = &o["spec"];
        let js = &s["jobTemplate"]["spec"];
        let [c, i] = containers_images(&js["template"]["spec"]);
        vec![
            s["schedule"].clone(),
            or_none(&s["timeZone"]),
            json!(s["suspend"].as_bool().unwrap_or(false)),
            json!(
                o["status"]["active"]
                    .as_array()
                    .map(|a| a.len())
                    .unwrap_or(0)
            ),
            since(&o["status"]["lastScheduleTime"]),
            age(o),
            c,
            i,
            selector(&js["selector"]),
        ]
    };
    t
}
