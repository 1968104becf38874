//! Pods (upstream `pkg/registry/core/pod` and the pod defaults of `pkg/apis/core/v1`).

pub mod connect;
pub mod eviction;
pub mod subresources;

use crate::typed::{Typed, info};
use apimachinery::{Cause, StatusError};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Probe, Volume};
use serde_json::{Value, json};
use std::sync::Arc;

/// `imagePullPolicy` defaults to Always for `:latest` or untagged images.
fn default_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_http_get(h: Option<&mut k8s_openapi::api::core::v1::HTTPGetAction>) {
    if let Some(h) = h {
        h.scheme.get_or_insert_with(|| "HTTP".into());
        h.path.get_or_insert_with(|| "/".into());
    }
}

/// `SetDefaults_Probe`: a 0 is as good as unset for these non-pointer fields.
fn default_probe(p: &mut Option<Probe>) {
    if let Some(p) = p {
        for (field, default) in [
            (&mut p.timeout_seconds, 1),
            (&mut p.period_seconds, 10),
            (&mut p.success_threshold, 1),
            (&mut p.failure_threshold, 3),
        ] {
            if field.unwrap_or(0) == 0 {
                *field = Some(default);
            }
        }
        default_http_get(p.http_get.as_mut());
    }
}

fn default_field_ref(f: Option<&mut k8s_openapi::api::core::v1::ObjectFieldSelector>) {
    if let Some(f) = f {
        f.api_version.get_or_insert_with(|| "v1".into());
    }
}

fn default_container(c: &mut Container) {
    if c.image_pull_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.image_pull_policy =
            Some(default_pull_policy(c.image.as_deref().unwrap_or_default()).into());
    }
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    c.resources.get_or_insert_with(Default::default);
    for p in c.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
    for e in c.env.iter_mut().flatten() {
        default_field_ref(e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()));
    }
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [l.post_start.as_mut(), l.pre_stop.as_mut()]
            .into_iter()
            .flatten()
        {
            default_http_get(h.http_get.as_mut());
        }
    }
}

/// `SetDefaults_Volume`: a volume that names no source is an emptyDir.
fn has_source(v: &Volume) -> bool {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_object().map(|o| o.keys().any(|k| k != "name")))
        .unwrap_or(true)
}

fn default_volume(v: &mut Volume) {
    if !has_source(v) {
        v.empty_dir = Some(Default::default());
    }
    if let Some(sec) = &mut v.secret {
        sec.default_mode.get_or_insert(0o644);
    }
    if let Some(cm) = &mut v.config_map {
        cm.default_mode.get_or_insert(0o644);
    }
    if let Some(d) = &mut v.downward_api {
        d.default_mode.get_or_insert(0o644);
        for i in d.items.iter_mut().flatten() {
            default_field_ref(i.field_ref.as_mut());
        }
    }
    if let Some(p) = &mut v.projected {
        p.default_mode.get_or_insert(0o644);
        for src in p.sources.iter_mut().flatten() {
            if let Some(t) = &mut src.service_account_token {
                t.expiration_seconds.get_or_insert(3600);
            }
            for i in src
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                default_field_ref(i.field_ref.as_mut());
            }
        }
    }
    if let Some(h) = &mut v.host_path {
        h.type_.get_or_insert_with(String::new);
    }
}

