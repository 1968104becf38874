//! ComponentStatuses (upstream `pkg/registry/core/componentstatus`, deprecated but still
//! served): computed on every read by probing the scheduler and controller-manager health
//! endpoints on this host and the storage backend.

use crate::printers::cols;
use crate::typed::{Typed, simple};
use apiserver::endpoints::VirtualRest;
use apiserver::server::healthz::Check;
use async_trait::async_trait;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ComponentStatus;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub fn strategy() -> Typed<ComponentStatus> {
    let mut t = simple(
        "",
        "v1",
        "ComponentStatus",
        "componentstatuses",
        false,
        &["cs"],
    );
    t.columns = Some(|| {
        cols(&[
            ("Status", "string", 0),
            ("Message", "string", 0),
            ("Error", "string", 0),
        ])
    });
    t.row = |o| {
        let c = &o["conditions"][0];
        let status = if c["status"] == "True" {
            "Healthy"
        } else {
            "Unhealthy"
        };
        vec![json!(status), c["message"].clone(), c["error"].clone()]
    };
    t
}

pub enum Probe {
    /// An HTTPS `/healthz` on this host (self-signed serving certificates accepted).
    Healthz {
        port: u16,
    },
    Check(Arc<dyn Check>),
}

pub struct ComponentStatuses {
    pub components: Vec<(String, Probe)>,
}

async fn healthz(port: u16) -> Result<String, String> {
    let url = format!("https://127.0.0.1:{port}/healthz");
    let go = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name =
            rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
        let tls = apiserver::proxy::unverified_tls()
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::get("/healthz")
            .header("host", "127.0.0.1")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let code = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if code.is_success() {
            Ok(text)
        } else {
            Err(format!("unhealthy: {code}: {text}"))
        }
    };
    match tokio::time::timeout(Duration::from_secs(2), go).await {
        Ok(Err(e)) if !e.starts_with("unhealthy") => Err(format!("Get \"{url}\": {e}")),
        Ok(r) => r,
        Err(_) => Err(format!("Get \"{url}\": context deadline exceeded")),
    }
}

#[async_trait]
impl VirtualRest for ComponentStatuses {
    fn verbs(&self) -> &'static [&'static str] {
        &["get", "list"]
    }

    fn warning(&self) -> Option<String> {
        Some("v1 ComponentStatus is deprecated in v1.19+".into())
    }

    async fn list(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (name, probe) in &self.components {
            let result = match probe {
                Probe::Healthz { port } => healthz(*port).await,
                Probe::Check(c) => c.check().await.map(|_| "ok".to_string()),
            };
            let cond = match result {
                Ok(msg) => json!({"type": "Healthy", "status": "True", "message": msg}),
                Err(e) => json!({"type": "Healthy", "status": "False", "error": e}),
            };
            out.push(json!({"apiVersion": "v1", "kind": "ComponentStatus", "metadata": {"name": name}, "conditions": [cond]}));
        }
        out
    }
}
