//! The controllers' describers besides Deployment: ReplicaSet, StatefulSet, DaemonSet,
//! Job and CronJob. Upstream twin: `kubectl/pkg/describe/describe.go`
//! (`describeReplicaSet`, `describeStatefulSet`, `describeDaemonSet`, `describeJob`,
//! `describeCronJob`).

use super::kinds::rfc1123z;
use super::workloads::{format_label_selector, pod_template};
use super::{
    PrefixWriter, annotations_multiline, describe_events, labels_multiline, name_namespace, s,
};
use serde_json::Value;

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The phases of a controller's pods: running, waiting, succeeded, failed.
pub type PodCounts = (usize, usize, usize, usize);

/// upstream `getPodStatusForController`: the pods `uid` controls, by phase.
pub fn pod_counts(pods: &[Value], uid: &Value) -> PodCounts {
    let mut c = (0, 0, 0, 0);
    for p in pods {
        let controlled = p["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter()
                    .any(|r| r["controller"] == true && &r["uid"] == uid)
            });
        if !controlled {
            continue;
        }
        match s(&p["status"]["phase"]) {
            "Running" => c.0 += 1,
            "Pending" => c.1 += 1,
            "Succeeded" => c.2 += 1,
            "Failed" => c.3 += 1,
            _ => {}
        }
    }
    c
}

fn pods_status(w: &mut PrefixWriter, c: PodCounts) {
    w.write(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            c.0, c.1, c.2, c.3
        ),
    );
}

/// `labels.Selector.String()` of a label selector: requirements sorted by key, empty
/// when it selects everything.
pub fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), format!("{k}={}", s(v))))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = s(&e["key"]).to_string();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        values.sort();
        let text = match s(&e["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `Kind/name` of the object's controller, if any.
pub fn controlled_by(obj: &Value) -> Option<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| format!("{}/{}", s(&r["kind"]), s(&r["name"])))
}

fn labels_annotations(w: &mut PrefixWriter, obj: &Value) {
    labels_multiline(w, "Labels", &obj["metadata"]["labels"]);
    annotations_multiline(w, "Annotations", &obj["metadata"]["annotations"]);
}

pub fn replica_set(w: &mut PrefixWriter, rs: &Value, pods: PodCounts, events: Option<&[Value]>) {
    name_namespace(w, rs);
    w.write(
        0,
        &format!(
            "Selector:\t{}\n",
            format_label_selector(&rs["spec"]["selector"])
        ),
    );
    labels_annotations(w, rs);
    if let Some(c) = controlled_by(rs) {
        w.write(0, &format!("Controlled By:\t{c}\n"));
    }
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            n(&rs["status"]["replicas"]),
            rs["spec"]["replicas"].as_i64().unwrap_or(1)
        ),
    );
    pods_status(w, pods);
    pod_template(w, &rs["spec"]["template"]);
    super::workloads::conditions_short(w, &rs["status"]["conditions"]);
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

