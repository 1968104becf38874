//! Pod templates and the workloads around them (upstream `describe.go`:
//! `DescribePodTemplate`, `describeContainers`, `describeVolumes`, `DescribeProbe`, the
//! Deployment describer).

use super::{PrefixWriter, annotations_multiline, describe_events, labels_multiline, s};
use serde_json::Value;

/// Go's `%v` of an IntOrString or number.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// upstream `DescribePodTemplate`.
pub fn pod_template(w: &mut PrefixWriter, template: &Value) {
    w.write(0, "Pod Template:\n");
    if template.is_null() {
        w.write(1, "<unset>");
        return;
    }
    let meta = &template["metadata"];
    let spec = &template["spec"];
    labels_multiline(w, "  Labels", &meta["labels"]);
    if meta["annotations"]
        .as_object()
        .is_some_and(|a| !a.is_empty())
    {
        annotations_multiline(w, "  Annotations", &meta["annotations"]);
    }
    if !s(&spec["serviceAccountName"]).is_empty() {
        w.write(
            1,
            &format!("Service Account:\t{}\n", s(&spec["serviceAccountName"])),
        );
    }
    if spec["initContainers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        containers(
            w,
            "Init Containers",
            &spec["initContainers"],
            None,
            None,
            "  ",
        );
    }
    containers(w, "Containers", &spec["containers"], None, None, "  ");
    volumes(w, &spec["volumes"], "  ");
    topology_spread(w, &spec["topologySpreadConstraints"], "  ");
    if !s(&spec["priorityClassName"]).is_empty() {
        w.write(
            1,
            &format!("Priority Class Name:\t{}\n", s(&spec["priorityClassName"])),
        );
    }
    labels_multiline(w, "  Node-Selectors", &spec["nodeSelector"]);
    tolerations(w, "  Tolerations", &spec["tolerations"]);
}

