//! `kubectl describe`'s describers: a prefix writer over a tabwriter (minimum width 0,
//! padding 2), labels and annotations as upstream lays them out, the events of the
//! object, kind-specific describers and the generic one for every other kind.
//! Upstream twin: `kubectl/pkg/describe/describe.go`.

mod apps;
mod kinds;
mod networking;
mod node;
mod storage;
pub mod workloads;

use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::query_escape;
use cli_runtime::printers::tabwriter::TabWriter;
use serde_json::Value;

/// Text with `\t` columns, indented by level (two spaces each).
#[derive(Default)]
pub struct PrefixWriter {
    text: String,
}

impl PrefixWriter {
    pub fn write(&mut self, level: usize, s: &str) {
        self.text.push_str(&"  ".repeat(level));
        self.text.push_str(&escape_terminal(s));
    }

    /// The text as written, tabs kept (upstream's describers writing to a plain buffer,
    /// as `rollout history --revision` does).
    pub fn raw(self) -> String {
        self.text
    }

    /// The aligned result.
    pub fn finish(self) -> String {
        let mut tw = TabWriter::with(0, 2, false);
        let mut out = tw.write(&self.text);
        out.push_str(&tw.flush());
        out
    }
}

// printers.WriteEscaped: terminal escape sequences are made visible.
fn escape_terminal(s: &str) -> String {
    s.replace('\x1b', "^[")
}

/// A string field, empty when absent.
pub(super) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The `Name:` and `Namespace:` lines most describers open with.
pub(super) fn name_namespace(w: &mut PrefixWriter, obj: &Value) {
    w.write(0, &format!("Name:\t{}\n", s(&obj["metadata"]["name"])));
    w.write(
        0,
        &format!("Namespace:\t{}\n", s(&obj["metadata"]["namespace"])),
    );
}

/// A conditions table with a second time column (`LastHeartbeatTime` for Nodes,
/// `LastProbeTime` for PVCs): every cell but the last followed by a space.
pub(super) fn timed_conditions(w: &mut PrefixWriter, conditions: &Value, title: &str, field: &str) {
    let Some(conds) = conditions.as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    w.write(0, "Conditions:\n");
    w.write(
        1,
        &format!("Type\tStatus\t{title}\tLastTransitionTime\tReason\tMessage\n"),
    );
    w.write(
        1,
        "----\t------\t-----------------\t------------------\t------\t-------\n",
    );
    for c in conds {
        w.write(
            1,
            &format!(
                "{} \t{} \t{} \t{} \t{} \t{}\n",
                s(&c["type"]),
                s(&c["status"]),
                kinds::rfc1123z(c[field].as_str()),
                kinds::rfc1123z(c["lastTransitionTime"].as_str()),
                s(&c["reason"]),
                s(&c["message"])
            ),
        );
    }
}

const MAX_ANNOTATION_LEN: usize = 140;
const SKIP_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

pub fn labels_multiline(w: &mut PrefixWriter, title: &str, labels: &Value) {
    w.write(0, &format!("{title}:\t"));
    let Some(m) = labels.as_object().filter(|m| !m.is_empty()) else {
        w.write(0, "<none>\n");
        return;
    };
    for (i, (k, v)) in m.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.write(0, &format!("{k}={}\n", v.as_str().unwrap_or_default()));
    }
}

