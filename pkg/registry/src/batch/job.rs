//! Jobs (upstream `pkg/registry/batch/job` and the batch/v1 defaults): the generated
//! `controller-uid` selector and pod labels, completion modes, backoff.

use crate::core::pod::{default_pod_spec, validate_pod_spec};
use crate::printers::{age, cols, containers_images, selector};
use crate::typed::{Typed, immutable, info};
use apimachinery::Cause;
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";

/// Upstream's `generateSelector`: unless `manualSelector`, the selector is the job's uid
/// and the template carries the uid and name labels (legacy and prefixed).
fn generate_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"].as_bool() == Some(true) {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("controller-uid", &uid),
        (CONTROLLER_UID, &uid),
        ("job-name", &name),
        (JOB_NAME, &name),
    ] {
        labels[k] = v.clone();
    }
    if obj["spec"]["selector"].is_null() {
        obj["spec"]["selector"] = json!({"matchLabels": {CONTROLLER_UID: uid}});
    }
}

pub fn strategy() -> Typed<Job> {
    let mut i = info("batch", "v1", "Job", "jobs", true, "jobs");
    i.categories = vec!["all".into()];
    i.subresources = vec!["status".into()];
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |j: &mut Job| {
        let Some(spec) = j.spec.as_mut() else { return };
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
            spec.parallelism = Some(1);
        }
        spec.parallelism.get_or_insert(1);
        if spec.backoff_limit.is_none() {
            spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
                i32::MAX
            } else {
                6
            });
        }
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        spec.manual_selector.get_or_insert(false);
        if spec.pod_replacement_policy.is_none() {
            spec.pod_replacement_policy = Some(if spec.pod_failure_policy.is_some() {
                "Failed".into()
            } else {
                "TerminatingOrFailed".into()
            });
        }
        if let Some(ps) = spec.template.spec.as_mut() {
            default_pod_spec(ps);
        }
    };
    t.prepare_for_create = |obj| {
        obj["status"] = json!({});
        generate_selector(obj);
    };
    t.validate = |j: &Job| {
        let Some(spec) = &j.spec else {
            return vec![Cause::required("spec", "")];
        };
        let mut c = Vec::new();
        for (f, v) in [
            ("spec.parallelism", spec.parallelism),
            ("spec.completions", spec.completions),
            ("spec.backoffLimit", spec.backoff_limit),
        ] {
            c.extend(apimachinery::validation::non_negative(f, v));
        }
        if let Some(d) = spec.active_deadline_seconds.filter(|d| *d <= 0) {
            c.push(Cause::invalid(
                "spec.activeDeadlineSeconds",
                &json!(d),
                "must be greater than 0",
            ));
        }
        match spec.completion_mode.as_deref() {
            Some("Indexed") if spec.completions.is_none() => c.push(Cause::required(
                "spec.completions",
                "when completion mode is Indexed",
            )),
            Some("Indexed" | "NonIndexed") | None => {}
            Some(other) => c.push(Cause::not_supported(
                "spec.completionMode",
                &json!(other),
                &["NonIndexed", "Indexed"],
            )),
        }
        match &spec.template.spec {
            Some(ps) => {
                c.extend(validate_pod_spec("spec.template.spec", ps));
                match ps.restart_policy.as_deref() {
                    Some("OnFailure" | "Never") => {}
                    other => c.push(Cause::not_supported(
                        "spec.template.spec.restartPolicy",
                        &json!(other),
                        &["OnFailure", "Never"],
                    )),
                }
            }
            None => c.push(Cause::required("spec.template.spec", "")),
        }
        if spec.selector.is_none() {
            c.push(Cause::required("spec.selector", ""));
        }
        c
    };
    t.validate_update = |n, o| {
        let (Some(ns), Some(os)) = (&n.spec, &o.spec) else {
            return Vec::new();
        };
        let mut c: Vec<Cause> =
            immutable("spec.selector", &json!(ns.selector), &json!(os.selector))
                .into_iter()
                .collect();
        c.extend(immutable(
            "spec.completions",
            &json!(ns.completions),
            &json!(os.completions),
        ));
        c.extend(immutable(
            "spec.completionMode",
            &json!(ns.completion_mode),
            &json!(os.completion_mode),
        ));
        // The template may change only while the job is suspended (and never started).
        let started = o
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_some();
        if (os.suspend != Some(true) || started) && json!(ns.template) != json!(os.template) {
            c.push(Cause::invalid(
                "spec.template",
                &json!(ns.template),
                "field is immutable",
            ));
        }
        c
    };
    t.columns = Some(|| {
        cols(&[
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ])
    });
    t.row = |o| {
        let st = &o["status"];
        let cond = |t: &str| {
            st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"].as_str() == Some(t) && c["status"].as_str() == Some("True"))
        };
        let status = if cond("Complete") {
            "Complete"
        } else if cond("Failed") {
            "Failed"
        } else if o["metadata"]["deletionTimestamp"].is_string() {
            "Terminating"
        } else if cond("SuccessCriteriaMet") {
            "SuccessCriteriaMet"
        } else if cond("Suspended") {
            "Suspended"
        } else if cond("FailureTarget") {
            "FailureTarget"
        } else {
            "Running"
        };
        let succeeded = st["succeeded"].as_i64().unwrap_or(0);
        let completions = match o["spec"]["completions"].as_i64() {
            Some(n) => format!("{succeeded}/{n}"),
            None => {
                let p = o["spec"]["parallelism"].as_i64().unwrap_or(0);
                if p > 1 {
                    format!("{succeeded}/1 of {p}")
                } else {
                    format!("{succeeded}/1")
                }
            }
        };
        let ts = |v: &Value| v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
        let duration = match (ts(&st["startTime"]), ts(&st["completionTime"])) {
            (Some(s), Some(e)) => {
                apiserver::endpoints::table::human_duration(e.as_second() - s.as_second())
            }
            (Some(s), None) => apiserver::endpoints::table::human_duration(
                jiff::Timestamp::now().as_second() - s.as_second(),
            ),
            _ => String::new(),
        };
        let [c, i] = containers_images(&o["spec"]["template"]["spec"]);
        vec![
            json!(status),
            json!(completions),
            json!(duration),
            age(o),
            c,
            i,
            selector(&o["spec"]["selector"]),
        ]
    };
    t
}
