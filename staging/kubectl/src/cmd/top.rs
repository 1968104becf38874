//! `kubectl top node|pod`: usage from the Metrics API (`metrics.k8s.io`), nodes as a
//! share of their allocatable. Upstream twins: `kubectl/pkg/cmd/top`,
//! `kubectl/pkg/metricsutil/metrics_printer.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use apimachinery::resource::Quantity;
use cli_runtime::client;
use cli_runtime::discovery::{percent_encode, query_escape};
use cli_runtime::printers::tabwriter::TabWriter;
use serde_json::Value;

#[derive(clap::Subcommand, Debug)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of nodes
    #[command(alias = "nodes", alias = "no")]
    Node(TopNodeArgs),
    /// Display resource (CPU/memory) usage of pods
    #[command(alias = "pods", alias = "po")]
    Pod(TopArgs),
}

/// `top node`'s flags: no `--containers` or `-A`, which only `top pod` has.
#[derive(clap::Args, Debug)]
pub struct TopNodeArgs {
    pub name: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If non-empty, sort nodes list using specified field. The field can be either 'cpu' or 'memory'.
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
    /// If present, print output without headers
    #[arg(long = "no-headers")]
    pub no_headers: bool,
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

fn quantity(v: &Value) -> Quantity {
    v.as_str().and_then(Quantity::parse).unwrap_or_default()
}

fn usage_cells(usage: &Value, available: Option<&Value>) -> String {
    let mut s = String::new();
    for res in ["cpu", "memory"] {
        let used = quantity(&usage[res]);
        if res == "cpu" {
            s.push_str(&format!("{}m\t", used.milli_value()));
        } else {
            s.push_str(&format!("{}Mi\t", used.value() / (1024 * 1024)));
        }
        if let Some(avail) = available {
            let a = quantity(&avail[res]);
            let fraction = if a.is_zero() {
                0.0
            } else {
                used.milli_value() as f64 / a.milli_value() as f64 * 100.0
            };
            s.push_str(&format!("{}%\t", fraction as i64));
        }
    }
    s
}

fn sort_key(usage: &Value, by: Option<&str>) -> Quantity {
    match by {
        Some(res @ ("cpu" | "memory")) => quantity(&usage[res]),
        _ => Quantity::default(),
    }
}

pub async fn run(f: &mut Factory, c: TopCommand) -> CmdResult {
    let (a, nodes) = match c {
        TopCommand::Node(a) => (
            TopArgs {
                name: a.name,
                selector: a.selector,
                sort_by: a.sort_by,
                containers: false,
                all_namespaces: false,
                no_headers: a.no_headers,
            },
            true,
        ),
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
    // The cached discovery first; a miss re-reads it (metrics-server may be new).
    let metrics_version = |d: &cli_runtime::discovery::Discovery| {
        d.groups
            .iter()
            .find(|g| g.name == "metrics.k8s.io")
            .and_then(|g| {
                g.versions
                    .iter()
                    .find(|v| *v == "v1" || *v == "v1beta1")
                    .cloned()
            })
    };
    let mut version = metrics_version(f.discovery().await?);
    if version.is_none() && !f.discovery().await?.fresh {
        version = metrics_version(f.fresh_discovery().await?);
    }
    let Some(version) = version else {
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
        let total = |m: &Value, res: &str| -> Quantity {
            m["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .fold(Quantity::default(), |sum, c| {
                    sum.add(&quantity(&c["usage"][res]))
                })
        };
        metrics.sort_by(|x, y| {
            let key = |m: &Value| match a.sort_by.as_deref() {
                Some(r) => total(m, r),
                None => Quantity::default(),
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
                    "cpu": total(m, "cpu").to_string(),
                    "memory": total(m, "memory").to_string(),
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
    fn node_cells_show_share_of_allocatable() {
        let usage = serde_json::json!({"cpu": "500m", "memory": "1Gi"});
        let alloc = serde_json::json!({"cpu": "2", "memory": "4Gi"});
        assert_eq!(
            usage_cells(&usage, Some(&alloc)),
            "500m\t25%\t1024Mi\t25%\t"
        );
    }
}
