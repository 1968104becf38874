//! A container's Linux security context for the runtime (upstream
//! `kuberuntime/security_context.go`, `kuberuntime/helpers.go` seccomp/AppArmor and
//! `pkg/securitycontext`): the container's settings over the pod's — user, group,
//! supplemental groups (with `fsGroup`), capabilities, privileged, read-only root,
//! no_new_privs, `procMount`, SELinux — and the seccomp and AppArmor profiles the
//! runtime applies; plus upstream's `runAsNonRoot` check against the image's user.

use crate::cri::api;
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
};
use std::path::PathBuf;

/// The node's settings a security context is built with.
#[derive(Clone, Debug)]
pub struct SecurityOptions {
    /// `seccompDefault`: RuntimeDefault for pods that ask for no profile.
    pub seccomp_default: bool,
    /// Where Localhost seccomp profiles live (`<root-dir>/seccomp`).
    pub seccomp_root: PathBuf,
}

/// Upstream's masked and read-only /proc and /sys paths (`procMount: Default`).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A seccomp profile for the runtime: the container's field over the pod's, else the
/// kubelet's default (upstream `getSeccompProfile`).
pub fn seccomp(
    pod_profile: Option<&SeccompProfile>,
    container_profile: Option<&SeccompProfile>,
    o: &SecurityOptions,
) -> api::SecurityProfile {
    let profile = |t: ProfileType, r: String| api::SecurityProfile {
        profile_type: t as i32,
        localhost_ref: r,
    };
    use api::security_profile::ProfileType;
    match container_profile.or(pod_profile) {
        Some(p) if p.type_ == "RuntimeDefault" => {
            profile(ProfileType::RuntimeDefault, String::new())
        }
        Some(p) if p.type_ == "Localhost" => {
            let rel = p.localhost_profile.clone().unwrap_or_default();
            profile(
                ProfileType::Localhost,
                o.seccomp_root.join(rel).display().to_string(),
            )
        }
        Some(_) => profile(ProfileType::Unconfined, String::new()),
        None if o.seccomp_default => profile(ProfileType::RuntimeDefault, String::new()),
        None => profile(ProfileType::Unconfined, String::new()),
    }
}

/// The string form of a seccomp profile (the deprecated CRI field's, and the annotation
/// values of old).
#[cfg(test)]
fn seccomp_path(p: &api::SecurityProfile) -> String {
    use api::security_profile::ProfileType;
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => "runtime/default".into(),
        Ok(ProfileType::Localhost) => format!("localhost/{}", p.localhost_ref),
        _ => "unconfined".into(),
    }
}

/// The deprecated per-container annotation's AppArmor profile, as the field would say it.
fn apparmor_annotation(pod: &Pod, container: &str) -> Option<AppArmorProfile> {
    let key = format!("container.apparmor.security.beta.kubernetes.io/{container}");
    let v = pod.metadata.annotations.as_ref()?.get(&key)?;
    Some(match v.as_str() {
        "runtime/default" => AppArmorProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        },
        "unconfined" => AppArmorProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        },
        other => AppArmorProfile {
            type_: "Localhost".into(),
            localhost_profile: other.strip_prefix("localhost/").map(String::from),
        },
    })
}

/// The container's AppArmor profile: its field, the pod's, then the annotation; None
/// leaves the runtime's default (upstream `getAppArmorProfile`).
pub fn apparmor_profile(pod: &Pod, c: &Container) -> Option<AppArmorProfile> {
    let spec = pod.spec.as_ref();
    c.security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.clone())
        .or_else(|| apparmor_annotation(pod, &c.name))
        .or_else(|| {
            spec.and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.app_armor_profile.clone())
        })
}

fn apparmor(p: Option<AppArmorProfile>) -> Option<api::SecurityProfile> {
    use api::security_profile::ProfileType;
    let p = p?;
    Some(match p.type_.as_str() {
        "RuntimeDefault" => api::SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        },
        "Localhost" => api::SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: p.localhost_profile.unwrap_or_default(),
        },
        _ => api::SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            localhost_ref: String::new(),
        },
    })
}

/// Whether the pod asks for an AppArmor profile the host would have to enforce.
pub fn requires_apparmor(pod: &Pod) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter_map(|c| apparmor_profile(pod, c))
        .any(|p| p.type_ != "Unconfined")
}

/// The user the container runs as: its runAsUser over the pod's.
pub fn run_as_user(pod_sc: &PodSecurityContext, sc: &SecurityContext) -> Option<i64> {
    sc.run_as_user.or(pod_sc.run_as_user)
}

fn run_as_non_root(pod_sc: &PodSecurityContext, sc: &SecurityContext) -> bool {
    sc.run_as_non_root.or(pod_sc.run_as_non_root) == Some(true)
}