/// Upstream's `SetDefaults_PodSpec` and friends: what every pod spec gets, in pods and
/// in the templates of workloads.
pub fn default_pod_spec(s: &mut PodSpec) {
    let empty = |v: &Option<String>| v.as_deref().unwrap_or_default().is_empty();
    if empty(&s.dns_policy) {
        s.dns_policy = Some("ClusterFirst".into());
    }
    if empty(&s.restart_policy) {
        s.restart_policy = Some("Always".into());
    }
    s.termination_grace_period_seconds.get_or_insert(30);
    s.security_context.get_or_insert_with(Default::default);
    if empty(&s.scheduler_name) {
        s.scheduler_name = Some("default-scheduler".into());
    }
    for c in s
        .containers
        .iter_mut()
        .chain(s.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for e in s.ephemeral_containers.iter_mut().flatten() {
        // An ephemeral container takes a container's defaults (`SetDefaults_EphemeralContainer`).
        if let Ok(mut c) = serde_json::to_value(&*e).and_then(serde_json::from_value::<Container>) {
            default_container(&mut c);
            if let Ok(d) = serde_json::to_value(&c).and_then(serde_json::from_value) {
                let target = e.target_container_name.take();
                *e = d;
                e.target_container_name = target;
            }
        }
    }
    for v in s.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

/// Upstream's `SetDefaults_Pod`: defaults that only a pod (not a template) gets.
fn default_pod(s: &mut PodSpec) {
    // A container that sets only limits requests what it limits.
    for c in s
        .containers
        .iter_mut()
        .chain(s.init_containers.iter_mut().flatten())
    {
        if let Some(r) = c.resources.as_mut()
            && let Some(limits) = &r.limits
        {
            let requests = r.requests.get_or_insert_with(Default::default);
            for (k, v) in limits {
                requests.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    s.enable_service_links.get_or_insert(true);
    if s.host_network == Some(true) {
        for c in s
            .containers
            .iter_mut()
            .chain(s.init_containers.iter_mut().flatten())
        {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten()
        .collect();
    let (mut any, mut guaranteed) = (false, true);
    for c in &containers {
        let req = c["resources"]["requests"].as_object();
        let lim = c["resources"]["limits"].as_object();
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(r));
            let q = req.and_then(|q| q.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn validate_containers(
    field: &str,
    list: &[Container],
    names: &mut Vec<String>,
    causes: &mut Vec<Cause>,
) {
    for (i, c) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if c.name.is_empty() {
            causes.push(Cause::required(&format!("{f}.name"), ""));
        } else {
            for e in apimachinery::validation::dns1123_label(&c.name) {
                causes.push(Cause::invalid(&format!("{f}.name"), &json!(c.name), &e));
            }
            if names.contains(&c.name) {
                causes.push(Cause::duplicate(&format!("{f}.name"), &json!(c.name)));
            }
            names.push(c.name.clone());
        }
        if c.image.as_deref().unwrap_or_default().trim().is_empty() {
            causes.push(Cause::required(&format!("{f}.image"), ""));
        }
        let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged);
        if privileged == Some(true) && !crate::capabilities::allow_privileged() {
            causes.push(Cause::forbidden(
                &format!("{f}.securityContext.privileged"),
                "disallowed by cluster policy",
            ));
        }
        for (j, p) in c.ports.iter().flatten().enumerate() {
            if !(1..=65535).contains(&p.container_port) {
                causes.push(Cause::invalid(
                    &format!("{f}.ports[{j}].containerPort"),
                    &json!(p.container_port),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            if let Some(proto) = &p.protocol
                && !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP")
            {
                causes.push(Cause::not_supported(
                    &format!("{f}.ports[{j}].protocol"),
                    &json!(proto),
                    &["SCTP", "TCP", "UDP"],
                ));
            }
        }
        if let Some(p) = &c.image_pull_policy
            && !matches!(p.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            causes.push(Cause::not_supported(
                &format!("{f}.imagePullPolicy"),
                &json!(p),
                &["Always", "IfNotPresent", "Never"],
            ));
        }
    }
}

pub fn validate_pod_spec(field: &str, s: &PodSpec) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names = Vec::new();
    if s.containers.is_empty() {
        causes.push(Cause::required(&format!("{field}.containers"), ""));
    }
    validate_containers(
        &format!("{field}.containers"),
        &s.containers,
        &mut names,
        &mut causes,
    );
    validate_containers(
        &format!("{field}.initContainers"),
        s.init_containers.as_deref().unwrap_or_default(),
        &mut names,
        &mut causes,
    );
    if let Some(r) = &s.restart_policy
        && !matches!(r.as_str(), "Always" | "OnFailure" | "Never")
    {
        causes.push(Cause::not_supported(
            &format!("{field}.restartPolicy"),
            &json!(r),
            &["Always", "Never", "OnFailure"],
        ));
    }
    if let Some(d) = &s.dns_policy
        && !matches!(
            d.as_str(),
            "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None"
        )
    {
        causes.push(Cause::not_supported(
            &format!("{field}.dnsPolicy"),
            &json!(d),
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ));
    }
    let mut vols = Vec::new();
    for (i, v) in s.volumes.iter().flatten().enumerate() {
        for e in apimachinery::validation::dns1123_label(&v.name) {
            causes.push(Cause::invalid(
                &format!("{field}.volumes[{i}].name"),
                &json!(v.name),
                &e,
            ));
        }
        if vols.contains(&v.name) {
            causes.push(Cause::duplicate(
                &format!("{field}.volumes[{i}].name"),
                &json!(v.name),
            ));
        }
        vols.push(v.name.clone());
    }
    for (i, c) in s.containers.iter().enumerate() {
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            if !vols.contains(&m.name) {
                causes.push(Cause {
                    reason: "FieldValueNotFound".into(),
                    message: format!("Not found: {:?}", m.name),
                    field: format!("{field}.containers[{i}].volumeMounts[{j}].name"),
                });
            }
            // Upstream's validateMountPropagation.
            let path = format!("{field}.containers[{i}].volumeMounts[{j}].mountPropagation");
            match m.mount_propagation.as_deref() {
                None | Some("None" | "HostToContainer") => {}
                Some("Bidirectional") => {
                    let privileged = c
                        .security_context
                        .as_ref()
                        .and_then(|s| s.privileged)
                        .unwrap_or(false);
                    if !privileged {
                        causes.push(Cause::forbidden(
                            &path,
                            "Bidirectional mount propagation is available only to privileged containers",
                        ));
                    }
                }
                Some(other) => causes.push(Cause::not_supported(
                    &path,
                    &json!(other),
                    &["Bidirectional", "HostToContainer", "None"],
                )),
            }
        }
    }
    causes.extend(apimachinery::validation::non_negative(
        &format!("{field}.terminationGracePeriodSeconds"),
        s.termination_grace_period_seconds,
    ));
    causes
}

/// Upstream permits only these spec changes on a pod.
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<Cause> {
    let (Some(ns), Some(os)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let mut a = serde_json::to_value(ns).unwrap_or_default();
    let mut b = serde_json::to_value(os).unwrap_or_default();
    for v in [&mut a, &mut b] {
        for list in ["containers", "initContainers"] {
            for c in v[list].as_array_mut().into_iter().flatten() {
                c.as_object_mut().map(|m| m.remove("image"));
            }
        }
        let m = v.as_object_mut().unwrap();
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
        m.remove("schedulingGates");
        m.remove("terminationGracePeriodSeconds");
    }
    let mut causes = Vec::new();
    if a != b {
        causes.push(Cause::forbidden("spec", POD_UPDATE_FORBIDDEN));
    }
    let old_tol = os.tolerations.clone().unwrap_or_default();
    let new_tol = ns.tolerations.clone().unwrap_or_default();
    if old_tol.iter().any(|t| !new_tol.contains(t)) {
        causes.push(Cause::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    causes
}

fn short(s: &str) -> String {
    s.to_string()
}

/// The STATUS column, following upstream's `printPod`.
fn pod_status(o: &Value) -> (String, i64, i64, i64) {
    let st = &o["status"];
    let mut reason = st["reason"]
        .as_str()
        .map(short)
        .unwrap_or_else(|| st["phase"].as_str().unwrap_or_default().to_string());
    let init_total = o["spec"]["initContainers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let mut restarts = 0;
    let mut initializing = false;
    for (i, c) in st["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        let state = &c["state"];
        if state["terminated"]["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if c["started"] == true && o["spec"]["initContainers"][i]["restartPolicy"] == "Always" {
            continue;
        }
        if !state["terminated"].is_null() {
            let t = &state["terminated"];
            reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t["signal"].as_i64().unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t["signal"])
                }
                None => format!("Init:ExitCode:{}", t["exitCode"]),
            };
        } else if let Some(r) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    let mut ready = 0;
    let statuses = st["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = o["spec"]["containers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0) as i64;
    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for c in statuses.iter().rev() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            let state = &c["state"];
            if let Some(r) = state["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if !state["terminated"].is_null() {
                let t = &state["terminated"];
                reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t["signal"].as_i64().unwrap_or(0) != 0 => {
                        format!("Signal:{}", t["signal"])
                    }
                    None => format!("ExitCode:{}", t["exitCode"]),
                };
            } else if !state["running"].is_null() && c["ready"] == true {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if pod_ready {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        reason = if st["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    (reason, ready, total, restarts)
}

fn grace(obj: &Value, requested: Option<i64>) -> i64 {
    let phase = obj["status"]["phase"].as_str().unwrap_or_default();
    if obj["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
        || matches!(phase, "Succeeded" | "Failed")
    {
        return 0;
    }
    let g = requested
        .or(obj["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30);
    if g < 0 { 1 } else { g }
}

pub fn strategy() -> Typed<Pod> {
    let mut i = info("", "v1", "Pod", "pods", true, "pods");
    i.short_names = vec!["po".into()];
    i.categories = vec!["all".into()];
    i.subresources = [
        "attach",
        "binding",
        "ephemeralcontainers",
        "eviction",
        "exec",
        "log",
        "portforward",
        "proxy",
        "resize",
        "status",
    ]
    .map(String::from)
    .to_vec();
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.return_deleted_object = true;
    t.default = |p: &mut Pod| {
        if let Some(s) = p.spec.as_mut() {
            default_pod_spec(s);
            default_pod(s);
        }
    };
    t.prepare_for_create = |o| {
        let qos = qos_class(&o["spec"]);
        o["status"] = json!({"phase": "Pending", "qosClass": qos});
    };
    t.validate = |p: &Pod| match &p.spec {
        Some(s) => validate_pod_spec("spec", s),
        None => vec![Cause::required("spec", "")],
    };
    t.validate_update = validate_pod_update;
    t.grace_period = grace;
    t.fields = |o| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        [
            ("spec.nodeName", s(&o["spec"]["nodeName"])),
            ("spec.restartPolicy", s(&o["spec"]["restartPolicy"])),
            ("spec.schedulerName", s(&o["spec"]["schedulerName"])),
            (
                "spec.serviceAccountName",
                s(&o["spec"]["serviceAccountName"]),
            ),
            (
                "spec.hostNetwork",
                o["spec"]["hostNetwork"]
                    .as_bool()
                    .unwrap_or(false)
                    .to_string(),
            ),
            ("status.phase", s(&o["status"]["phase"])),
            ("status.podIP", s(&o["status"]["podIP"])),
            (
                "status.nominatedNodeName",
                s(&o["status"]["nominatedNodeName"]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    t.supported_fields = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];
    t.columns = Some(|| {
        vec![
            crate::typed::col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                0,
            ),
            crate::typed::col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            crate::typed::col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0,
            ),
            crate::typed::col("Age", "string", "", 0),
            crate::typed::col(
                "IP",
                "string",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                1,
            ),
            crate::typed::col(
                "Node",
                "string",
                "NodeName is a request to schedule this pod onto a specific node.",
                1,
            ),
            crate::typed::col(
                "Nominated Node",
                "string",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
                1,
            ),
            crate::typed::col(
                "Readiness Gates",
                "string",
                "If specified, all readiness gates will be evaluated for pod readiness.",
                1,
            ),
        ]
    });
    t.row = |o| {
        let (reason, ready, total, restarts) = pod_status(o);
        let none = |v: &Value| {
            if v.as_str().unwrap_or_default().is_empty() {
                json!("<none>")
            } else {
                v.clone()
            }
        };
        let gates = o["spec"]["readinessGates"]
            .as_array()
            .map(|g| g.len())
            .unwrap_or(0);
        let gates_cell = if gates == 0 {
            json!("<none>")
        } else {
            let true_count = o["spec"]["readinessGates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| {
                    o["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                })
                .count();
            json!(format!("{true_count}/{gates}"))
        };
        vec![
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts.to_string()),
            crate::typed::age_cell(o),
            none(&o["status"]["podIP"]),
            none(&o["spec"]["nodeName"]),
            none(&o["status"]["nominatedNodeName"]),
            gates_cell,
        ]
    };
    t
}

/// The `Status` a successful binding or eviction answers with.
pub(crate) fn created_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

/// `POST pods/<name>/binding`: the scheduler's assignment of a pod to a node.
pub struct Binding {
    pub registry: Arc<Registry>,
}

#[async_trait]
impl SubresourceHandler for Binding {
    async fn create(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<(u16, Value), StatusError> {
        let node = body["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let body_name = body["metadata"]["name"].as_str().unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(StatusError::bad_request(format!(
                "name in URL ({name}) does not match name in Binding ({body_name})"
            )));
        }
        if node.is_empty() {
            return Err(StatusError::invalid(
                "",
                "Binding",
                name,
                vec![Cause::required("target.name", "")],
            ));
        }
        let gr = apimachinery::GroupResource::new("", "pods");
        let annotations = body["metadata"]["annotations"].clone();
        // Labels a plugin put on the Binding (PodTopologyLabels) go onto the pod too.
        let labels = body["metadata"]["labels"].clone();
        let expected_uid = body["metadata"]["uid"].as_str().map(String::from);
        self.registry
            .guaranteed_update(ns, name, Part::Whole, dry_run, &mut |cur| {
                let mut pod = cur.cloned().ok_or_else(|| StatusError::not_found(&gr, name))?;
                if let Some(uid) = &expected_uid
                    && uid != meta::uid(&pod) {
                        return Err(StatusError::conflict(&gr, name, "the UID in the binding does not match the pod"));
                    }
                if meta::deletion_timestamp(&pod).is_some() {
                    return Err(StatusError::conflict(&gr, name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
                }
                let current = pod["spec"]["nodeName"].as_str().unwrap_or_default();
                if !current.is_empty() {
                    return Err(StatusError::conflict(&gr, name, &format!("pod {name} is already assigned to node {current:?}")));
                }
                pod["spec"]["nodeName"] = json!(node);
                for (field, extra) in [("annotations", &annotations), ("labels", &labels)] {
                    if let Some(a) = extra.as_object() {
                        let m = meta::meta_mut(&mut pod);
                        let map = m.entry(field).or_insert_with(|| json!({}));
                        for (k, v) in a {
                            map[k] = v.clone();
                        }
                    }
                }
                let conds = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
                let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
                conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
                pod["status"]["conditions"] = json!(conds);
                meta::meta_mut(&mut pod).remove("resourceVersion");
                Ok(pod)
            })
            .await?;
        Ok((201, created_status()))
    }
}

/// `bindings`: the namespace-level form of `pods/<name>/binding` older schedulers POST
/// (the pod named by the Binding's own metadata).
pub fn legacy_binding() -> Typed<k8s_openapi::api::core::v1::Binding> {
    crate::typed::simple("", "v1", "Binding", "bindings", true, &[])
}

pub struct LegacyBindings(pub Binding);

#[async_trait]
impl apiserver::endpoints::VirtualRest for LegacyBindings {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    async fn create(
        &self,
        ns: Option<&str>,
        body: Value,
        _user: &apiserver::authentication::UserInfo,
    ) -> Result<Value, StatusError> {
        let name = meta::name(&body).to_string();
        if name.is_empty() {
            return Err(StatusError::invalid(
                "",
                "Binding",
                "",
                vec![Cause::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        Ok(self.0.create(ns, &name, body, false).await?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_from_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn qos() {
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})
            ),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]})),
            "Burstable"
        );
    }

    fn defaulted(spec: Value, pod: bool) -> Value {
        let mut s: PodSpec = serde_json::from_value(spec).unwrap();
        default_pod_spec(&mut s);
        if pod {
            default_pod(&mut s);
        }
        serde_json::to_value(&s).unwrap()
    }

    #[test]
    fn upstream_pod_defaults() {
        let spec = json!({
            "hostNetwork": true,
            "containers": [{"name": "a", "image": "x:1",
                "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
                "ports": [{"containerPort": 8080}],
                "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
                "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 0}}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "a"}],
            "volumes": [
                {"name": "scratch"},
                {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                    {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            ],
        });
        let pod = defaulted(spec.clone(), true);
        let c = &pod["containers"][0];
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(c["ports"][0]["hostPort"], 8080);
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["path"], "/");
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
        let e = &pod["ephemeralContainers"][0];
        assert_eq!(e["imagePullPolicy"], "Always");
        assert_eq!(e["terminationMessagePolicy"], "File");
        assert_eq!(e["targetContainerName"], "a");
        assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
        let sources = &pod["volumes"][1]["projected"]["sources"];
        assert_eq!(sources[0]["serviceAccountToken"]["expirationSeconds"], 3600);
        assert_eq!(
            sources[1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(pod["enableServiceLinks"], true);
        // A template gets the spec defaults, not the pod-only ones.
        let template = defaulted(spec, false);
        assert!(template.get("enableServiceLinks").is_none());
        assert!(
            template["containers"][0]["ports"][0]
                .get("hostPort")
                .is_none()
        );
        assert_eq!(
            template["containers"][0]["resources"]["requests"],
            json!({"memory": "1Gi"})
        );
    }
}
