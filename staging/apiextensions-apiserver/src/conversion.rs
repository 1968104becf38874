//! Webhook conversion of custom resources (upstream `apiextensions-apiserver/pkg/apiserver/
//! conversion/webhook_converter.go`): objects not already in the wanted version go to the
//! CRD's conversion webhook in one `ConversionReview` (v1, or v1beta1 when that is all the
//! webhook lists); the answer must carry the request's uid, `Success`, as many objects as
//! were sent, each in the wanted version and of the same kind. Only labels and
//! annotations may change in their metadata: the rest is restored from the original.
//! Failures read `conversion webhook for <gvk> failed: <why>` (a 500 to the caller).

use apimachinery::StatusError;
use apiserver::registry::generic::Registry;
use apiserver::util::webhook::{post_json, resolve};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's timeout for conversion webhooks.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Webhook {
    pub client_config: Value,
    /// `v1` or `v1beta1`: the first of the CRD's `conversionReviewVersions` we speak.
    pub review_version: String,
    pub services: Arc<Registry>,
}

impl Webhook {
    /// The webhook of a CRD whose `spec.conversion.strategy` is `Webhook`.
    pub fn from_crd(crd: &Value, services: &Arc<Registry>) -> Option<Arc<Webhook>> {
        let conv = &crd["spec"]["conversion"];
        if conv["strategy"] != "Webhook" {
            return None;
        }
        let review_version = conv["webhook"]["conversionReviewVersions"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|v| matches!(*v, "v1" | "v1beta1"))?
            .to_string();
        Some(Arc::new(Webhook {
            client_config: conv["webhook"]["clientConfig"].clone(),
            review_version,
            services: services.clone(),
        }))
    }

    /// Converts `objects` to `desired` (`group/version`).
    pub fn convert(&self, objects: &[&Value], desired: &str) -> Result<Vec<Value>, StatusError> {
        let todo: Vec<usize> = (0..objects.len())
            .filter(|i| objects[*i]["apiVersion"] != desired)
            .collect();
        let mut out: Vec<Value> = objects.iter().map(|o| (*o).clone()).collect();
        if todo.is_empty() {
            return Ok(out);
        }
        let sent: Vec<Value> = todo.iter().map(|i| objects[*i].clone()).collect();
        let first = &sent[0];
        let gvk = format!(
            "{}, Kind={}",
            first["apiVersion"].as_str().unwrap_or_default(),
            first["kind"].as_str().unwrap_or_default()
        );
        let converted = block_on(self.call(&sent, desired)).and_then(|c| {
            c.into_iter()
                .zip(&sent)
                .enumerate()
                .map(|(i, (c, orig))| checked(i, c, orig, desired))
                .collect::<Result<Vec<Value>, String>>()
        });
        let converted = converted.map_err(|e| {
            StatusError::internal(format!("conversion webhook for {gvk} failed: {e}"))
        })?;
        for (i, c) in todo.into_iter().zip(converted) {
            out[i] = c;
        }
        Ok(out)
    }

    async fn call(&self, objects: &[Value], desired: &str) -> Result<Vec<Value>, String> {
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({"apiVersion": format!("apiextensions.k8s.io/{}", self.review_version),
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects}});
        let ca = base64::engine::general_purpose::STANDARD
            .decode(self.client_config["caBundle"].as_str().unwrap_or_default())
            .unwrap_or_default();
        let ep = resolve(&self.client_config, &self.services).await?;
        let answer = post_json(&ep, &ca, &review, TIMEOUT).await?;
        let r = &answer["response"];
        if r.is_null() {
            return Err("no response provided".into());
        }
        if r["uid"].as_str() != Some(uid.as_str()) {
            return Err(format!(
                "expected response.uid={uid:?}, got {:?}",
                r["uid"].as_str().unwrap_or_default()
            ));
        }
        if r["result"]["status"] != "Success" {
            return Err(r["result"]["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .unwrap_or("unknown error")
                .to_string());
        }
        let converted = r["convertedObjects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if converted.len() != objects.len() {
            return Err(format!(
                "returned {} objects, expected {}",
                converted.len(),
                objects.len()
            ));
        }
        Ok(converted)
    }
}

/// Checks one converted object against what was sent and restores the metadata the
/// webhook may not change.
fn checked(i: usize, mut c: Value, orig: &Value, desired: &str) -> Result<Value, String> {
    let invalid = |why: String| format!("invalid converted object at index {i}: {why}");
    if c["apiVersion"] != desired {
        return Err(invalid(format!(
            "invalid apiVersion {:?}, expected {desired:?}",
            c["apiVersion"].as_str().unwrap_or_default()
        )));
    }
    if c["kind"] != orig["kind"] {
        return Err(invalid(format!(
            "invalid kind {:?}, expected {:?}",
            c["kind"].as_str().unwrap_or_default(),
            orig["kind"].as_str().unwrap_or_default()
        )));
    }
    if !c["metadata"].is_object() && !c["metadata"].is_null() {
        return Err(invalid("invalid metadata: must be an object".into()));
    }
    let mut meta = orig["metadata"].clone();
    for field in ["labels", "annotations"] {
        match c["metadata"].get(field) {
            Some(v) if v.is_object() => meta[field] = v.clone(),
            _ => {
                if let Some(m) = meta.as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    c["metadata"] = meta;
    Ok(c)
}

/// Runs the webhook call from the synchronous codec path, as Go's codec blocks its
/// goroutine: on a multi-threaded runtime this worker hands its other tasks off while it
/// waits; elsewhere the call gets a thread of its own.
fn block_on<T: Send>(f: impl Future<Output = T> + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(f))
        }
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the conversion webhook")
                    .block_on(f)
            })
            .join()
            .expect("conversion webhook call")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converted_objects_are_checked_and_keep_their_metadata() {
        let orig = json!({"apiVersion": "x.io/v1", "kind": "Foo",
            "metadata": {"name": "a", "uid": "u1", "resourceVersion": "5", "labels": {"old": "1"}}});
        let good = json!({"apiVersion": "x.io/v2", "kind": "Foo",
            "metadata": {"name": "renamed", "uid": "u2", "labels": {"new": "2"}}, "spec": {"x": 1}});
        let out = checked(0, good, &orig, "x.io/v2").unwrap();
        assert_eq!(
            out["metadata"],
            json!({"name": "a", "uid": "u1", "resourceVersion": "5", "labels": {"new": "2"}})
        );
        assert_eq!(out["spec"]["x"], 1);
        let wrong_version = json!({"apiVersion": "x.io/v1", "kind": "Foo"});
        assert_eq!(
            checked(3, wrong_version, &orig, "x.io/v2").unwrap_err(),
            "invalid converted object at index 3: invalid apiVersion \"x.io/v1\", expected \"x.io/v2\""
        );
        let wrong_kind = json!({"apiVersion": "x.io/v2", "kind": "Bar"});
        assert!(
            checked(0, wrong_kind, &orig, "x.io/v2")
                .unwrap_err()
                .contains("invalid kind \"Bar\"")
        );
    }
}
