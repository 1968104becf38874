//! The Pod Security Standards' checks (upstream `pod-security-admission/policy`): each
//! looks at a pod's metadata and spec and answers with a reason and a detail when the
//! pod breaks it. Baseline checks run at baseline and restricted; restricted adds its
//! own and replaces the baseline checks it tightens.

use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One broken rule: upstream's ForbiddenReason and ForbiddenDetail.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

type CheckFn = fn(&Value, &Value) -> Option<Violation>;

struct Check {
    id: &'static str,
    level: Level,
    /// The first v1.<minor> of the standards with this check (pinned older versions skip it).
    since_minor: u32,
    /// Baseline checks this one replaces at its level.
    overrides: &'static [&'static str],
    run: CheckFn,
}

/// Every check, baseline then restricted, each level in ID order (the order upstream
/// reports violations in).
const CHECKS: &[Check] = &[
    check("appArmorProfile", Level::Baseline, &[], app_armor),
    check(
        "capabilities_baseline",
        Level::Baseline,
        &[],
        capabilities_baseline,
    ),
    check("hostNamespaces", Level::Baseline, &[], host_namespaces),
    check("hostPathVolumes", Level::Baseline, &[], host_path_volumes),
    check("hostPorts", Level::Baseline, &[], host_ports),
    Check {
        since_minor: 34,
        ..check(
            "hostProbesAndHostLifecycle",
            Level::Baseline,
            &[],
            host_probes,
        )
    },
    check("privileged", Level::Baseline, &[], privileged),
    check("procMount", Level::Baseline, &[], proc_mount),
    check("seLinuxOptions", Level::Baseline, &[], se_linux_options),
    check(
        "seccompProfile_baseline",
        Level::Baseline,
        &[],
        seccomp_baseline,
    ),
    check("sysctls", Level::Baseline, &[], sysctls),
    check(
        "windowsHostProcess",
        Level::Baseline,
        &[],
        windows_host_process,
    ),
    check(
        "allowPrivilegeEscalation",
        Level::Restricted,
        &[],
        allow_privilege_escalation,
    ),
    check(
        "capabilities_restricted",
        Level::Restricted,
        &[],
        capabilities_restricted,
    ),
    check(
        "restrictedVolumes",
        Level::Restricted,
        &["hostPathVolumes"],
        restricted_volumes,
    ),
    check("runAsNonRoot", Level::Restricted, &[], run_as_non_root),
    check("runAsUser", Level::Restricted, &[], run_as_user),
    check(
        "seccompProfile_restricted",
        Level::Restricted,
        &["seccompProfile_baseline"],
        seccomp_restricted,
    ),
];

const fn check(
    id: &'static str,
    level: Level,
    overrides: &'static [&'static str],
    run: CheckFn,
) -> Check {
    Check {
        id,
        level,
        since_minor: 0,
        overrides,
        run,
    }
}

/// The violations of a pod (its metadata and spec) at a level of the latest standards.
pub fn evaluate(level: Level, metadata: &Value, spec: &Value) -> Vec<Violation> {
    evaluate_version(level, "latest", metadata, spec)
}

/// The same at a version of the standards (`latest` or `v1.<minor>`, a namespace's
/// `pod-security.kubernetes.io/<mode>-version`): checks newer than it do not apply.
pub fn evaluate_version(
    level: Level,
    version: &str,
    metadata: &Value,
    spec: &Value,
) -> Vec<Violation> {
    let minor = version
        .strip_prefix("v1.")
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    let applicable: Vec<&Check> = CHECKS
        .iter()
        .filter(|c| c.level <= level && c.since_minor <= minor)
        .collect();
    let overridden: BTreeSet<&str> = applicable
        .iter()
        .flat_map(|c| c.overrides.iter().copied())
        .collect();
    applicable
        .into_iter()
        .filter(|c| level != Level::Privileged && !overridden.contains(c.id))
        .filter_map(|c| (c.run)(metadata, spec))
        .collect()
}

/// `reason (detail), reason (detail)` as upstream joins them in messages.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- helpers ----

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|k| spec[k].as_array().into_iter().flatten())
}

fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_string()
}

fn quote_all<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|i| format!("{:?}", i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 { one } else { many }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        quote_all(names)
    )
}

fn violation(reason: &str, detail: String) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail,
    })
}

