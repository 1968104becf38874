//! `kubeadm init phase wait-control-plane` (upstream `phases/waitcontrolplane.go` and
//! `util/apiclient/wait.go` `WaitForControlPlaneComponents`): the kubelet's health,
//! then each static Pod component's health endpoint — the API server's `/livez` over
//! TLS verified with the cluster CA, the controller-manager's `/healthz` and the
//! scheduler's `/livez` on localhost (their serving certificates are self-signed, so,
//! as upstream, only the answer is checked there, never a credential sent).

use crate::app::apis::kubeadm::InitConfig;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(240);

struct Component {
    name: &'static str,
    url: String,
    /// The CA to verify the server with; none for localhost self-signed endpoints.
    ca_pem: Option<String>,
}

async fn healthy(c: &Component) -> Result<(), String> {
    let url: http::Uri = c.url.parse().map_err(|e| format!("{}: {e}", c.url))?;
    let base = format!(
        "{}://{}",
        url.scheme_str().unwrap_or("https"),
        url.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    let mut cfg = crate::app::util::apiclient::anonymous_config(&base, c.ca_pem.as_deref())?;
    cfg.read_timeout = Some(Duration::from_secs(5));
    let client = kube::Client::try_from(cfg).map_err(|e| e.to_string())?;
    let req = http::Request::get(url.path())
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let body = client.request_text(req).await.map_err(|e| e.to_string())?;
    if body.trim() == "ok" {
        Ok(())
    } else {
        Err(body)
    }
}

pub async fn wait(cfg: &InitConfig, ca_pem: &str) -> Result<(), String> {
    println!(
        "[control-plane-check] Waiting for healthy control plane components. This can take up to 4m0s"
    );
    let components = vec![
        Component {
            name: "kube-apiserver",
            url: format!("{}/livez", cfg.local_url()),
            ca_pem: Some(ca_pem.to_string()),
        },
        Component {
            name: "kube-controller-manager",
            url: "https://127.0.0.1:10257/healthz".into(),
            ca_pem: None,
        },
        Component {
            name: "kube-scheduler",
            url: "https://127.0.0.1:10259/livez".into(),
            ca_pem: None,
        },
    ];
    for c in &components {
        println!("[control-plane-check] Checking {} at {}", c.name, c.url);
    }
    let start = Instant::now();
    let checks = components.iter().map(|c| async move {
        loop {
            let err = match healthy(c).await {
                Ok(()) => {
                    println!(
                        "[control-plane-check] {} is healthy after {}",
                        c.name,
                        apimachinery::duration::format_go(start.elapsed().as_nanos() as i64)
                    );
                    return Ok(());
                }
                Err(e) => e,
            };
            if start.elapsed() > TIMEOUT {
                return Err(format!("{} check failed at {}: {err}", c.name, c.url));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let results = futures::future::join_all(checks).await;
    let errs: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "[control-plane-check] error: {}\nA control plane component may have crashed or exited when started by the container runtime.\nTo troubleshoot, list all containers using your preferred container runtimes CLI.",
            errs.join("\n")
        ))
    }
}
