//! Which pod and container a command acts on (upstream
//! `kubectl/pkg/polymorphichelpers/attachablepodforobject.go` and
//! `kubectl/pkg/cmd/util/podcmd`): a pod by name, or the first pod of a workload; the
//! named container, else the annotated default, else the first one.

use crate::error::CmdError;
use crate::factory::Factory;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::query_escape;
use serde_json::Value;

/// `POD` or `TYPE/NAME`: the pod itself, or the oldest pod a workload selects.
pub async fn attachable_pod(
    f: &mut Factory,
    client: &RestClient,
    namespace: &str,
    target: &str,
    timeout: std::time::Duration,
) -> Result<Value, CmdError> {
    let (ty, name) = match target.split_once('/') {
        Some((t, n)) => (t.to_string(), n.to_string()),
        None => ("pods".to_string(), target.to_string()),
    };
    let r = cli_runtime::resource::mapping(f.discovery().await?, &ty).map_err(CmdError::msg)?;
    let obj = client
        .get_json(&r.object_path(Some(namespace), &name), client::JSON)
        .await?;
    if r.kind == "Pod" {
        return Ok(obj);
    }
    // A workload: its first pod by its selector.
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .or_else(|| {
            obj["spec"]["selector"].as_object().map(|m| {
                m.iter()
                    .filter(|(_, v)| v.is_string())
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
        })
        .ok_or_else(|| CmdError::msg(format!("cannot get the logs from {}", r.kind_group())))?;
    // As upstream's GetFirstPod: wait up to `--pod-running-timeout` for a first pod.
    let deadline = std::time::Instant::now() + timeout;
    let pods = loop {
        let pods = client
            .get_json(
                &format!(
                    "/api/v1/namespaces/{namespace}/pods?labelSelector={}",
                    query_escape(&selector)
                ),
                client::JSON,
            )
            .await?;
        let found = pods["items"].as_array().is_some_and(|i| !i.is_empty());
        if found || std::time::Instant::now() >= deadline {
            break pods;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let mut items = pods["items"].as_array().cloned().unwrap_or_default();
    items.sort_by(|x, y| {
        x["metadata"]["creationTimestamp"]
            .as_str()
            .cmp(&y["metadata"]["creationTimestamp"].as_str())
    });
    items
        .into_iter()
        .next()
        .ok_or_else(|| CmdError::msg("timed out waiting for the condition"))
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Every container's name as upstream lists them: `a, b, dbg (ephem), setup (init)`.
pub fn all_container_names(pod: &Value) -> String {
    let mut all = names(pod, "containers");
    all.extend(
        names(pod, "ephemeralContainers")
            .into_iter()
            .map(|n| format!("{n} (ephem)")),
    );
    all.extend(
        names(pod, "initContainers")
            .into_iter()
            .map(|n| format!("{n} (init)")),
    );
    all.join(", ")
}

/// The container spec called `name` among all of the pod's containers.
pub fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
}

/// upstream `FindOrDefaultContainerByName`: the named container, else the default one
/// (telling which, unless quiet, when there was a choice).
pub fn find_or_default_container(
    pod: &Value,
    name: Option<&str>,
    quiet: bool,
) -> Result<Value, CmdError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        return find_container(pod, name)
            .cloned()
            .ok_or_else(|| CmdError::msg(format!("container {name} not found in pod {pod_name}")));
    }
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(first) = containers.first() else {
        return Err(CmdError::msg(format!(
            "pod {}/{pod_name} does not have any containers",
            pod["metadata"]["namespace"].as_str().unwrap_or_default()
        )));
    };
    if let Some(annotated) =
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
            .as_str()
            .and_then(|d| find_container(pod, d))
    {
        return Ok(annotated.clone());
    }
    let others = containers.len() > 1
        || !names(pod, "initContainers").is_empty()
        || !names(pod, "ephemeralContainers").is_empty();
    if !quiet && others {
        crate::output::eprint_line(&format!(
            "Defaulted container {:?} out of: {}",
            first["name"].as_str().unwrap_or_default(),
            all_container_names(pod)
        ));
    }
    Ok(first.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_default_as_upstream() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "annotations": {"kubectl.kubernetes.io/default-container": "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}], "ephemeralContainers": [{"name": "d"}]}});
        assert_eq!(all_container_names(&pod), "a, b, d (ephem), i (init)");
        assert_eq!(
            find_or_default_container(&pod, None, true).unwrap()["name"],
            "b"
        );
        assert_eq!(
            find_or_default_container(&pod, Some("i"), true).unwrap()["name"],
            "i"
        );
        assert_eq!(
            find_or_default_container(&pod, Some("x"), true)
                .unwrap_err()
                .text,
            "error: container x not found in pod p"
        );
        let plain = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            find_or_default_container(&plain, None, true).unwrap()["name"],
            "a"
        );
    }
}
