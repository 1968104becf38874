//! The `KubeletConfiguration` fields upstream's v1.35 kubelet documents that this kubelet
//! does not implement. A config file may carry them at their zero value or upstream's
//! default (upstream kubeadm writes many of them, mostly as `0s`), which changes
//! nothing; any other value is refused at start by name rather than parsed and dropped.
//! Fields no kubelet knows are warned about and ignored, as upstream's lenient decoding
//! does.

use serde_json::{Value, json};

/// (field path, upstream's default) of every documented field not implemented here.
fn upstream_defaults() -> Vec<(&'static str, Value)> {
    vec![
        (
            "authorization.webhook",
            json!({"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}),
        ),
        ("configMapAndSecretChangeDetectionStrategy", json!("Watch")),
        ("containerLogMaxWorkers", json!(1)),
        ("contentType", json!("application/vnd.kubernetes.protobuf")),
        ("cpuCFSQuota", json!(true)),
        ("cpuCFSQuotaPeriod", json!("100ms")),
        ("cpuManagerPolicy", json!("none")),
        ("cpuManagerPolicyOptions", json!({})),
        ("cpuManagerReconcilePeriod", json!("10s")),
        ("crashLoopBackOff", json!({})),
        ("enableContentionProfiling", json!(false)),
        ("enableControllerAttachDetach", json!(true)),
        ("enableDebugFlagsHandler", json!(true)),
        ("enableDebuggingHandlers", json!(true)),
        ("enableProfilingHandler", json!(true)),
        ("enableSystemLogHandler", json!(true)),
        ("enableSystemLogQuery", json!(false)),
        ("eventBurst", json!(100)),
        ("eventRecordQPS", json!(50)),
        ("evictionMaxPodGracePeriod", json!(0)),
        ("evictionMinimumReclaim", json!({})),
        ("evictionSoft", json!({})),
        ("evictionSoftGracePeriod", json!({})),
        ("featureGates", json!({})),
        ("hairpinMode", json!("promiscuous-bridge")),
        ("httpCheckFrequency", json!("20s")),
        ("imageMaximumGCAge", json!("0s")),
        (
            "imagePullCredentialsVerificationPolicy",
            json!("NeverVerifyPreloadedImages"),
        ),
        ("iptablesDropBit", json!(15)),
        ("iptablesMasqueradeBit", json!(14)),
        ("kernelMemcgNotification", json!(false)),
        ("kubeReservedCgroup", json!("")),
        ("kubeletCgroups", json!("")),
        ("logging", json!({"format": "text"})),
        ("makeIPTablesUtilChains", json!(true)),
        ("maxOpenFiles", json!(1000000)),
        ("memoryManagerPolicy", json!("None")),
        ("memorySwap", json!({})),
        ("memoryThrottlingFactor", json!(0.9)),
        ("mergeDefaultEvictionSettings", json!(false)),
        ("nodeStatusMaxImages", json!(50)),
        ("oomScoreAdj", json!(-999)),
        ("podsPerCore", json!(0)),
        ("preloadedImagesVerificationAllowlist", json!([])),
        ("protectKernelDefaults", json!(false)),
        ("qosReserved", json!({})),
        ("registryBurst", json!(10)),
        ("registryPullQPS", json!(5)),
        ("reservedMemory", json!([])),
        ("reservedSystemCPUs", json!("")),
        ("runOnce", json!(false)),
        ("showHiddenMetricsForVersion", json!("")),
        ("singleProcessOOMKill", json!(false)),
        ("staticPodURL", json!("")),
        ("staticPodURLHeader", json!({})),
        ("streamingConnectionIdleTimeout", json!("4h0m0s")),
        ("systemCgroups", json!("")),
        ("systemReservedCgroup", json!("")),
        ("tlsCipherSuites", json!([])),
        ("tlsMinVersion", json!("")),
        ("topologyManagerPolicy", json!("none")),
        ("topologyManagerPolicyOptions", json!({})),
        ("topologyManagerScope", json!("container")),
        ("tracing", Value::Null),
        ("userNamespaces", Value::Null),
        (
            "volumePluginDir",
            json!("/usr/libexec/kubernetes/kubelet-plugins/volume/exec/"),
        ),
    ]
}

/// Zero in any of its spellings (`0`, `0s`, `""`, `false`, empty, null), or an object
/// whose every value is.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => {
            s.is_empty() || apimachinery::duration::parse(s).is_ok_and(|d| d.is_zero()) || s == "0"
        }
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// Whether `v` says nothing but upstream's default: zero, the default itself, or, for
/// an object, each member zero or its default.
fn is_default(v: &Value, default: &Value) -> bool {
    if is_zero(v) || v == default {
        return true;
    }
    match (v, default) {
        (Value::Object(o), Value::Object(d)) => o
            .iter()
            .all(|(k, v)| d.get(k).is_some_and(|dv| is_default(v, dv)) || is_zero(v)),
        (Value::String(a), Value::String(b)) => {
            // Durations compare by length of time ("5m" is "5m0s").
            matches!((apimachinery::duration::parse(a), apimachinery::duration::parse(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

/// The value at a dotted path of the document.
fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

/// Sorts the fields this kubelet did not decode (`ignored`, dotted paths): the upstream
/// fields set to something this kubelet would not do (refused), and the ones no kubelet
/// knows (warned about).
pub fn check(doc: &Value, ignored: &[String]) -> (Vec<String>, Vec<String>) {
    let table = upstream_defaults();
    let (mut refused, mut unknown) = (Vec::new(), Vec::new());
    for path in ignored {
        let known = table
            .iter()
            .find(|(f, _)| path == f || path.starts_with(&format!("{f}.")));
        match known {
            Some((field, default)) => {
                let value = at(doc, field).cloned().unwrap_or(Value::Null);
                if !is_default(&value, default)
                    && !refused
                        .iter()
                        .any(|r: &String| r.starts_with(&format!("{field} ")))
                {
                    refused.push(format!("{field} ({value})"));
                }
            }
            None => unknown.push(path.clone()),
        }
    }
    (refused, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_settings_are_refused() {
        // What upstream kubeadm writes.
        let doc = json!({"cpuManagerReconcilePeriod": "0s", "logging": {"flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}}, "verbosity": 0}, "memorySwap": {},
            "streamingConnectionIdleTimeout": "0s", "containerLogMaxWorkers": 1,
            "authorization": {"webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "30s"}},
            "cgroupsPerQOSX": true});
        let ignored: Vec<String> = [
            "cpuManagerReconcilePeriod",
            "logging",
            "memorySwap",
            "streamingConnectionIdleTimeout",
            "containerLogMaxWorkers",
            "authorization.webhook",
            "cgroupsPerQOSX",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (refused, unknown) = check(&doc, &ignored);
        assert_eq!(refused, Vec::<String>::new());
        assert_eq!(unknown, ["cgroupsPerQOSX"]);
        let doc = json!({"cpuManagerPolicy": "static", "logging": {"format": "json"},
            "authorization": {"webhook": {"cacheAuthorizedTTL": "1m"}}});
        let ignored: Vec<String> = [
            "cpuManagerPolicy",
            "logging.format",
            "authorization.webhook.cacheAuthorizedTTL",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (refused, _) = check(&doc, &ignored);
        assert_eq!(
            refused,
            [
                "cpuManagerPolicy (\"static\")",
                "logging ({\"format\":\"json\"})",
                "authorization.webhook ({\"cacheAuthorizedTTL\":\"1m\"})"
            ]
        );
    }
}
