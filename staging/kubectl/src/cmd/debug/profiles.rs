//! The debugging profiles: what each does to the debugging pod or container. Upstream
//! twin: `kubectl/pkg/cmd/debug/profiles.go`.

use serde_json::{Value, json};

/// How the debugging happens, which decides what a profile changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// An ephemeral container added to the running pod.
    Ephemeral,
    /// A copy of the pod (`--copy-to`).
    PodCopy,
    /// A new pod on a node (`node/NAME`).
    Node,
}

/// `--keep-*`: what a pod copy keeps of the original.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepFlags {
    pub labels: bool,
    pub annotations: bool,
    pub liveness: bool,
    pub readiness: bool,
    pub startup: bool,
    pub init_containers: bool,
}

pub const PROFILES: [&str; 6] = [
    "legacy",
    "general",
    "baseline",
    "restricted",
    "netadmin",
    "sysadmin",
];

/// Applies `profile` to `pod`, whose container `container` is the debugging one.
pub fn apply(profile: &str, keep: KeepFlags, pod: &mut Value, container: &str, style: Style) {
    let strip = |pod: &mut Value, keep: KeepFlags| {
        remove_labels_annotations_probes_inits(pod, keep);
        share_process_namespace(pod);
    };
    match profile {
        "legacy" => match style {
            Style::Node => {
                mount_root_partition(pod, container);
                use_host_namespaces(pod);
            }
            Style::PodCopy => {
                // Legacy never keeps labels: a copy must not join the original's Services.
                if let Some(m) = pod["metadata"].as_object_mut() {
                    m.remove("labels");
                }
            }
            Style::Ephemeral => {}
        },
        "general" => match style {
            Style::Node => {
                mount_root_partition(pod, container);
                with_container(pod, container, |c| {
                    c.as_object_mut().map(|m| m.remove("securityContext"));
                });
                use_host_namespaces(pod);
            }
            Style::PodCopy => {
                remove_labels_annotations_probes_inits(pod, keep);
                add_capabilities(pod, container, &["SYS_PTRACE"]);
                share_process_namespace(pod);
            }
            Style::Ephemeral => add_capabilities(pod, container, &["SYS_PTRACE"]),
        },
        "baseline" => {
            with_container(pod, container, |c| {
                c.as_object_mut().map(|m| m.remove("securityContext"));
            });
            if style == Style::PodCopy {
                strip(pod, keep);
            }
        }
        "restricted" => {
            with_container(pod, container, |c| {
                c["securityContext"] = json!({
                    "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]},
                    "allowPrivilegeEscalation": false,
                    "seccompProfile": {"type": "RuntimeDefault"},
                });
            });
            if style == Style::PodCopy {
                strip(pod, keep);
            }
        }
        "netadmin" => {
            add_capabilities(pod, container, &["NET_ADMIN", "NET_RAW"]);
            match style {
                Style::Node => use_host_namespaces(pod),
                Style::PodCopy => strip(pod, keep),
                Style::Ephemeral => {}
            }
        }
        "sysadmin" => {
            with_container(pod, container, |c| {
                c["securityContext"]["privileged"] = json!(true);
            });
            match style {
                Style::Node => {
                    use_host_namespaces(pod);
                    mount_root_partition(pod, container);
                }
                Style::PodCopy => strip(pod, keep),
                Style::Ephemeral => {}
            }
        }
        _ => {}
    }
}

/// Calls `f` on the container named `name`, in containers, init or ephemeral containers.
fn with_container(pod: &mut Value, name: &str, f: impl FnOnce(&mut Value)) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(c) =
            containers_mut(pod, list).and_then(|l| l.iter_mut().find(|c| c["name"] == name))
        {
            f(c);
            return;
        }
    }
}

/// A container list of the pod, without creating it (indexing would insert a null).
fn containers_mut<'a>(pod: &'a mut Value, list: &str) -> Option<&'a mut Vec<Value>> {
    pod.get_mut("spec")?.get_mut(list)?.as_array_mut()
}

fn add_capabilities(pod: &mut Value, container: &str, caps: &[&str]) {
    with_container(pod, container, |c| {
        let add = &mut c["securityContext"]["capabilities"]["add"];
        if !add.is_array() {
            *add = json!([]);
        }
        let list = add.as_array_mut().expect("an array");
        list.extend(caps.iter().map(|c| json!(c)));
    });
}

