//! Container environment (upstream `kubelet_pods.go` `makeEnvironmentVariables`): service
//! links, `envFrom`, `env` with `valueFrom` (fieldRef, resourceFieldRef, configMapKeyRef,
//! secretKeyRef), and `$(VAR)` expansion against what is defined before.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::Api;
use std::collections::BTreeMap;

/// Errors surface as `CreateContainerConfigError` with this message.
pub type EnvResult<T> = Result<T, String>;

/// Expands `$(VAR)` from `env`; `$$` escapes; unknown references stay as written.
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
            {
                let name = &s[i + 2..i + 2 + end];
                match env.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&s[i..i + 3 + end]),
                }
                i += 3 + end;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Docker-link style variables of the namespace's services (upstream `getServiceEnvVarMap`).
pub fn service_env(services: &[std::sync::Arc<Service>], ns: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for s in services {
        let sns = s.metadata.namespace.as_deref().unwrap_or_default();
        let name = s.metadata.name.as_deref().unwrap_or_default();
        // The master service is visible from every namespace.
        if sns != ns && !(sns == "default" && name == "kubernetes") {
            continue;
        }
        let Some(spec) = &s.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let prefix = name.to_uppercase().replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        env.insert(format!("{prefix}_SERVICE_HOST"), ip.to_string());
        env.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
        for p in &ports {
            if let Some(pn) = &p.name {
                env.insert(
                    format!(
                        "{prefix}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                );
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.clone().unwrap_or_else(|| "TCP".into())
        };
        env.insert(
            format!("{prefix}_PORT"),
            format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port),
        );
        for p in &ports {
            let pr = proto(p);
            let base = format!("{prefix}_PORT_{}_{}", p.port, pr);
            env.insert(
                base.clone(),
                format!("{}://{ip}:{}", pr.to_lowercase(), p.port),
            );
            env.insert(format!("{base}_PROTO"), pr.to_lowercase());
            env.insert(format!("{base}_PORT"), p.port.to_string());
            env.insert(format!("{base}_ADDR"), ip.to_string());
        }
    }
    env
}

/// A `fieldRef` path's value (upstream `podFieldSelectorRuntimeValue`).
pub fn field_value(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> EnvResult<String> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let sub = |p: &str, prefix: &str, map: &Option<BTreeMap<String, String>>| {
        p.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| {
                map.as_ref()
                    .and_then(|m| m.get(k))
                    .cloned()
                    .unwrap_or_default()
            })
    };
    if let Some(v) = sub(path, "metadata.labels['", &m.labels) {
        return Ok(v);
    }
    if let Some(v) = sub(path, "metadata.annotations['", &m.annotations) {
        return Ok(v);
    }
    let labels_text = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| {
                format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => labels_text(&m.labels),
        "metadata.annotations" => labels_text(&m.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        other => return Err(format!("unsupported fieldRef path {other:?}")),
    })
}

/// A `resourceFieldRef`'s value: the container's request or limit (limits default to the
/// node's allocatable) divided by the divisor, rounded up.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    allocatable: &BTreeMap<String, String>,
) -> EnvResult<String> {
    let r = c.resources.clone().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource {resource:?}"))?;
    let map = if kind == "requests" {
        r.requests
    } else {
        r.limits
    };
    let q = map
        .and_then(|m| m.get(name).map(|q| q.0.clone()))
        .or_else(|| {
            (kind == "limits")
                .then(|| allocatable.get(name).cloned())
                .flatten()
        })
        .unwrap_or_else(|| "0".into());
    let milli = super::sandbox::quantity_milli(&q) as i128;
    let d = divisor.map_or(1000, |d| super::sandbox::quantity_milli(d).max(1)) as i128;
    Ok(((milli + d - 1) / d).to_string())
}

/// A `resourceFieldRef` of an env var (`default`: the container itself when the
/// selector names none) or of a downwardAPI volume file (which must name one).
pub fn resource_field_value(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    default: Option<&Container>,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
    allocatable: &BTreeMap<String, String>,
) -> EnvResult<String> {
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|x| x.name == n)
            .ok_or_else(|| format!("container {n:?} not found"))?,
        None => default
            .ok_or_else(|| format!("resourceFieldRef {:?} names no container", r.resource))?,
    };
    resource_value(
        target,
        &r.resource,
        r.divisor.as_ref().map(|d| d.0.as_str()),
        allocatable,
    )
}

/// The container's environment, in order, with `$(VAR)` expanded.
#[allow(clippy::too_many_arguments)]
pub async fn make_environment(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    services: &[std::sync::Arc<Service>],
    pod_ip: &str,
    host_ip: &str,
    allocatable: &BTreeMap<String, String>,
) -> EnvResult<Vec<(String, String)>> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let set =
        |env: &mut BTreeMap<String, String>, order: &mut Vec<String>, k: String, v: String| {
            if !env.contains_key(&k) {
                order.push(k.clone());
            }
            env.insert(k, v);
        };
    if spec.enable_service_links.unwrap_or(true) {
        for (k, v) in service_env(services, &ns) {
            set(&mut env, &mut order, k, v);
        }
    } else {
        for (k, v) in service_env(services, "\0") {
            set(&mut env, &mut order, k, v);
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match cms.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut env, &mut order, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            match secrets.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            &mut env,
                            &mut order,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => expand(e.value.as_deref().unwrap_or_default(), &env),
            Some(src) => {
                if let Some(f) = &src.field_ref {
                    field_value(pod, &f.field_path, pod_ip, host_ip)?
                } else if let Some(r) = &src.resource_field_ref {
                    resource_field_value(&spec, Some(c), r, allocatable)?
                } else if let Some(r) = &src.config_map_key_ref {
                    match cms.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                        Some(cm) => match cm.data.and_then(|d| d.get(&r.key).cloned()) {
                            Some(v) => v,
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("configmap \"{}\" not found", r.name)),
                    }
                } else if let Some(r) = &src.secret_key_ref {
                    match secrets.get_opt(&r.name).await.map_err(|e| e.to_string())? {
                        Some(s) => match s.data.and_then(|d| d.get(&r.key).cloned()) {
                            Some(v) => String::from_utf8_lossy(&v.0).into(),
                            None if r.optional == Some(true) => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                        None if r.optional == Some(true) => continue,
                        None => return Err(format!("secret \"{}\" not found", r.name)),
                    }
                } else {
                    String::new()
                }
            }
        };
        set(&mut env, &mut order, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = env[&k].clone();
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let env = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)", &env), "x-$(B)-$(A)");
    }
}