pub fn stateful_set(w: &mut PrefixWriter, ss: &Value, pods: PodCounts, events: Option<&[Value]>) {
    let spec = &ss["spec"];
    name_namespace(w, ss);
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(ss["metadata"]["creationTimestamp"].as_str())
        ),
    );
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(&spec["selector"])),
    );
    labels_annotations(w, ss);
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} total\n",
            spec["replicas"].as_i64().unwrap_or(1),
            n(&ss["status"]["replicas"])
        ),
    );
    w.write(
        0,
        &format!("Update Strategy:\t{}\n", s(&spec["updateStrategy"]["type"])),
    );
    let ru = &spec["updateStrategy"]["rollingUpdate"];
    if let Some(p) = ru["partition"].as_i64() {
        w.write(1, &format!("Partition:\t{p}\n"));
        match &ru["maxUnavailable"] {
            Value::Number(x) => w.write(1, &format!("MaxUnavailable:\t{x}\n")),
            Value::String(x) => w.write(1, &format!("MaxUnavailable:\t{x}\n")),
            _ => {}
        }
    }
    pods_status(w, pods);
    pod_template(w, &spec["template"]);
    let templates = spec["volumeClaimTemplates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if templates.is_empty() {
        w.write(0, "Volume Claims:\t<none>\n");
    } else {
        w.write(0, "Volume Claims:\n");
        for pvc in &templates {
            w.write(1, &format!("Name:\t{}\n", s(&pvc["metadata"]["name"])));
            w.write(
                1,
                &format!("StorageClass:\t{}\n", super::storage::claim_class(pvc)),
            );
            indented_map(w, "Labels", &pvc["metadata"]["labels"]);
            indented_map(w, "Annotations", &pvc["metadata"]["annotations"]);
            let capacity = s(&pvc["spec"]["resources"]["requests"]["storage"]);
            w.write(
                1,
                &format!(
                    "Capacity:\t{}\n",
                    if capacity.is_empty() {
                        "<default>"
                    } else {
                        capacity
                    }
                ),
            );
            let modes: Vec<&str> = pvc["spec"]["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            w.write(1, &format!("Access Modes:\t[{}]\n", modes.join(" ")));
        }
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

/// `printLabelsMultilineWithIndent(w, "  ", title, "\t", m, {})`.
fn indented_map(w: &mut PrefixWriter, title: &str, m: &Value) {
    w.write(0, &format!("  {title}:\t"));
    let Some(m) = m.as_object().filter(|m| !m.is_empty()) else {
        w.write(0, "<none>\n");
        return;
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for (i, k) in keys.into_iter().enumerate() {
        if i != 0 {
            w.write(0, "  \t");
        }
        w.write(0, &format!("{k}={}\n", s(&m[k])));
    }
}

pub fn daemon_set(w: &mut PrefixWriter, ds: &Value, pods: PodCounts, events: Option<&[Value]>) {
    let spec = &ds["spec"];
    let st = &ds["status"];
    name_namespace(w, ds);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(&spec["selector"])),
    );
    let node_selector = spec["template"]["spec"]["nodeSelector"]
        .as_object()
        .filter(|m| !m.is_empty())
        .map(|m| {
            let mut kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
            kv.sort();
            kv.join(",")
        })
        .unwrap_or_else(|| "<none>".into());
    w.write(0, &format!("Node-Selector:\t{node_selector}\n"));
    labels_annotations(w, ds);
    for (label, field) in [
        (
            "Desired Number of Nodes Scheduled",
            "desiredNumberScheduled",
        ),
        (
            "Current Number of Nodes Scheduled",
            "currentNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            "updatedNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            "numberAvailable",
        ),
        ("Number of Nodes Misscheduled", "numberMisscheduled"),
    ] {
        w.write(0, &format!("{label}: {}\n", n(&st[field])));
    }
    pods_status(w, pods);
    pod_template(w, &spec["template"]);
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

pub fn job(w: &mut PrefixWriter, job: &Value, events: Option<&[Value]>) {
    let spec = &job["spec"];
    let st = &job["status"];
    name_namespace(w, job);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(&spec["selector"])),
    );
    labels_annotations(w, job);
    if let Some(c) = controlled_by(job) {
        w.write(0, &format!("Controlled By:\t{c}\n"));
    }
    if let Some(p) = spec["parallelism"].as_i64() {
        w.write(0, &format!("Parallelism:\t{p}\n"));
    }
    match spec["completions"].as_i64() {
        Some(c) => w.write(0, &format!("Completions:\t{c}\n")),
        None => w.write(0, "Completions:\t<unset>\n"),
    }
    if let Some(m) = spec["completionMode"].as_str() {
        w.write(0, &format!("Completion Mode:\t{m}\n"));
    }
    if let Some(b) = spec["suspend"].as_bool() {
        w.write(0, &format!("Suspend:\t{b}\n"));
    }
    if let Some(b) = spec["backoffLimit"].as_i64() {
        w.write(0, &format!("Backoff Limit:\t{b}\n"));
    }
    if let Some(t) = spec["ttlSecondsAfterFinished"].as_i64() {
        w.write(0, &format!("TTL Seconds After Finished:\t{t}\n"));
    }
    let start = st["startTime"].as_str();
    let done = st["completionTime"].as_str();
    if start.is_some() {
        w.write(0, &format!("Start Time:\t{}\n", rfc1123z(start)));
    }
    if done.is_some() {
        w.write(0, &format!("Completed At:\t{}\n", rfc1123z(done)));
    }
    if let (Some(a), Some(b)) = (start, done) {
        let secs = |t: &str| {
            t.parse::<jiff::Timestamp>()
                .map(|t| t.as_second())
                .unwrap_or(0)
        };
        w.write(
            0,
            &format!(
                "Duration:\t{}\n",
                crate::cmd::util::human_duration(secs(b) - secs(a))
            ),
        );
    }
    if let Some(d) = spec["activeDeadlineSeconds"].as_i64() {
        w.write(0, &format!("Active Deadline Seconds:\t{d}s\n"));
    }
    match st["ready"].as_i64() {
        None => w.write(
            0,
            &format!(
                "Pods Statuses:\t{} Active / {} Succeeded / {} Failed\n",
                n(&st["active"]),
                n(&st["succeeded"]),
                n(&st["failed"])
            ),
        ),
        Some(r) => w.write(
            0,
            &format!(
                "Pods Statuses:\t{} Active ({r} Ready) / {} Succeeded / {} Failed\n",
                n(&st["active"]),
                n(&st["succeeded"]),
                n(&st["failed"])
            ),
        ),
    }
    if spec["completionMode"] == "Indexed" {
        w.write(
            0,
            &format!(
                "Completed Indexes:\t{}\n",
                cap_indexes(s(&st["completedIndexes"]), 50)
            ),
        );
    }
    pod_template(w, &spec["template"]);
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

/// upstream `capIndexesListOrNone`: the list up to the first comma past `soft_limit`.
fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    match indexes
        .char_indices()
        .skip(soft_limit)
        .find(|(_, c)| *c == ',')
    {
        Some((i, _)) => format!("{}...", &indexes[..=i]),
        None => indexes.to_string(),
    }
}