/// Upstream's name for a pod in messages: `name_namespace(uid)`.
fn pod_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.clone().unwrap_or_default(),
        m.namespace.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default()
    )
}

/// `runAsNonRoot` against the effective user (upstream `verifyRunAsNonRoot`):
/// `image_uid`/`image_user` are what the image's config says (a numeric USER, or a name).
pub fn verify_run_as_non_root(
    pod: &Pod,
    c: &Container,
    image_uid: Option<i64>,
    image_user: &str,
) -> Result<(), String> {
    let pod_sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    if !run_as_non_root(&pod_sc, &sc) {
        return Ok(());
    }
    let name = pod_name(pod);
    if let Some(uid) = run_as_user(&pod_sc, &sc) {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {name:?}, container: {})",
                c.name
            ));
        }
        return Ok(());
    }
    match image_uid {
        Some(0) | None if image_user.is_empty() => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {name:?}, container: {})",
            c.name
        )),
        Some(0) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {name:?}, container: {})",
            c.name
        )),
        Some(_) => Ok(()),
        None => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root (pod: {name:?}, container: {})",
            c.name
        )),
    }
}

/// The security context of a container (`target_id`: an ephemeral container's target,
/// whose process namespace it joins).
pub fn container_security_context(
    pod: &Pod,
    c: &Container,
    target_id: Option<&str>,
    o: &SecurityOptions,
) -> api::LinuxContainerSecurityContext {
    let spec = pod.spec.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged == Some(true);
    let mode = |node: bool, otherwise: api::NamespaceMode| match node {
        true => api::NamespaceMode::Node as i32,
        false => otherwise as i32,
    };
    let pid = if spec.host_pid == Some(true) {
        api::NamespaceMode::Node
    } else if spec.share_process_namespace == Some(true) {
        api::NamespaceMode::Pod
    } else if target_id.is_some() {
        api::NamespaceMode::Target
    } else {
        api::NamespaceMode::Container
    };
    // Unmasked /proc (and privileged containers) see everything.
    let unmasked = privileged || sc.proc_mount.as_deref() == Some("Unmasked");
    let paths = |list: &[&str]| match unmasked {
        true => Vec::new(),
        false => list.iter().map(|s| s.to_string()).collect(),
    };
    let mut groups = psc.supplemental_groups.clone().unwrap_or_default();
    if let Some(fs_group) = psc.fs_group
        && !groups.contains(&fs_group)
    {
        groups.push(fs_group);
    }
    let seccomp = seccomp(psc.seccomp_profile.as_ref(), sc.seccomp_profile.as_ref(), o);
    let selinux = sc.se_linux_options.clone().or(psc.se_linux_options.clone());
    let apparmor = apparmor(apparmor_profile(pod, c));
    api::LinuxContainerSecurityContext {
        capabilities: sc.capabilities.as_ref().map(|caps| api::Capability {
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        run_as_user: run_as_user(&psc, &sc).map(|v| api::Int64Value { value: v }),
        run_as_group: sc
            .run_as_group
            .or(psc.run_as_group)
            .map(|v| api::Int64Value { value: v }),
        readonly_rootfs: sc.read_only_root_filesystem == Some(true),
        supplemental_groups: groups,
        supplemental_groups_policy: match psc.supplemental_groups_policy.as_deref() {
            Some("Strict") => api::SupplementalGroupsPolicy::Strict as i32,
            _ => api::SupplementalGroupsPolicy::Merge as i32,
        },
        // Upstream: no_new_privs unless escalation is allowed (explicitly, or implied by
        // privileged or CAP_SYS_ADMIN).
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        namespace_options: Some(api::NamespaceOption {
            network: mode(spec.host_network == Some(true), api::NamespaceMode::Pod),
            pid: pid as i32,
            ipc: mode(spec.host_ipc == Some(true), api::NamespaceMode::Pod),
            target_id: target_id.unwrap_or_default().to_string(),
            ..Default::default()
        }),
        selinux_options: selinux.map(|s| api::SeLinuxOption {
            user: s.user.unwrap_or_default(),
            role: s.role.unwrap_or_default(),
            r#type: s.type_.unwrap_or_default(),
            level: s.level.unwrap_or_default(),
        }),
        masked_paths: paths(&MASKED_PATHS),
        readonly_paths: paths(&READONLY_PATHS),
        seccomp: Some(seccomp),
        apparmor,
        ..Default::default()
    }
}

/// The sandbox's seccomp profile: the pod's (the pause container runs confined too).
pub fn sandbox_seccomp(pod: &Pod, o: &SecurityOptions) -> api::SecurityProfile {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    seccomp(psc.and_then(|s| s.seccomp_profile.as_ref()), None, o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::security_profile::ProfileType;

    fn opts(default: bool) -> SecurityOptions {
        SecurityOptions {
            seccomp_default: default,
            seccomp_root: PathBuf::from("/var/lib/kubelet/seccomp"),
        }
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn profile(t: &str, l: Option<&str>) -> SeccompProfile {
        SeccompProfile {
            type_: t.into(),
            localhost_profile: l.map(String::from),
        }
    }

    #[test]
    fn seccomp_container_over_pod_over_default() {
        let rd = profile("RuntimeDefault", None);
        let un = profile("Unconfined", None);
        let p = seccomp(Some(&rd), Some(&un), &opts(false));
        assert_eq!(p.profile_type, ProfileType::Unconfined as i32);
        let p = seccomp(Some(&rd), None, &opts(false));
        assert_eq!(p.profile_type, ProfileType::RuntimeDefault as i32);
        assert_eq!(seccomp_path(&p), "runtime/default");
        assert_eq!(
            seccomp(None, None, &opts(false)).profile_type,
            ProfileType::Unconfined as i32
        );
        assert_eq!(
            seccomp(None, None, &opts(true)).profile_type,
            ProfileType::RuntimeDefault as i32
        );
        let l = profile("Localhost", Some("profiles/audit.json"));
        let p = seccomp(None, Some(&l), &opts(false));
        assert_eq!(
            p.localhost_ref,
            "/var/lib/kubelet/seccomp/profiles/audit.json"
        );
        assert_eq!(
            seccomp_path(&p),
            "localhost//var/lib/kubelet/seccomp/profiles/audit.json"
        );
    }

    #[test]
    fn run_as_non_root_as_upstream() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]}}),
        );
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        assert_eq!(
            verify_run_as_non_root(&p, &c, Some(0), "").unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u1)\", container: c)"
        );
        assert_eq!(
            verify_run_as_non_root(&p, &c, None, "").unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u1)\", container: c)"
        );
        assert!(verify_run_as_non_root(&p, &c, Some(1000), "").is_ok());
        assert!(
            verify_run_as_non_root(&p, &c, None, "nobody")
                .unwrap_err()
                .contains("image has non-numeric user (nobody), cannot verify user is non-root")
        );
        // An explicit user decides, whatever the image says.
        let mut c2 = c.clone();
        c2.security_context = Some(SecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        });
        assert!(
            verify_run_as_non_root(&p, &c2, Some(1000), "")
                .unwrap_err()
                .starts_with("container's runAsUser breaks non-root policy")
        );
        c2.security_context.as_mut().unwrap().run_as_user = Some(1000);
        assert!(verify_run_as_non_root(&p, &c2, Some(0), "").is_ok());
        // The container may turn the check off.
        c2.security_context = Some(SecurityContext {
            run_as_non_root: Some(false),
            ..Default::default()
        });
        assert!(verify_run_as_non_root(&p, &c2, Some(0), "").is_ok());
    }

    #[test]
    fn container_context_merges_pod_and_container() {
        let p = pod(serde_json::json!({"metadata": {"name": "p",
                "annotations": {"container.apparmor.security.beta.kubernetes.io/c": "localhost/k8s-nginx"}},
            "spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000],
                    "seccompProfile": {"type": "RuntimeDefault"}, "seLinuxOptions": {"level": "s0:c1"}},
                "containers": [{"name": "c", "securityContext": {"runAsGroup": 5, "procMount": "Unmasked",
                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}]}}));
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let sc = container_security_context(&p, &c, None, &opts(false));
        assert_eq!(sc.run_as_user.unwrap().value, 1000);
        assert_eq!(sc.run_as_group.unwrap().value, 5);
        assert_eq!(sc.supplemental_groups, [3000, 2000]);
        assert!(sc.no_new_privs && sc.readonly_rootfs && !sc.privileged);
        assert!(sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
        assert_eq!(
            sc.seccomp.unwrap().profile_type,
            ProfileType::RuntimeDefault as i32
        );
        let aa = sc.apparmor.unwrap();
        assert_eq!(
            (aa.profile_type, aa.localhost_ref.as_str()),
            (ProfileType::Localhost as i32, "k8s-nginx")
        );
        assert_eq!(sc.selinux_options.unwrap().level, "s0:c1");
        assert_eq!(sc.capabilities.unwrap().drop_capabilities, ["ALL"]);
        assert!(requires_apparmor(&p));
        // Default procMount keeps upstream's masked paths.
        let plain = pod(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        let c = plain.spec.as_ref().unwrap().containers[0].clone();
        let sc = container_security_context(&plain, &c, Some("target"), &opts(false));
        assert_eq!(sc.masked_paths.len(), MASKED_PATHS.len());
        assert_eq!(
            sc.namespace_options.unwrap().pid,
            api::NamespaceMode::Target as i32
        );
        assert!(sc.apparmor.is_none());
        assert!(!requires_apparmor(&plain));
    }
}