/// Containers for which `bad` holds.
fn offending(spec: &Value, mut bad: impl FnMut(&Value) -> bool) -> Vec<String> {
    containers(spec).filter(|c| bad(c)).map(name).collect()
}

// ---- baseline ----

fn app_armor(meta: &Value, spec: &Value) -> Option<Violation> {
    let bad_type = |p: &Value| p["type"].as_str().is_some_and(|t| t == "Unconfined");
    let mut bad = BTreeSet::new();
    if bad_type(&spec["securityContext"]["appArmorProfile"]) {
        bad.insert("pod".to_string());
    }
    for c in containers(spec) {
        if bad_type(&c["securityContext"]["appArmorProfile"]) {
            bad.insert(format!("container {:?}", name(c)));
        }
    }
    let annotations: Vec<String> = meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && v.as_str()
                    .is_some_and(|v| v != "runtime/default" && !v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or_default()))
        .collect();
    if bad.is_empty() && annotations.is_empty() {
        return None;
    }
    let mut details: Vec<String> = Vec::new();
    if !bad.is_empty() {
        let setters: Vec<String> = bad.into_iter().collect();
        details.push(format!(
            "{} must not set securityContext.appArmorProfile.type to \"Unconfined\"",
            setters.join(" and ")
        ));
    }
    details.extend(annotations);
    violation("forbidden AppArmor profile", details.join(", "))
}

const BASELINE_CAPABILITIES: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
    "NET_RAW",
];

fn added_capabilities(c: &Value) -> impl Iterator<Item = &str> {
    c["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn capabilities_baseline(_: &Value, spec: &Value) -> Option<Violation> {
    let mut forbidden = BTreeSet::new();
    let names = offending(spec, |c| {
        let extra: Vec<&str> = added_capabilities(c)
            .filter(|a| !BASELINE_CAPABILITIES.contains(a))
            .collect();
        forbidden.extend(extra.iter().map(|s| s.to_string()));
        !extra.is_empty()
    });
    if names.is_empty() {
        return None;
    }
    let caps: Vec<String> = forbidden.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&names),
            quote_all(&caps)
        ),
    )
}

fn host_namespaces(_: &Value, spec: &Value) -> Option<Violation> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k] == true)
        .map(|k| format!("{k}=true"))
        .collect();
    (!set.is_empty()).then(|| Violation {
        reason: "host namespaces".into(),
        detail: set.join(", "),
    })
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

fn host_path_volumes(_: &Value, spec: &Value) -> Option<Violation> {
    let names: Vec<String> = volumes(spec)
        .filter(|v| v["hostPath"].is_object())
        .map(name)
        .collect();
    if names.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            plural("volume", "volumes", names.len()),
            quote_all(&names)
        ),
    )
}

fn host_ports(_: &Value, spec: &Value) -> Option<Violation> {
    let mut ports = BTreeSet::new();
    let names = offending(spec, |c| {
        let used: Vec<i64> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64())
            .filter(|p| *p != 0)
            .collect();
        ports.extend(used.iter().copied());
        !used.is_empty()
    });
    if names.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().map(|p| p.to_string()).collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&names),
            plural("uses", "use", names.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// Probes and lifecycle handlers may not reach another host (`host` set; baseline since
/// v1.34). Upstream names each offending container and each host once, sorted.
fn host_probes(_: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in containers(spec) {
        let handlers = [
            &c["livenessProbe"],
            &c["readinessProbe"],
            &c["startupProbe"],
            &c["lifecycle"]["postStart"],
            &c["lifecycle"]["preStop"],
        ];
        for h in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = h[action]["host"].as_str().filter(|h| !h.is_empty()) {
                    bad.insert(name(c));
                    hosts.insert(host.to_string());
                }
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let (bad, hosts): (Vec<String>, Vec<String>) =
        (bad.into_iter().collect(), hosts.into_iter().collect());
    violation(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            plural("uses", "use", bad.len()),
            plural(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            quote_all(&hosts)
        ),
    )
}

fn privileged(_: &Value, spec: &Value) -> Option<Violation> {
    let names = offending(spec, |c| c["securityContext"]["privileged"] == true);
    if names.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&names)
        ),
    )
}

fn proc_mount(_: &Value, spec: &Value) -> Option<Violation> {
    // Unmasked is allowed for user-namespaced pods (hostUsers: false).
    if spec["hostUsers"] == false {
        return None;
    }
    let names = offending(spec, |c| {
        c["securityContext"]["procMount"]
            .as_str()
            .is_some_and(|m| m != "Default")
    });
    if names.is_empty() {
        return None;
    }
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to \"Unmasked\"",
            containers_phrase(&names)
        ),
    )
}

