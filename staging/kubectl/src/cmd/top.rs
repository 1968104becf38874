//! `kubectl top node|pod`: usage from the Metrics API (`metrics.k8s.io`), nodes as a
//! share of their allocatable. Upstream twins: `kubectl/pkg/cmd/top`,
//! `kubectl/pkg/metricsutil/metrics_printer.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use cli_runtime::discovery::{percent_encode, query_escape};
use cli_runtime::printers::tabwriter::TabWriter;
use serde_json::Value;

#[derive(clap::Subcommand, Debug)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of nodes
    #[command(alias = "nodes", alias = "no")]
    Node(TopArgs),
    /// Display resource (CPU/memory) usage of pods
    #[command(alias = "pods", alias = "po")]
    Pod(TopArgs),
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    pub name: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If non-empty, sort the list using specified field. The field can be either 'cpu' or 'memory'.
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
    /// If present, print usage of containers within a pod.
    #[arg(long)]
    pub containers: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If present, print output without headers
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

/// A quantity's value in units of 10^-9 (nano), from its Kubernetes text form.
pub fn parse_quantity_nanos(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let num: f64 = num.parse().ok()?;
    let (mantissa_scale, exp10): (f64, i32) = match suffix {
        "" => (1.0, 0),
        "n" => (1.0, -9),
        "u" => (1.0, -6),
        "m" => (1.0, -3),
        "k" => (1.0, 3),
        "M" => (1.0, 6),
        "G" => (1.0, 9),
        "T" => (1.0, 12),
        "P" => (1.0, 15),
        "E" => (1.0, 18),
        "Ki" => (1024.0, 0),
        "Mi" => (1024f64.powi(2), 0),
        "Gi" => (1024f64.powi(3), 0),
        "Ti" => (1024f64.powi(4), 0),
        "Pi" => (1024f64.powi(5), 0),
        "Ei" => (1024f64.powi(6), 0),
        s if s.starts_with(['e', 'E']) => (1.0, s[1..].parse().ok()?),
        _ => return None,
    };
    Some((num * mantissa_scale * 10f64.powi(exp10 + 9)).round() as i128)
}

// Quantity.MilliValue / Value round up.
fn milli(nanos: i128) -> i128 {
    (nanos + 999_999).div_euclid(1_000_000)
}

fn whole(nanos: i128) -> i128 {
    (nanos + 999_999_999).div_euclid(1_000_000_000)
}

fn usage_cells(usage: &Value, available: Option<&Value>) -> String {
    let mut s = String::new();
    for res in ["cpu", "memory"] {
        let nanos = usage[res]
            .as_str()
            .and_then(parse_quantity_nanos)
            .unwrap_or(0);
        if res == "cpu" {
            s.push_str(&format!("{}m\t", milli(nanos)));
        } else {
            s.push_str(&format!("{}Mi\t", whole(nanos) / (1024 * 1024)));
        }
        if let Some(avail) = available {
            let a = avail[res]
                .as_str()
                .and_then(parse_quantity_nanos)
                .unwrap_or(0);
            let fraction = if a == 0 {
                0.0
            } else {
                milli(nanos) as f64 / milli(a) as f64 * 100.0
            };
            s.push_str(&format!("{}%\t", fraction as i64));
        }
    }
    s
}

fn sort_key(usage: &Value, by: Option<&str>) -> i128 {
    match by {
        Some("cpu") => usage["cpu"]
            .as_str()
            .and_then(parse_quantity_nanos)
            .unwrap_or(0),
        Some("memory") => usage["memory"]
            .as_str()
            .and_then(parse_quantity_nanos)
            .unwrap_or(0),
        _ => 0,
    }
}

