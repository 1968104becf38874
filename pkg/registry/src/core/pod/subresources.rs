//! Pod subresources that write one part of the pod (upstream
//! `pkg/registry/core/pod/storage`): `ephemeralcontainers` (what `kubectl debug` adds)
//! and `resize` (in-place changes of container resources). Both read and write whole
//! Pods; everything outside their part is kept as stored.

use apimachinery::{Cause, GroupResource, StatusError};
use apiserver::endpoints::SubresourceHandler;
use apiserver::registry::generic::{Part, Registry};
use apiserver::registry::meta;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone, Copy)]
pub enum PodPart {
    EphemeralContainers,
    Resize,
}

pub struct PodSubresource {
    pub registry: Arc<Registry>,
    pub part: PodPart,
}

fn invalid(name: &str, causes: Vec<Cause>) -> StatusError {
    StatusError::invalid("", "Pod", name, causes)
}

/// Ephemeral containers can be added, never changed or removed.
fn ephemeral(cur: &Value, body: &Value, name: &str) -> Result<Value, StatusError> {
    let old = cur["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new = body["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut causes = Vec::new();
    for (i, o) in old.iter().enumerate() {
        match new.iter().find(|n| n["name"] == o["name"]) {
            None => causes.push(Cause::forbidden(
                "spec.ephemeralContainers",
                &format!(
                    "existing ephemeral containers {} may not be removed",
                    o["name"]
                ),
            )),
            Some(n) if n != o => causes.push(Cause::forbidden(
                &format!("spec.ephemeralContainers[{i}]"),
                "existing ephemeral containers may not be changed",
            )),
            _ => {}
        }
    }
    let taken: Vec<&Value> = cur["spec"]["containers"]
        .as_array()
        .into_iter()
        .chain(cur["spec"]["initContainers"].as_array())
        .flatten()
        .map(|c| &c["name"])
        .collect();
    for (i, n) in new.iter().enumerate() {
        let f = format!("spec.ephemeralContainers[{i}]");
        if n["name"].as_str().unwrap_or_default().is_empty() {
            causes.push(Cause::required(&format!("{f}.name"), ""));
        } else if taken.contains(&&n["name"]) {
            causes.push(Cause::duplicate(&format!("{f}.name"), &n["name"]));
        }
        if n["image"].as_str().unwrap_or_default().is_empty() {
            causes.push(Cause::required(&format!("{f}.image"), ""));
        }
        for forbidden in [
            "ports",
            "resources",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ] {
            if !n[forbidden].is_null() && n[forbidden] != json!({}) && n[forbidden] != json!([]) {
                causes.push(Cause::forbidden(
                    &format!("{f}.{forbidden}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    if !causes.is_empty() {
        return Err(invalid(name, causes));
    }
    let mut next = cur.clone();
    // Defaulted with the rest of the pod by the typed decode in `update`.
    next["spec"]["ephemeralContainers"] = json!(new);
    Ok(next)
}

/// Only container resources (and resize policies) change; the pod's QoS class may not.
fn resize(cur: &Value, body: &Value, name: &str) -> Result<Value, StatusError> {
    let mut next = cur.clone();
    let mut causes = Vec::new();
    let new = body["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, c) in next["spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(n) = new.iter().find(|n| n["name"] == c["name"]) else {
            continue;
        };
        if !n["resources"].is_null() {
            c["resources"] = n["resources"].clone();
        }
        if !n["resizePolicy"].is_null() {
            c["resizePolicy"] = n["resizePolicy"].clone();
        }
        if n["image"] != c["image"] && !n["image"].is_null() {
            causes.push(Cause::forbidden(
                &format!("spec.containers[{i}].image"),
                "only resources and resizePolicy may be changed through the resize subresource",
            ));
        }
    }
    if super::qos_class(&next["spec"])
        != cur["status"]["qosClass"]
            .as_str()
            .unwrap_or(super::qos_class(&cur["spec"]))
    {
        causes.push(Cause::invalid(
            "spec",
            &json!(super::qos_class(&next["spec"])),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    if !causes.is_empty() {
        return Err(invalid(name, causes));
    }
    Ok(next)
}

#[async_trait]
impl SubresourceHandler for PodSubresource {
    async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value, StatusError> {
        self.registry.get(ns, name).await
    }

    async fn update(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        dry_run: bool,
        manager: &str,
    ) -> Result<Value, StatusError> {
        let gr = GroupResource::new("", "pods");
        let pinned = meta::pinned_resource_version(&body);
        let part = self.part;
        let strategy = self.registry.strategy.clone();
        let (out, _) = self
            .registry
            .guaranteed_update(ns, name, Part::Whole, dry_run, &mut |cur| {
                let cur = cur.ok_or_else(|| StatusError::not_found(&gr, name))?;
                let next = match part {
                    PodPart::EphemeralContainers => ephemeral(cur, &body, name)?,
                    PodPart::Resize => resize(cur, &body, name)?,
                };
                // Through the pod's typed decode, as every write: its defaults (an
                // ephemeral container's included) are stored, so a later update compares
                // like with like.
                let (mut next, _) = strategy.decode(next)?;
                let av = "v1";
                let sub = match part {
                    PodPart::EphemeralContainers => "ephemeralcontainers",
                    PodPart::Resize => "resize",
                };
                let scope = apiserver::endpoints::fieldmanager::Scope {
                    status_split: true,
                    subresource: sub,
                    api_version: av,
                    shape: apiserver::endpoints::shape::Shape::unknown(),
                };
                apiserver::endpoints::fieldmanager::update(Some(cur), &mut next, manager, scope);
                meta::pin_resource_version(&mut next, &pinned);
                Ok(next)
            })
            .await?;
        Ok(out)
    }
}