fn se_linux_options(_: &Value, spec: &Value) -> Option<Violation> {
    const TYPES: [&str; 4] = ["", "container_t", "container_init_t", "container_kvm_t"];
    let mut bad_types = BTreeSet::new();
    let mut user_setters = Vec::new();
    let mut role_setters = Vec::new();
    let mut type_setters = Vec::new();
    let mut visit = |who: String, o: &Value| {
        if let Some(t) = o["type"].as_str()
            && !TYPES.contains(&t)
        {
            bad_types.insert(t.to_string());
            type_setters.push(who.clone());
        }
        if o["user"].as_str().is_some_and(|u| !u.is_empty()) {
            user_setters.push(who.clone());
        }
        if o["role"].as_str().is_some_and(|r| !r.is_empty()) {
            role_setters.push(who);
        }
    };
    visit("pod".into(), &spec["securityContext"]["seLinuxOptions"]);
    for c in containers(spec) {
        visit(
            format!("container {:?}", name(c)),
            &c["securityContext"]["seLinuxOptions"],
        );
    }
    let mut details = Vec::new();
    if !type_setters.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        details.push(format!(
            "{} set forbidden securityContext.seLinuxOptions: {} {}",
            type_setters.join(", "),
            plural("type", "types", types.len()),
            quote_all(&types)
        ));
    }
    if !user_setters.is_empty() {
        details.push(format!(
            "{} set forbidden securityContext.seLinuxOptions: user",
            user_setters.join(", ")
        ));
    }
    if !role_setters.is_empty() {
        details.push(format!(
            "{} set forbidden securityContext.seLinuxOptions: role",
            role_setters.join(", ")
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "seLinuxOptions".into(),
        detail: details.join("; "),
    })
}

fn seccomp_type(sc: &Value) -> Option<&str> {
    sc["seccompProfile"]["type"].as_str()
}

fn seccomp_baseline(_: &Value, spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if seccomp_type(&spec["securityContext"]) == Some("Unconfined") {
        setters.push("pod".to_string());
    }
    let names = offending(spec, |c| {
        seccomp_type(&c["securityContext"]) == Some("Unconfined")
    });
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            setters.join(" and ")
        ),
    )
}

const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

fn sysctls(_: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(String::from)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden sysctls".into(),
        detail: bad.join(", "),
    })
}

fn windows_host_process(_: &Value, spec: &Value) -> Option<Violation> {
    let host = |sc: &Value| sc["windowsOptions"]["hostProcess"] == true;
    let pod = host(&spec["securityContext"]);
    let names = offending(spec, |c| host(&c["securityContext"]));
    if !pod && names.is_empty() {
        return None;
    }
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    violation(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

// ---- restricted ----

fn allow_privilege_escalation(_: &Value, spec: &Value) -> Option<Violation> {
    if spec["os"]["name"] == "windows" {
        return None;
    }
    let names = offending(spec, |c| {
        c["securityContext"]["allowPrivilegeEscalation"] != false
    });
    if names.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&names)
        ),
    )
}

fn capabilities_restricted(_: &Value, spec: &Value) -> Option<Violation> {
    if spec["os"]["name"] == "windows" {
        return None;
    }
    let missing_drop = offending(spec, |c| {
        !c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
    });
    let mut forbidden = BTreeSet::new();
    let adding = offending(spec, |c| {
        let extra: Vec<&str> = added_capabilities(c)
            .filter(|a| *a != "NET_BIND_SERVICE")
            .collect();
        forbidden.extend(extra.iter().map(|s| s.to_string()));
        !extra.is_empty()
    });
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            quote_all(&caps)
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities".into(),
        detail: details.join("; "),
    })
}

/// Volume sources the restricted level allows.
const ALLOWED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
];

fn restricted_volumes(_: &Value, spec: &Value) -> Option<Violation> {
    let mut types = BTreeSet::new();
    let names: Vec<String> = volumes(spec)
        .filter(|v| {
            let bad: Vec<&String> = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .filter(|k| *k != "name" && !ALLOWED_VOLUMES.contains(&k.as_str()))
                .collect();
            types.extend(bad.iter().map(|s| s.to_string()));
            !bad.is_empty()
        })
        .map(name)
        .collect();
    if names.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", names.len()),
            quote_all(&names),
            plural("uses", "use", names.len()),
            plural(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            quote_all(&types)
        ),
    )
}

