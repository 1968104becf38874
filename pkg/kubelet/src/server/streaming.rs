//! exec, attach and port-forward (upstream `pkg/kubelet/server/streaming` and
//! `cri/streaming`): the runtime's streaming URL, proxied with the protocol upgrade.

use super::*;

impl Kubelet {
    /// Exec, attach and port-forward: the runtime hands out a streaming URL, which the
    /// kubelet proxies (upstream no longer redirects clients to it).
    pub(super) async fn stream(
        &self,
        req: Request<hyper::body::Incoming>,
        kind: &str,
        ns: &str,
        name: &str,
        c: &str,
    ) -> Response<Body> {
        let Some(pod) = self.find_pod(ns, name) else {
            return status(404, "NotFound", &format!("pod \"{name}\" not found"));
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rt = match self.pod_runtime(&uid).await {
            Ok(r) => r,
            Err(e) => return status(500, "InternalError", &e),
        };
        let pairs = url_pairs(req.uri().query());
        let on = |a: &str, b: &str| {
            pairs
                .iter()
                .any(|(k, v)| (k == a || k == b) && (v == "1" || v == "true"))
        };
        let url = match kind {
            "portForward" => {
                let Some(sb) = rt.sandbox().filter(|_| rt.sandbox_ready()) else {
                    return status(400, "BadRequest", &format!("pod {name} is not running"));
                };
                let ports: Vec<i32> = pairs
                    .iter()
                    .filter(|(k, _)| k == "port")
                    .filter_map(|(_, v)| v.parse().ok())
                    .collect();
                self.runtime.port_forward(&sb.id, ports).await
            }
            _ => {
                let Some(i) = rt.current(c).filter(|i| i.running()) else {
                    return status(
                        400,
                        "BadRequest",
                        &format!("container {c} is not valid for pod {name}"),
                    );
                };
                let (stdin, stdout, stderr, tty) = (
                    on("input", "stdin"),
                    on("output", "stdout"),
                    on("error", "stderr"),
                    on("tty", "tty"),
                );
                if kind == "exec" {
                    let cmd: Vec<String> = pairs
                        .iter()
                        .filter(|(k, _)| k == "command")
                        .map(|(_, v)| v.clone())
                        .collect();
                    if cmd.is_empty() {
                        return status(400, "BadRequest", "you must specify at least 1 command");
                    }
                    self.runtime
                        .exec(api::ExecRequest {
                            container_id: i.status.id.clone(),
                            cmd,
                            tty,
                            stdin,
                            stdout,
                            stderr: stderr && !tty,
                        })
                        .await
                } else {
                    self.runtime
                        .attach(api::AttachRequest {
                            container_id: i.status.id.clone(),
                            stdin,
                            tty,
                            stdout,
                            stderr: stderr && !tty,
                        })
                        .await
                }
            }
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => return status(500, "InternalError", e.message()),
        };
        let Ok(uri) = url.parse::<hyper::Uri>() else {
            return status(
                500,
                "InternalError",
                &format!("invalid streaming URL {url:?}"),
            );
        };
        let target = component_base::proxy::Target {
            https: uri.scheme_str() == Some("https"),
            host: uri.host().unwrap_or("127.0.0.1").to_string(),
            port: uri.port_u16().unwrap_or(80),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            server_name: None,
        };
        // The runtime's streaming server is local; its certificate (if any) is its own.
        let tls = component_base::tls::unverified_tls();
        match component_base::proxy::forward(req, &target, tls).await {
            Ok(r) => r,
            Err(e) => status(500, "InternalError", &e.to_string()),
        }
    }
}
