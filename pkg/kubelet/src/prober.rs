//! Container probes (upstream `pkg/kubelet/prober`): one worker per container and probe
//! kind, started when the container runs and stopped when it is replaced. Startup probes
//! gate the other two; results only flip after `successThreshold` / `failureThreshold`
//! consecutive outcomes; a changed result wakes the pod's worker.

use crate::cri::remote::RemoteRuntime;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// (pod uid, container name, kind).
type Key = (String, String, Kind);

#[derive(Clone, Debug)]
pub struct Outcome {
    pub container_id: String,
    pub success: bool,
}

type Notifier = Arc<dyn Fn(&str) + Send + Sync>;
/// An event about a failed probe: (pod, container, message).
type Reporter = Arc<dyn Fn(&Pod, &str, String) + Send + Sync>;

pub struct Manager {
    runtime: RemoteRuntime,
    results: Mutex<HashMap<Key, Outcome>>,
    /// Running workers: key -> container id.
    workers: Mutex<HashMap<Key, String>>,
    notify: Notifier,
    report: Reporter,
}

pub enum ProbeResult {
    Success,
    Failure(String),
}

impl Manager {
    pub fn new(runtime: RemoteRuntime, notify: Notifier, report: Reporter) -> Arc<Self> {
        Arc::new(Manager {
            runtime,
            results: Mutex::default(),
            workers: Mutex::default(),
            notify,
            report,
        })
    }

    /// The current result for a running container (None: no probe of that kind).
    pub fn result(
        &self,
        uid: &str,
        container: &str,
        kind: Kind,
        container_id: &str,
    ) -> Option<bool> {
        self.results
            .lock()
            .unwrap()
            .get(&(uid.to_string(), container.to_string(), kind))
            .filter(|o| o.container_id == container_id)
            .map(|o| o.success)
    }

    /// Starts the probe workers of a running container (idempotent).
    pub fn ensure(self: &Arc<Self>, pod: &Pod, c: &Container, container_id: &str, pod_ip: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        for (kind, probe) in [
            (Kind::Startup, &c.startup_probe),
            (Kind::Liveness, &c.liveness_probe),
            (Kind::Readiness, &c.readiness_probe),
        ] {
            let Some(probe) = probe.clone() else { continue };
            let key = (uid.clone(), c.name.clone(), kind);
            {
                let mut w = self.workers.lock().unwrap();
                if w.get(&key).is_some_and(|id| id == container_id) {
                    continue;
                }
                w.insert(key.clone(), container_id.to_string());
            }
            // Until the first run: readiness false, liveness success, startup false.
            self.results.lock().unwrap().insert(
                key.clone(),
                Outcome {
                    container_id: container_id.to_string(),
                    success: kind == Kind::Liveness,
                },
            );
            let me = self.clone();
            let (pod, c, id, ip) = (
                pod.clone(),
                c.clone(),
                container_id.to_string(),
                pod_ip.to_string(),
            );
            tokio::spawn(async move { me.worker(key, probe, pod, c, id, ip).await });
        }
    }

    /// Forgets a pod's probes (its workers end at their next tick).
    pub fn remove_pod(&self, uid: &str) {
        self.workers.lock().unwrap().retain(|k, _| k.0 != uid);
        self.results.lock().unwrap().retain(|k, _| k.0 != uid);
    }

    async fn worker(
        self: Arc<Self>,
        key: Key,
        probe: Probe,
        pod: Pod,
        c: Container,
        id: String,
        ip: String,
    ) {
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        tokio::time::sleep(Duration::from_secs(
            probe.initial_delay_seconds.unwrap_or(0).max(0) as u64,
        ))
        .await;
        let (mut successes, mut failures) = (0, 0);
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            if self.workers.lock().unwrap().get(&key) != Some(&id) {
                return;
            }
            // Liveness and readiness wait for the startup probe.
            if key.2 != Kind::Startup
                && c.startup_probe.is_some()
                && self.result(&key.0, &key.1, Kind::Startup, &id) != Some(true)
            {
                continue;
            }
            // A startup probe that succeeded is done.
            if key.2 == Kind::Startup
                && self.result(&key.0, &key.1, Kind::Startup, &id) == Some(true)
            {
                return;
            }
            let outcome = run_probe(&self.runtime, &probe, &c, &id, &ip, timeout).await;
            crate::metrics::METRICS
                .prober_probe_total
                .get_or_create(&crate::metrics::ProbeLabels {
                    probe_type: key.2.name().to_string(),
                    result: if matches!(outcome, ProbeResult::Success) {
                        "successful".into()
                    } else {
                        "failed".into()
                    },
                })
                .inc();
            let ok = match outcome {
                ProbeResult::Success => {
                    successes += 1;
                    failures = 0;
                    successes >= success_threshold
                }
                ProbeResult::Failure(msg) => {
                    failures += 1;
                    successes = 0;
                    (self.report)(
                        &pod,
                        &c.name,
                        format!("{} probe failed: {msg}", key.2.name()),
                    );
                    if failures < failure_threshold {
                        continue;
                    }
                    false
                }
            };
            if !ok && successes > 0 {
                continue;
            }
            let changed = {
                let mut r = self.results.lock().unwrap();
                let prev = r.insert(
                    key.clone(),
                    Outcome {
                        container_id: id.clone(),
                        success: ok,
                    },
                );
                prev.is_none_or(|p| p.success != ok || p.container_id != id)
            };
            if changed {
                (self.notify)(&key.0);
            }
            // A failed liveness/startup probe ends this container; its replacement gets
            // a new worker.
            if !ok && key.2 != Kind::Readiness {
                failures = 0;
            }
        }
    }
}