pub fn annotations_multiline(w: &mut PrefixWriter, title: &str, annotations: &Value) {
    w.write(0, &format!("{title}:\t"));
    let entries: Vec<(&String, &Value)> = annotations
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !SKIP_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    if entries.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let value = v.as_str().unwrap_or_default().trim_end_matches('\n');
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(0, &format!("{k}:\n"));
            for line in value.split('\n') {
                let short = if line.len() > MAX_ANNOTATION_LEN - 2 {
                    format!(
                        "{}...",
                        &line[..floor_char_boundary(line, MAX_ANNOTATION_LEN - 2)]
                    )
                } else {
                    line.to_string()
                };
                w.write(0, &format!("\t  {short}\n"));
            }
        } else {
            w.write(0, &format!("{k}: {value}\n"));
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The object's events (by name, namespace, kind and uid), oldest first.
pub async fn events_for(client: &RestClient, obj: &Value) -> Option<Vec<Value>> {
    events_with_uid(client, obj, obj["metadata"]["uid"].as_str()).await
}

/// A Node's events: the controllers name it by its UID, the kubelet by its name.
async fn node_events(client: &RestClient, node: &Value) -> Option<Vec<Value>> {
    let mut items = events_for(client, node).await?;
    let name = node["metadata"]["name"].as_str();
    items.extend(
        events_with_uid(client, node, name)
            .await
            .unwrap_or_default(),
    );
    items.sort_by_key(|e| event_time(e).unwrap_or_default());
    Some(items)
}

async fn events_with_uid(
    client: &RestClient,
    obj: &Value,
    uid: Option<&str>,
) -> Option<Vec<Value>> {
    let meta = &obj["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or_default();
    let mut fs = vec![format!(
        "involvedObject.name={}",
        meta["name"].as_str().unwrap_or_default()
    )];
    fs.push(format!("involvedObject.namespace={ns}"));
    if let Some(k) = obj["kind"].as_str() {
        fs.push(format!("involvedObject.kind={k}"));
    }
    if let Some(u) = uid {
        fs.push(format!("involvedObject.uid={u}"));
    }
    let path = if ns.is_empty() {
        format!(
            "/api/v1/events?fieldSelector={}",
            query_escape(&fs.join(","))
        )
    } else {
        format!(
            "/api/v1/namespaces/{ns}/events?fieldSelector={}&limit=500",
            query_escape(&fs.join(","))
        )
    };
    let list = client.typed_get(&path).await.ok()?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|e| event_time(e).unwrap_or_default());
    Some(items)
}

fn event_time(e: &Value) -> Option<i64> {
    let t = e["lastTimestamp"]
        .as_str()
        .or(e["eventTime"].as_str())
        .or(e["firstTimestamp"].as_str())?;
    t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

fn since(ts: Option<&str>) -> String {
    match ts {
        Some(t) if !t.is_empty() => crate::cmd::util::age(ts),
        _ => "<unknown>".into(),
    }
}

/// When an event happened: `5s`, or `5s (x3 over 2m)` for a repeated one.
pub fn event_interval(e: &Value) -> String {
    let first = if e["eventTime"].is_string() {
        since(e["eventTime"].as_str())
    } else {
        since(e["firstTimestamp"].as_str())
    };
    let count = e["count"].as_i64().unwrap_or(0);
    if e["series"].is_object() {
        format!(
            "{} (x{} over {first})",
            since(e["series"]["lastObservedTime"].as_str()),
            e["series"]["count"].as_i64().unwrap_or(0)
        )
    } else if count > 1 {
        format!(
            "{} (x{count} over {first})",
            since(e["lastTimestamp"].as_str())
        )
    } else {
        first
    }
}

pub fn describe_events(w: &mut PrefixWriter, events: &[Value]) {
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in events {
        let interval = event_interval(e);
        let source = e["source"]["component"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or(e["reportingComponent"].as_str())
            .unwrap_or_default();
        let mut message = e["message"].as_str().unwrap_or_default().trim().to_string();
        if let Some(fp) = e["involvedObject"]["fieldPath"]
            .as_str()
            .filter(|f| !f.is_empty())
        {
            message = format!("{fp}: {message}");
        }
        w.write(
            1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{message}\n",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default()
            ),
        );
    }
}

/// What a describer reads besides the object.
#[derive(Default)]
pub struct Related {
    pub events: Option<Vec<Value>>,
    /// A Service's EndpointSlices.
    pub endpoint_slices: Vec<Value>,
    /// The ReplicaSets a Deployment controls.
    pub replica_sets: Vec<Value>,
    /// The pods of a controller's selector, or of a claim's namespace.
    pub pods: Vec<Value>,
    /// A Namespace's ResourceQuotas and LimitRanges (`None`: not served).
    pub quotas: Option<Vec<Value>>,
    pub limit_ranges: Option<Vec<Value>>,
    /// A Node's pods and Lease.
    pub node: Option<node::NodeRelated>,
    /// An Ingress's backend Services and their EndpointSlices.
    pub backends: networking::Backends,
}

impl Related {
    /// Fetches what `obj`'s describer shows (events only when `events`).
    pub async fn fetch(client: &RestClient, obj: &Value, events: bool) -> Related {
        let mut r = Related::default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        if events {
            r.events = if kind == "Node" {
                node_events(client, obj).await
            } else {
                events_for(client, obj).await
            };
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let items = |list: Result<Value, client::Error>| -> Option<Vec<Value>> {
            list.ok()
                .map(|l| l["items"].as_array().cloned().unwrap_or_default())
        };
        match kind {
            "Service" => {
                let path = format!(
                    "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={}",
                    query_escape(&format!("kubernetes.io/service-name={name}"))
                );
                r.endpoint_slices = items(client.typed_get(&path).await).unwrap_or_default();
            }
            "Deployment" => r.replica_sets = owned_replica_sets(client, obj).await,
            "Ingress" => {
                for svc in networking::backend_services(obj) {
                    let slices = format!(
                        "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={}",
                        query_escape(&format!("kubernetes.io/service-name={svc}"))
                    );
                    let service = format!("/api/v1/namespaces/{ns}/services/{svc}");
                    let found = match client.typed_get(&slices).await {
                        Err(e) => Err(e.server_message()),
                        Ok(list) => match client.typed_get(&service).await {
                            Err(e) => Err(e.server_message()),
                            Ok(s) => Ok((s, list["items"].as_array().cloned().unwrap_or_default())),
                        },
                    };
                    r.backends.insert(svc, found);
                }
            }
            "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
                let selector = apps::selector_string(&obj["spec"]["selector"]);
                let path = format!(
                    "/api/v1/namespaces/{ns}/pods?labelSelector={}",
                    query_escape(&selector)
                );
                r.pods = items(client.typed_get(&path).await).unwrap_or_default();
            }
            "PersistentVolumeClaim" => {
                let path = format!("/api/v1/namespaces/{ns}/pods");
                r.pods = items(client.typed_get(&path).await).unwrap_or_default();
            }
            "Namespace" => {
                let list = |res: &str| format!("/api/v1/namespaces/{name}/{res}");
                r.quotas = items(client.typed_get(&list("resourcequotas")).await);
                r.limit_ranges = items(client.typed_get(&list("limitranges")).await);
            }
            "Node" => {
                let selector =
                    format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
                let pods = client
                    .typed_get(&format!(
                        "/api/v1/pods?fieldSelector={}",
                        query_escape(&selector)
                    ))
                    .await;
                let pods = match pods {
                    Err(client::Error::Status { code: 403, .. }) => None,
                    other => Some(items(other).unwrap_or_default()),
                };
                let lease = client
                    .typed_get(&format!(
                        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                    ))
                    .await
                    .map_err(|e| e.server_message());
                r.node = Some(node::NodeRelated { pods, lease });
            }
            _ => {}
        }
        r
    }
}

/// The ReplicaSets in the Deployment's namespace whose controller it is.
pub async fn owned_replica_sets(client: &RestClient, d: &Value) -> Vec<Value> {
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let uid = &d["metadata"]["uid"];
    let Ok(list) = client
        .typed_get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
        .await
    else {
        return Vec::new();
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| {
                    o.iter()
                        .any(|r| r["controller"] == true && &r["uid"] == uid)
                })
        })
        .cloned()
        .collect()
}