/// upstream `describeContainers`: with a pod, its statuses and resolved field refs.
fn containers(
    w: &mut PrefixWriter,
    label: &str,
    list: &Value,
    statuses: Option<&Value>,
    pod: Option<&Value>,
    space: &str,
) {
    let items = list.as_array().cloned().unwrap_or_default();
    let none = if items.is_empty() { " <none>" } else { "" };
    w.write(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in &items {
        let status = statuses
            .and_then(Value::as_array)
            .and_then(|st| st.iter().find(|x| x["name"] == c["name"]));
        w.write(1, &format!("{name_indent}{}:\n", s(&c["name"])));
        if let Some(st) = status {
            w.write(2, &format!("Container ID:\t{}\n", s(&st["containerID"])));
        }
        w.write(2, &format!("Image:\t{}\n", s(&c["image"])));
        if let Some(st) = status {
            w.write(2, &format!("Image ID:\t{}\n", s(&st["imageID"])));
        }
        let ports = c["ports"].as_array().cloned().unwrap_or_default();
        let fmt_ports = |host: bool| {
            ports
                .iter()
                .map(|p| {
                    let n = if host {
                        &p["hostPort"]
                    } else {
                        &p["containerPort"]
                    };
                    let mut x = format!("{}/{}", n.as_i64().unwrap_or(0), s(&p["protocol"]));
                    if !s(&p["name"]).is_empty() {
                        x = format!("{x} ({})", s(&p["name"]));
                    }
                    x
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let or_none = |x: String| {
            if x.is_empty() {
                "<none>".to_string()
            } else {
                x
            }
        };
        let (p, hp) = (fmt_ports(false), fmt_ports(true));
        if p.contains(',') {
            w.write(2, &format!("Ports:\t{p}\n"));
        } else {
            w.write(2, &format!("Port:\t{}\n", or_none(p)));
        }
        if hp.contains(',') {
            w.write(2, &format!("Host Ports:\t{hp}\n"));
        } else {
            w.write(2, &format!("Host Port:\t{}\n", or_none(hp)));
        }
        let seccomp = &c["securityContext"]["seccompProfile"];
        if seccomp.is_object() {
            w.write(2, &format!("SeccompProfile:\t{}\n", s(&seccomp["type"])));
            if seccomp["type"] == "Localhost" {
                w.write(
                    3,
                    &format!("LocalhostProfile:\t{}\n", s(&seccomp["localhostProfile"])),
                );
            }
        }
        for (title, field) in [("Command", "command"), ("Args", "args")] {
            if let Some(parts) = c[field].as_array().filter(|a| !a.is_empty()) {
                w.write(2, &format!("{title}:\n"));
                for part in parts {
                    for line in s(part).split('\n') {
                        w.write(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            container_state(w, "State", &st["state"]);
            if st["lastState"]["terminated"].is_object() {
                container_state(w, "Last State", &st["lastState"]);
            }
            let ready = if st["ready"].as_bool().unwrap_or(false) {
                "True"
            } else {
                "False"
            };
            w.write(2, &format!("Ready:\t{ready}\n"));
            w.write(
                2,
                &format!(
                    "Restart Count:\t{}\n",
                    st["restartCount"].as_i64().unwrap_or(0)
                ),
            );
        }
        resources(w, &c["resources"], 2);
        for (title, field) in [
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
            ("Startup", "startupProbe"),
        ] {
            if c[field].is_object() {
                w.write(2, &format!("{title}:\t{}\n", probe(&c[field])));
            }
        }
        env_from(w, &c["envFrom"]);
        env(w, c, pod);
        mounts(w, c);
    }
}

/// Resource names in upstream's order (`SortedResourceNames`: alphabetical).
fn resources(w: &mut PrefixWriter, r: &Value, level: usize) {
    for (title, field) in [("Limits", "limits"), ("Requests", "requests")] {
        if let Some(m) = r[field].as_object().filter(|m| !m.is_empty()) {
            w.write(level, &format!("{title}:\n"));
            for (k, v) in m {
                w.write(level + 1, &format!("{k}:\t{}\n", int_or_string(v)));
            }
        }
    }
}

/// upstream `DescribeProbe`.
pub fn probe(p: &Value) -> String {
    let n = |f: &str, d: i64| p[f].as_i64().unwrap_or(d);
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        n("initialDelaySeconds", 0),
        n("timeoutSeconds", 0),
        n("periodSeconds", 0),
        n("successThreshold", 0),
        n("failureThreshold", 0)
    );
    if p["exec"].is_object() {
        let cmd: Vec<&str> = p["exec"]["command"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if p["httpGet"].is_object() {
        let g = &p["httpGet"];
        let scheme = s(&g["scheme"]).to_ascii_lowercase();
        let port = int_or_string(&g["port"]);
        let host = s(&g["host"]);
        let hostport = if port.is_empty() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let url = if scheme.is_empty() {
            format!("//{hostport}{}", s(&g["path"]))
        } else {
            format!("{scheme}://{hostport}{}", s(&g["path"]))
        };
        return format!("http-get {url} {attrs}");
    }
    if p["tcpSocket"].is_object() {
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(&p["tcpSocket"]["host"]),
            int_or_string(&p["tcpSocket"]["port"])
        );
    }
    if p["grpc"].is_object() {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            p["grpc"]["port"].as_i64().unwrap_or(0),
            s(&p["grpc"]["service"])
        );
    }
    format!("unknown {attrs}")
}

fn env_from(w: &mut PrefixWriter, list: &Value) {
    let Some(items) = list.as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    w.write(2, "Environment Variables from:\n");
    for e in items {
        let (from, r) = if e["configMapRef"].is_object() {
            ("ConfigMap", &e["configMapRef"])
        } else {
            ("Secret", &e["secretRef"])
        };
        let optional = r["optional"].as_bool().unwrap_or(false);
        let prefix = s(&e["prefix"]);
        if prefix.is_empty() {
            w.write(
                3,
                &format!("{}\t{from}\tOptional: {optional}\n", s(&r["name"])),
            );
        } else {
            w.write(
                3,
                &format!(
                    "{}\t{from} with prefix '{prefix}'\tOptional: {optional}\n",
                    s(&r["name"])
                ),
            );
        }
    }
}

/// upstream `describeStatus`.
fn container_state(w: &mut PrefixWriter, name: &str, state: &Value) {
    let t = |v: &Value| super::kinds::rfc1123z(v.as_str());
    if state["running"].is_object() {
        w.write(2, &format!("{name}:\tRunning\n"));
        w.write(
            3,
            &format!("Started:\t{}\n", t(&state["running"]["startedAt"])),
        );
    } else if state["terminated"].is_object() {
        let x = &state["terminated"];
        w.write(2, &format!("{name}:\tTerminated\n"));
        if !s(&x["reason"]).is_empty() {
            w.write(3, &format!("Reason:\t{}\n", s(&x["reason"])));
        }
        if !s(&x["message"]).is_empty() {
            w.write(3, &format!("Message:\t{}\n", s(&x["message"])));
        }
        w.write(
            3,
            &format!("Exit Code:\t{}\n", x["exitCode"].as_i64().unwrap_or(0)),
        );
        if x["signal"].as_i64().unwrap_or(0) > 0 {
            w.write(
                3,
                &format!("Signal:\t{}\n", x["signal"].as_i64().unwrap_or(0)),
            );
        }
        w.write(3, &format!("Started:\t{}\n", t(&x["startedAt"])));
        w.write(3, &format!("Finished:\t{}\n", t(&x["finishedAt"])));
    } else {
        w.write(2, &format!("{name}:\tWaiting\n"));
        if !s(&state["waiting"]["reason"]).is_empty() {
            w.write(3, &format!("Reason:\t{}\n", s(&state["waiting"]["reason"])));
        }
    }
}

/// A pod field a `fieldRef` names (upstream `fieldpath.ExtractFieldPathAsString`).
fn pod_field(pod: &Value, path: &str) -> String {
    let m = &pod["metadata"];
    let keyed = |prefix: &str, map: &Value| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| s(&map[k]).to_string())
    };
    if let Some(v) = keyed("metadata.labels['", &m["labels"]) {
        return v;
    }
    if let Some(v) = keyed("metadata.annotations['", &m["annotations"]) {
        return v;
    }
    match path {
        "metadata.name" => s(&m["name"]).into(),
        "metadata.namespace" => s(&m["namespace"]).into(),
        "metadata.uid" => s(&m["uid"]).into(),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]).into(),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]).into(),
        "status.hostIP" => s(&pod["status"]["hostIP"]).into(),
        "status.podIP" => s(&pod["status"]["podIP"]).into(),
        "status.podIPs" => pod["status"]["podIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| s(&i["ip"]))
            .collect::<Vec<_>>()
            .join(","),
        "status.hostIPs" => pod["status"]["hostIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| s(&i["ip"]))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// upstream `ExtractContainerResourceValue` with the default divisor: CPU in whole
/// cores rounded up, memory and the rest in units.
fn container_resource(c: &Value, resource: &str) -> String {
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let q = s(&c["resources"][kind][name]);
    if q.is_empty() {
        return "0".into();
    }
    match apimachinery::resource::Quantity::parse(q) {
        Some(v) if name == "cpu" => (v.milli_value() as f64 / 1000.0).ceil().to_string(),
        Some(v) => v.value().to_string(),
        None => String::new(),
    }
}

fn env(w: &mut PrefixWriter, c: &Value, pod: Option<&Value>) {
    let items = c["env"].as_array().cloned().unwrap_or_default();
    let none = if items.is_empty() { "\t<none>" } else { "" };
    w.write(2, &format!("Environment:{none}\n"));
    for e in &items {
        let name = s(&e["name"]);
        let from = &e["valueFrom"];
        if !from.is_object() {
            for (i, line) in s(&e["value"]).split('\n').enumerate() {
                if i == 0 {
                    w.write(3, &format!("{name}:\t{line}\n"));
                } else {
                    w.write(3, &format!("\t{line}\n"));
                }
            }
            continue;
        }
        if from["fieldRef"].is_object() {
            let path = s(&from["fieldRef"]["fieldPath"]);
            let value = pod.map(|p| pod_field(p, path)).unwrap_or_default();
            let version = s(&from["fieldRef"]["apiVersion"]);
            w.write(3, &format!("{name}:\t{value} ({version}:{path})\n"));
        } else if from["resourceFieldRef"].is_object() {
            let resource = s(&from["resourceFieldRef"]["resource"]);
            let mut value = container_resource(c, resource);
            if value == "0" && (resource == "limits.cpu" || resource == "limits.memory") {
                value = "node allocatable".into();
            }
            w.write(3, &format!("{name}:\t{value} ({resource})\n"));
        } else if from["secretKeyRef"].is_object() {
            let r = &from["secretKeyRef"];
            w.write(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"].as_bool().unwrap_or(false)
                ),
            );
        } else if from["configMapKeyRef"].is_object() {
            let r = &from["configMapKeyRef"];
            w.write(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"].as_bool().unwrap_or(false)
                ),
            );
        }
    }
}

fn mounts(w: &mut PrefixWriter, c: &Value) {
    let mut ms = c["volumeMounts"].as_array().cloned().unwrap_or_default();
    let none = if ms.is_empty() { "\t<none>" } else { "" };
    w.write(2, &format!("Mounts:{none}\n"));
    ms.sort_by(|a, b| s(&a["mountPath"]).cmp(s(&b["mountPath"])));
    for m in &ms {
        let mut flags = vec![if m["readOnly"].as_bool().unwrap_or(false) {
            "ro".to_string()
        } else {
            "rw".to_string()
        }];
        if !s(&m["subPath"]).is_empty() {
            flags.push(format!("path={:?}", s(&m["subPath"])));
        }
        w.write(
            3,
            &format!(
                "{} from {} ({})\n",
                s(&m["mountPath"]),
                s(&m["name"]),
                flags.join(",")
            ),
        );
    }
    if let Some(devs) = c["volumeDevices"].as_array().filter(|d| !d.is_empty()) {
        w.write(2, "Devices:\n");
        let mut devs = devs.clone();
        devs.sort_by(|a, b| s(&a["devicePath"]).cmp(s(&b["devicePath"])));
        for d in &devs {
            w.write(
                3,
                &format!("{} from {}\n", s(&d["devicePath"]), s(&d["name"])),
            );
        }
    }
}

/// upstream `describeVolumes` for the common volume types.
pub fn volumes(w: &mut PrefixWriter, list: &Value, space: &str) {
    let Some(items) = list.as_array().filter(|v| !v.is_empty()) else {
        w.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    };
    w.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in items {
        w.write(1, &format!("{name_indent}{}:\n", s(&v["name"])));
        let opt = |x: &Value| x["optional"].as_bool().unwrap_or(false);
        if v["hostPath"].is_object() {
            let t = v["hostPath"]["type"].as_str().unwrap_or("<none>");
            w.write(2, &format!("Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{t}\n", s(&v["hostPath"]["path"])));
        } else if v["emptyDir"].is_object() {
            let e = &v["emptyDir"];
            let limit = match int_or_string(&e["sizeLimit"]) {
                l if l.is_empty() || l == "0" => "<unset>".to_string(),
                l => l,
            };
            w.write(2, &format!("Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n", s(&e["medium"])));
        } else if v["secret"].is_object() {
            w.write(2, &format!("Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n", s(&v["secret"]["secretName"]), opt(&v["secret"])));
        } else if v["configMap"].is_object() {
            w.write(2, &format!("Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n", s(&v["configMap"]["name"]), opt(&v["configMap"])));
        } else if v["persistentVolumeClaim"].is_object() {
            let c = &v["persistentVolumeClaim"];
            w.write(2, &format!("Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n", s(&c["claimName"]), c["readOnly"].as_bool().unwrap_or(false)));
        } else if v["projected"].is_object() {
            w.write(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for src in v["projected"]["sources"].as_array().into_iter().flatten() {
                if src["secret"].is_object() {
                    w.write(
                        2,
                        &format!(
                            "SecretName:\t{}\n    Optional:\t{}\n",
                            s(&src["secret"]["name"]),
                            opt(&src["secret"])
                        ),
                    );
                } else if src["downwardAPI"].is_object() {
                    w.write(2, "DownwardAPI:\ttrue\n");
                } else if src["configMap"].is_object() {
                    w.write(
                        2,
                        &format!(
                            "ConfigMapName:\t{}\n    Optional:\t{}\n",
                            s(&src["configMap"]["name"]),
                            opt(&src["configMap"])
                        ),
                    );
                } else if src["serviceAccountToken"].is_object() {
                    w.write(
                        2,
                        &format!(
                            "TokenExpirationSeconds:\t{}\n",
                            src["serviceAccountToken"]["expirationSeconds"]
                                .as_i64()
                                .unwrap_or(0)
                        ),
                    );
                }
            }
        } else if v["downwardAPI"].is_object() {
            w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n");
            for item in v["downwardAPI"]["items"].as_array().into_iter().flatten() {
                if item["fieldRef"].is_object() {
                    w.write(
                        3,
                        &format!(
                            "{} -> {}\n",
                            s(&item["fieldRef"]["fieldPath"]),
                            s(&item["path"])
                        ),
                    );
                }
                if item["resourceFieldRef"].is_object() {
                    w.write(
                        3,
                        &format!(
                            "{} -> {}\n",
                            s(&item["resourceFieldRef"]["resource"]),
                            s(&item["path"])
                        ),
                    );
                }
            }
        } else if v["csi"].is_object() {
            let c = &v["csi"];
            let fs = c["fsType"].as_str().unwrap_or("");
            w.write(2, &format!("Type:\tCSI (a Container Storage Interface (CSI) volume source)\n    Driver:\t{}\n    FSType:\t{fs}\n    ReadOnly:\t{}\n", s(&c["driver"]), c["readOnly"].as_bool().unwrap_or(false)));
            labels_multiline(w, "    VolumeAttributes", &c["volumeAttributes"]);
        } else if v["image"].is_object() {
            w.write(2, &format!("Type:\tImage (a container image or OCI artifact)\n    Reference:\t{}\n    PullPolicy:\t{}\n", s(&v["image"]["reference"]), s(&v["image"]["pullPolicy"])));
        } else {
            w.write(1, "<unknown>\n");
        }
    }
}

fn topology_spread(w: &mut PrefixWriter, list: &Value, space: &str) {
    let Some(items) = list.as_array().filter(|v| !v.is_empty()) else {
        return;
    };
    let mut items = items.clone();
    items.sort_by(|a, b| s(&a["topologyKey"]).cmp(s(&b["topologyKey"])));
    w.write(0, &format!("{space}Topology Spread Constraints:\t"));
    for (i, t) in items.iter().enumerate() {
        if i != 0 {
            w.write(0, &format!("{space}\t"));
        }
        w.write(
            0,
            &format!(
                "{}:{} when max skew {} is exceeded",
                s(&t["topologyKey"]),
                s(&t["whenUnsatisfiable"]),
                t["maxSkew"].as_i64().unwrap_or(0)
            ),
        );
        if t["labelSelector"].is_object() {
            w.write(
                0,
                &format!(
                    " for selector {}",
                    format_label_selector(&t["labelSelector"])
                ),
            );
        }
        w.write(0, "\n");
    }
}

/// upstream `printPodTolerationsMultiline`.
pub fn tolerations(w: &mut PrefixWriter, title: &str, list: &Value) {
    w.write(0, &format!("{title}:\t"));
    let Some(items) = list.as_array().filter(|v| !v.is_empty()) else {
        w.write(0, "<none>\n");
        return;
    };
    let mut items = items.clone();
    items.sort_by(|a, b| s(&a["key"]).cmp(s(&b["key"])));
    for (i, t) in items.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let mut line = s(&t["key"]).to_string();
        if !s(&t["value"]).is_empty() {
            line.push_str(&format!("={}", s(&t["value"])));
        }
        if !s(&t["effect"]).is_empty() {
            line.push_str(&format!(":{}", s(&t["effect"])));
        }
        if t["operator"] == "Exists" && s(&t["value"]).is_empty() {
            if !s(&t["key"]).is_empty() || !s(&t["effect"]).is_empty() {
                line.push_str(" op=Exists");
            } else {
                line.push_str("op=Exists");
            }
        }
        if let Some(secs) = t["tolerationSeconds"].as_i64() {
            line.push_str(&format!(" for {secs}s"));
        }
        w.write(0, &format!("{line}\n"));
    }
}

/// `metav1.FormatLabelSelector`: `a=b,c in (d,e)`, `<none>` when empty.
pub fn format_label_selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let key = s(&e["key"]);
        parts.push(match s(&e["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// The ReplicaSets a Deployment owns: the new one (its template equals the
/// Deployment's, ignoring the hash label; the oldest such) and the others.
pub fn split_replica_sets<'a>(
    d: &Value,
    owned: &'a [Value],
) -> (Option<&'a Value>, Vec<&'a Value>) {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t["metadata"]["labels"].as_object_mut() {
            l.remove("pod-template-hash");
            if l.is_empty() {
                t["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        t
    };
    let want = strip(&d["spec"]["template"]);
    let mut sorted: Vec<&Value> = owned.iter().collect();
    sorted.sort_by(|a, b| {
        s(&a["metadata"]["creationTimestamp"])
            .cmp(s(&b["metadata"]["creationTimestamp"]))
            .then(s(&a["metadata"]["name"]).cmp(s(&b["metadata"]["name"])))
    });
    let new = sorted
        .iter()
        .copied()
        .find(|rs| strip(&rs["spec"]["template"]) == want);
    let old = sorted
        .into_iter()
        .filter(|rs| new.is_none_or(|n| n["metadata"]["uid"] != rs["metadata"]["uid"]))
        .collect();
    (new, old)
}

fn replica_sets_line(list: &[&Value]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                s(&rs["metadata"]["name"]),
                rs["status"]["replicas"].as_i64().unwrap_or(0),
                rs["spec"]["replicas"].as_i64().unwrap_or(1)
            )
        })
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(", ")
    }
}

/// The Type/Status/Reason conditions table of Deployments and ReplicaSets.
pub fn conditions_short(w: &mut PrefixWriter, conditions: &Value) {
    let Some(conds) = conditions.as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.write(1, "----\t------\t------\n");
    for c in conds {
        w.write(
            1,
            &format!(
                "{} \t{}\t{}\n",
                s(&c["type"]),
                s(&c["status"]),
                s(&c["reason"])
            ),
        );
    }
}

/// upstream `describeDeployment`.
pub fn deployment(w: &mut PrefixWriter, d: &Value, owned: &[Value], events: Option<&[Value]>) {
    let meta = &d["metadata"];
    let spec = &d["spec"];
    let st = &d["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            super::kinds::rfc1123z(meta["creationTimestamp"].as_str())
        ),
    );
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    w.write(
        0,
        &format!("Selector:\t{}\n", format_label_selector(&spec["selector"])),
    );
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            spec["replicas"].as_i64().unwrap_or(1),
            n(&st["updatedReplicas"]),
            n(&st["replicas"]),
            n(&st["availableReplicas"]),
            n(&st["unavailableReplicas"])
        ),
    );
    w.write(
        0,
        &format!("StrategyType:\t{}\n", s(&spec["strategy"]["type"])),
    );
    w.write(
        0,
        &format!("MinReadySeconds:\t{}\n", n(&spec["minReadySeconds"])),
    );
    let ru = &spec["strategy"]["rollingUpdate"];
    if ru.is_object() {
        w.write(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(&ru["maxUnavailable"]),
                int_or_string(&ru["maxSurge"])
            ),
        );
    }
    pod_template(w, &spec["template"]);
    conditions_short(w, &st["conditions"]);
    let (new, old) = split_replica_sets(d, owned);
    if new.is_some() || !old.is_empty() {
        w.write(
            0,
            &format!("OldReplicaSets:\t{}\n", replica_sets_line(&old)),
        );
        w.write(
            0,
            &format!(
                "NewReplicaSet:\t{}\n",
                replica_sets_line(&new.into_iter().collect::<Vec<_>>())
            ),
        );
    }
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

