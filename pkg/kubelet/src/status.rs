//! Pod status (upstream `kubelet_pods.go` `generateAPIPodStatus` / `getPhase` and
//! `status/generate.go`): container statuses from the runtime, the phase, and the
//! PodReadyToStartContainers, Initialized, ContainersReady and Ready conditions, keeping
//! each condition's lastTransitionTime while its status holds.

use crate::cri::{RESTART_COUNT, api};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A container instance the runtime knows, with the sandbox it belongs to.
#[derive(Clone, Debug)]
pub struct Instance {
    pub sandbox: String,
    pub status: api::ContainerStatus,
}

impl Instance {
    pub fn name(&self) -> &str {
        self.status
            .metadata
            .as_ref()
            .map(|m| m.name.as_str())
            .unwrap_or_default()
    }
    pub fn state(&self) -> api::ContainerState {
        api::ContainerState::try_from(self.status.state)
            .unwrap_or(api::ContainerState::ContainerUnknown)
    }
    pub fn running(&self) -> bool {
        self.state() == api::ContainerState::ContainerRunning
    }
    pub fn exited(&self) -> bool {
        self.state() == api::ContainerState::ContainerExited
    }
    pub fn restart_count(&self) -> i32 {
        self.status
            .annotations
            .get(RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// What the runtime holds for one pod: sandboxes and container instances, newest first.
#[derive(Clone, Debug, Default)]
pub struct PodRuntime {
    pub sandboxes: Vec<api::PodSandboxStatus>,
    pub containers: Vec<Instance>,
}

impl PodRuntime {
    pub fn sandbox(&self) -> Option<&api::PodSandboxStatus> {
        self.sandboxes.first()
    }
    pub fn sandbox_ready(&self) -> bool {
        self.sandbox()
            .is_some_and(|s| s.state == api::PodSandboxState::SandboxReady as i32)
    }
    pub fn pod_ip(&self) -> String {
        self.sandbox()
            .and_then(|s| s.network.as_ref())
            .map(|n| n.ip.clone())
            .unwrap_or_default()
    }
    /// Instances of a container, newest first (all sandboxes).
    pub fn instances<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.containers.iter().filter(move |i| i.name() == name)
    }
    /// The restart count a new instance of `name` gets (0 for the first).
    pub fn next_restart_count(&self, name: &str) -> i32 {
        self.instances(name)
            .next()
            .map_or(0, |i| i.restart_count() + 1)
    }

    /// The newest instance in the current sandbox.
    pub fn current(&self, name: &str) -> Option<&Instance> {
        let sb = self.sandbox().map(|s| s.id.clone())?;
        self.containers
            .iter()
            .find(|i| i.name() == name && i.sandbox == sb)
    }
}

fn ts(nanos: i64) -> String {
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .unwrap_or_default()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn terminated(i: &Instance) -> Value {
    let s = &i.status;
    let reason = if !s.reason.is_empty() {
        s.reason.clone()
    } else if s.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mut t = json!({"exitCode": s.exit_code, "reason": reason,
        "startedAt": ts(s.started_at), "finishedAt": ts(s.finished_at),
        "containerID": format!("containerd://{}", s.id)});
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    json!({"terminated": t})
}

/// Kubelet-side inputs: why containers wait, probe results.
pub struct Inputs<'a> {
    pub waiting: &'a HashMap<String, (String, String)>,
    /// container -> ready (readiness probe result or running without one).
    pub ready: &'a dyn Fn(&Container, &Instance) -> bool,
    pub started: &'a dyn Fn(&Container, &Instance) -> bool,
    pub host_ip: &'a str,
    pub start_time: &'a str,
    /// Set when the kubelet has decided the pod failed (e.g. init container with Never).
    pub runtime_image: &'a dyn Fn(&Instance) -> (String, String),
    /// The resources a container instance runs with (in-place resizes included).
    pub applied_resources: &'a dyn Fn(&Instance) -> Option<ResourceRequirements>,
}

/// `allocatedResources` (the requests the node gave the container) and, while it runs,
/// `resources` (what it runs with).
fn set_resources(st: &mut Value, r: &ResourceRequirements, running: bool) {
    let mut v = json!({});
    if let Some(req) = r.requests.as_ref().filter(|m| !m.is_empty()) {
        v["requests"] = json!(req);
        st["allocatedResources"] = json!(req);
    }
    if let Some(lim) = r.limits.as_ref().filter(|m| !m.is_empty()) {
        v["limits"] = json!(lim);
    }
    if running && v.as_object().is_some_and(|o| !o.is_empty()) {
        st["resources"] = v;
    }
}

fn container_status(
    c: &Container,
    rt: &PodRuntime,
    inp: &Inputs,
    default_wait: &str,
) -> (Value, bool, bool) {
    let mut inst = rt.instances(&c.name);
    let latest = inst.next();
    let previous = inst.next();
    let image = c.image.clone().unwrap_or_default();
    let mut st = json!({"name": c.name, "image": image, "imageID": "", "ready": false,
        "restartCount": latest.map_or(0, |i| i.restart_count()), "started": false});
    let (mut ready, mut started) = (false, false);
    let waiting = |reason: &str, message: &str| {
        let mut w = json!({"reason": reason});
        if !message.is_empty() {
            w["message"] = json!(message);
        }
        json!({"waiting": w})
    };
    let running = latest.is_some_and(|i| i.running());
    if let Some(r) = latest
        .and_then(|i| (inp.applied_resources)(i))
        .or(c.resources.clone())
    {
        set_resources(&mut st, &r, running);
    }
    match latest {
        Some(i) => {
            let (img, img_id) = (inp.runtime_image)(i);
            if !img.is_empty() {
                st["image"] = json!(img);
            }
            st["imageID"] = json!(img_id);
            st["containerID"] = json!(format!("containerd://{}", i.status.id));
            if i.running() {
                st["state"] = json!({"running": {"startedAt": ts(i.status.started_at)}});
                started = (inp.started)(c, i);
                ready = started && (inp.ready)(c, i);
                if let Some(p) = previous.filter(|p| p.exited()) {
                    st["lastState"] = terminated(p);
                }
            } else if i.exited() {
                match inp.waiting.get(&c.name) {
                    // Waiting to restart: the exited instance is the last state.
                    Some((r, m)) => {
                        st["state"] = waiting(r, m);
                        st["lastState"] = terminated(i);
                    }
                    None => {
                        st["state"] = terminated(i);
                        if let Some(p) = previous.filter(|p| p.exited()) {
                            st["lastState"] = terminated(p);
                        }
                    }
                }
            } else {
                let (r, m) = inp
                    .waiting
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| (default_wait.into(), String::new()));
                st["state"] = waiting(&r, &m);
            }
        }
        None => {
            let (r, m) = inp
                .waiting
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| (default_wait.into(), String::new()));
            st["state"] = waiting(&r, &m);
        }
    }
    st["ready"] = json!(ready);
    st["started"] = json!(started);
    if st.get("lastState").is_none() {
        st["lastState"] = json!({});
    }
    (st, ready, started)
}