/// Describes one object (already fetched) with what was fetched for it.
pub fn describe(obj: &Value, related: &Related) -> String {
    let counts = |o: &Value| apps::pod_counts(&related.pods, &o["metadata"]["uid"]);
    let mut w = PrefixWriter::default();
    let events = related.events.as_deref();
    match obj["kind"].as_str().unwrap_or_default() {
        "ConfigMap" => kinds::config_map(&mut w, obj, events),
        "Secret" => kinds::secret(&mut w, obj),
        "Namespace" => kinds::namespace(&mut w, obj, related),
        "ServiceAccount" => kinds::service_account(&mut w, obj, events),
        "Service" => kinds::service(&mut w, obj, &related.endpoint_slices, events),
        "Deployment" => workloads::deployment(&mut w, obj, &related.replica_sets, events),
        "Pod" => workloads::pod(&mut w, obj, events),
        "ReplicaSet" => apps::replica_set(&mut w, obj, counts(obj), events),
        "StatefulSet" => apps::stateful_set(&mut w, obj, counts(obj), events),
        "DaemonSet" => apps::daemon_set(&mut w, obj, counts(obj), events),
        "Job" => apps::job(&mut w, obj, events),
        "Ingress" => networking::ingress(&mut w, obj, &related.backends, events),
        "Endpoints" => networking::endpoints(&mut w, obj, events),
        "EndpointSlice" => networking::endpoint_slice(&mut w, obj, events),
        "ResourceQuota" => kinds::resource_quota(&mut w, obj),
        "LimitRange" => kinds::limit_range(&mut w, obj),
        "CronJob" => apps::cron_job(&mut w, obj, events),
        "PersistentVolume" => storage::persistent_volume(&mut w, obj, events),
        "PersistentVolumeClaim" => {
            let users = storage::pods_using_claim(obj, &related.pods);
            storage::persistent_volume_claim(&mut w, obj, &users, events)
        }
        "Node" => match &related.node {
            Some(n) => node::node(&mut w, obj, n, events),
            None => generic(&mut w, obj, events),
        },
        _ => generic(&mut w, obj, events),
    }
    w.finish()
}

