//! `kubectl logs`: one container's log, every container's (`--all-containers`), or
//! those of the pods a selector or a workload names; `-f` streams. Upstream twin:
//! `kubectl/pkg/cmd/logs/logs.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::{percent_encode, query_escape};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// POD | TYPE/NAME [CONTAINER]
    pub args: Vec<String>,
    /// Print the logs of this container
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// If true, print the logs for the previous instance of the container in a pod if it exists.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only return logs after a specific date (RFC3339).
    #[arg(long = "since-time")]
    pub since_time: Option<String>,
    /// Lines of recent log file to display. Defaults to -1 with no selector, showing all log lines otherwise 10, if a selector is provided.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Include timestamps on each line in the log output
    #[arg(long)]
    pub timestamps: bool,
    /// Get all containers' logs in the pod(s).
    #[arg(long = "all-containers")]
    pub all_containers: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Prefix each log line with the log source (pod name and container name)
    #[arg(long)]
    pub prefix: bool,
    /// Maximum bytes of logs to return. Defaults to no limit.
    #[arg(long = "limit-bytes", default_value_t = 0)]
    pub limit_bytes: i64,
}

/// Upstream's default `--pod-running-timeout` for logs (the flag is not offered here yet).
const LOGS_POD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn run(f: &mut Factory, a: LogsArgs) -> CmdResult {
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    if a.since.is_some() && a.since_time.is_some() {
        return Err(CmdError::msg(
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    let mut container = a.container.clone();
    let pods: Vec<Value> = if let Some(sel) = &a.selector {
        if !a.args.is_empty() {
            return Err(CmdError::msg("only one of -l or POD may be specified"));
        }
        let list = client
            .get_json(
                &format!(
                    "/api/v1/namespaces/{namespace}/pods?labelSelector={}",
                    query_escape(sel)
                ),
                client::JSON,
            )
            .await?;
        list["items"].as_array().cloned().unwrap_or_default()
    } else {
        let Some(target) = a.args.first() else {
            return Err(CmdError::msg(
                "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl logs -h' for help and examples",
            ));
        };
        if let Some(c) = a.args.get(1) {
            container = Some(c.clone());
        }
        vec![
            crate::polymorphic::attachable_pod(f, &client, &namespace, target, LOGS_POD_TIMEOUT)
                .await?,
        ]
    };
    if pods.is_empty() {
        output::eprint_line("No resources found in namespace.");
        return Ok(());
    }
    let tail = if a.selector.is_some() && a.tail == -1 {
        10
    } else {
        a.tail
    };
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let containers: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        let chosen: Vec<String> = if a.all_containers {
            let mut all: Vec<String> = pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect();
            all.extend(containers.clone());
            all
        } else if let Some(c) = &container {
            vec![c.clone()]
        } else {
            let default = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
                .as_str()
                .map(str::to_string)
                .filter(|d| containers.contains(d))
                .or_else(|| containers.first().cloned())
                .unwrap_or_default();
            if containers.len() > 1 && pods.len() == 1 {
                output::eprint_line(&format!(
                    "Defaulted container \"{default}\" out of: {}",
                    containers.join(", ")
                ));
            }
            vec![default]
        };
        for c in chosen {
            let mut q = vec![format!("container={}", query_escape(&c))];
            if a.follow {
                q.push("follow=true".into());
            }
            if a.previous {
                q.push("previous=true".into());
            }
            if let Some(s) = &a.since {
                let d = cli_runtime::config_flags::parse_duration(s).map_err(CmdError::msg)?;
                q.push(format!("sinceSeconds={}", d.as_secs().max(1)));
            }
            if let Some(t) = &a.since_time {
                q.push(format!("sinceTime={}", query_escape(t)));
            }
            if tail >= 0 {
                q.push(format!("tailLines={tail}"));
            }
            if a.timestamps {
                q.push("timestamps=true".into());
            }
            if a.limit_bytes > 0 {
                q.push(format!("limitBytes={}", a.limit_bytes));
            }
            let path = format!(
                "/api/v1/namespaces/{namespace}/pods/{}/log?{}",
                percent_encode(name),
                q.join("&")
            );
            let prefix = a.prefix.then(|| format!("[pod/{name}/{c}] "));
            stream(&client, &path, prefix.as_deref()).await?;
        }
    }
    Ok(())
}

async fn stream(client: &RestClient, path: &str, prefix: Option<&str>) -> CmdResult {
    let resp = client.stream(path, "*/*").await?;
    let mut body = resp.into_body().into_data_stream();
    let mut pending = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CmdError::msg(format!("reading the log stream: {e}")))?;
        match prefix {
            None => {
                output::print(&String::from_utf8_lossy(&chunk));
                output::flush();
            }
            Some(p) => {
                pending.extend_from_slice(&chunk);
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    output::print(p);
                    output::print(&String::from_utf8_lossy(&line));
                }
                output::flush();
            }
        }
    }
    if !pending.is_empty()
        && let Some(p) = prefix
    {
        output::print(p);
        output::print(&String::from_utf8_lossy(&pending));
    }
    Ok(())
}
