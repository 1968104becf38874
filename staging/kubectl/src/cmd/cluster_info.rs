//! `kubectl cluster-info`. Upstream twin: `kubectl/pkg/cmd/clusterinfo/clusterinfo.go`.

use crate::error::CmdResult;
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;

pub async fn run(f: &mut Factory) -> CmdResult {
    let client = f.client().await?;
    let server = client.server.as_str();
    // Make sure the server answers, as upstream's does by listing services.
    let services = client
        .get_json("/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue", client::JSON)
        .await?;
    // Colours only on a terminal, as go-colortext does.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (green, yellow, reset) = if tty {
        ("\x1b[0;32m", "\x1b[0;33m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    output::print(&format!(
        "{green}Kubernetes control plane{reset} is running at {yellow}{server}{reset}\n"
    ));
    for svc in services["items"].as_array().into_iter().flatten() {
        let name = svc["metadata"]["labels"]["kubernetes.io/name"]
            .as_str()
            .or(svc["metadata"]["name"].as_str())
            .unwrap_or_default();
        let svc_name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let port = svc["spec"]["ports"][0]["name"]
            .as_str()
            .map(|n| format!(":{n}"))
            .unwrap_or_default();
        let scheme = if svc["spec"]["ports"][0]["name"]
            .as_str()
            .is_some_and(|n| n.contains("https"))
        {
            "https:"
        } else {
            ""
        };
        output::print(&format!(
            "{green}{name}{reset} is running at {yellow}{server}/api/v1/namespaces/kube-system/services/{scheme}{svc_name}{port}/proxy{reset}\n"
        ));
    }
    output::print(
        "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
    );
    Ok(())
}
