//! The Node describer: roles, taints, its Lease, conditions, addresses, capacity, system
//! info and what its non-terminated pods request. Upstream twins:
//! `kubectl/pkg/describe/describe.go` (`describeNode`, `describeNodeResource`,
//! `describeNodeLease`) and `kubectl/pkg/util/resource` (`PodRequestsAndLimits`).

use super::kinds::rfc1123z;
use super::{PrefixWriter, annotations_multiline, describe_events, labels_multiline, s};
use apimachinery::resource::Quantity;
use serde_json::Value;
use std::collections::BTreeMap;

type ResourceList = BTreeMap<String, Quantity>;

fn list(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Quantity::from_json(q).map(|q| (k.clone(), q)))
        .collect()
}

fn add(to: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        let sum = match to.get(k) {
            Some(have) => have.add(q),
            None => *q,
        };
        to.insert(k.clone(), sum);
    }
}

fn max(to: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        if to.get(k).is_none_or(|have| q > have) {
            to.insert(k.clone(), *q);
        }
    }
}

/// upstream `PodRequestsAndLimits`: containers and sidecars summed, the larger of that and
/// each init container (with the sidecars started before it), plus the pod's overhead.
pub fn pod_requests_and_limits(pod: &Value) -> (ResourceList, ResourceList) {
    let spec = &pod["spec"];
    let mut out = Vec::new();
    for field in ["requests", "limits"] {
        let mut total = ResourceList::new();
        for c in spec["containers"].as_array().into_iter().flatten() {
            add(&mut total, &list(&c["resources"][field]));
        }
        let mut sidecars = ResourceList::new();
        let mut init = ResourceList::new();
        for c in spec["initContainers"].as_array().into_iter().flatten() {
            let own = list(&c["resources"][field]);
            let effective = if c["restartPolicy"] == "Always" {
                add(&mut total, &own);
                add(&mut sidecars, &own);
                sidecars.clone()
            } else {
                let mut t = own;
                add(&mut t, &sidecars);
                t
            };
            max(&mut init, &effective);
        }
        max(&mut total, &init);
        let overhead = list(&spec["overhead"]);
        if field == "requests" {
            add(&mut total, &overhead);
        } else {
            for (k, q) in overhead {
                if let Some(have) = total.get(&k).filter(|h| !h.is_zero()) {
                    let sum = have.add(&q);
                    total.insert(k, sum);
                }
            }
        }
        out.push(total);
    }
    let limits = out.pop().expect("two lists");
    (out.pop().expect("two lists"), limits)
}

/// `node-role.kubernetes.io/<role>` labels and `kubernetes.io/role`, sorted.
fn roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(r) if !r.is_empty() => Some(r.to_string()),
            Some(_) => None,
            None if k == "kubernetes.io/role" && !s(v).is_empty() => Some(s(v).to_string()),
            None => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// What the Node describer reads besides the node.
pub struct NodeRelated {
    /// The node's non-terminated pods, `None` when listing them is forbidden.
    pub pods: Option<Vec<Value>>,
    /// The node's Lease, or why it could not be read.
    pub lease: Result<Value, String>,
}

