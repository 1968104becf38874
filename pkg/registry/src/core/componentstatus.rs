//! ComponentStatuses (upstream `pkg/registry/core/componentstatus`, deprecated but still
//! served): computed on every read by probing the scheduler and controller-manager health
//! endpoints on this host and the storage backend.

use crate::printers::cols;
use crate::typed::{Typed, simple};
use apiserver::endpoints::VirtualRest;
use apiserver::server::healthz::Check;
use async_trait::async_trait;
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
    let target = component_base::proxy::Target {
        https: true,
        host: "127.0.0.1".into(),
        port,
        path_and_query: "/healthz".into(),
        server_name: None,
    };
    let got = component_base::proxy::get(
        &target,
        apiserver::proxy::unverified_tls(),
        &[],
        Duration::from_secs(2),
    )
    .await;
    match got {
        Ok((code, body)) => {
            let text = String::from_utf8_lossy(&body).into_owned();
            match (200..300).contains(&code) {
                true => Ok(text),
                false => Err(format!(
                    "unhealthy: {}: {text}",
                    hyper::StatusCode::from_u16(code).unwrap_or_default()
                )),
            }
        }
        Err(e) if e == component_base::proxy::TIMED_OUT => {
            Err(format!("Get \"{url}\": context deadline exceeded"))
        }
        Err(e) => Err(format!("Get \"{url}\": {e}")),
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
