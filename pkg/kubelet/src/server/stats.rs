//! Stats (upstream `pkg/kubelet/server/stats`): `/stats/summary` and
//! `/metrics/resource`.

use super::*;

impl Kubelet {
    /// Running containers of every pod with their cgroup usage:
    /// (pod, [(container name, start nanos, usage)], pod usage).
    pub(super) async fn usage(
        &self,
    ) -> Vec<(
        k8s_openapi::api::core::v1::Pod,
        Vec<(String, i64, crate::stats::Usage)>,
        Option<crate::stats::Usage>,
    )> {
        let mut out = Vec::new();
        for uid in self.desired_uids() {
            let Some(p) = self.pod(&uid) else { continue };
            let rt = self.pod_runtime(&uid).await.unwrap_or_default();
            let parent = self.cm.pod_cgroup(&p);
            let containers = rt
                .containers
                .iter()
                .filter(|i| i.running())
                .filter_map(|i| {
                    let u = crate::stats::cgroup_usage(
                        &self.cm.container_cgroup(&parent, &i.status.id),
                    )?;
                    Some((i.name().to_string(), i.status.started_at, u))
                })
                .collect();
            out.push((p, containers, crate::stats::cgroup_usage(&parent)));
        }
        out
    }

    /// The Summary API (`/stats/summary`): node and per-pod/container CPU and memory.
    pub(super) async fn summary(&self) -> Response<Body> {
        let now = jiff::Timestamp::now().to_string();
        let (total, avail) = crate::nodestatus::fs_usage(&self.root);
        let node = crate::stats::node_usage(self.memory_capacity);
        let mem_avail = crate::nodestatus::memory_available();
        let ts = |n: i64| {
            jiff::Timestamp::from_nanosecond(n as i128)
                .unwrap_or_default()
                .to_string()
        };
        let mut pods = Vec::new();
        for (p, containers, pod_usage) in self.usage().await {
            let cs: Vec<_> = containers
                .iter()
                .map(|(name, started, u)| json!({"name": name, "startTime": ts(*started),
                    "cpu": {"time": now, "usageCoreNanoSeconds": u.cpu_ns},
                    "memory": {"time": now, "usageBytes": u.memory_usage, "workingSetBytes": u.working_set}}))
                .collect();
            let mut pod = json!({
                "podRef": {"name": p.metadata.name, "namespace": p.metadata.namespace, "uid": p.metadata.uid},
                "startTime": p.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0.to_string()),
                "containers": cs,
            });
            let volumes: Vec<_> = self
                .volumes
                .stats
                .lock()
                .unwrap()
                .get(p.metadata.uid.as_deref().unwrap_or_default())
                .map(|v| v.iter().map(crate::volume::stats::summary_entry).collect())
                .unwrap_or_default();
            if !volumes.is_empty() {
                pod["volume"] = json!(volumes);
            }
            if let Some(u) = pod_usage {
                pod["cpu"] = json!({"time": now, "usageCoreNanoSeconds": u.cpu_ns});
                pod["memory"] = json!({"time": now, "usageBytes": u.memory_usage, "workingSetBytes": u.working_set});
            }
            pods.push(pod);
        }
        let body = json!({
            "node": {
                "nodeName": self.node_name,
                "startTime": now,
                "cpu": {"time": now, "usageCoreNanoSeconds": node.cpu_ns},
                "memory": {"time": now, "availableBytes": mem_avail, "usageBytes": node.memory_usage, "workingSetBytes": node.working_set},
                "fs": {"time": now, "capacityBytes": total, "availableBytes": avail, "usedBytes": total.saturating_sub(avail)},
            },
            "pods": pods,
        });
        text(200, body.to_string(), "application/json")
    }

    /// `/metrics/resource` (what metrics-server scrapes): upstream's stable resource
    /// metrics with sample timestamps.
    pub(super) async fn resource_metrics(&self) -> Response<Body> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let node = crate::stats::node_usage(self.memory_capacity);
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, String)>| {
            out.push_str(&format!(
                "# HELP {name} [STABLE] {help}\n# TYPE {name} {kind}\n"
            ));
            for (labels, v) in samples {
                out.push_str(&format!("{name}{labels} {v} {now_ms}\n"));
            }
        };
        let usage = self.usage().await;
        let lbl = |p: &k8s_openapi::api::core::v1::Pod, c: Option<&str>| {
            let (ns, name) = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            match c {
                Some(c) => format!("{{container=\"{c}\",namespace=\"{ns}\",pod=\"{name}\"}}"),
                None => format!("{{namespace=\"{ns}\",pod=\"{name}\"}}"),
            }
        };
        let secs = |ns: u64| format!("{:.9}", ns as f64 / 1e9);
        family(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the container in core-seconds",
            "counter",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, _, u)| (lbl(p, Some(c)), secs(u.cpu_ns)))
                })
                .collect(),
        );
        family(
            "container_memory_working_set_bytes",
            "Current working set of the container in bytes",
            "gauge",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, _, u)| (lbl(p, Some(c)), u.working_set.to_string()))
                })
                .collect(),
        );
        family(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds",
            "gauge",
            usage
                .iter()
                .flat_map(|(p, cs, _)| {
                    cs.iter()
                        .map(move |(c, s, _)| (lbl(p, Some(c)), format!("{:.9}", *s as f64 / 1e9)))
                })
                .collect(),
        );
        family(
            "node_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the node in core-seconds",
            "counter",
            vec![(String::new(), secs(node.cpu_ns))],
        );
        family(
            "node_memory_working_set_bytes",
            "Current working set of the node in bytes",
            "gauge",
            vec![(String::new(), node.working_set.to_string())],
        );
        family(
            "pod_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
            usage
                .iter()
                .filter_map(|(p, _, u)| u.map(|u| (lbl(p, None), secs(u.cpu_ns))))
                .collect(),
        );
        family(
            "pod_memory_working_set_bytes",
            "Current working set of the pod in bytes",
            "gauge",
            usage
                .iter()
                .filter_map(|(p, _, u)| u.map(|u| (lbl(p, None), u.working_set.to_string())))
                .collect(),
        );
        out.push_str("# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n");
        text(200, out, "text/plain; version=0.0.4; charset=utf-8")
    }
}
