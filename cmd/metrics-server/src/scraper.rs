//! Scraping kubelets (upstream `metrics-server/pkg/scraper`): `GET /metrics/resource` on
//! every node's kubelet, at the address its status prefers (`--kubelet-preferred-address-
//! types`), over TLS verified with `--kubelet-certificate-authority` or the cluster's CA
//! (`--kubelet-insecure-tls` skips it), as metrics-server's own identity.

use crate::storage::{Batch, Sample};
use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;
use std::time::Duration;

/// How metrics-server reaches kubelets.
pub struct KubeletClient {
    pub tls: tokio_rustls::TlsConnector,
    pub token: Option<String>,
    pub port: u16,
    pub use_node_status_port: bool,
    pub preferred_address_types: Vec<String>,
    pub timeout: Duration,
}

impl KubeletClient {
    /// Where a node's kubelet listens.
    pub fn address(&self, node: &Node) -> Result<(String, u16), String> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let status = node.status.as_ref();
        let addresses = status.and_then(|s| s.addresses.as_ref());
        let host = self
            .preferred_address_types
            .iter()
            .find_map(|t| {
                addresses?
                    .iter()
                    .find(|a| &a.type_ == t && !a.address.is_empty())
                    .map(|a| a.address.clone())
            })
            .ok_or_else(|| format!("node {name:?} has no address of the preferred types"))?;
        let port = match self.use_node_status_port {
            true => status
                .and_then(|s| s.daemon_endpoints.as_ref())
                .and_then(|d| d.kubelet_endpoint.as_ref())
                .map(|e| e.port as u16)
                .unwrap_or(self.port),
            false => self.port,
        };
        Ok((host, port))
    }

    /// One scrape of a node's kubelet.
    pub async fn scrape(&self, node: &Node) -> Result<Batch, String> {
        let (host, port) = self.address(node)?;
        let target = component_base::proxy::Target {
            https: true,
            host: host.clone(),
            port,
            path_and_query: "/metrics/resource".into(),
            server_name: None,
        };
        let mut headers = vec![("Accept", "text/plain".to_string())];
        if let Some(t) = &self.token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        let url = format!("https://{host}:{port}/metrics/resource");
        let (code, body) =
            component_base::proxy::get(&target, self.tls.clone(), &headers, self.timeout)
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
        if code != 200 {
            return Err(format!("request failed, status: \"{code}\" for {url:?}"));
        }
        Ok(parse(&String::from_utf8_lossy(&body)))
    }
}

/// One sample line of the text exposition format.
struct Line<'a> {
    name: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
    value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    timestamp: Option<i64>,
}

fn sample(line: &str) -> Option<Line<'_>> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => line.split_at(line.find(' ')?),
    };
    let mut labels = BTreeMap::new();
    let rest = match rest.strip_prefix('{') {
        Some(r) => {
            let end = r.find('}')?;
            for kv in r[..end].split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=')?;
                labels.insert(k.trim(), v.trim().trim_matches('"'));
            }
            &r[end + 1..]
        }
        None => rest,
    };
    let mut fields = rest.split_whitespace();
    let value = fields.next()?.parse().ok()?;
    let timestamp = fields.next().and_then(|t| t.parse().ok());
    Some(Line {
        name,
        labels,
        value,
        timestamp,
    })
}

/// The samples of one `/metrics/resource` answer.
pub fn parse(text: &str) -> Batch {
    let now = jiff::Timestamp::now().as_millisecond();
    let mut node_cpu = None;
    let mut node_mem = None;
    let mut cpu: BTreeMap<(String, String, String), (f64, i64)> = BTreeMap::new();
    let mut mem: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some(Line {
            name,
            labels,
            value,
            timestamp,
        }) = sample(line)
        else {
            continue;
        };
        let ts = timestamp.unwrap_or(now);
        let key = || {
            (
                labels.get("namespace").unwrap_or(&"").to_string(),
                labels.get("pod").unwrap_or(&"").to_string(),
                labels.get("container").unwrap_or(&"").to_string(),
            )
        };
        match name {
            "node_cpu_usage_seconds_total" => node_cpu = Some((value, ts)),
            "node_memory_working_set_bytes" => node_mem = Some(value as u64),
            "container_cpu_usage_seconds_total" => {
                cpu.insert(key(), (value, ts));
            }
            "container_memory_working_set_bytes" => {
                mem.insert(key(), value as u64);
            }
            _ => {}
        }
    }
    Batch {
        node: node_cpu.map(|(c, ts)| Sample {
            timestamp_ms: ts,
            cpu_seconds: c,
            memory_bytes: node_mem.unwrap_or(0),
        }),
        containers: cpu
            .into_iter()
            .map(|((ns, pod, c), (v, ts))| {
                let m = mem
                    .get(&(ns.clone(), pod.clone(), c.clone()))
                    .copied()
                    .unwrap_or(0);
                (
                    ns,
                    pod,
                    c,
                    Sample {
                        timestamp_ms: ts,
                        cpu_seconds: v,
                        memory_bytes: m,
                    },
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubelets_resource_metrics() {
        let text = "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time\n\
# TYPE container_cpu_usage_seconds_total counter\n\
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 1.5 1700000000000\n\
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web\"} 4096 1700000000000\n\
node_cpu_usage_seconds_total 100.25 1700000000001\n\
node_memory_working_set_bytes 1048576 1700000000001\n\
resource_scrape_error 0\n";
        let b = parse(text);
        assert_eq!(
            b.node,
            Some(Sample {
                timestamp_ms: 1_700_000_000_001,
                cpu_seconds: 100.25,
                memory_bytes: 1_048_576
            })
        );
        assert_eq!(
            b.containers,
            vec![(
                "default".into(),
                "web".into(),
                "app".into(),
                Sample {
                    timestamp_ms: 1_700_000_000_000,
                    cpu_seconds: 1.5,
                    memory_bytes: 4096
                }
            )]
        );
    }
}