/// upstream `describePod`.
pub fn pod(w: &mut PrefixWriter, p: &Value, events: Option<&[Value]>) {
    let meta = &p["metadata"];
    let spec = &p["spec"];
    let st = &p["status"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    if let Some(pr) = spec["priority"].as_i64() {
        w.write(0, &format!("Priority:\t{pr}\n"));
    }
    if !s(&spec["priorityClassName"]).is_empty() {
        w.write(
            0,
            &format!("Priority Class Name:\t{}\n", s(&spec["priorityClassName"])),
        );
    }
    if !s(&spec["runtimeClassName"]).is_empty() {
        w.write(
            0,
            &format!("Runtime Class Name:\t{}\n", s(&spec["runtimeClassName"])),
        );
    }
    if !s(&spec["serviceAccountName"]).is_empty() {
        w.write(
            0,
            &format!("Service Account:\t{}\n", s(&spec["serviceAccountName"])),
        );
    }
    if s(&spec["nodeName"]).is_empty() {
        w.write(0, "Node:\t<none>\n");
    } else {
        w.write(
            0,
            &format!("Node:\t{}/{}\n", s(&spec["nodeName"]), s(&st["hostIP"])),
        );
    }
    if st["startTime"].is_string() {
        w.write(
            0,
            &format!(
                "Start Time:\t{}\n",
                super::kinds::rfc1123z(st["startTime"].as_str())
            ),
        );
    }
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    let phase = s(&st["phase"]);
    if meta["deletionTimestamp"].is_string() && phase != "Failed" && phase != "Succeeded" {
        let since = crate::cmd::util::age(meta["deletionTimestamp"].as_str());
        w.write(0, &format!("Status:\tTerminating (lasts {since})\n"));
        w.write(
            0,
            &format!(
                "Termination Grace Period:\t{}s\n",
                meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0)
            ),
        );
    } else {
        w.write(0, &format!("Status:\t{phase}\n"));
    }
    if !s(&st["reason"]).is_empty() {
        w.write(0, &format!("Reason:\t{}\n", s(&st["reason"])));
    }
    if !s(&st["message"]).is_empty() {
        w.write(0, &format!("Message:\t{}\n", s(&st["message"])));
    }
    let seccomp = &spec["securityContext"]["seccompProfile"];
    if seccomp.is_object() {
        w.write(0, &format!("SeccompProfile:\t{}\n", s(&seccomp["type"])));
        if seccomp["type"] == "Localhost" {
            w.write(
                0,
                &format!("LocalhostProfile:\t{}\n", s(&seccomp["localhostProfile"])),
            );
        }
    }
    w.write(0, &format!("IP:\t{}\n", s(&st["podIP"])));
    match st["podIPs"].as_array().filter(|i| !i.is_empty()) {
        None => w.write(0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.write(0, "IPs:\n");
            for ip in ips {
                w.write(1, &format!("IP:\t{}\n", s(&ip["ip"])));
            }
        }
    }
    if let Some(owner) = meta["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["controller"] == true))
    {
        w.write(
            0,
            &format!(
                "Controlled By:\t{}/{}\n",
                s(&owner["kind"]),
                s(&owner["name"])
            ),
        );
    }
    if !s(&st["nominatedNodeName"]).is_empty() {
        w.write(
            0,
            &format!("NominatedNodeName:\t{}\n", s(&st["nominatedNodeName"])),
        );
    }
    if spec["resources"].is_object() {
        w.write(0, "Resources:\n");
        resources(w, &spec["resources"], 1);
    }
    if spec["initContainers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        containers(
            w,
            "Init Containers",
            &spec["initContainers"],
            Some(&st["initContainerStatuses"]),
            Some(p),
            "",
        );
    }
    containers(
        w,
        "Containers",
        &spec["containers"],
        Some(&st["containerStatuses"]),
        Some(p),
        "",
    );
    if spec["ephemeralContainers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        containers(
            w,
            "Ephemeral Containers",
            &spec["ephemeralContainers"],
            Some(&st["ephemeralContainerStatuses"]),
            Some(p),
            "",
        );
    }
    let conditions = st["conditions"].as_array().cloned().unwrap_or_default();
    if let Some(gates) = spec["readinessGates"].as_array().filter(|g| !g.is_empty()) {
        w.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let status = conditions
                .iter()
                .find(|c| c["type"] == g["conditionType"])
                .map(|c| s(&c["status"]).to_string())
                .unwrap_or_else(|| "<none>".into());
            w.write(1, &format!("{} \t{status} \n", s(&g["conditionType"])));
        }
    }
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in &conditions {
            w.write(1, &format!("{} \t{} \n", s(&c["type"]), s(&c["status"])));
        }
    }
    volumes(w, &spec["volumes"], "");
    w.write(0, &format!("QoS Class:\t{}\n", qos_class(p)));
    labels_multiline(w, "Node-Selectors", &spec["nodeSelector"]);
    tolerations(w, "Tolerations", &spec["tolerations"]);
    topology_spread(w, &spec["topologySpreadConstraints"], "");
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

/// The pod's QoS class: the status's, else computed as upstream's `GetPodQOS`.
fn qos_class(p: &Value) -> String {
    if let Some(q) = p["status"]["qosClass"].as_str().filter(|q| !q.is_empty()) {
        return q.to_string();
    }
    let all: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| p["spec"][*f].as_array().into_iter().flatten())
        .collect();
    let has = |c: &Value, kind: &str| {
        c["resources"][kind]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    };
    if all.iter().all(|c| !has(c, "requests") && !has(c, "limits")) {
        return "BestEffort".into();
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let l = &c["resources"]["limits"][*r];
            let q = &c["resources"]["requests"][*r];
            l.is_string() && (q.is_null() || q == l)
        })
    });
    if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}