fn run_as_non_root(_: &Value, spec: &Value) -> Option<Violation> {
    if spec["hostUsers"] == false {
        return None;
    }
    let mut setters = Vec::new();
    let pod = &spec["securityContext"]["runAsNonRoot"];
    if *pod == false {
        setters.push("pod".to_string());
    }
    let pod_ok = *pod == true;
    let explicit = offending(spec, |c| c["securityContext"]["runAsNonRoot"] == false);
    let implicit = offending(spec, |c| {
        c["securityContext"]["runAsNonRoot"].is_null() && !pod_ok
    });
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    violation(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    )
}

fn run_as_user(_: &Value, spec: &Value) -> Option<Violation> {
    if spec["hostUsers"] == false {
        return None;
    }
    let mut setters = Vec::new();
    if spec["securityContext"]["runAsUser"] == 0 {
        setters.push("pod".to_string());
    }
    let names = offending(spec, |c| c["securityContext"]["runAsUser"] == 0);
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

fn seccomp_restricted(_: &Value, spec: &Value) -> Option<Violation> {
    if spec["os"]["name"] == "windows" {
        return None;
    }
    let valid = |t: Option<&str>| matches!(t, Some("RuntimeDefault") | Some("Localhost"));
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let pod_type = seccomp_type(&spec["securityContext"]);
    let pod_set = valid(pod_type);
    if let Some(t) = pod_type.filter(|_| !pod_set) {
        setters.push("pod".to_string());
        bad_values.insert(t.to_string());
    }
    let explicit = offending(spec, |c| {
        let t = seccomp_type(&c["securityContext"]);
        let bad = t.is_some() && !valid(t);
        if bad {
            bad_values.insert(t.unwrap_or_default().to_string());
        }
        bad
    });
    let implicit = offending(spec, |c| {
        seccomp_type(&c["securityContext"]).is_none() && !pod_set
    });
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let values: Vec<String> = bad_values.into_iter().collect();
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                quote_all(&values)
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn privileged_pod_at_restricted() {
        let spec = json!({"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": true}}]});
        let v = evaluate(Level::Restricted, &json!({}), &spec);
        assert_eq!(
            describe(&v),
            "privileged (container \"c\" must not set securityContext.privileged=true), \
             allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(evaluate(Level::Baseline, &json!({}), &spec).len(), 1);
        assert!(evaluate(Level::Privileged, &json!({}), &spec).is_empty());
    }

    #[test]
    fn compliant_restricted_pod() {
        let spec = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "d", "emptyDir": {}}],
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]});
        assert!(evaluate(Level::Restricted, &json!({}), &spec).is_empty());
    }

    #[test]
    fn probe_and_lifecycle_hosts_as_upstream_words_them() {
        let spec = json!({"containers": [
            {"name": "b", "livenessProbe": {"httpGet": {"host": "10.0.0.2", "port": 80}},
                "lifecycle": {"preStop": {"httpGet": {"host": "10.0.0.1", "port": 80}}}},
            {"name": "a", "readinessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 80}}}]});
        // Standards pinned before v1.34 have no such check.
        assert!(evaluate_version(Level::Baseline, "v1.33", &json!({}), &spec).is_empty());
        assert_eq!(
            describe(&evaluate_version(
                Level::Baseline,
                "v1.34",
                &json!({}),
                &spec
            )),
            "probe or lifecycle host (containers \"a\", \"b\" use probe or lifecycle hosts \"10.0.0.1\", \"10.0.0.2\")"
        );
    }

    #[test]
    fn baseline_host_access() {
        let spec = json!({"hostNetwork": true, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}], "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]});
        assert_eq!(
            describe(&evaluate(Level::Baseline, &json!({}), &spec)),
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
             host namespaces (hostNetwork=true), hostPath volumes (volume \"root\"), hostPort (container \"a\" uses hostPort 80)"
        );
        // Restricted reports the hostPath volume as a restricted type instead.
        let r = describe(&evaluate(Level::Restricted, &json!({}), &spec));
        assert!(
            r.contains(
                "restricted volume types (volume \"root\" uses restricted volume type \"hostPath\")"
            ),
            "{r}"
        );
        assert!(!r.contains("hostPath volumes"), "{r}");
    }
}