pub fn cron_job(w: &mut PrefixWriter, cj: &Value, events: Option<&[Value]>) {
    let spec = &cj["spec"];
    name_namespace(w, cj);
    labels_annotations(w, cj);
    w.write(0, &format!("Schedule:\t{}\n", s(&spec["schedule"])));
    w.write(
        0,
        &format!("Concurrency Policy:\t{}\n", s(&spec["concurrencyPolicy"])),
    );
    let suspend = match spec["suspend"].as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    w.write(0, &format!("Suspend:\t{suspend}\n"));
    let opt = |v: &Value, suffix: &str| {
        v.as_i64()
            .map(|x| format!("{x}{suffix}"))
            .unwrap_or_else(|| "<unset>".into())
    };
    w.write(
        0,
        &format!(
            "Successful Job History Limit:\t{}\n",
            opt(&spec["successfulJobsHistoryLimit"], "")
        ),
    );
    w.write(
        0,
        &format!(
            "Failed Job History Limit:\t{}\n",
            opt(&spec["failedJobsHistoryLimit"], "")
        ),
    );
    w.write(
        0,
        &format!(
            "Starting Deadline Seconds:\t{}\n",
            opt(&spec["startingDeadlineSeconds"], "s")
        ),
    );
    let jt = &spec["jobTemplate"]["spec"];
    if jt["selector"].is_object() {
        w.write(
            0,
            &format!("Selector:\t{}\n", selector_string(&jt["selector"])),
        );
    } else {
        w.write(0, "Selector:\t<unset>\n");
    }
    w.write(
        0,
        &format!("Parallelism:\t{}\n", opt(&jt["parallelism"], "")),
    );
    w.write(
        0,
        &format!("Completions:\t{}\n", opt(&jt["completions"], "")),
    );
    if let Some(d) = jt["activeDeadlineSeconds"].as_i64() {
        w.write(0, &format!("Active Deadline Seconds:\t{d}s\n"));
    }
    pod_template(w, &jt["template"]);
    match cj["status"]["lastScheduleTime"].as_str() {
        Some(t) => w.write(0, &format!("Last Schedule Time:\t{}\n", rfc1123z(Some(t)))),
        None => w.write(0, "Last Schedule Time:\t<unset>\n"),
    }
    let active: Vec<&str> = cj["status"]["active"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| s(&j["name"]))
        .collect();
    if active.is_empty() {
        w.write(0, "Active Jobs:\t<none>\n");
    } else {
        w.write(0, &format!("Active Jobs:\t{}\n", active.join(", ")));
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_print_as_label_selectors_do() {
        let sel = json!({"matchLabels": {"z": "1", "a": "2"}, "matchExpressions": [{"key": "m", "operator": "In", "values": ["y", "x"]}]});
        assert_eq!(selector_string(&sel), "a=2,m in (x,y),z=1");
        assert_eq!(selector_string(&json!({})), "");
    }

    #[test]
    fn pods_are_counted_for_their_controller_only() {
        let uid = json!("u1");
        let pod = |phase: &str, uid: &str| json!({"metadata": {"ownerReferences": [{"controller": true, "uid": uid}]}, "status": {"phase": phase}});
        let pods = [
            pod("Running", "u1"),
            pod("Pending", "u1"),
            pod("Running", "u2"),
            pod("Failed", "u1"),
        ];
        assert_eq!(pod_counts(&pods, &uid), (1, 1, 0, 1));
    }

    #[test]
    fn completed_indexes_are_capped_at_a_comma() {
        assert_eq!(cap_indexes("", 50), "<none>");
        assert_eq!(cap_indexes("1-3,5", 2), "1-3,...");
        assert_eq!(cap_indexes("1-3", 2), "1-3");
    }
}