/// The node's root at `/host` in the debugging container (containers and init ones).
fn mount_root_partition(pod: &mut Value, container: &str) {
    let volumes = &mut pod["spec"]["volumes"];
    if !volumes.is_array() {
        *volumes = json!([]);
    }
    volumes
        .as_array_mut()
        .expect("an array")
        .push(json!({"name": "host-root", "hostPath": {"path": "/"}}));
    for list in ["initContainers", "containers"] {
        if let Some(c) =
            containers_mut(pod, list).and_then(|l| l.iter_mut().find(|c| c["name"] == container))
        {
            let mounts = &mut c["volumeMounts"];
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            mounts
                .as_array_mut()
                .expect("an array")
                .push(json!({"name": "host-root", "mountPath": "/host"}));
            return;
        }
    }
}

fn use_host_namespaces(pod: &mut Value) {
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        pod["spec"][k] = json!(true);
    }
}

fn share_process_namespace(pod: &mut Value) {
    if pod["spec"]["shareProcessNamespace"].is_null() {
        pod["spec"]["shareProcessNamespace"] = json!(true);
    }
}

fn remove_labels_annotations_probes_inits(pod: &mut Value, keep: KeepFlags) {
    if let Some(m) = pod["metadata"].as_object_mut() {
        if !keep.labels {
            m.remove("labels");
        }
        if !keep.annotations {
            m.remove("annotations");
        }
    }
    for c in pod["spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let Some(c) = c.as_object_mut() else { continue };
        for (kept, probe) in [
            (keep.liveness, "livenessProbe"),
            (keep.readiness, "readinessProbe"),
            (keep.startup, "startupProbe"),
        ] {
            if !kept {
                c.remove(probe);
            }
        }
    }
    if !keep.init_containers
        && let Some(spec) = pod["spec"].as_object_mut()
    {
        spec.remove("initContainers");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {
                "initContainers": [{"name": "init"}],
                "containers": [
                    {"name": "app", "livenessProbe": {}, "readinessProbe": {}},
                    {"name": "debugger", "securityContext": {"runAsUser": 1}}
                ]
            }
        })
    }

    #[test]
    fn node_profiles_mount_the_root_and_use_host_namespaces() {
        let mut p = pod();
        apply(
            "general",
            KeepFlags::default(),
            &mut p,
            "debugger",
            Style::Node,
        );
        assert_eq!(p["spec"]["hostPID"], true);
        assert_eq!(p["spec"]["volumes"][0]["hostPath"]["path"], "/");
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"][0]["mountPath"],
            "/host"
        );
        assert!(p["spec"]["containers"][1].get("securityContext").is_none());
        let mut p = pod();
        apply(
            "netadmin",
            KeepFlags::default(),
            &mut p,
            "debugger",
            Style::Node,
        );
        assert!(p["spec"].get("volumes").is_none());
        assert_eq!(
            p["spec"]["containers"][1]["securityContext"]["capabilities"]["add"],
            json!(["NET_ADMIN", "NET_RAW"])
        );
    }

    #[test]
    fn pod_copies_drop_what_is_not_kept() {
        let mut p = pod();
        let keep = KeepFlags {
            annotations: true,
            readiness: true,
            ..Default::default()
        };
        apply("general", keep, &mut p, "debugger", Style::PodCopy);
        assert!(p["metadata"].get("labels").is_none());
        assert_eq!(p["metadata"]["annotations"]["a"], "b");
        assert!(p["spec"]["containers"][0].get("livenessProbe").is_none());
        assert!(p["spec"]["containers"][0].get("readinessProbe").is_some());
        assert!(p["spec"].get("initContainers").is_none());
        assert_eq!(p["spec"]["shareProcessNamespace"], true);
        assert_eq!(
            p["spec"]["containers"][1]["securityContext"]["capabilities"]["add"],
            json!(["SYS_PTRACE"])
        );
        // Legacy keeps everything but the labels.
        let mut p = pod();
        apply(
            "legacy",
            KeepFlags::default(),
            &mut p,
            "debugger",
            Style::PodCopy,
        );
        assert!(p["metadata"].get("labels").is_none());
        assert!(p["spec"].get("initContainers").is_some());
    }

    #[test]
    fn restricted_replaces_the_security_context() {
        let mut p = pod();
        apply(
            "restricted",
            KeepFlags::default(),
            &mut p,
            "debugger",
            Style::Ephemeral,
        );
        let sc = &p["spec"]["containers"][1]["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert!(sc.get("runAsUser").is_none());
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    }
}