pub async fn run(f: &mut Factory, c: TopCommand) -> CmdResult {
    let (a, nodes) = match c {
        TopCommand::Node(a) => (a, true),
        TopCommand::Pod(a) => (a, false),
    };
    if let Some(s) = &a.sort_by
        && s != "cpu"
        && s != "memory"
    {
        return Err(CmdError::msg("--sort-by accepts only cpu or memory"));
    }
    if a.name.is_some() && a.selector.is_some() {
        return Err(CmdError::msg(if nodes {
            "only one of NAME or --selector can be provided"
        } else {
            "only one of NAME or selector can be provided"
        }));
    }
    let d = f.fresh_discovery().await?;
    let Some(version) = d
        .groups
        .iter()
        .find(|g| g.name == "metrics.k8s.io")
        .and_then(|g| {
            g.versions
                .iter()
                .find(|v| *v == "v1" || *v == "v1beta1")
                .cloned()
        })
    else {
        return Err(CmdError::msg("Metrics API not available"));
    };
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let sel = a
        .selector
        .as_ref()
        .map(|l| format!("?labelSelector={}", query_escape(l)))
        .unwrap_or_default();
    let base = format!("/apis/metrics.k8s.io/{version}");
    let mut tw = TabWriter::new();
    let mut text = String::new();
    if nodes {
        let metrics: Vec<Value> = match &a.name {
            Some(n) => vec![
                client
                    .get_json(&format!("{base}/nodes/{}", percent_encode(n)), client::JSON)
                    .await?,
            ],
            None => client
                .get_json(&format!("{base}/nodes{sel}"), client::JSON)
                .await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        };
        let node_list: Vec<Value> = match &a.name {
            Some(n) => vec![
                client
                    .get_json(
                        &format!("/api/v1/nodes/{}", percent_encode(n)),
                        client::JSON,
                    )
                    .await?,
            ],
            None => client
                .get_json(&format!("/api/v1/nodes{sel}"), client::JSON)
                .await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        };
        if metrics.is_empty() {
            return Err(CmdError::msg("metrics not available yet"));
        }
        let mut metrics = metrics;
        metrics.sort_by(|x, y| {
            sort_key(&y["usage"], a.sort_by.as_deref())
                .cmp(&sort_key(&x["usage"], a.sort_by.as_deref()))
                .then_with(|| {
                    x["metadata"]["name"]
                        .as_str()
                        .cmp(&y["metadata"]["name"].as_str())
                })
        });
        if !a.no_headers {
            text.push_str("NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)\t\n");
        }
        let mut seen = Vec::new();
        for m in &metrics {
            let name = m["metadata"]["name"].as_str().unwrap_or_default();
            let alloc = node_list
                .iter()
                .find(|n| n["metadata"]["name"] == name)
                .map(|n| &n["status"]["allocatable"]);
            text.push_str(&format!(
                "{name}\t{}\n",
                usage_cells(&m["usage"], alloc.or(Some(&Value::Null)))
            ));
            seen.push(name.to_string());
        }
        for n in &node_list {
            let name = n["metadata"]["name"].as_str().unwrap_or_default();
            if !seen.iter().any(|s| s == name) {
                text.push_str(&format!(
                    "{name}\t<unknown>\t<unknown>\t<unknown>\t<unknown>\t\n"
                ));
            }
        }
    } else {
        let ns_path = if a.all_namespaces {
            String::new()
        } else {
            format!("/namespaces/{namespace}")
        };
        let mut metrics: Vec<Value> = match &a.name {
            Some(n) => vec![
                client
                    .get_json(
                        &format!("{base}{ns_path}/pods/{}", percent_encode(n)),
                        client::JSON,
                    )
                    .await?,
            ],
            None => client
                .get_json(&format!("{base}{ns_path}/pods{sel}"), client::JSON)
                .await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        };
        if metrics.is_empty() {
            let pods = client
                .get_json(&format!("/api/v1{ns_path}/pods{sel}"), client::JSON)
                .await?;
            if pods["items"].as_array().is_some_and(|p| !p.is_empty()) {
                return Err(CmdError::msg("metrics not available yet"));
            }
            if a.all_namespaces {
                output::eprint_line("No resources found");
            } else {
                output::eprint_line(&format!("No resources found in {namespace} namespace."));
            }
            return Ok(());
        }
        let total = |m: &Value, res: &str| -> i128 {
            m["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["usage"][res].as_str().and_then(parse_quantity_nanos))
                .sum()
        };
        metrics.sort_by(|x, y| {
            let key = |m: &Value| match a.sort_by.as_deref() {
                Some(r) => total(m, r),
                None => 0,
            };
            key(y).cmp(&key(x)).then_with(|| {
                (
                    x["metadata"]["namespace"].as_str(),
                    x["metadata"]["name"].as_str(),
                )
                    .cmp(&(
                        y["metadata"]["namespace"].as_str(),
                        y["metadata"]["name"].as_str(),
                    ))
            })
        });
        if !a.no_headers {
            if a.all_namespaces {
                text.push_str("NAMESPACE\t");
            }
            if a.containers {
                text.push_str("POD\t");
            }
            text.push_str("NAME\tCPU(cores)\tMEMORY(bytes)\t\n");
        }
        for m in &metrics {
            let ns = m["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = m["metadata"]["name"].as_str().unwrap_or_default();
            let prefix = if a.all_namespaces {
                format!("{ns}\t")
            } else {
                String::new()
            };
            if a.containers {
                for c in m["containers"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "{prefix}{name}\t{}\t{}\n",
                        c["name"].as_str().unwrap_or_default(),
                        usage_cells(&c["usage"], None)
                    ));
                }
            } else {
                let sum = serde_json::json!({
                    "cpu": format!("{}n", total(m, "cpu")),
                    "memory": format!("{}n", total(m, "memory")),
                });
                text.push_str(&format!("{prefix}{name}\t{}\n", usage_cells(&sum, None)));
            }
        }
    }
    output::print(&tw.write(&text));
    output::print(&tw.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(milli(parse_quantity_nanos("250m").unwrap()), 250);
        assert_eq!(milli(parse_quantity_nanos("12345678n").unwrap()), 13);
        assert_eq!(
            whole(parse_quantity_nanos("1Gi").unwrap()) / (1024 * 1024),
            1024
        );
        assert_eq!(whole(parse_quantity_nanos("2").unwrap()), 2);
        assert_eq!(parse_quantity_nanos("1x"), None);
    }

    #[test]
    fn node_cells_show_share_of_allocatable() {
        let usage = serde_json::json!({"cpu": "500m", "memory": "1Gi"});
        let alloc = serde_json::json!({"cpu": "2", "memory": "4Gi"});
        assert_eq!(
            usage_cells(&usage, Some(&alloc)),
            "500m\t25%\t1024Mi\t25%\t"
        );
    }
}