/// The pod's phase from its container statuses (upstream `getPhase`).
fn phase(pod: &Pod, init: &[Value], app: &[Value], init_failed: bool) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    if init_failed {
        return "Failed";
    }
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let mut pending_init = false;
    for (c, s) in init_containers.iter().zip(init) {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if sidecar {
            if !s["started"].as_bool().unwrap_or(false) {
                pending_init = true;
            }
        } else if s["state"]["terminated"]["exitCode"] != 0 {
            pending_init = true;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in app {
        if s["state"].get("running").is_some() {
            running += 1;
        } else if let Some(t) = s["state"].get("terminated") {
            stopped += 1;
            if t["exitCode"] == 0 {
                succeeded += 1;
            }
        } else if s["lastState"].get("terminated").is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if pending_init && running == 0 && stopped == 0 {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy.as_str() {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        };
    }
    "Pending"
}

/// Upstream's messages for the readiness gates whose condition is missing or not True
/// in the pod's status (`prev`).
fn readiness_gates_unready(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    prev: &Value,
) -> Vec<String> {
    spec.readiness_gates
        .iter()
        .flatten()
        .filter_map(|g| {
            let t = &g.condition_type;
            let c = prev["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t.as_str()));
            match c {
                None => Some(format!(
                    "corresponding condition of pod readiness gate \"{t}\" does not exist."
                )),
                Some(c) if c["status"] != "True" => Some(format!(
                    "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                    c["status"].as_str().unwrap_or_default()
                )),
                _ => None,
            }
        })
        .collect()
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    prev: &Value,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let old = prev["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let transition = old
        .filter(|c| c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(|| {
            jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        });
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The whole status the kubelet writes for `pod`.
pub fn generate(pod: &Pod, rt: &PodRuntime, inp: &Inputs, init_failed: bool) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let prev = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
    let inits = spec.init_containers.clone().unwrap_or_default();
    let mut init_statuses = Vec::new();
    let mut init_done = true;
    let mut sidecars_ready = Vec::new();
    for c in &inits {
        let (mut s, ready, _) = container_status(c, rt, inp, "PodInitializing");
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        // An init container that completed is ready (upstream's prober manager).
        if !sidecar && s["state"]["terminated"]["exitCode"] == 0 {
            s["ready"] = json!(true);
        }
        if sidecar {
            if !s["started"].as_bool().unwrap_or(false) {
                init_done = false;
            }
            sidecars_ready.push((c.name.clone(), ready));
        } else if s["state"]["terminated"]["exitCode"] != 0 {
            init_done = false;
        }
        init_statuses.push(s);
    }
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let app_wait = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    for c in &spec.containers {
        let (s, ready, _) = container_status(c, rt, inp, app_wait);
        if !ready {
            unready.push(c.name.clone());
        }
        statuses.push(s);
    }
    for (n, ready) in &sidecars_ready {
        if !ready {
            unready.push(n.clone());
        }
    }
    let phase = phase(pod, &init_statuses, &statuses, init_failed);
    let terminal = matches!(phase, "Succeeded" | "Failed");
    // A finished pod's containers are not ready.
    let all_ready = unready.is_empty() && !terminal;
    let not_ready_msg = |what: &str| {
        Some(format!(
            "containers with {what} status: [{}]",
            unready.join(" ")
        ))
    };
    let (cr_reason, cr_msg) = if all_ready {
        (None, None)
    } else if terminal {
        (Some("PodCompleted"), None)
    } else {
        (Some("ContainersNotReady"), not_ready_msg("unready"))
    };
    let pending_inits: Vec<String> = inits
        .iter()
        .zip(&init_statuses)
        .filter(|(c, s)| {
            if c.restart_policy.as_deref() == Some("Always") {
                !s["started"].as_bool().unwrap_or(false)
            } else {
                s["state"]["terminated"]["exitCode"] != 0
            }
        })
        .map(|(c, _)| c.name.clone())
        .collect();
    let (init_reason, init_msg) = if init_done || terminal && pending_inits.is_empty() {
        (
            if terminal && !inits.is_empty() {
                Some("PodCompleted")
            } else {
                None
            },
            None,
        )
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                pending_inits.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            rt.sandbox_ready() && !rt.pod_ip().is_empty()
                || rt.sandbox_ready() && spec.host_network == Some(true),
            None,
            None,
            &prev,
        ),
        condition(
            "Initialized",
            init_done || (terminal && pending_inits.is_empty()),
            init_reason,
            init_msg,
            &prev,
        ),
        {
            // Ready also waits for the readiness gates' conditions, which others set.
            let gates = readiness_gates_unready(&spec, &prev);
            if all_ready && !gates.is_empty() {
                condition(
                    "Ready",
                    false,
                    Some("ReadinessGatesNotReady"),
                    Some(gates.join(", ")),
                    &prev,
                )
            } else {
                condition("Ready", all_ready, cr_reason, cr_msg.clone(), &prev)
            }
        },
        condition("ContainersReady", all_ready, cr_reason, cr_msg, &prev),
    ];
    // Conditions others own (PodScheduled, DisruptionTarget, readiness gates) stay.
    for c in prev["conditions"].as_array().into_iter().flatten() {
        let t = c["type"].as_str().unwrap_or_default();
        if !matches!(
            t,
            "PodReadyToStartContainers" | "Initialized" | "Ready" | "ContainersReady"
        ) {
            conditions.push(c.clone());
        }
    }
    let pod_ip = if spec.host_network == Some(true) {
        inp.host_ip.to_string()
    } else {
        rt.pod_ip()
    };
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": inp.host_ip,
        "hostIPs": [{"ip": inp.host_ip}],
        "startTime": inp.start_time,
        "qosClass": crate::kuberuntime::sandbox::qos_class(pod),
        "containerStatuses": statuses,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    // Ephemeral containers: state as any container's, never ready.
    let ephemeral: Vec<Value> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|e| {
            let c = crate::kuberuntime::container::ephemeral_as_container(e);
            let (mut s, _, _) = container_status(&c, rt, inp, "ContainerCreating");
            s["ready"] = json!(false);
            s
        })
        .collect();
    if !ephemeral.is_empty() {
        status["ephemeralContainerStatuses"] = json!(ephemeral);
    }
    if !pod_ip.is_empty() {
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{"ip": pod_ip}]);
    }
    if let Some(n) = prev.get("nominatedNodeName") {
        status["nominatedNodeName"] = n.clone();
    }
    let containers = spec.containers.len() + inits.len();
    limit_termination_messages(&mut status, containers);
    status
}

/// Upstream's `MaxPodTerminationMessageLogLength`: a pod's termination messages together
/// stay within 12 KiB, each (current and last state) cut to its even share.
const MAX_POD_TERMINATION_MESSAGE_BYTES: usize = 12 * 1024;

/// The status manager's `normalizeStatus` truncation of termination messages.
fn limit_termination_messages(status: &mut Value, containers: usize) {
    let share = MAX_POD_TERMINATION_MESSAGE_BYTES / containers.max(1);
    for list in [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ] {
        for c in status[list].as_array_mut().into_iter().flatten() {
            for state in ["state", "lastState"] {
                if let Some(Value::String(m)) = c[state]["terminated"].get_mut("message")
                    && m.len() > share
                {
                    let mut cut = share;
                    while !m.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    m.truncate(cut);
                }
            }
        }
    }
}

/// The status of a pod the kubelet ended (evicted, or terminated for a node shutdown):
/// Failed — it was running when the kubelet decided, whatever its containers' exit
/// codes — with the reason and message, and the DisruptionTarget condition.
/// Upstream's `PodConditionsByKubelet`: the pod conditions the kubelet owns; every other
/// condition (readiness gates, the scheduler's, DisruptionTarget set by others) belongs to
/// someone else and is only carried over.
pub fn owned_by_kubelet(condition: &str) -> bool {
    matches!(
        condition,
        "PodScheduled"
            | "Ready"
            | "Initialized"
            | "ContainersReady"
            | "PodReadyToStartContainers"
            | "PodResizePending"
            | "PodResizeInProgress"
    )
}

pub fn killed_by_kubelet(status: &mut Value, reason: &str, message: &str) {
    status["phase"] = json!("Failed");
    status["reason"] = json!(reason);
    status["message"] = json!(message);
    if let Some(cs) = status["conditions"].as_array_mut()
        && !cs.iter().any(|c| c["type"] == "DisruptionTarget")
    {
        cs.push(json!({"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}));
    }
}

#[cfg(test)]
mod termination_message_tests {
    use super::*;

    #[test]
    fn a_pods_termination_messages_share_twelve_kib() {
        let long = "x".repeat(4096);
        let mut status = json!({
            "initContainerStatuses": [{"state": {"terminated": {"message": long}}}],
            "containerStatuses": [
                {"state": {"terminated": {"message": long}}, "lastState": {"terminated": {"message": long}}},
                {"state": {"terminated": {"message": long}}},
                {"state": {"terminated": {"message": "short"}}},
                {"state": {"running": {}}}],
        });
        limit_termination_messages(&mut status, 5);
        let len = |v: &Value| v.as_str().unwrap().len();
        assert_eq!(
            len(&status["initContainerStatuses"][0]["state"]["terminated"]["message"]),
            2457
        );
        assert_eq!(
            len(&status["containerStatuses"][0]["lastState"]["terminated"]["message"]),
            2457
        );
        assert_eq!(
            status["containerStatuses"][2]["state"]["terminated"]["message"],
            "short"
        );
        // One container keeps its 4 KiB (the per-container cap applies when reading).
        let mut one = json!({"containerStatuses": [{"state": {"terminated": {"message": long}}}]});
        limit_termination_messages(&mut one, 1);
        assert_eq!(
            len(&one["containerStatuses"][0]["state"]["terminated"]["message"]),
            4096
        );
    }
}