fn generic(w: &mut PrefixWriter, obj: &Value, events: Option<&[Value]>) {
    let meta = &obj["metadata"];
    name_namespace(w, obj);
    labels_multiline(w, "Labels", &meta["labels"]);
    annotations_multiline(w, "Annotations", &meta["annotations"]);
    const SKIP: &[&str] = &[
        ".metadata.managedFields",
        ".metadata.name",
        ".metadata.namespace",
        ".metadata.labels",
        ".metadata.annotations",
    ];
    unstructured(w, 0, obj, "", SKIP);
    if let Some(ev) = events {
        describe_events(w, ev);
    }
}

fn unstructured(w: &mut PrefixWriter, level: usize, content: &Value, prefix: &str, skip: &[&str]) {
    let Some(m) = content.as_object() else { return };
    for (field, value) in m {
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(_) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                unstructured(w, level + 1, value, &path, skip);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    if item.is_object() {
                        unstructured(w, level + 1, item, &path, skip);
                    } else {
                        w.write(level + 1, &format!("{}\n", crate::cmd::util::go_v(item)));
                    }
                }
            }
            other => w.write(
                level,
                &format!(
                    "{}:\t{}\n",
                    smart_label(field),
                    crate::cmd::util::go_v(other)
                ),
            ),
        }
    }
}

/// `creationTimestamp` → `Creation Timestamp`, `apiVersion` → `API Version`.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    // camelcase.Split: runs of lower case, runs of upper case (the last upper letter of
    // a run before a lower one starts the next word).
    let chars: Vec<char> = field.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = if i == 0 {
            false
        } else {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            (c.is_uppercase() && prev.is_lowercase())
                || (c.is_uppercase() && prev.is_uppercase() && next_lower)
                || (c == '-') != (prev == '-')
        };
        if starts_word && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    let mut merged: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let part = &parts[i];
        if i + 1 < parts.len() {
            let next = &parts[i + 1];
            let all_upper = part.chars().all(|c| !c.is_alphabetic() || c.is_uppercase());
            if part.len() >= 2 && all_upper && next.chars().next().is_some_and(char::is_uppercase) {
                merged.push(format!("{part}{next}"));
                i += 2;
                continue;
            }
        }
        merged.push(part.clone());
        i += 1;
    }
    merged
        .into_iter()
        .filter(|p| p != "_")
        .map(|p| {
            if ["API", "URL", "UID", "GUID"].contains(&p.to_uppercase().as_str()) {
                p.to_uppercase()
            } else if p.to_lowercase() == p {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => p,
                }
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_labels() {
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("spec"), "Spec");
        assert_eq!(smart_label("podCIDR"), "Pod CIDR");
        assert_eq!(smart_label("a.b"), "a.b");
    }
}