pub fn node(w: &mut PrefixWriter, node: &Value, related: &NodeRelated, events: Option<&[Value]>) {
    let meta = &node["metadata"];
    let spec = &node["spec"];
    let st = &node["status"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    let roles = roles(node);
    w.write(
        0,
        &format!(
            "Roles:\t{}\n",
            if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            }
        ),
    );
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(meta["creationTimestamp"].as_str())
        ),
    );
    let mut taints: Vec<&Value> = spec["taints"].as_array().into_iter().flatten().collect();
    taints.sort_by_key(|t| format!("{},{}", s(&t["effect"]), s(&t["key"])));
    w.write(0, "Taints:\t");
    if taints.is_empty() {
        w.write(0, "<none>\n");
    }
    for (i, t) in taints.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.write(0, &format!("{}\n", taint_string(t)));
    }
    w.write(
        0,
        &format!(
            "Unschedulable:\t{}\n",
            spec["unschedulable"].as_bool().unwrap_or(false)
        ),
    );
    match &related.lease {
        Ok(lease) => {
            let ls = &lease["spec"];
            w.write(0, "Lease:\n");
            w.write(
                1,
                &format!(
                    "HolderIdentity:\t{}\n",
                    ls["holderIdentity"].as_str().unwrap_or("<unset>")
                ),
            );
            for (label, field) in [("AcquireTime", "acquireTime"), ("RenewTime", "renewTime")] {
                let t = match ls[field].as_str() {
                    Some(t) => rfc1123z(Some(t)),
                    None => "<unset>".into(),
                };
                w.write(1, &format!("{label}:\t{t}\n"));
            }
        }
        Err(e) => w.write(0, &format!("Lease:\tFailed to get lease: {e}\n")),
    }
    super::timed_conditions(
        w,
        &st["conditions"],
        "LastHeartbeatTime",
        "lastHeartbeatTime",
    );
    w.write(0, "Addresses:\n");
    for a in st["addresses"].as_array().into_iter().flatten() {
        w.write(1, &format!("{}:\t{}\n", s(&a["type"]), s(&a["address"])));
    }
    for (title, field) in [("Capacity", "capacity"), ("Allocatable", "allocatable")] {
        let l = list(&st[field]);
        if !l.is_empty() {
            w.write(0, &format!("{title}:\n"));
            for (k, q) in &l {
                w.write(0, &format!("  {k}:\t{q}\n"));
            }
        }
    }
    let info = &st["nodeInfo"];
    w.write(0, "System Info:\n");
    for (label, field) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ] {
        w.write(0, &format!("  {label}:\t{}\n", s(&info[field])));
    }
    if let Some(c) = spec["podCIDR"].as_str().filter(|c| !c.is_empty()) {
        w.write(0, &format!("PodCIDR:\t{c}\n"));
    }
    let cidrs: Vec<&str> = spec["podCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !cidrs.is_empty() {
        w.write(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if let Some(p) = spec["providerID"].as_str().filter(|p| !p.is_empty()) {
        w.write(0, &format!("ProviderID:\t{p}\n"));
    }
    match &related.pods {
        Some(pods) => node_resources(w, node, pods),
        None => w.write(0, "Pods:\tnot authorized\n"),
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

/// `Taint.ToString`: `key=value:Effect`, `key:Effect`.
fn taint_string(t: &Value) -> String {
    let value = s(&t["value"]);
    if value.is_empty() {
        format!("{}:{}", s(&t["key"]), s(&t["effect"]))
    } else {
        format!("{}={value}:{}", s(&t["key"]), s(&t["effect"]))
    }
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    (part as f64 / whole as f64 * 100.0) as i64
}

const STANDARD: &[&str] = &["cpu", "memory", "ephemeral-storage", "storage"];

fn node_resources(w: &mut PrefixWriter, node: &Value, pods: &[Value]) {
    w.write(
        0,
        &format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    w.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.write(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let mut allocatable = list(&node["status"]["capacity"]);
    let alloc = list(&node["status"]["allocatable"]);
    if !alloc.is_empty() {
        allocatable = alloc;
    }
    let zero = Quantity::default();
    let get = |l: &ResourceList, k: &str| l.get(k).cloned().unwrap_or_default();
    let cpu = get(&allocatable, "cpu").milli_value();
    let mem = get(&allocatable, "memory").value();
    let (mut reqs, mut limits) = (ResourceList::new(), ResourceList::new());
    for p in pods {
        let (r, l) = pod_requests_and_limits(p);
        let (cr, cl, mr, ml) = (
            get(&r, "cpu"),
            get(&l, "cpu"),
            get(&r, "memory"),
            get(&l, "memory"),
        );
        // Upstream divides without a zero check here: Go's int64 of NaN or Inf, which
        // is its minimum, for a node without allocatable CPU or memory.
        let pct = |part: i64, whole: i64| {
            if whole == 0 {
                i64::MIN
            } else {
                percent(part, whole)
            }
        };
        w.write(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                s(&p["metadata"]["namespace"]),
                s(&p["metadata"]["name"]),
                cr,
                pct(cr.milli_value(), cpu),
                cl,
                pct(cl.milli_value(), cpu),
                mr,
                pct(mr.value(), mem),
                ml,
                pct(ml.value(), mem),
                crate::cmd::util::age(p["metadata"]["creationTimestamp"].as_str())
            ),
        );
        add(&mut reqs, &r);
        add(&mut limits, &l);
    }
    w.write(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.write(1, "Resource\tRequests\tLimits\n");
    w.write(1, "--------\t--------\t------\n");
    for (name, by_milli) in [
        ("cpu", true),
        ("memory", false),
        ("ephemeral-storage", false),
    ] {
        let (r, l) = (get(&reqs, name), get(&limits, name));
        let whole = get(&allocatable, name);
        let (rv, lv, wv) = if by_milli {
            (r.milli_value(), l.milli_value(), whole.milli_value())
        } else {
            (r.value(), l.value(), whole.value())
        };
        w.write(
            1,
            &format!(
                "{name}\t{r} ({}%)\t{l} ({}%)\n",
                percent(rv, wv),
                percent(lv, wv)
            ),
        );
    }
    let huge: Vec<&String> = allocatable
        .keys()
        .filter(|k| k.starts_with("hugepages-"))
        .collect();
    for name in huge {
        let (r, l) = (get(&reqs, name), get(&limits, name));
        let whole = get(&allocatable, name).value();
        w.write(
            1,
            &format!(
                "{name}\t{r} ({}%)\t{l} ({}%)\n",
                percent(r.value(), whole),
                percent(l.value(), whole)
            ),
        );
    }
    for name in allocatable.keys() {
        // Extended resources: not standard, not hugepages, not pods.
        let standard = STANDARD.contains(&name.as_str())
            || name.starts_with("hugepages-")
            || name.starts_with("requests.")
            || name.starts_with("limits.")
            || name == "pods";
        if standard {
            continue;
        }
        let (r, l) = (
            reqs.get(name).unwrap_or(&zero),
            limits.get(name).unwrap_or(&zero),
        );
        w.write(1, &format!("{name}\t{r}\t{l}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_requests_follow_init_and_sidecar_rules() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }});
        let (r, l) = pod_requests_and_limits(&pod);
        // max(100m + 50m, 500m + 50m) + 10m overhead
        assert_eq!(r["cpu"].to_string(), "560m");
        assert_eq!(r["memory"].to_string(), "64Mi");
        assert_eq!(l["cpu"].to_string(), "210m");
    }

    #[test]
    fn roles_come_from_role_labels() {
        let node = json!({"metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/": "x",
            "kubernetes.io/role": "worker"
        }}});
        assert_eq!(roles(&node), ["control-plane", "worker"]);
    }
}
