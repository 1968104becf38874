//! ServiceAccounts (upstream `pkg/registry/core/serviceaccount`).

use crate::typed::{Typed, info};
use apimachinery::{Cause, GroupResource, StatusError};
use apiserver::authentication::serviceaccount::{Binding, TokenIssuer};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::Registry;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn strategy() -> Typed<ServiceAccount> {
    let mut i = info(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        "serviceaccounts",
    );
    i.short_names = vec!["sa".into()];
    i.subresources = vec!["token".into()];
    let mut t = Typed::new(i);
    t.columns = Some(|| {
        vec![
            crate::typed::col("Secrets", "string", "", 0),
            crate::typed::col("Age", "string", "", 0),
        ]
    });
    t.row = |o| {
        vec![
            json!(o["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            crate::typed::age_cell(o),
        ]
    };
    t
}

/// `POST serviceaccounts/<name>/token` (TokenRequest): a signed token for the account,
/// for the requested audiences and lifetime, optionally bound to a Pod, Secret or Node.
pub struct TokenRequest {
    pub serviceaccounts: Arc<Registry>,
    pub pods: Arc<Registry>,
    pub secrets: Arc<Registry>,
    pub nodes: Arc<Registry>,
    pub issuer: Arc<TokenIssuer>,
}

const MIN_EXPIRATION: i64 = 600;

fn invalid(name: &str, causes: Vec<Cause>) -> StatusError {
    StatusError::invalid("authentication.k8s.io", "TokenRequest", name, causes)
}

impl TokenRequest {
    /// The object a token is bound to, checked to exist with the given UID.
    async fn binding(
        &self,
        ns: &str,
        name: &str,
        r: &Value,
    ) -> Result<Option<Binding>, StatusError> {
        if !r.is_object() {
            return Ok(None);
        }
        let kind = r["kind"].as_str().unwrap_or_default();
        let obj_name = r["name"].as_str().unwrap_or_default();
        let (reg, in_ns, resource) = match kind {
            "Pod" => (&self.pods, Some(ns), "pods"),
            "Secret" => (&self.secrets, Some(ns), "secrets"),
            "Node" => (&self.nodes, None, "nodes"),
            other => {
                return Err(invalid(
                    name,
                    vec![Cause::not_supported(
                        "spec.boundObjectRef.kind",
                        &json!(other),
                        &["Pod", "Secret", "Node"],
                    )],
                ));
            }
        };
        let obj = reg.get(in_ns, obj_name).await.map_err(|e| {
            if e.code == 404 {
                StatusError::not_found(&GroupResource::new("", resource), obj_name)
            } else {
                e
            }
        })?;
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(want) = r["uid"].as_str().filter(|u| !u.is_empty())
            && want != uid
        {
            return Err(StatusError::conflict(
                &GroupResource::new("", resource),
                obj_name,
                &format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        let mut node = None;
        if kind == "Pod"
            && let Some(node_name) = obj["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
        {
            let node_uid = self
                .nodes
                .get(None, node_name)
                .await
                .ok()
                .and_then(|n| n["metadata"]["uid"].as_str().map(String::from))
                .unwrap_or_default();
            node = Some((node_name.to_string(), node_uid));
        }
        Ok(Some(Binding {
            kind: kind.to_string(),
            name: obj_name.to_string(),
            uid,
            node,
        }))
    }
}

#[async_trait]
impl SubresourceHandler for TokenRequest {
    async fn create(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        _dry_run: bool,
    ) -> Result<(u16, Value), StatusError> {
        let ns = ns.unwrap_or_default();
        let sa = self.serviceaccounts.get(Some(ns), name).await?;
        let spec = &body["spec"];
        let expiration = spec["expirationSeconds"].as_i64().unwrap_or(3600);
        if expiration < MIN_EXPIRATION {
            return Err(invalid(
                name,
                vec![Cause::invalid(
                    "spec.expirationSeconds",
                    &json!(expiration),
                    "may not specify a duration less than 10 minutes",
                )],
            ));
        }
        if expiration > 1 << 32 {
            return Err(invalid(
                name,
                vec![Cause::invalid(
                    "spec.expirationSeconds",
                    &json!(expiration),
                    "may not specify a duration larger than 2^32 seconds",
                )],
            ));
        }
        let mut audiences: Vec<String> = spec["audiences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if audiences.is_empty() {
            audiences = self.issuer.audiences.clone();
        }
        let binding = self.binding(ns, name, &spec["boundObjectRef"]).await?;
        let (token, exp) = self
            .issuer
            .issue(ns, &sa, &audiences, expiration, binding.as_ref())
            .map_err(StatusError::internal)?;
        let expires = jiff::Timestamp::from_second(exp)
            .map(apiserver::registry::meta::rfc3339)
            .unwrap_or_default();
        // `boundObjectRef` has no omitempty upstream: an unbound token says null.
        let mut out_spec = json!({"audiences": audiences, "boundObjectRef": null, "expirationSeconds": expiration});
        if spec["boundObjectRef"].is_object() {
            out_spec["boundObjectRef"] = spec["boundObjectRef"].clone();
        }
        Ok((
            201,
            json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": apiserver::registry::meta::now_rfc3339()},
                "spec": out_spec,
                "status": {"token": token, "expirationTimestamp": expires},
            }),
        ))
    }
}