/// A port given by number or by the container's named port.
fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port as u16)
            .ok_or_else(|| format!("couldn't find port {name:?} in container")),
    }
}

/// Runs one probe through its handler (exec, httpGet, tcpSocket, grpc).
pub async fn run_probe(
    rt: &RemoteRuntime,
    probe: &Probe,
    c: &Container,
    container_id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> ProbeResult {
    if let Some(e) = &probe.exec {
        return match rt
            .exec_sync(container_id, e.command.clone().unwrap_or_default(), timeout)
            .await
        {
            Ok(r) if r.exit_code == 0 => ProbeResult::Success,
            Ok(r) => ProbeResult::Failure(format!(
                "{}{}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            )),
            Err(e) => ProbeResult::Failure(e.message().to_string()),
        };
    }
    if let Some(h) = &probe.http_get {
        let port = match resolve_port(&h.port, c) {
            Ok(p) => p,
            Err(e) => return ProbeResult::Failure(e),
        };
        let host = h
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        // HTTPS probes do not verify the certificate, as upstream's prober.
        let https = h.scheme.as_deref() == Some("HTTPS");
        let scheme = if https { "https" } else { "http" };
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(https, &host, port, &path, &headers))
            .await
        {
            Ok(Ok(code)) if (200..400).contains(&code) => ProbeResult::Success,
            Ok(Ok(code)) => {
                ProbeResult::Failure(format!("HTTP probe failed with statuscode: {code}"))
            }
            Ok(Err(e)) => {
                ProbeResult::Failure(format!("Get \"{scheme}://{host}:{port}{path}\": {e}"))
            }
            Err(_) => ProbeResult::Failure(format!(
                "Get \"{scheme}://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let port = match resolve_port(&t.port, c) {
            Ok(p) => p,
            Err(e) => return ProbeResult::Failure(e),
        };
        let host = t
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => ProbeResult::Success,
            Ok(Err(e)) => ProbeResult::Failure(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => ProbeResult::Failure(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if let Some(g) = &probe.grpc {
        let port = g.port as u16;
        return match tokio::time::timeout(
            timeout,
            grpc_health(pod_ip, port, g.service.as_deref().unwrap_or("")),
        )
        .await
        {
            Ok(Ok(true)) => ProbeResult::Success,
            Ok(Ok(false)) => {
                ProbeResult::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
            }
            Ok(Err(e)) => ProbeResult::Failure(format!(
                "failed to connect service \"{pod_ip}:{port}\" within {}s: {e}",
                timeout.as_secs()
            )),
            Err(_) => ProbeResult::Failure(format!(
                "timeout: health rpc did not complete within {}s",
                timeout.as_secs()
            )),
        };
    }
    ProbeResult::Failure("missing probe handler".into())
}

async fn http_get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    if !https {
        return http1_get(tcp, host, port, path, headers).await;
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))?;
    let tls = component_base::tls::unverified_tls()
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    http1_get(tls, host, port, path, headers).await
}

async fn http1_get<S>(
    stream: S,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::Empty;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path)
        .header("host", format!("{host}:{port}"))
        .header("user-agent", "kube-probe/1.35")
        .header("accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(req.body(Empty::new()).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// `grpc.health.v1.Health/Check`, encoded by hand: the request carries the service name
/// (field 1), the response its status (field 1, SERVING = 1).
async fn grpc_health(host: &str, port: u16, service: &str) -> Result<bool, String> {
    use http_body_util::{BodyExt, Full};
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        msg.push(service.len() as u8);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let req = hyper::Request::post(format!("http://{host}:{port}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(bytes::Bytes::from(frame)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    // 5-byte frame header, then field 1 varint.
    Ok(body.len() >= 7 && body[5] == 0x08 && body[6] == 1)
}
